//! Validation of observers (metrics scrapes, the data canary), and their resolution into
//! the typed [`ObserversPlan`] the run's observers read: URLs parsed, defaults applied.

use std::num::NonZeroU32;

use redis::IntoConnectionInfo;

use super::super::source::Ctx;
use super::*;
use crate::units::bare_host;

/// A Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(super) fn metric_name_ok(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// One problem in an observer table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    /// The key inside the table, e.g. "url" or "keep[1]".
    pub(super) key: String,
    pub(super) message: String,
    pub(super) hint: Option<String>,
}

fn problem(key: impl Into<String>, message: impl Into<String>, hint: Option<&str>) -> Problem {
    Problem {
        key: key.into(),
        message: message.into(),
        hint: hint.map(str::to_string),
    }
}

/// `target.allow_hosts`: as compared (bare hosts) and as written (for hints).
pub(super) struct Allow<'a> {
    pub(super) bare: &'a [String],
    pub(super) written: &'a [String],
}

impl Allow<'_> {
    /// A problem at `key` when `host` is not on the list. An empty list is reported once,
    /// at `target.allow_hosts`, not here.
    fn check(&self, key: &str, what: &str, host: &str) -> Option<Problem> {
        if self.bare.is_empty() || self.bare.iter().any(|h| *h == host) {
            return None;
        }
        Some(Problem {
            key: key.into(),
            message: format!("{what} host `{host}` is not in target.allow_hosts"),
            hint: Some(format!(
                "allowed: {}; gauntlet only talks to hosts listed in target.allow_hosts (add \"{host}\" only if it is this machine)",
                quoted_list(self.written.iter().map(String::as_str))
            )),
        })
    }
}

/// `services[i].metrics`, resolved; Err lists every problem.
pub(super) fn resolve_scrape(
    service: &str,
    m: &MetricsSpec,
    allow: &Allow<'_>,
) -> Result<ScrapePlan, Vec<Problem>> {
    let mut problems = Vec::new();
    let target = match url::Url::parse(&m.url) {
        Ok(u) if u.scheme() == "http" && u.host_str().is_some() => {
            let written = u.host_str().unwrap_or_default();
            let host = bare_host(written);
            problems.extend(allow.check("url", "metrics", &host));
            let mut path = u.path().to_string();
            if let Some(q) = u.query() {
                path.push('?');
                path.push_str(q);
            }
            // `port()` is None for the scheme's default port: the Host header omits it too.
            let authority = match u.port() {
                Some(p) => format!("{written}:{p}"),
                None => written.to_string(),
            };
            Some((
                host,
                u.port_or_known_default().unwrap_or(80),
                path,
                authority,
            ))
        }
        _ => {
            problems.push(problem(
                "url",
                format!("metrics.url must be an http:// URL; found \"{}\"", m.url),
                Some("e.g. url = \"http://127.0.0.1:9090/metrics\""),
            ));
            None
        }
    };
    for (key, d) in [("interval", m.interval), ("timeout", m.timeout)] {
        if d.is_some_and(|d| d.0.is_zero()) {
            problems.push(problem(
                key,
                format!("metrics.{key} must be more than 0"),
                None,
            ));
        }
    }
    if let Some(keep) = &m.keep {
        if keep.is_empty() && m.freshness.is_none() {
            problems.push(problem(
                "keep",
                "metrics.keep is empty, so nothing would be recorded",
                Some("list the metric names to record, or remove `keep` to record them all"),
            ));
        }
        for (j, name) in keep.iter().enumerate() {
            if !metric_name_ok(name) {
                problems.push(problem(
                    format!("keep[{j}]"),
                    format!("`{name}` is not a Prometheus metric name"),
                    Some("write the name alone, without labels, like \"http_requests_total\""),
                ));
            }
        }
    }
    if let Some(f) = &m.freshness {
        if !metric_name_ok(f) {
            problems.push(problem(
                "freshness",
                format!("`{f}` is not a Prometheus metric name"),
                Some("name the gauge holding the Unix time of the last sync, e.g. \"pipeline_last_sync_timestamp_seconds\""),
            ));
        }
    }
    match target {
        Some((host, port, path, authority)) if problems.is_empty() => {
            let interval = m.interval.map_or(SCRAPE_DEFAULT_INTERVAL, |d| d.0);
            Ok(ScrapePlan {
                service: service.to_string(),
                host,
                port,
                path,
                authority,
                interval,
                timeout: m
                    .timeout
                    .map_or(interval.min(SCRAPE_MAX_DEFAULT_TIMEOUT), |d| d.0),
                keep: m.keep.as_ref().map(|k| k.iter().cloned().collect()),
                freshness: m.freshness.clone(),
            })
        }
        _ => Err(problems),
    }
}

