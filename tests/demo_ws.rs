//! The `ws-leak` defect: clients connect and vanish (TCP dropped without a close frame, or
//! silent and never answering pings). With the defect the API's open-connection gauge stays
//! up and its memory grows; without it the gauge returns to its baseline.

#[path = "common/demo.rs"]
mod demo;

use std::time::Duration;

use demo::{http, metric, poll, start_api, wait_healthy};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const CLIENTS: usize = 60;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects `n` clients, each proven live by an echo.
async fn connect(base: &str, n: usize) -> Vec<Ws> {
    let url = format!("{}/ws", base.replace("http://", "ws://"));
    let mut out = Vec::new();
    for i in 0..n {
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("ws connect");
        let text = format!("hi {i}");
        ws.send(Message::text(text.clone())).await.unwrap();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("echo in time")
                .expect("open")
                .expect("no error");
            if let Message::Text(t) = m {
                assert_eq!(t.as_str(), text);
                break;
            }
        }
        out.push(ws);
    }
    out
}

async fn gauge(c: &reqwest::Client, base: &str) -> f64 {
    metric(c, base, "demo_ws_connections_open").await.unwrap()
}

async fn rss(c: &reqwest::Client, base: &str) -> f64 {
    metric(c, base, "process_resident_memory_bytes")
        .await
        .unwrap()
}

/// Half the clients drop their TCP connection, half stay connected but go silent (never
/// read, so never answer the server's pings).
async fn vanish(mut clients: Vec<Ws>) -> Vec<Ws> {
    let silent = clients.split_off(clients.len() / 2);
    drop(clients);
    silent
}

#[tokio::test]
async fn without_the_defect_vanished_clients_are_freed() {
    let (_api, base) = start_api(
        None,
        &["--ws-idle-timeout", "2s", "--ws-heartbeat", "500ms"],
    );
    let c = http();
    wait_healthy(&c, &base).await;
    assert_eq!(gauge(&c, &base).await, 0.0);
    let clients = connect(&base, CLIENTS).await;
    assert_eq!(gauge(&c, &base).await, CLIENTS as f64);
    let _silent = vanish(clients).await;
    poll(
        Duration::from_secs(60),
        "the open-connection gauge back at 0",
        || async { (gauge(&c, &base).await == 0.0).then_some(()) },
    )
    .await;
    let idle = metric(&c, &base, "demo_ws_idle_closed_total")
        .await
        .unwrap();
    assert!(
        idle >= (CLIENTS / 2) as f64,
        "silent clients must be closed by the idle timeout, got {idle}"
    );
}

#[tokio::test]
async fn with_ws_leak_the_gauge_and_memory_keep_growing() {
    let flags = ["--ws-idle-timeout", "2s", "--ws-heartbeat", "500ms"];
    let (_api, base) = start_api(None, &[&flags[..], &["--defect", "ws-leak"]].concat());
    // The same API without the defect, as the clock: once it has freed its vanished
    // clients, the idle timeout has demonstrably passed, and the leaky one must still hold
    // every one of them.
    let (_fixed, fixed) = start_api(None, &flags);
    let c = http();
    wait_healthy(&c, &base).await;
    wait_healthy(&c, &fixed).await;
    let rss_before = rss(&c, &base).await;
    let clients = connect(&base, CLIENTS).await;
    let _silent = vanish(clients).await;
    let _silent_fixed = vanish(connect(&fixed, CLIENTS).await).await;
    poll(
        Duration::from_secs(60),
        "the API without the defect to free its vanished clients",
        || async { (gauge(&c, &fixed).await == 0.0).then_some(()) },
    )
    .await;
    assert_eq!(gauge(&c, &base).await, CLIENTS as f64);
    assert_eq!(
        metric(&c, &base, "demo_ws_leaked_states").await,
        Some(CLIENTS as f64)
    );
    // A second wave grows it further: dropped connections, freed at once without the
    // defect, kept with it.
    drop(connect(&base, CLIENTS).await);
    drop(connect(&fixed, CLIENTS).await);
    poll(
        Duration::from_secs(60),
        "the API without the defect to free the dropped clients",
        || async { (gauge(&c, &fixed).await == 0.0).then_some(()) },
    )
    .await;
    assert_eq!(gauge(&c, &base).await, (2 * CLIENTS) as f64);
    let grown = rss(&c, &base).await - rss_before;
    // 64 KiB kept per connection; allow for allocator slack.
    let expected = (2 * CLIENTS * 64 * 1024) as f64;
    assert!(
        grown >= expected * 0.5,
        "RSS grew by {grown} bytes, expected about {expected}"
    );
}
