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
    // Interrupt once the load is really running: the API has served load requests.
    let deadline = Instant::now() + Duration::from_secs(30);
    while load_requests_served(port) < 20 {
        assert!(Instant::now() < deadline, "load never reached the service");
        std::thread::sleep(Duration::from_millis(100));
    }
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
    // An interrupted run is never a pass, in any report.
    assert_eq!(summary["verdict"]["passed"], false, "{summary}");
    assert_eq!(summary["verdict"]["status"], "interrupted", "{summary}");
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

/// Requests the demo API answered on /api routes, from its /metrics (0 while it is down).
fn load_requests_served(port: u16) -> u64 {
    use std::io::{Read, Write};
    let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = c.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut text = String::new();
    let _ = c.read_to_string(&mut text);
    text.lines()
        .filter(|l| l.starts_with("demo_http_requests_total{") && l.contains("/api/items"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn sigint_writes_a_partial_report_and_exits_130() {
    interrupted_by(nix::sys::signal::Signal::SIGINT);
}

#[test]
fn sigterm_writes_a_partial_report_and_exits_130() {
    interrupted_by(nix::sys::signal::Signal::SIGTERM);
}
