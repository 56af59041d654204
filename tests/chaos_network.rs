//! `network` faults through the chaos proxy (latency and jitter measured, partition, drop,
//! reset, bandwidth), `leak_websockets` against a real WebSocket server, and the loopback
//! safety rule.

mod chaos_support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_support::*;
use futures::StreamExt;
use gauntlet::chaos::{Chaos, Services};
use tokio_util::sync::CancellationToken;

struct Net {
    _dir: RunDir,
    services: Services,
    chaos: Chaos,
    proxy: u16,
}

async fn setup(name: &str, faults: &str) -> Net {
    let dir = RunDir::new(name);
    let (port, proxy) = (free_port(), free_port());
    // 10.1.2.3 is allowed (so validation passes) but not loopback: the fault itself must
    // still refuse it (see the leak_websockets test).
    let head = HEAD.replace(
        r#"allow_hosts = ["127.0.0.1"]"#,
        r#"allow_hosts = ["127.0.0.1", "10.1.2.3"]"#,
    );
    let plan = plan(&format!(
        r#"{head}
[[services]]
name = "api"
command = ["{bin}", "serve", "{port}"]
health = {{ http = "http://127.0.0.1:{port}/", startup = "10s" }}
proxy = {{ listen = "127.0.0.1:{proxy}", upstream = "127.0.0.1:{port}" }}
{faults}
"#,
        bin = helper_bin().display()
    ));
    let ev = Events::new();
    let services = Services::start(&plan, &dir.folder(), ev.sink.clone())
        .await
        .unwrap();
    let chaos = Chaos::new(&plan, &services, ev.sink.clone(), CancellationToken::new());
    assert_eq!(services.proxy_addr("api").unwrap().port(), proxy);
    Net {
        _dir: dir,
        services,
        chaos,
        proxy,
    }
}

impl Net {
    async fn get(&self, timeout: Duration) -> (Result<String, String>, Duration) {
        let t = Instant::now();
        let r = http_get_async(self.proxy, timeout).await;
        (r, t.elapsed())
    }
    async fn finish(mut self) {
        self.chaos.undo_all().await;
        self.services.shutdown().await;
    }
}

fn fault(kind_keys: &str) -> String {
    format!("[[faults]]\nkind = \"network\"\ntarget = \"api\"\nat = \"0s\"\nduration = \"1m\"\n{kind_keys}\n")
}

#[tokio::test]
async fn latency_and_jitter_are_added_and_removed() {
    let n = setup(
        "latency",
        &(fault("latency = \"400ms\"") + &fault("latency = \"300ms\"\njitter = \"100ms\"")),
    )
    .await;
    let (r, base) = n.get(Duration::from_secs(5)).await;
    assert!(r.unwrap().contains("200 OK"));
    assert!(base < Duration::from_millis(250), "baseline {base:?}");
    let id = n.chaos.apply_now(0, 0).await.unwrap().unwrap();
    let (r, slow) = n.get(Duration::from_secs(5)).await;
    assert!(r.unwrap().contains("200 OK"));
    assert!(
        slow >= Duration::from_millis(390),
        "with 400ms latency: {slow:?}"
    );
    n.chaos.undo_now(id).await.unwrap();
    let (_, after) = n.get(Duration::from_secs(5)).await;
    assert!(after < Duration::from_millis(250), "after undo {after:?}");
    // Jitter: 300ms ± 100ms.
    let id = n.chaos.apply_now(1, 0).await.unwrap().unwrap();
    for _ in 0..4 {
        let (r, d) = n.get(Duration::from_secs(5)).await;
        assert!(r.is_ok());
        assert!(
            d >= Duration::from_millis(195) && d < Duration::from_millis(1500),
            "{d:?}"
        );
    }
    n.chaos.undo_now(id).await.unwrap();
    n.finish().await;
}

#[tokio::test]
async fn partition_holds_traffic_until_lifted() {
    let n = setup("partition", &fault("partition = true")).await;
    let id = n.chaos.apply_now(0, 0).await.unwrap().unwrap();
    let (r, _) = n.get(Duration::from_millis(600)).await;
    assert!(r.is_err(), "traffic passed a partition: {r:?}");
    // A request sent during the partition goes through once it is lifted.
    let port = n.proxy;
    let pending = tokio::spawn(async move {
        let t = Instant::now();
        (
            http_get_async(port, Duration::from_secs(10)).await,
            t.elapsed(),
        )
    });
    assert!(
        holds_for(Duration::from_millis(500), || !pending.is_finished()).await,
        "a request went through the partition"
    );
    n.chaos.undo_now(id).await.unwrap();
    let (r, d) = pending.await.unwrap();
    assert!(r.unwrap().contains("200 OK"));
    assert!(d >= Duration::from_millis(450), "{d:?}");
    n.finish().await;
}

#[tokio::test]
async fn drop_times_out_new_connections() {
    let n = setup("drop", &fault("drop = 100.0")).await;
    let id = n.chaos.apply_now(0, 0).await.unwrap().unwrap();
    let (r, d) = n.get(Duration::from_millis(700)).await;
    assert!(
        r.is_err() && d >= Duration::from_millis(650),
        "{r:?} after {d:?}"
    );
    n.chaos.undo_now(id).await.unwrap();
    let (r, _) = n.get(Duration::from_secs(5)).await;
    assert!(r.unwrap().contains("200 OK"));
    n.finish().await;
}

