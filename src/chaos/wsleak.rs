//! `leak_websockets`: open N WebSocket connections at a rate, complete the handshake, then
//! never read and never close, until the fault ends (then the sockets are dropped without
//! a close frame, like clients that vanished).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;

use crate::event::{EventSink, Level};

use super::require_loopback_host;

pub(crate) struct WsLeak {
    task: JoinHandle<()>,
    held: Arc<Mutex<Vec<WebSocketStream<TcpStream>>>>,
    opened: Arc<AtomicU32>,
    failed: Arc<AtomicU32>,
}

impl WsLeak {
    pub fn opened(&self) -> u32 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Stop opening and drop every connection. Returns (opened, failed).
    pub fn close(self) -> (u32, u32) {
        self.task.abort();
        let held = std::mem::take(&mut *self.held.lock().unwrap());
        drop(held);
        (self.opened(), self.failed.load(Ordering::Relaxed))
    }
}

/// A leaked connection that could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum WsLeakError {
    #[error("url `{url}`: {why}")]
    Url { url: String, why: String },
    #[error("connect {host}:{port}: timeout")]
    ConnectTimeout { host: String, port: u16 },
    #[error("connect {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("{url}: handshake timeout")]
    HandshakeTimeout { url: String },
    #[error("{url}: handshake: {source}")]
    Handshake {
        url: String,
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
}

/// A URL for an error message: no user-info.
fn shown(url: &str) -> String {
    crate::units::redact_userinfo(url).into_owned()
}

async fn open_one(
    url: &str,
    host: &str,
    port: u16,
) -> Result<WebSocketStream<TcpStream>, WsLeakError> {
    let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect((host, port)))
        .await
        .map_err(|_| WsLeakError::ConnectTimeout {
            host: host.to_string(),
            port,
        })?
        .map_err(|source| WsLeakError::Connect {
            host: host.to_string(),
            port,
            source,
        })?;
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::client_async(url, tcp),
    )
    .await
    .map_err(|_| WsLeakError::HandshakeTimeout { url: shown(url) })?
    .map_err(|e| WsLeakError::Handshake {
        url: shown(url),
        source: Box::new(e),
    })?;
    Ok(ws)
}

/// Open the first connection now (an error fails the fault), the rest at `rate` per
/// second in the background.
pub(crate) async fn start(
    url: &str,
    connections: u32,
    rate: f64,
    events: EventSink,
    name: String,
) -> Result<WsLeak, WsLeakError> {
    let bad_url = |why: String| WsLeakError::Url {
        url: shown(url),
        why,
    };
    let u = url::Url::parse(url).map_err(|e| bad_url(e.to_string()))?;
    if u.scheme() != "ws" {
        return Err(bad_url("only ws:// is supported".into()));
    }
    let host = crate::units::bare_host(
        u.host_str()
            .ok_or_else(|| bad_url("it has no host".into()))?,
    );
    require_loopback_host(&host).map_err(bad_url)?;
    let port = u.port_or_known_default().unwrap_or(80);
    let first = open_one(url, &host, port).await?;
    let held = Arc::new(Mutex::new(vec![first]));
    let opened = Arc::new(AtomicU32::new(1));
    let failed = Arc::new(AtomicU32::new(0));
    let (h2, o2, f2) = (held.clone(), opened.clone(), failed.clone());
    let url = url.to_string();
    let every = Duration::from_secs_f64(1.0 / rate.max(0.01));
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        let mut last_err = None;
        for _ in 1..connections {
            tick.tick().await;
            match open_one(&url, &host, port).await {
                Ok(ws) => {
                    h2.lock().unwrap().push(ws);
                    o2.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    f2.fetch_add(1, Ordering::Relaxed);
                    last_err = Some(e);
                }
            }
        }
        let (o, f) = (o2.load(Ordering::Relaxed), f2.load(Ordering::Relaxed));
        events.notice(
            if f > 0 { Level::Warn } else { Level::Info },
            format!(
                "fault `{name}`: {o} of {connections} WebSocket connections open and leaking{}",
                last_err
                    .map(|e| format!(" ({f} failed; last error: {e})"))
                    .unwrap_or_default()
            ),
        );
    });
    Ok(WsLeak {
        task,
        held,
        opened,
        failed,
    })
}
