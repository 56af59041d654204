//! Validation of the observer keys: `services[].metrics` and `[canary]`.

use std::path::Path;
use std::time::Duration;

use gauntlet::scenario::{load_str, ScenarioErrors};

const BASE: &str = r#"
name = "t"
[target]
base_url = "http://127.0.0.1:18080/"
allow_hosts = ["127.0.0.1", "localhost"]
"#;

fn errors(src: &str) -> Vec<String> {
    match load_str(Path::new("t.toml"), &format!("{BASE}{src}")) {
        Ok(_) => panic!("loaded:\n{src}"),
        Err(ScenarioErrors(d)) => d
            .into_iter()
            .map(|d| format!("{}: {}", d.key, d.message))
            .collect(),
    }
}

#[test]
fn valid_observer_keys_load() {
    let plan = load_str(
        Path::new("t.toml"),
        &format!(
            r#"{BASE}
[canary]
redis = "redis://localhost:6379/0"
keys = 10
prefix = "x:"
timeout = "5s"

[[services]]
name = "pipeline"
command = ["gauntlet", "demo", "pipeline"]
metrics = {{ url = "http://127.0.0.1:9000/metrics", interval = "500ms", timeout = "300ms", keep = ["a_total", "ns:b"], freshness = "pipeline_last_sync_timestamp_seconds" }}

[[services]]
name = "api"
command = ["gauntlet", "demo", "api"]
metrics = {{ url = "http://localhost:9001/metrics" }}
"#
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let m = plan.scenario.services[0].metrics.as_ref().unwrap();
    assert_eq!(m.interval.unwrap().0, Duration::from_millis(500));
    assert_eq!(m.keep.as_ref().unwrap().len(), 2);
    let c = plan.scenario.canary.as_ref().unwrap();
    assert_eq!((c.keys, c.prefix.as_deref()), (Some(10), Some("x:")));
    assert!(plan.scenario.services[1]
        .metrics
        .as_ref()
        .unwrap()
        .keep
        .is_none());
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
