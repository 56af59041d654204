//! What faults do to a process-backend service: the [`Backend`] of a managed process
//! and of one found by its pid file, and the undos they hand back (resume a paused
//! process, start a stopped one, remove a duplicate).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use nix::sys::signal::Signal;
use tokio::sync::watch;

use crate::event::Level;

use super::{describe_status, read_pid_file, spawn_logged, ManagedProc, ProcessError, STOP_GRACE};
use crate::chaos::backend::{Backend, BackendError, Undo};
use crate::chaos::os::{proc_start_time, proc_state, signal, signal_group, wait_state};
use crate::chaos::state::{Pending, ProcRole};
use crate::chaos::stress::CgroupTarget;
use crate::chaos::{Service, ServicesInner};

impl Backend for Arc<ManagedProc> {
    fn instance<'a>(&'a self, _: &'a ServicesInner) -> BoxFuture<'a, Option<String>> {
        let pid = self.pid().map(|p| p.to_string());
        async move { pid }.boxed()
    }

    fn kill<'a>(
        &'a self,
        _: &'a ServicesInner,
        sig: Signal,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let r = self
            .running_pid()
            .and_then(|pid| Ok(signal_group(pid, sig)?));
        async move { r }.boxed()
    }

    fn restart<'a>(&'a self, _: &'a ServicesInner) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            ManagedProc::restart(self)
                .await
                .map(|_| ())
                .map_err(BackendError::Process)
        }
        .boxed()
    }

    fn stop<'a>(
        &'a self,
        _: &'a ServicesInner,
        sig: Signal,
    ) -> BoxFuture<'a, Result<Box<dyn Undo>, BackendError>> {
        async move {
            ManagedProc::stop(self, sig)
                .await
                .map_err(BackendError::Process)?;
            Ok(Box::new(StartManaged(self.clone())) as Box<dyn Undo>)
        }
        .boxed()
    }

    fn start<'a>(&'a self, _: &'a ServicesInner) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            ManagedProc::start(self)
                .await
                .map(|_| ())
                .map_err(BackendError::Process)
        }
        .boxed()
    }

    fn pause<'a>(
        &'a self,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<Box<dyn Undo>, BackendError>> {
        let pid = self.running_pid();
        async move { pause_pid(inner, pid?, true).await }.boxed()
    }

    fn duplicate<'a>(
        &'a self,
        inner: &'a ServicesInner,
        svc: &'a Service,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn Undo>, BackendError>> {
        let r = spawn_duplicate(inner, svc, self.cwd.as_deref(), tag);
        async move { r }.boxed()
    }

    fn cgroup<'a>(
        &'a self,
        _: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<Option<CgroupTarget>, BackendError>> {
        async { Ok(None) }.boxed()
    }
}

impl ManagedProc {
    fn running_pid(&self) -> Result<i32, BackendError> {
        self.pid()
            .map(|p| p as i32)
            .ok_or_else(|| BackendError::NotRunning(self.name.clone()))
    }
}

/// A process-backend service gauntlet did not start: its pid comes from its pid file,
/// read at each use.
pub(crate) struct UnmanagedProc {
    pub name: String,
    pub pid_file: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
}

impl UnmanagedProc {
    pub fn pid(&self) -> Option<i32> {
        self.pid_file.as_deref().and_then(|p| read_pid_file(p).ok())
    }

    fn running_pid(&self) -> Result<i32, BackendError> {
        let pf = self
            .pid_file
            .as_deref()
            .ok_or_else(|| BackendError::NoPidFile(self.name.clone()))?;
        read_pid_file(pf).map_err(BackendError::Process)
    }

    fn not_managed<T>(&self, op: &'static str) -> Result<T, BackendError> {
        Err(BackendError::NotManaged {
            op,
            service: self.name.clone(),
        })
    }
}

impl Backend for UnmanagedProc {
    fn instance<'a>(&'a self, _: &'a ServicesInner) -> BoxFuture<'a, Option<String>> {
        let pid = self.pid().map(|p| p.to_string());
        async move { pid }.boxed()
    }

    fn kill<'a>(
        &'a self,
        _: &'a ServicesInner,
        sig: Signal,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let r = self
            .running_pid()
            .and_then(|pid| Ok(crate::chaos::os::signal_pid(pid, sig)?));
        async move { r }.boxed()
    }

    fn restart<'a>(&'a self, _: &'a ServicesInner) -> BoxFuture<'a, Result<(), BackendError>> {
        let r = self.not_managed("restart");
        async move { r }.boxed()
    }

    fn stop<'a>(
        &'a self,
        _: &'a ServicesInner,
        _: Signal,
    ) -> BoxFuture<'a, Result<Box<dyn Undo>, BackendError>> {
        let r = self.not_managed("stop");
        async move { r }.boxed()
    }

    fn start<'a>(&'a self, _: &'a ServicesInner) -> BoxFuture<'a, Result<(), BackendError>> {
        let r = self.not_managed("start");
        async move { r }.boxed()
    }

    fn pause<'a>(
        &'a self,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<Box<dyn Undo>, BackendError>> {
        let pid = self.running_pid();
        async move { pause_pid(inner, pid?, false).await }.boxed()
    }

    fn duplicate<'a>(
        &'a self,
        inner: &'a ServicesInner,
        svc: &'a Service,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn Undo>, BackendError>> {
        let r = spawn_duplicate(inner, svc, self.cwd.as_deref(), tag);
        async move { r }.boxed()
    }

    fn cgroup<'a>(
        &'a self,
        _: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<Option<CgroupTarget>, BackendError>> {
        async { Ok(None) }.boxed()
    }
}

