//! The metrics a criterion can grade, in one table ([`REGISTRY`]): each row says the
//! metric's name, the kind of quantity it is compared with, which selectors it takes, which
//! statistics are legal, and what it means. The criteria parser ([`parse`]), the grader
//! (`grade::measure`, one arm per [`MetricId`]) and the reports (names, units, formats)
//! all read this table; adding a metric is one `MetricId` variant with its row here, and
//! one arm in the grader.
//!
//! This module depends on nothing but `crate::units` and `crate::suggest`, so `scenario` can parse criteria
//! when a scenario is loaded and `grade` can measure them afterwards without a circle.
//!
//! ```text
//! latency.p95 < 200ms                  latency.p99.9{name="create item"} < 1s
//! errors.rate < 0.1%                   errors.count{name="get item"} == 0
//! throughput.rps >= 100                requests.count > 1000
//! users.peak >= 5000                   iterations.dropped == 0
//! availability >= 99.99%               availability{service="api"} >= 99.9%
//! recovery.max < 5m                    data_loss.keys == 0
//! recovery{fault="kill redis"} < 10s   recovery{fault="pause"} < 2s
//! memory.api.peak < 2GiB               cpu.api.avg < 40%
//! metric.max{service="pipeline", name="pipeline_freshness_seconds"} < 10s
//! metric.rate{service="pipeline", name="pipeline_records_synced_total"} > 5/s
//! ```

pub mod format;
mod parse;
pub mod tolerance;

use std::fmt;

use serde::Serialize;

pub use parse::{parse, CriterionError, MAX_THRESHOLD};

/// Which metric a criterion reads; the grader matches on it exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricId {
    Latency,
    /// A flow's latency: its first step sent to its last step answered.
    FlowLatency,
    /// Failed flows over flows run.
    FlowErrorRate,
    /// Flows that ran to their end or failed.
    FlowCount,
    /// Handshake time of the load's new connections (TCP + TLS).
    Connect,
    ErrorRate,
    ErrorCount,
    Throughput,
    RequestCount,
    UsersPeak,
    DroppedIterations,
    Availability,
    ProbeSuccess,
    RecoveryMax,
    RecoveryAvg,
    /// The recovery of one fault, by name or kind: `recovery{fault="..."}`.
    Recovery,
    DetectMax,
    PipelineThroughput,
    PipelineSuccess,
    ValidationRate,
    DataLossKeys,
    MemoryPeak,
    MemoryGrowth,
    MemoryRetained,
    CpuAvg,
    CpuPeak,
    /// Any scraped Prometheus series: `metric.<stat>{service=..., name=...}`.
    Series,
    FreshnessMax,
    DuplicateRecords,
    /// WebSocket message round trip (send to matching reply).
    WsLatency,
    WsErrorRate,
    WsConnectionsPeak,
    WsClosesAbnormal,
}

/// The kind of quantity a metric is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Duration,
    /// A percentage that cannot exceed 100.
    Share,
    /// A percentage that may exceed 100 (CPU over several cores).
    Percent,
    Bytes,
    /// Bytes per minute (memory growth).
    BytesPerMinute,
    /// A whole number.
    Count,
    /// Any number, as a scraped gauge holds.
    Number,
    PerSecond,
    /// Decided by the series: see [`Metric::kind`].
    OfSeries,
}

impl Kind {
    pub(crate) fn example(self) -> &'static str {
        match self {
            Kind::Duration => "a duration like 200ms",
            Kind::Share | Kind::Percent => "a percentage like 0.1%",
            Kind::Bytes => "a size like 512MiB",
            Kind::BytesPerMinute => "a growth like 10MiB/min",
            Kind::Count => "a plain count like 0 or 1000",
            Kind::Number | Kind::OfSeries => "a plain number like 0 or 2.5",
            Kind::PerSecond => "a rate like 100 or 100/s",
        }
    }

    pub(crate) fn units(self) -> &'static str {
        match self {
            Kind::Duration => "units: us, ms, s, m, h",
            Kind::Share | Kind::Percent => "write the number followed by %",
            Kind::Bytes => "units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB",
            Kind::BytesPerMinute => "a size per time: 10MiB/min, 1MiB/s or 100MiB/h",
            Kind::Count => "a count has no unit",
            Kind::Number | Kind::OfSeries => "a series' value has no unit (in seconds or bytes when its name ends in _seconds or _bytes)",
            Kind::PerSecond => "a rate is a plain number or a number followed by /s",
        }
    }
}

