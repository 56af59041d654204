//! The run-state file with real processes and the real binary: a fault whose undo cannot
//! be recorded is not applied (the process is never stopped); a pause left by a SIGKILLed
//! run is resumed by `gauntlet cleanup`; a live run's folder is locked (a second run with
//! it exits 2, cleanup leaves it alone); cleanup finds state files in nested folders.

mod chaos_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chaos_support::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn gauntlet() -> &'static str {
    env!("CARGO_BIN_EXE_gauntlet")
}

/// A scenario with the helper as `api` (managed, or found by `pid_file`) and `faults`.
fn scenario(port: u16, service: &str, faults: &str) -> String {
    format!(
        r#"
name = "state file"
seed = 1
duration = "2m"

[target]
base_url = "http://127.0.0.1:{port}"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
{service}
health = {{ http = "http://127.0.0.1:{port}/", startup = "10s", interval = "200ms" }}

[load]
think_time = "100ms"
timeout = "1s"
stages = [{{ duration = "4s", users = 1 }}]

[[requests]]
name = "root"
path = "/"

{faults}
"#
    )
}

fn managed(port: u16) -> String {
    format!(
        "command = [\"{}\", \"serve\", \"{port}\"]",
        helper_bin().display()
    )
}

fn start(reports: &Path, file: &Path, run_id: &str) -> Child {
    Command::new(gauntlet())
        .arg("run")
        .arg(file)
        .arg("--reports")
        .arg(reports)
        .arg("--run-id")
        .arg(run_id)
        .arg("--quiet")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gauntlet")
}

fn cleanup(reports: &Path) -> Output {
    Command::new(gauntlet())
        .args(["cleanup", "--reports"])
        .arg(reports)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn read_state(dir: &Path) -> serde_json::Value {
    std::fs::read_to_string(dir.join("state.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn poll(max: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < max {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// The pid of the service recorded in the state file, once it is there.
fn recorded_service(dir: &Path, child: &mut Child) -> u32 {
    let mut pid = None;
    let ok = poll(Duration::from_secs(20), || {
        pid = read_state(dir)["processes"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["role"] == "service"))
            .and_then(|p| p["pid"].as_u64());
        pid.is_some() || child.try_wait().unwrap().is_some()
    });
    match pid {
        Some(p) if ok => p as u32,
        _ => {
            use std::io::Read;
            let _ = child.kill();
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            panic!("the service was never recorded\nstderr: {stderr}");
        }
    }
}

fn paused_recorded(dir: &Path) -> bool {
    read_state(dir)["pending"]
        .as_array()
        .is_some_and(|p| p.iter().any(|x| x["what"] == "paused_process"))
}

/// Wait for the child to exit; its output.
fn finish(mut child: Child, max: Duration) -> Output {
    if !poll(max, || child.try_wait().unwrap().is_some()) {
        let _ = child.kill();
    }
    child.wait_with_output().unwrap()
}

/// A process the test owns, in its own group, outside any run: `helper serve PORT`.
struct External {
    child: Child,
    pid_file: PathBuf,
}

impl External {
    fn start(dir: &Path, port: u16) -> External {
        use std::os::unix::process::CommandExt;
        let child = Command::new(helper_bin())
            .args(["serve", &port.to_string()])
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let pid_file = dir.join("api.pid");
        std::fs::write(&pid_file, child.id().to_string()).unwrap();
        assert!(poll(Duration::from_secs(5), || http_get(
            port,
            Duration::from_millis(200)
        )
        .is_ok()));
        External { child, pid_file }
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for External {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.pid() as i32), Signal::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_pause_left_by_a_sigkilled_run_is_resumed_by_cleanup() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let ext = External::start(tmp.path(), port);
    let service = format!("managed = false\npid_file = \"{}\"", ext.pid_file.display());
    let faults =
        "[[faults]]\nkind = \"pause\"\ntarget = \"api\"\nat = \"200ms\"\nduration = \"60s\"\n";
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, scenario(port, &service, faults)).unwrap();
    let reports = tmp.path().join("reports");
    let run_dir = reports.join("killed");
    let mut child = start(&reports, &file, "killed");
    assert!(
        poll(Duration::from_secs(20), || paused_recorded(&run_dir)
            && proc_state(ext.pid()) == Some('T')),
        "never paused; state: {}",
        read_state(&run_dir)
    );
    child.kill().unwrap();
    let out = finish(child, Duration::from_secs(10));
    assert_eq!(out.status.code(), None, "SIGKILL ends it: {}", text(&out));
    // Nothing undid the pause: only cleanup can.
    assert_eq!(proc_state(ext.pid()), Some('T'));
    assert!(paused_recorded(&run_dir), "{}", read_state(&run_dir));

    let out = cleanup(&reports);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("resumed paused process {}", ext.pid())),
        "{}",
        text(&out)
    );
    assert!(
        poll(Duration::from_secs(5), || proc_state(ext.pid())
            .is_some_and(|s| s != 'T')),
        "still stopped after cleanup: {:?}",
        proc_state(ext.pid())
    );
    assert!(http_get(port, Duration::from_secs(2)).is_ok());
    assert_eq!(read_state(&run_dir)["finished"], true);
    let again = cleanup(&reports);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to clean up"),
        "{}",
        text(&again)
    );
}

