//! Shared wording for the reporters: statuses, latency basis, criterion messages, fault
//! windows on the load's timeline. Quantities are formatted by [`crate::metric::format`]
//! and metric names come from the registry ([`crate::metric::Metric::name`]).

use std::time::Duration;

use crate::event::{FaultEvent, FaultState, ServiceEvent, ServiceEventKind, Timed};
use crate::grade::Verdict;
use crate::metric::format;
use crate::record::Record;
use crate::report::{EndedBy, RunInfo};
use crate::scenario::model::{FaultKind, LatencyBasis};

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
pub fn fault_windows(events: &[Timed<FaultEvent>]) -> Vec<FaultWindow> {
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
