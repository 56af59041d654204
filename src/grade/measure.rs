//! How each metric of the registry is measured on the record: one arm per [`MetricId`].
//!
//! | metric | measured on | unit |
//! |---|---|---|
//! | `latency.<stat>` | the request's histogram (or all requests'), the one `Record::latency_basis` names: `value_at_quantile(NN/100)`, `mean`, `min`, `max`, exact µs | duration |
//! | `errors.rate` | errors / count × 100 | percent |
//! | `errors.count`, `requests.count` | counters | count |
//! | `throughput.rps` | count / load duration (s) | per second |
//! | `users.peak`, `iterations.dropped` | counters | count |
//! | `ws.latency.<stat>` | the WebSocket round-trip histogram (send to matching reply), exact µs | duration |
//! | `ws.errors.rate` | (failed connects + failed messages) / (connects + messages) × 100 | percent |
//! | `ws.connections.peak`, `ws.closes.abnormal` | counters of the WebSocket users | count |
//! | `availability` | `ProbeStats::uptime`: healthy time / time from first to last probe × 100, changes placed half-way between probes; of one service, or the least available | percent |
//! | `probes.success` | ok probes / all probes × 100, of one service or all | percent |
//! | `recovery.max` | the longest `Recovered { recovery_s }` of the faults (on one service, or all); a fault that was applied, whose recovery is watched, and that never recovered fails the criterion | duration |
//! | `recovery.avg` | the mean of the same recoveries (MTTR) | duration |
//! | `recovery{fault=...}` | as `recovery.max`, over the occurrences of the faults with that name or of that kind | duration |
//! | `pipeline.throughput` | Σ over services of the rate of `*_records_synced_total` (increase over first→last sample) | per second |
//! | `validation.rate` | Σ increase of `*_records_valid_total` (else `*_records_synced_total`) / (that + Σ increase of `*_records_invalid_total`) × 100 | percent |
//! | `pipeline.success.rate` | Σ increase of `*_syncs_total` / (that + Σ increase of `*_sync_failures_total`) × 100 | percent |
//! | `detect.max` | per applied fault, the first failed probe of its target sent at or after the apply, minus the apply time; the longest | duration |
//! | `memory.<svc>.peak` | `ResourceStats::mem_peak_bytes` | bytes |
//! | `memory.<svc>.growth` | `ResourceStats::growth` over `Record::stress_window` (Theil–Sen) | bytes/min |
//! | `memory.<svc>.retained` | `ResourceStats::retained`: after the window (cooldown) minus before it | bytes |
//! | `cpu.<svc>.avg/peak` | `ResourceStats::cpu_avg_pct / cpu_peak_pct` | percent |
//! | `data_loss.keys` | the data canary's figure only (service `canary`, `data_loss_keys`), never a scraped series | count |
//! | `metric.<stat>` | one scraped series of one service: `max`, `min`, `last`, `avg` (sum / samples), `rate` (its increase, counter resets counted, over the time between its first and last sample) | seconds or bytes by the name's suffix, else a number; rate per second |
//! | `pipeline.freshness.max` | the max of `pipeline_freshness_seconds` or `freshness_seconds` (or any `*_freshness_seconds`), over every service | duration |
//! | `duplicates.records` | the increase (first to last sample) of `duplicate_records` (or any `*_duplicate_records`), the highest over services | count |
//!
//! Freshness is read from a gauge that already holds the lag in seconds (the scrape
//! observer's `freshness` option computes it): the recorder keeps a few figures per
//! series, not every sample, so `now - last_sync_timestamp` cannot be rebuilt afterwards.

use std::collections::BTreeMap;

use crate::event::FaultState;
use crate::metric::{Kind, Metric, MetricId, Quantity, Stat};
use crate::record::{MetricStats, Record, RequestStats};
use crate::scenario::model::{FaultKind, LatencyBasis};

use super::{recovery_watched, Watched};

