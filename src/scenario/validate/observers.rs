//! Validation of observers: metrics scrapes and the data canary.

use super::super::source::Ctx;
use super::*;

/// A Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(super) fn metric_name_ok(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Most keys a canary may write.
pub(super) const MAX_CANARY_KEYS: u32 = 100_000;

/// `services[i].metrics` and `[canary]`: URLs whose host is allowed, sane numbers, metric
/// names that can exist.
pub(super) fn check_observers(ctx: &mut Ctx<'_>, s: &Scenario, allow: &[String]) {
    let allowed_hint = |host: &str| {
        Some(format!(
            "allowed: {}; gauntlet only talks to hosts listed in target.allow_hosts (add \"{host}\" only if it is this machine)",
            quoted_list(s.target.allow_hosts.iter().map(String::as_str))
        ))
    };
    for (i, sv) in s.services.iter().enumerate() {
        let Some(m) = &sv.metrics else { continue };
        let p = format!("services[{i}].metrics");
        match url::Url::parse(&m.url) {
            Ok(u) if u.scheme() == "http" && u.host_str().is_some() => {
                let host = url_host(&u).unwrap_or_default();
                if !allow.is_empty() && !allow.contains(&host) {
                    ctx.at_value(
                        &format!("{p}.url"),
                        format!("metrics host `{host}` is not in target.allow_hosts"),
                        allowed_hint(&host),
                    );
                }
            }
            _ => ctx.at_value(
                &format!("{p}.url"),
                format!("metrics.url must be an http:// URL; found \"{}\"", m.url),
                Some("e.g. url = \"http://127.0.0.1:9090/metrics\"".into()),
            ),
        }
        for (key, d) in [("interval", m.interval), ("timeout", m.timeout)] {
            if d.is_some_and(|d| d.0.is_zero()) {
                ctx.at_value(
                    &format!("{p}.{key}"),
                    format!("metrics.{key} must be more than 0"),
                    None,
                );
            }
        }
        if let Some(keep) = &m.keep {
            if keep.is_empty() && m.freshness.is_none() {
                ctx.at_value(
                    &format!("{p}.keep"),
                    "metrics.keep is empty, so nothing would be recorded",
                    Some(
                        "list the metric names to record, or remove `keep` to record them all"
                            .into(),
                    ),
                );
            }
            for (j, name) in keep.iter().enumerate() {
                if !metric_name_ok(name) {
                    ctx.at_value(
                        &format!("{p}.keep[{j}]"),
                        format!("`{name}` is not a Prometheus metric name"),
                        Some(
                            "write the name alone, without labels, like \"http_requests_total\""
                                .into(),
                        ),
                    );
                }
            }
        }
        if let Some(f) = &m.freshness {
            if !metric_name_ok(f) {
                ctx.at_value(
                    &format!("{p}.freshness"),
                    format!("`{f}` is not a Prometheus metric name"),
                    Some(
                        "name the gauge holding the Unix time of the last sync, e.g. \"pipeline_last_sync_timestamp_seconds\""
                            .into(),
                    ),
                );
            }
        }
    }
    if let Some(c) = &s.canary {
        match url::Url::parse(&c.redis) {
            Ok(u) if u.scheme() == "redis" && u.host_str().is_some() => {
                let host = url_host(&u).unwrap_or_default();
                if !allow.is_empty() && !allow.contains(&host) {
                    ctx.at_value(
                        "canary.redis",
                        format!("canary Redis host `{host}` is not in target.allow_hosts"),
                        allowed_hint(&host),
                    );
                }
            }
            _ => ctx.at_value(
                "canary.redis",
                format!("canary.redis must be a redis:// URL; found \"{}\"", c.redis),
                Some("e.g. redis = \"redis://127.0.0.1:6379\"".into()),
            ),
        }
        match c.keys {
            Some(0) => ctx.at_value("canary.keys", "canary.keys must be at least 1", None),
            Some(n) if n > MAX_CANARY_KEYS => ctx.at_value(
                "canary.keys",
                format!("canary.keys is at most {MAX_CANARY_KEYS}; found {n}"),
                None,
            ),
            _ => {}
        }
        if let Some(prefix) = &c.prefix {
            if prefix.is_empty()
                || prefix
                    .chars()
                    .any(|ch| ch.is_whitespace() || ch.is_control())
            {
                ctx.at_value(
                    "canary.prefix",
                    "canary.prefix must be non-empty, without spaces",
                    Some("e.g. prefix = \"gauntlet:canary:\"".into()),
                );
            }
        }
        if c.timeout.is_some_and(|d| d.0.is_zero()) {
            ctx.at_value("canary.timeout", "canary.timeout must be more than 0", None);
        }
    }
}
