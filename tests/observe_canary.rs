//! The data canary through `observe::Observers`, against a real redis-server (the demo's
//! persistence settings): keys written at the start, Redis crashed (SIGKILL) and started
//! again, keys read back at the end and graded by `data_loss.keys == 0`.

#[path = "common/demo.rs"]
mod demo;

use std::path::Path;
use std::time::{Duration, Instant};

use gauntlet::event::{EventKind, EventSink, Level};
use gauntlet::observe::Observers;
use gauntlet::record::Recorder;
use gauntlet::scenario::{load_str, Plan};
use redis::Commands;

fn plan(canary: &str) -> Plan {
    // No load is sent: the target only needs to be a valid loopback URL.
    let target = demo::free_port();
    let src = format!(
        r#"
name = "canary"
criteria = ["data_loss.keys == 0"]
[target]
base_url = "http://127.0.0.1:{target}"
allow_hosts = ["127.0.0.1"]
[canary]
{canary}
"#
    );
    load_str(Path::new("canary.toml"), &src).unwrap_or_else(|e| panic!("{e}"))
}

struct Outcome {
    passed: bool,
    measured: Option<f64>,
    detail: Option<String>,
    notices: Vec<(Level, String)>,
    loss: Vec<f64>,
}

/// Start the observers, run `during` (the "faults"), finish, grade.
async fn run(plan: Plan, during: impl std::future::Future<Output = ()>) -> Outcome {
    let (events, mut rx) = EventSink::new(Instant::now());
    let obs = Observers::start(&plan.observers, events.clone()).await;
    during.await;
    obs.finish().await;
    drop(events);
    let mut rec = Recorder::new(&plan);
    let mut notices = vec![];
    let mut loss = vec![];
    while let Some(ev) = rx.recv().await {
        rec.record(&ev);
        match ev.kind {
            EventKind::Notice { level, message, .. } => notices.push((level, message)),
            EventKind::Metric {
                service,
                name,
                value,
            } if service == "canary" && name == "data_loss_keys" => loss.push(value),
            _ => {}
        }
    }
    let v = gauntlet::grade::grade(&plan, &rec.finish());
    let c = &v.criteria[0];
    Outcome {
        passed: c.passed,
        measured: c.measured.map(|q| q.value()),
        detail: c.detail.clone(),
        notices,
        loss,
    }
}

fn canary_keys(redis: &demo::Redis, prefix: &str) -> usize {
    let mut c = redis.conn();
    let keys: Vec<String> = c.keys(format!("{prefix}*")).unwrap();
    keys.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_persistence_a_crash_loses_nothing_and_the_keys_are_cleaned_up() {
    let mut redis = demo::Redis::start(&[]);
    let plan = plan(&format!(
        "redis = \"{}\"\nkeys = 50\nprefix = \"t:canary:\"",
        redis.url()
    ));
    let o = run(plan, async {
        assert_eq!(canary_keys(&redis, "t:canary:"), 50);
        redis.crash();
        redis.restart();
    })
    .await;
    assert!(o.passed, "{:?} {:?}", o.detail, o.notices);
    assert_eq!(o.loss, vec![0.0]);
    assert_eq!(o.measured, Some(0.0));
    assert!(
        o.notices
            .iter()
            .any(|(_, m)| m.contains("all 50 keys are there")),
        "{:?}",
        o.notices
    );
    assert_eq!(canary_keys(&redis, "t:canary:"), 0, "deleted at the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_persistence_a_crash_loses_every_key_and_fails() {
    let mut redis = demo::Redis::start(&["redis-no-persistence"]);
    let plan = plan(&format!("redis = \"{}\"\nkeys = 40", redis.url()));
    let o = run(plan, async {
        redis.crash();
        redis.restart();
    })
    .await;
    assert!(!o.passed);
    assert_eq!(o.loss, vec![40.0]);
    assert_eq!(o.measured, Some(40.0));
    assert!(
        o.notices
            .iter()
            .any(|(l, m)| *l == Level::Warn && m.contains("40 of 40 keys are lost")),
        "{:?}",
        o.notices
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_back_waits_for_a_redis_that_is_still_restarting() {
    let mut redis = demo::Redis::start(&[]);
    let plan = plan(&format!(
        "redis = \"{}\"\nkeys = 10\ntimeout = \"20s\"",
        redis.url()
    ));
    // Start needs Redis: it is up; write, then crash it.
    let (events, mut rx) = EventSink::new(Instant::now());
    let obs = Observers::start(&plan.observers, events.clone()).await;
    assert!(obs.canary_written());
    redis.crash();
    // Down when the read-back starts. The test holds Redis's port meanwhile: the first
    // connection it accepts (and drops) is the read-back trying, then Redis comes back.
    let port = redis.port;
    let restarter = std::thread::spawn(move || {
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).expect("hold redis's port");
        l.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match l.accept() {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "the read-back never tried");
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
        drop(l);
        redis.restart();
        redis
    });
    obs.finish().await;
    let _redis = restarter.join().unwrap();
    drop(events);
    let mut loss = vec![];
    let mut notices = vec![];
    while let Some(ev) = rx.recv().await {
        match ev.kind {
            EventKind::Metric { name, value, .. } if name == "data_loss_keys" => loss.push(value),
            EventKind::Notice { message, .. } => notices.push(message),
            _ => {}
        }
    }
    assert_eq!(loss, vec![0.0], "{notices:?}");
    assert!(
        notices.iter().any(|m| m.contains("Redis answered after")),
        "{notices:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_never_comes_back_fails_for_missing_data_within_the_timeout() {
    let mut redis = demo::Redis::start(&[]);
    let plan = plan(&format!(
        "redis = \"{}\"\nkeys = 5\ntimeout = \"2s\"",
        redis.url()
    ));
    let t0 = Instant::now();
    let o = run(plan, async {
        redis.crash();
    })
    .await;
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert!(!o.passed);
    assert_eq!(o.measured, None);
    assert!(o.loss.is_empty());
    assert!(
        o.notices
            .iter()
            .any(|(l, m)| *l == Level::Error && m.contains("did not answer within 2s")),
        "{:?}",
        o.notices
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_at_the_start_is_an_error_and_fails_the_criterion() {
    let port = demo::free_port();
    let plan = plan(&format!("redis = \"redis://127.0.0.1:{port}\""));
    let t0 = Instant::now();
    let o = run(plan, async {}).await;
    // Bounded by the write window (10s) plus slack.
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert!(!o.passed);
    assert_eq!(o.measured, None);
    assert!(
        o.notices.iter().any(|(l, m)| *l == Level::Error
            && m.contains("cannot write 100 keys")
            && m.contains("data_loss.keys")),
        "{:?}",
        o.notices
    );
}
