//! 5000 concurrent users on this 2-core machine against the demo API, with no error from
//! the harness itself. Speed is not asserted here (that is `scripts/bench-load.sh`); this
//! proves the engine holds 5000 users with their own connections.

mod common;

use common::*;

const SCENARIO: &str = r#"
name = "5000 users"
seed = 5000
duration = "90s"
latency_basis = "raw"
criteria = ["users.peak >= 5000", "errors.count == 0", "requests.count > 20000"]

[target]
base_url = "http://127.0.0.1:{PORT}"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
command = ["gauntlet", "demo", "api", "--port", "{PORT}"]
health = { http = "http://127.0.0.1:{PORT}/health" }

[load]
think_time = { min = "500ms", max = "1500ms" }
timeout = "30s"
stages = [{ duration = "8s", users = 5000 }, { duration = "10s", users = 5000 }, { duration = "2s", users = 0 }]

[[requests]]
name = "list"
weight = 1
path = "/api/items"

[[requests]]
name = "create"
weight = 1
method = "POST"
path = "/api/items"
json = { name = "{{fake.name}}" }
checks = [{ status = 201 }]
"#;

#[test]
fn five_thousand_users_without_harness_errors() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = write_scenario(dir.path(), "5000.toml", SCENARIO, port);
    let out = run_scenario(dir.path(), &file, "5000");
    let junit = std::fs::read_to_string(report_dir(dir.path(), "5000").join("junit.xml"))
        .unwrap_or_default();
    assert_eq!(out.status.code(), Some(0), "{}\n{junit}", show(&out));
}