/// What a selector restricts a metric to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selects {
    /// A request of the scenario, by name.
    Request,
    /// A flow of the scenario, by name (held in [`Metric::request`]).
    Flow,
    /// A service of the scenario.
    Service,
    /// A scraped series, by its recorded name (`name{labels}` for a labelled one).
    Series,
    /// A fault of the scenario, by its name or its kind.
    Fault,
}

impl Selects {
    pub fn what(self) -> &'static str {
        match self {
            Selects::Request => "request name",
            Selects::Flow => "flow name",
            Selects::Service => "service",
            Selects::Series => "series name",
            Selects::Fault => "fault name or kind",
        }
    }
}

/// A selector a metric takes: `{key="..."}`.
#[derive(Debug, Clone, Copy)]
pub struct SelectorDef {
    pub key: &'static str,
    pub selects: Selects,
    pub required: bool,
}

const BY_REQUEST: &[SelectorDef] = &[SelectorDef {
    key: "name",
    selects: Selects::Request,
    required: false,
}];
const BY_FLOW: &[SelectorDef] = &[SelectorDef {
    key: "name",
    selects: Selects::Flow,
    required: false,
}];
const BY_SERVICE: &[SelectorDef] = &[SelectorDef {
    key: "service",
    selects: Selects::Service,
    required: false,
}];
const BY_FAULT: &[SelectorDef] = &[SelectorDef {
    key: "fault",
    selects: Selects::Fault,
    required: true,
}];
const BY_SERIES: &[SelectorDef] = &[
    SelectorDef {
        key: "service",
        selects: Selects::Service,
        required: true,
    },
    SelectorDef {
        key: "name",
        selects: Selects::Series,
        required: true,
    },
];

/// A statistic: the `<stat>` part of `latency.<stat>` or `metric.<stat>`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// Percentile, 0 < p <= 100 (p95 = 95.0, p99.9 = 99.9).
    Percentile(f64),
    Avg,
    Min,
    Max,
    /// The last sample.
    Last,
    /// Per second, from a counter's increase between its first and last sample.
    Rate,
}

/// The statistics a row allows, without their parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatKind {
    Percentile,
    Avg,
    Min,
    Max,
    Last,
    Rate,
}

impl Stat {
    pub fn kind(self) -> StatKind {
        match self {
            Stat::Percentile(_) => StatKind::Percentile,
            Stat::Avg => StatKind::Avg,
            Stat::Min => StatKind::Min,
            Stat::Max => StatKind::Max,
            Stat::Last => StatKind::Last,
            Stat::Rate => StatKind::Rate,
        }
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stat::Percentile(p) => write!(f, "p{}", format::trim(*p, 6)),
            Stat::Avg => f.write_str("avg"),
            Stat::Min => f.write_str("min"),
            Stat::Max => f.write_str("max"),
            Stat::Last => f.write_str("last"),
            Stat::Rate => f.write_str("rate"),
        }
    }
}

impl StatKind {
    /// As shown in lists: `p95` stands for every percentile.
    pub fn example(self) -> &'static str {
        match self {
            StatKind::Percentile => "p95",
            StatKind::Avg => "avg",
            StatKind::Min => "min",
            StatKind::Max => "max",
            StatKind::Last => "last",
            StatKind::Rate => "rate",
        }
    }
}

/// One metric of the registry.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub id: MetricId,
    /// The name as written, with placeholders: `<service>` is a service name, any other
    /// `<...>` (always last) is a statistic from `stats`.
    pub pattern: &'static str,
    pub kind: Kind,
    pub selectors: &'static [SelectorDef],
    /// The statistics the `<stat>` placeholder takes (empty: the name has none).
    pub stats: &'static [StatKind],
    /// A criterion that uses it.
    pub example: &'static str,
    pub description: &'static str,
}

