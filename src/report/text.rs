//! Shared formatting for the reporters: quantities as people read them, metric names,
//! fault windows on the load's timeline.

use std::time::Duration;

use crate::event::{FaultEvent, FaultState, ServiceEvent, ServiceEventKind};
use crate::grade::criteria::{LatencyStat, Metric, Quantity};
use crate::grade::Verdict;
use crate::record::Record;
use crate::report::{EndedBy, RunInfo};
use crate::scenario::model::{FaultKind, LatencyBasis};

/// A number with at most `decimals` decimals, trailing zeros removed ("200", "0.1").
pub fn trim(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A quantity the way a person writes it: `200ms`, `1.5s`, `0.1%`, `512MiB`, `12/s`.
pub fn quantity(q: Quantity) -> String {
    match q {
        Quantity::DurationUs(us) => duration_us(us),
        Quantity::Percent(p) => format!("{}%", trim(p, 4)),
        Quantity::Bytes(b) => {
            const K: f64 = 1024.0;
            if b >= K * K * K {
                format!("{}GiB", trim(b / (K * K * K), 2))
            } else if b >= K * K {
                format!("{}MiB", trim(b / (K * K), 2))
            } else if b >= K {
                format!("{}KiB", trim(b / K, 2))
            } else {
                format!("{}B", trim(b, 0))
            }
        }
        Quantity::Count(c) => trim(c, 3),
        Quantity::PerSecond(r) => format!("{}/s", trim(r, 2)),
    }
}

/// A duration in µs, in the largest unit that keeps it readable, never rounded past µs
/// below 1ms.
pub fn duration_us(us: f64) -> String {
    if !us.is_finite() {
        "∞".into()
    } else if us >= 60e6 {
        format!("{}m", trim(us / 60e6, 2))
    } else if us >= 1e6 {
        format!("{}s", trim(us / 1e6, 3))
    } else if us >= 1e3 {
        format!("{}ms", trim(us / 1e3, 3))
    } else {
        format!("{}µs", trim(us, 0))
    }
}

/// Milliseconds with a fixed number of decimals, from µs.
pub fn ms(us: f64, decimals: usize) -> String {
    format!("{:.decimals$}", us / 1000.0)
}

/// The unit word of a quantity, as used in `summary.json`.
pub fn unit(q: Quantity) -> &'static str {
    match q {
        Quantity::DurationUs(_) => "us",
        Quantity::Percent(_) => "percent",
        Quantity::Bytes(_) => "bytes",
        Quantity::Count(_) => "count",
        Quantity::PerSecond(_) => "per_second",
    }
}

fn stat_name(s: LatencyStat) -> String {
    match s {
        LatencyStat::Percentile(p) => format!("p{}", trim(p, 6)),
        LatencyStat::Avg => "avg".into(),
        LatencyStat::Min => "min".into(),
        LatencyStat::Max => "max".into(),
    }
}

/// The metric's name without its selector, e.g. `latency.p99.9`, `memory.api.peak`.
pub fn metric_name(m: &Metric) -> String {
    match m {
        Metric::Latency { stat, .. } => format!("latency.{}", stat_name(*stat)),
        Metric::ErrorRate { .. } => "errors.rate".into(),
        Metric::ErrorCount { .. } => "errors.count".into(),
        Metric::Throughput { .. } => "throughput.rps".into(),
        Metric::RequestCount { .. } => "requests.count".into(),
        Metric::UsersPeak => "users.peak".into(),
        Metric::DroppedIterations => "iterations.dropped".into(),
        Metric::Availability { .. } => "availability".into(),
        Metric::RecoveryMax { .. } => "recovery.max".into(),
        Metric::DataLossKeys => "data_loss.keys".into(),
        Metric::DuplicateRecords => "duplicates.records".into(),
        Metric::MemoryPeak { service } => format!("memory.{service}.peak"),
        Metric::CpuAvg { service } => format!("cpu.{service}.avg"),
        Metric::CpuPeak { service } => format!("cpu.{service}.peak"),
        Metric::FreshnessMax => "pipeline.freshness.max".into(),
    }
}

pub fn basis_name(b: LatencyBasis) -> &'static str {
    match b {
        LatencyBasis::Corrected => "corrected",
        LatencyBasis::Raw => "raw",
    }
}

/// How the latency basis reads in a sentence.
pub fn basis_phrase(record: &Record) -> String {
    match (record.latency_basis, record.expected_interval_us) {
        (LatencyBasis::Corrected, Some(i)) => format!(
            "corrected for coordinated omission (expected interval {})",
            duration_us(i as f64)
        ),
        (LatencyBasis::Corrected, None) => {
            "corrected for coordinated omission (no think time: same as raw)".into()
        }
        (LatencyBasis::Raw, _) => "raw (as each user saw it)".into(),
    }
}

/// `passed`, `failed`, `interrupted` or `error`.
pub fn status(info: &RunInfo, verdict: &Verdict) -> &'static str {
    match &info.ended_by {
        EndedBy::Interrupted => "interrupted",
        EndedBy::Error(_) => "error",
        EndedBy::Completed if verdict.passed => "passed",
        EndedBy::Completed => "failed",
    }
}

/// The one-line failure message of a criterion: "measured X, threshold OP Y; detail".
pub fn criterion_message(c: &crate::grade::CriterionResult) -> String {
    let measured = c.measured.map(quantity).unwrap_or_else(|| "nothing".into());
    let mut s = format!(
        "measured {measured}, threshold {} {}",
        c.op,
        quantity(c.threshold)
    );
    if let Some(d) = &c.detail {
        s.push_str("; ");
        s.push_str(d);
    }
    s
}