/// `[canary]`, resolved; Err lists every problem.
pub(super) fn resolve_canary(
    c: &CanarySpec,
    allow: &Allow<'_>,
) -> Result<CanaryPlan, Vec<Problem>> {
    let mut problems = Vec::new();
    let target = match url::Url::parse(&c.redis) {
        Ok(u) if u.scheme() == "redis" && u.host_str().is_some() => {
            let host = bare_host(u.host_str().unwrap_or_default());
            problems.extend(allow.check("redis", "canary Redis", &host));
            // The Redis client's own reading of the URL (database, user, password), once.
            match c.redis.as_str().into_connection_info() {
                Ok(info) => Some((host, u.port().unwrap_or(6379), info)),
                Err(e) => {
                    problems.push(problem(
                        "redis",
                        format!("canary.redis \"{}\" is not a Redis URL the client accepts: {e}", c.redis),
                        Some("write it like \"redis://127.0.0.1:6379\" or \"redis://127.0.0.1:6379/0\""),
                    ));
                    None
                }
            }
        }
        _ => {
            problems.push(problem(
                "redis",
                format!("canary.redis must be a redis:// URL; found \"{}\"", c.redis),
                Some("e.g. redis = \"redis://127.0.0.1:6379\""),
            ));
            None
        }
    };
    let keys = match c.keys {
        None => Some(CANARY_DEFAULT_KEYS),
        Some(n) if n > CANARY_MAX_KEYS => {
            problems.push(problem(
                "keys",
                format!("canary.keys is at most {CANARY_MAX_KEYS}; found {n}"),
                None,
            ));
            None
        }
        Some(n) => {
            let n = NonZeroU32::new(n);
            if n.is_none() {
                problems.push(problem("keys", "canary.keys must be at least 1", None));
            }
            n
        }
    };
    if let Some(prefix) = &c.prefix {
        if prefix.is_empty()
            || prefix
                .chars()
                .any(|ch| ch.is_whitespace() || ch.is_control())
        {
            problems.push(problem(
                "prefix",
                "canary.prefix must be non-empty, without spaces",
                Some("e.g. prefix = \"gauntlet:canary:\""),
            ));
        }
    }
    if c.timeout.is_some_and(|d| d.0.is_zero()) {
        problems.push(problem(
            "timeout",
            "canary.timeout must be more than 0",
            None,
        ));
    }
    match (target, keys) {
        (Some((host, port, connection)), Some(keys)) if problems.is_empty() => Ok(CanaryPlan {
            url: c.redis.clone(),
            host,
            port,
            connection,
            keys,
            prefix: c
                .prefix
                .clone()
                .unwrap_or_else(|| CANARY_DEFAULT_PREFIX.to_string()),
            timeout: c.timeout.map_or(CANARY_DEFAULT_TIMEOUT, |d| d.0),
        }),
        _ => Err(problems),
    }
}

/// `services[i].metrics` and `[canary]`: URLs whose host is allowed, sane numbers, metric
/// names that can exist. Returns what resolved (the plan is dropped anyway when a problem
/// was reported).
pub(super) fn check_observers(ctx: &mut Ctx<'_>, s: &Scenario, allow: &[String]) -> ObserversPlan {
    let allow = Allow {
        bare: allow,
        written: &s.target.allow_hosts,
    };
    let report = |ctx: &mut Ctx<'_>, table: &str, problems: Vec<Problem>| {
        for p in problems {
            ctx.at_value(&format!("{table}.{}", p.key), p.message, p.hint);
        }
    };
    let mut plan = ObserversPlan::default();
    for (i, sv) in s.services.iter().enumerate() {
        let Some(m) = &sv.metrics else { continue };
        match resolve_scrape(&sv.name, m, &allow) {
            Ok(p) => plan.scrapes.push(p),
            Err(ps) => report(ctx, &format!("services[{i}].metrics"), ps),
        }
    }
    if let Some(c) = &s.canary {
        match resolve_canary(c, &allow) {
            Ok(p) => plan.canary = Some(p),
            Err(ps) => report(ctx, "canary", ps),
        }
    }
    plan
}