const LATENCY_STATS: &[StatKind] = &[
    StatKind::Percentile,
    StatKind::Avg,
    StatKind::Min,
    StatKind::Max,
];
const SERIES_STATS: &[StatKind] = &[
    StatKind::Max,
    StatKind::Min,
    StatKind::Last,
    StatKind::Avg,
    StatKind::Rate,
];

/// Every metric a criterion can name.
pub const REGISTRY: &[MetricDef] = &[
    MetricDef {
        id: MetricId::Latency,
        pattern: "latency.<stat>",
        kind: Kind::Duration,
        selectors: BY_REQUEST,
        stats: LATENCY_STATS,
        example: "latency.p99.9{name=\"create item\"} < 1s",
        description: "response time (a percentile pNN, avg, min, max) on the graded basis, of every request or one",
    },
    MetricDef {
        id: MetricId::FlowLatency,
        pattern: "flow.latency.<stat>",
        kind: Kind::Duration,
        selectors: BY_FLOW,
        stats: LATENCY_STATS,
        example: "flow.latency.p95{name=\"checkout\"} < 2s",
        description: "time of a whole flow, its first step sent to its last step answered, think times between steps included (a percentile pNN, avg, min, max), of every flow or one",
    },
    MetricDef {
        id: MetricId::FlowErrorRate,
        pattern: "flow.errors.rate",
        kind: Kind::Share,
        selectors: BY_FLOW,
        stats: &[],
        example: "flow.errors.rate{name=\"checkout\"} < 1%",
        description: "flows that stopped at a failed step over all flows that ended",
    },
    MetricDef {
        id: MetricId::FlowCount,
        pattern: "flow.count",
        kind: Kind::Count,
        selectors: BY_FLOW,
        stats: &[],
        example: "flow.count{name=\"checkout\"} > 100",
        description: "flows that ended (completed or failed at a step)",
    },
    MetricDef {
        id: MetricId::Connect,
        pattern: "connect.<stat>",
        kind: Kind::Duration,
        selectors: &[],
        stats: LATENCY_STATS,
        example: "connect.p95 < 50ms",
        description: "handshake time of each new load connection: TCP connect plus the TLS handshake (a percentile pNN, avg, min, max); not part of request latency",
    },
    MetricDef {
        id: MetricId::ErrorRate,
        pattern: "errors.rate",
        kind: Kind::Share,
        selectors: BY_REQUEST,
        stats: &[],
        example: "errors.rate < 0.1%",
        description: "failed requests over all requests",
    },
    MetricDef {
        id: MetricId::ErrorCount,
        pattern: "errors.count",
        kind: Kind::Count,
        selectors: BY_REQUEST,
        stats: &[],
        example: "errors.count{name=\"get item\"} == 0",
        description: "failed requests",
    },
    MetricDef {
        id: MetricId::Throughput,
        pattern: "throughput.rps",
        kind: Kind::PerSecond,
        selectors: BY_REQUEST,
        stats: &[],
        example: "throughput.rps >= 100",
        description: "requests per second over the load's duration",
    },
    MetricDef {
        id: MetricId::RequestCount,
        pattern: "requests.count",
        kind: Kind::Count,
        selectors: BY_REQUEST,
        stats: &[],
        example: "requests.count > 1000",
        description: "requests that ran",
    },
    MetricDef {
        id: MetricId::UsersPeak,
        pattern: "users.peak",
        kind: Kind::Count,
        selectors: &[],
        stats: &[],
        example: "users.peak >= 5000",
        description: "most virtual users (open model: iterations in flight) at once",
    },
    MetricDef {
        id: MetricId::DroppedIterations,
        pattern: "iterations.dropped",
        kind: Kind::Count,
        selectors: &[],
        stats: &[],
        example: "iterations.dropped == 0",
        description: "open model: iterations that were due but could not start",
    },
    MetricDef {
        id: MetricId::Availability,
        pattern: "availability",
        kind: Kind::Share,
        selectors: BY_SERVICE,
        stats: &[],
        example: "availability{service=\"api\"} >= 99.9%",
        description: "share of the time a service was healthy (from its first probe to its last; each change placed half-way between the two probes that disagree, so the resolution is the probe interval); without a selector, the least available service",
    },
    MetricDef {
        id: MetricId::ProbeSuccess,
        pattern: "probes.success",
        kind: Kind::Share,
        selectors: BY_SERVICE,
        stats: &[],
        example: "probes.success{service=\"api\"} >= 99%",
        description: "successful health probes over all probes (a count of probes, not of time), of every service or one",
    },
    MetricDef {
        id: MetricId::RecoveryMax,
        pattern: "recovery.max",
        kind: Kind::Duration,
        selectors: BY_SERVICE,
        stats: &[],
        example: "recovery.max < 5m",
        description: "longest time from a fault (crash: its apply; stall: its undo) to the answer of the first of two healthy probes in a row; a service that never recovers fails it",
    },
    MetricDef {
        id: MetricId::RecoveryAvg,
        pattern: "recovery.avg",
        kind: Kind::Duration,
        selectors: BY_SERVICE,
        stats: &[],
        example: "recovery.avg < 30m",
        description: "mean time to recover (MTTR) over the faults, each measured as recovery.max measures it; a service that never recovers fails it",
    },
    MetricDef {
        id: MetricId::Recovery,
        pattern: "recovery",
        kind: Kind::Duration,
        selectors: BY_FAULT,
        stats: &[],
        example: "recovery{fault=\"kill redis\"} < 10s",
        description: "recovery time of one fault (by its name, or every fault of a kind), measured as recovery.max measures it; the longest of its repetitions; a service that never recovers fails it",
    },
    MetricDef {
        id: MetricId::PipelineThroughput,
        pattern: "pipeline.throughput",
        kind: Kind::PerSecond,
        selectors: &[],
        stats: &[],
        example: "pipeline.throughput > 10000/s",
        description: "records per second a pipeline wrote: the rate of every scraped `*_records_synced_total` counter, summed over services",
    },
    MetricDef {
        id: MetricId::PipelineSuccess,
        pattern: "pipeline.success.rate",
        kind: Kind::Share,
        selectors: &[],
        stats: &[],
        example: "pipeline.success.rate > 99%",
        description: "sync runs that succeeded over all sync runs during the run, from the scraped `*_syncs_total` and `*_sync_failures_total` counters",
    },
    MetricDef {
        id: MetricId::ValidationRate,
        pattern: "validation.rate",
        kind: Kind::Share,
        selectors: &[],
        stats: &[],
        example: "validation.rate > 95%",
        description: "records a sink accepted as valid over all it checked during the run: Σ increase of the scraped `*_records_valid_total` counters (or `*_records_synced_total` where a service has no valid counter) over that plus Σ increase of `*_records_invalid_total`",
    },
    MetricDef {
        id: MetricId::DetectMax,
        pattern: "detect.max",
        kind: Kind::Duration,
        selectors: BY_SERVICE,
        stats: &[],
        example: "detect.max < 5s",
        description: "longest time from a fault's apply to the sending of the first failed health probe of its target; faults never seen down are named and not counted",
    },
    MetricDef {
        id: MetricId::DataLossKeys,
        pattern: "data_loss.keys",
        kind: Kind::Count,
        selectors: &[],
        stats: &[],
        example: "data_loss.keys == 0",
        description: "data canary keys written before the faults and missing after them",
    },
    MetricDef {
        id: MetricId::DuplicateRecords,
        pattern: "duplicates.records",
        kind: Kind::Count,
        selectors: &[],
        stats: &[],
        example: "duplicates.records == 0",
        description: "duplicate records written during the run: the increase of a scraped `*_duplicate_records` figure from its first to its last sample (the highest of any service)",
    },
    MetricDef {
        id: MetricId::MemoryPeak,
        pattern: "memory.<service>.peak",
        kind: Kind::Bytes,
        selectors: &[],
        stats: &[],
        example: "memory.api.peak < 2GiB",
        description: "highest memory (RSS) of a service's processes",
    },
    MetricDef {
        id: MetricId::MemoryGrowth,
        pattern: "memory.<service>.growth",
        kind: Kind::BytesPerMinute,
        selectors: &[],
        stats: &[],
        example: "memory.api.growth < 10MiB/min",
        description: "slope of a service's memory while the load and faults run (Theil–Sen: the median of the slopes between every two samples, so a burst or a few outliers do not move it)",
    },
    MetricDef {
        id: MetricId::MemoryRetained,
        pattern: "memory.<service>.retained",
        kind: Kind::Bytes,
        selectors: &[],
        stats: &[],
        example: "memory.api.retained < 64MiB",
        description: "a service's memory after the load and faults ended (median of the cooldown's samples, its first second skipped) minus its memory before them (median of the samples before, else the first sample)",
    },
    MetricDef {
        id: MetricId::CpuAvg,
        pattern: "cpu.<service>.avg",
        kind: Kind::Percent,
        selectors: &[],
        stats: &[],
        example: "cpu.api.avg < 40%",
        description: "average CPU of a service, in percent of one core",
    },
    MetricDef {
        id: MetricId::CpuPeak,
        pattern: "cpu.<service>.peak",
        kind: Kind::Percent,
        selectors: &[],
        stats: &[],
        example: "cpu.api.peak < 150%",
        description: "highest CPU of a service, in percent of one core",
    },
    MetricDef {
        id: MetricId::FreshnessMax,
        pattern: "pipeline.freshness.max",
        kind: Kind::Duration,
        selectors: &[],
        stats: &[],
        example: "pipeline.freshness.max < 5m",
        description: "highest freshness figure (`pipeline_freshness_seconds`, from a scrape's `freshness` gauge) of any service",
    },
    MetricDef {
        id: MetricId::WsLatency,
        pattern: "ws.latency.<stat>",
        kind: Kind::Duration,
        selectors: &[],
        stats: LATENCY_STATS,
        example: "ws.latency.p95 < 100ms",
        description: "WebSocket message round trip, from the send to the first reply matching its `expect` (a percentile pNN, avg, min, max), of every [[ws]] user",
    },
    MetricDef {
        id: MetricId::WsErrorRate,
        pattern: "ws.errors.rate",
        kind: Kind::Share,
        selectors: &[],
        stats: &[],
        example: "ws.errors.rate < 1%",
        description: "failed WebSocket connects plus failed messages (not sent, or no matching reply within the timeout) over connects plus messages",
    },
    MetricDef {
        id: MetricId::WsConnectionsPeak,
        pattern: "ws.connections.peak",
        kind: Kind::Count,
        selectors: &[],
        stats: &[],
        example: "ws.connections.peak >= 5000",
        description: "most WebSocket connections open at once",
    },
    MetricDef {
        id: MetricId::WsClosesAbnormal,
        pattern: "ws.closes.abnormal",
        kind: Kind::Count,
        selectors: &[],
        stats: &[],
        example: "ws.closes.abnormal == 0",
        description: "WebSocket connections the server ended abnormally: a close code other than 1000/1001, or the TCP connection gone without a close frame",
    },
    MetricDef {
        id: MetricId::Series,
        pattern: "metric.<stat>",
        kind: Kind::OfSeries,
        selectors: BY_SERIES,
        stats: SERIES_STATS,
        example: "metric.max{service=\"pipeline\", name=\"pipeline_freshness_seconds\"} < 10s",
        description: "a scraped Prometheus series: max, min, last, avg of its samples, or rate (per second, counter resets counted); in seconds or bytes when its name ends in _seconds or _bytes",
    },
];

