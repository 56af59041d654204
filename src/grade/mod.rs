//! The grader: evaluates each criterion of the plan on the recorded state. What each
//! metric means and which selectors it takes is in the registry ([`crate::metric`]); how
//! it is measured is `grade::measure`, one arm per metric.
//!
//! Missing data never passes: the criterion fails with `measured: None` and a detail that
//! says what was missing ([`Unmeasured`]). A criterion on requests fails when no such
//! request ran (except `requests.count`, where zero is a measurement).

mod measure;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metric::{Criterion, Metric, Op, Quantity};
use crate::record::Record;
use crate::scenario::model::FaultKind;
use crate::scenario::Plan;

pub use measure::{latency_stat, Unmeasured};

/// The verdict on one criterion.
#[derive(Debug, Clone, Serialize)]
pub struct CriterionResult {
    /// As written in the scenario.
    pub source: String,
    /// The parsed metric (for reports).
    pub metric: Metric,
    /// None when there was nothing to measure (which fails: a gate never passes on
    /// missing data).
    pub measured: Option<Quantity>,
    pub op: Op,
    pub threshold: Quantity,
    pub passed: bool,
    /// Why it failed or what it was measured on, e.g. "no request named `x` ran".
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Every criterion passed, and there was at least one request when load was planned.
    pub passed: bool,
    pub criteria: Vec<CriterionResult>,
    /// Failures that are not a criterion's, e.g. "no requests ran".
    pub problems: Vec<String>,
}

/// Evaluate every criterion of the plan.
pub fn grade(plan: &Plan, record: &Record) -> Verdict {
    let watched = Watched::from_plan(plan);
    let criteria: Vec<CriterionResult> = plan
        .criteria
        .iter()
        .map(|c| evaluate_with(c, record, &watched))
        .collect();
    let mut problems = Vec::new();
    let load_planned = plan.load.is_some() && !plan.requests.is_empty();
    if load_planned && record.total.count == 0 {
        problems.push(if record.load_started.is_none() {
            "the load never started".to_string()
        } else {
            "no requests ran".to_string()
        });
    }
    if !record.interrupted {
        problems.extend(faults_never_tried(plan, record));
    }
    problems.extend(load_problems(load_planned, record));
    if plan.load.is_some() && !plan.ws.is_empty() {
        problems.extend(ws_problems(record));
    }
    Verdict {
        passed: problems.is_empty() && criteria.iter().all(|c| c.passed),
        criteria,
        problems,
    }
}

/// A run never passes on load that did not happen: every request failed (a latency
/// criterion alone would pass on fast refusals), or users died (their requests were never
/// attempted, so nothing measured them).
fn load_problems(load_planned: bool, record: &Record) -> Vec<String> {
    let mut problems = Vec::new();
    let t = &record.total;
    if load_planned && t.count > 0 && t.errors >= t.count {
        let why = t
            .error_reasons
            .first()
            .map(|(r, _)| format!(" (most often: {r})"))
            .unwrap_or_default();
        problems.push(format!("no request succeeded: all {} failed{why}", t.count));
    }
    if record.users_died > 0 {
        let first = record
            .first_death
            .as_deref()
            .map(|r| format!("; first: {r}"))
            .unwrap_or_default();
        problems.push(format!(
            "{} virtual user(s) died (panicked) and sent nothing more{first}",
            record.users_died
        ));
    }
    problems
}

/// Nor on WebSocket users that never got a connection.
fn ws_problems(record: &Record) -> Option<String> {
    match &record.ws {
        None if record.load_started.is_some() && !record.interrupted => {
            Some("no WebSocket user ran".into())
        }
        Some(t) if t.connects > 0 && t.connect_failures >= t.connects => {
            let why = t
                .reasons
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(r, _)| format!(" (most often: {r})"))
                .unwrap_or_default();
            Some(format!(
                "no WebSocket connection succeeded: all {} failed{why}",
                t.connects
            ))
        }
        _ => None,
    }
}

