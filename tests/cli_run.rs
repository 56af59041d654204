//! The walking skeleton end to end: the real binary runs scenarios against the real demo
//! API (started by the scenario as a service) on loopback, and the exit code, the reports
//! and the refusals are what the README promises.

mod common;

use common::*;

/// A small closed-model run with create → get-by-extracted-id. `{PORT}` and `{CRITERIA}`
/// are filled in by each test.
const SCENARIO: &str = r#"
name = "skeleton"
seed = 7
duration = "40s"
criteria = [{CRITERIA}]

[target]
base_url = "http://127.0.0.1:{PORT}"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
command = ["gauntlet", "demo", "api", "--port", "{PORT}"]
health = { http = "http://127.0.0.1:{PORT}/health", startup = "20s" }

[load]
think_time = { min = "10ms", max = "30ms" }
stages = [{ duration = "1s", users = 20 }, { duration = "3s", users = 20 }]

[[requests]]
name = "create item"
method = "POST"
path = "/api/items"
json = { name = "{{fake.name}}", email = "{{fake.email}}", n = "{{rand.int(1,9)}}" }
extract = [{ var = "item_id", json = "/id" }]
checks = [{ status = 201 }]

[[requests]]
name = "get item"
weight = 3
path = "/api/items/{{item_id}}"
checks = [{ status = 200 }, { json = "/id", exists = true }]
"#;

fn scenario(criteria: &str) -> String {
    SCENARIO.replace("{CRITERIA}", criteria)
}

#[test]
fn passing_scenario_exits_0_and_writes_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = write_scenario(
        dir.path(),
        "pass.toml",
        &scenario(
            r#""errors.rate < 1%", "requests.count{name=\"get item\"} > 10", "latency.p95 < 5s""#,
        ),
        port,
    );
    let out = run_scenario(dir.path(), &file, "pass");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let rd = report_dir(dir.path(), "pass");
    for f in ["summary.json", "timeseries.csv", "junit.xml", "report.html"] {
        let p = rd.join(f);
        assert!(p.is_file(), "{} missing; {}", p.display(), show(&out));
        assert!(
            std::fs::metadata(&p).unwrap().len() > 0,
            "{} empty",
            p.display()
        );
    }
    assert!(
        rd.join("logs/api.log").is_file(),
        "service output not captured"
    );
    // reports/latest points at this run.
    let latest = std::fs::read_link(dir.path().join("reports/latest")).unwrap();
    assert_eq!(latest, std::path::PathBuf::from("pass"));
    // The CSV has one row per second of load.
    let csv = std::fs::read_to_string(rd.join("timeseries.csv")).unwrap();
    assert!(csv.lines().count() >= 4, "timeseries too short:\n{csv}");
}

#[test]
fn extracted_id_is_reused_by_the_same_user() {
    // "get item" fetches /api/items/{{item_id}} with the id "create item" returned; a
    // wrong or missing id would be a 404 and fail its status check.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = write_scenario(
        dir.path(),
        "extract.toml",
        &scenario(
            r#""errors.count{name=\"get item\"} == 0", "requests.count{name=\"get item\"} >= 20""#,
        ),
        port,
    );
    let out = run_scenario(dir.path(), &file, "extract");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let junit =
        std::fs::read_to_string(report_dir(dir.path(), "extract").join("junit.xml")).unwrap();
    assert!(!junit.contains("<failure"), "{junit}");
}

#[test]
fn impossible_threshold_exits_1_and_junit_shows_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = write_scenario(
        dir.path(),
        "fail.toml",
        &scenario(r#""latency.p50 < 1us", "errors.rate < 1%""#),
        port,
    );
    let out = run_scenario(dir.path(), &file, "fail");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let junit = std::fs::read_to_string(report_dir(dir.path(), "fail").join("junit.xml")).unwrap();
    assert!(junit.contains("latency.p50 &lt; 1us"), "{junit}");
    assert_eq!(
        junit.matches("<failure").count(),
        1,
        "exactly one failed criterion:\n{junit}"
    );
}

#[test]
fn invalid_scenario_exits_2_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let body = scenario(r#""latency.p95 < 200""#); // a latency needs a duration unit
    let file = write_scenario(dir.path(), "bad.toml", &body, port);
    let out = run_scenario(dir.path(), &file, "bad");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:5:"),
        "error must name file and line: {err}"
    );
    assert!(!report_dir(dir.path(), "bad").exists(), "nothing may start");
}