impl MetricId {
    /// The registry row of this metric.
    pub fn def(self) -> &'static MetricDef {
        REGISTRY
            .iter()
            .find(|d| d.id == self)
            .unwrap_or_else(|| unreachable!("every MetricId has a registry row"))
    }
}

/// A metric as a criterion names it: which one, its statistic and its selectors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub id: MetricId,
    /// Set exactly when the row's name has a `<stat>` placeholder.
    pub stat: Option<Stat>,
    /// `{name="..."}` of a request metric.
    pub request: Option<String>,
    /// `{service="..."}`, or the `<service>` of the name.
    pub service: Option<String>,
    /// `{name="..."}` of `metric.<stat>`.
    pub series: Option<String>,
    /// `{fault="..."}` of `recovery`: a fault's name or kind.
    pub fault: Option<String>,
}

impl Metric {
    /// A metric with no statistic and no selector.
    pub fn new(id: MetricId) -> Self {
        Metric {
            id,
            stat: None,
            request: None,
            service: None,
            series: None,
            fault: None,
        }
    }

    pub fn def(&self) -> &'static MetricDef {
        self.id.def()
    }

    /// The request name this metric is restricted to, if any.
    pub fn request_name(&self) -> Option<&str> {
        self.request.as_deref()
    }

    /// The service this metric reads, if any.
    pub fn service(&self) -> Option<&str> {
        self.service.as_deref()
    }

    /// The kind of quantity it is compared with. A series is per second for `rate`, in
    /// seconds or bytes when its name (labels aside) ends in `_seconds` or `_bytes`
    /// (the Prometheus naming convention), else a plain number.
    pub fn kind(&self) -> Kind {
        match self.def().kind {
            Kind::OfSeries => {
                if self.stat == Some(Stat::Rate) {
                    return Kind::PerSecond;
                }
                let name = self.series.as_deref().unwrap_or("");
                let base = name.split('{').next().unwrap_or(name);
                if base.ends_with("_seconds") {
                    Kind::Duration
                } else if base.ends_with("_bytes") {
                    Kind::Bytes
                } else {
                    Kind::Number
                }
            }
            k => k,
        }
    }

    /// The name without its selectors, e.g. `latency.p99.9`, `memory.api.peak`.
    pub fn name(&self) -> String {
        self.def()
            .pattern
            .split('.')
            .map(|seg| match seg {
                "<service>" => self.service.clone().unwrap_or_default(),
                s if s.starts_with('<') => self.stat.map(|s| s.to_string()).unwrap_or_default(),
                s => s.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".")
    }
}

