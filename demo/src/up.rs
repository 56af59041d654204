//! `gauntlet demo up`: the whole stack as local child processes.
//!
//! Children run in their own process group (a terminal's Ctrl-C reaches only this
//! supervisor, which then stops them in order: pipelines, api, redis) and get SIGTERM from
//! the kernel if the supervisor dies (PR_SET_PDEATHSIG), so none is left orphaned.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::redis_server::redis_command;
use crate::{Defect, Defects, DemoError, ProbeArgs, UpArgs};

struct Proc {
    name: &'static str,
    child: Child,
    exited: Option<ExitStatus>,
}

/// Children, stopped in reverse start order on drop (if `shutdown` was not reached).
#[derive(Default)]
struct Stack {
    procs: Vec<Proc>,
}

impl Stack {
    /// SIGTERM each child, newest first; SIGKILL whatever is left after a grace period.
    async fn shutdown(&mut self) {
        while let Some(mut p) = self.procs.pop() {
            if p.exited.is_some() {
                continue;
            }
            if let Some(pid) = p.child.id() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
            match tokio::time::timeout(Duration::from_secs(5), p.child.wait()).await {
                Ok(Ok(status)) => eprintln!("demo up: {} stopped ({status})", p.name),
                _ => {
                    eprintln!("demo up: {} did not stop within 5s; killing it", p.name);
                    let _ = p.child.start_kill();
                    let _ = p.child.wait().await;
                }
            }
        }
    }

    /// Logs children that exited since the last check; true when all have exited.
    fn reap(&mut self) -> bool {
        for p in &mut self.procs {
            if p.exited.is_none() {
                if let Ok(Some(status)) = p.child.try_wait() {
                    eprintln!("demo up: {} exited unexpectedly ({status})", p.name);
                    p.exited = Some(status);
                }
            }
        }
        self.procs.iter().all(|p| p.exited.is_some())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.start_kill();
        }
    }
}

/// Own process group, and SIGTERM when the parent dies. Must run on a thread that lives as
/// long as the supervisor: the death signal fires when the forking *thread* exits. `run`
/// is polled by `block_on` on the main thread, so spawning from it is safe.
fn guard_child(cmd: &mut Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: only async-signal-safe syscalls (prctl, getppid, setpgid) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("parent exited during spawn"));
            }
            nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
            Ok(())
        });
    }
    cmd.stdin(Stdio::null()).kill_on_drop(true);
}

fn spawn(stack: &mut Stack, name: &'static str, mut cmd: Command) -> Result<(), DemoError> {
    guard_child(&mut cmd);
    let child = cmd.spawn().map_err(|source| DemoError::Spawn {
        what: name.to_string(),
        source,
    })?;
    stack.procs.push(Proc {
        name,
        child,
        exited: None,
    });
    Ok(())
}

fn gauntlet(exe: &Path, args: &[String]) -> Command {
    let mut c = Command::new(exe);
    c.arg("demo").args(args);
    c
}