/// Undo of a `stop` on a managed service: start it again.
struct StartManaged(Arc<ManagedProc>);

impl Undo for StartManaged {
    fn undo<'a>(self: Box<Self>, _: &'a ServicesInner) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            ManagedProc::start(&self.0)
                .await
                .map(|_| ())
                .map_err(BackendError::Process)
        }
        .boxed()
    }

    /// Nothing to start on the panic path: everything is being killed.
    fn undo_blocking(self: Box<Self>, _: &ServicesInner) {}
}

/// SIGSTOP `pid` (its group when `group`) and wait until the kernel says it stopped.
async fn pause_pid(
    inner: &ServicesInner,
    pid: i32,
    group: bool,
) -> Result<Box<dyn Undo>, BackendError> {
    let pending = Pending::PausedProcess {
        pid,
        start_time: proc_start_time(pid),
        group,
    };
    // Recorded before the signal: a crash right after still gets undone; unrecorded, it
    // does not happen.
    inner.state.add_pending(pending.clone())?;
    if let Err(e) = signal(pid, group, Signal::SIGSTOP) {
        inner.state.remove_pending(&pending);
        return Err(e.into());
    }
    wait_state(pid, |s| s == Some('T') || s.is_none()).await;
    Ok(Box::new(Resume {
        pid,
        group,
        pending,
    }))
}

/// Undo of a pause: SIGCONT (to the group when `group`).
struct Resume {
    pid: i32,
    group: bool,
    pending: Pending,
}

impl Resume {
    /// It is no longer pending either way.
    fn send(&self, inner: &ServicesInner) -> Result<(), BackendError> {
        let r = signal(self.pid, self.group, Signal::SIGCONT);
        inner.state.remove_pending(&self.pending);
        Ok(r?)
    }
}

impl Undo for Resume {
    fn undo<'a>(
        self: Box<Self>,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            let r = self.send(inner);
            wait_state(self.pid, |s| s != Some('T')).await;
            // Gone since (killed meanwhile): nothing is paused any more.
            match r {
                Err(_) if proc_state(self.pid).is_none() => Ok(()),
                r => r,
            }
        }
        .boxed()
    }

    fn undo_blocking(self: Box<Self>, inner: &ServicesInner) {
        let _ = self.send(inner);
    }
}

/// A duplicate process: its own process group, watched by a task that reaps it.
struct DupProc {
    pid: i32,
    exited: watch::Receiver<bool>,
}

impl Undo for DupProc {
    fn undo<'a>(
        self: Box<Self>,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            let mut exited = self.exited.clone();
            if !*exited.borrow() {
                let _ = signal_group(self.pid, Signal::SIGTERM);
                let _ = signal_group(self.pid, Signal::SIGCONT);
                let ok = tokio::time::timeout(STOP_GRACE, exited.wait_for(|e| *e))
                    .await
                    .is_ok();
                if !ok {
                    let _ = signal_group(self.pid, Signal::SIGKILL);
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), exited.wait_for(|e| *e)).await;
                }
            }
            // Anything it started in its group goes too.
            let _ = signal_group(self.pid, Signal::SIGKILL);
            inner.state.remove_process(self.pid);
            Ok(())
        }
        .boxed()
    }

    fn undo_blocking(self: Box<Self>, inner: &ServicesInner) {
        let _ = signal_group(self.pid, Signal::SIGCONT);
        let _ = signal_group(self.pid, Signal::SIGKILL);
        inner.state.remove_process(self.pid);
    }
}

/// A second instance of a process-backend service: same command, env and folder.
fn spawn_duplicate(
    inner: &ServicesInner,
    svc: &Service,
    cwd: Option<&Path>,
    tag: &str,
) -> Result<Box<dyn Undo>, BackendError> {
    let argv = svc
        .spec
        .command
        .as_ref()
        .ok_or_else(|| BackendError::NoCommand(svc.name.clone()))?;
    let log = inner
        .logs_dir
        .join(format!("{}.duplicate-{tag}.log", svc.name));
    // Its pid is known only once it runs: prove first that it can be recorded.
    inner.state.check()?;
    let mut child =
        spawn_logged(argv, &svc.spec.env, cwd, &log, "duplicate").map_err(BackendError::Process)?;
    let pid = child.id().ok_or(ProcessError::ExitedAtOnce("duplicate"))? as i32;
    if let Err(e) = inner.state.add_process(pid, ProcRole::Duplicate, &svc.name) {
        let _ = signal_group(pid, Signal::SIGKILL);
        return Err(e.into());
    }
    let (tx, rx) = watch::channel(false);
    let events = inner.events.clone();
    let name = svc.name.clone();
    let started = Instant::now();
    tokio::spawn(async move {
        let st = child.wait().await;
        let _ = tx.send(true);
        if let Ok(st) = st {
            events.notice(
                Level::Info,
                format!(
                    "duplicate of `{name}` (pid {pid}) {} after {:.1}s; log: {}",
                    describe_status(&st),
                    started.elapsed().as_secs_f64(),
                    log.display()
                ),
            );
        }
    });
    Ok(Box::new(DupProc { pid, exited: rx }))
}