impl fmt::Display for Metric {
    /// The name with its selectors, as a criterion writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        // Selectors, in the registry's order.
        let sels: Vec<String> = self
            .def()
            .selectors
            .iter()
            .filter_map(|s| {
                let v = match s.selects {
                    Selects::Request | Selects::Flow => self.request.as_deref(),
                    Selects::Service => self.service.as_deref(),
                    Selects::Series => self.series.as_deref(),
                    Selects::Fault => self.fault.as_deref(),
                }?;
                Some(format!("{}={v:?}", s.key))
            })
            .collect();
        if sels.is_empty() {
            Ok(())
        } else {
            write!(f, "{{{}}}", sels.join(", "))
        }
    }
}

/// One parsed criterion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Criterion {
    /// The text as written in the scenario (used as the test-case name in JUnit).
    pub source: String,
    pub metric: Metric,
    pub op: Op,
    pub threshold: Quantity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    pub fn holds(self, measured: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => measured < threshold,
            Op::Le => measured <= threshold,
            Op::Gt => measured > threshold,
            Op::Ge => measured >= threshold,
            Op::Eq => measured == threshold,
            Op::Ne => measured != threshold,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value with its kind. Values are normalised: durations in microseconds, percentages
/// in percent (0.1% = 0.1), bytes in bytes, counts, numbers and rates as written.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "unit", content = "value")]
pub enum Quantity {
    DurationUs(f64),
    Percent(f64),
    Bytes(f64),
    Count(f64),
    Number(f64),
    PerSecond(f64),
    BytesPerMinute(f64),
}

impl Quantity {
    pub fn value(self) -> f64 {
        match self {
            Quantity::DurationUs(v)
            | Quantity::Percent(v)
            | Quantity::Bytes(v)
            | Quantity::Count(v)
            | Quantity::Number(v)
            | Quantity::PerSecond(v)
            | Quantity::BytesPerMinute(v) => v,
        }
    }

    /// The unit word, as `summary.json` writes it.
    pub fn unit(self) -> &'static str {
        match self {
            Quantity::DurationUs(_) => "us",
            Quantity::Percent(_) => "percent",
            Quantity::Bytes(_) => "bytes",
            Quantity::Count(_) => "count",
            Quantity::Number(_) => "number",
            Quantity::PerSecond(_) => "per_second",
            Quantity::BytesPerMinute(_) => "bytes_per_minute",
        }
    }
}

