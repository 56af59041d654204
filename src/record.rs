//! The recorder: folds the run's events into bounded state. One HDR histogram pair (raw
//! and coordinated-omission corrected) per request name, counters, one summary row per
//! second of load, and the samples of the observers. Memory does not grow with the number
//! of requests.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::event::{
    EventKind, FaultEvent, FaultState, FlowDone, Level, Overflow, Phase, RequestDone, RunEvent,
    ServiceEvent, Timed,
};
use crate::scenario::model::{FaultKind, LatencyBasis};
use crate::scenario::Plan;

pub use crate::event::{digits_for_names, histogram, new_histogram, MAX_LATENCY_US};

/// Live figures for the progress bar, cheap to copy.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveStats {
    /// Since load start.
    pub elapsed: Duration,
    /// Planned load duration.
    pub planned: Duration,
    pub users: u32,
    pub requests: u64,
    pub errors: u64,
    /// Requests per second over the last full second.
    pub rps: f64,
}

#[derive(Debug, Clone)]
pub struct RequestStats {
    pub name: String,
    pub count: u64,
    pub errors: u64,
    /// Most frequent error reasons with counts (bounded to the top few dozen).
    pub error_reasons: Vec<(String, u64)>,
    pub statuses: BTreeMap<u16, u64>,
    /// Service time (µs): from the actual send to the end of the response.
    pub raw: Histogram<u64>,
    /// Coordinated-omission corrected latency (µs): closed model, the raw times with the
    /// missing samples added (HdrHistogram's correction); open model, from the intended
    /// start of each iteration's request.
    pub corrected: Histogram<u64>,
    pub clamped: u64,
}

impl RequestStats {
    /// Histograms at full precision (3 significant digits).
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_digits(name, 3)
    }

    /// Histograms with `digits` significant digits; they grow with the largest latency
    /// recorded, so a name that never ran costs a few KiB.
    pub fn with_digits(name: impl Into<String>, digits: u8) -> Self {
        RequestStats {
            name: name.into(),
            count: 0,
            errors: 0,
            error_reasons: Vec::new(),
            statuses: BTreeMap::new(),
            raw: histogram(digits),
            corrected: histogram(digits),
            clamped: 0,
        }
    }

    /// The histogram criteria read.
    pub fn graded(&self, basis: LatencyBasis) -> &Histogram<u64> {
        match basis {
            LatencyBasis::Corrected => &self.corrected,
            LatencyBasis::Raw => &self.raw,
        }
    }
}

/// One second of load.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// Seconds since load start (window covers [second, second+1)).
    pub second: u32,
    pub users: u32,
    pub requests: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// p50, p95, p99 and max of the raw (service time) latency of that second.
    #[serde(default)]
    pub raw_us: [u64; 4],
    /// The same of the corrected latency (closed model: with the coordinated-omission
    /// correction's added samples).
    #[serde(default)]
    pub corrected_us: [u64; 4],
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProbeStats {
    pub ok: u64,
    pub total: u64,
    /// Each probe as (run-clock milliseconds, healthy), stamped by the health module's
    /// rule (a failure when sent, a success when answered); in arrival order.
    #[serde(skip)]
    pub points: Vec<(u32, bool)>,
}

/// Availability as time: what the probes say about the share of time a service was up.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Uptime {
    /// From the first probe to the last.
    pub span_s: f64,
    pub down_s: f64,
    /// Healthy time over the span, in percent.
    pub percent: f64,
    /// Up → down changes seen.
    pub outages: u32,
    pub longest_outage_s: f64,
    /// The longest gap between two probes: how far a change can be misplaced (each is
    /// put half-way between the probes either side of it), and roughly the shortest
    /// outage that cannot slip between two probes.
    pub resolution_s: f64,
}

impl ProbeStats {
    /// Time to detect a fault applied at `at`: until the first failed probe sent at or
    /// after it, and no later than `until` (its recovery or undo: a failure after that
    /// has another cause).
    pub fn detect(&self, at: Duration, until: Option<Duration>) -> Option<Duration> {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        let (from, to) = (ms(at), until.map_or(u32::MAX, ms));
        self.points
            .iter()
            .filter(|(t, ok)| !ok && *t >= from && *t <= to)
            .map(|(t, _)| *t)
            .min()
            .map(|t| Duration::from_millis(u64::from(t - from)))
    }

