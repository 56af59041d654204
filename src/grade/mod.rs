//! The grader: evaluates each criterion on the recorded state.
//!
//! How each metric is measured (see [`evaluate`]):
//!
//! | metric | measured on | unit |
//! |---|---|---|
//! | `latency.pNN/avg/min/max` | the request's histogram (or all requests'), the one `Record::latency_basis` names: `value_at_quantile(NN/100)`, `mean`, `min`, `max`, exact µs | duration |
//! | `errors.rate` | errors / count × 100 | percent |
//! | `errors.count`, `requests.count` | counters | count |
//! | `throughput.rps` | count / load duration (s) | per second |
//! | `users.peak`, `iterations.dropped` | counters | count |
//! | `availability` | ok probes / all probes × 100, of one service or all | percent |
//! | `recovery.max` | the longest `Recovered { recovery_s }` of the faults (on one service, or all); a fault that was applied, whose recovery is watched, and that never recovered fails the criterion | duration |
//! | `memory.<svc>.peak` | `ResourceStats::mem_peak_bytes` | bytes |
//! | `cpu.<svc>.avg/peak` | `ResourceStats::cpu_avg_pct / cpu_peak_pct` | percent |
//! | `pipeline.freshness.max` | the max of a scraped gauge named `pipeline_freshness_seconds` or `freshness_seconds` (or any `*_freshness_seconds`), over every service | duration |
//! | `data_loss.keys` | the max of a metric named `data_loss_keys` (or `*_data_loss_keys`) | count |
//! | `duplicates.records` | the max of a metric named `duplicate_records` (or `*_duplicate_records`, e.g. the demo pipeline's `pipeline_sink_duplicate_records`) | count |
//!
//! Freshness is read from a gauge that already holds the lag in seconds: the recorder keeps
//! min/max/last per metric, not the time of every sample, so `now - last_sync_timestamp`
//! cannot be rebuilt afterwards. When only `pipeline_last_sync_timestamp_seconds` was
//! scraped the criterion fails and says so.
//!
//! Missing data never passes: the criterion fails with `measured: None` and a detail that
//! says what was missing. A criterion on requests fails when no such request ran (except
//! `requests.count`, where zero is a measurement).

pub mod criteria;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::event::FaultState;
use crate::grade::criteria::{Criterion, LatencyStat, Metric, Op, Quantity};
use crate::record::{Record, RequestStats};
use crate::scenario::model::{FaultKind, LatencyBasis};
use crate::scenario::Plan;

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
    let load_planned = plan.scenario.load.is_some() && !plan.requests.is_empty();
    if load_planned && record.total.count == 0 {
        problems.push(if record.load_started.is_none() {
            "the load never started".to_string()
        } else {
            "no requests ran".to_string()
        });
    }
    Verdict {
        passed: problems.is_empty() && criteria.iter().all(|c| c.passed),
        criteria,
        problems,
    }
}

/// Which services have their recovery watched after a fault (those with a health check).
/// Without a plan, every service is assumed to have one.
struct Watched(Option<BTreeMap<String, bool>>);

