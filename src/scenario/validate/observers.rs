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
            url: crate::units::redact_userinfo(&c.redis).into_owned(),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use redis::ConnectionAddr;

    use super::*;

    const ALLOW: &[&str] = &["127.0.0.1", "localhost", "::1"];

    fn allow_list() -> Vec<String> {
        ALLOW.iter().map(|h| h.to_string()).collect()
    }

    fn scrape(toml_text: &str, allow: &[String]) -> Result<ScrapePlan, Vec<String>> {
        let spec: MetricsSpec = toml::from_str(toml_text).expect("metrics TOML");
        let allow = Allow {
            bare: allow,
            written: allow,
        };
        resolve_scrape("svc", &spec, &allow).map_err(|ps| ps.into_iter().map(|p| p.key).collect())
    }

    fn canary(toml_text: &str, allow: &[String]) -> Result<CanaryPlan, Vec<String>> {
        let spec: CanarySpec = toml::from_str(toml_text).expect("canary TOML");
        let allow = Allow {
            bare: allow,
            written: allow,
        };
        resolve_canary(&spec, &allow).map_err(|ps| ps.into_iter().map(|p| p.key).collect())
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn metric_names() {
        for ok in ["a", "_a", ":a", "ns:sub_metric_total", "A9"] {
            assert!(metric_name_ok(ok), "{ok}");
        }
        for bad in ["", "9a", "a-b", "a{x=\"1\"}", "a b", "é"] {
            assert!(!metric_name_ok(bad), "{bad}");
        }
    }

    #[test]
    fn scrapes_resolve() {
        // (metrics table, host, port, path, authority, interval, timeout)
        let table: &[(&str, &str, u16, &str, &str, u64, u64)] = &[
            (
                r#"url = "http://127.0.0.1:9100/metrics?x=1""#,
                "127.0.0.1",
                9100,
                "/metrics?x=1",
                "127.0.0.1:9100",
                1000,
                1000,
            ),
            (
                r#"url = "http://[::1]:9/m""#,
                "::1",
                9,
                "/m",
                "[::1]:9",
                1000,
                1000,
            ),
            (
                r#"url = "http://localhost/metrics""#,
                "localhost",
                80,
                "/metrics",
                "localhost",
                1000,
                1000,
            ),
            // The default port is left out of the Host header, as the URL leaves it out.
            (
                r#"url = "http://LocalHost:80""#,
                "localhost",
                80,
                "/",
                "localhost",
                1000,
                1000,
            ),
            // The default timeout is the interval, at most 2s.
            (
                r#"url = "http://127.0.0.1:1/m"
                   interval = "5s""#,
                "127.0.0.1",
                1,
                "/m",
                "127.0.0.1:1",
                5000,
                2000,
            ),
            (
                r#"url = "http://127.0.0.1:1/m"
                   interval = "500ms""#,
                "127.0.0.1",
                1,
                "/m",
                "127.0.0.1:1",
                500,
                500,
            ),
            (
                r#"url = "http://127.0.0.1:1/m"
                   interval = "500ms"
                   timeout = "3s""#,
                "127.0.0.1",
                1,
                "/m",
                "127.0.0.1:1",
                500,
                3000,
            ),
        ];
        for &(src, host, port, path, authority, interval, timeout) in table {
            let p = scrape(src, &allow_list()).unwrap_or_else(|e| panic!("{src}: {e:?}"));
            assert_eq!(
                (
                    p.host.as_str(),
                    p.port,
                    p.path.as_str(),
                    p.authority.as_str()
                ),
                (host, port, path, authority),
                "{src}"
            );
            assert_eq!(
                (p.interval, p.timeout),
                (ms(interval), ms(timeout)),
                "{src}"
            );
            assert_eq!(p.service, "svc");
            assert_eq!((p.keep, p.freshness), (None, None), "{src}");
        }
        let p = scrape(
            r#"url = "http://127.0.0.1:1/m"
               keep = ["b", "a", "b"]
               freshness = "last_sync""#,
            &allow_list(),
        )
        .unwrap();
        let keep: BTreeSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(p.keep, Some(keep));
        assert_eq!(p.freshness.as_deref(), Some("last_sync"));
        // An empty `keep` is fine when freshness is what is wanted.
        let p = scrape(
            r#"url = "http://127.0.0.1:1/m"
               keep = []
               freshness = "s""#,
            &allow_list(),
        )
        .unwrap();
        assert_eq!(p.keep, Some(BTreeSet::new()));
        // An empty allow list is reported once elsewhere, not per observer.
        assert!(scrape(r#"url = "http://10.0.0.5/m""#, &[]).is_ok());
    }

    #[test]
    fn scrape_problems() {
        // (metrics table, keys with a problem)
        let table: &[(&str, &[&str])] = &[
            (r#"url = "https://127.0.0.1/m""#, &["url"]),
            (r#"url = "redis://127.0.0.1:1""#, &["url"]),
            (r#"url = "127.0.0.1:9100/metrics""#, &["url"]),
            (r#"url = "not a url""#, &["url"]),
            (r#"url = "http://10.0.0.5:9000/m""#, &["url"]),
            (r#"url = "http://example.com/m""#, &["url"]),
            (
                r#"url = "http://127.0.0.1/m"
                   interval = "0s"
                   timeout = "0s""#,
                &["interval", "timeout"],
            ),
            (
                r#"url = "http://127.0.0.1/m"
                   keep = []"#,
                &["keep"],
            ),
            (
                r#"url = "http://127.0.0.1/m"
                   keep = ["ok", "bad{x=\"1\"}", "9bad"]"#,
                &["keep[1]", "keep[2]"],
            ),
            (
                r#"url = "http://127.0.0.1/m"
                   freshness = "a b""#,
                &["freshness"],
            ),
            // Every problem at once, the URL's too.
            (
                r#"url = "ftp://127.0.0.1/m"
                   interval = "0s"
                   freshness = "-""#,
                &["url", "interval", "freshness"],
            ),
        ];
        for &(src, keys) in table {
            assert_eq!(
                scrape(src, &allow_list()).map(|_| ()),
                Err(keys.iter().map(|k| k.to_string()).collect()),
                "{src}"
            );
        }
        let e = resolve_scrape(
            "svc",
            &toml::from_str(r#"url = "http://10.0.0.5/m""#).unwrap(),
            &Allow {
                bare: &allow_list(),
                written: &["127.0.0.1".into(), "LocalHost".into()],
            },
        )
        .unwrap_err();
        assert_eq!(
            e[0].message,
            "metrics host `10.0.0.5` is not in target.allow_hosts"
        );
        assert!(
            e[0].hint
                .as_deref()
                .unwrap()
                .starts_with("allowed: \"127.0.0.1\", \"LocalHost\";"),
            "{e:?}"
        );
    }

    #[test]
    fn canaries_resolve() {
        let p = canary(r#"redis = "redis://127.0.0.1:6379""#, &allow_list()).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", 6379));
        assert_eq!(p.url, "redis://127.0.0.1:6379");
        assert_eq!(p.keys, CANARY_DEFAULT_KEYS);
        assert_eq!(p.prefix, CANARY_DEFAULT_PREFIX);
        assert_eq!(p.timeout, CANARY_DEFAULT_TIMEOUT);
        assert!(matches!(p.connection.addr(), ConnectionAddr::Tcp(h, 6379) if h == "127.0.0.1"));
        assert_eq!(p.connection.redis_settings().db(), 0);

        // (canary table, host, port, db, password, keys, prefix, timeout)
        type Row<'a> = (
            &'a str,
            &'a str,
            u16,
            i64,
            Option<&'a str>,
            u32,
            &'a str,
            u64,
        );
        let table: &[Row] = &[
            (
                r#"redis = "redis://localhost/2""#,
                "localhost",
                6379,
                2,
                None,
                100,
                "gauntlet:canary:",
                30_000,
            ),
            (
                r#"redis = "redis://:s3cret@127.0.0.1:7000/0"
                   keys = 1
                   prefix = "x:"
                   timeout = "5s""#,
                "127.0.0.1",
                7000,
                0,
                Some("s3cret"),
                1,
                "x:",
                5000,
            ),
            (
                r#"redis = "redis://[::1]:6380"
                   keys = 100000"#,
                "::1",
                6380,
                0,
                None,
                100_000,
                "gauntlet:canary:",
                30_000,
            ),
        ];
        for &(src, host, port, db, password, keys, prefix, timeout) in table {
            let p = canary(src, &allow_list()).unwrap_or_else(|e| panic!("{src}: {e:?}"));
            assert_eq!((p.host.as_str(), p.port), (host, port), "{src}");
            assert!(
                matches!(p.connection.addr(), ConnectionAddr::Tcp(h, pt) if h == host && *pt == port),
                "{src}: {:?}",
                p.connection.addr()
            );
            let r = p.connection.redis_settings();
            assert_eq!((r.db(), r.password()), (db, password), "{src}");
            assert_eq!(p.keys.get(), keys, "{src}");
            assert_eq!(
                (p.prefix.as_str(), p.timeout),
                (prefix, ms(timeout)),
                "{src}"
            );
        }
    }

    #[test]
    fn canary_problems() {
        // (canary table, keys with a problem)
        let table: &[(&str, &[&str])] = &[
            (r#"redis = "http://127.0.0.1:6379""#, &["redis"]),
            (r#"redis = "127.0.0.1:6379""#, &["redis"]),
            (r#"redis = "rediss://127.0.0.1:6379""#, &["redis"]),
            (r#"redis = "redis://127.0.0.1:6379/notadb""#, &["redis"]),
            (r#"redis = "redis://192.168.1.1:6379""#, &["redis"]),
            (
                r#"redis = "redis://127.0.0.1"
                   keys = 0"#,
                &["keys"],
            ),
            (
                r#"redis = "redis://127.0.0.1"
                   keys = 100001"#,
                &["keys"],
            ),
            (
                r#"redis = "redis://127.0.0.1"
                   prefix = """#,
                &["prefix"],
            ),
            (
                r#"redis = "redis://127.0.0.1"
                   prefix = "a b""#,
                &["prefix"],
            ),
            (
                r#"redis = "redis://127.0.0.1"
                   timeout = "0s""#,
                &["timeout"],
            ),
            (
                r#"redis = "redis://10.0.0.1/x"
                   keys = 0
                   prefix = "	"
                   timeout = "0s""#,
                // Two at `redis`: the host is not allowed, the database is not a number.
                &["redis", "redis", "keys", "prefix", "timeout"],
            ),
        ];
        for &(src, keys) in table {
            assert_eq!(
                canary(src, &allow_list()).map(|_| ()),
                Err(keys.iter().map(|k| k.to_string()).collect()),
                "{src}"
            );
        }
    }
}
