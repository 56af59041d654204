//! `gauntlet capacity` against the demo API with a known capacity: `--max-concurrency C`
//! requests in service at once, each taking `--delay S`. With U users thinking T between
//! requests, the API saturates at U = C(T+S)/S; above that every request queues and its
//! latency is about U·S/C − T, so `latency.p95 < X` holds up to U = C(X+T)/S users.
//! With C = 4, S = 100ms, T = 300ms and X = 300ms: 16 users saturate it and the knee is
//! 24 users. The search must find it within one step (10 users: the effective service
//! time grows on a loaded machine, which lowers the measured knee).

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const C: f64 = 4.0;
const S_MS: f64 = 100.0;
const T_MS: f64 = 300.0;
const X_MS: f64 = 300.0;
const STEP: f64 = 10.0;

const SCENARIO: &str = r#"
name = "capacity knee"
seed = 7
latency_basis = "raw"
criteria = ["latency.p95 < 300ms", "errors.rate < 1%"]

[target]
base_url = "http://127.0.0.1:{PORT}"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
command = ["gauntlet", "demo", "api", "--port", "{PORT}", "--delay", "100ms", "--max-concurrency", "4"]
health = { http = "http://127.0.0.1:{PORT}/health" }

[load]
think_time = "300ms"
timeout = "5s"
stages = [{ duration = "5s", users = 10 }]

[[requests]]
name = "list"
path = "{PATH}"
checks = [{ status = 200 }]

[capacity]
from = 10
to = 60
step = 10
resolution = 2
warmup = "2s"
hold = "4s"
require = 20
{EXTRA}
"#;

fn scenario(dir: &std::path::Path, path: &str, extra: &str) -> std::path::PathBuf {
    let body = SCENARIO.replace("{PATH}", path).replace("{EXTRA}", extra);
    write_scenario(dir, "capacity.toml", &body, free_port())
}

fn capacity(dir: &std::path::Path, file: &std::path::Path, id: &str) -> Command {
    let mut c = Command::new(gauntlet_bin());
    c.arg("capacity")
        .arg(file)
        .arg("--reports")
        .arg(dir.join("reports"))
        .arg("--run-id")
        .arg(id);
    c
}

fn output(mut c: Command) -> Output {
    c.output().expect("run gauntlet capacity")
}

