//! The open model (our arrival-rate scheduler) against a real axum server on loopback.
//! Bounds are generous: these run on a loaded 2-core machine.

mod load_support;

use std::time::Duration;

use gauntlet::event::EventKind;
use load_support::*;

#[test]
fn constant_rate_starts_every_iteration_and_stops_on_time() {
    let srv = start_server();
    let p = plan(
        &srv.base(),
        r#"model = "open"
start_rate = 50
stages = [{ duration = "2s", rate = 50 }]"#,
        r#"
[[requests]]
name = "ok"
path = "/ok"
"#,
    );
    let out = run_load(p);
    assert_eq!(out.result, Ok(()));
    // 50/s for 2s: exactly 100 iterations are due.
    assert_eq!(out.record.total.count + out.record.dropped, 100);
    assert_eq!(out.record.dropped, 0);
    assert_eq!(
        out.record.total.errors, 0,
        "{:?}",
        out.record.total.error_reasons
    );
    assert_eq!(srv.hits(), 100);
    assert!(
        out.took >= Duration::from_millis(1900) && out.took < Duration::from_secs(8),
        "took {:?}",
        out.took
    );
    // Connections are reused across iterations (a handful, not one per iteration).
    assert!(srv.connections() < 50, "{} connections", srv.connections());
    assert_eq!(out.last_users(), Some(0));
    assert_eq!(out.record.expected_interval_us, None);
    for r in out.requests() {
        assert!(r.latency_us >= r.service_us);
    }
}

#[test]
fn a_slow_server_and_few_slots_drop_iterations() {
    let srv = start_server();
    let p = plan(
        &srv.base(),
        r#"model = "open"
start_rate = 40
max_in_flight = 2
stages = [{ duration = "2s", rate = 40 }]"#,
        r#"
[[requests]]
name = "slow"
path = "/slow?ms=300"
"#,
    );
    let out = run_load(p);
    assert_eq!(out.result, Ok(()));
    let rec = &out.record;
    // 80 due; 2 slots of 300ms each serve about 7 a second.
    assert_eq!(rec.total.count + rec.dropped, 80);
    assert!(rec.dropped >= 40, "dropped {}", rec.dropped);
    assert!(rec.total.count >= 4, "{}", rec.total.count);
    assert_eq!(rec.total.errors, 0, "{:?}", rec.total.error_reasons);
    let drops = out
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Dropped))
        .count() as u64;
    assert_eq!(drops, rec.dropped);
    // In flight never above the slots.
    assert!(
        rec.users_peak <= 2 && rec.users_peak >= 1,
        "{}",
        rec.users_peak
    );
    for r in out.requests() {
        assert!(r.service_us >= 290_000, "{}", r.service_us);
        assert!(r.latency_us >= r.service_us);
    }
}

#[test]
fn latency_counts_from_the_intended_start() {
    let srv = start_server();
    let p = plan(
        &srv.base(),
        r#"model = "open"
start_rate = 100
stages = [{ duration = "2s", rate = 100 }]"#,
        r#"
[[requests]]
name = "ok"
path = "/ok"
"#,
    );
    // The generator itself stalls for 400ms (a blocking call on its thread) once the
    // load is under way: iterations due meanwhile start late, and their latency must say
    // so.
    let counters = srv.counters.clone();
    let out = run_load_with(p, None, move |rt| {
        rt.spawn(async move {
            assert!(counters.hits_reach(40, Duration::from_secs(10)).await);
            std::thread::sleep(Duration::from_millis(400));
        });
    });
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.record.total.count + out.record.dropped, 200);
    let late: Vec<(u64, u64)> = out
        .requests()
        .map(|r| (r.latency_us, r.service_us))
        .filter(|(l, s)| l - s >= 200_000)
        .collect();
    assert!(late.len() >= 10, "{} late starts", late.len());
    for r in out.requests() {
        assert!(r.latency_us >= r.service_us);
    }
    // Both are recorded, named by what they time: the corrected histogram (from the
    // intended start) shows the stall, the raw one (the service time) does not.
    assert!(out.record.total.corrected.max() >= 300_000);
    assert!(
        out.record.total.raw.max() < 200_000,
        "raw max {}us",
        out.record.total.raw.max()
    );
}

/// `users.peak` in the open model is the peak of iterations in flight, counted: a server
/// that answers in 50 ms at 100 arrivals/s holds ~5 (Little's law), whatever the slots.
#[test]
fn in_flight_peak_is_counted_not_the_slot_count() {
    let srv = start_server();
    let p = plan(
        &srv.base(),
        r#"model = "open"
start_rate = 100
max_in_flight = 1000
stages = [{ duration = "2s", rate = 100 }]"#,
        r#"
[[requests]]
name = "slow"
path = "/slow?ms=50"
"#,
    );
    let out = run_load_with(p, None, |_| {});
    assert_eq!(out.result, Ok(()));
    let peak = out.record.users_peak;
    assert!((3..=30).contains(&peak), "in-flight peak {peak}");
    // Below saturation both latencies are the server's 50 ms.
    let (raw, cor) = (
        out.record.total.raw.value_at_quantile(0.5),
        out.record.total.corrected.value_at_quantile(0.5),
    );
    assert!((50_000..80_000).contains(&raw), "raw p50 {raw}us");
    assert!(cor >= raw && cor < 90_000, "corrected p50 {cor}us");
}

#[test]
fn needed_values_are_extracted_first() {
    let srv = start_server();
    let p = plan(
        &srv.base(),
        r#"model = "open"
start_rate = 20
stages = [{ duration = "1s", rate = 20 }]"#,
        r#"
[[requests]]
name = "create"
weight = 0
method = "POST"
path = "/items"
json = { name = "{{fake.name}}" }
extract = [{ var = "id", json = "/id" }]

[[requests]]
name = "get"
path = "/items/{{id}}"
checks = [{ status = 200 }]
"#,
    );
    let out = run_load(p);
    assert_eq!(out.result, Ok(()));
    assert_eq!(
        out.record.total.errors, 0,
        "{:?}",
        out.record.total.error_reasons
    );
    // Each iteration is fresh: it creates, then gets.
    assert_eq!(out.stats("create").count, 20);
    assert_eq!(out.stats("get").count, 20);
}

#[test]
fn cancel_stops_promptly() {
    let srv = start_server();
    let p = plan(
        &srv.base(),
        r#"model = "open"
start_rate = 20
stages = [{ duration = "60s", rate = 20 }]"#,
        r#"
[[requests]]
name = "slow"
path = "/slow?ms=20000"
"#,
    );
    // Cancel with iterations in flight (each takes 20s).
    let counters = srv.counters.clone();
    let out = run_load_cancelled(p, move || counters.hits() >= 20);
    assert_eq!(out.result, Ok(()));
    let after = out.after_cancel.expect("cancelled");
    assert!(
        after < Duration::from_secs(4),
        "stopped {after:?} after cancel"
    );
    assert_eq!(out.record.total.errors, 0);
    assert_eq!(out.last_users(), Some(0));
    assert!(out.record.users_peak >= 10);
}
