//! The closed model (goose users, our hyper client) against a real axum server on
//! loopback. Bounds are generous: these run on a loaded 2-core machine.

mod load_support;

use std::time::Duration;

use gauntlet::event::EventKind;
use load_support::*;

const OK: &str = r#"
[[requests]]
name = "ok"
path = "/ok"
"#;

#[test]
fn few_users_count_requests_and_stop_on_time() {
    let _g = goose_lock();
    let srv = start_server();
    let p = plan(
        &srv.base(),
        r#"think_time = "50ms"
stages = [{ duration = "1s", users = 5 }, { duration = "2s", users = 5 }, { duration = "1s", users = 0 }]"#,
        OK,
    );
    let out = run_load(p);
    assert_eq!(out.result, Ok(()));
    // 4s of stages; goose needs a moment to start, and in-flight requests get 2s.
    assert!(
        out.took >= Duration::from_millis(3500) && out.took < Duration::from_secs(12),
        "took {:?}",
        out.took
    );
    let rec = &out.record;
    assert_eq!(rec.total.errors, 0, "{:?}", rec.total.error_reasons);
    // Every request the server saw was recorded, and vice versa.
    assert_eq!(rec.total.count, srv.hits());
    // 5 users at ~20 req/s each for ~3s: far more than 20, far fewer than 1000.
    assert!(
        rec.total.count > 20 && rec.total.count < 1000,
        "{}",
        rec.total.count
    );
    assert_eq!(rec.users_peak, 5);
    assert_eq!(out.last_users(), Some(0));
    assert_eq!(rec.total.statuses.get(&200), Some(&rec.total.count));
    // One keep-alive connection per user.
    assert_eq!(srv.connections(), 5);
    // Think time 50ms: the corrected histogram uses it.
    assert_eq!(rec.expected_interval_us, Some(50_000));
    for r in out.requests() {
        assert_eq!(r.latency_us, r.service_us);
        assert!(r.latency_us > 0);
    }
}

#[test]
fn extraction_and_reuse() {
    let _g = goose_lock();
    let srv = start_server();
    let p = plan(
        &srv.base(),
        r#"think_time = "20ms"
stages = [{ duration = "0s", users = 4 }, { duration = "2s", users = 4 }]"#,
        r#"
[[requests]]
name = "create item"
weight = 0
method = "POST"
path = "/items"
json = { name = "{{fake.name}}" }
extract = [{ var = "item_id", json = "/id" }]
checks = [{ status = 201 }]

[[requests]]
name = "get item"
path = "/items/{{item_id}}"
checks = [{ status = 200 }, { json = "/id", exists = true }]
"#,
    );
    let out = run_load(p);
    assert_eq!(out.result, Ok(()));
    let rec = &out.record;
    assert_eq!(rec.total.errors, 0, "{:?}", rec.total.error_reasons);
    let create = out.stats("create item");
    let get = out.stats("get item");
    // Each user creates its item once, then fetches it by id.
    assert_eq!(create.count, 4);
    assert!(get.count > 20, "{}", get.count);
    assert_eq!(get.statuses.get(&200), Some(&get.count));
    assert_eq!(
        srv.counters
            .created
            .load(std::sync::atomic::Ordering::SeqCst),
        4
    );
}

