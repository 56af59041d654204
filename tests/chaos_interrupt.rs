//! The full binary: `gauntlet run` with faults on the timeline, interrupted by SIGINT or
//! SIGTERM in the middle of a pause and a duplicate: afterwards nothing is paused, no
//! duplicate runs, the service is stopped, a partial report exists, exit code 130. A fault
//! that must apply and cannot ends the run with exit 3; `gauntlet cleanup` says what it did.

mod chaos_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chaos_support::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn gauntlet() -> &'static str {
    env!("CARGO_BIN_EXE_gauntlet")
}

fn scenario(port: u16, faults: &str) -> String {
    format!(
        r#"
name = "chaos interrupt"
seed = 1
duration = "2m"

[target]
base_url = "http://127.0.0.1:{port}"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
command = ["{helper}", "serve", "{port}"]
health = {{ http = "http://127.0.0.1:{port}/", startup = "10s", interval = "200ms" }}

[load]
think_time = "100ms"
timeout = "1s"
stages = [{{ duration = "60s", users = 2 }}]

[[requests]]
name = "root"
path = "/"

{faults}
"#,
        helper = helper_bin().display()
    )
}

const PAUSE_AND_DUPLICATE: &str = r#"
[[faults]]
kind = "pause"
target = "api"
at = "1s"
duration = "50s"

[[faults]]
kind = "duplicate"
target = "api"
at = "1s"
duration = "50s"
"#;

fn start(dir: &Path, file: &Path, run_id: &str) -> Child {
    Command::new(gauntlet())
        .arg("run")
        .arg(file)
        .arg("--reports")
        .arg(dir.join("reports"))
        .arg("--run-id")
        .arg(run_id)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gauntlet")
}

fn state(dir: &Path, run_id: &str) -> serde_json::Value {
    std::fs::read_to_string(dir.join("reports").join(run_id).join("state.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn wait_exit(child: &mut Child, max: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < max {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

fn interrupt_in_the_middle_of_a_pause_and_a_duplicate(sig: Signal) {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, scenario(port, PAUSE_AND_DUPLICATE)).unwrap();
    let run_id = format!("int-{}", sig.as_str());
    let mut child = start(tmp.path(), &file, &run_id);
    // Wait for both faults to be in force: a paused process and a duplicate recorded.
    let start_t = Instant::now();
    let (service, dup) = loop {
        let st = state(tmp.path(), &run_id);
        let procs = st["processes"].as_array().cloned().unwrap_or_default();
        let pid_of = |role: &str| {
            procs
                .iter()
                .find(|p| p["role"] == role)
                .and_then(|p| p["pid"].as_u64())
        };
        let paused = st["pending"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x["what"] == "paused_process"));
        if let (Some(s), Some(d), true) = (pid_of("service"), pid_of("duplicate"), paused) {
            break (s as u32, d as u32);
        }
        if start_t.elapsed() > Duration::from_secs(30) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "faults never in force; state: {st}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(eventually_blocking(Duration::from_secs(3), || proc_state(
        service
    ) == Some(
        'T'
    )));
    assert!(alive(dup));
    kill(Pid::from_raw(child.id() as i32), sig).unwrap();
    let code = wait_exit(&mut child, Duration::from_secs(30));
    let stderr = {
        let mut s = String::new();
        use std::io::Read;
        let _ = child.stderr.take().unwrap().read_to_string(&mut s);
        s
    };
    assert_eq!(code, Some(130), "stderr: {stderr}");
    assert!(!alive(dup), "the duplicate survived the interrupt");
    assert!(!alive(service), "the service survived the run");
    assert_ne!(proc_state(service), Some('T'));
    let st = state(tmp.path(), &run_id);
    assert_eq!(st["finished"], true, "{st}");
    assert_eq!(st["pending"].as_array().map(|a| a.len()), Some(0), "{st}");
    assert_eq!(st["processes"].as_array().map(|a| a.len()), Some(0), "{st}");
    let report = tmp.path().join("reports").join(&run_id);
    assert!(report.join("summary.json").exists(), "no partial report");
    // Nothing left for cleanup.
    let out = Command::new(gauntlet())
        .args(["cleanup", "--reports"])
        .arg(tmp.path().join("reports"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to clean up"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn eventually_blocking(max: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < max {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

#[test]
fn sigint_in_the_middle_of_a_pause_and_a_duplicate() {
    interrupt_in_the_middle_of_a_pause_and_a_duplicate(Signal::SIGINT);
}

#[test]
fn sigterm_in_the_middle_of_a_pause_and_a_duplicate() {
    interrupt_in_the_middle_of_a_pause_and_a_duplicate(Signal::SIGTERM);
}

#[test]
fn a_fault_that_must_apply_and_cannot_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let nobody = free_port();
    let file = tmp.path().join("s.toml");
    let faults = format!(
        r#"
[[faults]]
kind = "leak_websockets"
target = "api"
url = "ws://127.0.0.1:{nobody}/ws"
connections = 5
at = "500ms"
duration = "10s"
on_error = "fail"
"#
    );
    std::fs::write(&file, scenario(port, &faults)).unwrap();
    let mut child = start(tmp.path(), &file, "must-fail");
    let code = wait_exit(&mut child, Duration::from_secs(60));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code, Some(3), "stderr: {stderr}");
    let summary = std::fs::read_to_string(tmp.path().join("reports/must-fail/summary.json"))
        .unwrap_or_default();
    assert!(
        summary.contains("could not be applied") || stderr.contains("could not be applied"),
        "the reason is not shown; stderr: {stderr}\nsummary: {summary}"
    );
}

