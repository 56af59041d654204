//! WebSocket virtual users (`[[ws]]`) against real WebSocket servers on 127.0.0.1: echo
//! servers written here on tokio-tungstenite (not ours), one that answers late, one that
//! drops the TCP connection without a close frame, the demo API's `/ws` with HTTP users
//! next to the WebSocket ones, and 5000 WebSocket users held open at once.

#[path = "common/demo.rs"]
mod demo;
mod load_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use gauntlet::event::WsTotals;
use load_support::{goose_lock, run_load, Outcome};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;

/// How a test server treats each connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Echo every text message back, after `delay`.
    Echo { delay: Duration },
    /// Read one message, then drop the TCP connection without a close frame.
    Drop,
    /// Read one message, answer it, then close with this code.
    CloseWith(u16),
}

#[derive(Default)]
struct Seen {
    open: AtomicU64,
    peak: AtomicU64,
    accepted: AtomicU64,
}

impl Seen {
    fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }
}

/// A WebSocket server on its own thread and runtime (its own event loop, as a real
/// server would be); stopped when the test process ends.
fn ws_server(behaviour: Behaviour) -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let seen = s2.clone();
                tokio::spawn(async move {
                    let config = WebSocketConfig::default()
                        .read_buffer_size(4096)
                        .write_buffer_size(0);
                    let Ok(mut ws) =
                        tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await
                    else {
                        return;
                    };
                    seen.accepted.fetch_add(1, Ordering::SeqCst);
                    let n = seen.open.fetch_add(1, Ordering::SeqCst) + 1;
                    seen.peak.fetch_max(n, Ordering::SeqCst);
                    serve(&mut ws, behaviour).await;
                    seen.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
    });
    (rx.recv().unwrap(), seen)
}

async fn serve(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, b: Behaviour) {
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(t) = msg else {
            if matches!(msg, Message::Close(_)) {
                break;
            }
            continue;
        };
        match b {
            Behaviour::Echo { delay } => {
                tokio::time::sleep(delay).await;
                if ws.send(Message::Text(t)).await.is_err() {
                    break;
                }
            }
            // Dropping the stream closes the socket with no close frame.
            Behaviour::Drop => return,
            Behaviour::CloseWith(code) => {
                let _ = ws.send(Message::Text(t)).await;
                let _ = ws
                    .close(Some(CloseFrame {
                        code: CloseCode::from(code),
                        reason: "".into(),
                    }))
                    .await;
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
        }
    }
}

/// A plan of WebSocket users only, against `addr`.
fn ws_plan(addr: SocketAddr, load: &str, ws: &str, criteria: &str) -> gauntlet::scenario::Plan {
    let src = format!(
        r#"
name = "ws test"
seed = 7
criteria = [{criteria}]
[target]
base_url = "http://{addr}"
allow_hosts = ["127.0.0.1"]
[load]
{load}
[[ws]]
url = "ws://{addr}/ws"
{ws}
"#
    );
    match gauntlet::scenario::load_str(std::path::Path::new("ws.toml"), &src) {
        Ok(p) => p,
        Err(e) => panic!("invalid test plan:\n{e}\n{src}"),
    }
}

fn totals(out: &Outcome) -> &WsTotals {
    assert_eq!(out.result, Ok(()));
    out.record
        .ws
        .as_ref()
        .expect("the WebSocket users sent their figures")
}

fn graded(plan: &gauntlet::scenario::Plan, out: &Outcome) -> gauntlet::grade::Verdict {
    gauntlet::grade::grade(plan, &out.record)
}