#[test]
fn failed_checks_are_errors_with_reasons() {
    let _g = goose_lock();
    let srv = start_server();
    let p = plan(
        &srv.base(),
        r#"think_time = "10ms"
stages = [{ duration = "0s", users = 3 }, { duration = "2s", users = 3 }]"#,
        r#"
[[requests]]
name = "wrong status"
path = "/ok"
checks = [{ status = 201 }]

[[requests]]
name = "server error"
path = "/status/500"

[[requests]]
name = "not found allowed"
path = "/status/404"
checks = [{ status = 404 }]

[[requests]]
name = "body"
path = "/ok"
checks = [{ body_contains = "abc" }]

[[requests]]
name = "json"
method = "POST"
path = "/items"
json = { name = "y" }
checks = [{ json = "/name", equals = "x" }]

[[requests]]
name = "extract"
method = "POST"
path = "/items"
json = { name = "z" }
extract = [{ var = "nothing", json = "/missing" }]
"#,
    );
    let out = run_load(p);
    assert_eq!(out.result, Ok(()));
    let reason = |name: &str| {
        let s = out.stats(name);
        assert!(s.count > 0, "{name} never ran");
        assert_eq!(s.errors, s.count, "{name}");
        assert_eq!(s.error_reasons.len(), 1, "{name}: {:?}", s.error_reasons);
        s.error_reasons[0].0.clone()
    };
    assert_eq!(
        reason("wrong status"),
        "check failed: status 200, expected 201"
    );
    assert_eq!(reason("server error"), "status 500 (expected 2xx/3xx)");
    assert_eq!(reason("body"), "check failed: body lacks \"abc\"");
    // The value found is hidden unless [report] show_values says otherwise.
    assert_eq!(
        reason("json"),
        "check failed: /name == \"x\", found a string (value hidden)"
    );
    assert_eq!(reason("extract"), "extract nothing: /missing not found");
    let allowed = out.stats("not found allowed");
    assert!(allowed.count > 0);
    assert_eq!(allowed.errors, 0);
    assert_eq!(allowed.statuses.get(&404), Some(&allowed.count));
}

#[test]
fn cancel_stops_promptly() {
    let _g = goose_lock();
    let srv = start_server();
    // Long stages, a slow endpoint (requests in flight when cancel comes) and a long
    // think time: cancel must still end the load within about a second.
    let p = plan(
        &srv.base(),
        r#"think_time = "3s"
stages = [{ duration = "1s", users = 20 }, { duration = "60s", users = 20 }, { duration = "5s", users = 0 }]"#,
        r#"
[[requests]]
name = "slow"
path = "/slow?ms=20000"

[[requests]]
name = "ok"
path = "/ok"
"#,
    );
    // Cancel once users are busy (some in a 20s request, some thinking for 3s).
    let counters = srv.counters.clone();
    let out = run_load_cancelled(p, move || counters.hits() >= 10);
    assert_eq!(out.result, Ok(()));
    let after = out.after_cancel.expect("cancelled");
    assert!(
        after < Duration::from_secs(4),
        "stopped {after:?} after cancel"
    );
    assert!(out.took < Duration::from_secs(10), "took {:?}", out.took);
    assert!(out.record.users_peak >= 1);
    assert_eq!(out.last_users(), Some(0));
    // Cut-short requests are not errors.
    assert_eq!(
        out.record.total.errors, 0,
        "{:?}",
        out.record.total.error_reasons
    );
}

#[test]
fn timeouts_and_refused_connections_have_reasons() {
    let _g = goose_lock();
    let srv = start_server();
    let p = plan(
        &srv.base(),
        r#"timeout = "300ms"
think_time = "10ms"
stages = [{ duration = "0s", users = 2 }, { duration = "2s", users = 2 }]"#,
        r#"
[[requests]]
name = "slow"
path = "/slow?ms=5000"
"#,
    );
    let out = run_load(p);
    assert_eq!(out.result, Ok(()));
    let s = out.stats("slow");
    assert!(s.count >= 2);
    assert_eq!(s.errors, s.count);
    assert_eq!(s.error_reasons[0].0, "timeout after 300ms");
    // A timed-out connection is dropped: every request used a fresh one.
    assert!(
        srv.connections() >= s.count,
        "{} < {}",
        srv.connections(),
        s.count
    );
    for r in out.requests() {
        assert_eq!(r.status, 0);
        assert!(r.latency_us >= 300_000);
    }

    // Nothing listens on this port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = plan(
        &format!("http://127.0.0.1:{port}"),
        r#"think_time = "100ms"
stages = [{ duration = "0s", users = 2 }, { duration = "1s", users = 2 }]"#,
        OK,
    );
    let out = run_load(p);
    assert_eq!(out.result, Ok(()));
    assert!(out.record.total.count >= 2);
    assert_eq!(out.record.total.errors, out.record.total.count);
    assert_eq!(
        out.reasons(),
        vec!["connect: connection refused".to_string()]
    );
}

