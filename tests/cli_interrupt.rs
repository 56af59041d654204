//! SIGINT or SIGTERM in the middle of a run: the run stops, its services are stopped, a
//! partial report is written and the exit code is 130.

mod common;

use std::time::{Duration, Instant};

use common::*;

const SCENARIO: &str = r#"
name = "interrupt"
duration = "2m"
criteria = ["errors.rate < 1%"]

[target]
base_url = "http://127.0.0.1:{PORT}"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
command = ["gauntlet", "demo", "api", "--port", "{PORT}"]
health = { http = "http://127.0.0.1:{PORT}/health" }

[load]
think_time = "50ms"
stages = [{ duration = "60s", users = 10 }]

[[requests]]
name = "list"
path = "/api/items"
"#;

fn interrupted_by(signal: nix::sys::signal::Signal) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = write_scenario(dir.path(), "int.toml", SCENARIO, port);
    let mut child = std::process::Command::new(gauntlet_bin())
        .arg("run")
        .arg(&file)
        .arg("--reports")
        .arg(dir.path().join("reports"))
        .arg("--run-id")
        .arg("int")
        .arg("--quiet")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the API answers (load is running), then a little more.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "service never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, signal).unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("gauntlet did not stop within 20s of {signal}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(130), "{}", show(&out));
    let summary = read_json(&report_dir(dir.path(), "int").join("summary.json"));
    let text = summary.to_string();
    assert!(
        text.contains("interrupted"),
        "summary must say the run was interrupted: {text}"
    );
    assert!(report_dir(dir.path(), "int").join("junit.xml").is_file());
    // The service gauntlet started is gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the demo API still runs after the interrupt"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigint_writes_a_partial_report_and_exits_130() {
    interrupted_by(nix::sys::signal::Signal::SIGINT);
}

#[test]
fn sigterm_writes_a_partial_report_and_exits_130() {
    interrupted_by(nix::sys::signal::Signal::SIGTERM);
}
