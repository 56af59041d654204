//! Observers: the data canary and Prometheus scrapes.

use serde::Deserialize;

use super::*;

/// `[canary]`: data-loss canary keys in a Redis (see `observe::canary`).
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
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
