//! The process backend: services as local child processes, each in its own process
//! group, tied to gauntlet's life (PR_SET_PDEATHSIG), output appended to its log file,
//! supervised with the service's restart policy.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

use crate::event::{EventKind, EventSink, Level, ServiceEvent, ServiceEventKind};
use crate::scenario::model::{RestartPolicy, ServiceSpec};

use super::health::Health;
use super::os::signal_group;
use super::state::{ProcRole, StateFile};

mod fault_ops;

pub(crate) use fault_ops::UnmanagedProc;

/// Read by the tests: the state letter of a process.
pub use super::os::proc_state;

/// A process that could not be started, found or commanded.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("`command` is empty")]
    EmptyCommand,
    #[error("a managed service of the process backend needs a `command`")]
    NoCommand,
    #[error("cannot find the gauntlet binary: {0}")]
    OwnBinary(#[source] std::io::Error),
    #[error("cannot open the log file {}: {source}", path.display())]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start `{}`{}: {source}", program.display(), cwd.as_ref().map(|d| format!(" in {}", d.display())).unwrap_or_default())]
    Spawn {
        program: PathBuf,
        cwd: Option<PathBuf>,
        source: std::io::Error,
    },
    #[error("service `{0}` is being shut down")]
    ShuttingDown(String),
    #[error("service `{0}` is not supervised")]
    NotSupervised(String),
    #[error("supervisor gone")]
    SupervisorGone,
    #[error("the process has no pid")]
    NoPid,
    #[error("the {0} exited at once")]
    ExitedAtOnce(&'static str),
    /// Not healthy in time, or died before: the reason, with the last probe's error.
    #[error("{0}")]
    NotReady(String),
    #[error("cannot read the pid file {}: {source}", path.display())]
    PidFileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the pid file {} does not hold a pid", .0.display())]
    PidFileGarbled(PathBuf),
    #[error("the pid file {} holds pid {pid}", path.display())]
    PidFileBadPid { path: PathBuf, pid: i32 },
    #[error("the process {pid} named by {} is not running", path.display())]
    PidFileStale { path: PathBuf, pid: i32 },
    /// Started, but it could not be recorded for `cleanup`: killed again.
    #[error("not started: {0}")]
    State(#[from] super::state::StateError),
}

/// Grace between SIGTERM and SIGKILL when gauntlet stops a process.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(3);

/// The program and arguments of a service: a first word `gauntlet` is this very binary.
pub(crate) fn resolve_argv(argv: &[String]) -> Result<(PathBuf, Vec<String>), ProcessError> {
    let first = argv.first().ok_or(ProcessError::EmptyCommand)?;
    let program = if first == "gauntlet" {
        std::env::current_exe().map_err(ProcessError::OwnBinary)?
    } else {
        PathBuf::from(first)
    };
    Ok((program, argv[1..].to_vec()))
}

/// A path from the scenario: relative ones are taken from the scenario file's folder.
pub(crate) fn resolve_path(base_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

/// Start `argv` in its own process group, killed if gauntlet dies, with stdout and stderr
/// appended to `log_path`.
pub(crate) fn spawn_logged(
    argv: &[String],
    env: &std::collections::BTreeMap<String, String>,
    cwd: Option<&Path>,
    log_path: &Path,
    what: &str,
) -> Result<Child, ProcessError> {
    use std::io::Write;
    let (program, args) = resolve_argv(argv)?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(|source| ProcessError::Log {
            path: log_path.to_path_buf(),
            source,
        })?;
    let _ = writeln!(
        log,
        "--- gauntlet: {what} at {}: {} ---",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        shell_words(argv)
    );
    let err_log = log.try_clone().map_err(|source| ProcessError::Log {
        path: log_path.to_path_buf(),
        source,
    })?;
    let mut cmd = Command::new(&program);
    cmd.args(&args)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err_log))
        .process_group(0)
        .kill_on_drop(false);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let parent = std::process::id();
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // gauntlet died between fork and prctl: do not outlive it.
            if nix::unistd::getppid().as_raw() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(|source| ProcessError::Spawn {
        program: program.clone(),
        cwd: cwd.map(Path::to_path_buf),
        source,
    })
}

pub(crate) fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Exit code and signal of a status, for events.
pub(crate) fn status_parts(st: &ExitStatus) -> (Option<i32>, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    (st.code(), st.signal())
}

pub(crate) fn describe_status(st: &ExitStatus) -> String {
    match status_parts(st) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!(
            "was killed by signal {}",
            Signal::try_from(s)
                .map(|s| s.to_string())
                .unwrap_or_else(|_| s.to_string())
        ),
        _ => "exited".to_string(),
    }
}