/// Why a criterion has no measurement, or data that rules a pass out. The criterion then
/// fails: a gate never passes on missing data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unmeasured {
    #[error("no requests ran")]
    NoRequests,
    #[error("no request named `{0}` in the scenario")]
    UnknownRequest(String),
    #[error("no request named `{0}` ran")]
    RequestNotRun(String),
    #[error("no {basis} latency was recorded for {}", quoted_or(.request, "the requests"))]
    NoLatency {
        basis: &'static str,
        request: Option<String>,
    },
    #[error("no flows ended")]
    NoFlows,
    #[error("no flow named `{0}` ended")]
    FlowNotRun(String),
    #[error("the load did not run")]
    LoadNotRun,
    #[error("the load opened no connection")]
    NoConnections,
    #[error("no WebSocket user ran")]
    NoWs,
    #[error("no WebSocket message got a matching reply")]
    NoWsReplies,
    #[error("no health probes were recorded{}", for_service(.0, " for"))]
    NoProbes(Option<String>),
    #[error("no resource samples were recorded for `{0}`")]
    NoResources(String),
    #[error("no fault was applied{}", for_service(.0, " to"))]
    NoFault(Option<String>),
    #[error("no fault named (or of kind) `{0}` was applied")]
    FaultNotApplied(String),
    /// (service, fault) of every fault the service did not recover from.
    #[error("{}", not_recovered(.0))]
    NotRecovered(Vec<(String, String)>),
    #[error("service `{service}` has no health check, so its recovery after fault `{fault}` was not measured")]
    NoHealthCheck { service: String, fault: String },
    #[error("fault `{fault}` ({kind}) leaves `{service}` up; no recovery to measure")]
    NothingToRecover {
        fault: String,
        kind: &'static str,
        service: String,
    },
    #[error("no `data_loss_keys` metric was recorded (no data canary ran)")]
    NoCanary,
    #[error("`{service}` recorded no series `{series}`")]
    NoSeries { service: String, series: String },
    #[error("`{service}` recorded `{series}` only with labels, e.g. `{example}`; name the series with its labels")]
    OnlyLabelled {
        service: String,
        series: String,
        example: String,
    },
    #[error("the rate of `{series}` needs two samples at different times; `{service}` recorded {samples}")]
    TooFewSamples {
        service: String,
        series: String,
        samples: u64,
    },
    #[error("{metric} has no statistic {stat}")]
    NoSuchStat { metric: String, stat: String },
    #[error("the pipeline never synced (`{service}` `{series}` stayed 0)")]
    NeverSynced { service: String, series: String },
    #[error("`{service}` reported only `{series}`; freshness needs a `pipeline_freshness_seconds` gauge")]
    OnlyTimestamp { service: String, series: String },
    #[error("no `pipeline_freshness_seconds` metric was recorded")]
    NoFreshness,
    #[error("no `duplicate_records` metric was recorded")]
    NoDuplicates,
    #[error("no scraped `*{0}` counter moved (keep it in a service's `metrics` scrape)")]
    NoPipelineSeries(&'static str),
    #[error("neither load nor a fault ran: no window to measure memory over")]
    NoStress,
    #[error("fewer than 3 memory samples of `{0}` while the load and faults ran")]
    TooFewMemorySamples(String),
    #[error("no memory sample of `{0}` after the load and faults ended; set a longer `cooldown`")]
    NoCooldown(String),
    #[error("no health probe failed after {}", .0.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))]
    NeverDetected(Vec<String>),
}

fn quoted_or(name: &Option<String>, none: &str) -> String {
    name.as_deref()
        .map(|n| format!("`{n}`"))
        .unwrap_or_else(|| none.into())
}

fn for_service(service: &Option<String>, word: &str) -> String {
    service
        .as_deref()
        .map(|s| format!("{word} `{s}`"))
        .unwrap_or_default()
}