#[test]
fn echo_round_trips_are_measured_and_checks_pass_or_fail() {
    let (addr, seen) = ws_server(Behaviour::Echo {
        delay: Duration::ZERO,
    });
    let plan = ws_plan(
        addr,
        r#"stages = [{ duration = "1500ms", users = 4 }]"#,
        r#"name = "echo"
messages = [
  { send = '{"user": "{{user.id}}", "word": "{{fake.word}}"}', expect = { json = "/user" }, timeout = "2s" },
  { send = '{"kind": "ping", "n": 7}', expect = { json = "/n", equals = 7 }, timeout = "2s", extract = [{ var = "kind", json = "/kind" }] },
  { send = "again {{kind}}", expect = { contains = "again ping" }, timeout = "2s" },
]
hold = "100ms"
"#,
        r#""ws.errors.rate == 0%", "ws.latency.p95 < 1s", "ws.connections.peak >= 4", "ws.closes.abnormal == 0""#,
    );
    let out = run_load(plan.clone());
    let t = totals(&out);
    assert!(t.connects >= 4, "connects {}", t.connects);
    assert_eq!(t.connect_failures, 0, "{:?}", t.reasons);
    assert_eq!(t.message_failures, 0, "{:?}", t.reasons);
    assert!(t.messages >= 12, "messages {}", t.messages);
    // Every expected reply matched, so every message has its round trip.
    assert_eq!(t.rtt.len(), t.messages);
    assert_eq!(t.peak, 4);
    assert_eq!(t.abnormal_closes, 0, "{:?}", t.reasons);
    assert!(seen.accepted.load(Ordering::SeqCst) >= 4);
    let v = graded(&plan, &out);
    assert!(v.passed, "{:#?}", v);
    // WebSocket users are users: the peak counts them.
    assert_eq!(out.record.users_peak, 4);

    // A wrong expectation: every message times out, the error rate says so.
    let plan = ws_plan(
        addr,
        r#"stages = [{ duration = "1s", users = 2 }]"#,
        r#"name = "wrong"
messages = [{ send = "hello", expect = { contains = "goodbye" }, timeout = "200ms" }]
"#,
        r#""ws.errors.rate == 0%""#,
    );
    let out = run_load(plan.clone());
    let t = totals(&out);
    assert!(t.message_failures > 0 && t.message_failures == t.messages);
    assert!(t.rtt.is_empty());
    let reason = t.reasons.keys().next().cloned().unwrap_or_default();
    assert!(
        reason.starts_with("no matching reply within 200ms: last check failed: body lacks"),
        "{reason}"
    );
    let v = graded(&plan, &out);
    assert!(!v.passed);
    let c = &v.criteria[0];
    assert!(!c.passed);
    let rate = match c.measured {
        Some(gauntlet::metric::Quantity::Percent(p)) => p,
        ref other => panic!("{other:?}"),
    };
    assert!(rate > 0.0, "{rate}");
}

#[test]
fn a_reply_delayed_50ms_shows_in_the_median() {
    let (addr, _) = ws_server(Behaviour::Echo {
        delay: Duration::from_millis(50),
    });
    let plan = ws_plan(
        addr,
        r#"stages = [{ duration = "1500ms", users = 3 }]"#,
        r#"name = "slow"
messages = [{ send = "x{{iteration}}", expect = { contains = "x" }, timeout = "2s" }]
"#,
        r#""ws.latency.p50 >= 50ms""#,
    );
    let out = run_load(plan.clone());
    let t = totals(&out);
    assert!(t.rtt.len() >= 3, "{}", t.rtt.len());
    let p50 = t.rtt.value_at_quantile(0.5);
    assert!(p50 >= 50_000, "p50 {p50}us");
    assert!(p50 < 1_000_000, "p50 {p50}us");
    assert!(graded(&plan, &out).passed);
}

#[test]
fn a_dropped_connection_is_an_abnormal_close_and_a_normal_one_is_not() {
    let (addr, _) = ws_server(Behaviour::Drop);
    let plan = ws_plan(
        addr,
        r#"stages = [{ duration = "1s", users = 2 }]"#,
        r#"name = "dropped"
messages = [{ send = "hello", expect = { contains = "hello" }, timeout = "2s" }]
"#,
        r#""ws.closes.abnormal == 0""#,
    );
    let out = run_load(plan.clone());
    let t = totals(&out);
    assert!(t.abnormal_closes > 0, "{:?}", t.reasons);
    assert_eq!(t.abnormal_closes, t.message_failures);
    assert!(
        t.reasons
            .keys()
            .any(|r| r.contains("without a close frame") || r.contains("reset")),
        "{:?}",
        t.reasons
    );
    assert!(!graded(&plan, &out).passed);

    // Closed with 1000 after the reply: nothing abnormal. With 4000: abnormal.
    for (code, abnormal) in [(1000u16, false), (4000, true)] {
        let (addr, _) = ws_server(Behaviour::CloseWith(code));
        let plan = ws_plan(
            addr,
            r#"stages = [{ duration = "1s", users = 2 }]"#,
            r#"name = "closing"
messages = [{ send = "hello", expect = { contains = "hello" }, timeout = "2s" }]
hold = "5s"
"#,
            r#""ws.closes.abnormal == 0""#,
        );
        let out = run_load(plan.clone());
        let t = totals(&out);
        assert!(t.connects >= 2);
        assert_eq!(t.message_failures, 0, "{:?}", t.reasons);
        assert_eq!(
            t.abnormal_closes > 0,
            abnormal,
            "code {code}: {:?}",
            t.reasons
        );
        assert_eq!(graded(&plan, &out).passed, !abnormal, "code {code}");
    }
}

