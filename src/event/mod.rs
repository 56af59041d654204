//! What the engine parts say about the run. The load engine, the chaos scheduler and the
//! observers only send these; the recorder folds them, the reporters read the recorder.
//! Nothing in the engine prints.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod overflow;
pub use overflow::{
    digits_for_names, histogram, new_histogram, Overflow, EVENT_CAPACITY, MAX_LATENCY_US,
};

use crate::scenario::model::FaultKind;

/// One thing that happened, and when. `at` is the time since the run's clock started
/// (`Run` creation, before services start); `Phase::LoadStarted` says where the load's
/// zero is.
#[derive(Debug, Clone)]
pub struct RunEvent {
    pub at: Duration,
    pub kind: EventKind,
}

#[derive(Debug, Clone)]
pub enum EventKind {
    Phase(Phase),
    /// The number of active virtual users (closed model) or in-flight iterations (open).
    Users {
        count: u32,
    },
    /// A request finished (`at`: when it finished).
    Request(RequestDone),
    /// A flow ended: its last step answered, or a step failed (`at`: then).
    Flow(FlowDone),
    /// A load connection was opened (`at`: when its TLS handshake ended).
    Connected(Connected),
    /// Open model: an iteration was due but could not start (all `max_in_flight` busy).
    Dropped,
    /// A virtual user (closed model) or an iteration (open) panicked: it sends nothing
    /// more. `user` is 1-based (open model: the iteration number).
    UserDied {
        user: u64,
        reason: String,
    },
    Service(ServiceEvent),
    Fault(FaultEvent),
    /// A health probe of a service, stamped when it was sent (failed) or answered (ok).
    Probe {
        service: String,
        ok: bool,
        latency_us: u64,
        /// An ok probe answered more than one probe interval after it was sent: the
        /// service did not answer from then (run clock) until the stamp.
        stalled_since: Option<Duration>,
    },
    /// CPU (percent of one core) and memory (bytes) of a service.
    Resource {
        service: String,
        cpu_pct: f64,
        mem_bytes: u64,
    },
    /// A figure scraped from a service's Prometheus `/metrics`.
    Metric {
        service: String,
        name: String,
        value: f64,
    },
    /// Something a person should know about the run that is not an error of the system
    /// under test (e.g. "open-files limit raised to 20000").
    Notice {
        level: Level,
        message: String,
    },
    /// What senders folded or shed while the channel was full; sent once, last.
    Overflow(Box<Overflow>),
    /// What the WebSocket users did, folded by the load engine and sent once when they
    /// stopped (so no WebSocket figure is ever shed).
    Ws(Box<WsTotals>),
}

/// The WebSocket users' figures (`[[ws]]`), all entries together.
#[derive(Debug, Clone)]
pub struct WsTotals {
    /// Connections tried, and of them those that failed (TCP, TLS or the handshake).
    pub connects: u64,
    pub connect_failures: u64,
    /// Messages sent, and of them those that failed: not sent, or no matching reply
    /// within the timeout (the connection closing first included).
    pub messages: u64,
    pub message_failures: u64,
    /// Most connections open at once.
    pub peak: u32,
    /// Connections that ended without a normal close: a close code other than 1000/1001,
    /// or the TCP connection gone without a close frame.
    pub abnormal_closes: u64,
    /// Send to matching reply, µs.
    pub rtt: hdrhistogram::Histogram<u64>,
    /// Why connects and messages failed, with their counts (at most 20 reasons, the
    /// rest under "other").
    pub reasons: std::collections::BTreeMap<String, u64>,
}

impl Default for WsTotals {
    fn default() -> Self {
        WsTotals {
            connects: 0,
            connect_failures: 0,
            messages: 0,
            message_failures: 0,
            peak: 0,
            abnormal_closes: 0,
            rtt: new_histogram(),
            reasons: Default::default(),
        }
    }
}

impl WsTotals {
    /// Distinct failure reasons kept.
    const MAX_REASONS: usize = 20;