#[test]
fn server_closing_connections_and_a_shared_pool() {
    let _g = goose_lock();
    let srv = start_server();
    let p = plan(
        &srv.base(),
        r#"think_time = "20ms"
stages = [{ duration = "0s", users = 3 }, { duration = "2s", users = 3 }]"#,
        r#"
[[requests]]
name = "close"
path = "/close"
"#,
    );
    let out = run_load(p);
    assert_eq!(out.result, Ok(()));
    assert_eq!(
        out.record.total.errors, 0,
        "{:?}",
        out.record.total.error_reasons
    );
    // `Connection: close` from the server: the next request reconnects.
    assert!(out.record.total.count > 10);
    assert_eq!(srv.connections(), out.record.total.count);

    let srv = start_server();
    let p = plan(
        &srv.base(),
        r#"think_time = "20ms"
connections = "shared"
pool_size = 2
stages = [{ duration = "0s", users = 6 }, { duration = "2s", users = 6 }]"#,
        OK,
    );
    let out = run_load(p);
    assert_eq!(out.result, Ok(()));
    assert_eq!(
        out.record.total.errors, 0,
        "{:?}",
        out.record.total.error_reasons
    );
    assert!(out.record.total.count > 20);
    assert_eq!(out.record.users_peak, 6);
    assert!(srv.connections() <= 2, "{} connections", srv.connections());
}

#[test]
fn multi_stage_plans_follow_the_stages() {
    let _g = goose_lock();
    let srv = start_server();
    // Not a ramp/hold/down shape: runs as a goose test plan (1s steps).
    let p = plan(
        &srv.base(),
        r#"think_time = "50ms"
stages = [{ duration = "1s", users = 2 }, { duration = "1s", users = 6 }, { duration = "1s", users = 6 }, { duration = "1s", users = 3 }]"#,
        OK,
    );
    let out = run_load(p);
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.record.total.errors, 0);
    assert_eq!(out.record.users_peak, 6);
    assert_eq!(out.last_users(), Some(0));
    assert!(out.took < Duration::from_secs(12), "took {:?}", out.took);
    // The user count went up to 6, then down to 3 before the end.
    let counts: Vec<u32> = out
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Users { count } => Some(count),
            _ => None,
        })
        .collect();
    let peak_at = counts.iter().position(|c| *c == 6).unwrap();
    assert!(counts[peak_at..].contains(&3), "{counts:?}");
}

/// Runs in a child process of this test binary (see below), so its stdout can be read.
const CHILD: &str = "GAUNTLET_LOAD_CLOSED_CHILD";

#[test]
fn sub_second_stages_are_kept_and_nothing_is_printed() {
    if std::env::var_os(CHILD).is_none() {
        // Run this very test again in a child, and read what it printed.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "sub_second_stages_are_kept_and_nothing_is_printed",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        // Only the test harness's own lines (anything printed would break one of them).
        let other: Vec<&str> = stdout
            .lines()
            .filter(|l| {
                !(l.is_empty()
                    || *l == "running 1 test"
                    || *l == "test sub_second_stages_are_kept_and_nothing_is_printed ... ok"
                    || l.starts_with("test result: ok."))
            })
            .collect();
        assert!(other.is_empty(), "the load printed: {other:?}");
        return;
    }
    let _g = goose_lock();
    let srv = start_server();
    // Not a ramp/hold/down shape, and no stage a whole second: 2 users by 300ms, 4 by
    // 700ms (user 4 at 500ms), then down to 1 by 1s (user 4 stops at 800ms).
    let p = plan(
        &srv.base(),
        r#"think_time = "20ms"
stages = [{ duration = "300ms", users = 2 }, { duration = "400ms", users = 4 }, { duration = "300ms", users = 1 }]"#,
        OK,
    );
    let out = run_load(p);
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.record.total.errors, 0);
    assert_eq!(out.record.users_peak, 4);
    assert_eq!(out.last_users(), Some(0));
    let users: Vec<(Duration, u32)> = out
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Users { count } => Some((e.at, count)),
            _ => None,
        })
        .collect();
    let first = users[0].0;
    let when = |count: u32| {
        let i = users.iter().position(|u| u.1 == count).unwrap();
        (i, users[i].0 - first)
    };
    let (peak_i, peak_at) = when(4);
    // Lower bounds only: a loaded machine makes things late, never early.
    assert!(peak_at >= Duration::from_millis(450), "{users:?}");
    let down = users[peak_i..].iter().find(|u| u.1 == 3).unwrap().0 - first;
    assert!(down >= Duration::from_millis(750), "{users:?}");
    assert!(down < Duration::from_secs(5), "{users:?}");
}