/// The last `n` lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    let text = match std::fs::read(path) {
        Ok(b) => b,
        Err(_) => return String::new(),
    };
    let start = text.len().saturating_sub(16 * 1024);
    let text = String::from_utf8_lossy(&text[start..]);
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    lines[from..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

// ----- managed service ------------------------------------------------------------

pub(crate) enum Cmd {
    /// Stop the process (the signal, SIGTERM by default, to its group; SIGKILL after the
    /// grace) and keep it down.
    Stop(Signal, oneshot::Sender<()>),
    /// Start it if it is not running. Replies with its pid.
    Start(oneshot::Sender<Result<u32, ProcessError>>),
    /// Stop then start.
    Restart(oneshot::Sender<Result<u32, ProcessError>>),
    /// Stop and end supervision.
    Shutdown(oneshot::Sender<()>),
}

/// One managed service of the process backend.
pub(crate) struct ManagedProc {
    pub name: String,
    pub spec: ServiceSpec,
    pub cwd: Option<PathBuf>,
    pub log_path: PathBuf,
    pub events: EventSink,
    pub state: Arc<StateFile>,
    /// pid (= process group id) of the running instance.
    current: Mutex<Option<u32>>,
    tx: Mutex<Option<mpsc::UnboundedSender<Cmd>>>,
    /// Set when gauntlet gave up on it (drop path): never spawn again.
    closed: std::sync::atomic::AtomicBool,
}

impl ManagedProc {
    pub fn new(
        spec: ServiceSpec,
        base_dir: &Path,
        logs_dir: &Path,
        events: EventSink,
        state: Arc<StateFile>,
    ) -> ManagedProc {
        ManagedProc {
            name: spec.name.clone(),
            cwd: spec.cwd.as_deref().map(|c| resolve_path(base_dir, c)),
            log_path: logs_dir.join(format!("{}.log", spec.name)),
            spec,
            events,
            state,
            current: Mutex::new(None),
            tx: Mutex::new(None),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        *self.current.lock().unwrap()
    }

    fn set_pid(&self, pid: Option<u32>) {
        *self.current.lock().unwrap() = pid;
    }

    fn emit(&self, kind: ServiceEventKind) {
        self.events.send(EventKind::Service(ServiceEvent {
            service: self.name.clone(),
            kind,
        }));
    }

    /// Spawn one instance and record it.
    pub fn spawn(&self, what: &str) -> Result<Child, ProcessError> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ProcessError::ShuttingDown(self.name.clone()));
        }
        let argv = self.spec.command.as_ref().ok_or(ProcessError::NoCommand)?;
        // Its pid is known only once it runs: prove first that it can be recorded.
        self.state.check()?;
        let child = spawn_logged(
            argv,
            &self.spec.env,
            self.cwd.as_deref(),
            &self.log_path,
            what,
        )?;
        let pid = child.id();
        if let Some(pid) = pid {
            if let Err(e) = self
                .state
                .add_process(pid as i32, ProcRole::Service, &self.name)
            {
                // Unrecorded, a killed run would leave it behind: it does not run at all.
                let _ = signal_group(pid as i32, Signal::SIGKILL);
                return Err(e.into());
            }
        }
        self.set_pid(pid);
        self.emit(ServiceEventKind::Started { pid });
        Ok(child)
    }

    /// Wait for the first healthy probe, or fail with a message naming the last probe
    /// error and the log file. The child is killed on failure.
    pub async fn wait_ready(
        &self,
        child: &mut Child,
        health: Option<&Health>,
    ) -> Result<(), ProcessError> {
        let start = Instant::now();
        let Some(health) = health else {
            // No health check: ready when it has not died at once.
            let r = tokio::time::timeout(Duration::from_millis(300), child.wait()).await;
            if let Ok(st) = r {
                let st = st.map_err(|e| ProcessError::NotReady(e.to_string()))?;
                self.on_exit(&st);
                return Err(ProcessError::NotReady(format!(
                    "{} right after it started",
                    describe_status(&st)
                )));
            }
            return Ok(());
        };
        let mut last = String::from("no probe answered yet");
        loop {
            let remaining = health.startup.saturating_sub(start.elapsed());
            let budget = remaining.min(health.timeout).max(Duration::from_millis(50));
            tokio::select! {
                st = child.wait() => {
                    let st = st.map_err(|e| ProcessError::NotReady(e.to_string()))?;
                    self.on_exit(&st);
                    return Err(ProcessError::NotReady(format!(
                        "{} before it became healthy (last probe: {last})",
                        describe_status(&st)
                    )));
                }
                r = super::health::probe(&health.target, budget) => match r {
                    Ok(_) => return Ok(()),
                    Err(e) => last = e,
                }
            }
            if start.elapsed() >= health.startup {
                self.kill_now(child).await;
                return Err(ProcessError::NotReady(format!(
                    "did not become healthy within {} (last probe: {last})",
                    humantime::format_duration(health.startup)
                )));
            }
            tokio::select! {
                st = child.wait() => {
                    let st = st.map_err(|e| ProcessError::NotReady(e.to_string()))?;
                    self.on_exit(&st);
                    return Err(ProcessError::NotReady(format!(
                        "{} before it became healthy (last probe: {last})",
                        describe_status(&st)
                    )));
                }
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    fn on_exit(&self, st: &ExitStatus) {
        let (code, signal) = status_parts(st);
        if let Some(pid) = self.pid() {
            self.state.remove_process(pid as i32);
        }
        self.set_pid(None);
        self.emit(ServiceEventKind::Exited { code, signal });
    }

    /// SIGKILL the group at once and reap.
    async fn kill_now(&self, child: &mut Child) {
        if let Some(pid) = child.id() {
            let _ = signal_group(pid as i32, Signal::SIGKILL);
        }
        if let Ok(st) = child.wait().await {
            self.on_exit(&st);
        }
    }

    /// SIGTERM to the group (and SIGCONT, should it be paused), SIGKILL after the grace.
    async fn terminate(&self, child: Child, grace: Duration) {
        self.terminate_with(child, grace, Signal::SIGTERM).await
    }

    async fn terminate_with(&self, mut child: Child, grace: Duration, sig: Signal) {
        if let Some(pid) = child.id() {
            let _ = signal_group(pid as i32, sig);
            let _ = signal_group(pid as i32, Signal::SIGCONT);
        }
        let st = match tokio::time::timeout(grace, child.wait()).await {
            Ok(st) => st,
            Err(_) => {
                if let Some(pid) = child.id() {
                    let _ = signal_group(pid as i32, Signal::SIGKILL);
                }
                child.wait().await
            }
        };
        if let Some(pid) = child.id().or(self.pid()) {
            // Whatever else is left in its group goes too.
            let _ = signal_group(pid as i32, Signal::SIGKILL);
        }
        if let Ok(st) = st {
            self.on_exit(&st);
        }
        self.emit(ServiceEventKind::Stopped);
    }

    /// Kill what runs now, synchronously (Drop path).
    /// No restart or start after this (the supervisor ends).
    pub fn kill_sync(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        *self.tx.lock().unwrap() = None;
        if let Some(pid) = self.pid() {
            let _ = signal_group(pid as i32, Signal::SIGCONT);
            let _ = signal_group(pid as i32, Signal::SIGKILL);
            self.state.remove_process(pid as i32);
        }
    }

    /// Hand the running child to the supervisor task.
    pub fn supervise(self: &Arc<Self>, child: Child) {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.tx.lock().unwrap() = Some(tx);
        tokio::spawn(supervise(self.clone(), Some(child), rx));
    }

    fn send(&self, cmd: Cmd) -> bool {
        match &*self.tx.lock().unwrap() {
            Some(tx) => tx.send(cmd).is_ok(),
            None => false,
        }
    }

    /// Stop it with `sig` (then SIGKILL after the grace) and keep it down (a `stop` fault).
    pub async fn stop(&self, sig: Signal) -> Result<(), ProcessError> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Cmd::Stop(sig, tx)) {
            return Err(ProcessError::NotSupervised(self.name.clone()));
        }
        rx.await.map_err(|_| ProcessError::SupervisorGone)
    }

    pub async fn start(&self) -> Result<u32, ProcessError> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Cmd::Start(tx)) {
            return Err(ProcessError::NotSupervised(self.name.clone()));
        }
        rx.await.map_err(|_| ProcessError::SupervisorGone)?
    }

    pub async fn restart(&self) -> Result<u32, ProcessError> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Cmd::Restart(tx)) {
            return Err(ProcessError::NotSupervised(self.name.clone()));
        }
        rx.await.map_err(|_| ProcessError::SupervisorGone)?
    }

    /// Stop it for good (end of run).
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Cmd::Shutdown(tx)) {
            let _ = rx.await;
        }
        *self.tx.lock().unwrap() = None;
    }
}

