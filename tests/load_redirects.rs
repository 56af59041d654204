//! Redirects: not followed by default (the 3xx is the response); a request with
//! `follow_redirects` follows them only to hosts on the allow list. A redirect to any
//! other host fails the request and nothing reaches that host: a listener on 127.0.0.2
//! (not allowed) counts the connections it accepts.

mod load_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use load_support::{goose_lock, run_load};

#[derive(Default)]
struct Hits {
    landed: AtomicU64,
    there: AtomicU64,
}

struct Ports {
    other: u16,
    evil: u16,
    hits: Arc<Hits>,
}

/// An axum app on its own thread and runtime, bound to `ip`; the thread ends with the
/// test process.
fn serve(ip: &str, app: impl FnOnce(SocketAddr) -> Router + Send + 'static) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    let ip = ip.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind((ip.as_str(), 0))
                .await
                .unwrap();
            let addr = listener.local_addr().unwrap();
            tx.send(addr).unwrap();
            axum::serve(listener, app(addr)).await.unwrap();
        });
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

fn redirect(code: StatusCode, to: String) -> impl IntoResponse {
    (code, [(header::LOCATION, to)], "")
}

/// A listener that accepts and counts connections, and answers nothing.
fn counting_listener(ip: &str) -> (u16, Arc<AtomicU64>) {
    let l = std::net::TcpListener::bind((ip, 0)).expect("bind 127.0.0.2 (loopback range)");
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicU64::new(0));
    let c = n.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            c.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (port, n)
}

#[test]
fn redirects_follow_only_to_allowed_hosts() {
    let _g = goose_lock();
    let (evil, evil_conns) = counting_listener("127.0.0.2");
    let hits = Arc::new(Hits::default());
    let h = hits.clone();
    let other = serve("127.0.0.1", move |_| {
        Router::new()
            .route(
                "/there",
                get(|State(h): State<Arc<Hits>>| async move {
                    h.there.fetch_add(1, Ordering::SeqCst);
                    "there"
                }),
            )
            .with_state(h)
    });
    let ports = Arc::new(Ports {
        other: other.port(),
        evil,
        hits: hits.clone(),
    });
    let main = serve("127.0.0.1", move |_| {
        Router::new()
            .route(
                "/same",
                get(|| async { redirect(StatusCode::FOUND, "/landed?x=1".into()) }),
            )
            .route(
                "/landed",
                get(|State(p): State<Arc<Ports>>| async move {
                    p.hits.landed.fetch_add(1, Ordering::SeqCst);
                    "landed"
                }),
            )
            .route(
                "/to-allowed",
                get(|State(p): State<Arc<Ports>>| async move {
                    redirect(
                        StatusCode::TEMPORARY_REDIRECT,
                        format!("http://localhost:{}/there", p.other),
                    )
                }),
            )
            .route(
                "/to-evil",
                get(|State(p): State<Arc<Ports>>| async move {
                    redirect(
                        StatusCode::FOUND,
                        format!("http://127.0.0.2:{}/evil", p.evil),
                    )
                }),
            )
            .route(
                "/loop",
                get(|| async { redirect(StatusCode::FOUND, "/loop".into()) }),
            )
            .with_state(ports)
    });
    let src = format!(
        r#"
name = "redirects"
seed = 3
[target]
base_url = "http://{main}"
allow_hosts = ["127.0.0.1", "localhost"]
[load]
think_time = "20ms"
stages = [{{ duration = "0s", users = 1 }}, {{ duration = "1s", users = 1 }}]

[[requests]]
name = "not followed"
path = "/same"
checks = [{{ status = 302 }}]

[[requests]]
name = "same origin"
path = "/same"
follow_redirects = true
checks = [{{ status = 200 }}, {{ body_contains = "landed" }}]

[[requests]]
name = "allowed host"
path = "/to-allowed"
follow_redirects = 1
checks = [{{ status = 200 }}, {{ body_contains = "there" }}]

[[requests]]
name = "disallowed host"
path = "/to-evil"
follow_redirects = true

[[requests]]
name = "loop"
path = "/loop"
follow_redirects = 3
"#
    );
    let plan = gauntlet::scenario::load_str(std::path::Path::new("r.toml"), &src)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = run_load(plan);
    assert_eq!(out.result, Ok(()));
    let ok = |name: &str| {
        let s = out.stats(name);
        assert!(s.count > 0, "{name} never ran");
        assert_eq!(s.errors, 0, "{name}: {:?}", s.error_reasons);
        s.count
    };
    ok("not followed");
    let same = ok("same origin");
    let allowed = ok("allowed host");
    // Only the followed requests landed; each one once.
    assert_eq!(hits.landed.load(Ordering::SeqCst), same);
    assert_eq!(hits.there.load(Ordering::SeqCst), allowed);
    let evil_stats = out.stats("disallowed host");
    assert!(evil_stats.count > 0);
    assert_eq!(evil_stats.errors, evil_stats.count);
    assert_eq!(
        evil_stats.error_reasons,
        vec![(
            "redirect to 127.0.0.2 refused: not on allow_hosts".to_string(),
            evil_stats.count
        )]
    );
    let loops = out.stats("loop");
    assert_eq!(loops.errors, loops.count);
    assert_eq!(loops.error_reasons[0].0, "more than 3 redirects");
    // Nothing ever connected to the host that is not allowed.
    assert_eq!(evil_conns.load(Ordering::SeqCst), 0);
}

#[test]
fn follow_redirects_is_validated() {
    let errs = |v: &str| {
        let src = format!(
            r#"
name = "t"
[target]
base_url = "http://127.0.0.1:9"
allow_hosts = ["127.0.0.1"]
[load]
stages = [{{ duration = "1s", users = 1 }}]
[[requests]]
name = "a"
path = "/a"
follow_redirects = {v}
"#
        );
        match gauntlet::scenario::load_str(std::path::Path::new("t.toml"), &src) {
            Ok(p) => {
                assert_eq!(p.requests.len(), 1);
                Vec::new()
            }
            Err(e) => {
                e.0.iter()
                    .map(|d| format!("{}:{}: {}", d.line, d.key, d.message))
                    .collect()
            }
        }
    };
    assert!(errs("true").is_empty());
    assert!(errs("5").is_empty());
    assert_eq!(
        errs("50"),
        vec!["11:requests[0].follow_redirects: follow_redirects is at most 20; found 50"]
    );
    let e = errs("\"yes\"");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("true, false or the most redirects to follow"),
        "{e:?}"
    );
    let e = errs("-1");
    assert!(e[0].contains("a count from 0"), "{e:?}");
}