#[test]
fn the_search_finds_the_known_knee_within_one_step() {
    let cap = C * (X_MS + T_MS) / S_MS;
    assert_eq!(cap, 24.0);
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "/api/items", "");
    let started = Instant::now();
    let out = output(capacity(dir.path(), &file, "knee"));
    let folder = report_dir(dir.path(), "knee");
    let json = read_json(&folder.join("capacity.json"));
    let text = format!("{}\n{json:#}", show(&out));
    assert_eq!(out.status.code(), Some(0), "{text}");
    let knee = json["knee"].as_f64().expect("a knee");
    assert!(
        (knee - cap).abs() <= STEP,
        "knee {knee}, known {cap}\n{text}"
    );
    // Stepped up by 10 from 10 until the first fail, then bisected to 2 users.
    let levels = json["levels"].as_array().unwrap();
    let first_fail = json["first_fail"].as_f64().expect("a level failed");
    assert!(first_fail > knee && first_fail - knee <= 2.0, "{text}");
    assert_eq!(levels[0]["load"], 10.0);
    assert_eq!(levels[1]["load"], 20.0);
    assert!(levels.iter().any(|l| l["phase"] == "bisect"), "{text}");
    assert_eq!(json["limited_by"], "latency.p95 < 300ms", "{text}");
    for l in levels {
        // Each level is a whole run, in its own folder under the capacity folder.
        let run = folder.join(l["run"].as_str().unwrap());
        let summary = read_json(&run.join("summary.json"));
        assert_eq!(summary["verdict"]["passed"], l["passed"], "{text}");
        assert!(run.join("report.html").is_file());
        // Below saturation, throughput follows the users: U / (T + S).
        let load = l["load"].as_f64().unwrap();
        let rps = l["rps"].as_f64().unwrap();
        let expected = load.min(C * (T_MS + S_MS) / S_MS) * 1000.0 / (T_MS + S_MS);
        assert!(
            (rps - expected).abs() / expected < 0.3,
            "level {load}: {rps} req/s, expected about {expected}\n{text}"
        );
        assert!(l["resources"]["api"]["mem_peak_bytes"].as_u64().unwrap() > 0);
    }
    let schema: serde_json::Value =
        serde_json::from_str(&gauntlet::capacity::json_schema()).unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the schema compiles");
    let problems: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(
        problems.is_empty(),
        "capacity.json does not match its schema: {problems:?}"
    );
    let html = std::fs::read_to_string(folder.join("capacity.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains(&format!("knee {knee}")),
        "{html}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("◀ knee") && stdout.contains("PASS"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(110),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_level_failing_badly_stops_early_and_the_search_fails() {
    let dir = tempfile::tempdir().unwrap();
    // Every request fails its check: the first level is stopped once past its warmup.
    let file = scenario(
        dir.path(),
        "/api/nope",
        "stop_error_rate = 50\nstrategy = \"step\"",
    );
    let file_text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("hold = \"4s\"", "hold = \"60s\"");
    std::fs::write(&file, file_text).unwrap();
    let started = Instant::now();
    let out = output(capacity(dir.path(), &file, "bad"));
    let json = read_json(&report_dir(dir.path(), "bad").join("capacity.json"));
    let text = format!("{}\n{json:#}", show(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "not stopped early\n{text}"
    );
    assert!(json["knee"].is_null(), "{text}");
    let levels = json["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 1, "{text}");
    assert_eq!(levels[0]["verdict"], "stopped", "{text}");
    assert!(
        levels[0]["failed_first"]
            .as_str()
            .unwrap()
            .starts_with("stopped early: error rate"),
        "{text}"
    );
}

#[test]
fn an_interrupt_stops_the_search_at_once_undoes_the_fault_and_writes_what_was_measured() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "/api/items", "");
    // A long hold and a pause of the API from 1s: the interrupt comes while it is paused.
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("seed = 7\n", "seed = 7\nduration = \"2m\"\n")
        .replace("hold = \"4s\"", "hold = \"60s\"")
        + "\n[[faults]]\nkind = \"pause\"\ntarget = \"api\"\nat = \"1s\"\nduration = \"50s\"\n";
    std::fs::write(&file, text).unwrap();
    let mut c = capacity(dir.path(), &file, "int");
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The level's state file lists the pause while it is in force.
    let state = report_dir(dir.path(), "int")
        .join("level-01-10users")
        .join("state.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&state).is_ok_and(|s| s.contains("paused_process")) {
        assert!(
            Instant::now() < deadline,
            "the first level's pause never applied"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    let json = read_json(&report_dir(dir.path(), "int").join("capacity.json"));
    let text = format!("{}\n{json:#}", show(&out));
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(started.elapsed() < Duration::from_secs(15), "{text}");
    assert_eq!(json["ended_by"], "interrupted", "{text}");
    assert_eq!(json["levels"].as_array().unwrap().len(), 1, "{text}");
    assert_eq!(json["levels"][0]["verdict"], "interrupted", "{text}");
    assert!(report_dir(dir.path(), "int")
        .join("capacity.html")
        .is_file());
    // The pause was undone and the service stopped: nothing left for `gauntlet cleanup`.
    let left = std::fs::read_to_string(&state).unwrap();
    assert!(
        left.contains("\"finished\": true") && left.contains("\"pending\": []"),
        "{left}"
    );
    let summary = read_json(&state.with_file_name("summary.json"));
    assert_eq!(summary["verdict"]["passed"], false);
}

/// The committed schema of capacity.json is the one generated from its types; regenerate
/// it with `UPDATE_SCHEMA=1 cargo test --test capacity`.
#[test]
fn the_committed_capacity_schema_is_the_generated_one() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/capacity.schema.json");
    let generated = gauntlet::capacity::json_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/capacity.schema.json is stale; regenerate it with \
         `UPDATE_SCHEMA=1 cargo test --test capacity`"
    );
}

/// No `[capacity]` table, or a capacity folder that exists: exit 2, nothing started.
#[test]
fn invalid_input_exits_2_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "/api/items", "");
    let text = std::fs::read_to_string(&file).unwrap();
    let cut = text.split("[capacity]").next().unwrap().to_string();
    std::fs::write(&file, cut).unwrap();
    let out = output(capacity(dir.path(), &file, "none"));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no [capacity] table"));
    assert!(!report_dir(dir.path(), "none").exists());

    let file = scenario(dir.path(), "/api/items", "");
    std::fs::create_dir_all(report_dir(dir.path(), "taken")).unwrap();
    let out = output(capacity(dir.path(), &file, "taken"));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already used"));
    assert_eq!(
        std::fs::read_dir(report_dir(dir.path(), "taken"))
            .unwrap()
            .count(),
        0
    );
}