/// A drop also loses requests on connections opened before it (keep-alive users would
/// never see it otherwise): the request is held, unanswered, and the connection closed
/// when the drop ends.
#[tokio::test]
async fn drop_loses_requests_on_established_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let n = setup("drop-established", &fault("drop = 100.0")).await;
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", n.proxy))
        .await
        .unwrap();
    let id = n.chaos.apply_now(0, 0).await.unwrap().unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let r = tokio::time::timeout(Duration::from_millis(700), c.read(&mut buf)).await;
    assert!(r.is_err(), "answered through a drop: {r:?}");
    n.chaos.undo_now(id).await.unwrap();
    // Closed (EOF or reset) once the drop is over, never answered.
    let r = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .expect("closed after the drop");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    n.finish().await;
}

#[tokio::test]
async fn reset_aborts_connections() {
    let n = setup("reset", &fault("reset = true")).await;
    let id = n.chaos.apply_now(0, 0).await.unwrap().unwrap();
    let (r, d) = n.get(Duration::from_secs(3)).await;
    match r {
        Err(e) => assert!(
            e.to_lowercase().contains("reset") || e.contains("broken pipe"),
            "{e}"
        ),
        Ok(body) => assert!(body.is_empty(), "a reset connection answered: {body}"),
    }
    assert!(d < Duration::from_secs(2));
    n.chaos.undo_now(id).await.unwrap();
    let (r, _) = n.get(Duration::from_secs(5)).await;
    assert!(r.unwrap().contains("200 OK"));
    n.finish().await;
}

#[tokio::test]
async fn bandwidth_limit_slows_transfers() {
    let n = setup("bandwidth", &fault("bandwidth = \"100B\"")).await;
    let id = n.chaos.apply_now(0, 0).await.unwrap().unwrap();
    let (r, d) = n.get(Duration::from_secs(10)).await;
    let body = r.unwrap();
    assert!(body.contains("200 OK"));
    // The ~90-byte answer at 100 B/s takes ~0.9s (the request's first slice is enough
    // for the helper to answer).
    assert!(
        d >= Duration::from_millis(800) && d < Duration::from_secs(5),
        "{} bytes in {d:?}",
        body.len()
    );
    n.chaos.undo_now(id).await.unwrap();
    let (_, d) = n.get(Duration::from_secs(5)).await;
    assert!(d < Duration::from_millis(250), "{d:?}");
    n.finish().await;
}

/// A WebSocket server counting open connections (closed when the client's socket is).
async fn ws_server() -> (u16, Arc<AtomicI64>, Arc<AtomicI64>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let open = Arc::new(AtomicI64::new(0));
    let total = Arc::new(AtomicI64::new(0));
    let (o, t) = (open.clone(), total.clone());
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let (o, t) = (o.clone(), t.clone());
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(s).await else {
                    return;
                };
                t.fetch_add(1, Ordering::SeqCst);
                o.fetch_add(1, Ordering::SeqCst);
                while let Some(Ok(_)) = ws.next().await {}
                o.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (port, open, total)
}

#[tokio::test]
async fn leak_websockets_holds_connections_until_undone() {
    let (ws_port, open, total) = ws_server().await;
    let n = setup(
        "wsleak",
        &format!(
            "[[faults]]\nkind = \"leak_websockets\"\ntarget = \"api\"\nurl = \"ws://127.0.0.1:{ws_port}/ws\"\nconnections = 25\nrate = 200.0\nat = \"0s\"\nduration = \"1m\"\n\
             [[faults]]\nkind = \"leak_websockets\"\ntarget = \"api\"\nurl = \"ws://10.1.2.3:{ws_port}/ws\"\nconnections = 1\nat = \"0s\"\nduration = \"1m\""
        ),
    )
    .await;
    let id = n.chaos.apply_now(0, 0).await.unwrap().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || total.load(Ordering::SeqCst)
            == 25)
        .await,
        "handshakes: {}",
        total.load(Ordering::SeqCst)
    );
    assert!(
        holds_for(Duration::from_millis(300), || open.load(Ordering::SeqCst)
            == 25)
        .await,
        "connections must stay open: {}",
        open.load(Ordering::SeqCst)
    );
    n.chaos.undo_now(id).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || open.load(Ordering::SeqCst) == 0).await,
        "still open after undo: {}",
        open.load(Ordering::SeqCst)
    );
    // Never anywhere but loopback.
    let err = n.chaos.apply_now(1, 0).await.unwrap_err().to_string();
    assert!(err.contains("loopback"), "{err}");
    n.finish().await;
}

#[tokio::test]
async fn a_proxy_or_health_check_off_loopback_is_refused() {
    // Both are refused by validation, before anything starts, with the key that is wrong.
    for (service, key) in [
        (
            format!(
                r#"proxy = {{ listen = "0.0.0.0:{}", upstream = "127.0.0.1:1" }}"#,
                free_port()
            ),
            "services[0].proxy.listen",
        ),
        (
            r#"proxy = { listen = "127.0.0.1:1", upstream = "10.0.0.7:80" }"#.to_string(),
            "services[0].proxy.upstream",
        ),
        (
            r#"health = { http = "http://172.17.0.2:8080/health" }"#.to_string(),
            "services[0].health.http",
        ),
    ] {
        let text = format!(
            r#"{HEAD}
[[services]]
name = "api"
command = ["sleep", "30"]
{service}
"#
        );
        let err = gauntlet::scenario::load_str(std::path::Path::new("loopback.toml"), &text)
            .expect_err("refused")
            .to_string();
        assert!(err.contains(key) && err.contains("loopback"), "{err}");
    }
}