fn not_recovered(v: &[(String, String)]) -> String {
    v.iter()
        .map(|(s, f)| format!("service `{s}` did not recover after fault `{f}`"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A measurement: the value (None: nothing to measure), a forced failure (data that
/// exists but rules a pass out, e.g. a service that never recovered), and why.
pub(super) struct Measured {
    pub value: Option<Quantity>,
    pub fail: bool,
    pub detail: Option<String>,
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
    fn missing(why: Unmeasured) -> Self {
        Measured::failed(None, why)
    }
    fn failed(q: Option<Quantity>, why: Unmeasured) -> Self {
        Measured {
            value: q,
            fail: true,
            detail: Some(why.to_string()),
        }
    }
}

/// The stats a request criterion reads: one request by name, or all.
fn stats<'a>(record: &'a Record, name: Option<&str>) -> Result<&'a RequestStats, Unmeasured> {
    match name {
        None if record.total.count == 0 => Err(Unmeasured::NoRequests),
        None => Ok(&record.total),
        Some(n) => match record.requests.iter().find(|r| r.name == n) {
            None => Err(Unmeasured::UnknownRequest(n.into())),
            Some(r) if r.count == 0 => Err(Unmeasured::RequestNotRun(n.into())),
            Some(r) => Ok(r),
        },
    }
}

/// A flow's figures (all flows together without a name); a flow with no ended run has
/// none.
fn flow_stats<'a>(record: &'a Record, name: Option<&str>) -> Result<&'a RequestStats, Unmeasured> {
    match name {
        None if record.flow_total.count == 0 => Err(Unmeasured::NoFlows),
        None => Ok(&record.flow_total),
        Some(n) => match record.flows.iter().find(|r| r.name == n) {
            Some(r) if r.count > 0 => Ok(r),
            _ => Err(Unmeasured::FlowNotRun(n.into())),
        },
    }
}

fn basis_name(b: LatencyBasis) -> &'static str {
    match b {
        LatencyBasis::Corrected => "corrected",
        LatencyBasis::Raw => "raw",
    }
}