    /// Connects and messages: what `ws.errors.rate` divides by.
    pub fn attempts(&self) -> u64 {
        self.connects + self.messages
    }

    pub fn failures(&self) -> u64 {
        self.connect_failures + self.message_failures
    }

    pub fn reason(&mut self, why: String) {
        if let Some(n) = self.reasons.get_mut(&why) {
            *n += 1;
        } else if self.reasons.len() < Self::MAX_REASONS {
            self.reasons.insert(why, 1);
        } else {
            *self.reasons.entry("other".into()).or_insert(0) += 1;
        }
    }
}

/// An event the record keeps with its time (faults, service events). Serializes as the
/// event's own fields with `at` (seconds) first; derefs to the event.
#[derive(Debug, Clone, Serialize)]
pub struct Timed<T> {
    #[serde(serialize_with = "ser_secs")]
    pub at: Duration,
    #[serde(flatten)]
    pub event: T,
}

impl<T> Timed<T> {
    pub fn new(at: Duration, event: T) -> Self {
        Timed { at, event }
    }
}

impl<T> std::ops::Deref for Timed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.event
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    ServicesStarting,
    ServicesReady,
    LoadStarted,
    LoadFinished,
    /// The first SIGINT/SIGTERM arrived: faults are being undone, a partial report written.
    Interrupted,
    Stopping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// One request finished (or failed to be sent).
#[derive(Debug, Clone)]
pub struct RequestDone {
    /// Index into `Plan::requests`.
    pub request: u16,
    /// Latency in microseconds. Open model: from the iteration's intended start (so
    /// queueing in the generator counts: coordinated omission handled). Closed: from send.
    pub latency_us: u64,
    /// From the moment the request was really sent, always.
    pub service_us: u64,
    /// HTTP status; 0 when no response arrived.
    pub status: u16,
    /// None = success. Some(reason) = an error, with why: "status 500 (expected 2xx)",
    /// "check failed: body lacks \"id\"", "connect: connection refused", "timeout after 10s".
    pub error: Option<Box<str>>,
}

/// One flow (`[[flows]]`) ended.
#[derive(Debug, Clone)]
pub struct FlowDone {
    /// Index into `Plan::flows`.
    pub flow: u16,
    /// From its first step sent (open model: the iteration's intended start) to its last
    /// step answered, think times between steps included.
    pub latency_us: u64,
    /// None = every step passed; Some = the step it stopped at, e.g.
    /// `step 2 "read item" failed`.
    pub error: Option<Box<str>>,
}

