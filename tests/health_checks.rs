//! Health checks against real processes: which check sees which fault, availability as
//! time checked against a pause of known length, and a master/worker service paused and
//! measured as a whole process tree.

mod chaos_support;
mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use chaos_support::{helper_bin, Events, RunDir};
use gauntlet::chaos::Services;
use gauntlet::event::EventKind;
use serde_json::Value;

/// The tests here time outages and burn CPU: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A process group the test started; killed whole on drop.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGCONT);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

fn spawn_group(cmd: &mut Command) -> Group {
    use std::os::unix::process::CommandExt;
    Group(
        cmd.process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn"),
    )
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A master/worker HTTP server (the master serves nothing), its pid in `pid_file`.
fn master_workers(port: u16, pid_file: &Path, spin: bool) -> Group {
    let mut cmd = Command::new(helper_bin());
    cmd.args(["serve", &port.to_string()])
        .env("HELPER_WORKERS", "2")
        .env("HELPER_PIDFILE", pid_file);
    if spin {
        cmd.env("HELPER_SPIN", "1");
    }
    let g = spawn_group(&mut cmd);
    wait_until("the helper answers", Duration::from_secs(10), || {
        pid_file.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    g
}

fn probes_of<'a>(summary: &'a Value, service: &str) -> &'a Value {
    summary["probes"]
        .as_array()
        .expect("probes")
        .iter()
        .find(|p| p["service"] == service)
        .unwrap_or_else(|| panic!("no probes for {service}: {summary}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

const PAUSE_S: f64 = 3.0;
const INTERVAL_S: f64 = 0.2;

/// `pause` on a service gauntlet did not start stops its whole process tree (the workers
/// too, which serve); a TCP check is blind to it (the kernel still accepts), an HTTP
/// check and the process state see it; availability by time matches the pause within one
/// probe interval whatever the timeout; the recovery and detection stamps agree.
#[test]
fn a_paused_process_tree_is_seen_by_http_and_process_state_not_by_tcp() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let pid_file = dir.path().join("helper.pid");
    let _server = master_workers(port, &pid_file, false);
    let svc = |name: &str, check: &str| {
        format!(
            r#"
[[services]]
name = "{name}"
managed = false
pid_file = "{pf}"
health = {{ {check}, interval = "200ms", timeout = "1s" }}
"#,
            pf = pid_file.display()
        )
    };
    let text = format!(
        r#"
name = "which check sees a pause"
duration = "60s"
criteria = ["availability{{service=\"tcp\"}} >= 99%", "detect.max{{service=\"http\"}} < 1s"]

[target]
base_url = "http://127.0.0.1:{port}"
allow_hosts = ["127.0.0.1"]
{}{}{}
[[faults]]
kind = "pause"
target = "http"
at = "2s"
duration = "{PAUSE_S}s"
"#,
        svc(
            "http",
            &format!(
                r#"http = "http://127.0.0.1:{port}/", body = "ok pid=", process_state = false"#
            )
        ),
        svc(
            "tcp",
            &format!(r#"tcp = "127.0.0.1:{port}", process_state = false"#)
        ),
        svc("state", &format!(r#"tcp = "127.0.0.1:{port}""#)),
    );
    let file = common::write_scenario(dir.path(), "pause.toml", &text, port);
    let out = common::run_scenario(dir.path(), &file, "pause");
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let summary = common::read_json(&common::report_dir(dir.path(), "pause").join("summary.json"));

    // Blind: the listening socket is still there.
    let tcp = probes_of(&summary, "tcp");
    assert_eq!(f(&tcp["down_s"]), 0.0, "{tcp}");
    assert_eq!(f(&tcp["availability_pct"]), 100.0, "{tcp}");
    // Seen, and for as long as it lasted (within one probe interval and some
    // scheduling slack), although a probe's timeout (1s) is five intervals.
    for name in ["http", "state"] {
        let p = probes_of(&summary, name);
        let down = f(&p["down_s"]);
        assert!(
            (down - PAUSE_S).abs() <= INTERVAL_S + 0.3,
            "{name}: down {down}s for a {PAUSE_S}s pause: {p}"
        );
        assert_eq!(p["outages"], 1, "{p}");
        let span = f(&p["span_s"]);
        let avail = f(&p["availability_pct"]);
        assert!(
            (avail - (span - down) / span * 100.0).abs() < 1e-6,
            "{name}: {p}"
        );
        assert!(f(&p["resolution_s"]) < INTERVAL_S + 0.3, "{p}");
    }
    assert!(
        probes_of(&summary, "http")["check"]
            .as_str()
            .unwrap()
            .contains("body contains"),
        "{summary}"
    );
    // One stamp rule: recovered_at - undone_at is recovery_s exactly; detection within
    // one interval of the pause.
    let fault = &summary["faults"][0];
    let (undone, recovered, recovery) = (
        f(&fault["undone_at_s"]),
        f(&fault["recovered_at_s"]),
        f(&fault["recovery_s"]),
    );
    assert!((recovered - undone - recovery).abs() < 0.002, "{fault}");
    let detect = f(&fault["detect_s"]);
    assert!(detect <= INTERVAL_S + 0.3, "{fault}");
    // The service event says when it went down: the send time of the first failed probe.
    let down_at = summary["service_events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["service"] == "http" && e["event"] == "unhealthy")
        .map(|e| f(&e["at_s"]))
        .expect("an unhealthy event");
    assert!(
        (down_at - f(&fault["applied_at_s"]) - detect).abs() < 0.002,
        "{summary}"
    );
}

/// A Redis check asks Redis (PING): a paused redis-server still completes TCP handshakes,
/// so only the PING (and a command that asks it) sees the stall.
#[test]
fn redis_ping_sees_a_paused_redis_tcp_does_not() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let pid_file = dir.path().join("redis.pid");
    let _redis = spawn_group(Command::new("redis-server").args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--pidfile",
        pid_file.to_str().unwrap(),
    ]));
    wait_until("redis answers", Duration::from_secs(10), || {
        pid_file.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let text = format!(
        r#"
name = "redis stall"
duration = "60s"
criteria = ["availability{{service=\"tcp\"}} >= 99%"]

[target]
base_url = "http://127.0.0.1:{port}"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "redis"
managed = false
pid_file = "{pf}"

[[services]]
name = "ping"
managed = false
health = {{ redis = "127.0.0.1:{port}", interval = "200ms", timeout = "1s" }}

[[services]]
name = "cli"
managed = false
health = {{ command = ["redis-cli", "-p", "{port}", "ping"], interval = "200ms", timeout = "1s" }}

[[services]]
name = "tcp"
managed = false
health = {{ tcp = "127.0.0.1:{port}", interval = "200ms", timeout = "1s" }}

[[faults]]
kind = "pause"
target = "redis"
at = "2s"
duration = "{PAUSE_S}s"
"#,
        pf = pid_file.display()
    );
    let file = common::write_scenario(dir.path(), "redis.toml", &text, port);
    let out = common::run_scenario(dir.path(), &file, "redis");
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let summary = common::read_json(&common::report_dir(dir.path(), "redis").join("summary.json"));
    assert_eq!(f(&probes_of(&summary, "tcp")["down_s"]), 0.0, "{summary}");
    for name in ["ping", "cli"] {
        let p = probes_of(&summary, name);
        let down = f(&p["down_s"]);
        assert!(
            (down - PAUSE_S).abs() <= INTERVAL_S + 0.4,
            "{name}: down {down}s for a {PAUSE_S}s pause: {p}"
        );
    }
    let reason = summary["service_events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["service"] == "ping" && e["event"] == "unhealthy")
        .map(|e| e["detail"].to_string())
        .expect("ping went unhealthy");
    // Either the check's own error ("redis HOST: PING: ...") or its timeout ("Redis PING
    // HOST: no answer within 1s"), whichever comes first on a busy machine.
    assert!(reason.to_lowercase().contains("redis"), "{reason}");
}

/// CPU and memory of a service gauntlet did not start are those of its whole process
/// tree: the master of a master/worker server is idle while its workers burn CPU.
#[test]
fn resources_of_a_found_service_sum_its_process_tree() {
    let _one = serial();
    tokio::runtime::Runtime::new().unwrap().block_on(tree_cpu());
}

async fn tree_cpu() {
    let dir = RunDir::new("tree-cpu");
    let port = common::free_port();
    let pid_file = dir.reports().join("spin.pid");
    std::fs::create_dir_all(dir.reports()).unwrap();
    let _server = master_workers(port, &pid_file, true);
    let plan = chaos_support::plan(&format!(
        r#"{}
[[services]]
name = "spin"
managed = false
pid_file = "{}"
"#,
        chaos_support::HEAD,
        pid_file.display()
    ));
    let mut ev = Events::new();
    let mut services = Services::start(&plan, &dir.folder(), ev.sink.clone())
        .await
        .expect("services start");
    let start = Instant::now();
    let mut best = 0.0f64;
    // Two spinning workers: up to two cores together; the master alone is ~0 %. Over
    // half a core proves the workers are counted, even on a busy machine.
    while best <= 50.0 && start.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for e in ev.drain() {
            if let EventKind::Resource { cpu_pct, .. } = &e.kind {
                best = best.max(*cpu_pct);
            }
        }
    }
    services.shutdown().await;
    assert!(
        best > 50.0,
        "CPU of the tree peaked at {best:.0}% (master only?)"
    );
}