async fn wait_opt(child: &mut Option<Child>) -> Option<ExitStatus> {
    match child {
        Some(c) => c.wait().await.ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The supervisor: restarts on exit per the restart policy, obeys stop/start commands.
async fn supervise(
    me: Arc<ManagedProc>,
    mut child: Option<Child>,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
) {
    let policy = me.spec.restart.policy;
    let max = me.spec.restart.max.unwrap_or(5);
    let delay = me
        .spec
        .restart
        .delay
        .map(|d| d.as_duration())
        .unwrap_or(Duration::from_secs(1));
    let mut restarts = 0u32;
    let mut held = false;
    let mut restart_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            st = wait_opt(&mut child) => {
                child = None;
                let failed = match &st {
                    Some(st) => { me.on_exit(st); !st.success() }
                    None => { me.set_pid(None); true }
                };
                let wanted = !held && match policy {
                    RestartPolicy::No => false,
                    RestartPolicy::OnFailure => failed,
                    RestartPolicy::Always => true,
                };
                if wanted {
                    if restarts < max {
                        restarts += 1;
                        me.emit(ServiceEventKind::Restarting { attempt: restarts });
                        restart_at = Some(tokio::time::Instant::now() + delay);
                    } else {
                        me.events.notice(Level::Warn, format!(
                            "service `{}` exited and its restart limit ({max}) is reached; it stays down",
                            me.name
                        ));
                    }
                }
            }
            _ = sleep_opt(restart_at) => {
                restart_at = None;
                match me.spawn("restart (policy)") {
                    Ok(c) => child = Some(c),
                    Err(e) => me.events.notice(Level::Error, format!("service `{}`: restart failed: {e}", me.name)),
                }
            }
            cmd = rx.recv() => match cmd {
                None => {
                    if let Some(c) = child.take() { me.terminate(c, STOP_GRACE).await; }
                    return;
                }
                Some(Cmd::Stop(sig, reply)) => {
                    held = true;
                    restart_at = None;
                    if let Some(c) = child.take() { me.terminate_with(c, STOP_GRACE, sig).await; }
                    let _ = reply.send(());
                }
                Some(Cmd::Start(reply)) => {
                    held = false;
                    restart_at = None;
                    let r = match &child {
                        Some(c) => c.id().ok_or(ProcessError::NoPid),
                        None => me.spawn("start").map(|c| { let pid = c.id().unwrap_or(0); child = Some(c); pid }),
                    };
                    let _ = reply.send(r);
                }
                Some(Cmd::Restart(reply)) => {
                    restart_at = None;
                    held = false;
                    if let Some(c) = child.take() { me.terminate(c, STOP_GRACE).await; }
                    let r = me.spawn("restart").map(|c| { let pid = c.id().unwrap_or(0); child = Some(c); pid });
                    let _ = reply.send(r);
                }
                Some(Cmd::Shutdown(reply)) => {
                    if let Some(c) = child.take() { me.terminate(c, STOP_GRACE).await; }
                    let _ = reply.send(());
                    return;
                }
            }
        }
    }
}

/// An unmanaged service: its pid comes from its pid file, read at each use.
pub(crate) fn read_pid_file(path: &Path) -> Result<i32, ProcessError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProcessError::PidFileUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| ProcessError::PidFileGarbled(path.to_path_buf()))?;
    if pid <= 1 {
        return Err(ProcessError::PidFileBadPid {
            path: path.to_path_buf(),
            pid,
        });
    }
    if proc_state(pid).is_none_or(|s| s == 'Z') {
        return Err(ProcessError::PidFileStale {
            path: path.to_path_buf(),
            pid,
        });
    }
    Ok(pid)
}