/// A gate must not pass because its fault never happened: every repetition of every fault
/// of the plan must have been applied (or have failed, as the scenario allows) in a run
/// that was not interrupted.
fn faults_never_tried(plan: &Plan, record: &Record) -> Vec<String> {
    use crate::event::FaultState;
    let mut missing = Vec::new();
    for (i, spec) in plan.faults.iter().enumerate() {
        let c = spec.common();
        for rep in 0..c.times.unwrap_or(1).max(1) {
            let tried = record.faults.iter().any(|f| {
                f.fault == i
                    && f.repetition == rep
                    && matches!(f.state, FaultState::Applied | FaultState::Failed { .. })
            });
            if !tried {
                let name = c
                    .name
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{} #{i}", spec.kind().as_str()));
                missing.push(format!(
                    "fault `{name}` (repetition {}) was due but never applied",
                    rep + 1
                ));
            }
        }
    }
    missing
}

/// Which services have their recovery watched after a fault (those with a health check).
/// Without a plan, every service is assumed to have one.
struct Watched(Option<BTreeMap<String, bool>>);

impl Watched {
    fn from_plan(plan: &Plan) -> Self {
        Watched(Some(
            plan.services
                .iter()
                .map(|s| (s.name().to_string(), s.health.is_some()))
                .collect(),
        ))
    }

    fn has_health(&self, service: &str) -> bool {
        match &self.0 {
            None => true,
            Some(m) => m.get(service).copied().unwrap_or(false),
        }
    }
}

/// Fault kinds after which the chaos scheduler watches the target until it is healthy
/// again; each fault kind says so (`chaos::faults`).
pub fn recovery_watched(kind: FaultKind) -> bool {
    kind.watches_recovery()
}

/// Whether the chaos scheduler watches `target` for recovery after a fault of `kind`:
/// the kind takes the service down and the service has a health check.
pub fn recovery_expected(plan: &Plan, kind: FaultKind, target: &str) -> bool {
    recovery_watched(kind) && Watched::from_plan(plan).has_health(target)
}

/// Evaluate one criterion on a record. Recovery is expected from every service (no plan
/// to say which have a health check); [`grade`] knows better.
pub fn evaluate(c: &Criterion, record: &Record) -> CriterionResult {
    evaluate_with(c, record, &Watched(None))
}

