//! `scenarios/pre-release.toml`, the short form (`--scale-time 0.05`): every success
//! criterion of the roadmap PASSES against the fixed demo stack with 5000 users and every
//! fault on one timeline, and each defect of the roadmap FAILS it on its own criterion.
//!
//! Each run holds 5000 users and the whole stack, so the runs of this file take turns
//! (one lock) instead of sharing two cores. Needs Debian's redis-server package.

#[path = "common/scenarios.rs"]
mod scenarios;

use std::sync::Mutex;
use std::time::Instant;

use scenarios::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs the short form with `defect` (or none); returns the exit code and each
/// criterion's (name, failed, what was said).
fn short_run(defect: Option<&str>) -> (Option<i32>, Vec<(String, bool, String)>, String) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let copy = with_own_ports(&scenario("pre-release.toml"), tmp.path());
    let data = tmp.path().join("redis-data");
    std::fs::create_dir_all(&data).expect("data dir");
    let reports = tmp.path().join("reports");
    let run_id = format!("pre-release-{}", defect.unwrap_or("fixed"));
    let data_var = format!("vars.data={}", data.display());
    let t0 = Instant::now();
    let out = run_with(
        &copy,
        &reports,
        &run_id,
        defect,
        &["--scale-time", "0.05", "--set", &data_var],
    );
    let v = verdicts(&reports.join(&run_id));
    eprintln!(
        "pre-release with {}: exit {:?} in {:.1}s; failed: {:?}",
        defect.unwrap_or("no defect"),
        out.status.code(),
        t0.elapsed().as_secs_f64(),
        v.iter().filter(|c| c.1).collect::<Vec<_>>()
    );
    (out.status.code(), v, show(&out))
}

/// A defect's run: exit 1, and `criterion` among the failed ones.
fn fails_on(defect: &str, criterion: &str) {
    let (code, v, out) = short_run(Some(defect));
    assert!(
        code == Some(1) && v.iter().any(|(n, f, _)| n == criterion && *f),
        "pre-release with {defect} must exit 1 and FAIL `{criterion}`; {v:?}\n{out}"
    );
}

#[test]
fn passes_every_criterion_on_the_fixed_stack() {
    let (code, v, out) = short_run(None);
    assert_eq!(v.len(), 15, "every criterion graded: {v:?}\n{out}");
    assert!(
        code == Some(0) && !v.iter().any(|c| c.1),
        "must PASS without defects; {v:?}\n{out}"
    );
}

#[test]
fn redis_without_persistence_loses_the_canary() {
    fails_on("redis-no-persistence", "data_loss.keys == 0");
}

#[test]
fn a_second_pipeline_without_the_lock_writes_duplicates() {
    fails_on("no-single-instance", "duplicates.records == 0");
}

#[test]
fn a_stall_without_failover_loses_throughput() {
    fails_on("no-failover", "pipeline.throughput > 10000/s");
}

#[test]
fn corrupted_records_fail_validation() {
    fails_on("corrupt-records", "validation.rate > 95%");
}

#[test]
fn leaked_websocket_states_are_caught() {
    fails_on(
        "ws-leak",
        "metric.max{service=\"api\", name=\"demo_ws_leaked_states\"} < 100",
    );
}