/// One occurrence of a fault (a fault's repetition), folded from its events. Times are on
/// the run clock.
#[derive(Debug, Clone)]
pub struct FaultWindow {
    pub fault: usize,
    pub repetition: u32,
    pub name: String,
    pub kind: FaultKind,
    pub target: String,
    pub applied_at: Option<Duration>,
    pub undone_at: Option<Duration>,
    pub recovered_at: Option<Duration>,
    pub recovery_s: Option<f64>,
    /// Could not be applied or undone: why.
    pub failed: Option<String>,
    pub fatal: bool,
}

impl FaultWindow {
    /// Where the impaired window ends: the later of the undo and the recovery; `end`
    /// when there was neither.
    pub fn end(&self, end: Duration) -> Duration {
        match (self.undone_at, self.recovered_at) {
            (Some(u), Some(r)) => u.max(r),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => end,
        }
    }

    /// `pause api`, or `name (kind on target)` when the name does not say it.
    pub fn label(&self) -> String {
        if self.name == format!("{} {}", self.kind.as_str(), self.target) {
            self.name.clone()
        } else {
            format!("{} ({} on {})", self.name, self.kind.as_str(), self.target)
        }
    }
}

/// Fault occurrences in the order they were first seen.
pub fn fault_windows(events: &[FaultEvent]) -> Vec<FaultWindow> {
    let mut out: Vec<FaultWindow> = Vec::new();
    for e in events {
        let i = match out
            .iter()
            .position(|w| w.fault == e.fault && w.repetition == e.repetition)
        {
            Some(i) => i,
            None => {
                out.push(FaultWindow {
                    fault: e.fault,
                    repetition: e.repetition,
                    name: e.name.clone(),
                    kind: e.kind,
                    target: e.target.clone(),
                    applied_at: None,
                    undone_at: None,
                    recovered_at: None,
                    recovery_s: None,
                    failed: None,
                    fatal: false,
                });
                out.len() - 1
            }
        };
        let w = &mut out[i];
        match &e.state {
            FaultState::Applied => w.applied_at = Some(e.at),
            FaultState::Undone => w.undone_at = Some(e.at),
            FaultState::Recovered { recovery_s } => {
                w.recovered_at = Some(e.at);
                w.recovery_s = Some(*recovery_s);
            }
            FaultState::Failed { reason, fatal } => {
                w.failed = Some(reason.clone());
                w.fatal |= *fatal;
            }
        }
    }
    out
}

/// `started`, `healthy`, ...
pub fn service_event_name(k: &ServiceEventKind) -> &'static str {
    match k {
        ServiceEventKind::Started { .. } => "started",
        ServiceEventKind::Healthy => "healthy",
        ServiceEventKind::Unhealthy { .. } => "unhealthy",
        ServiceEventKind::Exited { .. } => "exited",
        ServiceEventKind::Restarting { .. } => "restarting",
        ServiceEventKind::Stopped => "stopped",
    }
}

/// What else a service event says, e.g. "pid 123", "code 1", "signal 9".
pub fn service_event_detail(e: &ServiceEvent) -> Option<String> {
    match &e.kind {
        ServiceEventKind::Started { pid } => pid.map(|p| format!("pid {p}")),
        ServiceEventKind::Unhealthy { reason } => Some(reason.clone()),
        ServiceEventKind::Exited { code, signal } => match (code, signal) {
            (Some(c), _) => Some(format!("code {c}")),
            (None, Some(s)) => Some(format!("signal {s}")),
            (None, None) => None,
        },
        ServiceEventKind::Restarting { attempt } => Some(format!("attempt {attempt}")),
        ServiceEventKind::Healthy | ServiceEventKind::Stopped => None,
    }
}

/// Seconds since the load started (negative before it), from a run-clock time.
pub fn since_load(record: &Record, at: Duration) -> f64 {
    at.as_secs_f64() - record.load_started.unwrap_or_default().as_secs_f64()
}

/// A finite f64, or None (JSON has no NaN or infinity).
pub fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity(Quantity::DurationUs(200_000.0)), "200ms");
        assert_eq!(quantity(Quantity::DurationUs(1234.0)), "1.234ms");
        assert_eq!(quantity(Quantity::DurationUs(999.0)), "999µs");
        assert_eq!(quantity(Quantity::DurationUs(1.5e6)), "1.5s");
        assert_eq!(quantity(Quantity::DurationUs(300e6)), "5m");
        assert_eq!(quantity(Quantity::Percent(0.1)), "0.1%");
        assert_eq!(quantity(Quantity::Percent(99.99)), "99.99%");
        assert_eq!(quantity(Quantity::Percent(100.0 / 3.0)), "33.3333%");
        assert_eq!(
            quantity(Quantity::Bytes(2.0 * 1024.0 * 1024.0 * 1024.0)),
            "2GiB"
        );
        assert_eq!(quantity(Quantity::Bytes(512.0)), "512B");
        assert_eq!(quantity(Quantity::Count(5000.0)), "5000");
        assert_eq!(quantity(Quantity::PerSecond(12.345)), "12.35/s");
        assert_eq!(trim(10.0, 2), "10");
        assert_eq!(trim(0.0, 2), "0");
    }
}
