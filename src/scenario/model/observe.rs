//! Observers: the data canary and Prometheus scrapes, as written and as resolved.

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;

use super::*;

/// `[canary]`: data-loss canary keys in a Redis (see `observe::canary`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct CanarySpec {
    /// The Redis the keys go to, e.g. "redis://127.0.0.1:6379" (its host must be in
    /// `target.allow_hosts`, and loopback).
    pub redis: String,
    /// How many keys. Default 100.
    pub keys: Option<u32>,
    /// Key prefix; the run adds a random token, so runs never share keys. Default
    /// "gauntlet:canary:".
    pub prefix: Option<String>,
    /// At the end, how long to keep trying to read the keys back while Redis is down or
    /// restarting. Default 30s.
    pub timeout: Option<HumanDuration>,
}

/// A service's Prometheus `/metrics`, scraped during the run (see `observe::scrape`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct MetricsSpec {
    /// e.g. "http://127.0.0.1:9090/metrics" (host in `target.allow_hosts`, loopback).
    pub url: String,
    /// Between two scrapes. Default 1s.
    pub interval: Option<HumanDuration>,
    /// One scrape's timeout. Default: the interval, at most 2s.
    pub timeout: Option<HumanDuration>,
    /// Metric names to record (every series of each; labelled ones as `name{labels}`).
    /// Absent: every metric, up to a bound.
    pub keep: Option<Vec<String>>,
    /// A gauge holding the Unix time of the last sync, e.g.
    /// "pipeline_last_sync_timestamp_seconds": every interval gauntlet records
    /// `pipeline_freshness_seconds` = now - that time, also while scrapes fail (a stalled
    /// service cannot answer, and its data keeps getting older).
    pub freshness: Option<String>,
}

// --- Resolved forms (built by validation, stored in `Plan::observers`) ------------------
// `observe` reads only these: every URL is parsed and every default applied once, here.

/// Between two scrapes, when `metrics.interval` is absent.
pub const SCRAPE_DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// A scrape's default timeout is its interval, capped at this.
pub const SCRAPE_MAX_DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Canary keys written when `canary.keys` is absent.
pub const CANARY_DEFAULT_KEYS: NonZeroU32 = NonZeroU32::new(100).unwrap();
/// Most keys a canary may write.
pub const CANARY_MAX_KEYS: u32 = 100_000;
pub const CANARY_DEFAULT_PREFIX: &str = "gauntlet:canary:";
/// How long the end of the run keeps trying to read the keys back, by default.
pub const CANARY_DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What gauntlet watches besides the load and the health probes.
#[derive(Debug, Clone, Default)]
pub struct ObserversPlan {
    /// One per service with a `metrics` table, in file order.
    pub scrapes: Vec<ScrapePlan>,
    pub canary: Option<CanaryPlan>,
}

/// One service's `metrics` table, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapePlan {
    pub service: String,
    /// As [`crate::units::bare_host`] gives it ("::1", not "[::1]"): what is connected to.
    pub host: String,
    pub port: u16,
    /// Path and query, e.g. "/metrics?x=1".
    pub path: String,
    /// The `Host` header: the host as written in the URL, with the port when one is given.
    pub authority: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// None: keep every name.
    pub keep: Option<BTreeSet<String>>,
    /// The timestamp gauge freshness is computed from.
    pub freshness: Option<String>,
}

/// `[canary]`, resolved.
#[derive(Debug, Clone)]
pub struct CanaryPlan {
    /// The URL as written, its user-info (a password) redacted: for messages.
    pub url: String,
    /// As [`crate::units::bare_host`] gives it.
    pub host: String,
    pub port: u16,
    /// Host, port, database and credentials, as the Redis client takes them.
    pub connection: redis::ConnectionInfo,
    pub keys: NonZeroU32,
    pub prefix: String,
    /// How long the read-back at the end retries while Redis is down.
    pub timeout: Duration,
}

/// The service name the data canary's figures are recorded under (reserved: no service of
/// a scenario may take it), so the grader's `data_loss.keys` reads only the canary.
pub const CANARY_SERVICE: &str = "canary";
/// The canary's figure: keys found missing or changed at the end.
pub const CANARY_LOSS_METRIC: &str = "data_loss_keys";
