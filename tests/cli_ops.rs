//! Operating gauntlet: `gauntlet report` rebuilds a run's reports from its folder,
//! `run --metrics-listen` serves live Prometheus metrics, `-v` diagnostics go to stderr,
//! `completions` and `man` generate their text. Real binary, real demo API on loopback.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Load with a pause of the API in the middle; `{CRITERIA}` filled in by each test.
const SCENARIO: &str = r#"
name = "ops"
seed = 11
duration = "40s"
criteria = [{CRITERIA}]

[target]
base_url = "http://127.0.0.1:{PORT}"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
command = ["gauntlet", "demo", "api", "--port", "{PORT}"]
health = { http = "http://127.0.0.1:{PORT}/health", interval = "200ms", startup = "20s" }

[load]
think_time = { min = "5ms", max = "20ms" }
timeout = "3s"
stages = [{ duration = "1s", users = 8 }, { duration = "{SECS}s", users = 8 }]

[[requests]]
name = "create item"
method = "POST"
path = "/api/items"
json = { name = "{{fake.name}}" }
extract = [{ var = "item_id", json = "/id" }]
checks = [{ status = 201 }]

[[requests]]
name = "read item"
path = "/api/items/{{item_id}}"
checks = [{ status = 200 }]

# A flow and WebSocket users too: their figures are rebuilt like the requests'.
[[flows]]
name = "crud"
weight = 3
steps = ["create item", "read item"]

[[ws]]
name = "watch"
url = "ws://127.0.0.1:{PORT}/ws"
hold = "300ms"

[[faults]]
kind = "pause"
target = "api"
at = "1s"
duration = "1500ms"
"#;

fn scenario(criteria: &str, secs: u32) -> String {
    SCENARIO
        .replace("{CRITERIA}", criteria)
        .replace("{SECS}", &secs.to_string())
}

fn gauntlet(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(gauntlet_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run gauntlet")
}

/// The reports `gauntlet report` writes again.
const REPORTS: &[&str] = &[
    "summary.json",
    "timeseries.csv",
    "junit.xml",
    "events.jsonl",
    "report.html",
    "comparison.json",
];

#[test]
fn report_rebuilds_every_report_of_a_run_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // One criterion fails on purpose: the rebuilt verdict must fail the same way.
    let criteria = r#""errors.rate < 60%", "recovery{fault=\"pause\"} < 20s", "recovery{fault=\"pause api\"} < 20s", "latency.p99 < 1us""#;
    let file = write_scenario(dir.path(), "ops.toml", &scenario(criteria, 2), port);
    let reports = dir.path().join("reports");
    let (file_s, reports_s) = (file.to_str().unwrap(), reports.to_str().unwrap());
    let base = gauntlet(
        &[
            "run",
            file_s,
            "--reports",
            reports_s,
            "--run-id",
            "base",
            "-q",
        ],
        dir.path(),
    );
    assert_eq!(base.status.code(), Some(1), "{}", show(&base));
    let base_dir = reports.join("base");
    let cur = gauntlet(
        &[
            "run",
            file_s,
            "--reports",
            reports_s,
            "--run-id",
            "cur",
            "-q",
            "--baseline",
            base_dir.to_str().unwrap(),
            "--tolerance",
            "latency=500%",
        ],
        dir.path(),
    );
    assert_eq!(cur.status.code(), Some(1), "{}", show(&cur));
    let rd = reports.join("cur");
    for saved in [
        "run.json",
        "scenario.toml",
        "record.json",
        "histograms.hlog",
        "baseline.json",
    ] {
        assert!(
            rd.join(saved).is_file(),
            "{saved} not saved; {}",
            show(&cur)
        );
    }
    // The criterion of one fault passed, by kind and by name.
    let summary = read_json(&rd.join("summary.json"));
    assert!(summary["flows"][0]["count"].as_u64() > Some(0), "{summary}");
    assert!(summary["ws"].is_object(), "{summary}");
    let crit = summary["verdict"]["criteria"]
        .as_array()
        .or_else(|| summary["criteria"].as_array())
        .unwrap_or_else(|| panic!("no criteria in {summary}"))
        .clone();
    for name in ["pause", "pause api"] {
        let c = crit
            .iter()
            .find(|c| c["source"] == format!("recovery{{fault=\"{name}\"}} < 20s"))
            .unwrap_or_else(|| panic!("no recovery criterion for {name}: {crit:?}"));
        assert_eq!(c["passed"], true, "{c}");
        let us = c["measured"]["value"].as_f64().unwrap_or(0.0);
        assert!(us > 0.0, "{c}");
    }

    let originals: Vec<(String, Vec<u8>)> = REPORTS
        .iter()
        .map(|f| (f.to_string(), std::fs::read(rd.join(f)).unwrap()))
        .collect();
    let html = String::from_utf8_lossy(&originals[4].1).into_owned();
    assert!(
        html.contains("Comparison with the baseline"),
        "no gate section"
    );
    assert!(html.contains("Latency per second, corrected (the criteria&#39;s basis)"));
    assert!(html.contains("Latency per second, raw"));
    for f in REPORTS {
        std::fs::remove_file(rd.join(f)).unwrap();
    }
    let out = gauntlet(&["report", rd.to_str().unwrap(), "-q"], dir.path());
    // The same exit code as the run: the verdict failed.
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    for (name, before) in &originals {
        let after = std::fs::read(rd.join(name))
            .unwrap_or_else(|e| panic!("{name} not rebuilt: {e}; {}", show(&out)));
        assert!(
            &after == before,
            "{name} differs after the rebuild:\n--- run\n{}\n--- rebuilt\n{}",
            String::from_utf8_lossy(before),
            String::from_utf8_lossy(&after)
        );
    }
    // Rebuilding again from a different working folder gives the same again.
    let out = gauntlet(&["report", rd.to_str().unwrap(), "-q"], Path::new("/"));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(
        std::fs::read(rd.join("summary.json")).unwrap(),
        originals[0].1
    );

    // A folder without saved data is invalid input, named.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = gauntlet(&["report", empty.to_str().unwrap(), "-q"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("run.json"),
        "{}",
        show(&out)
    );
}

