//! Open model (arrival rate), independent of goose: iteration `k` is due when the
//! integral of the rate reaches `k` (k6 `ramping-arrival-rate`: the rate ramps linearly
//! from `start_rate` through each stage's `rate`). A due iteration starts at once if one
//! of the `max_in_flight` slots is free; otherwise it is dropped and counted
//! (`EventKind::Dropped`). Latency counts from the intended start, so a late start shows
//! (no coordinated omission; the `corrected` histogram); `service_us` counts from the
//! real send (the `raw` histogram). The in-flight figure is counted, not inferred from
//! free slots, and each sample is the peak since the previous one, so `users.peak` is
//! the exact peak of iterations in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::engine::{Conns, Engine, Flow, Pool};
use super::LoadError;
use crate::event::EventKind;
use crate::scenario::load_plan::RateStage;

/// In-flight iterations get this long after the planned end before they are abandoned.
const GRACE: Duration = Duration::from_secs(2);
/// The in-flight count is sampled this often (an event when it changed).
const SAMPLE: Duration = Duration::from_millis(100);
/// Iterations 0, 1, 2... draw from RNG streams with this bit set (users use the others).
const OPEN_STREAM: u64 = 1 << 63;

/// When each iteration is due, for piecewise-linear rate stages.
pub(crate) struct Arrivals {
    /// (duration s, rate at start, rate at end)
    stages: Vec<(f64, f64, f64)>,
    i: usize,
    /// Time and iteration count at the start of stage `i`.
    t0: f64,
    n0: f64,
}

impl Arrivals {
    pub(crate) fn new(start_rate: f64, stages: &[RateStage]) -> Arrivals {
        let mut prev = start_rate.max(0.0);
        let stages = stages
            .iter()
            .map(|st| {
                let r = st.rate.max(0.0);
                let s = (st.duration.as_secs_f64(), prev, r);
                prev = r;
                s
            })
            .collect();
        Arrivals {
            stages,
            i: 0,
            t0: 0.0,
            n0: 0.0,
        }
    }

    /// Seconds from the start at which iteration `k` is due; `None` past the end.
    /// Calls must come with non-decreasing `k`.
    pub(crate) fn due(&mut self, k: u64) -> Option<f64> {
        let x = k as f64;
        while let Some(&(d, a, b)) = self.stages.get(self.i) {
            let total = (a + b) / 2.0 * d;
            if x < self.n0 + total {
                let y = x - self.n0;
                let slope = (b - a) / d;
                let tau = if slope.abs() < 1e-12 {
                    y / a
                } else {
                    (-a + (a * a + 2.0 * slope * y).max(0.0).sqrt()) / slope
                };
                return Some(self.t0 + tau.clamp(0.0, d));
            }
            self.n0 += total;
            self.t0 += d;
            self.i += 1;
        }
        None
    }
}

/// Iterations in flight, and the most since the sampler last looked.
#[derive(Default)]
struct InFlight {
    now: AtomicU32,
    peak: AtomicU32,
}

impl InFlight {
    fn start(self: &Arc<Self>) -> Started {
        let n = self.now.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        self.peak.fetch_max(n, Ordering::Relaxed);
        Started(self.clone())
    }

    /// The peak since the last call; the next window starts from the current count.
    fn take_peak(&self) -> u32 {
        self.peak
            .swap(self.now.load(Ordering::Relaxed), Ordering::Relaxed)
    }
}

/// One iteration in flight; it ends when this is dropped (finished, or abandoned).
struct Started(Arc<InFlight>);

