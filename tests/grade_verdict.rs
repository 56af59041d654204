//! The grader on a whole plan: every criterion of the fixture scenario gets the verdict
//! its figures call for, and a run without requests fails even with no criterion failing.

mod report_fixture;

use gauntlet::grade;
use gauntlet::metric::Quantity;

#[test]
fn fixture_verdict() {
    let (_plan, _info, _record, v) = report_fixture::run();
    let got: Vec<(&str, bool)> = v
        .criteria
        .iter()
        .map(|c| (c.source.as_str(), c.passed))
        .collect();
    assert_eq!(
        got,
        [
            ("latency.p95 < 200ms", true),
            ("latency.p99{name=\"create item\"} < 5ms", false),
            ("errors.rate < 1%", true),
            ("throughput.rps >= 10", true),
            ("availability{service=\"api\"} >= 99%", true),
            ("recovery.max < 5s", true),
            ("memory.api.peak < 1GiB", true),
            ("pipeline.freshness.max < 5m", false),
            (
                "metric.rate{service=\"api\", name=\"http_requests_total\"} >= 100/s",
                true
            ),
        ]
    );
    assert!(!v.passed);
    assert!(v.problems.is_empty());
    assert_eq!(v.criteria[3].measured, Some(Quantity::PerSecond(110.0)));
    // By time: 0.2 s down of 39.9 s between the first and the last probe.
    assert_eq!(
        v.criteria[4].measured,
        Some(Quantity::Percent((39.9 - 0.2) / 39.9 * 100.0))
    );
    assert_eq!(
        v.criteria[5].measured,
        Some(Quantity::DurationUs(400_000.0))
    );
    assert_eq!(v.criteria[8].measured, Some(Quantity::PerSecond(110.0)));
}

#[test]
fn a_planned_load_without_requests_fails() {
    let (_plan, _info, _record, v) = report_fixture::empty_run();
    assert!(!v.passed);
    assert_eq!(v.problems, ["the load never started"]);
    let mut plan = report_fixture::plan();
    plan.criteria.clear();
    let mut record = report_fixture::record();
    record.total = gauntlet::record::RequestStats::new("all");
    let v = grade::grade(&plan, &record);
    assert!(!v.passed);
    assert_eq!(v.problems, ["no requests ran"]);
    let v = grade::grade(&plan, &report_fixture::record());
    assert!(v.passed, "no criteria and requests ran: pass");
}

#[test]
fn a_crash_that_never_recovers_fails_recovery_only_with_a_health_check() {
    use gauntlet::event::{FaultEvent, FaultState, Timed};
    use gauntlet::scenario::model::FaultKind;
    let plan = report_fixture::plan();
    let mut record = report_fixture::record();
    let kill = |fault: usize, target: &str| {
        Timed::new(
            std::time::Duration::from_secs(6),
            FaultEvent {
                fault,
                repetition: 1,
                name: format!("kill {target}"),
                kind: FaultKind::Kill,
                target: target.into(),
                state: FaultState::Applied,
            },
        )
    };
    // `worker` is not a service with a health check in the plan: not measured, no failure.
    record.faults.push(kill(5, "worker"));
    let v = grade::grade(&plan, &record);
    assert!(v.criteria[5].passed, "{:?}", v.criteria[5]);
    record.faults.push(kill(6, "api"));
    let v = grade::grade(&plan, &record);
    let c = &v.criteria[5];
    assert!(!c.passed);
    assert_eq!(c.measured, None);
    assert_eq!(
        c.detail.as_deref(),
        Some("service `api` did not recover after fault `kill api`")
    );
}