impl fmt::Display for Quantity {
    /// As a person writes it: `200ms`, `1.5s`, `0.1%`, `512MiB`, `12/s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&match *self {
            Quantity::DurationUs(us) => format::duration_us(us),
            Quantity::Percent(p) => format::percent(p),
            Quantity::Bytes(b) => format::bytes(b),
            Quantity::Count(c) => format::count(c),
            Quantity::Number(v) => format::number(v),
            Quantity::PerSecond(r) => format::rate(r),
            Quantity::BytesPerMinute(b) => format::bytes_per_minute(b),
        })
    }
}

/// Every metric as shown in messages: a statistic's placeholder spelled out
/// (`latency.pNN (p50, p95, p99, p99.9 ...)`, `latency.avg`), `<service>` left in.
pub fn shown_names() -> Vec<String> {
    let mut out = Vec::new();
    for d in REGISTRY {
        match d.pattern.rsplit_once('.') {
            Some((prefix, last)) if last.starts_with('<') && last != "<service>" => {
                for s in d.stats {
                    out.push(match s {
                        StatKind::Percentile => format!("{prefix}.pNN (p50, p95, p99, p99.9 ...)"),
                        s => format!("{prefix}.{}", s.example()),
                    });
                }
            }
            _ => out.push(d.pattern.to_string()),
        }
    }
    out
}