#[test]
fn a_fault_whose_undo_cannot_be_recorded_is_not_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let faults =
        "[[faults]]\nkind = \"pause\"\ntarget = \"api\"\nat = \"1500ms\"\nduration = \"2s\"\n";
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, scenario(port, &managed(port), faults)).unwrap();
    let reports = tmp.path().join("reports");
    let run_dir = reports.join("unrecordable");
    let mut child = start(&reports, &file, "unrecordable");
    let pid = recorded_service(&run_dir, &mut child);
    // The state location stops taking writes: `state.json` becomes a folder, so the
    // rename over it fails (even for root, whom permission bits would not stop).
    std::fs::remove_file(run_dir.join("state.json")).unwrap();
    std::fs::create_dir(run_dir.join("state.json")).unwrap();
    std::fs::write(run_dir.join("state.json/keep"), "").unwrap();
    // Watch the process from /proc for the whole run: it is never stopped.
    let mut states = vec![];
    while child.try_wait().unwrap().is_none() {
        if let Some(s) = proc_state(pid) {
            states.push(s);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = finish(child, Duration::from_secs(1));
    let t = text(&out);
    assert!(states.len() > 50, "too few samples: {states:?}");
    assert!(!states.contains(&'T'), "the process was paused: {t}");
    // on_fault_error = "fail" (the default): not applied, the reason, exit 3.
    assert_eq!(out.status.code(), Some(3), "{t}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("could not be applied")
            && stderr.contains("its undo cannot be recorded")
            && stderr.contains("state.json"),
        "{t}"
    );
    let summary = std::fs::read_to_string(run_dir.join("summary.json")).unwrap();
    assert!(summary.contains("its undo cannot be recorded"), "{summary}");
}

#[test]
fn a_live_runs_folder_is_locked_against_a_second_run_and_cleanup() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let faults =
        "[[faults]]\nkind = \"pause\"\ntarget = \"api\"\nat = \"200ms\"\nduration = \"60s\"\n";
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, scenario(port, &managed(port), faults)).unwrap();
    let reports = tmp.path().join("reports");
    let run_dir = reports.join("live");
    let mut child = start(&reports, &file, "live");
    let pid = recorded_service(&run_dir, &mut child);
    assert!(
        poll(Duration::from_secs(20), || proc_state(pid) == Some('T')),
        "never paused"
    );

    let second = start(&reports, &file, "live");
    let out = finish(second, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a live gauntlet run holds it"),
        "{}",
        text(&out)
    );

    let out = cleanup(&reports);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("skipped: run live") && t.contains("locked by a live gauntlet run"),
        "{t}"
    );
    assert_eq!(proc_state(pid), Some('T'), "cleanup touched a live run");

    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = finish(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(poll(Duration::from_secs(5), || !alive(pid)));
}

#[test]
fn cleanup_finds_state_files_at_any_depth_under_odd_names() {
    let tmp = tempfile::tempdir().unwrap();
    let reports = tmp.path().join("reports");
    let mut paused = Command::new("sleep").arg("120").spawn().unwrap();
    kill(Pid::from_raw(paused.id() as i32), Signal::SIGSTOP).unwrap();
    assert!(poll(Duration::from_secs(2), || proc_state(paused.id())
        == Some('T')));
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let run = reports.join("team a/nightly/run #1 (ü)");
    std::fs::create_dir_all(&run).unwrap();
    let state = serde_json::json!({
        "run_id": "odd", "gauntlet_pid": dead_pid, "gauntlet_start_time": 1, "finished": false,
        "processes": [], "containers": [],
        "pending": [{"what": "paused_process", "pid": paused.id(), "start_time": null, "group": false}]
    });
    std::fs::write(run.join("state.json"), state.to_string()).unwrap();
    // A link to the same folder (like `latest`) is not followed: undone once.
    std::os::unix::fs::symlink(&run, reports.join("latest")).unwrap();

    let out = cleanup(&reports);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_eq!(
        t.matches(&format!("resumed paused process {}", paused.id()))
            .count(),
        1,
        "{t}"
    );
    assert!(poll(Duration::from_secs(5), || proc_state(paused.id())
        .is_some_and(|s| s != 'T')));
    paused.kill().unwrap();
    paused.wait().unwrap();
}
