//! Validation of the observer keys: `services[].metrics` and `[canary]`, and what they
//! resolve to (`Plan::observers`).

use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use gauntlet::scenario::model::ScrapePlan;
use gauntlet::scenario::{load_str, ScenarioErrors};

/// A port free on 127.0.0.1 right now (nothing here connects to it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

fn base() -> String {
    format!(
        r#"
name = "t"
[target]
base_url = "http://127.0.0.1:{}/"
allow_hosts = ["127.0.0.1", "localhost"]
"#,
        free_port()
    )
}

fn errors(src: &str) -> Vec<String> {
    match load_str(Path::new("t.toml"), &format!("{}{src}", base())) {
        Ok(_) => panic!("loaded:\n{src}"),
        Err(ScenarioErrors(d)) => d
            .into_iter()
            .map(|d| format!("{}: {}", d.key, d.message))
            .collect(),
    }
}

#[test]
fn valid_observer_keys_load() {
    let (redis, pipe, api) = (free_port(), free_port(), free_port());
    let plan = load_str(
        Path::new("t.toml"),
        &format!(
            r#"{}
[canary]
redis = "redis://localhost:{redis}/0"
keys = 10
prefix = "x:"
timeout = "5s"

[[services]]
name = "pipeline"
command = ["gauntlet", "demo", "pipeline"]
metrics = {{ url = "http://127.0.0.1:{pipe}/metrics", interval = "500ms", timeout = "300ms", keep = ["a_total", "ns:b"], freshness = "pipeline_last_sync_timestamp_seconds" }}

[[services]]
name = "api"
command = ["gauntlet", "demo", "api"]
metrics = {{ url = "http://localhost:{api}/metrics" }}

[[services]]
name = "quiet"
command = ["gauntlet", "demo", "api"]
"#,
            base()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The service as written stays in the plan.
    let m = plan.services[0].spec.metrics.as_ref().unwrap();
    assert_eq!(m.interval.unwrap().0, Duration::from_millis(500));
    assert_eq!(m.keep.as_ref().unwrap().len(), 2);

    // What the observers run: one scrape per service with a `metrics` table, resolved.
    let o = &plan.observers;
    assert_eq!(
        o.scrapes[0],
        ScrapePlan {
            service: "pipeline".into(),
            host: "127.0.0.1".into(),
            port: pipe,
            path: "/metrics".into(),
            authority: format!("127.0.0.1:{pipe}"),
            interval: Duration::from_millis(500),
            timeout: Duration::from_millis(300),
            keep: Some(["a_total".to_string(), "ns:b".to_string()].into()),
            freshness: Some("pipeline_last_sync_timestamp_seconds".into()),
        }
    );
    let a = &o.scrapes[1];
    assert_eq!(
        (a.service.as_str(), a.host.as_str(), a.port),
        ("api", "localhost", api)
    );
    assert_eq!(
        (a.interval, a.timeout),
        (Duration::from_secs(1), Duration::from_secs(1))
    );
    assert_eq!((a.keep.as_ref(), a.freshness.as_ref()), (None, None));
    assert_eq!(o.scrapes.len(), 2);
    let c = o.canary.as_ref().unwrap();
    assert_eq!((c.host.as_str(), c.port), ("localhost", redis));
    assert_eq!(c.url, format!("redis://localhost:{redis}/0"));
    assert_eq!(c.keys, NonZeroU32::new(10).unwrap());
    assert_eq!(
        (c.prefix.as_str(), c.timeout),
        ("x:", Duration::from_secs(5))
    );
}

#[test]
fn without_observers_the_plan_has_none() {
    let plan = load_str(Path::new("t.toml"), &base()).unwrap_or_else(|e| panic!("{e}"));
    assert!(plan.observers.scrapes.is_empty());
    assert!(plan.observers.canary.is_none());
}

#[test]
fn a_redis_url_the_client_rejects_is_a_validation_error() {
    let e = errors(&format!(
        "[canary]\nredis = \"redis://127.0.0.1:{}/zero\"\n",
        free_port()
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("canary.redis: canary.redis \"redis://127.0.0.1:")
            && e[0].contains("is not a Redis URL the client accepts"),
        "{e:?}"
    );
}

#[test]
fn metrics_problems_are_all_reported() {
    let e = errors(
        r#"
[[services]]
name = "a"
command = ["x"]
metrics = { url = "http://10.0.0.5:9000/metrics", interval = "0s", keep = ["ok", "bad{x=\"1\"}"], freshness = "9bad" }

[[services]]
name = "b"
command = ["x"]
metrics = { url = "redis://127.0.0.1:1", keep = [], timeout = "0s", scrape = "1s" }
"#,
    );
    let want = [
        "services[0].metrics.url: metrics host `10.0.0.5` is not in target.allow_hosts",
        "services[0].metrics.interval: metrics.interval must be more than 0",
        "services[0].metrics.keep[1]: `bad{x=\"1\"}` is not a Prometheus metric name",
        "services[0].metrics.freshness: `9bad` is not a Prometheus metric name",
        "services[1].metrics.url: metrics.url must be an http:// URL; found \"redis://127.0.0.1:1\"",
        "services[1].metrics.keep: metrics.keep is empty, so nothing would be recorded",
        "services[1].metrics.timeout: metrics.timeout must be more than 0",
        "services[1].metrics.scrape: unknown key",
    ];
    for w in want {
        assert!(
            e.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {e:#?}"
        );
    }
    assert_eq!(e.len(), want.len(), "{e:#?}");
}

#[test]
fn canary_problems_are_all_reported() {
    let e = errors(
        r#"
[canary]
redis = "redis://192.168.1.1:6379"
keys = 0
prefix = ""
timeout = "0s"
key = 1
"#,
    );
    let want = [
        "canary.redis: canary Redis host `192.168.1.1` is not in target.allow_hosts",
        "canary.keys: canary.keys must be at least 1",
        "canary.prefix: canary.prefix must be non-empty",
        "canary.timeout: canary.timeout must be more than 0",
        "canary.key: unknown key",
    ];
    for w in want {
        assert!(
            e.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {e:#?}"
        );
    }
    assert_eq!(e.len(), want.len(), "{e:#?}");
    let e = errors("[canary]\nredis = \"http://127.0.0.1:6379\"\nkeys = 1000000\n");
    assert!(e[0].contains("must be a redis:// URL"), "{e:?}");
    assert!(e[1].contains("at most 100000"), "{e:?}");
    let e = errors("[canary]\nkeys = 3\n");
    assert!(e[0].contains("redis"), "{e:?}");
}
