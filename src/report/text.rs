//! Shared wording for the reporters: statuses, latency basis, criterion messages, fault
//! windows on the load's timeline. Quantities are formatted by [`crate::metric::format`]
//! and metric names come from the registry ([`crate::metric::Metric::name`]).

use std::time::Duration;

use crate::event::{ServiceEvent, ServiceEventKind};
use crate::grade::Verdict;
use crate::metric::format;
use crate::record::Record;
use crate::report::{EndedBy, RunInfo};
use crate::scenario::model::LatencyBasis;

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
            format::duration_us(i as f64)
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
    let measured = c
        .measured
        .map(|q| q.to_string())
        .unwrap_or_else(|| "nothing".into());
    let mut s = format!("measured {measured}, threshold {} {}", c.op, c.threshold);
    if let Some(d) = &c.detail {
        s.push_str("; ");
        s.push_str(d);
    }
    s
}

pub use crate::record::{fault_windows, FaultWindow};

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