#[test]
fn target_outside_the_allow_list_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let body = scenario(r#""errors.rate < 1%""#).replace(
        "base_url = \"http://127.0.0.1:{PORT}\"",
        "base_url = \"http://example.com:{PORT}\"",
    );
    let file = write_scenario(dir.path(), "refused.toml", &body, port);
    let out = run_scenario(dir.path(), &file, "refused");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("allow_hosts"), "{err}");
    assert!(
        !report_dir(dir.path(), "refused").exists(),
        "nothing may start"
    );
    // The service was never started: its port is still free.
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
}

#[test]
fn validate_accepts_every_shipped_scenario() {
    let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let out = std::process::Command::new(gauntlet_bin())
        .arg("validate")
        .args(&files)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

/// A run id names a folder under --reports: one that would leave it, overwrite the
/// `latest` link or reuse another run's folder is refused before anything starts (exit 2,
/// no service started: the port stays closed).
#[test]
fn unsafe_or_reused_run_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = write_scenario(
        dir.path(),
        "ids.toml",
        &scenario(r#""errors.rate < 1%""#),
        port,
    );
    std::fs::create_dir_all(dir.path().join("reports").join("taken")).unwrap();
    for (id, says) in [
        ("../outside", "may hold only"),
        ("a/b", "may hold only"),
        ("latest", "newest run"),
        (".hidden", "must not start"),
        ("", "1 to 128"),
        ("taken", "already used"),
    ] {
        let out = run_scenario(dir.path(), &file, id);
        assert_eq!(out.status.code(), Some(2), "run id {id:?}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "run id {id:?}: {}", show(&out));
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
    assert!(!dir.path().join("outside").exists());
}

/// A chaos-only scenario (a service, a fault and a probe, no load) is legitimate: the run
/// lasts until its fault was applied and undone, and the report shows it.
#[test]
fn a_chaos_only_scenario_runs_its_faults() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = write_scenario(
        dir.path(),
        "chaos-only.toml",
        r#"
name = "chaos only"
duration = "40s"
criteria = ["recovery.max < 20s"]

[target]
base_url = "http://127.0.0.1:{PORT}"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
command = ["gauntlet", "demo", "api", "--port", "{PORT}"]
health = { http = "http://127.0.0.1:{PORT}/health", interval = "200ms", startup = "20s" }

[[faults]]
kind = "pause"
target = "api"
at = "2s"
duration = "1s"
"#,
        port,
    );
    let t0 = std::time::Instant::now();
    let out = run_scenario(dir.path(), &file, "chaos-only");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        t0.elapsed() >= std::time::Duration::from_secs(3),
        "the run ended before its fault: {:?}",
        t0.elapsed()
    );
    let summary = read_json(&report_dir(dir.path(), "chaos-only").join("summary.json"));
    let faults = summary["faults"].as_array().expect("faults");
    assert_eq!(faults.len(), 1, "{summary}");
    assert!(faults[0]["applied_at_s"].is_number(), "{summary}");
    assert_eq!(summary["verdict"]["passed"], true, "{summary}");
}

/// One file, every environment: `${VAR}` from the environment and `--set` overrides
/// (typed as TOML); a wrong path or an unset variable is exit 2 naming it, nothing starts.
#[test]
fn environment_variables_and_set_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = scenario(r#""errors.rate < 1%""#).replace(
        "http://127.0.0.1:{PORT}\"",
        "http://127.0.0.1:${GAUNTLET_T_PORT}\"",
    );
    let file = write_scenario(dir.path(), "env.toml", &text, port);
    let run = |sets: &[&str], env: Option<String>, id: &str| {
        let mut c = std::process::Command::new(gauntlet_bin());
        c.arg("run")
            .arg(&file)
            .arg("--reports")
            .arg(dir.path().join("reports"))
            .arg("--run-id")
            .arg(id)
            .arg("--quiet");
        for s in sets {
            c.arg("--set").arg(s);
        }
        match env {
            Some(v) => c.env("GAUNTLET_T_PORT", v),
            None => c.env_remove("GAUNTLET_T_PORT"),
        };
        c.output().unwrap()
    };
    let out = run(
        &["load.stages[1].users=4", "load.stages[0].users=4"],
        Some(port.to_string()),
        "env",
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let summary = read_json(&report_dir(dir.path(), "env").join("summary.json"));
    assert_eq!(summary["load"]["users_peak"], 4, "{summary}");
    assert!(
        summary["target"]["base_url"]
            .as_str()
            .unwrap()
            .contains(&port.to_string()),
        "{summary}"
    );
    let out = run(
        &["load.stages[7].users=4"],
        Some(port.to_string()),
        "bad-set",
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("load.stages[7]"),
        "{}",
        show(&out)
    );
    let out = run(&[], None, "no-env");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`GAUNTLET_T_PORT` is not set"),
        "{}",
        show(&out)
    );
}
