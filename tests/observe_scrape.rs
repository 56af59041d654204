//! Prometheus scrapes through `observe::Observers`: against an in-process server that can
//! stall (like a SIGSTOPped process: the connection is accepted, nothing answers), and
//! against the real demo pipeline on a real Redis, SIGSTOPped. Freshness must keep growing
//! while the scrape cannot answer, and the grader must read it.

#[path = "common/demo.rs"]
mod demo;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use gauntlet::event::EventStream;
use gauntlet::event::{EventKind, EventSink, Level};
use gauntlet::observe::Observers;
use gauntlet::record::Recorder;
use gauntlet::scenario::{load_str, Plan};
use nix::sys::signal::Signal;

fn plan(services: &str) -> Plan {
    // No load is sent: the target only needs to be a valid loopback URL.
    let target = demo::free_port();
    let src = format!(
        r#"
name = "observe"
criteria = ["pipeline.freshness.max < 3s", "duplicates.records == 0"]
[target]
base_url = "http://127.0.0.1:{target}"
allow_hosts = ["127.0.0.1"]
{services}
"#
    );
    load_str(Path::new("observe.toml"), &src).unwrap_or_else(|e| panic!("{e}"))
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[derive(Debug, Default)]
struct Seen {
    /// (run-clock seconds, service, name, value)
    metrics: Vec<(f64, String, String, f64)>,
    notices: Vec<(Level, String)>,
}

impl Seen {
    fn values(&self, service: &str, name: &str) -> Vec<f64> {
        self.metrics
            .iter()
            .filter(|m| m.1 == service && m.2 == name)
            .map(|m| m.3)
            .collect()
    }
}

/// Every event so far, fed to `rec` too.
fn drain(rx: &mut EventStream, rec: &mut Recorder, seen: &mut Seen) {
    while let Ok(ev) = rx.try_recv() {
        rec.record(&ev);
        let at = ev.at;
        match ev.kind {
            EventKind::Metric {
                service,
                name,
                value,
            } => seen.metrics.push((at.as_secs_f64(), service, name, value)),
            EventKind::Notice { level, message } => seen.notices.push((level, message)),
            _ => {}
        }
    }
}

/// Drain events until `done` holds for what was seen; panics after `timeout`.
async fn wait_for(
    rx: &mut EventStream,
    rec: &mut Recorder,
    seen: &mut Seen,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Seen) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        drain(rx, rec, seen);
        if done(seen) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; seen: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn last(v: &[f64]) -> Option<f64> {
    v.last().copied()
}

fn peak(v: &[f64]) -> f64 {
    v.iter().cloned().fold(0.0, f64::max)
}

struct Fake {
    stalled: AtomicBool,
    stamp_ms: AtomicU64,
}

async fn fake_metrics(State(f): State<Arc<Fake>>) -> String {
    if f.stalled.load(Ordering::SeqCst) {
        // Like a stopped process: never answers.
        std::future::pending::<()>().await;
    }
    format!(
        "# TYPE app_last_sync_timestamp_seconds gauge\n\
         app_last_sync_timestamp_seconds {}\n\
         app_duplicate_records 0\n\
         requests_total{{route=\"a\"}} 3\n\
         requests_total{{route=\"b\"}} 4\n\
         ignored_metric 1\n",
        f.stamp_ms.load(Ordering::SeqCst) as f64 / 1000.0
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_grows_while_a_stalled_service_cannot_answer() {
    let fake = Arc::new(Fake {
        stalled: AtomicBool::new(false),
        stamp_ms: AtomicU64::new((now_unix() * 1000.0) as u64),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route("/metrics", get(fake_metrics))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    // The "sync loop" of the fake service: a fresh stamp every 100ms unless stalled.
    let ticker = fake.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if !ticker.stalled.load(Ordering::SeqCst) {
                ticker
                    .stamp_ms
                    .store((now_unix() * 1000.0) as u64, Ordering::SeqCst);
            }
        }
    });

    let plan = plan(&format!(
        r#"
[[services]]
name = "app"
managed = false
metrics = {{ url = "http://127.0.0.1:{port}/metrics", interval = "200ms", keep = ["app_duplicate_records", "requests_total"], freshness = "app_last_sync_timestamp_seconds" }}
"#
    ));
    let (events, mut rx) = EventSink::new(Instant::now());
    let mut rec = Recorder::new(&plan);
    let mut seen = Seen::default();
    let obs = Observers::start(&plan.observers, events.clone()).await;
    assert_eq!(obs.scrapers(), 1);
    assert!(!obs.canary_written());

    const F: &str = "pipeline_freshness_seconds";
    wait_for(
        &mut rx,
        &mut rec,
        &mut seen,
        Duration::from_secs(20),
        "4 scrapes",
        |s| s.values("app", F).len() >= 4,
    )
    .await;
    let fresh = seen.values("app", F);
    assert!(fresh.iter().all(|f| *f < 1.0), "{fresh:?}");
    let b = seen.values("app", "requests_total{route=\"b\"}");
    assert!(!b.is_empty() && b.iter().all(|v| *v == 4.0), "{b:?}");
    assert!(seen.values("app", "ignored_metric").is_empty());
    assert!(seen
        .values("app", "app_last_sync_timestamp_seconds")
        .is_empty());

    // Stall: every scrape times out, freshness keeps growing, past the criterion's 3s.
    fake.stalled.store(true, Ordering::SeqCst);
    wait_for(
        &mut rx,
        &mut rec,
        &mut seen,
        Duration::from_secs(30),
        "freshness past 3.2s and 5 failed scrapes",
        |s| {
            peak(&s.values("app", F)) >= 3.2 && last(&s.values("app", "scrape_errors")) >= Some(5.0)
        },
    )
    .await;
    let warns: Vec<_> = seen
        .notices
        .iter()
        .filter(|(l, m)| *l == Level::Warn && m.contains("scrape of `app` metrics failed"))
        .collect();
    assert_eq!(
        warns.len(),
        1,
        "one notice per failure streak: {:?}",
        seen.notices
    );

    // It answers again: freshness drops, a notice says so.
    fake.stalled.store(false, Ordering::SeqCst);
    wait_for(
        &mut rx,
        &mut rec,
        &mut seen,
        Duration::from_secs(20),
        "fresh data again",
        |s| {
            last(&s.values("app", F)).is_some_and(|f| f < 1.0)
                && s.notices.iter().any(|(_, m)| m.contains("answer again"))
        },
    )
    .await;
    obs.finish().await;
    drop(events);
    drain(&mut rx, &mut rec, &mut seen);
    let after = seen.values("app", F);
    assert!(*after.last().unwrap() < 1.0, "{after:?}");

    // The grader reads both figures.
    let record = rec.finish();
    let v = gauntlet::grade::grade(&plan, &record);
    let fresh = &v.criteria[0];
    assert!(!fresh.passed, "a 3s stall fails `< 3s`: {fresh:?}");
    let dup = &v.criteria[1];
    assert!(dup.passed, "{dup:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_never_answers_has_growing_freshness_and_a_notice() {
    // Nothing listens here.
    let port = demo::free_port();
    let plan = plan(&format!(
        r#"
[[services]]
name = "gone"
managed = false
metrics = {{ url = "http://127.0.0.1:{port}/metrics", interval = "200ms", freshness = "x_last_sync_timestamp_seconds" }}
"#
    ));
    let (events, mut rx) = EventSink::new(Instant::now());
    let mut rec = Recorder::new(&plan);
    let mut seen = Seen::default();
    let obs = Observers::start(&plan.observers, events.clone()).await;
    const F: &str = "pipeline_freshness_seconds";
    wait_for(
        &mut rx,
        &mut rec,
        &mut seen,
        Duration::from_secs(20),
        "5 scrapes, freshness past 1.2s, a notice",
        |s| {
            s.values("gone", F).len() >= 5
                && last(&s.values("gone", F)) >= Some(1.2)
                && s.notices
                    .iter()
                    .any(|(l, m)| *l == Level::Warn && m.contains("connect"))
        },
    )
    .await;
    obs.finish().await;
    drop(events);
    drain(&mut rx, &mut rec, &mut seen);
    let fresh = seen.values("gone", F);
    assert!(fresh.windows(2).all(|w| w[1] >= w[0]), "{fresh:?}");
    assert!(*fresh.last().unwrap() >= 1.2, "{fresh:?}");
}

/// The real demo pipeline, SIGSTOPped: its scrape times out, freshness keeps growing from
/// the last sync it reported; SIGCONT: it syncs again and freshness falls back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_pipeline_sigstop_freshness_grows() {
    let redis = demo::Redis::start(&[]);
    let (pipe, base) = demo::start_pipeline("p1", &redis.url(), &["--interval", "200ms"]);
    let c = demo::http();
    demo::wait_healthy(&c, &base).await;
    let plan = plan(&format!(
        r#"
[[services]]
name = "pipeline"
managed = false
metrics = {{ url = "{base}/metrics", interval = "250ms", timeout = "250ms", keep = ["pipeline_sink_duplicate_records"], freshness = "pipeline_last_sync_timestamp_seconds" }}
"#
    ));
    let (events, mut rx) = EventSink::new(Instant::now());
    let mut rec = Recorder::new(&plan);
    let mut seen = Seen::default();
    let obs = Observers::start(&plan.observers, events.clone()).await;
    const F: &str = "pipeline_freshness_seconds";
    const DUP: &str = "pipeline_sink_duplicate_records";
    wait_for(
        &mut rx,
        &mut rec,
        &mut seen,
        Duration::from_secs(20),
        "fresh data and the duplicates gauge",
        |s| {
            last(&s.values("pipeline", F)).is_some_and(|f| f < 1.5)
                && !s.values("pipeline", DUP).is_empty()
        },
    )
    .await;
    assert_eq!(seen.values("pipeline", DUP).last(), Some(&0.0));

    // SIGSTOP until freshness is well past the criterion's 3s, then SIGCONT.
    pipe.signal(Signal::SIGSTOP);
    wait_for(
        &mut rx,
        &mut rec,
        &mut seen,
        Duration::from_secs(30),
        "freshness past 3.5s while stopped",
        |s| peak(&s.values("pipeline", F)) >= 3.5,
    )
    .await;
    pipe.signal(Signal::SIGCONT);

    // It syncs again: freshness falls back.
    let n = seen.values("pipeline", F).len();
    wait_for(
        &mut rx,
        &mut rec,
        &mut seen,
        Duration::from_secs(20),
        "fresh data after SIGCONT",
        |s| s.values("pipeline", F)[n..].iter().any(|f| *f < 1.5),
    )
    .await;
    obs.finish().await;
    drop(events);
    drain(&mut rx, &mut rec, &mut seen);
    let after = seen.values("pipeline", F);
    assert!(*after.last().unwrap() < 1.5, "{after:?}");
    let v = gauntlet::grade::grade(&plan, &rec.finish());
    assert!(!v.criteria[0].passed, "{:?}", v.criteria[0]);
    assert!(v.criteria[1].passed, "{:?}", v.criteria[1]);
}
