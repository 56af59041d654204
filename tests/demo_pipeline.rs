//! The demo pipeline against a real Redis: it syncs what the API writes, keeps one active
//! instance (or double-syncs with `no-single-instance`), and fails over from a stalled
//! active instance to its standby (or not, with `no-failover`).

#[path = "common/demo.rs"]
mod demo;

use std::time::Duration;

use demo::{get_json, http, metric, poll, start_api, start_pipeline, wait_healthy, Redis};
use nix::sys::signal::Signal;

/// Appends records to the source stream the way the API does.
fn feed(redis: &Redis, from: usize, n: usize) {
    let mut c = redis.conn();
    for i in from..from + n {
        let json = format!(r#"{{"id":"{i}","name":"rec{i}"}}"#);
        let _: String = redis::cmd("XADD")
            .arg("demo:items:stream")
            .arg("*")
            .arg("id")
            .arg(i.to_string())
            .arg("json")
            .arg(json)
            .query(&mut c)
            .unwrap();
    }
}

async fn sink(c: &reqwest::Client, base: &str) -> serde_json::Value {
    get_json(c, &format!("{base}/sink")).await.expect("/sink")
}

async fn wait_sink(c: &reqwest::Client, base: &str, records: u64) -> serde_json::Value {
    poll(
        Duration::from_secs(60),
        &format!("{records} records in the sink"),
        || async {
            let s = get_json(c, &format!("{base}/sink")).await?;
            (s["records"].as_u64()? >= records).then_some(s)
        },
    )
    .await
}

#[tokio::test]
async fn pipeline_syncs_api_items_and_its_freshness_moves() {
    let redis = Redis::start(&[]);
    let (_api, api) = start_api(Some(&redis.url()), &[]);
    let (_p, pipe) = start_pipeline("p1", &redis.url(), &["--interval", "200ms"]);
    let c = http();
    wait_healthy(&c, &api).await;
    wait_healthy(&c, &pipe).await;

    for i in 0..20 {
        let s = c
            .post(format!("{api}/api/items"))
            .json(&serde_json::json!({ "name": format!("x{i}") }))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s.as_u16(), 201);
    }
    let s = wait_sink(&c, &pipe, 20).await;
    assert_eq!(s["distinct"], 20);
    assert_eq!(s["duplicates"], 0);
    assert_eq!(s["source"], 20);
    assert_eq!(
        metric(&c, &pipe, "pipeline_records_synced_total").await,
        Some(20.0)
    );
    assert_eq!(
        metric(&c, &pipe, "pipeline_sync_failures_total").await,
        Some(0.0)
    );
    // The sink holds the records' data.
    let mut r = redis.conn();
    let json: String = redis::cmd("HGET")
        .arg("demo:sink:data")
        .arg("1")
        .query(&mut r)
        .unwrap();
    assert!(json.contains(r#""name":"x0""#), "{json}");

    let t1 = metric(&c, &pipe, "pipeline_last_sync_timestamp_seconds")
        .await
        .unwrap();
    assert!(t1 > 1.0e9, "a Unix time, got {t1}");
    poll(
        Duration::from_secs(30),
        "the last sync time to move",
        || async {
            let t2 = metric(&c, &pipe, "pipeline_last_sync_timestamp_seconds").await?;
            (t2 > t1).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn second_instance_exits_while_the_first_holds_the_lock() {
    let redis = Redis::start(&[]);
    let (_a, a) = start_pipeline("first", &redis.url(), &["--lock-ttl", "1s"]);
    let c = http();
    wait_healthy(&c, &a).await;
    let mut b = demo::Proc::demo(
        "second",
        &[
            "pipeline",
            "--port",
            "0",
            "--redis",
            &redis.url(),
            "--instance-name",
            "second",
            "--lock-ttl",
            "1s",
        ],
    );
    let status = b
        .wait_exit(Duration::from_secs(30))
        .expect("the duplicate exits");
    assert!(!status.success(), "must exit non-zero");
    let log = b.log();
    assert!(
        log.contains("another pipeline instance holds the lock") && log.contains("first"),
        "unclear message: {log}"
    );
    // The first one is unaffected.
    assert_eq!(metric(&c, &a, "pipeline_active").await, Some(1.0));
}

#[tokio::test]
async fn without_the_lock_two_instances_sync_every_record_twice() {
    let redis = Redis::start(&[]);
    let flags = ["--defect", "no-single-instance", "--interval", "200ms"];
    let (_a, a) = start_pipeline("dup-a", &redis.url(), &flags);
    let (_b, b) = start_pipeline("dup-b", &redis.url(), &flags);
    let c = http();
    wait_healthy(&c, &a).await;
    wait_healthy(&c, &b).await;
    feed(&redis, 1, 25);
    let s = wait_sink(&c, &a, 50).await;
    assert_eq!(s["distinct"], 25);
    assert_eq!(s["duplicates"], 25, "each record written twice: {s}");
    // Both instances did the work.
    assert_eq!(
        metric(&c, &a, "pipeline_records_synced_total").await,
        Some(25.0)
    );
    assert_eq!(
        metric(&c, &b, "pipeline_records_synced_total").await,
        Some(25.0)
    );
}

/// Active + standby with a short lock TTL; the active one is stalled with SIGSTOP.
/// Returns the standby's freshness and takeovers once the outcome shows: without defects
/// after the standby took over and synced what arrived during the stall; with
/// `no-failover` once freshness passed 5 s (five lock lifetimes, long enough for any
/// working standby to have taken over).
async fn stall_active(defects: &[&str]) -> (f64, f64) {
    let redis = Redis::start(&[]);
    let mut flags = vec!["--interval", "200ms", "--lock-ttl", "1s"];
    flags.extend_from_slice(defects);
    let (active, a) = start_pipeline("active", &redis.url(), &flags);
    let c = http();
    wait_healthy(&c, &a).await;
    let mut sflags = flags.clone();
    sflags.push("--standby");
    let (mut standby, s) = start_pipeline("standby", &redis.url(), &sflags);
    wait_healthy(&c, &s).await;
    feed(&redis, 1, 10);
    wait_sink(&c, &s, 10).await;
    assert_eq!(metric(&c, &s, "pipeline_active").await, Some(0.0));

    active.signal(Signal::SIGSTOP);
    // Resume it whatever happens below (the Drop guard also does).
    struct Cont<'a>(&'a demo::Proc);
    impl Drop for Cont<'_> {
        fn drop(&mut self) {
            self.0.signal(Signal::SIGCONT);
        }
    }
    let cont = Cont(&active);

    feed(&redis, 11, 10);
    if !defects.is_empty() {
        // The standby's view of stack-wide freshness grows while nobody syncs.
        let fresh = poll(
            Duration::from_secs(30),
            "freshness to pass 5 s during the stall",
            || async {
                let f = metric(&c, &s, "pipeline_freshness_seconds").await?;
                (f >= 5.0).then_some(f)
            },
        )
        .await;
        let takeovers = metric(&c, &s, "pipeline_takeovers_total").await.unwrap();
        drop(cont);
        return (fresh, takeovers);
    }

    poll(
        Duration::from_secs(30),
        "the standby to take over",
        || async { (metric(&c, &s, "pipeline_active").await? == 1.0).then_some(()) },
    )
    .await;
    // The standby synced what arrived during the stall, and keeps the stack fresh.
    let sk = wait_sink(&c, &s, 20).await;
    assert_eq!(sk["duplicates"], 0);
    let fresh = metric(&c, &s, "pipeline_freshness_seconds").await.unwrap();
    let takeovers = metric(&c, &s, "pipeline_takeovers_total").await.unwrap();
    // The stalled instance resumes, finds the lock gone to the standby, and stands
    // down without writing again (fencing).
    drop(cont);
    feed(&redis, 21, 10);
    wait_sink(&c, &s, 30).await;
    poll(
        Duration::from_secs(30),
        "the resumed instance to stand by",
        || async { (metric(&c, &a, "pipeline_active").await? == 0.0).then_some(()) },
    )
    .await;
    let sk = sink(&c, &s).await;
    assert_eq!(sk["distinct"], 30);
    assert_eq!(
        sk["duplicates"], 0,
        "a resumed instance double-synced: {sk}"
    );
    standby.wait_log("taking over", Duration::from_secs(5));
    (fresh, takeovers)
}

#[tokio::test]
async fn standby_takes_over_a_stalled_active_instance() {
    let (fresh, takeovers) = stall_active(&[]).await;
    assert_eq!(takeovers, 1.0);
    assert!(
        fresh < 3.0,
        "freshness must stay bounded by about the lock TTL, was {fresh}s"
    );
}

#[tokio::test]
async fn with_no_failover_a_stalled_active_stops_all_syncing() {
    let (fresh, takeovers) = stall_active(&["--defect", "no-failover"]).await;
    assert_eq!(takeovers, 0.0);
    assert!(
        fresh >= 5.0,
        "freshness must grow while the only active instance is stalled, was {fresh}s"
    );
}

#[tokio::test]
async fn restarted_primary_joins_as_standby_after_a_failover() {
    let redis = Redis::start(&[]);
    let flags = ["--interval", "200ms", "--lock-ttl", "1s"];
    let (mut first, a) = start_pipeline("primary", &redis.url(), &flags);
    let c = http();
    wait_healthy(&c, &a).await;
    let mut sflags = flags.to_vec();
    sflags.push("--standby");
    let (_standby, s) = start_pipeline("standby", &redis.url(), &sflags);
    wait_healthy(&c, &s).await;

    // The primary crashes; the standby takes over.
    first.signal(Signal::SIGKILL);
    first.wait_exit(Duration::from_secs(10)).expect("killed");
    poll(
        Duration::from_secs(30),
        "the standby to take over",
        || async { (metric(&c, &s, "pipeline_active").await? == 1.0).then_some(()) },
    )
    .await;

    // A restart policy brings the primary back: it must wait, not exit, and not sync.
    let (mut again, a2) = start_pipeline("primary", &redis.url(), &flags);
    again.wait_log("joining as standby", Duration::from_secs(30));
    wait_healthy(&c, &a2).await;
    assert_eq!(metric(&c, &a2, "pipeline_active").await, Some(0.0));
    feed(&redis, 1, 10);
    let sk = wait_sink(&c, &s, 10).await;
    assert_eq!(sk["duplicates"], 0);
    assert!(again.try_wait().is_none(), "the restarted primary exited");
}

/// The sink validates every record: with `corrupt-records` the transform mangles every
/// 10th one and the sink rejects exactly those; without it every record is valid.
#[tokio::test]
async fn the_sink_rejects_what_corrupt_records_mangles() {
    for (defects, invalid) in [(&[][..], 0.0), (&["--defect", "corrupt-records"][..], 5.0)] {
        let redis = Redis::start(&[]);
        let mut flags = vec!["--interval", "200ms"];
        flags.extend_from_slice(defects);
        let (_p, pipe) = start_pipeline("valid", &redis.url(), &flags);
        let c = http();
        wait_healthy(&c, &pipe).await;
        feed(&redis, 1, 50);
        let seen = poll(Duration::from_secs(60), "50 records checked", || async {
            let ok = metric(&c, &pipe, "pipeline_records_synced_total").await?;
            let bad = metric(&c, &pipe, "pipeline_records_invalid_total").await?;
            (ok + bad >= 50.0).then_some((ok, bad))
        })
        .await;
        assert_eq!(seen, (50.0 - invalid, invalid), "defects {defects:?}");
        let s = sink(&c, &pipe).await;
        assert_eq!(s["distinct"], 50 - invalid as u64, "{s}");
    }
}

/// `--source-rate`: the synthetic upstream appends about that many records a second, and
/// the pipeline keeps up with them.
#[tokio::test]
async fn the_synthetic_source_feeds_at_its_rate() {
    let redis = Redis::start(&[]);
    let (_p, pipe) = start_pipeline("feeder", &redis.url(), &["--source-rate", "2000"]);
    let c = http();
    wait_healthy(&c, &pipe).await;
    let first = poll(Duration::from_secs(30), "first records synced", || async {
        let n = metric(&c, &pipe, "pipeline_records_synced_total").await?;
        (n > 0.0).then_some((n, std::time::Instant::now()))
    })
    .await;
    let later = poll(Duration::from_secs(30), "3s of records synced", || async {
        let n = metric(&c, &pipe, "pipeline_records_synced_total").await?;
        (first.1.elapsed() >= Duration::from_secs(3)).then_some((n, std::time::Instant::now()))
    })
    .await;
    let rate = (later.0 - first.0) / (later.1 - first.1).as_secs_f64();
    // Batches land every 500ms, so a 3s window holds 5 to 7 ticks' worth.
    assert!(
        (1000.0..=3000.0).contains(&rate),
        "synced {rate:.0} records/s"
    );
    assert_eq!(
        metric(&c, &pipe, "pipeline_records_invalid_total").await,
        Some(0.0)
    );
}
