//! `summary.json`: the run's figures in one stable document, described by
//! `schemas/summary.schema.json` (draft 2020-12) and checked against it by a test.
//!
//! Stability: fields are only ever added (with `schema_version` raised); a field's meaning
//! and unit never change. Units are in the field names: `_us` microseconds, `_s` seconds,
//! `_pct` percent (0..100, CPU may exceed 100), `_bytes` bytes. `at_s` values are seconds
//! on the run clock (which starts before the services); `load.started_at_s` says where
//! the load's zero is. Figures that cannot be computed (a rate over zero requests) are
//! `null`, never NaN.
//!
//! Top-level keys: `schema_version`, `run`, `verdict`, `target`, `load`, `connections`,
//! `requests`, `total`, `flows`, `ws`, `criteria`, `faults`, `service_events`, `probes`,
//! `resources`, `metrics`, `notices`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::grade::{CriterionResult, Verdict};
use crate::metric::Quantity;
use crate::record::{Record, RequestStats};
use crate::report::text::{self, finite};
use crate::report::{EndedBy, RunInfo};
use crate::scenario::Plan;

/// Raised whenever a field is added.
pub const SCHEMA_VERSION: u32 = 4;

/// The figures of one gauntlet run (reports/<run-id>/summary.json). Units are in the
/// field names: _us microseconds, _s seconds, _pct percent, _bytes bytes. at_s values are
/// seconds on the run clock (which starts before the services); load.started_at_s is where
/// the load's zero is. Figures that cannot be computed are null. Fields are only ever
/// added, with schema_version raised.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "gauntlet summary.json",
    extend("$id" = "https://github.com/gauntlet/gauntlet/schemas/summary.schema.json")
)]
pub struct Summary {
    #[schemars(extend("const" = 4))]
    pub schema_version: u32,
    pub run: Run,
    pub verdict: VerdictSummary,
    /// Where the load went, and how (added in schema 3).
    pub target: TargetSummary,
    pub load: Load,
    /// The load's connections to the target and their handshakes (added in schema 3).
    pub connections: Connections,
    /// One entry per request of the scenario, in file order (also those that never ran).
    pub requests: Vec<RequestSummary>,
    /// All requests together (name `all`).
    pub total: RequestSummary,
    /// One entry per `[[flows]]` table, in file order: `count` flows ended, `errors` of
    /// them stopped at a failed step, latency from the first step sent to the last
    /// answered (raw = corrected). Empty without flows (added in schema 4; a schema 3
    /// file reads as empty).
    #[serde(default)]
    pub flows: Vec<RequestSummary>,
    /// The WebSocket users (`[[ws]]`), all entries together; null when the scenario has
    /// none (added in schema 4).
    #[serde(default)]
    pub ws: Option<WsSummary>,
    pub criteria: Vec<CriterionSummary>,
    /// One entry per fault occurrence (a repetition of a fault is its own entry).
    pub faults: Vec<FaultSummary>,
    pub service_events: Vec<ServiceEventSummary>,
    /// Health probes per service.
    pub probes: Vec<ProbeSummary>,
    /// CPU and memory samples per service.
    pub resources: Vec<ResourceSummary>,
    /// Prometheus figures scraped per service.
    pub metrics: Vec<MetricSummary>,
    pub notices: Vec<Notice>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Run {
    pub id: String,
    pub scenario: String,
    /// The scenario file as given on the command line.
    pub file: String,
    pub seed: u64,
    /// RFC 3339, UTC.
    #[schemars(extend("format" = "date-time"))]
    pub started_at: String,
    #[schemars(extend("format" = "date-time"))]
    pub ended_at: String,
    pub duration_s: f64,
    /// `completed`, `interrupted` or `error`.
    #[schemars(extend("enum" = ["completed", "interrupted", "error"]))]
    pub ended_by: String,
    /// Why the run ended early (`error`), else null.
    pub end_reason: Option<String>,
    pub exit_code: i32,
    pub gauntlet_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerdictSummary {
    /// Every criterion passed and nothing else failed the run.
    pub passed: bool,
    /// `passed`, `failed`, `interrupted` or `error`.
    #[schemars(extend("enum" = ["passed", "failed", "interrupted", "error"]))]
    pub status: String,
    pub criteria_passed: usize,
    pub criteria_failed: usize,
    /// Failures that are not a criterion's, e.g. "no requests ran".
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSummary {
    /// The base URL, without user-info.
    pub base_url: String,
    /// `target.http`: `1.1`, `2` or `auto`.
    #[schemars(extend("enum" = ["1.1", "2", "auto"]))]
    pub http: String,
    /// The target is reached over TLS (an https:// URL).
    pub tls: bool,
    /// TLS without any verification of the server's certificate (`tls.insecure = true`):
    /// the figures may come from whoever answered.
    pub tls_insecure: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Connections {
    /// Connections the load opened (a reconnect after a close counts again).
    pub count: u64,
    /// Of them, over TLS.
    pub tls: u64,
    /// Of the TLS ones, those that resumed an earlier TLS session.
    pub resumed: u64,
    /// Of them, speaking HTTP/2.
    pub h2: u64,
    /// TCP connect + TLS handshake per connection, µs (not in any request's service time
    /// but the one that waited for it); null when no connection was opened.
    pub handshake_us: Option<Handshake>,
}

/// Handshake times in microseconds, from their HDR histogram.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Handshake {
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// `closed`, `open`, or null when the scenario has no load.
    #[schemars(extend("enum" = ["closed", "open", null]))]
    pub model: Option<String>,
    /// The histogram the latency criteria read: `corrected` or `raw`.
    #[schemars(extend("enum" = ["corrected", "raw"]))]
    pub latency_basis: String,
    /// Closed model: the interval the correction assumes (mean think time); null when
    /// there is no think time (corrected == raw).
    pub expected_interval_us: Option<u64>,
    pub planned_duration_s: f64,
    /// How long the load really ran.
    pub duration_s: f64,
    /// Run-clock time the load started at; null when it never started.
    pub started_at_s: Option<f64>,
    pub users_peak: u32,
    /// Open model: iterations that were due but could not start.
    pub dropped_iterations: u64,
    /// Seconds of load with figures (rows of `timeseries.csv`).
    pub seconds: usize,
    /// Requests folded by their senders while the recorder lagged (event channel full):
    /// in every total and histogram, in no per-second row.
    pub requests_folded: u64,
    /// Events dropped because the recorder lagged too far; 0 in a healthy run.
    pub events_shed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestSummary {
    pub name: String,
    pub count: u64,
    pub errors: u64,
    /// errors / count × 100; null when nothing ran.
    #[schemars(range(min = 0, max = 100))]
    pub error_rate_pct: Option<f64>,
    /// count / load duration; null when the load did not run.
    pub rps: Option<f64>,
    /// Responses by HTTP status ("0": no response arrived).
    pub statuses: BTreeMap<String, u64>,
    /// The most frequent error reasons.
    pub top_errors: Vec<ErrorReason>,
    /// Latencies longer than the histogram's bound (1h), recorded as 1h.
    pub clamped: u64,
    pub latency_us: LatencyPair,
}

/// What the WebSocket users did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WsSummary {
    /// Connections tried (each reconnect counts), and of them those that failed.
    pub connects: u64,
    pub connect_failures: u64,
    /// Messages sent, and of them those that failed (not sent, or no matching reply
    /// within the timeout).
    pub messages: u64,
    pub message_failures: u64,
    /// (connect_failures + message_failures) / (connects + messages) × 100; null when
    /// nothing was tried.
    #[schemars(range(min = 0, max = 100))]
    pub error_rate_pct: Option<f64>,
    /// Most connections open at once.
    pub connections_peak: u32,
    /// Connections the server ended with a close code other than 1000/1001, or dropped
    /// without a close frame.
    pub closes_abnormal: u64,
    /// Send to matching reply, µs; null when no reply matched.
    pub rtt_us: Option<Latency>,
    /// The most frequent failure reasons.
    pub top_errors: Vec<ErrorReason>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorReason {
    pub reason: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyPair {
    /// As measured. Null when no latency was recorded.
    pub raw: Option<Latency>,
    /// Corrected for coordinated omission.
    pub corrected: Option<Latency>,
}

/// Latency statistics in microseconds, exact from the HDR histogram (3 significant
/// digits; 2 for each request of a plan with more than 64 requests).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// Values in the histogram (the corrected one holds synthesized values too).
    pub samples: u64,
    pub min: u64,
    pub avg: f64,
    pub stdev: f64,
    pub p50: u64,
    pub p90: u64,
    pub p95: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
}

impl Latency {
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        Some(Latency {
            samples: h.len(),
            min: h.min(),
            avg: finite(h.mean()).unwrap_or(0.0),
            stdev: finite(h.stdev()).unwrap_or(0.0),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p95: h.value_at_quantile(0.95),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CriterionSummary {
    /// As written in the scenario.
    pub source: String,
    /// The metric without its selector, e.g. `latency.p95`, `memory.api.peak`.
    pub metric: String,
    /// The request the criterion is restricted to (`{name="..."}`), else null.
    pub request: Option<String>,
    /// The service it reads, else null.
    pub service: Option<String>,
    /// The scraped series it reads (`metric.<stat>{name="..."}`), else null. Since
    /// schema version 2.
    pub series: Option<String>,
    /// `<`, `<=`, `>`, `>=`, `==` or `!=`.
    #[schemars(extend("enum" = ["<", "<=", ">", ">=", "==", "!="]))]
    pub op: String,
    pub threshold: Value,
    /// Null when there was nothing to measure (and the criterion failed).
    pub measured: Option<Value>,
    pub passed: bool,
    pub detail: Option<String>,
}

/// A value with its unit: `us`, `percent`, `bytes`, `count`, `number` or `per_second`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Value {
    pub value: f64,
    #[schemars(extend("enum" = ["us", "percent", "bytes", "count", "number", "per_second"]))]
    pub unit: String,
    /// As a person reads it, e.g. `200ms`, `0.1%`.
    pub text: String,
}

impl Value {
    pub fn of(q: Quantity) -> Option<Value> {
        Some(Value {
            value: finite(q.value())?,
            unit: q.unit().into(),
            text: q.to_string(),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultSummary {
    /// Index of the fault in the scenario.
    pub fault: usize,
    pub repetition: u32,
    pub name: String,
    pub kind: String,
    pub target: String,
    pub applied_at_s: Option<f64>,
    pub undone_at_s: Option<f64>,
    pub recovered_at_s: Option<f64>,
    /// From the apply (crash) or undo (stall) to the answer of the first of two healthy
    /// probes in a row; `recovered_at_s` is that answer's time.
    pub recovery_s: Option<f64>,
    /// From the apply to the sending of the first failed health probe of the target
    /// (before its recovery or undo); null when no probe failed.
    pub detect_s: Option<f64>,
    /// Why it could not be applied or undone, else null.
    pub failed: Option<String>,
    /// The failure stopped the run.
    pub fatal: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceEventSummary {
    pub at_s: f64,
    pub service: String,
    /// `started`, `healthy`, `unhealthy`, `exited`, `restarting` or `stopped`.
    #[schemars(extend("enum" = ["started", "healthy", "unhealthy", "exited", "restarting", "stopped"]))]
    pub event: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeSummary {
    pub service: String,
    /// What the check asks (process-backend services also count a stopped or missing
    /// process as down).
    pub check: Option<String>,
    pub ok: u64,
    pub total: u64,
    /// Successful probes over all probes (a count, not time).
    #[schemars(range(min = 0, max = 100))]
    pub probes_success_pct: Option<f64>,
    /// Healthy time over the time from the first probe to the last.
    #[schemars(range(min = 0, max = 100))]
    pub availability_pct: Option<f64>,
    pub span_s: Option<f64>,
    pub down_s: Option<f64>,
    pub outages: Option<u32>,
    pub longest_outage_s: Option<f64>,
    /// Longest gap between two probes: a change is placed within half of it, and an
    /// outage shorter than it can go unseen.
    pub resolution_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceSummary {
    pub service: String,
    pub samples: u64,
    /// Percent of one core.
    pub cpu_avg_pct: f64,
    pub cpu_peak_pct: f64,
    pub mem_peak_bytes: u64,
    pub mem_last_bytes: u64,
    /// What was measured: which processes or which cgroup.
    pub scope: String,
    /// Memory slope while the load and faults ran (Theil–Sen), bytes per minute.
    pub mem_growth_bytes_per_min: Option<f64>,
    /// Memory after the load and faults (cooldown) minus memory before them.
    pub mem_retained_bytes: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricSummary {
    pub service: String,
    pub name: String,
    pub samples: u64,
    pub last: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    pub at_s: f64,
    /// `info`, `warn` or `error`.
    #[schemars(extend("enum" = ["info", "warn", "error"]))]
    pub level: String,
    pub message: String,
}

fn request(s: &RequestStats, secs: f64) -> RequestSummary {
    RequestSummary {
        name: s.name.clone(),
        count: s.count,
        errors: s.errors,
        error_rate_pct: (s.count > 0).then(|| s.errors as f64 / s.count as f64 * 100.0),
        rps: (secs > 0.0).then(|| s.count as f64 / secs),
        statuses: s
            .statuses
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        top_errors: s
            .error_reasons
            .iter()
            .map(|(r, c)| ErrorReason {
                reason: r.clone(),
                count: *c,
            })
            .collect(),
        clamped: s.clamped,
        latency_us: LatencyPair {
            raw: Latency::of(&s.raw),
            corrected: Latency::of(&s.corrected),
        },
    }
}

fn criterion(c: &CriterionResult) -> CriterionSummary {
    CriterionSummary {
        source: c.source.clone(),
        metric: c.metric.name(),
        request: c.metric.request_name().map(String::from),
        service: c.metric.service().map(String::from),
        series: c.metric.series.clone(),
        op: c.op.as_str().into(),
        threshold: Value::of(c.threshold).unwrap_or(Value {
            value: 0.0,
            unit: c.threshold.unit().into(),
            text: c.threshold.to_string(),
        }),
        measured: c.measured.and_then(Value::of),
        passed: c.passed,
        detail: c.detail.clone(),
    }
}

pub(crate) fn level(l: crate::event::Level) -> &'static str {
    match l {
        crate::event::Level::Info => "info",
        crate::event::Level::Warn => "warn",
        crate::event::Level::Error => "error",
    }
}

fn ws_summary(t: &crate::event::WsTotals) -> WsSummary {
    let mut top: Vec<ErrorReason> = t
        .reasons
        .iter()
        .map(|(reason, count)| ErrorReason {
            reason: reason.clone(),
            count: *count,
        })
        .collect();
    top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    let attempts = t.attempts();
    WsSummary {
        connects: t.connects,
        connect_failures: t.connect_failures,
        messages: t.messages,
        message_failures: t.message_failures,
        error_rate_pct: (attempts > 0).then(|| t.failures() as f64 / attempts as f64 * 100.0),
        connections_peak: t.peak,
        closes_abnormal: t.abnormal_closes,
        rtt_us: Latency::of(&t.rtt),
        top_errors: top,
    }
}

/// Build the summary.
/// Which processes (or cgroup) a service's CPU and memory are of.
fn resource_scope(plan: &Plan, service: &str) -> String {
    use crate::scenario::model::BackendKind;
    let Some(sp) = plan.services.iter().find(|s| s.name() == service) else {
        return String::new();
    };
    match plan.backend {
        BackendKind::Docker => "the containers' cgroups (every process in them)".into(),
        BackendKind::Process if sp.spec.managed => {
            "the process group gauntlet started, and every descendant".into()
        }
        BackendKind::Process => "the pid file's process and every descendant".into(),
    }
}

pub fn build(plan: &Plan, info: &RunInfo, record: &Record, verdict: &Verdict) -> Summary {
    let secs = record.load_duration.as_secs_f64();
    // Rates over the graded part (a capacity level's warmup is not graded).
    let graded_secs = record.measured_duration().as_secs_f64();
    let passed = verdict.criteria.iter().filter(|c| c.passed).count();
    Summary {
        schema_version: SCHEMA_VERSION,
        run: Run {
            id: info.run_id.clone(),
            scenario: info.scenario.clone(),
            file: info.file.display().to_string(),
            seed: info.seed,
            started_at: info
                .started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ended_at: info
                .ended_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            duration_s: ((info.ended_at - info.started_at).num_milliseconds() as f64 / 1000.0)
                .max(0.0),
            ended_by: match info.ended_by {
                EndedBy::Completed => "completed",
                EndedBy::Interrupted => "interrupted",
                EndedBy::Error(_) => "error",
            }
            .into(),
            end_reason: match &info.ended_by {
                EndedBy::Error(e) => Some(e.clone()),
                _ => None,
            },
            exit_code: info.exit_code,
            gauntlet_version: info.gauntlet_version.clone(),
        },
        verdict: VerdictSummary {
            passed: verdict.passed,
            status: text::status(info, verdict).into(),
            criteria_passed: passed,
            criteria_failed: verdict.criteria.len() - passed,
            problems: verdict.problems.clone(),
        },
        target: TargetSummary {
            base_url: crate::units::redact_userinfo(plan.base_url.as_str()).into_owned(),
            http: match plan.http {
                crate::scenario::model::HttpVersion::Http1 => "1.1",
                crate::scenario::model::HttpVersion::Http2 => "2",
                crate::scenario::model::HttpVersion::Auto => "auto",
            }
            .into(),
            tls: plan.tls.is_some(),
            tls_insecure: plan.tls.as_ref().is_some_and(|t| t.insecure),
        },
        connections: {
            let c = &record.connections;
            let h = &c.handshake;
            Connections {
                count: c.count,
                tls: c.tls,
                resumed: c.resumed,
                h2: c.h2,
                handshake_us: (!h.is_empty()).then(|| Handshake {
                    p50: h.value_at_quantile(0.50),
                    p95: h.value_at_quantile(0.95),
                    p99: h.value_at_quantile(0.99),
                    max: h.max(),
                }),
            }
        },
        load: Load {
            model: plan
                .load
                .as_ref()
                .map(|l| if l.is_open() { "open" } else { "closed" }.into()),
            latency_basis: text::basis_name(record.latency_basis).into(),
            expected_interval_us: record.expected_interval_us,
            planned_duration_s: plan.load_duration.as_secs_f64(),
            duration_s: secs,
            started_at_s: record.load_started.map(|d| d.as_secs_f64()),
            users_peak: record.users_peak,
            dropped_iterations: record.dropped,
            seconds: record.windows.len(),
            requests_folded: record.requests_folded,
            events_shed: record.events_shed,
        },
        requests: record
            .requests
            .iter()
            .map(|s| request(s, graded_secs))
            .collect(),
        total: request(&record.total, graded_secs),
        flows: record
            .flows
            .iter()
            .map(|s| request(s, graded_secs))
            .collect(),
        ws: record.ws.as_ref().map(ws_summary),
        criteria: verdict.criteria.iter().map(criterion).collect(),
        faults: text::fault_windows(&record.faults)
            .into_iter()
            .map(|w| {
                let detect_s = w.applied_at.and_then(|a| {
                    record
                        .probes
                        .get(&w.target)?
                        .detect(a, w.recovered_at.or(w.undone_at))
                        .map(|d| d.as_secs_f64())
                });
                FaultSummary {
                    fault: w.fault,
                    repetition: w.repetition,
                    name: w.name,
                    kind: w.kind.as_str().into(),
                    target: w.target,
                    applied_at_s: w.applied_at.map(|d| d.as_secs_f64()),
                    undone_at_s: w.undone_at.map(|d| d.as_secs_f64()),
                    recovered_at_s: w.recovered_at.map(|d| d.as_secs_f64()),
                    recovery_s: w.recovery_s.and_then(finite),
                    detect_s,
                    failed: w.failed,
                    fatal: w.fatal,
                }
            })
            .collect(),
        service_events: record
            .services
            .iter()
            .map(|e| ServiceEventSummary {
                at_s: e.at.as_secs_f64(),
                service: e.service.clone(),
                event: text::service_event_name(&e.kind).into(),
                detail: text::service_event_detail(e),
            })
            .collect(),
        probes: record
            .probes
            .iter()
            .map(|(s, p)| {
                let u = p.uptime();
                ProbeSummary {
                    service: s.clone(),
                    check: plan
                        .services
                        .iter()
                        .find(|sp| sp.name() == s)
                        .and_then(|sp| sp.health.as_ref())
                        .map(|h| h.target.describe()),
                    ok: p.ok,
                    total: p.total,
                    probes_success_pct: (p.total > 0).then(|| p.ok as f64 / p.total as f64 * 100.0),
                    availability_pct: u.map(|u| u.percent).and_then(finite),
                    span_s: u.map(|u| u.span_s),
                    down_s: u.map(|u| u.down_s),
                    outages: u.map(|u| u.outages),
                    longest_outage_s: u.map(|u| u.longest_outage_s),
                    resolution_s: u.map(|u| u.resolution_s),
                }
            })
            .collect(),
        resources: record
            .resources
            .iter()
            .map(|(s, r)| {
                let window = record.stress_window();
                ResourceSummary {
                    service: s.clone(),
                    samples: r.samples,
                    cpu_avg_pct: finite(r.cpu_avg_pct).unwrap_or(0.0),
                    cpu_peak_pct: finite(r.cpu_peak_pct).unwrap_or(0.0),
                    mem_peak_bytes: r.mem_peak_bytes,
                    mem_last_bytes: r.mem_last_bytes,
                    scope: resource_scope(plan, s),
                    mem_growth_bytes_per_min: window
                        .and_then(|(a, b)| r.growth(a, b))
                        .and_then(finite),
                    mem_retained_bytes: window
                        .and_then(|(a, b)| r.retained(a, b))
                        .map(|x| x.0)
                        .and_then(finite),
                }
            })
            .collect(),
        metrics: record
            .metrics
            .iter()
            .map(|((s, n), m)| MetricSummary {
                service: s.clone(),
                name: n.clone(),
                samples: m.samples,
                last: finite(m.last),
                min: finite(m.min),
                max: finite(m.max),
            })
            .collect(),
        notices: record
            .notices
            .iter()
            .map(|(at, l, m)| Notice {
                at_s: at.as_secs_f64(),
                level: level(*l).into(),
                message: m.clone(),
            })
            .collect(),
    }
}

/// The summary as pretty JSON, with a final newline.
pub fn to_json(s: &Summary) -> String {
    let mut out = serde_json::to_string_pretty(s).expect("a summary always serializes");
    out.push('\n');
    out
}

/// The JSON Schema of `summary.json` (draft 2020-12), generated from these types. The
/// committed `schemas/summary.schema.json` is this text; after changing a type,
/// regenerate it with `UPDATE_SCHEMA=1 cargo test --test report_files`.
pub fn json_schema() -> String {
    schema_of::<Summary>()
}

/// The draft 2020-12 JSON Schema of a report type whose keys are always written.
pub(crate) fn schema_of<T: schemars::JsonSchema>() -> String {
    // Every key is always written (null when there is no figure), so every key is required.
    fn all_required(s: &mut schemars::Schema) {
        let names: Option<Vec<serde_json::Value>> = s
            .get("properties")
            .and_then(|p| p.as_object())
            .map(|p| p.keys().map(|k| k.clone().into()).collect());
        if let Some(names) = names {
            s.insert("required".into(), names.into());
        }
    }
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .with_transform(schemars::transform::RecursiveTransform(all_required))
        .into_generator()
        .into_root_schema_for::<T>();
    let mut out = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    out.push('\n');
    out
}
