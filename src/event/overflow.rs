//! The policy when the event channel is full (the recorder lags behind the senders).
//!
//! - A request result is folded by the sender into its request's aggregate (count, errors,
//!   statuses, reasons, raw latency histogram): nothing is lost, the request only loses its
//!   place in the per-second time series. The recorder adds the aggregates into its
//!   totals at the end and the report says how many requests came this way.
//! - Any other event (phase, fault, probe, sample, notice) waits in a side queue of
//!   [`SIDE_CAPACITY`] that the recorder drains before the channel.
//! - Beyond that, events are shed and counted; the report shows the count.
//!
//! Memory stays bounded: the channel and the side queue have fixed sizes, an aggregate is
//! one histogram per request name and a bounded map of reasons.

use std::collections::{BTreeMap, HashMap, VecDeque};

use hdrhistogram::Histogram;

use super::{EventKind, RequestDone, RunEvent};

/// Events that may wait for the recorder. At ~100 bytes each, about 6 MiB.
pub const EVENT_CAPACITY: usize = 1 << 16;
/// Non-request events kept aside when the channel is full.
pub const SIDE_CAPACITY: usize = 4096;
/// Distinct error reasons kept per aggregate; the rest are counted as "other".
const MAX_REASONS: usize = 200;

/// Latencies are recorded in microseconds, never rounded, up to this (1 hour); longer
/// values are clamped to it and counted.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Request names up to which each name's histograms keep 3 significant digits (0.1 %);
/// with more names they keep 2 (1 %), so 1,000 names cost tens of MiB, not hundreds.
pub const PRECISE_NAMES: usize = 64;

/// Significant digits of the per-name latency histograms for a plan of `names` requests.
pub fn digits_for_names(names: usize) -> u8 {
    if names <= PRECISE_NAMES {
        3
    } else {
        2
    }
}

/// A histogram for µs latencies, 1µs up to [`MAX_LATENCY_US`] (callers clamp), with
/// `digits` significant digits. It starts at its smallest (16 KiB at 3 digits, 2 KiB at
/// 2) and grows with the largest value recorded: a fixed 1h range costs 180 KiB at 3
/// digits, whatever the name saw.
pub fn histogram(digits: u8) -> Histogram<u64> {
    let mut h =
        Histogram::new_with_bounds(1, 2, digits).expect("static histogram bounds are valid");
    h.auto(true);
    h
}

/// A latency histogram at full precision (3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    histogram(3)
}

/// What the senders kept aside while the channel was full.
#[derive(Debug, Clone, Default)]
pub struct Overflow {
    /// Folded request results, by request index.
    pub requests: BTreeMap<u16, RequestAggregate>,
    /// Non-request events waiting for the recorder.
    pub side: VecDeque<RunEvent>,
    /// Events dropped because the side queue was full too.
    pub shed: u64,
    /// Users' deaths that did not fit the side queue, and the first one's reason.
    pub deaths: u64,
    pub first_death: Option<String>,
    /// Significant digits of the aggregates' histograms (the recorder's per-name
    /// precision); 3 until told.
    pub digits: Option<u8>,
}

/// Request results of one request name, folded.
#[derive(Debug, Clone)]
pub struct RequestAggregate {
    pub count: u64,
    pub errors: u64,
    /// Latencies above [`MAX_LATENCY_US`], clamped.
    pub clamped: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub reasons: HashMap<Box<str>, u64>,
    /// Latency as reported (µs; open model: from the intended start); the recorder
    /// derives the corrected one from it.
    pub latency: Histogram<u64>,
    /// Service time (µs, from the actual send): the raw histogram.
    pub service: Histogram<u64>,
}

impl Overflow {
    pub(super) fn keep(&mut self, ev: RunEvent) {
        if let EventKind::Request(d) = &ev.kind {
            self.fold(d);
        } else if self.side.len() < SIDE_CAPACITY {
            self.side.push_back(ev);
        } else if let EventKind::UserDied { user, reason } = &ev.kind {
            // Never shed: a death fails the verdict. Counted, the first reason kept.
            self.deaths += 1;
            self.first_death
                .get_or_insert_with(|| format!("user {user}: {reason}"));
        } else {
            self.shed += 1;
        }
    }

    fn fold(&mut self, d: &RequestDone) {
        let a = self
            .requests
            .entry(d.request)
            .or_insert_with(|| RequestAggregate {
                count: 0,
                errors: 0,
                clamped: 0,
                statuses: BTreeMap::new(),
                reasons: HashMap::new(),
                latency: histogram(self.digits.unwrap_or(3)),
                service: histogram(self.digits.unwrap_or(3)),
            });
        a.count += 1;
        a.clamped += u64::from(d.latency_us > MAX_LATENCY_US);
        // In bounds by construction (clamped to the histogram's highest value).
        let _ = a.latency.record(d.latency_us.min(MAX_LATENCY_US));
        let _ = a.service.record(d.service_us.min(MAX_LATENCY_US));
        if d.status != 0 {
            *a.statuses.entry(d.status).or_insert(0) += 1;
        }
        if let Some(reason) = &d.error {
            a.errors += 1;
            if let Some(n) = a.reasons.get_mut(reason) {
                *n += 1;
            } else if a.reasons.len() < MAX_REASONS {
                a.reasons.insert(reason.clone(), 1);
            } else {
                *a.reasons.entry("other".into()).or_insert(0) += 1;
            }
        }
    }

    /// Requests folded here.
    pub fn folded(&self) -> u64 {
        self.requests.values().map(|a| a.count).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.side.is_empty() && self.shed == 0 && self.deaths == 0
    }
}
