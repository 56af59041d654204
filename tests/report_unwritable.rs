//! One report that cannot be written does not lose the others: the real binary, with
//! `summary.json` taken by a folder in the run's own folder while the run goes on.

mod chaos_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chaos_support::*;

#[test]
fn an_unwritable_summary_leaves_every_other_report_complete_and_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = tmp.path().join("s.toml");
    std::fs::write(
        &file,
        format!(
            r#"
name = "unwritable report"
seed = 1
duration = "1m"
criteria = ["requests.count > 0"]

[target]
base_url = "http://127.0.0.1:{port}"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
command = ["{helper}", "serve", "{port}"]
health = {{ http = "http://127.0.0.1:{port}/", startup = "10s", interval = "200ms" }}

[load]
think_time = "50ms"
timeout = "1s"
stages = [{{ duration = "2s", users = 2 }}]

[[requests]]
name = "root"
path = "/"
"#,
            helper = helper_bin().display()
        ),
    )
    .unwrap();
    let reports = tmp.path().join("reports");
    let dir = reports.join("unwritable");
    let child = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .arg("run")
        .arg(&file)
        .arg("--reports")
        .arg(&reports)
        .args(["--run-id", "unwritable", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The run claims its folder (it must not exist before); once it has, a folder takes
    // the name `summary.json`, so the rename of the written file over it fails.
    let start = Instant::now();
    while !dir.join("state.json").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the run folder never appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::create_dir(dir.join("summary.json")).unwrap();
    std::fs::write(dir.join("summary.json/taken"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr: {stderr}");
    assert!(
        stderr.contains("1 report file could not be written")
            && stderr.contains(&dir.join("summary.json").display().to_string()),
        "the failed file is not named: {stderr}"
    );
    assert!(dir.join("summary.json").is_dir());
    // The outcome is not lost with the file: the binary still names the report folder.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("report: "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Every other report is there, whole.
    let csv = std::fs::read_to_string(dir.join("timeseries.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(
        lines.next().is_some_and(|h| h.starts_with("second")),
        "{csv}"
    );
    assert!(lines.count() >= 1, "no data rows: {csv}");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("requests.count &gt; 0") || junit.contains("requests.count > 0"),
        "{junit}"
    );
    assert!(junit.trim_end().ends_with("</testsuites>"), "{junit}");
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    assert!(!events.is_empty());
    for l in events.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.trim_end().ends_with("</html>"), "html cut short");
    // No temp file left behind.
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "temp file left: {name}");
    }
}