/// Concrete metric names, for "did you mean": placeholders filled with each statistic;
/// names with a `<service>` are left out.
pub fn concrete_names() -> Vec<String> {
    let mut out = Vec::new();
    for d in REGISTRY {
        if d.pattern.contains("<service>") {
            continue;
        }
        match d.pattern.rsplit_once('.') {
            Some((prefix, last)) if last.starts_with('<') => {
                for s in d.stats {
                    match s {
                        StatKind::Percentile => {
                            for p in ["p50", "p90", "p95", "p99", "p99.9"] {
                                out.push(format!("{prefix}.{p}"));
                            }
                        }
                        s => out.push(format!("{prefix}.{}", s.example())),
                    }
                }
            }
            _ => out.push(d.pattern.to_string()),
        }
    }
    out
}

/// The registry as a help text: one line per metric.
pub fn help() -> String {
    let width = REGISTRY.iter().map(|d| d.pattern.len()).max().unwrap_or(0);
    REGISTRY
        .iter()
        .map(|d| format!("  {:width$}  {}\n", d.pattern, d.description))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_has_exactly_one_row() {
        for d in REGISTRY {
            assert_eq!(REGISTRY.iter().filter(|o| o.id == d.id).count(), 1);
            // The example parses to this row.
            let c = parse(d.example).unwrap_or_else(|e| panic!("{}: {e}", d.example));
            assert_eq!(c.metric.id, d.id, "{}", d.example);
        }
    }

    #[test]
    fn names_and_kinds() {
        let c = parse("latency.p99.9{name=\"x\"} < 1s").unwrap();
        assert_eq!(c.metric.name(), "latency.p99.9");
        assert_eq!(c.metric.to_string(), "latency.p99.9{name=\"x\"}");
        let c = parse("memory.api.peak < 1GiB").unwrap();
        assert_eq!(c.metric.name(), "memory.api.peak");
        assert_eq!(c.metric.to_string(), "memory.api.peak");
        let c = parse("metric.rate{service=\"p\", name=\"x_total\"} > 1").unwrap();
        assert_eq!(c.metric.name(), "metric.rate");
        assert_eq!(c.metric.kind(), Kind::PerSecond);
        let c = parse("metric.last{service=\"p\", name=\"x_seconds{a=\\\"b\\\"}\"} < 1s");
        assert!(
            c.is_err(),
            "quotes inside a double-quoted value need single quotes"
        );
        let c = parse("metric.last{service=\"p\", name='x_seconds{a=\"b\"}'} < 1s").unwrap();
        assert_eq!(c.metric.kind(), Kind::Duration);
        assert!(concrete_names().contains(&"metric.rate".to_string()));
        assert!(concrete_names().contains(&"latency.p99.9".to_string()));
        assert!(help().contains("memory.<service>.peak"));
    }
}