/// A new connection to the target (not counted in any request's service time apart
/// from the request that waited for it).
#[derive(Debug, Clone, Copy)]
pub struct Connected {
    /// TCP connect plus the TLS handshake, in microseconds.
    pub handshake_us: u64,
    pub tls: bool,
    /// The TLS session of an earlier connection was resumed (a shorter handshake).
    pub resumed: bool,
    /// HTTP/2 is spoken on it (ALPN h2, or h2c prior knowledge).
    pub h2: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceEvent {
    pub service: String,
    pub kind: ServiceEventKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ServiceEventKind {
    Started {
        pid: Option<u32>,
    },
    Healthy,
    Unhealthy {
        reason: String,
    },
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
    Restarting {
        attempt: u32,
    },
    Stopped,
}

#[derive(Debug, Clone, Serialize)]
pub struct FaultEvent {
    /// Index of the fault in the scenario, and the repetition number.
    pub fault: usize,
    pub repetition: u32,
    pub name: String,
    pub kind: FaultKind,
    pub target: String,
    pub state: FaultState,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum FaultState {
    Applied,
    Undone,
    /// Could not be applied (or undone); `fatal` when the scenario says this fails the run.
    Failed {
        reason: String,
        fatal: bool,
    },
    /// The service is healthy again after the fault; `recovery_s` from apply (crash) or
    /// undo (stall) to the first healthy probe that stayed healthy.
    Recovered {
        recovery_s: f64,
    },
}

pub fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Where the engine parts send events. Cloneable; sending never blocks and never fails
/// loudly (a closed recorder means the run is ending). The channel is bounded
/// ([`EVENT_CAPACITY`]); what happens when it is full is [`overflow`]'s policy: request
/// results are folded into per-request aggregates by the sender (never lost, only without
/// their second), other events wait in a small side queue, and beyond that they are shed
/// and counted.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: tokio::sync::mpsc::Sender<RunEvent>,
    clock: std::time::Instant,
    overflow: Arc<Mutex<Overflow>>,
}

impl EventSink {
    pub fn new(clock: std::time::Instant) -> (EventSink, EventStream) {
        Self::with_capacity(clock, EVENT_CAPACITY)
    }

    /// As [`EventSink::new`] with another bound (tests use a tiny one).
    pub fn with_capacity(clock: std::time::Instant, capacity: usize) -> (EventSink, EventStream) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        let overflow = Arc::new(Mutex::new(Overflow::default()));
        (
            EventSink {
                tx,
                clock,
                overflow: overflow.clone(),
            },
            EventStream {
                rx,
                clock,
                overflow,
            },
        )
    }

    /// Time since the run's clock started.
    pub fn now(&self) -> Duration {
        self.clock.elapsed()
    }

    pub fn clock(&self) -> std::time::Instant {
        self.clock
    }

    /// Run-clock time of an instant the sender measured (0 if before the clock started).
    pub fn at(&self, i: std::time::Instant) -> Duration {
        i.saturating_duration_since(self.clock)
    }

    /// Send `kind`, stamped now.
    pub fn send(&self, kind: EventKind) {
        self.send_at(self.now(), kind);
    }

    /// Send `kind` stamped with an instant the sender measured itself (a request's
    /// finish, a probe's send time).
    pub fn send_at(&self, at: Duration, kind: EventKind) {
        use tokio::sync::mpsc::error::TrySendError;
        trace_event(at, &kind);
        let ev = RunEvent { at, kind };
        if let Err(TrySendError::Full(ev)) = self.tx.try_send(ev) {
            // A poisoned lock only means another sender panicked mid-fold; the
            // aggregate is still usable.
            let mut o = self.overflow.lock().unwrap_or_else(|p| p.into_inner());
            o.keep(ev);
        }
    }

    /// Significant digits of the histograms folded on overflow: the recorder's per-name
    /// precision ([`digits_for_names`]).
    pub fn set_histogram_digits(&self, digits: u8) {
        self.overflow
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .digits = Some(digits);
    }

    pub fn notice(&self, level: Level, message: impl Into<String>) {
        self.send(EventKind::Notice {
            level,
            message: message.into(),
        });
    }
}

/// Diagnostics (`-v`, `-vv`, `RUST_LOG`): the run's milestones at info, observations at
/// debug; single requests only at trace (there are many).
fn trace_event(at: Duration, kind: &EventKind) {
    let t = at.as_secs_f64();
    match kind {
        EventKind::Phase(p) => tracing::info!(at_s = t, phase = ?p, "phase"),
        EventKind::Fault(f) => tracing::info!(
            at_s = t,
            fault = %f.name,
            kind = f.kind.as_str(),
            target = %f.target,
            state = ?f.state,
            "fault"
        ),
        EventKind::Service(s) => {
            tracing::info!(at_s = t, service = %s.service, event = ?s.kind, "service")
        }
        EventKind::Notice { level, message } => match level {
            Level::Error | Level::Warn => tracing::warn!(at_s = t, "{message}"),
            Level::Info => tracing::info!(at_s = t, "{message}"),
        },
        EventKind::UserDied { user, reason } => {
            tracing::warn!(at_s = t, user, reason = %reason, "virtual user died")
        }
        EventKind::Users { count } => tracing::debug!(at_s = t, count, "users"),
        EventKind::Flow(_) => {}
        EventKind::Ws(w) => tracing::info!(
            at_s = t,
            connects = w.connects,
            messages = w.messages,
            peak = w.peak,
            "websocket users done"
        ),
        EventKind::Probe {
            service,
            ok,
            latency_us,
            ..
        } => tracing::debug!(at_s = t, service = %service, ok, latency_us, "probe"),
        EventKind::Resource {
            service,
            cpu_pct,
            mem_bytes,
        } => tracing::debug!(at_s = t, service = %service, cpu_pct, mem_bytes, "resources"),
        EventKind::Metric {
            service,
            name,
            value,
        } => tracing::debug!(at_s = t, service = %service, name = %name, value, "metric"),
        EventKind::Request(r) => tracing::trace!(
            at_s = t,
            request = r.request,
            status = r.status,
            latency_us = r.latency_us,
            error = r.error.as_deref(),
            "request"
        ),
        EventKind::Connected(c) => {
            tracing::trace!(
                at_s = t,
                handshake_us = c.handshake_us,
                tls = c.tls,
                "connected"
            )
        }
        EventKind::Dropped => tracing::trace!(at_s = t, "iteration dropped"),
        EventKind::Overflow(_) => tracing::debug!("event channel overflow folded"),
    }
}

/// The recorder's end of the channel. `recv` hands out the side queue first, then the
/// channel; once every sender is gone it yields the folded request aggregates as one last
/// [`EventKind::Overflow`] (when there are any), then `None`.
#[derive(Debug)]
pub struct EventStream {
    rx: tokio::sync::mpsc::Receiver<RunEvent>,
    /// Stamps the last `Overflow` event (the recorder does not read its time).
    clock: std::time::Instant,
    overflow: Arc<Mutex<Overflow>>,
}

impl EventStream {
    pub async fn recv(&mut self) -> Option<RunEvent> {
        if let Some(ev) = self.side() {
            return Some(ev);
        }
        match self.rx.recv().await {
            Some(ev) => Some(ev),
            None => self.last(),
        }
    }

