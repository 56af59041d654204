//! `[[flows]]`: ordered user journeys (create → read by the extracted id → delete), run
//! by real users against a real axum server on loopback that logs, per item id, which
//! user did what and in which order.

mod load_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use gauntlet::event::EventKind;
use load_support::{goose_lock, run_load};

/// Per item id: (user, op) in the order the server saw them; op is 'c', 'r' or 'd'.
#[derive(Default)]
struct Log {
    next: AtomicU64,
    items: Mutex<BTreeMap<u64, Vec<(String, char)>>>,
    deleted: Mutex<Vec<u64>>,
}

struct Items {
    addr: SocketAddr,
    log: Arc<Log>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Items {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn user(h: &HeaderMap) -> String {
    h.get("x-user")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_string()
}

/// `POST /items` (201 `{"id": N}`), `GET /items/{id}` (200, 404 once deleted or never
/// created), `DELETE /items/{id}` (204, or 404).
fn start_items() -> Items {
    let log = Arc::new(Log::default());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let l = log.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let app = Router::new()
                .route(
                    "/items",
                    post(|State(l): State<Arc<Log>>, h: HeaderMap| async move {
                        let id = l.next.fetch_add(1, Ordering::SeqCst) + 1;
                        l.items.lock().unwrap().insert(id, vec![(user(&h), 'c')]);
                        (StatusCode::CREATED, Json(serde_json::json!({ "id": id })))
                    }),
                )
                .route(
                    "/items/{id}",
                    get(
                        |State(l): State<Arc<Log>>, h: HeaderMap, Path(id): Path<u64>| async move {
                            // A little work, so each step takes measurable time.
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            let gone = l.deleted.lock().unwrap().contains(&id);
                            match l.items.lock().unwrap().get_mut(&id) {
                                Some(ops) if !gone => {
                                    ops.push((user(&h), 'r'));
                                    (StatusCode::OK, Json(serde_json::json!({ "id": id })))
                                        .into_response()
                                }
                                _ => StatusCode::NOT_FOUND.into_response(),
                            }
                        },
                    )
                    .delete(
                        |State(l): State<Arc<Log>>, h: HeaderMap, Path(id): Path<u64>| async move {
                            let mut deleted = l.deleted.lock().unwrap();
                            match l.items.lock().unwrap().get_mut(&id) {
                                Some(ops) if !deleted.contains(&id) => {
                                    ops.push((user(&h), 'd'));
                                    deleted.push(id);
                                    StatusCode::NO_CONTENT
                                }
                                _ => StatusCode::NOT_FOUND,
                            }
                        },
                    ),
                )
                .with_state(l);
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
        });
    });
    let addr = addr_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    Items {
        addr,
        log,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// The create → read → delete flow; `read_path` lets a test break the second step.
fn crud(read_path: &str) -> String {
    format!(
        r#"
[[requests]]
name = "create item"
method = "POST"
path = "/items"
headers = {{ "x-user" = "{{{{user.id}}}}" }}
json = {{ name = "{{{{fake.name}}}}" }}
extract = [{{ var = "item_id", json = "/id" }}]
checks = [{{ status = 201 }}]

[[requests]]
name = "read item"
path = "{read_path}"
headers = {{ "x-user" = "{{{{user.id}}}}" }}
checks = [{{ status = 200 }}, {{ json = "/id", exists = true }}]

[[requests]]
name = "delete item"
method = "DELETE"
path = "/items/{{{{item_id}}}}"
headers = {{ "x-user" = "{{{{user.id}}}}" }}
checks = [{{ status = 204 }}]

[[flows]]
name = "crud"
steps = ["create item", "read item", "delete item"]
"#
    )
}

fn plan(srv: &Items, load: &str, rest: &str, criteria: &str) -> gauntlet::scenario::Plan {
    let src = format!(
        r#"
name = "flows"
seed = 11
criteria = [{criteria}]
[target]
base_url = "http://{}"
allow_hosts = ["127.0.0.1"]
[load]
{load}
{rest}
"#,
        srv.addr
    );
    gauntlet::scenario::load_str(std::path::Path::new("flows.toml"), &src)
        .unwrap_or_else(|e| panic!("invalid test plan:\n{e}\n{src}"))
}

/// Every item's log is a prefix of create, read, delete, all by one user; returns how
/// many went the whole way and how many stopped part-way.
fn check_server_log(log: &Log) -> (usize, usize) {
    let items = log.items.lock().unwrap();
    let (mut whole, mut part) = (0, 0);
    for (id, ops) in items.iter() {
        let seq: String = ops.iter().map(|(_, op)| *op).collect();
        assert!("crd".starts_with(&seq), "item {id}: {seq} ({ops:?})");
        let who = &ops[0].0;
        assert_ne!(who, "?", "item {id}: no user header");
        assert!(ops.iter().all(|(u, _)| u == who), "item {id}: {ops:?}");
        if seq == "crd" {
            whole += 1;
        } else {
            part += 1;
        }
    }
    (whole, part)
}

/// Closed model, several users: each runs create → read → delete in order on its own
/// item; every created item is read and deleted by the user that created it, except at
/// most one per user cut by the end of the load; the figures agree with the server.
#[test]
fn closed_users_run_their_flows_in_order() {
    let _g = goose_lock();
    let srv = start_items();
    let p = plan(
        &srv,
        r#"think_time = "5ms"
stages = [{ duration = "0s", users = 4 }, { duration = "2s", users = 4 }]"#,
        &crud("/items/{{item_id}}"),
        r#""flow.errors.rate{name=\"crud\"} == 0%", "flow.count > 5", "flow.latency.p50 > 10ms""#,
    );
    let out = run_load(p.clone());
    assert_eq!(out.result, Ok(()));
    let rec = &out.record;
    assert_eq!(rec.flows.len(), 1);
    let f = &rec.flows[0];
    assert_eq!(f.name, "crud");
    assert_eq!(f.errors, 0, "{:?}", f.error_reasons);
    assert_eq!(rec.total.errors, 0, "{:?}", rec.total.error_reasons);
    let (whole, part) = check_server_log(&srv.log);
    assert!(whole > 5, "{whole} whole flows");
    // Every flow the record counts went the whole way on the server, and the other way
    // round; an item left part-way is a flow the end of the load cut (one per user).
    assert_eq!(f.count, whole as u64);
    assert!(part <= 4, "{part} items left part-way");
    // The steps ran only inside the flow (weight 0 by default): as many creates as items.
    let creates = rec
        .requests
        .iter()
        .find(|r| r.name == "create item")
        .unwrap();
    assert_eq!(creates.count, (whole + part) as u64);
    let deletes = rec
        .requests
        .iter()
        .find(|r| r.name == "delete item")
        .unwrap();
    assert_eq!(deletes.count, whole as u64);
    // Graded from the flow figures.
    let verdict = gauntlet::grade::grade(&p, rec);
    for c in &verdict.criteria {
        assert!(c.passed, "{}: {:?} {:?}", c.source, c.measured, c.detail);
    }
}

/// One user: each flow's latency covers its three steps and the two think times
/// between them (events are in order, so the steps of each flow precede its end).
#[test]
fn flow_latency_covers_its_steps_and_think_times() {
    let _g = goose_lock();
    let srv = start_items();
    let p = plan(
        &srv,
        r#"think_time = "20ms"
stages = [{ duration = "0s", users = 1 }, { duration = "1500ms", users = 1 }]"#,
        &crud("/items/{{item_id}}"),
        "",
    );
    let out = run_load(p);
    assert_eq!(out.result, Ok(()));
    let mut steps: Vec<u64> = Vec::new();
    let mut flows = 0;
    for e in &out.events {
        match &e.kind {
            EventKind::Request(r) => steps.push(r.latency_us),
            EventKind::Flow(f) => {
                assert!(f.error.is_none(), "{:?}", f.error);
                assert_eq!(steps.len(), 3, "steps before this flow: {steps:?}");
                let sum: u64 = steps.iter().sum();
                assert!(
                    f.latency_us >= sum + 40_000,
                    "flow {}us < steps {steps:?} + 2 x 20ms think",
                    f.latency_us
                );
                steps.clear();
                flows += 1;
            }
            _ => {}
        }
    }
    assert!(flows >= 3, "{flows} flows");
    let f = &out.record.flows[0];
    assert_eq!(f.count, flows);
    assert!(f.raw.min() >= 40_000, "{}", f.raw.min());
}

/// A step that fails stops its flow there: the flow counts as failed with the step's
/// name, and the later step is never sent.
#[test]
fn a_failed_step_stops_the_flow() {
    let _g = goose_lock();
    let srv = start_items();
    let p = plan(
        &srv,
        r#"stages = [{ duration = "0s", users = 2 }, { duration = "1s", users = 2 }]"#,
        &crud("/items/0"),
        r#""flow.errors.rate < 50%""#,
    );
    let out = run_load(p.clone());
    assert_eq!(out.result, Ok(()));
    let f = &out.record.flows[0];
    assert!(f.count > 2, "{}", f.count);
    assert_eq!(f.errors, f.count);
    assert_eq!(
        f.error_reasons,
        vec![(r#"step 2 "read item" failed"#.to_string(), f.count)]
    );
    // Nothing was ever deleted: the flow stopped before its third step.
    assert!(srv.log.deleted.lock().unwrap().is_empty());
    let deletes = out
        .record
        .requests
        .iter()
        .find(|r| r.name == "delete item")
        .unwrap();
    assert_eq!(deletes.count, 0);
    let verdict = gauntlet::grade::grade(&p, &out.record);
    assert!(!verdict.criteria[0].passed);
    assert_eq!(
        verdict.criteria[0].detail.as_deref(),
        Some(format!("{} failed flows of {} flows", f.count, f.count).as_str())
    );
}

/// Open model: an iteration is one flow, its latency counted from the intended start.
#[test]
fn open_model_iterations_are_whole_flows() {
    let srv = start_items();
    let p = plan(
        &srv,
        r#"model = "open"
start_rate = 20
max_in_flight = 20
stages = [{ duration = "2s", rate = 20 }]"#,
        &crud("/items/{{item_id}}"),
        "",
    );
    let out = run_load(p);
    assert_eq!(out.result, Ok(()));
    let rec = &out.record;
    let f = &rec.flows[0];
    assert_eq!(
        f.errors, 0,
        "{:?} {:?}",
        f.error_reasons, rec.total.error_reasons
    );
    let (whole, part) = check_server_log(&srv.log);
    assert_eq!(f.count, whole as u64);
    // 40 iterations are due; each one is a whole flow.
    assert!(whole >= 30, "{whole} whole flows, {part} part-way");
    assert_eq!(rec.dropped, 0);
}
