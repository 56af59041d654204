//! `/ws`: subscribe to item changes, echo of text messages, server heartbeat.
//!
//! Fixed: the server pings every `heartbeat`; a client that sends nothing (not even a pong)
//! for `idle_timeout` is dropped and its state freed. With the `ws-leak` defect each
//! connection's state (a 64 KiB buffer and a subscription) goes into a global registry that
//! is never pruned, there is no heartbeat, and the open-connection gauge never goes down.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast;

use crate::state::{AppState, LeakedConn, Route};

pub(crate) async fn upgrade(ws: WebSocketUpgrade, State(st): State<Arc<AppState>>) -> Response {
    st.metrics.count(Route::Ws, StatusCode::SWITCHING_PROTOCOLS);
    ws.on_upgrade(move |socket| session(socket, st))
}

async fn session(socket: WebSocket, st: Arc<AppState>) {
    st.metrics.ws_open.fetch_add(1, Ordering::Relaxed);
    st.metrics.ws_total.fetch_add(1, Ordering::Relaxed);
    if st.ws.leak {
        let state = LeakedConn::new(st.events.subscribe());
        if let Ok(mut reg) = st.leaked.lock() {
            reg.push(state);
        }
        serve_leaky(socket, &st).await;
        // The defect: the gauge and the registry entry stay.
    } else {
        serve(socket, &st).await;
        st.metrics.ws_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sends one message, giving up if the peer does not take it within the idle timeout.
async fn send(
    tx: &mut futures::stream::SplitSink<WebSocket, Message>,
    msg: Message,
    limit: Duration,
) -> bool {
    matches!(tokio::time::timeout(limit, tx.send(msg)).await, Ok(Ok(())))
}

async fn serve(socket: WebSocket, st: &AppState) {
    let (mut tx, mut rx) = socket.split();
    let mut events = st.events.subscribe();
    let mut beat = tokio::time::interval_at(
        tokio::time::Instant::now() + st.ws.heartbeat,
        st.ws.heartbeat,
    );
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let limit = st.ws.idle_timeout;
    let mut last_seen = Instant::now();
    loop {
        tokio::select! {
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    last_seen = Instant::now();
                    if !send(&mut tx, Message::Text(t), limit).await {
                        break;
                    }
                    st.metrics.ws_messages_out.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                // Pongs (and pings, answered by the library) prove the client is alive.
                Some(Ok(_)) => last_seen = Instant::now(),
            },
            ev = events.recv() => match ev {
                Ok(item) => {
                    if !send(&mut tx, Message::Text(item), limit).await {
                        break;
                    }
                    st.metrics.ws_messages_out.fetch_add(1, Ordering::Relaxed);
                }
                // A slow subscriber misses events rather than holding memory.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = beat.tick() => {
                if last_seen.elapsed() >= limit {
                    st.metrics.ws_idle_closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                if !send(&mut tx, Message::Ping(axum::body::Bytes::from_static(b"hb")), limit).await {
                    break;
                }
            }
            _ = st.shutdown.cancelled() => {
                let _ = send(&mut tx, Message::Close(None), Duration::from_millis(500)).await;
                break;
            }
        }
    }
}

/// The defect's handler: echo and events, but no heartbeat and no idle detection.
async fn serve_leaky(socket: WebSocket, st: &AppState) {
    let (mut tx, mut rx) = socket.split();
    let mut events = st.events.subscribe();
    let limit = st.ws.idle_timeout;
    loop {
        tokio::select! {
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if !send(&mut tx, Message::Text(t), limit).await {
                        break;
                    }
                    st.metrics.ws_messages_out.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            ev = events.recv() => match ev {
                Ok(item) => {
                    if !send(&mut tx, Message::Text(item), limit).await {
                        break;
                    }
                    st.metrics.ws_messages_out.fetch_add(1, Ordering::Relaxed);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = st.shutdown.cancelled() => break,
        }
    }
}