#[test]
fn http_and_websocket_users_share_the_ramp_against_the_demo_api() {
    let _g = goose_lock();
    // The API pings every 200ms and drops a client silent for 600ms: users holding
    // 1.5s stay only if they answer the pings.
    let (_api, base) = demo::start_api(
        None,
        &["--ws-heartbeat", "200ms", "--ws-idle-timeout", "600ms"],
    );
    let host = base.trim_start_matches("http://");
    let src = format!(
        r#"
name = "mixed"
seed = 3
criteria = ["errors.rate == 0%", "ws.errors.rate == 0%", "ws.latency.p99 < 1s", "users.peak >= 6", "ws.closes.abnormal == 0"]
[target]
base_url = "{base}"
allow_hosts = ["127.0.0.1"]
[load]
think_time = "50ms"
stages = [{{ duration = "1s", users = 6 }}, {{ duration = "1s", users = 6 }}]
[[requests]]
name = "list"
path = "/api/items"
checks = [{{ status = 200 }}]
[[ws]]
name = "chat"
url = "ws://{host}/ws"
weight = 2
messages = [{{ send = "hello {{{{user.id}}}} {{{{fake.word}}}}", expect = {{ contains = "hello" }}, timeout = "2s" }}]
hold = "1500ms"
"#
    );
    let plan = gauntlet::scenario::load_str(std::path::Path::new("mixed.toml"), &src)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = run_load(plan.clone());
    let t = totals(&out);
    // Weights 1 (HTTP) : 2 (ws) of 6 users: 2 HTTP users, 4 WebSocket users.
    assert_eq!(t.peak, 4, "{:?}", t.reasons);
    assert!(out.record.total.count > 0);
    assert!(
        t.rtt.len() >= 4 && t.message_failures == 0,
        "{:?}",
        t.reasons
    );
    let v = graded(&plan, &out);
    assert!(v.passed, "{v:#?}");
    assert_eq!(t.abnormal_closes, 0, "{:?}", t.reasons);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let idle = rt.block_on(demo::metric(
        &demo::http(),
        &base,
        "demo_ws_idle_closed_total",
    ));
    assert_eq!(idle, Some(0.0), "the API dropped silent WebSocket clients");
    let total = rt.block_on(demo::metric(
        &demo::http(),
        &base,
        "demo_ws_connections_total",
    ));
    assert!(total.is_some_and(|n| n >= 4.0), "{total:?}");
}

#[test]
fn five_thousand_websocket_users_are_held_open() {
    // The client and the server each hold 5000 sockets in this process.
    if let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        if soft < hard {
            let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard);
        }
        assert!(
            hard >= 11_000,
            "the hard open-files limit {hard} is too low for this test"
        );
    }
    let (addr, seen) = ws_server(Behaviour::Echo {
        delay: Duration::ZERO,
    });
    let plan = ws_plan(
        addr,
        r#"timeout = "20s"
stages = [{ duration = "6s", users = 5000 }, { duration = "6s", users = 5000 }]"#,
        r#"name = "held"
messages = [{ send = "hi {{user.id}}", expect = { contains = "hi" }, timeout = "20s" }]
hold = "60s"
"#,
        r#""ws.connections.peak >= 5000", "ws.errors.rate == 0%""#,
    );
    let t0 = Instant::now();
    let out = run_load(plan.clone());
    let t = totals(&out);
    eprintln!(
        "5000 ws users: client peak {}, server peak {}, {} connects, {} messages, rtt p50 {}us p99 {}us, took {:?}",
        t.peak,
        seen.peak(),
        t.connects,
        t.messages,
        t.rtt.value_at_quantile(0.5),
        t.rtt.value_at_quantile(0.99),
        t0.elapsed()
    );
    assert_eq!(t.connect_failures, 0, "{:?}", t.reasons);
    assert!(t.peak >= 5000, "client peak {}: {:?}", t.peak, t.reasons);
    assert!(
        seen.peak() >= 5000,
        "server saw at most {} at once",
        seen.peak()
    );
    assert_eq!(t.message_failures, 0, "{:?}", t.reasons);
    assert!(graded(&plan, &out).passed);
    // Bounded: the stages (12s) plus the closing grace.
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
}