    /// The probes as a step function of time, each change placed half-way between the
    /// two probes that disagree. None with fewer than two probes.
    pub fn uptime(&self) -> Option<Uptime> {
        let mut pts = self.points.clone();
        pts.sort_by_key(|p| p.0);
        let (first, last) = (pts.first()?.0, pts.last()?.0);
        if pts.len() < 2 || last <= first {
            return None;
        }
        // In half milliseconds, whole numbers: changes sit half-way between probes.
        let (mut down, mut outages, mut longest, mut gap) = (0u64, 0u32, 0u64, 0u64);
        let mut outage_start: Option<u64> = (!pts[0].1).then_some(0);
        let mut t = 0u64;
        for w in pts.windows(2) {
            let ((a, up_a), (b, up_b)) = (w[0], w[1]);
            let d = 2 * u64::from(b - a);
            gap = gap.max(d);
            match (up_a, up_b) {
                (true, true) => {}
                (false, false) => down += d,
                _ => down += d / 2,
            }
            let mid = t + d / 2;
            if up_a && !up_b {
                outages += 1;
                outage_start = Some(mid);
            } else if !up_a && up_b {
                if let Some(s) = outage_start.take() {
                    longest = longest.max(mid - s);
                }
            }
            t += d;
        }
        if let Some(s) = outage_start {
            longest = longest.max(t - s);
        }
        let secs = |half_ms: u64| half_ms as f64 / 2000.0;
        let span = 2 * u64::from(last - first);
        let (span, down, longest, gap) = (secs(span), secs(down), secs(longest), secs(gap));
        Some(Uptime {
            span_s: span,
            down_s: down,
            percent: (span - down) / span * 100.0,
            outages,
            longest_outage_s: longest,
            resolution_s: gap,
        })
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ResourceStats {
    pub samples: u64,
    pub cpu_avg_pct: f64,
    pub cpu_peak_pct: f64,
    pub mem_peak_bytes: u64,
    pub mem_last_bytes: u64,
    /// Every memory sample as (run-clock milliseconds, bytes): one a second, so a day is
    /// 86,400 rows of 16 bytes.
    #[serde(skip)]
    pub mem_series: Vec<(u32, u64)>,
}

/// The most samples the growth fit uses (evenly picked): its cost is quadratic.
const GROWTH_FIT_SAMPLES: usize = 600;

impl ResourceStats {
    /// Theil–Sen slope of memory over [from, to], in bytes per minute: the median of the
    /// slopes between every two samples. None with fewer than 3 samples.
    pub fn growth(&self, from: Duration, to: Duration) -> Option<f64> {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        let pts: Vec<(u32, u64)> = self
            .mem_series
            .iter()
            .copied()
            .filter(|(t, _)| *t >= ms(from) && *t <= ms(to))
            .collect();
        if pts.len() < 3 {
            return None;
        }
        let step = pts.len().div_ceil(GROWTH_FIT_SAMPLES);
        let pts: Vec<(u32, u64)> = pts.into_iter().step_by(step).collect();
        let mut slopes = Vec::with_capacity(pts.len() * (pts.len() - 1) / 2);
        for (i, a) in pts.iter().enumerate() {
            for b in &pts[i + 1..] {
                if b.0 > a.0 {
                    let dt_min = f64::from(b.0 - a.0) / 60_000.0;
                    slopes.push((b.1 as f64 - a.1 as f64) / dt_min);
                }
            }
        }
        median(&mut slopes)
    }

    /// Memory after `end` (the median of the samples from one second after it) minus
    /// memory before `start` (the median of the samples before it, else the first
    /// sample): (retained, before, after). None without samples after `end`.
    pub fn retained(&self, start: Duration, end: Duration) -> Option<(f64, f64, f64)> {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        let settle = ms(end).saturating_add(1000);
        let mut after: Vec<f64> = self
            .mem_series
            .iter()
            .filter(|(t, _)| *t >= settle)
            .map(|(_, m)| *m as f64)
            .collect();
        let mut before: Vec<f64> = self
            .mem_series
            .iter()
            .filter(|(t, _)| *t < ms(start))
            .map(|(_, m)| *m as f64)
            .collect();
        if before.is_empty() {
            before.extend(self.mem_series.first().map(|(_, m)| *m as f64));
        }
        let (b, a) = (median(&mut before)?, median(&mut after)?);
        Some((a - b, b, a))
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MetricStats {
    pub samples: u64,
    pub last: f64,
    pub min: f64,
    pub max: f64,
    /// Of every sample, for the average.
    pub sum: f64,
    /// How far the series went up from its first sample; a drop counts as a counter
    /// reset (the new value is the increase since), as Prometheus' `increase` does.
    pub increase: f64,
    /// Run-clock times of the first and the last sample, for rates.
    pub first_at: Duration,
    pub last_at: Duration,
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

impl Record {
    /// When the load and the faults ran: from the first of the load's start and the first
    /// fault's apply to the last of the load's end and the last fault's undo (or apply).
    /// None when neither happened.
    pub fn stress_window(&self) -> Option<(Duration, Duration)> {
        let load = self
            .load_started
            .filter(|_| self.load_duration > Duration::ZERO)
            .map(|s| (s, s + self.load_duration));
        let faults = self
            .faults
            .iter()
            .filter(|f| matches!(f.state, FaultState::Applied | FaultState::Undone))
            .map(|f| f.at);
        let (fmin, fmax) = faults.fold(
            (None, None),
            |(lo, hi): (Option<Duration>, Option<Duration>), t| {
                (
                    Some(lo.map_or(t, |l| l.min(t))),
                    Some(hi.map_or(t, |h| h.max(t))),
                )
            },
        );
        match (load, fmin.zip(fmax)) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (Some(w), None) | (None, Some(w)) => Some(w),
            (None, None) => None,
        }
    }
}

/// Everything the grader and the reporters read.
#[derive(Debug, Clone)]
pub struct Record {
    /// Run-clock time the load started at (None: it never started).
    pub load_started: Option<Duration>,
    /// How long the load really ran.
    pub load_duration: Duration,
    /// The start of the load not graded (a capacity level's warmup): requests that ended
    /// in it are in the per-second windows only.
    pub warmup: Duration,
    pub latency_basis: LatencyBasis,
    /// Closed model: the expected interval used for the correction (mean think time);
    /// None when there is no think time, so corrected == raw.
    pub expected_interval_us: Option<u64>,
    /// Per request of the plan, in plan order.
    pub requests: Vec<RequestStats>,
    /// All requests together.
    pub total: RequestStats,
    pub windows: Vec<Window>,
    pub users_peak: u32,
    pub dropped: u64,
    pub faults: Vec<Timed<FaultEvent>>,
    pub services: Vec<Timed<ServiceEvent>>,
    pub probes: BTreeMap<String, ProbeStats>,
    pub resources: BTreeMap<String, ResourceStats>,
    /// Keyed by (service, metric name).
    pub metrics: BTreeMap<(String, String), MetricStats>,
    pub notices: Vec<(Duration, Level, String)>,
    pub interrupted: bool,
    /// Requests the senders folded while the event channel was full: in every total and
    /// histogram, but in no per-second window.
    pub requests_folded: u64,
    /// Events dropped because the recorder lagged too far (see `event::overflow`).
    pub events_shed: u64,
    /// Virtual users (or open-model iterations) that panicked, and the first one's reason.
    pub users_died: u64,
    pub first_death: Option<String>,
    /// The load's connections to the target and their handshakes.
    pub connections: ConnectionStats,
    /// Per flow of the plan, in plan order: count = flows that ended, errors = those that
    /// stopped at a failed step, `raw` = `corrected` = whole-flow latency.
    pub flows: Vec<RequestStats>,
    /// All flows together.
    pub flow_total: RequestStats,
    /// The WebSocket users' figures; `None` when none ran.
    pub ws: Option<crate::event::WsTotals>,
}

impl Record {
    /// The graded part of the load: its duration less the warmup.
    pub fn measured_duration(&self) -> Duration {
        self.load_duration.saturating_sub(self.warmup)
    }
}

/// Connections the load opened, and what their handshakes took.
#[derive(Debug, Clone)]
pub struct ConnectionStats {
    pub count: u64,
    /// Over TLS; `resumed` of them resumed an earlier session.
    pub tls: u64,
    pub resumed: u64,
    /// Speaking HTTP/2.
    pub h2: u64,
    /// TCP connect + TLS handshake, µs.
    pub handshake: Histogram<u64>,
}

impl Default for ConnectionStats {
    fn default() -> Self {
        ConnectionStats {
            count: 0,
            tls: 0,
            resumed: 0,
            h2: 0,
            handshake: new_histogram(),
        }
    }
}

/// Error reasons reported per request (most frequent first); the rest are summed
/// into "other".
pub const MAX_REASONS: usize = 50;
/// Distinct reasons tracked while recording (memory stays bounded whatever the errors
/// say); when full, the rarest is evicted into "other".
const MAX_TRACKED: usize = 200;
/// Notices kept (a run has a handful; this bounds a misbehaving source).
const MAX_NOTICES: usize = 1000;
const OTHER_REASON: &str = "other";
/// Users' deaths written as notices (the count is in `users_died`).
const DEATH_NOTICES: u64 = 5;

/// Counters and histograms of one request name (or of all), while recording.
struct Acc {
    reasons: HashMap<Box<str>, u64>,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            reasons: HashMap::new(),
        }
    }
}

/// The second being filled.
struct OpenWindow {
    second: u32,
    users: u32,
    requests: u64,
    errors: u64,
    hist: Histogram<u64>,
    raw: Histogram<u64>,
    corrected: Histogram<u64>,
}

/// Folds events. Not thread-safe by design: one task owns it.
pub struct Recorder {
    record: Record,
    accs: Vec<Acc>,
    total_acc: Acc,
    flow_accs: Vec<Acc>,
    flow_total_acc: Acc,
    window: OpenWindow,
    users: u32,
    /// Wall clock when `LoadStarted` was folded (for `live().elapsed`).
    started_wall: Option<Instant>,
    finished: bool,
    planned: Duration,
    /// When the last event was seen (run clock), to close the load if it never finished.
    last_at: Duration,
}

impl Recorder {
    pub fn new(plan: &Plan) -> Self {
        let basis = plan.latency_basis;
        // The open model times from the intended start: corrected by construction.
        let expected_interval_us = plan
            .load
            .as_ref()
            .filter(|l| !l.is_open())
            .map(|l| l.think.mean().as_micros() as u64)
            .filter(|us| *us > 0);
        let digits = digits_for_names(plan.requests.len());
        Recorder {
            record: Record {
                load_started: None,
                load_duration: Duration::ZERO,
                warmup: plan.warmup,
                latency_basis: basis,
                expected_interval_us,
                requests: plan
                    .requests
                    .iter()
                    .map(|r| RequestStats::with_digits(r.name.clone(), digits))
                    .collect(),
                total: RequestStats::new("all"),
                windows: Vec::new(),
                users_peak: 0,
                dropped: 0,
                faults: Vec::new(),
                services: Vec::new(),
                probes: BTreeMap::new(),
                resources: BTreeMap::new(),
                metrics: BTreeMap::new(),
                notices: Vec::new(),
                interrupted: false,
                requests_folded: 0,
                events_shed: 0,
                users_died: 0,
                first_death: None,
                connections: ConnectionStats::default(),
                flows: plan
                    .flows
                    .iter()
                    .map(|f| RequestStats::with_digits(f.name.clone(), digits))
                    .collect(),
                flow_total: RequestStats::new("all"),
                ws: None,
            },
            flow_accs: plan.flows.iter().map(|_| Acc::new()).collect(),
            flow_total_acc: Acc::new(),
            accs: plan.requests.iter().map(|_| Acc::new()).collect(),
            total_acc: Acc::new(),
            window: OpenWindow {
                second: 0,
                users: 0,
                requests: 0,
                errors: 0,
                hist: new_histogram(),
                raw: new_histogram(),
                corrected: new_histogram(),
            },
            users: 0,
            started_wall: None,
            finished: false,
            planned: plan.load_duration,
            last_at: Duration::ZERO,
        }
    }

    /// The planned load duration, for `live()`.
    fn planned(&self) -> Duration {
        self.planned
    }

    pub fn record(&mut self, ev: &RunEvent) {
        let at = ev.at;
        match &ev.kind {
            EventKind::Phase(phase) => {
                self.seen(at);
                match phase {
                    Phase::LoadStarted if self.record.load_started.is_none() => {
                        self.record.load_started = Some(at);
                        self.started_wall = Some(Instant::now());
                        self.window.users = self.users;
                    }
                    Phase::LoadFinished if !self.finished => {
                        if let Some(s) = self.record.load_started {
                            self.finished = true;
                            self.record.load_duration = at.saturating_sub(s);
                        }
                    }
                    Phase::Interrupted => self.record.interrupted = true,
                    _ => {}
                }
            }
            EventKind::Users { count } => {
                self.advance(at);
                self.users = *count;
                self.record.users_peak = self.record.users_peak.max(*count);
                self.window.users = self.window.users.max(*count);
            }
            EventKind::Request(done) => self.request(at, done),
            EventKind::Flow(done) => self.flow(at, done),
            EventKind::Connected(c) => {
                self.seen(at);
                let k = &mut self.record.connections;
                k.count += 1;
                k.tls += u64::from(c.tls);
                k.resumed += u64::from(c.resumed);
                k.h2 += u64::from(c.h2);
                let _ = k.handshake.record(c.handshake_us.clamp(1, MAX_LATENCY_US));
            }
            EventKind::Dropped => {
                self.advance(at);
                self.record.dropped += 1;
            }
            EventKind::UserDied { user, reason } => {
                self.seen(at);
                self.record.users_died += 1;
                if self.record.first_death.is_none() {
                    self.record.first_death = Some(format!("user {user}: {reason}"));
                }
                // The first few in the notices; the count says the rest.
                if self.record.users_died <= DEATH_NOTICES
                    && self.record.notices.len() < MAX_NOTICES
                {
                    self.record.notices.push((
                        at,
                        Level::Error,
                        format!("user {user} died: {reason}"),
                    ));
                }
            }
            EventKind::Service(s) => {
                self.seen(at);
                self.record.services.push(Timed::new(at, s.clone()));
            }
            EventKind::Fault(f) => {
                self.seen(at);
                self.record.faults.push(Timed::new(at, f.clone()));
            }
            EventKind::Probe {
                service,
                ok,
                stalled_since,
                ..
            } => {
                self.seen(at);
                let p = self.record.probes.entry(service.clone()).or_default();
                p.total += 1;
                p.ok += u64::from(*ok);
                let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
                if let Some(since) = stalled_since {
                    p.points.push((ms(*since), false));
                }
                p.points.push((ms(at), *ok));
            }
            EventKind::Resource {
                service,
                cpu_pct,
                mem_bytes,
            } => {
                self.seen(at);
                let r = self.record.resources.entry(service.clone()).or_default();
                r.samples += 1;
                r.cpu_avg_pct += (cpu_pct - r.cpu_avg_pct) / r.samples as f64;
                r.cpu_peak_pct = r.cpu_peak_pct.max(*cpu_pct);
                r.mem_peak_bytes = r.mem_peak_bytes.max(*mem_bytes);
                r.mem_last_bytes = *mem_bytes;
                r.mem_series.push((
                    u32::try_from(at.as_millis()).unwrap_or(u32::MAX),
                    *mem_bytes,
                ));
            }
            EventKind::Metric {
                service,
                name,
                value,
            } => {
                self.seen(at);
                let m = self
                    .record
                    .metrics
                    .entry((service.clone(), name.clone()))
                    .or_insert(MetricStats {
                        samples: 0,
                        last: *value,
                        min: *value,
                        max: *value,
                        sum: 0.0,
                        increase: 0.0,
                        first_at: at,
                        last_at: at,
                    });
                if m.samples > 0 {
                    m.increase += if *value >= m.last {
                        value - m.last
                    } else {
                        *value
                    };
                }
                m.samples += 1;
                m.sum += value;
                m.last_at = at;
                m.last = *value;
                m.min = m.min.min(*value);
                m.max = m.max.max(*value);
            }
            EventKind::Notice { level, message } => {
                self.seen(at);
                if self.record.notices.len() < MAX_NOTICES {
                    self.record.notices.push((at, *level, message.clone()));
                }
            }
            // Its time is when the stream ended, not when anything happened.
            EventKind::Overflow(o) => self.overflow(o),
            EventKind::Ws(t) => {
                self.seen(at);
                self.record.ws = Some((**t).clone());
            }
        }
    }

    /// Add what the senders folded while the channel was full into the totals.
    fn overflow(&mut self, o: &Overflow) {
        let interval = self.record.expected_interval_us;
        for (i, a) in &o.requests {
            let i = usize::from(*i);
            for (stats, acc) in [
                (self.record.requests.get_mut(i), self.accs.get_mut(i)),
                (Some(&mut self.record.total), Some(&mut self.total_acc)),
            ] {
                let (Some(stats), Some(acc)) = (stats, acc) else {
                    continue;
                };
                stats.count += a.count;
                stats.errors += a.errors;
                stats.clamped += a.clamped;
                // Same bounds on both sides: adding cannot fail.
                let _ = stats.raw.add(&a.service);
                match interval {
                    Some(iv) => {
                        let _ = stats.corrected.add_correct(&a.latency, iv);
                    }
                    None => {
                        let _ = stats.corrected.add(&a.latency);
                    }
                }
                for (status, n) in &a.statuses {
                    *stats.statuses.entry(*status).or_insert(0) += n;
                }
                for (reason, n) in &a.reasons {
                    count_reason_n(&mut acc.reasons, reason, *n);
                }
            }
        }
        self.record.requests_folded += o.folded();
        self.record.events_shed += o.shed;
        self.record.users_died += o.deaths;
        if self.record.first_death.is_none() {
            self.record.first_death.clone_from(&o.first_death);
        }
        for ev in &o.side {
            self.record(ev);
        }
    }

    fn seen(&mut self, at: Duration) {
        self.last_at = self.last_at.max(at);
    }

    /// A flow ended: its whole latency (no coordinated-omission correction: think times
    /// are part of it), and whether it stopped at a failed step.
    fn flow(&mut self, at: Duration, d: &FlowDone) {
        self.seen(at);
        let v = d.latency_us.min(MAX_LATENCY_US);
        let i = usize::from(d.flow);
        for (stats, acc) in [
            (self.record.flows.get_mut(i), self.flow_accs.get_mut(i)),
            (
                Some(&mut self.record.flow_total),
                Some(&mut self.flow_total_acc),
            ),
        ] {
            let (Some(stats), Some(acc)) = (stats, acc) else {
                continue;
            };
            stats.count += 1;
            stats.clamped += u64::from(d.latency_us > MAX_LATENCY_US);
            let _ = stats.raw.record(v);
            let _ = stats.corrected.record(v);
            if let Some(reason) = &d.error {
                stats.errors += 1;
                count_reason(&mut acc.reasons, reason);
            }
        }
    }

    fn request(&mut self, at: Duration, d: &RequestDone) {
        self.advance(at);
        let (v, clamped) = if d.latency_us > MAX_LATENCY_US {
            (MAX_LATENCY_US, true)
        } else {
            (d.latency_us, false)
        };
        // Raw is the service time, from the actual send; in the open model `latency_us`
        // counts from the intended start and goes to the corrected histogram.
        let service = d.service_us.min(MAX_LATENCY_US);
        let interval = self.record.expected_interval_us;
        self.window.requests += 1;
        self.window.errors += u64::from(d.error.is_some());
        let _ = self.window.hist.record(v);
        let _ = self.window.raw.record(service);
        let _ = match interval {
            Some(iv) => self.window.corrected.record_correct(v, iv),
            None => self.window.corrected.record(v),
        };
        let warming = self
            .record
            .load_started
            .is_some_and(|s| at < s + self.record.warmup);
        if warming {
            return;
        }
        let i = d.request as usize;
        for (stats, acc) in [
            (self.record.requests.get_mut(i), self.accs.get_mut(i)),
            (Some(&mut self.record.total), Some(&mut self.total_acc)),
        ] {
            let (Some(stats), Some(acc)) = (stats, acc) else {
                continue;
            };
            stats.count += 1;
            stats.clamped += u64::from(clamped);
            // In bounds by construction (clamped to the histogram's highest value).
            let _ = stats.raw.record(service);
            match interval {
                Some(iv) => {
                    let _ = stats.corrected.record_correct(v, iv);
                }
                None => {
                    let _ = stats.corrected.record(v);
                }
            }
            if d.status != 0 {
                *stats.statuses.entry(d.status).or_insert(0) += 1;
            }
            if let Some(reason) = &d.error {
                stats.errors += 1;
                count_reason(&mut acc.reasons, reason);
            }
        }
    }

    /// Close every window before the second `at` falls in. Late events (a few ms out of
    /// order) go to the open window.
    fn advance(&mut self, at: Duration) {
        self.seen(at);
        let Some(start) = self.record.load_started else {
            return;
        };
        if self.finished {
            return;
        }
        let second = at.saturating_sub(start).as_secs().min(u64::from(u32::MAX)) as u32;
        while self.window.second < second {
            self.close_window();
        }
    }

    fn close_window(&mut self) {
        let w = &mut self.window;
        let figures = |h: &Histogram<u64>| {
            if h.is_empty() {
                [0; 4]
            } else {
                [
                    h.value_at_quantile(0.50),
                    h.value_at_quantile(0.95),
                    h.value_at_quantile(0.99),
                    h.max(),
                ]
            }
        };
        let [p50, p95, p99, max] = figures(&w.hist);
        let (raw_us, corrected_us) = (figures(&w.raw), figures(&w.corrected));
        self.record.windows.push(Window {
            second: w.second,
            users: w.users,
            requests: w.requests,
            errors: w.errors,
            p50_us: p50,
            p95_us: p95,
            p99_us: p99,
            max_us: max,
            raw_us,
            corrected_us,
        });
        w.second += 1;
        w.users = self.users;
        w.requests = 0;
        w.errors = 0;
        for h in [&mut w.hist, &mut w.raw, &mut w.corrected] {
            if !h.is_empty() {
                h.reset();
            }
        }
    }

    /// The record so far (live metrics read it while the run goes).
    pub fn so_far(&self) -> &Record {
        &self.record
    }

    /// Virtual users running now.
    pub fn users_now(&self) -> u32 {
        self.users
    }

    pub fn live(&self) -> LiveStats {
        let elapsed = match (self.finished, self.started_wall) {
            (true, _) => self.record.load_duration,
            (false, Some(t)) => t.elapsed(),
            (false, None) => Duration::ZERO,
        };
        // The last full second: the open window if the clock has moved past it (no
        // event closed it yet), else the last closed one if it is the one just before.
        let now_sec = elapsed.as_secs();
        let rps = if self.record.load_started.is_none() {
            0.0
        } else if u64::from(self.window.second) + 1 == now_sec {
            self.window.requests as f64
        } else {
            match self.record.windows.last() {
                Some(w) if u64::from(w.second) + 1 == now_sec => w.requests as f64,
                Some(w) if self.finished && u64::from(w.second) + 1 >= now_sec => w.requests as f64,
                _ => 0.0,
            }
        };
        LiveStats {
            elapsed,
            planned: self.planned(),
            users: self.users,
            requests: self.record.total.count,
            errors: self.record.total.errors,
            rps,
        }
    }

    pub fn finish(mut self) -> Record {
        if let Some(start) = self.record.load_started {
            if !self.finished {
                self.record.load_duration = self.last_at.saturating_sub(start);
            }
            // Close the open window if it saw anything or lies inside the load; then
            // fill the seconds up to the end of the load with empty windows.
            let end_sec = self.record.load_duration.as_secs_f64().ceil() as u32;
            while self.window.second < end_sec || self.window.requests > 0 || self.window.errors > 0
            {
                self.close_window();
            }
        }
        let accs = std::mem::take(&mut self.accs);
        for (stats, acc) in self.record.requests.iter_mut().zip(accs) {
            stats.error_reasons = sorted_reasons(acc.reasons);
        }
        let total = std::mem::replace(&mut self.total_acc, Acc::new());
        self.record.total.error_reasons = sorted_reasons(total.reasons);
        let accs = std::mem::take(&mut self.flow_accs);
        for (stats, acc) in self.record.flows.iter_mut().zip(accs) {
            stats.error_reasons = sorted_reasons(acc.reasons);
        }
        let total = std::mem::replace(&mut self.flow_total_acc, Acc::new());
        self.record.flow_total.error_reasons = sorted_reasons(total.reasons);
        self.record
    }
}

fn count_reason(reasons: &mut HashMap<Box<str>, u64>, reason: &str) {
    count_reason_n(reasons, reason, 1)
}

fn count_reason_n(reasons: &mut HashMap<Box<str>, u64>, reason: &str, count: u64) {
    if let Some(n) = reasons.get_mut(reason) {
        *n += count;
        return;
    }
    if reasons.len() >= MAX_TRACKED {
        // Full: the rarest reason so far makes room (its count moves to "other"), so a
        // frequent reason that starts late still gets in.
        let rarest = reasons
            .iter()
            .filter(|(k, _)| &***k != OTHER_REASON)
            .min_by_key(|(_, n)| **n)
            .map(|(k, n)| (k.clone(), *n));
        if let Some((k, n)) = rarest {
            reasons.remove(&k);
            *reasons.entry(OTHER_REASON.into()).or_insert(0) += n;
        }
    }
    reasons.insert(reason.into(), count);
}

/// Most frequent first (ties by text, so output is stable), at most `MAX_REASONS`; the
/// rest are summed into "other", listed last.
fn sorted_reasons(mut reasons: HashMap<Box<str>, u64>) -> Vec<(String, u64)> {
    let mut other = reasons.remove(OTHER_REASON).unwrap_or(0);
    let mut v: Vec<(String, u64)> = reasons
        .into_iter()
        .map(|(k, n)| (k.into_string(), n))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if v.len() > MAX_REASONS {
        other += v.drain(MAX_REASONS..).map(|(_, n)| n).sum::<u64>();
    }
    if other > 0 {
        v.push((OTHER_REASON.to_string(), other));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RequestDone;

    fn plan(load: &str) -> Plan {
        let src = format!(
            r#"
name = "t"
seed = 1
[target]
base_url = "http://127.0.0.1:9"
allow_hosts = ["127.0.0.1"]
[load]
{load}
[[requests]]
name = "a"
path = "/a"
[[requests]]
name = "b"
path = "/b"
"#
        );
        crate::scenario::load_str(std::path::Path::new("t.toml"), &src).expect("valid plan")
    }

    fn closed(think: &str) -> Plan {
        plan(&format!(
            "think_time = {think}\nstages = [{{ duration = \"10s\", users = 10 }}]"
        ))
    }

    fn s(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn req(at_ms: u64, request: u16, latency_us: u64, error: Option<&str>) -> RunEvent {
        ev(
            at_ms,
            EventKind::Request(RequestDone {
                request,
                latency_us,
                service_us: latency_us,
                status: if error.is_some() { 500 } else { 200 },
                error: error.map(Into::into),
            }),
        )
    }

    fn phase(at_ms: u64, phase: Phase) -> RunEvent {
        ev(at_ms, EventKind::Phase(phase))
    }

    fn ev(at_ms: u64, kind: EventKind) -> RunEvent {
        RunEvent { at: s(at_ms), kind }
    }

    /// 1,000 request names cost bounded memory: histograms grow only with what a name saw
    /// (one that never ran stays at its smallest) and keep 2 digits past 64 names. The
    /// former fixed 1µs..1h, 3-digit pair cost 360 KiB a name (352 MiB for 1,000).
    #[test]
    fn a_thousand_names_cost_little() {
        let mut src = String::from(
            "name = \"n\"\n[target]\nbase_url = \"http://127.0.0.1:9\"\nallow_hosts = [\"127.0.0.1\"]\n[load]\nstages = [{ duration = \"1s\", users = 1 }]\n",
        );
        for i in 0..1000 {
            src.push_str(&format!("[[requests]]\nname = \"r{i}\"\npath = \"/\"\n"));
        }
        let plan = crate::scenario::load_str(std::path::Path::new("n.toml"), &src)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut rec = Recorder::new(&plan);
        rec.record(&phase(0, Phase::LoadStarted));
        // Half the names see a 1s latency, the other half nothing.
        for i in 0..500u16 {
            rec.record(&req(10, i, 1_000_000, None));
        }
        let r = rec.finish();
        let bytes =
            |s: &RequestStats| (s.raw.distinct_values() + s.corrected.distinct_values()) * 8;
        let used: usize = r.requests[..500].iter().map(bytes).sum();
        let unused: usize = r.requests[500..].iter().map(bytes).sum();
        assert!(used < 16 << 20, "{used} bytes for 500 names");
        assert!(
            unused <= 500 * 4096,
            "{unused} bytes for 500 names never run"
        );
        // The total keeps full precision.
        assert_eq!(r.total.raw.sigfig(), 3);
        assert_eq!(r.requests[0].raw.sigfig(), 2);
        assert_eq!(
            r.requests[0].raw.max(),
            r.requests[0].raw.highest_equivalent(1_000_000)
        );
    }

    /// Dead users are counted, the first reason kept, and only the first few written
    /// as notices.
    #[test]
    fn dead_users_are_counted() {
        let mut rec = Recorder::new(&closed("\"0s\""));
        for user in 1..=20 {
            rec.record(&ev(
                5,
                EventKind::UserDied {
                    user,
                    reason: format!("panicked: boom {user}"),
                },
            ));
        }
        let r = rec.finish();
        assert_eq!(r.users_died, 20);
        assert_eq!(r.first_death.as_deref(), Some("user 1: panicked: boom 1"));
        assert_eq!(r.notices.len(), DEATH_NOTICES as usize);
        assert_eq!(r.notices[0].2, "user 1 died: panicked: boom 1");
    }

    /// Deaths are never shed, even past a full side queue: they fail the verdict.
    #[test]
    fn deaths_survive_a_full_side_queue() {
        let (sink, mut rx) = crate::event::EventSink::with_capacity(std::time::Instant::now(), 1);
        for _ in 0..crate::event::overflow::SIDE_CAPACITY + 10 {
            sink.notice(Level::Info, "n");
        }
        for user in 1..=3 {
            sink.send(EventKind::UserDied {
                user,
                reason: "panicked: boom".into(),
            });
        }
        drop(sink);
        let mut r = Recorder::new(&closed("\"0s\""));
        while let Ok(ev) = rx.try_recv() {
            r.record(&ev);
        }
        let rec = r.finish();
        assert_eq!(rec.users_died, 3);
        assert_eq!(rec.first_death.as_deref(), Some("user 1: panicked: boom"));
        assert_eq!(rec.events_shed, 9);
    }

    /// A lagging recorder: the channel holds 8 events, 1000 requests and 20 notices are
    /// sent before it reads. Every request is counted and graded, the notices that did
    /// not fit the side queue are counted as shed, and nothing else is lost.
    #[test]
    fn a_full_channel_folds_requests_and_loses_none() {
        let (sink, mut rx) = crate::event::EventSink::with_capacity(std::time::Instant::now(), 8);
        sink.send_at(s(0), EventKind::Phase(Phase::LoadStarted));
        for i in 0..1000u64 {
            let err = (i % 10 == 0).then_some("status 500");
            let e = req(i, (i % 2) as u16, 1000 + i, err);
            sink.send_at(e.at, e.kind);
        }
        for _ in 0..20 {
            sink.notice(Level::Info, "n");
        }
        drop(sink);
        let mut r = Recorder::new(&closed(r#""100ms""#));
        while let Ok(ev) = rx.try_recv() {
            r.record(&ev);
        }
        let rec = r.finish();
        assert_eq!(rec.total.count, 1000);
        assert_eq!(rec.total.errors, 100);
        assert_eq!(rec.requests[0].count + rec.requests[1].count, 1000);
        assert_eq!(rec.total.raw.len(), 1000);
        assert!(rec.total.corrected.len() >= 1000);
        assert_eq!(rec.requests_folded, 1000 - 7);
        assert_eq!(rec.notices.len(), 20);
        assert_eq!(rec.events_shed, 0);
        assert_eq!(
            rec.total.error_reasons,
            vec![("status 500".to_string(), 100)]
        );
    }

    /// A capacity level's warmup: its requests are in the per-second windows, not in the
    /// graded totals, and rates are over the rest of the load.
    #[test]
    fn requests_in_the_warmup_are_not_graded() {
        let mut p = closed(r#""0s""#);
        p.warmup = s(2000);
        let mut r = Recorder::new(&p);
        r.record(&phase(1000, Phase::LoadStarted));
        r.record(&req(2500, 0, 900_000, Some("status 500")));
        r.record(&req(3500, 0, 1_000, None));
        r.record(&req(4500, 1, 2_000, None));
        r.record(&phase(6000, Phase::LoadFinished));
        let rec = r.finish();
        assert_eq!((rec.total.count, rec.total.errors), (2, 0));
        assert!(rec.total.raw.max() < 10_000);
        assert_eq!(rec.windows.iter().map(|w| w.requests).sum::<u64>(), 3);
        assert_eq!(rec.measured_duration(), s(3000));
    }

    #[test]
    fn correction_uses_the_mean_think_time() {
        let mut r = Recorder::new(&closed(r#"{ min = "50ms", max = "150ms" }"#));
        r.record(&phase(0, Phase::LoadStarted));
        // One 1 s stall with a 100 ms expected interval: the corrected histogram also
        // holds the requests that would have been sent meanwhile: 900, 800, ... 100 ms.
        r.record(&req(1000, 0, 1_000_000, None));
        let rec = r.finish();
        assert_eq!(rec.expected_interval_us, Some(100_000));
        let a = &rec.requests[0];
        assert_eq!(a.raw.len(), 1);
        assert_eq!(a.corrected.len(), 10);
        assert!(a.corrected.min() >= 99_000 && a.corrected.min() <= 101_000);
        assert_eq!(rec.total.corrected.len(), 10);
        // Fast requests (below the interval) are not corrected.
        let mut r = Recorder::new(&closed(r#""100ms""#));
        r.record(&phase(0, Phase::LoadStarted));
        for i in 0..5 {
            r.record(&req(10 * i, 1, 20_000, None));
        }
        let rec = r.finish();
        assert_eq!(rec.requests[1].raw.len(), 5);
        assert_eq!(rec.requests[1].corrected.len(), 5);
    }

    #[test]
    fn no_think_time_or_open_model_means_no_correction() {
        let rec = Recorder::new(&plan("stages = [{ duration = \"1s\", users = 1 }]")).finish();
        assert_eq!(rec.expected_interval_us, None);
        let open = plan(
            "model = \"open\"\nthink_time = \"1s\"\nstages = [{ duration = \"1s\", rate = 10 }]",
        );
        let mut r = Recorder::new(&open);
        r.record(&phase(0, Phase::LoadStarted));
        r.record(&req(500, 0, 5_000_000, None));
        let rec = r.finish();
        assert_eq!(rec.expected_interval_us, None);
        assert_eq!(rec.total.corrected.len(), 1);
    }

    #[test]
    fn latencies_are_clamped_and_counted() {
        let mut r = Recorder::new(&closed(r#""0s""#));
        r.record(&phase(0, Phase::LoadStarted));
        r.record(&req(10, 0, MAX_LATENCY_US * 2, None));
        r.record(&req(10, 0, 0, None));
        let rec = r.finish();
        assert_eq!(rec.requests[0].clamped, 1);
        assert_eq!(rec.total.clamped, 1);
        assert_eq!(rec.requests[0].raw.len(), 2);
        assert!(rec.requests[0].raw.max() >= MAX_LATENCY_US - MAX_LATENCY_US / 1000);
    }

    #[test]
    fn windows_per_second() {
        let mut r = Recorder::new(&closed(r#""0s""#));
        r.record(&phase(5_000, Phase::LoadStarted));
        r.record(&ev(5_100, EventKind::Users { count: 3 }));
        r.record(&req(5_200, 0, 1_000, None));
        r.record(&req(5_900, 1, 3_000, Some("status 500 (expected 2xx/3xx)")));
        r.record(&ev(6_500, EventKind::Users { count: 7 }));
        r.record(&ev(6_600, EventKind::Users { count: 5 }));
        // Nothing in second 2, two requests in second 3.
        r.record(&req(8_100, 0, 2_000, None));
        r.record(&req(8_200, 0, 4_000, None));
        r.record(&phase(9_500, Phase::LoadFinished));
        let live = r.live();
        assert_eq!(live.elapsed, s(4_500));
        assert_eq!(live.requests, 4);
        assert_eq!(live.errors, 1);
        let rec = r.finish();
        assert_eq!(rec.load_started, Some(s(5_000)));
        assert_eq!(rec.load_duration, s(4_500));
        assert_eq!(rec.users_peak, 7);
        let w = &rec.windows;
        assert_eq!(w.len(), 5, "{w:?}");
        assert_eq!(
            (w[0].second, w[0].users, w[0].requests, w[0].errors),
            (0, 3, 2, 1)
        );
        assert!(w[0].max_us >= 2_990 && w[0].max_us <= 3_010);
        assert_eq!((w[1].users, w[1].requests), (7, 0));
        assert_eq!((w[2].users, w[2].requests, w[2].p99_us), (5, 0, 0));
        assert_eq!(w[3].requests, 2);
        assert!(w[3].p50_us >= 1_990 && w[3].p50_us <= 2_010);
        assert!(w[3].max_us >= 3_990 && w[3].max_us <= 4_010);
        assert_eq!((w[4].second, w[4].requests), (4, 0));
        assert_eq!(rec.total.statuses.get(&200), Some(&3));
        assert_eq!(rec.total.statuses.get(&500), Some(&1));
        assert_eq!(
            rec.requests[1].error_reasons,
            vec![("status 500 (expected 2xx/3xx)".to_string(), 1)]
        );
    }

    #[test]
    fn windows_keep_raw_and_corrected_figures() {
        // Think time 10ms: the correction adds samples below a 100ms request.
        let mut r = Recorder::new(&closed(r#""10ms""#));
        r.record(&phase(0, Phase::LoadStarted));
        r.record(&req(100, 0, 1_000, None));
        r.record(&req(200, 0, 100_000, None));
        r.record(&phase(1_500, Phase::LoadFinished));
        let rec = r.finish();
        let w = &rec.windows[0];
        // Raw: the two requests; corrected: the same maximum, more samples in between.
        assert!(w.raw_us[0] >= 990 && w.raw_us[0] <= 1_010, "{w:?}");
        assert!(w.raw_us[3] >= 99_900 && w.raw_us[3] <= 100_100, "{w:?}");
        assert_eq!(w.corrected_us[3], w.raw_us[3], "{w:?}");
        assert!(w.corrected_us[0] > w.raw_us[0], "{w:?}");
        // The window's totals follow the run's histograms.
        assert_eq!(rec.total.raw.len(), 2);
        assert!(rec.total.corrected.len() > 2);
    }

    #[test]
    fn reasons_are_bounded() {
        let mut r = Recorder::new(&closed(r#""0s""#));
        r.record(&phase(0, Phase::LoadStarted));
        for i in 0..1000u64 {
            let reason = format!("check failed: /id == {i}");
            r.record(&req(i, 0, 10, Some(&reason)));
        }
        for _ in 0..5 {
            r.record(&req(999, 0, 10, Some("connect: connection refused")));
        }
        let rec = r.finish();
        let reasons = &rec.requests[0].error_reasons;
        assert_eq!(reasons.len(), MAX_REASONS + 1);
        assert_eq!(reasons[0], ("connect: connection refused".to_string(), 5));
        let (last, n) = reasons.last().unwrap();
        assert_eq!(last, "other");
        assert_eq!(reasons.iter().map(|r| r.1).sum::<u64>(), 1005);
        assert_eq!(*n, 1000 - (MAX_REASONS as u64 - 1));
        assert_eq!(rec.requests[0].errors, 1005);
    }

    #[test]
    fn observers_faults_notices_and_interrupt() {
        let mut r = Recorder::new(&closed(r#""0s""#));
        r.record(&phase(0, Phase::LoadStarted));
        r.record(&ev(10, EventKind::Dropped));
        for (ok, cpu, mem) in [(true, 10.0, 100), (false, 30.0, 300), (true, 20.0, 200)] {
            r.record(&ev(
                20,
                EventKind::Probe {
                    service: "api".into(),
                    ok,
                    latency_us: 5,
                    stalled_since: None,
                },
            ));
            r.record(&ev(
                20,
                EventKind::Resource {
                    service: "api".into(),
                    cpu_pct: cpu,
                    mem_bytes: mem,
                },
            ));
            r.record(&ev(
                20,
                EventKind::Metric {
                    service: "api".into(),
                    name: "m".into(),
                    value: cpu,
                },
            ));
        }
        r.record(&ev(
            30,
            EventKind::Notice {
                level: Level::Warn,
                message: "hi".into(),
            },
        ));
        r.record(&phase(40, Phase::Interrupted));
        let rec = r.finish();
        assert_eq!(rec.dropped, 1);
        let p = &rec.probes["api"];
        assert_eq!((p.ok, p.total), (2, 3));
        let res = &rec.resources["api"];
        assert_eq!(res.samples, 3);
        assert!((res.cpu_avg_pct - 20.0).abs() < 1e-9);
        assert_eq!(
            (res.cpu_peak_pct, res.mem_peak_bytes, res.mem_last_bytes),
            (30.0, 300, 200)
        );
        let m = &rec.metrics[&("api".to_string(), "m".to_string())];
        assert_eq!((m.samples, m.last, m.min, m.max), (3, 20.0, 10.0, 30.0));
        // 10 -> 30 is +20; the drop to 20 is a counter reset: +20.
        assert_eq!((m.sum, m.increase), (60.0, 40.0));
        assert_eq!(rec.notices.len(), 1);
        assert!(rec.interrupted);
        // Never finished: the load lasted until the last event.
        assert_eq!(rec.load_duration, s(40));
    }

    #[test]
    fn availability_is_time_not_probe_count() {
        // 15 s of probes every 500 ms, down from 2 s to 12 s: 10 s of 15 s down. A failed
        // probe is stamped when sent, so the hanging ones count as they should.
        let p = ProbeStats {
            points: (0..=30u32)
                .map(|i| (i * 500, !(4..24).contains(&i)))
                .collect(),
            ..ProbeStats::default()
        };
        let u = p.uptime().unwrap();
        assert_eq!(u.span_s, 15.0);
        assert!((u.down_s - 10.0).abs() <= 0.5, "{u:?}");
        assert!((u.percent - 100.0 / 3.0).abs() < 3.4, "{u:?}");
        assert_eq!(u.outages, 1);
        assert!((u.longest_outage_s - 10.0).abs() <= 0.5, "{u:?}");
        assert_eq!(u.resolution_s, 0.5);
        // Out of order arrivals are sorted; the first failure after a fault is detection.
        let mut q = p.clone();
        q.points.reverse();
        assert_eq!(q.uptime(), Some(u));
        assert_eq!(
            p.detect(Duration::from_millis(1700), None),
            Some(Duration::from_millis(300))
        );
        assert_eq!(
            p.detect(
                Duration::from_millis(1700),
                Some(Duration::from_millis(1900))
            ),
            None
        );
        assert!(ProbeStats::default().uptime().is_none());
    }

    #[test]
    fn memory_growth_is_robust_and_retained_is_after_minus_before() {
        const MIB: u64 = 1 << 20;
        // A leak: +1 MiB a second from 100 MiB for 60 s, with two 500 MiB spikes.
        let mut leak = ResourceStats::default();
        for i in 0..60u32 {
            let spike = if i == 10 || i == 40 { 500 * MIB } else { 0 };
            leak.mem_series
                .push((i * 1000, 100 * MIB + u64::from(i) * MIB + spike));
        }
        let g = leak
            .growth(Duration::ZERO, Duration::from_secs(60))
            .unwrap();
        assert!((g / MIB as f64 - 60.0).abs() < 1.0, "{}", g / MIB as f64);
        // A burst: up by 200 MiB in two seconds, then flat: little growth.
        let mut burst = ResourceStats::default();
        for i in 0..60u32 {
            let m = if i < 5 { 100 * MIB } else { 300 * MIB };
            burst.mem_series.push((i * 1000, m));
        }
        let g = burst
            .growth(Duration::ZERO, Duration::from_secs(60))
            .unwrap();
        assert!(g.abs() < 1.0, "{g}");
        // Retained: load from 5 s to 50 s; before = 100 MiB, after (from 51 s) = 300 MiB.
        let (r, before, after) = burst
            .retained(Duration::from_secs(5), Duration::from_secs(50))
            .unwrap();
        assert_eq!(
            (r, before, after),
            ((200 * MIB) as f64, (100 * MIB) as f64, (300 * MIB) as f64)
        );
        assert!(burst
            .retained(Duration::from_secs(5), Duration::from_secs(59))
            .is_none());
        assert!(ResourceStats::default()
            .growth(Duration::ZERO, Duration::MAX)
            .is_none());
    }

    #[test]
    fn live_rps_is_the_last_full_second() {
        let mut r = Recorder::new(&closed(r#""0s""#));
        assert_eq!(r.live().rps, 0.0);
        assert_eq!(r.live().planned, Duration::from_secs(10));
        r.record(&phase(0, Phase::LoadStarted));
        for i in 0..30 {
            r.record(&req(i * 10, 0, 10, None));
        }
        r.record(&ev(300, EventKind::Users { count: 4 }));
        // Second 0 is still open (elapsed ~0): no full second yet.
        assert_eq!(r.live().rps, 0.0);
        assert_eq!(r.live().users, 4);
        r.record(&req(1_500, 0, 10, None));
        r.record(&phase(2_000, Phase::LoadFinished));
        // Elapsed = 2s (finished): the last full second is second 1.
        assert_eq!(r.live().rps, 1.0);
    }
}
