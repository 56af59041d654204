//! Shared by the `load_*` tests: a real axum server on 127.0.0.1 (own thread, own
//! runtime, free port), plans built from TOML text, and a runner that drives
//! `gauntlet::load::run` on a current-thread runtime like the binary does.
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use gauntlet::event::{EventKind, EventSink, Phase, RunEvent};
use gauntlet::record::{Record, Recorder};
use gauntlet::scenario::Plan;
use tokio_util::sync::CancellationToken;

/// goose keeps its killswitch in a global: one goose run at a time per test process.
pub fn goose_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
pub struct Counters {
    pub hits: AtomicU64,
    pub connections: AtomicU64,
    pub created: AtomicU64,
    ids: Mutex<HashSet<u64>>,
}

impl Counters {
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// Poll until the server saw `n` requests; false if `within` passed first.
    pub async fn hits_reach(&self, n: u64, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.hits() < n {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> u64 {
        self.counters.hits.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(serde::Deserialize)]
struct SlowQ {
    ms: u64,
}

fn hit(c: &Counters) {
    c.hits.fetch_add(1, Ordering::SeqCst);
}

/// Routes: `GET /ok`, `POST /items` (201 `{"id": N, "name": ...}`), `GET /items/{id}`
/// (200 or 404), `GET /slow?ms=N`, `GET /status/{code}`, `GET /close` (answers with
/// `Connection: close`).
pub fn start_server() -> Server {
    let counters = Arc::new(Counters::default());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let c = counters.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use axum::serve::ListenerExt;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let cc = c.clone();
            let listener = listener.tap_io(move |_io| {
                cc.connections.fetch_add(1, Ordering::SeqCst);
            });
            let app = Router::new()
                .route(
                    "/ok",
                    get(|State(c): State<Arc<Counters>>| async move {
                        hit(&c);
                        "ok"
                    }),
                )
                .route(
                    "/items",
                    post(
                        |State(c): State<Arc<Counters>>, Json(v): Json<serde_json::Value>| async move {
                            hit(&c);
                            let id = c.created.fetch_add(1, Ordering::SeqCst) + 1;
                            c.ids.lock().unwrap().insert(id);
                            (
                                StatusCode::CREATED,
                                Json(serde_json::json!({"id": id, "name": v.get("name")})),
                            )
                        },
                    ),
                )
                .route(
                    "/items/{id}",
                    get(|State(c): State<Arc<Counters>>, Path(id): Path<u64>| async move {
                        hit(&c);
                        if c.ids.lock().unwrap().contains(&id) {
                            (StatusCode::OK, Json(serde_json::json!({"id": id}))).into_response()
                        } else {
                            StatusCode::NOT_FOUND.into_response()
                        }
                    }),
                )
                .route(
                    "/slow",
                    get(|State(c): State<Arc<Counters>>, Query(q): Query<SlowQ>| async move {
                        hit(&c);
                        tokio::time::sleep(Duration::from_millis(q.ms)).await;
                        "slow"
                    }),
                )
                .route(
                    "/status/{code}",
                    get(|State(c): State<Arc<Counters>>, Path(code): Path<u16>| async move {
                        hit(&c);
                        (StatusCode::from_u16(code).unwrap(), "status")
                    }),
                )
                .route(
                    "/close",
                    get(|State(c): State<Arc<Counters>>| async move {
                        hit(&c);
                        let mut h = HeaderMap::new();
                        h.insert("connection", "close".parse().unwrap());
                        (h, "bye")
                    }),
                )
                .with_state(c);
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
        });
    });
    let addr = addr_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    Server {
        addr,
        counters,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// A plan from the `[load]` table body and the `[[requests]]` tables, against `base`.
pub fn plan(base: &str, load: &str, requests: &str) -> Plan {
    let src = format!(
        r#"
name = "load test"
seed = 7
[target]
base_url = "{base}"
allow_hosts = ["127.0.0.1"]
[load]
{load}
{requests}
"#
    );
    match gauntlet::scenario::load_str(std::path::Path::new("test.toml"), &src) {
        Ok(p) => p,
        Err(e) => panic!("invalid test plan:\n{e}\n{src}"),
    }
}

pub struct Outcome {
    pub record: Record,
    pub events: Vec<RunEvent>,
    /// How long `load::run` took.
    pub took: Duration,
    /// From cancel to the end of `load::run`, when cancelled.
    pub after_cancel: Option<Duration>,
    pub result: Result<(), String>,
}

impl Outcome {
    pub fn requests(&self) -> impl Iterator<Item = &gauntlet::event::RequestDone> {
        self.events.iter().filter_map(|e| match &e.kind {
            EventKind::Request(r) => Some(r),
            _ => None,
        })
    }

    pub fn reasons(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .record
            .total
            .error_reasons
            .iter()
            .map(|(r, _)| r.clone())
            .collect();
        v.sort();
        v
    }

    pub fn stats(&self, name: &str) -> &gauntlet::record::RequestStats {
        self.record
            .requests
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no request {name}"))
    }

    pub fn last_users(&self) -> Option<u32> {
        self.events.iter().rev().find_map(|e| match e.kind {
            EventKind::Users { count } => Some(count),
            _ => None,
        })
    }
}

/// Run the plan's load on a current-thread runtime to its end. Every event is kept
/// (tests are small) and folded by the real recorder.
pub fn run_load(plan: Plan) -> Outcome {
    run_load_with(plan, None, |_| {})
}

/// Run the plan's load and cancel it as soon as `when` says so (polled every 10ms).
pub fn run_load_cancelled(plan: Plan, when: impl Fn() -> bool + Send + 'static) -> Outcome {
    run_load_with(plan, Some(Box::new(when)), |_| {})
}

/// When to cancel the load.
pub type CancelWhen = Box<dyn Fn() -> bool + Send>;

/// As `run_load`, cancelled when `cancel_when` says so, with `side` spawned on the same
/// runtime next to the load (to disturb it).
pub fn run_load_with(
    plan: Plan,
    cancel_when: Option<CancelWhen>,
    side: impl FnOnce(&tokio::runtime::Runtime),
) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    side(&rt);
    let plan = Arc::new(plan);
    let mut recorder = Recorder::new(&plan);
    let (sink, mut rx) = EventSink::new(Instant::now());
    let cancel = CancellationToken::new();
    let (result, took, after_cancel) = rt.block_on(async {
        sink.send(EventKind::Phase(Phase::LoadStarted));
        let t0 = Instant::now();
        let cancelled_at = Arc::new(Mutex::new(None::<Instant>));
        if let Some(when) = cancel_when {
            let c = cancel.clone();
            let at = cancelled_at.clone();
            tokio::spawn(async move {
                while !when() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                *at.lock().unwrap() = Some(Instant::now());
                c.cancel();
            });
        }
        // A hard bound so a hung engine fails the test instead of hanging it.
        let r = tokio::time::timeout(
            plan.load_duration + Duration::from_secs(60),
            gauntlet::load::run(plan.clone(), sink.clone(), cancel.clone()),
        )
        .await;
        let took = t0.elapsed();
        let after = cancelled_at.lock().unwrap().map(|c| c.elapsed());
        sink.send(EventKind::Phase(Phase::LoadFinished));
        let r = match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("load::run did not return".to_string()),
        };
        (r, took, after)
    });
    drop(sink);
    let mut events = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        recorder.record(&ev);
        events.push(ev);
    }
    Outcome {
        record: recorder.finish(),
        events,
        took,
        after_cancel,
        result,
    }
}