fn evaluate_with(c: &Criterion, record: &Record, watched: &Watched) -> CriterionResult {
    let m = measure::measure(&c.metric, record, watched);
    let passed = match (m.value, m.fail) {
        (Some(v), false) => v.value().is_finite() && c.op.holds(v.value(), c.threshold.value()),
        _ => false,
    };
    CriterionResult {
        source: c.source.clone(),
        metric: c.metric.clone(),
        measured: m.value,
        op: c.op,
        threshold: c.threshold,
        passed,
        detail: m.detail,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::event::{FaultEvent, FaultState, Timed};
    use crate::metric::parse;
    use crate::record::{MetricStats, ProbeStats, RequestStats, ResourceStats};
    use crate::scenario::model::LatencyBasis;

    /// A fault of the plan with no applied (or failed) event fails the verdict, each
    /// repetition on its own; an interrupted run does not add these (it already failed).
    #[test]
    fn a_fault_that_never_happened_fails_the_run() {
        let plan = crate::scenario::load_str(
            std::path::Path::new("f.toml"),
            r#"
name = "f"
duration = "1m"
[target]
base_url = "http://127.0.0.1:9"
allow_hosts = ["127.0.0.1"]
[[services]]
name = "api"
command = ["sleep", "60"]
[[faults]]
kind = "pause"
name = "stall"
target = "api"
at = "1s"
duration = "1s"
every = "5s"
times = 2
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let applied = |rep| {
            Timed::new(
                Duration::from_secs(1),
                FaultEvent {
                    fault: 0,
                    repetition: rep,
                    name: "stall".into(),
                    kind: crate::scenario::model::FaultKind::Pause,
                    target: "api".into(),
                    state: FaultState::Applied,
                },
            )
        };
        let mut record = empty();
        record.faults = vec![applied(0)];
        let v = grade(&plan, &record);
        assert!(!v.passed);
        assert_eq!(
            v.problems,
            vec!["fault `stall` (repetition 2) was due but never applied".to_string()]
        );
        record.faults.push(applied(1));
        assert!(grade(&plan, &record).passed);
        record.faults.clear();
        record.interrupted = true;
        assert!(grade(&plan, &record).problems.is_empty());
    }

    fn empty() -> Record {
        Record {
            load_started: Some(Duration::from_secs(1)),
            load_duration: Duration::from_secs(10),
            warmup: Duration::ZERO,
            latency_basis: LatencyBasis::Corrected,
            expected_interval_us: None,
            requests: vec![RequestStats::new("list"), RequestStats::new("create")],
            total: RequestStats::new("all"),
            windows: vec![],
            users_peak: 0,
            dropped: 0,
            faults: vec![],
            services: vec![],
            probes: BTreeMap::new(),
            resources: BTreeMap::new(),
            metrics: BTreeMap::new(),
            notices: vec![],
            interrupted: false,
            requests_folded: 0,
            events_shed: 0,
            users_died: 0,
            first_death: None,
            connections: Default::default(),
            flows: vec![],
            flow_total: RequestStats::new("all"),
            ws: None,
        }
    }

    /// Every request failed, or a user died: the verdict fails with a problem saying so,
    /// whatever the criteria (here: none).
    #[test]
    fn load_that_did_not_happen_never_passes() {
        let plan = crate::scenario::load_str(
            std::path::Path::new("f.toml"),
            r#"
name = "f"
[target]
base_url = "http://127.0.0.1:9"
allow_hosts = ["127.0.0.1"]
[load]
stages = [{ duration = "1s", users = 1 }]
[[requests]]
name = "list"
path = "/"
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut record = empty();
        record.total.count = 20042;
        record.total.errors = 20042;
        record.total.error_reasons = vec![("connect: connection refused".into(), 20042)];
        let v = grade(&plan, &record);
        assert!(!v.passed);
        assert_eq!(
            v.problems,
            vec![
                "no request succeeded: all 20042 failed (most often: connect: connection refused)"
                    .to_string()
            ]
        );
        record.total.errors = 20041;
        assert!(grade(&plan, &record).passed);
        record.users_died = 3;
        record.first_death = Some("user 1: panicked: boom".into());
        let v = grade(&plan, &record);
        assert!(!v.passed);
        assert_eq!(
            v.problems,
            vec!["3 virtual user(s) died (panicked) and sent nothing more; first: user 1: panicked: boom".to_string()]
        );
    }

    /// Requests 1..=100 ms for `list` (raw) and the same +50ms corrected; `create` has 10
    /// requests of 5ms with 2 errors.
    fn loaded() -> Record {
        let mut r = empty();
        for i in 1..=100u64 {
            add(&mut r, 0, i * 1000, i * 1000 + 50_000, None);
        }
        for i in 0..10 {
            add(&mut r, 1, 5000, 5000, (i < 2).then_some("status 500"));
        }
        r.users_peak = 50;
        r.dropped = 3;
        r
    }

    fn add(r: &mut Record, idx: usize, raw: u64, corrected: u64, err: Option<&str>) {
        for s in [&mut r.requests[idx], &mut r.total] {
            s.count += 1;
            s.raw.record(raw).unwrap();
            s.corrected.record(corrected).unwrap();
            if err.is_some() {
                s.errors += 1;
            }
        }
    }

    fn eval(src: &str, r: &Record) -> CriterionResult {
        evaluate(&parse(src).expect(src), r)
    }

    fn measured(src: &str, r: &Record) -> f64 {
        let c = eval(src, r);
        c.measured
            .unwrap_or_else(|| panic!("{src}: {:?}", c.detail))
            .value()
    }

    fn approx(a: f64, b: f64) -> bool {
        (a - b).abs() <= b.abs() * 1e-3 + 1e-9
    }

    #[test]
    fn latency_percentiles_exact_in_us_on_the_graded_basis() {
        let mut r = loaded();
        // corrected: list = 51..150ms, create = 5ms (10x)
        assert!(approx(
            measured("latency.p50{name=\"list\"} < 1s", &r),
            100_000.0
        ));
        assert!(approx(
            measured("latency.max{name=\"list\"} < 1s", &r),
            150_000.0
        ));
        assert!(approx(
            measured("latency.min{name=\"list\"} < 1s", &r),
            51_000.0
        ));
        assert!(approx(
            measured("latency.avg{name=\"list\"} < 1s", &r),
            100_500.0
        ));
        r.latency_basis = LatencyBasis::Raw;
        let p99 = measured("latency.p99{name=\"list\"} < 1s", &r);
        assert!(approx(p99, 99_000.0), "{p99}");
        let p999 = measured("latency.p99.9{name=\"list\"} < 1s", &r);
        assert!(approx(p999, 100_000.0), "{p999}");
        // not rounded to ms
        let mut r = empty();
        add(&mut r, 0, 1234, 1234, None);
        assert_eq!(measured("latency.p50 < 1s", &r), 1234.0);
        let c = eval("latency.p50 < 1235us", &r);
        assert!(c.passed);
        let c = eval("latency.p50 < 1234us", &r);
        assert!(!c.passed);
        assert_eq!(c.measured, Some(Quantity::DurationUs(1234.0)));
    }

    #[test]
    fn latency_total_and_pass_fail() {
        let r = loaded();
        let c = eval("latency.p95 < 200ms", &r);
        assert!(c.passed, "{c:?}");
        assert!(c
            .detail
            .unwrap()
            .contains("corrected latency of 110 requests"));
        let c = eval("latency.p95 < 10ms", &r);
        assert!(!c.passed);
    }

    #[test]
    fn latency_missing_request() {
        let r = loaded();
        let c = eval("latency.p95{name=\"nope\"} < 1s", &r);
        assert!(!c.passed && c.measured.is_none());
        assert_eq!(c.detail.unwrap(), "no request named `nope` in the scenario");
        let mut r = empty();
        add(&mut r, 0, 10, 10, None);
        let c = eval("latency.p95{name=\"create\"} < 1s", &r);
        assert!(!c.passed && c.measured.is_none());
        assert_eq!(c.detail.unwrap(), "no request named `create` ran");
        let c = eval("latency.p95 < 1s", &empty());
        assert!(!c.passed);
        assert_eq!(c.detail.unwrap(), "no requests ran");
    }

    #[test]
    fn error_rate_and_count() {
        let r = loaded();
        assert!(approx(
            measured("errors.rate < 1%", &r),
            2.0 / 110.0 * 100.0
        ));
        assert_eq!(measured("errors.rate{name=\"create\"} < 1%", &r), 20.0);
        assert!(!eval("errors.rate < 1%", &r).passed);
        assert!(eval("errors.rate{name=\"list\"} < 0.1%", &r).passed);
        assert_eq!(measured("errors.count == 0", &r), 2.0);
        assert!(eval("errors.count{name=\"list\"} == 0", &r).passed);
        // Zero requests: no vacuous pass.
        let c = eval("errors.count == 0", &empty());
        assert!(!c.passed);
        assert_eq!(c.detail.as_deref(), Some("no requests ran"));
        let c = eval("errors.rate < 1%", &empty());
        assert!(!c.passed && c.measured.is_none());
    }

    #[test]
    fn counts_and_throughput() {
        let r = loaded();
        assert_eq!(measured("requests.count > 1", &r), 110.0);
        assert_eq!(measured("requests.count{name=\"create\"} > 1", &r), 10.0);
        assert!(eval("requests.count{name=\"create\"} == 10", &r).passed);
        assert!(!eval("requests.count{name=\"x\"} == 0", &r).passed);
        assert_eq!(measured("throughput.rps > 1", &r), 11.0);
        assert_eq!(measured("throughput.rps{name=\"create\"} > 1", &r), 1.0);
        assert_eq!(
            eval("throughput.rps > 1", &r).measured,
            Some(Quantity::PerSecond(11.0))
        );
        let c = eval("throughput.rps >= 0", &empty());
        assert!(!c.passed);
        let mut r2 = loaded();
        r2.load_duration = Duration::ZERO;
        assert!(!eval("throughput.rps >= 0", &r2).passed);
        assert_eq!(measured("users.peak >= 50", &r), 50.0);
        assert!(eval("users.peak >= 50", &r).passed);
        assert!(!eval("iterations.dropped == 0", &r).passed);
        assert_eq!(measured("iterations.dropped == 0", &r), 3.0);
    }

    #[test]
    fn availability() {
        let mut r = empty();
        let c = eval("availability >= 99%", &r);
        assert!(!c.passed);
        assert_eq!(c.detail.unwrap(), "no health probes were recorded");
        // api: 100 probes a second apart, 4 failed (11 s to 14 s): down from half-way
        // before the first to half-way after the last, 4 s of 99 s; db: always up.
        let probes = |down: std::ops::Range<u32>| {
            let points: Vec<(u32, bool)> = (0..100u32)
                .map(|i| (i * 1000, !down.contains(&i)))
                .collect();
            let ok = points.iter().filter(|p| p.1).count() as u64;
            ProbeStats {
                ok,
                total: 100,
                points,
            }
        };
        r.probes.insert("api".into(), probes(11..15));
        r.probes.insert("db".into(), probes(0..0));
        let api = measured("availability{service=\"api\"} >= 99%", &r);
        assert!((api - (99.0 - 4.0) / 99.0 * 100.0).abs() < 1e-9, "{api}");
        // No selector: the least available service.
        assert_eq!(measured("availability >= 99%", &r), api);
        assert_eq!(measured("availability{service=\"db\"} >= 99%", &r), 100.0);
        assert!(!eval("availability{service=\"api\"} >= 99%", &r).passed);
        assert!(eval("availability{service=\"api\"} >= 95%", &r).passed);
        // The probe count keeps its own name.
        assert_eq!(measured("probes.success{service=\"api\"} >= 99%", &r), 96.0);
        assert_eq!(measured("probes.success >= 99%", &r), 98.0);
        let c = eval("availability{service=\"x\"} >= 99%", &r);
        assert!(!c.passed);
        assert_eq!(c.detail.unwrap(), "no health probes were recorded for `x`");
    }

    #[test]
    fn detect_is_apply_to_first_failed_probe() {
        let mut r = empty();
        r.probes.insert(
            "api".into(),
            ProbeStats {
                ok: 0,
                total: 0,
                points: (0..20u32)
                    .map(|i| (i * 500, !(7..10).contains(&i)))
                    .collect(),
            },
        );
        r.faults = vec![
            fault(3, 0, "api", FaultKind::Kill, FaultState::Applied),
            fault(
                6,
                0,
                "api",
                FaultKind::Kill,
                FaultState::Recovered { recovery_s: 3.0 },
            ),
        ];
        assert_eq!(measured("detect.max < 1s", &r), 500_000.0);
        r.faults
            .push(fault(8, 1, "api", FaultKind::Pause, FaultState::Applied));
        r.faults
            .push(fault(9, 1, "api", FaultKind::Pause, FaultState::Undone));
        let c = eval("detect.max < 1s", &r);
        assert!(c.passed, "{c:?}");
        assert!(c.detail.unwrap().contains("not seen down"));
        r.faults.truncate(0);
        assert!(!eval("detect.max < 1s", &r).passed);
    }

    fn fault(
        at: u64,
        fault: usize,
        target: &str,
        kind: FaultKind,
        state: FaultState,
    ) -> Timed<FaultEvent> {
        Timed::new(
            Duration::from_secs(at),
            FaultEvent {
                fault,
                repetition: 0,
                name: format!("f{fault}"),
                kind,
                target: target.into(),
                state,
            },
        )
    }

    #[test]
    fn recovery() {
        let mut r = empty();
        let c = eval("recovery.max < 5s", &r);
        assert!(!c.passed);
        assert_eq!(c.detail.unwrap(), "no fault was applied");
        r.faults = vec![
            fault(1, 0, "api", FaultKind::Kill, FaultState::Applied),
            fault(
                3,
                0,
                "api",
                FaultKind::Kill,
                FaultState::Recovered { recovery_s: 2.5 },
            ),
            fault(4, 1, "db", FaultKind::Pause, FaultState::Applied),
            fault(6, 1, "db", FaultKind::Pause, FaultState::Undone),
            fault(
                7,
                1,
                "db",
                FaultKind::Pause,
                FaultState::Recovered { recovery_s: 1.0 },
            ),
            // never applied: ignored
            fault(
                8,
                2,
                "db",
                FaultKind::Kill,
                FaultState::Failed {
                    reason: "x".into(),
                    fatal: false,
                },
            ),
            // duplicate: nothing watched
            fault(9, 3, "api", FaultKind::Duplicate, FaultState::Applied),
        ];
        assert_eq!(measured("recovery.max < 5s", &r), 2.5e6);
        // MTTR: the mean of 2.5 s and 1 s.
        assert_eq!(measured("recovery.avg < 5s", &r), 1.75e6);
        assert!(eval("recovery.max < 5s", &r).passed);
        assert!(!eval("recovery.max < 2s", &r).passed);
        assert_eq!(measured("recovery.max{service=\"db\"} < 5s", &r), 1e6);
        let c = eval("recovery.max{service=\"web\"} < 5s", &r);
        assert_eq!(c.detail.unwrap(), "no fault was applied to `web`");
        // a crash that never recovered fails, whatever the others did
        r.faults
            .push(fault(10, 4, "api", FaultKind::Kill, FaultState::Applied));
        let c = eval("recovery.max < 5m", &r);
        assert!(!c.passed && c.measured.is_none());
        assert_eq!(
            c.detail.unwrap(),
            "service `api` did not recover after fault `f4`"
        );
        assert!(eval("recovery.max{service=\"db\"} < 5m", &r).passed);
        // one fault by name, or every fault of a kind
        let mut r2 = r.clone();
        r2.faults.truncate(5);
        assert_eq!(measured("recovery{fault=\"f0\"} < 5s", &r2), 2.5e6);
        assert_eq!(measured("recovery{fault=\"f1\"} < 5s", &r2), 1e6);
        assert_eq!(measured("recovery{fault=\"pause\"} < 5s", &r2), 1e6);
        assert!(eval("recovery{fault=\"f1\"} < 2s", &r2).passed);
        assert!(!eval("recovery{fault=\"f0\"} < 2s", &r2).passed);
        let c = eval("recovery{fault=\"restart\"} < 5s", &r2);
        assert!(!c.passed);
        assert_eq!(
            c.detail.unwrap(),
            "no fault named (or of kind) `restart` was applied"
        );
        // the kill that never recovered fails its own figure, not the pause's
        assert!(!eval("recovery{fault=\"f4\"} < 5m", &r).passed);
        assert!(!eval("recovery{fault=\"kill\"} < 5m", &r).passed);
        assert!(eval("recovery{fault=\"f1\"} < 5m", &r).passed);
        // only a duplicate fault: nothing to measure
        let mut r = empty();
        r.faults = vec![fault(
            9,
            3,
            "api",
            FaultKind::Duplicate,
            FaultState::Applied,
        )];
        let c = eval("recovery.max < 5m", &r);
        assert!(!c.passed && c.detail.unwrap().contains("no recovery to measure"));
    }

    #[test]
    fn memory_and_cpu() {
        let mut r = empty();
        let c = eval("memory.api.peak < 1GiB", &r);
        assert!(!c.passed);
        assert_eq!(
            c.detail.unwrap(),
            "no resource samples were recorded for `api`"
        );
        assert!(!eval("cpu.api.avg < 50%", &r).passed);
        r.resources.insert(
            "api".into(),
            ResourceStats {
                samples: 10,
                cpu_avg_pct: 30.0,
                cpu_peak_pct: 120.0,
                mem_peak_bytes: 512 * 1024 * 1024,
                mem_last_bytes: 1,
                mem_series: vec![],
            },
        );
        assert_eq!(
            eval("memory.api.peak < 1GiB", &r).measured,
            Some(Quantity::Bytes(512.0 * 1024.0 * 1024.0))
        );
        assert!(eval("memory.api.peak < 1GiB", &r).passed);
        assert!(!eval("memory.api.peak < 256MiB", &r).passed);
        assert_eq!(
            eval("cpu.api.avg < 50%", &r).measured,
            Some(Quantity::Percent(30.0))
        );
        assert!(eval("cpu.api.avg < 50%", &r).passed);
        assert_eq!(measured("cpu.api.peak < 150%", &r), 120.0);
        assert!(!eval("cpu.api.peak < 100%", &r).passed);
    }

    fn metric(r: &mut Record, svc: &str, name: &str, max: f64) {
        r.metrics.insert(
            (svc.into(), name.into()),
            MetricStats {
                samples: 3,
                last: max,
                min: 0.0,
                max,
                sum: max,
                increase: max,
                first_at: Duration::from_secs(1),
                last_at: Duration::from_secs(3),
            },
        );
    }

    #[test]
    fn freshness() {
        let mut r = empty();
        let c = eval("pipeline.freshness.max < 5m", &r);
        assert!(!c.passed);
        assert!(c.detail.unwrap().contains("pipeline_freshness_seconds"));
        metric(
            &mut r,
            "pipeline",
            "pipeline_last_sync_timestamp_seconds",
            0.0,
        );
        let c = eval("pipeline.freshness.max < 5m", &r);
        assert!(c.detail.unwrap().contains("never synced"));
        metric(&mut r, "pipeline", "pipeline_freshness_seconds", 12.5);
        metric(&mut r, "standby", "pipeline_freshness_seconds", 30.0);
        assert_eq!(
            eval("pipeline.freshness.max < 5m", &r).measured,
            Some(Quantity::DurationUs(30e6))
        );
        assert!(eval("pipeline.freshness.max < 5m", &r).passed);
        assert!(!eval("pipeline.freshness.max < 20s", &r).passed);
        let mut r = empty();
        metric(&mut r, "canary", "freshness_seconds", 2.0);
        assert_eq!(measured("pipeline.freshness.max < 5m", &r), 2e6);
    }

    #[test]
    fn pipeline_throughput_and_success() {
        let mut r = empty();
        assert!(!eval("pipeline.throughput > 1/s", &r).passed);
        assert!(!eval("pipeline.success.rate > 99%", &r).passed);
        // Two instances, each +300 records over 2 s; 99 good syncs, 1 failed.
        metric(&mut r, "active", "pipeline_records_synced_total", 300.0);
        metric(&mut r, "standby", "pipeline_records_synced_total", 300.0);
        metric(&mut r, "active", "pipeline_syncs_total", 99.0);
        metric(&mut r, "active", "pipeline_sync_failures_total", 1.0);
        assert_eq!(measured("pipeline.throughput > 1/s", &r), 300.0);
        assert_eq!(measured("pipeline.success.rate > 99%", &r), 99.0);
        assert!(!eval("pipeline.success.rate > 99%", &r).passed);
        assert!(eval("pipeline.success.rate >= 99%", &r).passed);
    }

    #[test]
    fn validation_rate() {
        let mut r = empty();
        assert!(!eval("validation.rate > 95%", &r).passed);
        // One sink counts valid records itself; another only what it wrote.
        metric(&mut r, "sink", "pipeline_records_valid_total", 90.0);
        metric(&mut r, "sink", "pipeline_records_synced_total", 1000.0);
        metric(&mut r, "sink", "pipeline_records_invalid_total", 10.0);
        assert_eq!(measured("validation.rate > 95%", &r), 90.0);
        metric(&mut r, "other", "pipeline_records_synced_total", 200.0);
        assert_eq!(measured("validation.rate > 95%", &r), 290.0 / 300.0 * 100.0);
        assert!(eval("validation.rate > 95%", &r).passed);
    }

    #[test]
    fn data_loss_and_duplicates() {
        let mut r = empty();
        let c = eval("data_loss.keys == 0", &r);
        assert!(!c.passed && c.measured.is_none());
        let c = eval("duplicates.records == 0", &r);
        assert!(!c.passed && c.measured.is_none());
        metric(&mut r, "canary", "data_loss_keys", 0.0);
        metric(&mut r, "pipeline", "pipeline_sink_duplicate_records", 4.0);
        metric(&mut r, "pipeline", "not_duplicate_recordsx", 99.0);
        assert!(eval("data_loss.keys == 0", &r).passed);
        assert_eq!(measured("duplicates.records == 0", &r), 4.0);
        assert!(!eval("duplicates.records == 0", &r).passed);
        metric(&mut r, "canary", "data_loss_keys", 7.0);
        assert_eq!(measured("data_loss.keys == 0", &r), 7.0);
    }

    #[test]
    fn data_loss_comes_only_from_the_canary() {
        let mut r = empty();
        metric(&mut r, "api", "data_loss_keys", 0.0);
        metric(&mut r, "db", "redis_data_loss_keys", 0.0);
        let c = eval("data_loss.keys == 0", &r);
        assert!(!c.passed && c.measured.is_none(), "{c:?}");
        assert_eq!(
            c.detail.unwrap(),
            "no `data_loss_keys` metric was recorded (no data canary ran)"
        );
    }

    fn series(r: &mut Record, svc: &str, name: &str, samples: &[(u64, f64)]) {
        let mut rec = crate::record::Recorder::new(&crate::scenario::load_str(
            std::path::Path::new("t.toml"),
            "name = \"t\"\n[target]\nbase_url = \"http://127.0.0.1:9\"\nallow_hosts = [\"127.0.0.1\"]\n",
        )
        .expect("valid plan"));
        for (at, value) in samples {
            rec.record(&crate::event::RunEvent {
                at: Duration::from_secs(*at),
                kind: crate::event::EventKind::Metric {
                    service: svc.into(),
                    name: name.into(),
                    value: *value,
                },
            });
        }
        let key = (svc.to_string(), name.to_string());
        let m = rec.finish().metrics.remove(&key).expect("recorded");
        r.metrics.insert(key, m);
    }

    #[test]
    fn a_scraped_series() {
        let mut r = empty();
        // A counter that restarts at 10s: 0 -> 50 -> (reset) 10 -> 30, over 30s.
        series(
            &mut r,
            "pipeline",
            "synced_total",
            &[(0, 0.0), (10, 50.0), (20, 10.0), (30, 30.0)],
        );
        series(&mut r, "pipeline", "lag_seconds", &[(0, 2.0), (5, 4.0)]);
        series(&mut r, "pipeline", "heap_bytes", &[(0, 1024.0)]);
        series(&mut r, "api", "http_total{code=\"200\"}", &[(0, 1.0)]);
        let q = |src: &str| eval(src, &r).measured;
        let sel = |stat: &str, name: &str| {
            format!("metric.{stat}{{service=\"pipeline\", name=\"{name}\"}}")
        };
        assert_eq!(
            q(&format!("{} > 0", sel("max", "synced_total"))),
            Some(Quantity::Number(50.0))
        );
        assert_eq!(
            q(&format!("{} > 0", sel("min", "synced_total"))),
            Some(Quantity::Number(0.0))
        );
        assert_eq!(
            q(&format!("{} > 0", sel("last", "synced_total"))),
            Some(Quantity::Number(30.0))
        );
        assert_eq!(
            q(&format!("{} > 0", sel("avg", "synced_total"))),
            Some(Quantity::Number(22.5))
        );
        // 50 + 10 (after the reset) + 20 = 80 over 30s.
        let c = eval(&format!("{} > 2.5/s", sel("rate", "synced_total")), &r);
        assert!(approx(c.measured.unwrap().value(), 80.0 / 30.0), "{c:?}");
        assert!(c.passed);
        assert_eq!(
            q(&format!("{} < 5s", sel("max", "lag_seconds"))),
            Some(Quantity::DurationUs(4e6))
        );
        assert!(eval(&format!("{} < 5s", sel("max", "lag_seconds")), &r).passed);
        assert!(!eval(&format!("{} < 3s", sel("avg", "lag_seconds")), &r).passed);
        assert_eq!(
            q(&format!("{} < 1MiB", sel("last", "heap_bytes"))),
            Some(Quantity::Bytes(1024.0))
        );
        // One sample: no rate.
        let c = eval(&format!("{} > 0", sel("rate", "heap_bytes")), &r);
        assert!(!c.passed && c.detail.unwrap().contains("needs two samples"));
        // Missing, and only labelled.
        let c = eval(&format!("{} > 0", sel("max", "nope")), &r);
        assert_eq!(c.detail.unwrap(), "`pipeline` recorded no series `nope`");
        let c = eval("metric.max{service=\"api\", name=\"http_total\"} > 0", &r);
        assert!(c
            .detail
            .unwrap()
            .contains("e.g. `http_total{code=\"200\"}`"),);
        let c = eval(
            "metric.max{service=\"api\", name='http_total{code=\"200\"}'} == 1",
            &r,
        );
        assert!(c.passed, "{c:?}");
    }
}