impl Drop for Started {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Start iterations as the stages say, each on a connection of `pool` (one per slot).
pub(crate) async fn run(
    engine: Engine,
    pool: Pool,
    start_rate: f64,
    stages: &[RateStage],
    max_in_flight: usize,
) -> Result<(), LoadError> {
    let engine = Arc::new(engine);
    let pool = Arc::new(pool);
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut arrivals = Arrivals::new(start_rate, stages);
    let planned: Duration = stages.iter().map(|s| s.duration).sum();
    let events = engine.events.clone();
    let start = Instant::now();
    let t_start = tokio::time::Instant::from_std(start);
    let in_flight = Arc::new(InFlight::default());

    // In-flight sampler.
    let sampler = {
        let in_flight = in_flight.clone();
        let events = events.clone();
        let stop = engine.ending.clone();
        tokio::spawn(async move {
            let mut last = u32::MAX;
            let mut tick = tokio::time::interval(SAMPLE);
            loop {
                let stopping = tokio::select! {
                    _ = tick.tick() => false,
                    _ = stop.cancelled() => true,
                };
                let n = in_flight.take_peak();
                if n != last {
                    last = n;
                    events.send(EventKind::Users { count: n });
                }
                if stopping {
                    break;
                }
            }
        })
    };

    let mut k: u64 = 0;
    while let Some(t) = arrivals.due(k) {
        let due = t_start + Duration::from_secs_f64(t);
        if due > tokio::time::Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = engine.cancel.cancelled() => break,
            }
        } else if k.is_multiple_of(64) {
            // Running behind: let the iterations run between bursts of starts.
            tokio::task::yield_now().await;
            if engine.cancel.is_cancelled() {
                break;
            }
        }
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let engine = engine.clone();
                let pool = pool.clone();
                let intended = due.into_std();
                let started = in_flight.start();
                tokio::spawn(async move {
                    use futures::FutureExt;
                    let _slot = permit;
                    let _started = started;
                    let mut flow = Flow {
                        rng: super::rng_for(engine.plan.seed, OPEN_STREAM | k),
                        vars: HashMap::new(),
                        user: (k + 1) as usize,
                        iteration: 0,
                    };
                    let mut conns = Conns::Pool(&pool);
                    let run = engine.iteration(&mut flow, &mut conns, Some(intended));
                    // A panicking iteration must show in the verdict, not vanish.
                    if let Err(payload) = std::panic::AssertUnwindSafe(run).catch_unwind().await {
                        engine.events.send(EventKind::UserDied {
                            user: k + 1,
                            reason: super::goose_users::panic_reason(payload.as_ref()),
                        });
                    }
                });
            }
            Err(_) => events.send(EventKind::Dropped),
        }
        k += 1;
    }

    // The schedule is over: wait for the stragglers, then abandon them.
    let end = (t_start + planned).max(tokio::time::Instant::now());
    tokio::select! {
        _ = tokio::time::sleep_until(end) => {}
        _ = engine.cancel.cancelled() => {}
    }
    engine.ending.cancel();
    let all = max_in_flight as u32;
    tokio::select! {
        _ = slots.acquire_many(all) => {}
        _ = tokio::time::sleep(GRACE) => {
            engine.cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(1), slots.acquire_many(all)).await;
        }
    }
    let _ = sampler.await;
    events.send(EventKind::Users { count: 0 });
    engine.report_abandoned();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(start: f64, stages: &[(u64, f64)]) -> Vec<f64> {
        let st: Vec<RateStage> = stages
            .iter()
            .map(|&(ms, rate)| RateStage {
                duration: Duration::from_millis(ms),
                rate,
            })
            .collect();
        let mut a = Arrivals::new(start, &st);
        let mut out = Vec::new();
        let mut k = 0;
        while let Some(t) = a.due(k) {
            out.push(t);
            k += 1;
            assert!(k < 1_000_000);
        }
        out
    }

    #[test]
    fn constant_rate() {
        let t = all(10.0, &[(1000, 10.0)]);
        assert_eq!(t.len(), 10);
        for (i, x) in t.iter().enumerate() {
            assert!((x - i as f64 * 0.1).abs() < 1e-9, "{i}: {x}");
        }
    }

    #[test]
    fn linear_ramp_from_zero() {
        // 0 -> 100/s over 2s: 100 iterations, the k-th at sqrt(k/25) s.
        let t = all(0.0, &[(2000, 100.0)]);
        assert_eq!(t.len(), 100);
        for (k, x) in t.iter().enumerate() {
            assert!((x - (k as f64 / 25.0).sqrt()).abs() < 1e-9);
        }
        // Starts are denser at the end of the ramp.
        assert!(t[1] - t[0] > t[99] - t[98]);
    }

    #[test]
    fn ramp_down_and_stages_chain() {
        // 50/s for 1s, then 50 -> 0 over 2s: 50 + 50 iterations, monotone.
        let t = all(50.0, &[(1000, 50.0), (2000, 0.0)]);
        assert_eq!(t.len(), 100);
        assert!(t.windows(2).all(|w| w[1] >= w[0]));
        assert!(t[99] < 3.0 && t[99] > 2.5);
        // Zero rate: nothing.
        assert!(all(0.0, &[(1000, 0.0)]).is_empty());
    }
}
