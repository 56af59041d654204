//! Observers: what gauntlet watches besides the load and the health probes.
//!
//! - **Prometheus scrapes** ([`scrape`]): a service with a `metrics` table is scraped every
//!   `interval`; kept samples become `EventKind::Metric { service, name, value }` (labelled
//!   series as `name{labels}`, bounded per service), failed scrapes are counted in a
//!   `scrape_errors` metric and a notice, and with `freshness = "<timestamp gauge>"` the
//!   observer itself records `pipeline_freshness_seconds` = now - the last timestamp seen,
//!   after every attempt, also when the service cannot answer (stalled or stopped), so the
//!   figure keeps growing while nothing syncs. Unit tests: [`prom`], [`scrape`].
//! - **Data canary** ([`canary`]): with a `[canary]` table, keys are written to a Redis
//!   before the load and the faults, and read back at the end; the number missing is
//!   recorded as `data_loss_keys` under the service `canary`. When the keys cannot be
//!   written (or read back at the end), an `Error` notice says why and nothing is recorded,
//!   so `data_loss.keys` fails for missing data.
//!
//! Observers read only [`ObserversPlan`], resolved by `scenario` (URLs parsed, defaults
//! applied). Every address they talk to must be a loopback one (validation also requires
//! the host in `target.allow_hosts`). Observers only emit events; they never print and never
//! fail the run: a problem is a notice, and the criterion that needed the data fails.
//!
//! Use from the run:
//!
//! ```ignore
//! // services are ready, the load has not started:
//! let obs = observe::Observers::start(&plan.observers, events.clone()).await;
//! // ... load, faults undone, recoveries awaited, services still running ...
//! obs.finish().await; // canary read-back, one last scrape, tasks stopped
//! ```

pub mod canary;
pub mod prom;
pub mod scrape;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::event::{EventSink, Level};
use crate::scenario::model::ObserversPlan;

/// An observer's address that is not this machine: it is not talked to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: `{host}` is not a loopback address; gauntlet only sends traffic to 127.0.0.1/localhost")]
pub struct NotLoopback {
    /// The scenario key, e.g. "metrics.url".
    pub what: &'static str,
    pub host: String,
}

/// Ok when `host` is a loopback name or address.
pub fn require_loopback(what: &'static str, host: &str) -> Result<(), NotLoopback> {
    if crate::units::is_loopback(host) {
        Ok(())
    } else {
        Err(NotLoopback {
            what,
            host: host.to_string(),
        })
    }
}

/// The run's observers (scrapers, canary). Dropping it stops the scrapers.
pub struct Observers {
    events: EventSink,
    canary: Option<canary::Canary>,
    tasks: Vec<JoinHandle<()>>,
    /// Scrapers do one last scrape and return.
    finish: CancellationToken,
    /// Scrapers return at once.
    stop: CancellationToken,
}

impl Observers {
    /// Write the canary keys (bounded: [`canary::WRITE_WINDOW`]) and start one scraper per
    /// service with a `metrics` table. Call it when the services are ready, before the load
    /// and the faults start. Never fails: problems are notices.
    pub async fn start(plan: &ObserversPlan, events: EventSink) -> Observers {
        let finish = CancellationToken::new();
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        for s in &plan.scrapes {
            match require_loopback("metrics.url", &s.host) {
                Ok(()) => tasks.push(tokio::spawn(scrape::run(
                    s.clone(),
                    events.clone(),
                    finish.clone(),
                    stop.clone(),
                ))),
                Err(e) => events.notice(
                    Level::Error,
                    format!("metrics of `{}` are not scraped: {e}", s.service),
                ),
            }
        }
        // Scrapers run meanwhile: a slow Redis does not delay the first samples.
        let canary = match &plan.canary {
            Some(c) => canary::start(c, &events).await,
            None => None,
        };
        Observers {
            events,
            canary,
            tasks,
            finish,
            stop,
        }
    }

    /// How many scrapers run.
    pub fn scrapers(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the canary keys were written (and are checked by [`Observers::finish`]).
    pub fn canary_written(&self) -> bool {
        self.canary.is_some()
    }

    /// End of the run (load over, faults undone, recoveries awaited, services still up):
    /// read the canary back (retrying up to its `timeout`, default 30s, while Redis is
    /// down), record the loss, then one last scrape of every service and stop.
    pub async fn finish(mut self) {
        if let Some(c) = self.canary.take() {
            c.check(&self.events).await;
        }
        self.finish.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }

    /// Interrupted run: stop at once, without the canary read-back (a notice says the
    /// loss was not measured).
    pub async fn stop(mut self) {
        if self.canary.take().is_some() {
            self.events.notice(
                Level::Warn,
                "data canary: not read back (the run was interrupted)",
            );
        }
        self.stop.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Observers {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::event::EventKind;
    use crate::scenario::model::ScrapePlan;

    #[test]
    fn only_loopback_hosts() {
        for ok in ["127.0.0.1", "127.0.0.9", "localhost", "::1"] {
            assert!(require_loopback("metrics.url", ok).is_ok(), "{ok}");
        }
        for bad in ["10.0.0.1", "example.com", "0.0.0.0"] {
            assert_eq!(
                require_loopback("metrics.url", bad),
                Err(NotLoopback {
                    what: "metrics.url",
                    host: bad.into()
                })
            );
        }
    }

    #[tokio::test]
    async fn a_scrape_that_is_not_loopback_is_a_notice_and_no_scraper() {
        let (events, mut rx) = EventSink::new(Instant::now());
        let plan = ObserversPlan {
            scrapes: vec![ScrapePlan {
                service: "far".into(),
                host: "10.0.0.1".into(),
                port: 9100,
                path: "/metrics".into(),
                authority: "10.0.0.1:9100".into(),
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
                keep: None,
                freshness: None,
            }],
            canary: None,
        };
        let obs = Observers::start(&plan, events).await;
        assert_eq!(obs.scrapers(), 0);
        assert!(!obs.canary_written());
        obs.finish().await;
        let mut notices = vec![];
        while let Ok(ev) = rx.try_recv() {
            if let EventKind::Notice { level, message } = ev.kind {
                notices.push((level, message));
            }
        }
        assert_eq!(
            notices,
            vec![(
                Level::Error,
                "metrics of `far` are not scraped: metrics.url: `10.0.0.1` is not a loopback address; gauntlet only sends traffic to 127.0.0.1/localhost".to_string()
            )]
        );
    }
}