#[test]
fn cleanup_command_says_what_it_did() {
    let tmp = tempfile::tempdir().unwrap();
    let mut stray = {
        use std::os::unix::process::CommandExt;
        Command::new("sleep")
            .arg("120")
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let st = serde_json::json!({
        "run_id": "old", "gauntlet_pid": dead_pid, "gauntlet_start_time": 1, "finished": false,
        "processes": [{"pid": stray.id(), "start_time": null, "role": "duplicate", "service": "api", "group": true}],
        "containers": [], "pending": []
    });
    std::fs::create_dir_all(tmp.path().join("reports/old")).unwrap();
    std::fs::write(tmp.path().join("reports/old/state.json"), st.to_string()).unwrap();
    let out = Command::new(gauntlet())
        .args(["cleanup", "--reports"])
        .arg(tmp.path().join("reports"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("killed stray process {}", stray.id())),
        "{text}"
    );
    stray.wait().unwrap();
}

#[test]
fn sigint_in_the_middle_of_a_docker_pause_and_duplicate() {
    if !docker_or_skip("sigint_in_the_middle_of_a_docker_pause_and_duplicate") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let run_id = format!("int-docker-{}", std::process::id());
    let _guard = RunContainers(run_id.clone());
    let file = tmp.path().join("s.toml");
    let text = format!(
        r#"
name = "chaos interrupt docker"
seed = 1
duration = "2m"
backend = "docker"

[target]
base_url = "http://127.0.0.1:{port}"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
image = "{image}"
ports = ["127.0.0.1:{port}:8080"]
health = {{ http = "http://127.0.0.1:{port}/", startup = "30s", interval = "200ms" }}

[load]
think_time = "100ms"
timeout = "1s"
stages = [{{ duration = "60s", users = 2 }}]

[[requests]]
name = "root"
path = "/"

{PAUSE_AND_DUPLICATE}
"#,
        image = helper_image()
    );
    std::fs::write(&file, text).unwrap();
    let mut child = start(tmp.path(), &file, &run_id);
    let start_t = Instant::now();
    let (service, dup) = loop {
        let st = state(tmp.path(), &run_id);
        let ctrs = st["containers"].as_array().cloned().unwrap_or_default();
        let id_of = |role: &str| {
            ctrs.iter()
                .find(|c| c["role"] == role)
                .and_then(|c| c["id"].as_str().map(String::from))
        };
        let paused = st["pending"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x["what"] == "paused_container"));
        if let (Some(s), Some(d), true) = (id_of("service"), id_of("duplicate"), paused) {
            break (s, d);
        }
        if start_t.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "faults never in force; state: {st}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        docker_inspect(&service, "{{.State.Paused}}").as_deref(),
        Some("true")
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let code = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(code, Some(130));
    assert!(
        docker_inspect(&dup, "{{.Id}}").is_none(),
        "the duplicate container survived"
    );
    assert!(
        docker_inspect(&service, "{{.Id}}").is_none(),
        "the run's container survived"
    );
    let st = state(tmp.path(), &run_id);
    assert_eq!(st["finished"], true, "{st}");
    assert_eq!(st["pending"].as_array().map(|a| a.len()), Some(0), "{st}");
    assert_eq!(
        st["containers"].as_array().map(|a| a.len()),
        Some(0),
        "{st}"
    );
    assert!(tmp
        .path()
        .join("reports")
        .join(&run_id)
        .join("summary.json")
        .exists());
}

/// Removes the containers of a run whatever happened.
struct RunContainers(String);
impl Drop for RunContainers {
    fn drop(&mut self) {
        remove_run_containers(&self.0);
    }
}