/// A latency statistic of a µs histogram, exact (never rounded to ms). None when empty,
/// or for a statistic a histogram does not have (`last`, `rate`).
pub fn latency_stat(h: &hdrhistogram::Histogram<u64>, stat: Stat) -> Option<f64> {
    if h.is_empty() {
        return None;
    }
    match stat {
        Stat::Percentile(p) => Some(h.value_at_quantile((p / 100.0).clamp(0.0, 1.0)) as f64),
        Stat::Avg => Some(h.mean()),
        Stat::Min => Some(h.min() as f64),
        Stat::Max => Some(h.max() as f64),
        Stat::Last | Stat::Rate => None,
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The `ws.*` metrics, on the WebSocket users' totals.
fn ws(metric: &Metric, record: &Record) -> Measured {
    let Some(t) = &record.ws else {
        return Measured::missing(Unmeasured::NoWs);
    };
    match metric.id {
        MetricId::WsLatency => {
            let Some(stat) = metric.stat else {
                return Measured::missing(Unmeasured::NoSuchStat {
                    metric: metric.name(),
                    stat: "given".into(),
                });
            };
            match latency_stat(&t.rtt, stat) {
                Some(v) => Measured::with(
                    Quantity::DurationUs(v),
                    format!("{} answered", plural(t.rtt.len(), "message", "messages")),
                ),
                None => Measured::missing(Unmeasured::NoWsReplies),
            }
        }
        MetricId::WsErrorRate => {
            let attempts = t.attempts();
            if attempts == 0 {
                return Measured::missing(Unmeasured::NoWs);
            }
            Measured::with(
                Quantity::Percent(t.failures() as f64 / attempts as f64 * 100.0),
                format!(
                    "{} of {} connects, {} of {} messages failed",
                    t.connect_failures, t.connects, t.message_failures, t.messages
                ),
            )
        }
        MetricId::WsConnectionsPeak => Measured::ok(Quantity::Count(f64::from(t.peak))),
        _ => Measured::with(
            Quantity::Count(t.abnormal_closes as f64),
            format!(
                "{} of {} closed abnormally",
                t.abnormal_closes,
                plural(t.connects - t.connect_failures, "connection", "connections")
            ),
        ),
    }
}

/// Measure one metric on the record.
pub(super) fn measure(metric: &Metric, record: &Record, watched: &Watched) -> Measured {
    let name = metric.request.as_deref();
    let service = metric.service.as_deref();
    match metric.id {
        MetricId::Latency => {
            let s = match stats(record, name) {
                Ok(s) => s,
                Err(e) => return Measured::missing(e),
            };
            let basis = record.latency_basis;
            let Some(stat) = metric.stat else {
                return Measured::missing(Unmeasured::NoSuchStat {
                    metric: metric.name(),
                    stat: "given".into(),
                });
            };
            match latency_stat(s.graded(basis), stat) {
                Some(v) => Measured::with(
                    Quantity::DurationUs(v),
                    format!(
                        "{} latency of {}",
                        basis_name(basis),
                        plural(s.count, "request", "requests")
                    ),
                ),
                None => Measured::missing(Unmeasured::NoLatency {
                    basis: basis_name(basis),
                    request: name.map(String::from),
                }),
            }
        }
        MetricId::FlowLatency => {
            let s = match flow_stats(record, name) {
                Ok(s) => s,
                Err(e) => return Measured::missing(e),
            };
            let Some(stat) = metric.stat else {
                return Measured::missing(Unmeasured::NoSuchStat {
                    metric: metric.name(),
                    stat: "given".into(),
                });
            };
            match latency_stat(&s.raw, stat) {
                Some(v) => Measured::with(
                    Quantity::DurationUs(v),
                    format!(
                        "{} (first step sent to last answered)",
                        plural(s.count, "flow", "flows")
                    ),
                ),
                None => Measured::missing(Unmeasured::NoFlows),
            }
        }
        MetricId::FlowErrorRate => match flow_stats(record, name) {
            Ok(s) => Measured::with(
                Quantity::Percent(s.errors as f64 / s.count as f64 * 100.0),
                format!(
                    "{} of {}",
                    plural(s.errors, "failed flow", "failed flows"),
                    plural(s.count, "flow", "flows")
                ),
            ),
            Err(e) => Measured::missing(e),
        },
        MetricId::FlowCount => match flow_stats(record, name) {
            Ok(s) => Measured::ok(Quantity::Count(s.count as f64)),
            Err(e) => Measured::failed(Some(Quantity::Count(0.0)), e),
        },
        MetricId::Connect => {
            let c = &record.connections;
            let Some(stat) = metric.stat else {
                return Measured::missing(Unmeasured::NoSuchStat {
                    metric: metric.name(),
                    stat: "given".into(),
                });
            };
            match latency_stat(&c.handshake, stat) {
                Some(v) => Measured::with(
                    Quantity::DurationUs(v),
                    format!(
                        "{} ({} TLS, {} resumed)",
                        plural(c.count, "connection", "connections"),
                        c.tls,
                        c.resumed
                    ),
                ),
                None => Measured::missing(Unmeasured::NoConnections),
            }
        }
        MetricId::ErrorRate => match stats(record, name) {
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
        MetricId::ErrorCount => match stats(record, name) {
            Ok(s) => Measured::ok(Quantity::Count(s.errors as f64)),
            Err(e) => Measured::failed(Some(Quantity::Count(0.0)), e),
        },
        MetricId::Throughput => {
            let secs = record.measured_duration().as_secs_f64();
            if secs <= 0.0 {
                return Measured::missing(Unmeasured::LoadNotRun);
            }
            match stats(record, name) {
                Ok(s) => Measured::with(
                    Quantity::PerSecond(s.count as f64 / secs),
                    format!("{} in {secs:.1}s", plural(s.count, "request", "requests")),
                ),
                Err(e) => Measured::failed(Some(Quantity::PerSecond(0.0)), e),
            }
        }
        MetricId::RequestCount => match name {
            None => Measured::ok(Quantity::Count(record.total.count as f64)),
            Some(n) => match record.requests.iter().find(|r| r.name == n) {
                Some(r) => Measured::ok(Quantity::Count(r.count as f64)),
                None => Measured::missing(Unmeasured::UnknownRequest(n.into())),
            },
        },
        MetricId::WsLatency
        | MetricId::WsErrorRate
        | MetricId::WsConnectionsPeak
        | MetricId::WsClosesAbnormal => ws(metric, record),
        MetricId::UsersPeak => Measured::ok(Quantity::Count(record.users_peak as f64)),
        MetricId::DroppedIterations => Measured::ok(Quantity::Count(record.dropped as f64)),
        MetricId::Availability => availability(record, service),
        MetricId::DetectMax => detect(record, service),
        MetricId::ProbeSuccess => {
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
                return Measured::missing(Unmeasured::NoProbes(service.map(String::from)));
            }
            Measured::with(
                Quantity::Percent(ok as f64 / total as f64 * 100.0),
                format!("{ok} of {} ok", plural(total, "probe", "probes")),
            )
        }
        MetricId::RecoveryMax => recovery(record, &BySel::Service(service), watched, false),
        MetricId::RecoveryAvg => recovery(record, &BySel::Service(service), watched, true),
        MetricId::Recovery => {
            let fault = metric.fault.as_deref().unwrap_or_default();
            recovery(record, &BySel::Fault(fault), watched, false)
        }
        MetricId::PipelineThroughput => {
            let rates: Vec<(f64, String)> = series_ending(record, "records_synced_total")
                .filter(|(_, _, m)| m.samples >= 2 && m.last_at > m.first_at)
                .map(|(svc, name, m)| {
                    (
                        m.increase / (m.last_at - m.first_at).as_secs_f64(),
                        format!("`{name}` of `{svc}`"),
                    )
                })
                .collect();
            if rates.is_empty() {
                return Measured::missing(Unmeasured::NoPipelineSeries("records_synced_total"));
            }
            Measured::with(
                Quantity::PerSecond(rates.iter().map(|r| r.0).sum()),
                format!(
                    "rate of {}",
                    rates
                        .iter()
                        .map(|r| r.1.as_str())
                        .collect::<Vec<_>>()
                        .join(" + ")
                ),
            )
        }
        MetricId::PipelineSuccess => {
            let sum = |suffix| -> f64 {
                series_ending(record, suffix)
                    .map(|(_, _, m)| m.increase)
                    .sum()
            };
            let (ok, failed) = (sum("syncs_total"), sum("sync_failures_total"));
            if ok + failed <= 0.0 {
                return Measured::missing(Unmeasured::NoPipelineSeries("syncs_total"));
            }
            Measured::with(
                Quantity::Percent(ok / (ok + failed) * 100.0),
                format!("{ok} of {} sync runs succeeded", ok + failed),
            )
        }
        MetricId::ValidationRate => {
            let invalid: f64 = series_ending(record, "records_invalid_total")
                .map(|(_, _, m)| m.increase)
                .sum();
            // A service's accepted records: its `valid` counter, else what it wrote.
            let mut valid = 0.0;
            let mut seen = std::collections::BTreeSet::new();
            for (svc, _, m) in series_ending(record, "records_valid_total") {
                seen.insert(svc.to_string());
                valid += m.increase;
            }
            for (svc, _, m) in series_ending(record, "records_synced_total") {
                if !seen.contains(svc) {
                    valid += m.increase;
                }
            }
            if valid + invalid <= 0.0 {
                return Measured::missing(Unmeasured::NoPipelineSeries("records_invalid_total"));
            }
            Measured::with(
                Quantity::Percent(valid / (valid + invalid) * 100.0),
                format!("{valid} of {} records valid", valid + invalid),
            )
        }
        MetricId::MemoryGrowth | MetricId::MemoryRetained => {
            let svc = service.unwrap_or_default();
            let Some(r) = record.resources.get(svc).filter(|r| r.samples > 0) else {
                return Measured::missing(Unmeasured::NoResources(svc.into()));
            };
            let Some((start, end)) = record.stress_window() else {
                return Measured::missing(Unmeasured::NoStress);
            };
            if metric.id == MetricId::MemoryGrowth {
                match r.growth(start, end) {
                    Some(g) => Measured::with(
                        Quantity::BytesPerMinute(g),
                        format!(
                            "fit over {:.0}s of samples, {:.1}s to {:.1}s",
                            (end - start).as_secs_f64(),
                            start.as_secs_f64(),
                            end.as_secs_f64()
                        ),
                    ),
                    None => Measured::missing(Unmeasured::TooFewMemorySamples(svc.into())),
                }
            } else {
                match r.retained(start, end) {
                    Some((retained, before, after)) => Measured::with(
                        Quantity::Bytes(retained),
                        format!(
                            "{} after, {} before",
                            crate::metric::format::bytes(after),
                            crate::metric::format::bytes(before)
                        ),
                    ),
                    None => Measured::missing(Unmeasured::NoCooldown(svc.into())),
                }
            }
        }
        MetricId::MemoryPeak | MetricId::CpuAvg | MetricId::CpuPeak => {
            let svc = service.unwrap_or_default();
            match record.resources.get(svc) {
                Some(r) if r.samples > 0 => Measured::with(
                    match metric.id {
                        MetricId::MemoryPeak => Quantity::Bytes(r.mem_peak_bytes as f64),
                        MetricId::CpuAvg => Quantity::Percent(r.cpu_avg_pct),
                        _ => Quantity::Percent(r.cpu_peak_pct),
                    },
                    plural(r.samples, "sample", "samples"),
                ),
                _ => Measured::missing(Unmeasured::NoResources(svc.into())),
            }
        }
        // Only the canary's own figure: a scraped series of that name proves nothing.
        MetricId::DataLossKeys => match record
            .metrics
            .get(&(
                crate::scenario::model::CANARY_SERVICE.to_string(),
                crate::scenario::model::CANARY_LOSS_METRIC.to_string(),
            ))
            .filter(|m| m.samples > 0 && m.max.is_finite())
        {
            Some(m) => Measured::with(
                Quantity::Count(m.max),
                format!(
                    "`{}` of the data canary",
                    crate::scenario::model::CANARY_LOSS_METRIC
                ),
            ),
            None => Measured::missing(Unmeasured::NoCanary),
        },
        MetricId::Series => series(metric, record),
        MetricId::FreshnessMax => {
            match metric_max(record, &["pipeline_freshness_seconds", "freshness_seconds"]) {
                Some((v, from)) => Measured::with(Quantity::DurationUs((v * 1e6).max(0.0)), from),
                None => {
                    let stamp = record
                        .metrics
                        .iter()
                        .find(|((_, n), _)| n.ends_with("last_sync_timestamp_seconds"));
                    Measured::missing(match stamp {
                        Some(((svc, n), m)) if m.max <= 0.0 => Unmeasured::NeverSynced {
                            service: svc.clone(),
                            series: n.clone(),
                        },
                        Some(((svc, n), _)) => Unmeasured::OnlyTimestamp {
                            service: svc.clone(),
                            series: n.clone(),
                        },
                        None => Unmeasured::NoFreshness,
                    })
                }
            }
        }
        // Duplicates written during the run: a store that kept duplicates from an earlier
        // run (a persistent Redis) does not fail this one for them.
        MetricId::DuplicateRecords => {
            match series_ending(record, "duplicate_records")
                .map(|(svc, name, m)| (m.increase, format!("increase of `{name}` of `{svc}`")))
                .max_by(|a, b| a.0.total_cmp(&b.0))
            {
                Some((v, from)) => Measured::with(Quantity::Count(v), from),
                None => Measured::missing(Unmeasured::NoDuplicates),
            }
        }
    }
}

/// `metric.<stat>{service=..., name=...}`: one recorded series.
fn series(metric: &Metric, record: &Record) -> Measured {
    let service = metric.service.clone().unwrap_or_default();
    let name = metric.series.clone().unwrap_or_default();
    let found: Option<&MetricStats> = record
        .metrics
        .get(&(service.clone(), name.clone()))
        .filter(|m| m.samples > 0);
    let Some(m) = found else {
        // A labelled series is recorded as `name{labels}`: say so when that is all there is.
        let prefix = format!("{name}{{");
        let labelled = record
            .metrics
            .keys()
            .find(|(s, n)| *s == service && n.starts_with(&prefix));
        return Measured::missing(match labelled {
            Some((_, example)) => Unmeasured::OnlyLabelled {
                service,
                series: name,
                example: example.clone(),
            },
            None => Unmeasured::NoSeries {
                service,
                series: name,
            },
        });
    };
    let stat = metric.stat.unwrap_or(Stat::Max);
    let samples = plural(m.samples, "sample", "samples");
    let (v, detail) = match stat {
        Stat::Max => (m.max, format!("max of {samples}")),
        Stat::Min => (m.min, format!("min of {samples}")),
        Stat::Last => (m.last, format!("last of {samples}")),
        Stat::Avg => (m.sum / m.samples as f64, format!("avg of {samples}")),
        Stat::Rate => {
            let secs = m.last_at.saturating_sub(m.first_at).as_secs_f64();
            if m.samples < 2 || secs <= 0.0 {
                return Measured::missing(Unmeasured::TooFewSamples {
                    service,
                    series: name,
                    samples: m.samples,
                });
            }
            (
                m.increase / secs,
                format!(
                    "increase {} over {secs:.1}s",
                    crate::metric::format::number(m.increase)
                ),
            )
        }
        Stat::Percentile(_) => {
            return Measured::missing(Unmeasured::NoSuchStat {
                metric: "a series".into(),
                stat: stat.to_string(),
            })
        }
    };
    let q = match metric.kind() {
        Kind::Duration => Quantity::DurationUs(v * 1e6),
        Kind::Bytes => Quantity::Bytes(v),
        Kind::PerSecond => Quantity::PerSecond(v),
        _ => Quantity::Number(v),
    };
    Measured::with(q, format!("{detail} of `{name}` from `{service}`"))
}

/// The max of the metrics whose name is one of `names` or ends with `_<name>`, over every
/// service, with where it came from.
/// Scraped series named `suffix` or `<prefix>_<suffix>`, unlabelled, with samples.
fn series_ending<'a>(
    record: &'a Record,
    suffix: &'a str,
) -> impl Iterator<Item = (&'a str, &'a str, &'a MetricStats)> {
    record.metrics.iter().filter_map(move |((svc, name), m)| {
        let hit = name == suffix || name.strip_suffix(suffix).is_some_and(|p| p.ends_with('_'));
        (hit && m.samples > 0 && m.increase.is_finite()).then_some((svc.as_str(), name.as_str(), m))
    })
}

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

/// Availability by time, of one service or of the least available one.
fn availability(record: &Record, service: Option<&str>) -> Measured {
    let of = |name: &str| record.probes.get(name).and_then(|p| p.uptime());
    let picked = match service {
        Some(s) => of(s).map(|u| (s.to_string(), u)),
        None => record
            .probes
            .keys()
            .filter_map(|s| of(s).map(|u| (s.clone(), u)))
            .min_by(|a, b| a.1.percent.total_cmp(&b.1.percent)),
    };
    match picked {
        Some((name, u)) => Measured::with(
            Quantity::Percent(u.percent),
            format!(
                "{}down {:.1}s of {:.1}s ({}), resolution {:.1}s",
                if service.is_none() && record.probes.len() > 1 {
                    format!("`{name}`: ")
                } else {
                    String::new()
                },
                u.down_s,
                u.span_s,
                plural(u64::from(u.outages), "outage", "outages"),
                u.resolution_s
            ),
        ),
        None => Measured::missing(Unmeasured::NoProbes(service.map(String::from))),
    }
}

/// Time to detect: from each applied fault to the first failed probe of its target sent
/// before the fault's recovery or undo (`ProbeStats::detect`).
fn detect(record: &Record, service: Option<&str>) -> Measured {
    let mut worst: Option<f64> = None;
    let (mut applied, mut unseen) = (0u32, Vec::new());
    for w in crate::record::fault_windows(&record.faults)
        .iter()
        .filter(|w| service.is_none_or(|s| s == w.target))
    {
        let (Some(at), Some(p)) = (w.applied_at, record.probes.get(&w.target)) else {
            continue;
        };
        applied += 1;
        match p.detect(at, w.recovered_at.or(w.undone_at)) {
            Some(d) => {
                let d = d.as_secs_f64();
                worst = Some(worst.map_or(d, |x: f64| x.max(d)));
            }
            None => unseen.push(w.name.clone()),
        }
    }
    unseen.dedup();
    match worst {
        Some(w) => Measured::with(
            Quantity::DurationUs(w * 1e6),
            if unseen.is_empty() {
                format!(
                    "{} seen down",
                    plural(u64::from(applied), "fault", "faults")
                )
            } else {
                format!(
                    "not seen down after {}",
                    unseen
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        ),
        None if applied == 0 => Measured::missing(Unmeasured::NoFault(service.map(String::from))),
        None => Measured::missing(Unmeasured::NeverDetected(unseen)),
    }
}

/// Which faults a recovery figure reads.
enum BySel<'a> {
    /// Every fault, or those on one service.
    Service(Option<&'a str>),
    /// The faults with this name, or of this kind.
    Fault(&'a str),
}

impl BySel<'_> {
    fn matches(&self, f: &crate::event::FaultEvent) -> bool {
        match self {
            BySel::Service(s) => s.is_none_or(|s| s == f.target),
            BySel::Fault(n) => f.name == *n || f.kind.as_str() == *n,
        }
    }

    fn none_applied(&self) -> Unmeasured {
        match self {
            BySel::Service(s) => Unmeasured::NoFault(s.map(String::from)),
            BySel::Fault(n) => Unmeasured::FaultNotApplied((*n).into()),
        }
    }
}

/// The longest recovery, or the mean one (MTTR) when `mean`.
fn recovery(record: &Record, sel: &BySel<'_>, watched: &Watched, mean: bool) -> Measured {
    let mut occ: BTreeMap<(usize, u32), Occurrence> = BTreeMap::new();
    for f in &record.faults {
        if !sel.matches(f) {
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
    let (mut sum, mut recovered) = (0.0, 0u32);
    let mut unrecovered: Vec<(String, String)> = Vec::new();
    let mut unwatched = Vec::new();
    let mut applied = 0u32;
    for o in occ.values().filter(|o| o.applied || o.recovery_s.is_some()) {
        applied += 1;
        match o.recovery_s {
            Some(r) => {
                max = Some(max.unwrap_or(0.0).max(r));
                sum += r;
                recovered += 1;
            }
            None if recovery_watched(o.kind) && watched.has_health(o.target) => {
                unrecovered.push((o.target.into(), o.name.into()));
            }
            None => unwatched.push(o),
        }
    }
    let measured = if mean {
        (recovered > 0).then(|| Quantity::DurationUs(sum / f64::from(recovered) * 1e6))
    } else {
        max.map(|s| Quantity::DurationUs(s * 1e6))
    };
    if !unrecovered.is_empty() {
        unrecovered.dedup();
        return Measured::failed(None, Unmeasured::NotRecovered(unrecovered));
    }
    match measured {
        Some(q) => Measured::with(
            q,
            format!("{} recovered", plural(applied as u64, "fault", "faults")),
        ),
        None if applied == 0 => Measured::missing(sel.none_applied()),
        None => {
            let o = unwatched[0];
            Measured::missing(if recovery_watched(o.kind) {
                Unmeasured::NoHealthCheck {
                    service: o.target.into(),
                    fault: o.name.into(),
                }
            } else {
                Unmeasured::NothingToRecover {
                    fault: o.name.into(),
                    kind: o.kind.as_str(),
                    service: o.target.into(),
                }
            })
        }
    }
}