/// A wss:// echo server with a certificate of 127.0.0.1 signed by a fresh CA (returned
/// as PEM); it accepts the `chat.v1` subprotocol and keeps the `x-client` header it saw.
// The handshake callback's error type is tungstenite's own (a whole HTTP response).
#[allow(clippy::result_large_err)]
fn wss_server() -> (SocketAddr, String, Arc<std::sync::Mutex<Vec<String>>>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let headers = Arc::new(std::sync::Mutex::new(Vec::new()));
    let h2 = headers.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, headers) = (acceptor.clone(), h2.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    use tokio_tungstenite::tungstenite::handshake::server::{
                        ErrorResponse, Request, Response,
                    };
                    let cb =
                        |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
                            if let Some(v) = req.headers().get("x-client") {
                                headers
                                    .lock()
                                    .unwrap()
                                    .push(v.to_str().unwrap_or("").to_string());
                            }
                            if req.headers().get("sec-websocket-protocol").is_some() {
                                resp.headers_mut()
                                    .insert("sec-websocket-protocol", "chat.v1".parse().unwrap());
                            }
                            Ok(resp)
                        };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tls, cb).await else {
                        return;
                    };
                    while let Some(Ok(msg)) = ws.next().await {
                        if let Message::Text(t) = msg {
                            if ws.send(Message::Text(t)).await.is_err() {
                                break;
                            }
                        }
                    }
                });
            }
        });
    });
    (rx.recv().unwrap(), ca.pem(), headers)
}

#[test]
fn wss_uses_target_tls_and_sends_headers_and_the_subprotocol() {
    let (addr, ca_pem, headers) = wss_server();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let scenario = |tls: &str| {
        format!(
            r#"
name = "wss"
seed = 1
[target]
base_url = "https://{addr}"
allow_hosts = ["127.0.0.1"]
{tls}
[load]
stages = [{{ duration = "1s", users = 2 }}]
[[ws]]
name = "secure"
url = "wss://{addr}/ws"
subprotocol = "chat.v1"
headers = {{ x-client = "user-{{{{user.id}}}}" }}
messages = [{{ send = "hi", expect = {{ contains = "hi" }}, timeout = "2s" }}]
hold = "100ms"
"#
        )
    };
    let trusted = format!("tls = {{ ca = \"{}\" }}", ca.display());
    let plan = gauntlet::scenario::load_str(&dir.path().join("t.toml"), &scenario(&trusted))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = run_load(plan);
    let t = totals(&out);
    assert!(
        t.connects >= 2 && t.connect_failures == 0,
        "{:?}",
        t.reasons
    );
    assert!(
        t.rtt.len() >= 2 && t.message_failures == 0,
        "{:?}",
        t.reasons
    );
    let seen = headers.lock().unwrap().clone();
    assert!(seen.iter().any(|h| h == "user-1"), "{seen:?}");
    assert!(seen.iter().any(|h| h == "user-2"), "{seen:?}");

    // Without the CA the certificate is refused: every connect fails, with the reason.
    let plan = gauntlet::scenario::load_str(&dir.path().join("t.toml"), &scenario(""))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = run_load(plan.clone());
    let t = totals(&out);
    assert!(t.connects > 0 && t.connect_failures == t.connects);
    assert!(
        t.reasons.keys().any(|r| r.starts_with("tls: ")),
        "{:?}",
        t.reasons
    );
    let v = gauntlet::grade::grade(&plan, &out.record);
    assert!(
        v.problems
            .iter()
            .any(|p| p.starts_with("no WebSocket connection succeeded")),
        "{v:#?}"
    );
}