/// `GET /metrics` on `addr`; None while nothing listens.
fn scrape(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// The value of the series whose line starts with `prefix`.
fn value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn live_metrics_are_served_while_the_run_goes() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mport) = (free_port(), free_port());
    let file = write_scenario(
        dir.path(),
        "live.toml",
        &scenario(r#""errors.rate < 60%""#, 6),
        port,
    );
    let mut child = Command::new(gauntlet_bin())
        .arg("-v")
        .arg("run")
        .arg(&file)
        .arg("--reports")
        .arg(dir.path().join("reports"))
        .arg("--run-id")
        .arg("live")
        .arg("--quiet")
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{mport}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let labels = r#"{scenario="ops",run_id="live""#;
    let ok = format!("gauntlet_requests_total{labels},outcome=\"ok\"}}");
    let deadline = Instant::now() + Duration::from_secs(40);
    let (mut first, mut grew, mut fault_seen, mut users_seen) = (None, false, false, false);
    let mut last = String::new();
    while Instant::now() < deadline && !(grew && fault_seen && users_seen) {
        if let Some(text) = scrape(mport) {
            if let Some(n) = value(&text, &ok) {
                match first {
                    None if n > 0.0 => first = Some(n),
                    Some(f) if n > f => grew = true,
                    _ => {}
                }
            }
            fault_seen |= value(
                &text,
                &format!("gauntlet_fault_active{labels},kind=\"pause\",target=\"api\"}}"),
            ) == Some(1.0);
            users_seen |= value(&text, &format!("gauntlet_users{labels}}}")) == Some(8.0);
            last = text;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        first.is_some() && grew,
        "requests_total did not grow; last scrape:\n{last}"
    );
    assert!(
        fault_seen,
        "the pause was never active; last scrape:\n{last}"
    );
    assert!(users_seen, "8 users never seen; last scrape:\n{last}");
    for series in [
        "# TYPE gauntlet_request_duration_seconds histogram",
        "gauntlet_request_duration_seconds_bucket{scenario=\"ops\",run_id=\"live\",le=\"+Inf\"}",
        "gauntlet_request_duration_seconds_count{",
    ] {
        assert!(last.contains(series), "{series} missing:\n{last}");
    }
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // -v: the library's diagnostics on stderr, none on stdout.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("run starting"), "{stderr}");
    assert!(stderr.contains("fault"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("run starting"));
    // The port is released with the run.
    assert!(scrape(mport).is_none());
}

#[test]
fn a_taken_metrics_address_is_an_environment_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mport = taken.local_addr().unwrap().port();
    let file = write_scenario(
        dir.path(),
        "taken.toml",
        &scenario(r#""errors.rate < 60%""#, 1),
        free_port(),
    );
    let reports = dir.path().join("reports");
    let out = gauntlet(
        &[
            "run",
            file.to_str().unwrap(),
            "--reports",
            reports.to_str().unwrap(),
            "--run-id",
            "taken",
            "-q",
            "--metrics-listen",
            &format!("127.0.0.1:{mport}"),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot listen for metrics"),
        "{}",
        show(&out)
    );
    assert!(!reports.join("taken").exists(), "nothing may start");
}

#[test]
fn completions_and_man_page_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "_gauntlet()"),
        ("zsh", "#compdef gauntlet"),
        ("fish", "complete -c gauntlet"),
    ] {
        let out = gauntlet(&["completions", shell], dir.path());
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell}: no {marker}:\n{text}");
        assert!(
            text.contains("metrics-listen"),
            "{shell}: run's flags missing"
        );
        assert!(text.contains("report"), "{shell}: subcommands missing");
    }
    let out = gauntlet(&["completions", "tcsh"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let out = gauntlet(&["man"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(".ie") || text.contains(".TH gauntlet"),
        "{text}"
    );
    assert!(text.contains(".TH gauntlet"), "{text}");
    assert!(text.contains("report"), "{text}");
}

#[test]
fn quiet_still_says_why_it_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = gauntlet(&["run", "missing.toml", "-q"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing.toml"),
        "{}",
        show(&out)
    );
}
