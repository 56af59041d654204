//! Shared by the chaos tests: a tiny static test service (built from helper.c), plans
//! built in code, an event collector, Docker helpers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gauntlet::event::{EventKind, EventSink, FaultState, RunEvent, ServiceEventKind};
use gauntlet::scenario::Plan;

/// The helper service, compiled once per test binary (static, so it runs FROM scratch).
pub fn helper_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chaos_support/helper.c");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chaos-helper");
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("helper");
        let tmp = dir.join(format!("helper.{}.tmp", std::process::id()));
        let st = Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(&tmp)
            .arg(&src)
            .status()
            .expect("run cc (a C compiler and static libc are needed for the chaos tests)");
        assert!(st.success(), "cc -static helper.c failed");
        std::fs::rename(&tmp, &out).unwrap();
        out
    })
    .clone()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plan from scenario TOML, through the same parse and validation as `gauntlet run`.
/// `HEAD` sets a long hard cap, so faults far on the timeline validate; the tests drive
/// the timeline themselves.
pub fn plan(toml_text: &str) -> Plan {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/test.toml");
    let mut plan = gauntlet::scenario::load_str(&file, toml_text).unwrap_or_else(|e| panic!("{e}"));
    plan.seed = 7;
    plan
}

/// The scenario head every test plan needs.
pub const HEAD: &str = r#"
name = "chaos test"
duration = "30m"
[target]
base_url = "http://127.0.0.1:1"
allow_hosts = ["127.0.0.1"]
"#;

/// A run folder: `<tmp>/reports/<run-id>/logs`.
pub struct RunDir {
    pub tmp: tempfile::TempDir,
    pub run_id: String,
}

impl RunDir {
    pub fn new(name: &str) -> RunDir {
        let tmp = tempfile::tempdir().unwrap();
        let run_id = format!("{name}-{}", std::process::id());
        std::fs::create_dir_all(tmp.path().join("reports").join(&run_id).join("logs")).unwrap();
        RunDir { tmp, run_id }
    }
    pub fn reports(&self) -> PathBuf {
        self.tmp.path().join("reports")
    }
    pub fn report_dir(&self) -> PathBuf {
        self.reports().join(&self.run_id)
    }
    pub fn logs(&self) -> PathBuf {
        self.report_dir().join("logs")
    }
    pub fn folder(&self) -> gauntlet::chaos::RunFolder {
        gauntlet::chaos::RunFolder {
            run_id: self.run_id.clone(),
            dir: self.report_dir(),
        }
    }
}

/// Collects every event sent during a test.
pub struct Events {
    pub sink: EventSink,
    rx: gauntlet::event::EventStream,
    pub all: Vec<RunEvent>,
}

impl Events {
    pub fn new() -> Events {
        let (sink, rx) = EventSink::new(Instant::now());
        Events {
            sink,
            rx,
            all: vec![],
        }
    }
    pub fn drain(&mut self) -> &[RunEvent] {
        while let Ok(e) = self.rx.try_recv() {
            self.all.push(e);
        }
        &self.all
    }
    pub fn service_kinds(&mut self, service: &str) -> Vec<ServiceEventKind> {
        self.drain()
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Service(s) if s.service == service => Some(s.kind.clone()),
                _ => None,
            })
            .collect()
    }
    pub fn fault_states(&mut self) -> Vec<FaultState> {
        self.drain()
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Fault(f) => Some(f.state.clone()),
                _ => None,
            })
            .collect()
    }
    pub fn notices(&mut self) -> Vec<String> {
        self.drain()
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Notice { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }
}

/// GET http://127.0.0.1:port/ → (status line, body), with a timeout.
pub fn http_get(port: u16, timeout: Duration) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        timeout,
    )
    .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

pub async fn http_get_async(port: u16, timeout: Duration) -> Result<String, String> {
    tokio::task::spawn_blocking(move || http_get(port, timeout))
        .await
        .unwrap()
}

/// Wait until `f` holds, up to `max`.
pub async fn eventually(max: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < max {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

/// Check that `f` keeps holding for the whole of `window` (what must *not* happen
/// cannot be polled for): false as soon as it does not.
pub async fn holds_for(window: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < window {
        if !f() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// "State:" letter of a process from /proc (R, S, T, Z...), None when gone.
pub fn proc_state(pid: u32) -> Option<char> {
    gauntlet::chaos::process::proc_state(pid as i32)
}

pub fn alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some(c) if c != 'Z')
}

// ----- Docker ---------------------------------------------------------------------

/// Is the engine reachable? In CI (CI=true) it must be: the test fails with a clear
/// message instead of skipping.
pub fn docker_or_skip(test: &str) -> bool {
    let ok = Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return true;
    }
    if std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
    {
        panic!("{test}: the Docker engine is unreachable, and CI=true requires the Docker tests to run (start dockerd / check DOCKER_HOST)");
    }
    eprintln!(
        "{test}: SKIPPED: the Docker engine is unreachable (set CI=true to make this a failure)"
    );
    false
}

/// A `FROM scratch` image holding only the static helper; built once per test binary.
pub fn helper_image() -> String {
    static IMG: OnceLock<String> = OnceLock::new();
    IMG.get_or_init(|| {
        let bin = helper_bin();
        let ctx = tempfile::tempdir().unwrap();
        std::fs::copy(&bin, ctx.path().join("helper")).unwrap();
        std::fs::write(
            ctx.path().join("Dockerfile"),
            "FROM scratch\nCOPY helper /helper\nENV HELPER_ANY=1\nENTRYPOINT [\"/helper\"]\nCMD [\"serve\", \"8080\"]\n",
        )
        .unwrap();
        let tag = "gauntlet-chaos-helper:test".to_string();
        let out = Command::new("docker")
            .args(["build", "-q", "-t", &tag])
            .arg(ctx.path())
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .expect("docker build");
        assert!(
            out.status.success(),
            "docker build of the helper image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tag
    })
    .clone()
}

/// `docker inspect -f FORMAT NAME`.
pub fn docker_inspect(name: &str, format: &str) -> Option<String> {
    let o = Command::new("docker")
        .args(["inspect", "-f", format, name])
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Removes containers (by name or id) when dropped, whatever happened.
pub struct ContainerGuard(pub Vec<String>);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
    }
}

/// Remove every container labelled with this run id (test clean-up).
pub fn remove_run_containers(run_id: &str) {
    let o = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=gauntlet.run-id={run_id}"),
        ])
        .output();
    if let Ok(o) = o {
        for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
    }
}