    /// Non-blocking: `Err(Empty)` while senders are alive and nothing waits.
    pub fn try_recv(&mut self) -> Result<RunEvent, tokio::sync::mpsc::error::TryRecvError> {
        use tokio::sync::mpsc::error::TryRecvError;
        if let Some(ev) = self.side() {
            return Ok(ev);
        }
        match self.rx.try_recv() {
            Err(TryRecvError::Disconnected) => self.last().ok_or(TryRecvError::Disconnected),
            r => r,
        }
    }

    fn side(&self) -> Option<RunEvent> {
        self.overflow
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .side
            .pop_front()
    }

    /// After the last sender: whatever was folded or shed, once.
    fn last(&self) -> Option<RunEvent> {
        let mut o = self.overflow.lock().unwrap_or_else(|p| p.into_inner());
        if o.is_empty() {
            return None;
        }
        if let Some(ev) = o.side.pop_front() {
            return Some(ev);
        }
        let at = self.clock.elapsed();
        Some(RunEvent {
            at,
            kind: EventKind::Overflow(Box::new(std::mem::take(&mut *o))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Timed` serializes as the event did when it carried `at` itself.
    #[test]
    fn timed_serializes_flat_with_at_first() {
        let f = Timed::new(
            Duration::from_millis(1500),
            FaultEvent {
                fault: 2,
                repetition: 1,
                name: "kill api".into(),
                kind: FaultKind::Kill,
                target: "api".into(),
                state: FaultState::Failed {
                    reason: "gone".into(),
                    fatal: true,
                },
            },
        );
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"at":1.5,"fault":2,"repetition":1,"name":"kill api","kind":"kill","target":"api","state":{"state":"failed","reason":"gone","fatal":true}}"#
        );
        let s = Timed::new(
            Duration::from_millis(250),
            ServiceEvent {
                service: "db".into(),
                kind: ServiceEventKind::Exited {
                    code: None,
                    signal: Some(9),
                },
            },
        );
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"at":0.25,"service":"db","kind":{"kind":"exited","code":null,"signal":9}}"#
        );
        assert_eq!(s.service, "db");
    }
}