impl Watched {
    fn from_plan(plan: &Plan) -> Self {
        Watched(Some(
            plan.scenario
                .services
                .iter()
                .map(|s| (s.name.clone(), s.health.is_some()))
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
    crate::chaos::watches_recovery(kind)
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
    let m = measure(&c.metric, record, watched);
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

/// A measurement: the value (None: nothing to measure), a forced failure (data that
/// exists but rules a pass out, e.g. a service that never recovered), and why.
struct Measured {
    value: Option<Quantity>,
    fail: bool,
    detail: Option<String>,
}

impl Measured {
    fn ok(q: Quantity) -> Self {
        Measured {
            value: Some(q),
            fail: false,
            detail: None,
        }
    }
    fn with(q: Quantity, detail: impl Into<String>) -> Self {
        Measured {
            value: Some(q),
            fail: false,
            detail: Some(detail.into()),
        }
    }
    fn missing(detail: impl Into<String>) -> Self {
        Measured {
            value: None,
            fail: true,
            detail: Some(detail.into()),
        }
    }
    fn failed(q: Option<Quantity>, detail: impl Into<String>) -> Self {
        Measured {
            value: q,
            fail: true,
            detail: Some(detail.into()),
        }
    }
}

/// The stats a request criterion reads: one request by name, or all.
fn stats<'a>(record: &'a Record, name: Option<&str>) -> Result<&'a RequestStats, String> {
    match name {
        None if record.total.count == 0 => Err("no requests ran".into()),
        None => Ok(&record.total),
        Some(n) => match record.requests.iter().find(|r| r.name == n) {
            None => Err(format!("no request named `{n}` in the scenario")),
            Some(r) if r.count == 0 => Err(format!("no request named `{n}` ran")),
            Some(r) => Ok(r),
        },
    }
}

fn basis_name(b: LatencyBasis) -> &'static str {
    match b {
        LatencyBasis::Corrected => "corrected",
        LatencyBasis::Raw => "raw",
    }
}

/// A latency statistic of a µs histogram, exact (never rounded to ms). None when empty.
pub fn latency_stat(h: &hdrhistogram::Histogram<u64>, stat: LatencyStat) -> Option<f64> {
    if h.is_empty() {
        return None;
    }
    Some(match stat {
        LatencyStat::Percentile(p) => h.value_at_quantile((p / 100.0).clamp(0.0, 1.0)) as f64,
        LatencyStat::Avg => h.mean(),
        LatencyStat::Min => h.min() as f64,
        LatencyStat::Max => h.max() as f64,
    })
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn measure(metric: &Metric, record: &Record, watched: &Watched) -> Measured {
    match metric {
        Metric::Latency { stat, name } => {
            let s = match stats(record, name.as_deref()) {
                Ok(s) => s,
                Err(e) => return Measured::missing(e),
            };
            let basis = record.latency_basis;
            match latency_stat(s.graded(basis), *stat) {
                Some(v) => Measured::with(
                    Quantity::DurationUs(v),
                    format!(
                        "{} latency of {}",
                        basis_name(basis),
                        plural(s.count, "request", "requests")
                    ),
                ),
                None => Measured::missing(format!(
                    "no {} latency was recorded for {}",
                    basis_name(basis),
                    name.as_deref()
                        .map(|n| format!("`{n}`"))
                        .unwrap_or_else(|| "the requests".into())
                )),
            }
        }
        Metric::ErrorRate { name } => match stats(record, name.as_deref()) {
            Ok(s) => Measured::with(
                Quantity::Percent(s.errors as f64 / s.count as f64 * 100.0),
                format!(
                    "{} of {}",
                    plural(s.errors, "error", "errors"),
                    plural(s.count, "request", "requests")
                ),
            ),
            Err(e) => Measured::missing(e),
        },
        Metric::ErrorCount { name } => match stats(record, name.as_deref()) {
            Ok(s) => Measured::ok(Quantity::Count(s.errors as f64)),
            Err(e) => Measured::failed(Some(Quantity::Count(0.0)), e),
        },
        Metric::Throughput { name } => {
            let secs = record.load_duration.as_secs_f64();
            if secs <= 0.0 {
                return Measured::missing("the load did not run");
            }
            match stats(record, name.as_deref()) {
                Ok(s) => Measured::with(
                    Quantity::PerSecond(s.count as f64 / secs),
                    format!("{} in {secs:.1}s", plural(s.count, "request", "requests")),
                ),
                Err(e) => Measured::failed(Some(Quantity::PerSecond(0.0)), e),
            }
        }
        Metric::RequestCount { name } => match name {
            None => Measured::ok(Quantity::Count(record.total.count as f64)),
            Some(n) => match record.requests.iter().find(|r| &r.name == n) {
                Some(r) => Measured::ok(Quantity::Count(r.count as f64)),
                None => Measured::missing(format!("no request named `{n}` in the scenario")),
            },
        },
        Metric::UsersPeak => Measured::ok(Quantity::Count(record.users_peak as f64)),
        Metric::DroppedIterations => Measured::ok(Quantity::Count(record.dropped as f64)),
        Metric::Availability { service } => {
            let (ok, total) = match service {
                Some(s) => record
                    .probes
                    .get(s)
                    .map(|p| (p.ok, p.total))
                    .unwrap_or((0, 0)),
                None => record
                    .probes
                    .values()
                    .fold((0, 0), |(o, t), p| (o + p.ok, t + p.total)),
            };
            if total == 0 {
                return Measured::missing(match service {
                    Some(s) => format!("no health probes were recorded for `{s}`"),
                    None => "no health probes were recorded".into(),
                });
            }
            Measured::with(
                Quantity::Percent(ok as f64 / total as f64 * 100.0),
                format!("{ok} of {} ok", plural(total, "probe", "probes")),
            )
        }
        Metric::RecoveryMax { service } => recovery(record, service.as_deref(), watched),
        Metric::MemoryPeak { service } => match record.resources.get(service) {
            Some(r) if r.samples > 0 => Measured::with(
                Quantity::Bytes(r.mem_peak_bytes as f64),
                plural(r.samples, "sample", "samples"),
            ),
            _ => Measured::missing(format!("no resource samples were recorded for `{service}`")),
        },
        Metric::CpuAvg { service } | Metric::CpuPeak { service } => {
            match record.resources.get(service) {
                Some(r) if r.samples > 0 => Measured::with(
                    Quantity::Percent(if matches!(metric, Metric::CpuAvg { .. }) {
                        r.cpu_avg_pct
                    } else {
                        r.cpu_peak_pct
                    }),
                    plural(r.samples, "sample", "samples"),
                ),
                _ => {
                    Measured::missing(format!("no resource samples were recorded for `{service}`"))
                }
            }
        }
        Metric::FreshnessMax => {
            match metric_max(record, &["pipeline_freshness_seconds", "freshness_seconds"]) {
                Some((v, from)) => Measured::with(Quantity::DurationUs((v * 1e6).max(0.0)), from),
                None => {
                    let stamp = record
                        .metrics
                        .iter()
                        .find(|((_, n), _)| n.ends_with("last_sync_timestamp_seconds"));
                    Measured::missing(match stamp {
                        Some(((svc, n), m)) if m.max <= 0.0 => {
                            format!("the pipeline never synced (`{svc}` `{n}` stayed 0)")
                        }
                        Some(((svc, n), _)) => format!(
                            "`{svc}` reported only `{n}`; freshness needs a \
                             `pipeline_freshness_seconds` gauge"
                        ),
                        None => "no `pipeline_freshness_seconds` metric was recorded".into(),
                    })
                }
            }
        }
        Metric::DataLossKeys => match metric_max(record, &["data_loss_keys"]) {
            Some((v, from)) => Measured::with(Quantity::Count(v), from),
            None => {
                Measured::missing("no `data_loss_keys` metric was recorded (no data canary ran)")
            }
        },
        Metric::DuplicateRecords => match metric_max(record, &["duplicate_records"]) {
            Some((v, from)) => Measured::with(Quantity::Count(v), from),
            None => Measured::missing("no `duplicate_records` metric was recorded"),
        },
    }
}

/// The max of the metrics whose name is one of `names` or ends with `_<name>`, over every
/// service, with where it came from.
fn metric_max(record: &Record, names: &[&str]) -> Option<(f64, String)> {
    let mut best: Option<(f64, String)> = None;
    for ((svc, name), m) in &record.metrics {
        let matches = names
            .iter()
            .any(|n| name == n || name.strip_suffix(n).is_some_and(|p| p.ends_with('_')));
        if !matches || m.samples == 0 || !m.max.is_finite() {
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| m.max > *b) {
            best = Some((m.max, format!("max of `{name}` from `{svc}`")));
        }
    }
    best
}

/// One fault occurrence, folded from its events.
#[derive(Debug, Clone)]
struct Occurrence<'a> {
    name: &'a str,
    target: &'a str,
    kind: FaultKind,
    applied: bool,
    recovery_s: Option<f64>,
}

fn recovery(record: &Record, service: Option<&str>, watched: &Watched) -> Measured {
    let mut occ: BTreeMap<(usize, u32), Occurrence> = BTreeMap::new();
    for f in &record.faults {
        if service.is_some_and(|s| s != f.target) {
            continue;
        }
        let o = occ.entry((f.fault, f.repetition)).or_insert(Occurrence {
            name: &f.name,
            target: &f.target,
            kind: f.kind,
            applied: false,
            recovery_s: None,
        });
        match &f.state {
            FaultState::Applied => o.applied = true,
            FaultState::Recovered { recovery_s } => {
                o.recovery_s = Some(o.recovery_s.unwrap_or(0.0).max(*recovery_s))
            }
            FaultState::Undone | FaultState::Failed { .. } => {}
        }
    }
    let mut max: Option<f64> = None;
    let mut unrecovered = Vec::new();
    let mut unwatched = Vec::new();
    let mut applied = 0u32;
    for o in occ.values().filter(|o| o.applied || o.recovery_s.is_some()) {
        applied += 1;
        match o.recovery_s {
            Some(r) => max = Some(max.unwrap_or(0.0).max(r)),
            None if recovery_watched(o.kind) && watched.has_health(o.target) => {
                unrecovered.push(format!(
                    "service `{}` did not recover after fault `{}`",
                    o.target, o.name
                ));
            }
            None => unwatched.push(o),
        }
    }
    let measured = max.map(|s| Quantity::DurationUs(s * 1e6));
    if !unrecovered.is_empty() {
        unrecovered.dedup();
        return Measured::failed(None, unrecovered.join("; "));
    }
    match measured {
        Some(q) => Measured::with(
            q,
            format!("{} recovered", plural(applied as u64, "fault", "faults")),
        ),
        None if applied == 0 => Measured::missing(match service {
            Some(s) => format!("no fault was applied to `{s}`"),
            None => "no fault was applied".into(),
        }),
        None => {
            let o = unwatched[0];
            Measured::missing(if recovery_watched(o.kind) {
                format!(
                    "service `{}` has no health check, so its recovery after fault `{}` was not measured",
                    o.target, o.name
                )
            } else {
                format!(
                    "fault `{}` ({}) leaves `{}` up; no recovery to measure",
                    o.name,
                    o.kind.as_str(),
                    o.target
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::event::FaultEvent;
    use crate::grade::criteria::parse;
    use crate::record::{MetricStats, ProbeStats, ResourceStats};

    fn empty() -> Record {
        Record {
            load_started: Some(Duration::from_secs(1)),
            load_duration: Duration::from_secs(10),
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
        }
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
        r.probes
            .insert("api".into(), ProbeStats { ok: 99, total: 100 });
        r.probes.insert(
            "db".into(),
            ProbeStats {
                ok: 100,
                total: 100,
            },
        );
        assert_eq!(measured("availability >= 99%", &r), 99.5);
        assert_eq!(measured("availability{service=\"api\"} >= 99%", &r), 99.0);
        assert!(eval("availability{service=\"api\"} >= 99%", &r).passed);
        assert!(!eval("availability{service=\"api\"} >= 99.9%", &r).passed);
        let c = eval("availability{service=\"x\"} >= 99%", &r);
        assert!(!c.passed);
        assert_eq!(c.detail.unwrap(), "no health probes were recorded for `x`");
    }

    fn fault(
        at: u64,
        fault: usize,
        target: &str,
        kind: FaultKind,
        state: FaultState,
    ) -> FaultEvent {
        FaultEvent {
            at: Duration::from_secs(at),
            fault,
            repetition: 0,
            name: format!("f{fault}"),
            kind,
            target: target.into(),
            state,
        }
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
}