/// Waits until `check` succeeds, the newest child exits, the deadline passes or a signal comes.
async fn wait_ready<F, Fut>(
    stack: &mut Stack,
    stop: &CancellationToken,
    timeout: Duration,
    mut check: F,
) -> Result<bool, DemoError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let idx = stack.procs.len() - 1;
    let name = stack.procs[idx].name;
    let deadline = Instant::now() + timeout;
    loop {
        if stop.is_cancelled() {
            return Ok(false);
        }
        let last = match check().await {
            Ok(()) => return Ok(true),
            Err(e) => e,
        };
        if let Ok(Some(status)) = stack.procs[idx].child.try_wait() {
            stack.procs[idx].exited = Some(status);
            return Err(DemoError::NotHealthy {
                what: name.into(),
                secs: timeout.as_secs(),
                detail: format!(": it exited ({status}); see its log above"),
            });
        }
        if Instant::now() >= deadline {
            return Err(DemoError::NotHealthy {
                what: name.into(),
                secs: timeout.as_secs(),
                detail: format!(": last check: {last}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn redis_ping(url: &str) -> Result<(), String> {
    let fut = async {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut c = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .map_err(|_| "no answer within 2s".to_string())?
}

async fn http_ok(port: u16) -> Result<(), String> {
    match crate::http::get_status("127.0.0.1", port, "/health", Duration::from_secs(2)).await? {
        200 => Ok(()),
        s => Err(format!("/health answered {s}")),
    }
}

/// Starts the stack, waits for its health, runs until SIGINT/SIGTERM, stops it.
pub async fn run(args: UpArgs) -> Result<(), DemoError> {
    let defects = Defects::resolve(&args.defects)?;
    let base = args.base_port;
    if base == 0 || base > u16::MAX - 3 {
        return Err(DemoError::Invalid(format!(
            "--base-port must be between 1 and {}",
            u16::MAX - 3
        )));
    }
    let (api_port, pipe_port, standby_port, redis_port) = (base, base + 1, base + 2, base + 3);
    let dir: PathBuf = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("gauntlet-demo-{base}")));
    std::fs::create_dir_all(&dir).map_err(|source| DemoError::Dir {
        path: dir.clone(),
        source,
    })?;
    let exe = std::env::current_exe().map_err(|source| DemoError::Spawn {
        what: "gauntlet (own executable path)".into(),
        source,
    })?;
    let stop = crate::cancel_on_signal("demo up".into())?;
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let defect_args: Vec<String> = defects
        .iter()
        .flat_map(|d| ["--defect".to_string(), d.name().to_string()])
        .collect();

    let mut stack = Stack::default();
    let result = async {
        // redis-server logs to stdout; keep this command's stdout clean.
        let mut redis = Command::from(redis_command(
            &args.redis_server,
            "127.0.0.1",
            redis_port,
            &dir,
            &defects,
        )?);
        redis.stdout(Stdio::from(
            std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|source| DemoError::Spawn {
                    what: "redis-server".into(),
                    source,
                })?,
        ));
        spawn(&mut stack, "redis", redis)?;
        if !wait_ready(&mut stack, &stop, args.start_timeout, || {
            redis_ping(&redis_url)
        })
        .await?
        {
            return Ok(false);
        }

        let mut api_args: Vec<String> = vec![
            "api".into(),
            "--port".into(),
            api_port.to_string(),
            "--redis".into(),
            redis_url.clone(),
        ];
        api_args.extend(defect_args.iter().cloned());
        spawn(&mut stack, "api", gauntlet(&exe, &api_args))?;
        if !wait_ready(&mut stack, &stop, args.start_timeout, || http_ok(api_port)).await? {
            return Ok(false);
        }

        for (name, port, standby) in [
            ("pipeline", pipe_port, false),
            ("pipeline-standby", standby_port, true),
        ] {
            let mut a: Vec<String> = vec![
                "pipeline".into(),
                "--port".into(),
                port.to_string(),
                "--redis".into(),
                redis_url.clone(),
                "--instance-name".into(),
                name.into(),
            ];
            if standby {
                a.push("--standby".into());
            }
            a.extend(defect_args.iter().cloned());
            spawn(&mut stack, name, gauntlet(&exe, &a))?;
            if !wait_ready(&mut stack, &stop, args.start_timeout, || http_ok(port)).await? {
                return Ok(false);
            }
        }
        Ok::<bool, DemoError>(true)
    }
    .await;

    match result {
        Ok(true) => {
            eprintln!(
                "demo up: stack ready (defects: {}; data in {})\n  api               http://127.0.0.1:{api_port}  (/health /api/items /metrics /ws)\n  pipeline          http://127.0.0.1:{pipe_port}  (/health /metrics /sink)\n  pipeline-standby  http://127.0.0.1:{standby_port}{}\n  redis             {redis_url}  ({})\nCtrl-C stops everything.",
                defects.describe(),
                dir.display(),
                if defects.has(Defect::NoSingleInstance) {
                    "  (no lock: a duplicate that syncs too)"
                } else {
                    ""
                },
                if defects.has(Defect::RedisNoPersistence) {
                    "no persistence"
                } else {
                    "AOF, appendfsync always"
                },
            );
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {
                        if stack.reap() {
                            eprintln!("demo up: every component exited; stopping");
                            break;
                        }
                    }
                }
            }
            stack.shutdown().await;
            Ok(())
        }
        Ok(false) => {
            stack.shutdown().await;
            Ok(())
        }
        Err(e) => {
            stack.shutdown().await;
            Err(e)
        }
    }
}

/// `gauntlet demo probe`: one health check, Ok when healthy.
pub async fn probe(args: ProbeArgs) -> Result<(), DemoError> {
    let fail = |reason: String| DemoError::ProbeFailed {
        url: args.url.clone(),
        reason,
    };
    let url = url::Url::parse(&args.url).map_err(|e| fail(e.to_string()))?;
    match url.scheme() {
        "redis" => {
            let fut = redis_ping(&args.url);
            tokio::time::timeout(args.timeout, fut)
                .await
                .map_err(|_| fail(format!("no answer within {:?}", args.timeout)))?
                .map_err(fail)
        }
        "http" => {
            let host = url.host_str().ok_or_else(|| fail("no host".into()))?;
            let port = url.port_or_known_default().unwrap_or(80);
            let mut path = url.path().to_string();
            if let Some(q) = url.query() {
                path = format!("{path}?{q}");
            }
            match crate::http::get_status(host, port, &path, args.timeout)
                .await
                .map_err(fail)?
            {
                200 => Ok(()),
                s => Err(fail(format!("status {s}"))),
            }
        }
        other => Err(fail(format!(
            "unsupported scheme {other:?} (use http:// or redis://)"
        ))),
    }
}
