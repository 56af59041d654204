//! Faults on the timeline, and the ledger that undoes every one of them.
//!
//! Each `[[faults]]` entry (and each of its `every`/`times` repetitions) runs as its own
//! task: wait for its time (from load start), pick its target, apply, record the undo in
//! the ledger, wait its duration, undo. Tasks are detached from `run_timeline`'s future,
//! so an apply in progress is never cut in half; `undo_all` stops them, then undoes what
//! the ledger still holds in reverse order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::event::{EventSink, FaultEvent, FaultState, Level, RunEvent};
use crate::scenario::model::{FaultKind, FaultSpec, OnFaultError};
use crate::scenario::Plan;

use super::health::{Health, RECOVERY_PROBE_EVERY, RECOVERY_STREAK};
use super::process::{self, signal_group, signal_pid, STOP_GRACE};
use super::proxy::{parse_size, Proxy, Toxic};
use super::state::{Pending, ProcRole};
use super::stress::StressProcs;
use super::wsleak::WsLeak;
use super::{ChaosError, Control, Service, Services, ServicesInner};

/// At the end of a run, how long recoveries still in progress are waited for.
pub const RECOVERY_GRACE: Duration = Duration::from_secs(5);

/// Which fault (and repetition) an event or ledger entry belongs to.
#[derive(Debug, Clone)]
pub(crate) struct FaultInfo {
    pub fault: usize,
    pub rep: u32,
    pub name: String,
    pub kind: FaultKind,
    pub target: String,
}

fn emit(events: &EventSink, info: &FaultInfo, state: FaultState) {
    events.send(RunEvent::Fault(FaultEvent {
        at: events.now(),
        fault: info.fault,
        repetition: info.rep,
        name: info.name.clone(),
        kind: info.kind,
        target: info.target.clone(),
        state,
    }));
}

// ----- the ledger -----------------------------------------------------------------

/// How to undo one applied fault.
pub(crate) enum Undo {
    /// SIGCONT a paused process (its group when `group`).
    Resume {
        pid: i32,
        group: bool,
        pending: Pending,
    },
    /// Start a managed service a `stop` fault stopped.
    StartService(Arc<Service>),
    /// Start containers a `stop` fault stopped.
    StartContainers(Vec<String>),
    UnpauseContainers(Vec<String>),
    KillDuplicate(DupProc),
    RemoveContainers(Vec<String>),
    KillStress(StressProcs),
    Toxic {
        proxy: Arc<Proxy>,
        id: u64,
    },
    Websockets(WsLeak),
}

pub(crate) struct Entry {
    pub info: FaultInfo,
    pub undo: Undo,
    /// Start a recovery watch when it is undone (stalls).
    pub recover_after_undo: bool,
}

#[derive(Default)]
pub(crate) struct Ledger {
    inner: Mutex<(u64, BTreeMap<u64, Entry>)>,
}

impl Ledger {
    fn push(&self, e: Entry) -> u64 {
        let mut g = self.inner.lock().unwrap();
        g.0 += 1;
        let id = g.0;
        g.1.insert(id, e);
        id
    }

    fn take(&self, id: u64) -> Option<Entry> {
        self.inner.lock().unwrap().1.remove(&id)
    }

    /// The newest entry (undo goes in reverse order).
    fn pop_last(&self) -> Option<Entry> {
        self.inner.lock().unwrap().1.pop_last().map(|(_, e)| e)
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().1.len()
    }
}

/// A duplicate process: its own process group, watched by a task that reaps it.
pub(crate) struct DupProc {
    pub pid: i32,
    exited: watch::Receiver<bool>,
}

impl DupProc {
    fn alive(&self) -> bool {
        !*self.exited.borrow()
    }

    async fn stop(mut self, inner: &ServicesInner) {
        if self.alive() {
            let _ = signal_group(self.pid, Signal::SIGTERM);
            let _ = signal_group(self.pid, Signal::SIGCONT);
            let mut rx = self.exited.clone();
            let ok = tokio::time::timeout(STOP_GRACE, rx.wait_for(|e| *e))
                .await
                .is_ok();
            if !ok {
                let _ = signal_group(self.pid, Signal::SIGKILL);
                let _ = tokio::time::timeout(Duration::from_secs(2), self.exited.wait_for(|e| *e))
                    .await;
            }
        }
        // Anything it started in its group goes too.
        let _ = signal_group(self.pid, Signal::SIGKILL);
        inner.state.remove_process(self.pid);
    }

    fn kill_sync(&self) {
        let _ = signal_group(self.pid, Signal::SIGCONT);
        let _ = signal_group(self.pid, Signal::SIGKILL);
    }
}

/// SIGCONT to a paused process (or its group); it is no longer pending either way.
fn resume(inner: &ServicesInner, pid: i32, group: bool, pending: &Pending) -> Result<(), String> {
    let r = if group {
        signal_group(pid, Signal::SIGCONT)
    } else {
        signal_pid(pid, Signal::SIGCONT)
    };
    inner.state.remove_pending(pending);
    r
}

impl Undo {
    async fn run(self, inner: &ServicesInner) -> Result<(), String> {
        match self {
            Undo::Resume {
                pid,
                group,
                pending,
            } => {
                let r = resume(inner, pid, group, &pending);
                wait_state(pid, |s| s != Some('T')).await;
                // Gone since (killed meanwhile): nothing is paused any more.
                match r {
                    Err(_) if process::proc_state(pid).is_none() => Ok(()),
                    r => r,
                }
            }
            Undo::StartService(svc) => match &svc.control {
                Control::Managed(m) => m.start().await.map(|_| ()),
                _ => Ok(()),
            },
            Undo::StartContainers(ids) => {
                let docker = inner.docker.as_ref().ok_or("no docker client")?;
                super::docker::start_containers(docker, inner, &ids).await
            }
            Undo::UnpauseContainers(ids) => {
                let docker = inner.docker.as_ref().ok_or("no docker client")?;
                super::docker::unpause_containers(docker, inner, &ids).await
            }
            Undo::KillDuplicate(d) => {
                d.stop(inner).await;
                Ok(())
            }
            Undo::RemoveContainers(ids) => {
                let docker = inner.docker.as_ref().ok_or("no docker client")?;
                super::docker::remove_containers(docker, inner, &ids).await
            }
            Undo::KillStress(s) => {
                let pids = s.pids().to_vec();
                tokio::task::spawn_blocking(move || s.stop())
                    .await
                    .map_err(|e| e.to_string())?;
                for p in pids {
                    inner.state.remove_process(p);
                }
                Ok(())
            }
            Undo::Toxic { proxy, id } => {
                proxy.remove(id);
                Ok(())
            }
            Undo::Websockets(w) => {
                let (opened, _) = w.close();
                inner.events.notice(
                    Level::Info,
                    format!("leak_websockets: closed {opened} leaked connections"),
                );
                Ok(())
            }
        }
    }

    /// What can be undone without a runtime (panic path). Docker undos are collected.
    fn run_sync(self, inner: &ServicesInner, docker: &mut Vec<Undo>) {
        match self {
            Undo::Resume {
                pid,
                group,
                pending,
            } => {
                let _ = resume(inner, pid, group, &pending);
            }
            Undo::StartService(_) => {}
            Undo::KillDuplicate(d) => {
                d.kill_sync();
                inner.state.remove_process(d.pid);
            }
            Undo::KillStress(s) => {
                for p in s.pids() {
                    inner.state.remove_process(*p);
                }
                s.stop();
            }
            Undo::Toxic { proxy, id } => proxy.remove(id),
            Undo::Websockets(w) => {
                w.close();
            }
            u @ (Undo::StartContainers(_)
            | Undo::UnpauseContainers(_)
            | Undo::RemoveContainers(_)) => docker.push(u),
        }
    }

    pub(crate) fn docker_parts(&self) -> Option<(&'static str, &[String])> {
        match self {
            Undo::StartContainers(ids) => Some(("start", ids)),
            Undo::UnpauseContainers(ids) => Some(("unpause", ids)),
            Undo::RemoveContainers(ids) => Some(("remove", ids)),
            _ => None,
        }
    }
}

/// Undo everything the ledger holds, newest first.
pub(crate) async fn undo_ledger(inner: &ServicesInner) {
    while let Some(e) = inner.ledger.pop_last() {
        match e.undo.run(inner).await {
            Ok(()) => emit(&inner.events, &e.info, FaultState::Undone),
            Err(reason) => emit(
                &inner.events,
                &e.info,
                FaultState::Failed {
                    reason: format!("undo failed: {reason}"),
                    fatal: false,
                },
            ),
        }
    }
}

/// Panic path: undo synchronously what can be; docker undos on a thread of their own.
pub(crate) fn undo_ledger_sync(inner: &ServicesInner) {
    let mut docker = vec![];
    while let Some(e) = inner.ledger.pop_last() {
        e.undo.run_sync(inner, &mut docker);
    }
    if !docker.is_empty() {
        super::docker::undo_sync(inner, docker);
    }
}

// ----- the timeline ---------------------------------------------------------------

/// The fault scheduler of one run.
pub struct Chaos {
    ci: Arc<ChaosInner>,
}

struct ChaosInner {
    services: Arc<ServicesInner>,
    faults: Vec<FaultSpec>,
    seed: u64,
    on_fault_error: OnFaultError,
    events: EventSink,
    /// The run's interrupt (first SIGINT/SIGTERM): no new faults after it.
    cancel: CancellationToken,
    /// Set by `undo_all`: fault tasks stop waiting and leave their undo to the ledger.
    stop: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    recoveries: Mutex<Vec<JoinHandle<()>>>,
    recovery_stop: CancellationToken,
    undone: AtomicBool,
}

/// What an apply did.
struct Applied {
    /// Ledger id when there is something to undo.
    ledger: Option<u64>,
    /// Recovery is measured from the apply (crash), not from the undo.
    recover_from_apply: bool,
    /// The service instance (pid) before the fault, for crash recovery.
    instance_before: Option<String>,
}

impl Chaos {
    /// `cancel` is the run's interrupt token: once cancelled, no new fault is applied.
    pub fn new(
        plan: &Plan,
        services: &Services,
        events: EventSink,
        cancel: CancellationToken,
    ) -> Chaos {
        Chaos {
            ci: Arc::new(ChaosInner {
                services: services.inner.clone(),
                faults: plan.scenario.faults.clone(),
                seed: plan.seed,
                on_fault_error: plan.scenario.on_fault_error,
                events,
                cancel,
                stop: CancellationToken::new(),
                tasks: Mutex::new(vec![]),
                recoveries: Mutex::new(vec![]),
                recovery_stop: CancellationToken::new(),
                undone: AtomicBool::new(false),
            }),
        }
    }

    /// Run the fault timeline, times taken from `load_start`. Returns when every fault
    /// was applied and undone (faults without a duration stay until `undo_all`), or at
    /// the first fault that could not be applied when the scenario says that fails the
    /// run (exit 3). Cancel-safe: dropping this future leaves the faults to `undo_all`.
    pub async fn run_timeline(&self, load_start: Instant) -> Result<(), ChaosError> {
        let load_start = tokio::time::Instant::from_std(load_start);
        let (tx, mut rx) = mpsc::unbounded_channel::<Result<(), ChaosError>>();
        let mut n = 0usize;
        for (idx, spec) in self.ci.faults.iter().enumerate() {
            let times = spec.times.unwrap_or(1).max(1);
            let every = spec.every.map(|d| d.as_duration()).unwrap_or_else(|| {
                spec.duration.map(|d| d.as_duration()).unwrap_or_default() + Duration::from_secs(1)
            });
            for rep in 0..times {
                let at = load_start + spec.at.as_duration() + every * rep;
                let ci = self.ci.clone();
                let tx = tx.clone();
                n += 1;
                let h = tokio::spawn(async move {
                    let r = fault_task(ci, idx, rep, at).await;
                    let _ = tx.send(r);
                });
                self.ci.tasks.lock().unwrap().push(h);
            }
        }
        drop(tx);
        for _ in 0..n {
            match rx.recv().await {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        Ok(())
    }

    /// Apply one fault of the plan now (tests and tools); its undo goes to the ledger.
    /// Returns the ledger id (None for instant faults: kill, restart).
    pub async fn apply_now(&self, fault: usize, rep: u32) -> Result<Option<u64>, ChaosError> {
        let spec = self.ci.faults.get(fault).ok_or_else(|| ChaosError::Fault {
            name: format!("#{fault}"),
            message: "no such fault in the plan".into(),
        })?;
        let info = self.ci.info(fault, rep, spec);
        match apply(&self.ci, &info, spec).await {
            Ok(a) => {
                emit(&self.ci.events, &info, FaultState::Applied);
                if a.recover_from_apply {
                    self.ci
                        .watch_recovery(&info, Instant::now(), true, a.instance_before);
                }
                Ok(a.ledger)
            }
            Err(message) => {
                emit(
                    &self.ci.events,
                    &info,
                    FaultState::Failed {
                        reason: message.clone(),
                        fatal: false,
                    },
                );
                Err(ChaosError::Fault {
                    name: info.name,
                    message,
                })
            }
        }
    }

    /// Undo one ledger entry now (tests and tools).
    pub async fn undo_now(&self, id: u64) -> Result<(), ChaosError> {
        let Some(e) = self.ci.services.ledger.take(id) else {
            return Ok(());
        };
        self.ci.undo_entry(e).await
    }

    /// Faults in force.
    pub fn in_force(&self) -> usize {
        self.ci.services.ledger.len()
    }

    /// Stop the timeline and undo every fault still in force, newest first. Recovery
    /// watches still going are ended (a notice says which service had not recovered).
    pub async fn undo_all(&self) {
        self.ci.stop.cancel();
        let tasks: Vec<_> = std::mem::take(&mut *self.ci.tasks.lock().unwrap());
        for t in tasks {
            let _ = t.await;
        }
        let interrupted = self.ci.cancel.is_cancelled();
        while let Some(e) = self.ci.services.ledger.pop_last() {
            // On a normal end a stall undone now still gets its recovery measured.
            let e = Entry {
                recover_after_undo: e.recover_after_undo && !interrupted,
                ..e
            };
            let _ = self.ci.undo_entry(e).await;
        }
        if !interrupted {
            // Give recoveries in progress a moment to finish.
            let recs: Vec<_> = std::mem::take(&mut *self.ci.recoveries.lock().unwrap());
            let pending: Vec<_> = recs.into_iter().filter(|h| !h.is_finished()).collect();
            let wait = futures::future::join_all(pending);
            tokio::pin!(wait);
            tokio::select! {
                _ = &mut wait => {}
                _ = tokio::time::sleep(RECOVERY_GRACE) => {
                    self.ci.recovery_stop.cancel();
                    wait.await;
                }
                _ = self.ci.cancel.cancelled() => {
                    self.ci.recovery_stop.cancel();
                    wait.await;
                }
            }
        }
        self.ci.recovery_stop.cancel();
        let recs: Vec<_> = std::mem::take(&mut *self.ci.recoveries.lock().unwrap());
        for r in recs {
            let _ = r.await;
        }
        self.ci.undone.store(true, Ordering::SeqCst);
    }

    /// Wait (at most `max`) for the recovery watches in progress to end.
    pub async fn wait_recoveries(&self, max: Duration) {
        let recs: Vec<_> = std::mem::take(&mut *self.ci.recoveries.lock().unwrap());
        let _ = tokio::time::timeout(max, futures::future::join_all(recs)).await;
    }
}

impl Drop for Chaos {
    fn drop(&mut self) {
        self.ci.stop.cancel();
        self.ci.recovery_stop.cancel();
        if !self.ci.undone.load(Ordering::SeqCst) && self.ci.services.ledger.len() > 0 {
            undo_ledger_sync(&self.ci.services);
        }
    }
}

impl ChaosInner {
    fn info(&self, idx: usize, rep: u32, spec: &FaultSpec) -> FaultInfo {
        let target = self.pick_target(idx, rep, spec);
        FaultInfo {
            fault: idx,
            rep,
            name: spec
                .name
                .clone()
                .unwrap_or_else(|| format!("{} {}", spec.kind.as_str(), target)),
            kind: spec.kind,
            target,
        }
    }

    /// The fault's target: `target`, or a pick among `targets` that follows the seed.
    fn pick_target(&self, idx: usize, rep: u32, spec: &FaultSpec) -> String {
        if let Some(t) = &spec.target {
            return t.clone();
        }
        if !spec.targets.is_empty() {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
                self.seed
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add((idx as u64) << 32 | rep as u64),
            );
            return spec.targets.choose(&mut rng).cloned().unwrap_or_default();
        }
        match (&spec.kind, &spec.url) {
            (FaultKind::LeakWebsockets, Some(u)) => u.clone(),
            _ => String::new(),
        }
    }

    fn on_error(&self, spec: &FaultSpec) -> OnFaultError {
        spec.on_error.unwrap_or(self.on_fault_error)
    }

    async fn undo_entry(&self, e: Entry) -> Result<(), ChaosError> {
        let info = e.info.clone();
        match e.undo.run(&self.services).await {
            Ok(()) => {
                emit(&self.events, &info, FaultState::Undone);
                if e.recover_after_undo {
                    self.watch_recovery(&info, Instant::now(), false, None);
                }
                Ok(())
            }
            Err(reason) => {
                emit(
                    &self.events,
                    &info,
                    FaultState::Failed {
                        reason: format!("undo failed: {reason}"),
                        fatal: false,
                    },
                );
                Err(ChaosError::Fault {
                    name: info.name,
                    message: format!("undo failed: {reason}"),
                })
            }
        }
    }

    /// Measure the time until the target is healthy again (2 healthy probes in a row).
    fn watch_recovery(
        &self,
        info: &FaultInfo,
        from: Instant,
        crash: bool,
        instance_before: Option<String>,
    ) {
        let Some(svc) = self.services.service(&info.target) else {
            return;
        };
        let Some(health) = svc.health.clone() else {
            return;
        };
        let info = info.clone();
        let events = self.events.clone();
        let inner = self.services.clone();
        let stop = self.recovery_stop.clone();
        let h = tokio::spawn(async move {
            tokio::select! {
                d = wait_recovered(&health, from, crash, &svc, &inner, instance_before.as_deref()) => {
                    emit(&events, &info, FaultState::Recovered { recovery_s: d.as_secs_f64() });
                }
                _ = stop.cancelled() => {
                    events.notice(Level::Warn, format!(
                        "fault `{}`: service `{}` had not recovered when the run ended ({:.1}s after the {})",
                        info.name, info.target, from.elapsed().as_secs_f64(),
                        if crash { "fault" } else { "undo" }
                    ));
                }
            }
        });
        self.recoveries.lock().unwrap().push(h);
    }
}

async fn fault_task(
    ci: Arc<ChaosInner>,
    idx: usize,
    rep: u32,
    at: tokio::time::Instant,
) -> Result<(), ChaosError> {
    tokio::select! {
        _ = tokio::time::sleep_until(at) => {}
        _ = ci.stop.cancelled() => return Ok(()),
        _ = ci.cancel.cancelled() => return Ok(()),
    }
    if ci.stop.is_cancelled() || ci.cancel.is_cancelled() {
        return Ok(());
    }
    let spec = &ci.faults[idx];
    let info = ci.info(idx, rep, spec);
    let applied = match apply(&ci, &info, spec).await {
        Ok(a) => a,
        Err(reason) => {
            let fatal = ci.on_error(spec) == OnFaultError::Fail;
            emit(
                &ci.events,
                &info,
                FaultState::Failed {
                    reason: reason.clone(),
                    fatal,
                },
            );
            return if fatal {
                Err(ChaosError::Fault {
                    name: info.name,
                    message: reason,
                })
            } else {
                Ok(())
            };
        }
    };
    let applied_at = Instant::now();
    emit(&ci.events, &info, FaultState::Applied);
    if applied.recover_from_apply {
        ci.watch_recovery(&info, applied_at, true, applied.instance_before.clone());
    }
    // kill with restart_after: gauntlet brings the service back itself.
    if spec.kind == FaultKind::Kill {
        if let Some(after) = spec.restart_after {
            tokio::select! {
                _ = tokio::time::sleep(after.as_duration()) => {}
                _ = ci.stop.cancelled() => return Ok(()),
            }
            if let Some(svc) = ci.services.service(&info.target) {
                if let Err(e) = start_again(&ci.services, &svc).await {
                    ci.events.notice(
                        Level::Error,
                        format!("fault `{}`: restart after the kill failed: {e}", info.name),
                    );
                }
            }
        }
    }
    let Some(id) = applied.ledger else {
        return Ok(());
    };
    // A stop comes back after `restart_after`; the timed kinds are undone after `duration`.
    let until = match spec.kind {
        FaultKind::Stop => spec.restart_after.or(spec.duration),
        _ => spec.duration,
    };
    let Some(d) = until else {
        return Ok(()); // in force until the end of the run
    };
    tokio::select! {
        _ = tokio::time::sleep(d.as_duration()) => {}
        _ = ci.stop.cancelled() => return Ok(()),
    }
    if let Some(e) = ci.services.ledger.take(id) {
        // An undo that fails is recorded; it does not end the run.
        let _ = ci.undo_entry(e).await;
    }
    Ok(())
}

async fn start_again(inner: &ServicesInner, svc: &Service) -> Result<(), String> {
    match &svc.control {
        Control::Managed(m) => m.start().await.map(|_| ()),
        Control::Docker(d) => {
            let docker = inner.docker.as_ref().ok_or("no docker client")?;
            super::docker::start_containers(docker, inner, &d.ids()).await
        }
        Control::Unmanaged { .. } => Err("gauntlet does not manage this service".into()),
    }
}

fn need_service(inner: &ServicesInner, info: &FaultInfo) -> Result<Arc<Service>, String> {
    if info.target.is_empty() {
        return Err("the fault names no `target`".into());
    }
    inner
        .service(&info.target)
        .ok_or_else(|| format!("no service named `{}` in this run", info.target))
}

/// The pid of a process-backend service now.
fn running_pid(svc: &Service) -> Result<(i32, bool), String> {
    match &svc.control {
        Control::Managed(m) => m
            .pid()
            .map(|p| (p as i32, true))
            .ok_or_else(|| format!("service `{}` is not running", svc.name)),
        Control::Unmanaged { pid_file, .. } => {
            let pf = pid_file
                .as_deref()
                .ok_or_else(|| format!("service `{}` has no `pid_file`", svc.name))?;
            process::read_pid_file(pf).map(|p| (p, false))
        }
        Control::Docker(_) => Err("not a process".into()),
    }
}

async fn apply(ci: &ChaosInner, info: &FaultInfo, spec: &FaultSpec) -> Result<Applied, String> {
    let inner = &*ci.services;
    let plain = |ledger: Option<u64>| Applied {
        ledger,
        recover_from_apply: false,
        instance_before: None,
    };
    let push = |undo: Undo, recover_after_undo: bool| {
        inner.ledger.push(Entry {
            info: info.clone(),
            undo,
            recover_after_undo,
        })
    };
    match spec.kind {
        FaultKind::Kill => {
            let svc = need_service(inner, info)?;
            let sig = process::parse_signal(spec.signal.as_deref().unwrap_or("SIGKILL"))?;
            let before = svc.instance(inner).await;
            match &svc.control {
                Control::Docker(d) => {
                    let docker = inner.docker.as_ref().ok_or("no docker client")?;
                    d.kill_main_process(docker, sig).await?;
                }
                _ => {
                    let (pid, group) = running_pid(&svc)?;
                    if group {
                        signal_group(pid, sig)?;
                    } else {
                        signal_pid(pid, sig)?;
                    }
                }
            }
            Ok(Applied {
                ledger: None,
                recover_from_apply: true,
                instance_before: before,
            })
        }
        FaultKind::Restart => {
            let svc = need_service(inner, info)?;
            let before = svc.instance(inner).await;
            match &svc.control {
                Control::Managed(m) => {
                    m.restart().await?;
                }
                Control::Docker(d) => {
                    let docker = inner.docker.as_ref().ok_or("no docker client")?;
                    d.restart(docker).await?;
                }
                Control::Unmanaged { .. } => {
                    return Err(format!(
                        "`restart` needs a service gauntlet manages; `{}` is `managed = false`",
                        svc.name
                    ))
                }
            }
            Ok(Applied {
                ledger: None,
                recover_from_apply: true,
                instance_before: before,
            })
        }
        FaultKind::Stop => {
            let svc = need_service(inner, info)?;
            let sig = process::parse_signal(spec.signal.as_deref().unwrap_or("SIGTERM"))?;
            match &svc.control {
                Control::Managed(m) => {
                    m.stop(sig).await?;
                    Ok(plain(Some(push(Undo::StartService(svc.clone()), true))))
                }
                Control::Docker(d) => {
                    let docker = inner.docker.as_ref().ok_or("no docker client")?;
                    let ids = d.stop(docker, inner, sig).await?;
                    Ok(plain(Some(push(Undo::StartContainers(ids), true))))
                }
                Control::Unmanaged { .. } => Err(format!(
                    "`stop` needs a service gauntlet manages (it must start it again); `{}` is `managed = false`",
                    svc.name
                )),
            }
        }
        FaultKind::Pause => {
            let svc = need_service(inner, info)?;
            match &svc.control {
                Control::Docker(d) => {
                    let docker = inner.docker.as_ref().ok_or("no docker client")?;
                    let ids = d.pause(docker, inner).await?;
                    Ok(plain(Some(push(Undo::UnpauseContainers(ids), true))))
                }
                _ => {
                    let (pid, group) = running_pid(&svc)?;
                    let pending = Pending::PausedProcess {
                        pid,
                        start_time: process::proc_start_time(pid),
                        group,
                    };
                    // Recorded before the signal: a crash right after still gets undone.
                    inner.state.add_pending(pending.clone());
                    let r = if group {
                        signal_group(pid, Signal::SIGSTOP)
                    } else {
                        signal_pid(pid, Signal::SIGSTOP)
                    };
                    if let Err(e) = r {
                        inner.state.remove_pending(&pending);
                        return Err(e);
                    }
                    // Applied means stopped: wait until the kernel says so.
                    wait_state(pid, |s| s == Some('T') || s.is_none()).await;
                    Ok(plain(Some(push(
                        Undo::Resume {
                            pid,
                            group,
                            pending,
                        },
                        true,
                    ))))
                }
            }
        }
        FaultKind::Duplicate => {
            let svc = need_service(inner, info)?;
            match &svc.control {
                Control::Docker(d) => {
                    let docker = inner.docker.as_ref().ok_or("no docker client")?;
                    let ids = d
                        .duplicate(docker, inner, &format!("{}-{}", info.fault, info.rep))
                        .await?;
                    Ok(plain(Some(push(Undo::RemoveContainers(ids), false))))
                }
                Control::Managed(_) | Control::Unmanaged { .. } => {
                    let dup = spawn_duplicate(inner, &svc, info)?;
                    Ok(plain(Some(push(Undo::KillDuplicate(dup), false))))
                }
            }
        }
        FaultKind::LeakWebsockets => {
            let url = spec
                .url
                .as_deref()
                .ok_or("`leak_websockets` needs a `url` (ws://127.0.0.1:PORT/PATH)")?;
            let n = spec.connections.unwrap_or(100);
            let rate = spec.rate.unwrap_or(50.0);
            let leak =
                super::wsleak::start(url, n, rate, inner.events.clone(), info.name.clone()).await?;
            Ok(plain(Some(push(Undo::Websockets(leak), false))))
        }
        FaultKind::Network => {
            let svc = need_service(inner, info)?;
            let proxy = svc.proxy.clone().ok_or_else(|| {
                format!(
                    "service `{}` has no chaos proxy; give it `proxy = {{ listen = \"127.0.0.1:PORT\", upstream = \"127.0.0.1:PORT\" }}` and send traffic to `listen`",
                    svc.name
                )
            })?;
            let toxic = toxic_of(spec)?;
            let id = proxy.add(toxic);
            Ok(plain(Some(push(Undo::Toxic { proxy, id }, true))))
        }
        FaultKind::Cpu | FaultKind::Memory => {
            let svc = need_service(inner, info)?;
            let cgroup = match &svc.control {
                Control::Docker(d) => {
                    let docker = inner.docker.as_ref().ok_or("no docker client")?;
                    Some(d.cgroup(docker).await?)
                }
                _ => None,
            };
            let procs = if spec.kind == FaultKind::Cpu {
                super::stress::cpu(spec.workers.unwrap_or(1).max(1), cgroup.as_ref())?
            } else {
                let size = parse_size(spec.size.as_deref().unwrap_or("256MiB"))?;
                super::stress::memory(size, cgroup.as_ref())?
            };
            for p in procs.pids() {
                inner.state.add_process(*p, ProcRole::Stress, &svc.name);
            }
            Ok(plain(Some(push(Undo::KillStress(procs), true))))
        }
    }
}

fn toxic_of(spec: &FaultSpec) -> Result<Toxic, String> {
    let t = Toxic {
        latency: spec.latency.map(|d| d.as_duration()).unwrap_or_default(),
        jitter: spec.jitter.map(|d| d.as_duration()).unwrap_or_default(),
        drop_pct: spec.drop.unwrap_or(0.0).clamp(0.0, 100.0),
        reset: spec.reset.unwrap_or(false),
        bandwidth: spec.bandwidth.as_deref().map(parse_size).transpose()?,
        partition: spec.partition.unwrap_or(false),
    };
    if t == Toxic::default() {
        return Err(
            "a `network` fault needs one of latency, jitter, drop, reset, bandwidth, partition"
                .into(),
        );
    }
    Ok(t)
}

/// A second instance of a process-backend service: same command, env and folder.
fn spawn_duplicate(
    inner: &ServicesInner,
    svc: &Service,
    info: &FaultInfo,
) -> Result<DupProc, String> {
    let argv = svc.spec.command.as_ref().ok_or_else(|| {
        format!(
            "`duplicate` needs the service's `command`; `{}` has none",
            svc.name
        )
    })?;
    let cwd = match &svc.control {
        Control::Managed(m) => m.cwd.clone(),
        Control::Unmanaged { cwd, .. } => cwd.clone(),
        Control::Docker(_) => None,
    };
    let log = inner.logs_dir.join(format!(
        "{}.duplicate-{}-{}.log",
        svc.name, info.fault, info.rep
    ));
    let mut child = process::spawn_logged(argv, &svc.spec.env, cwd.as_deref(), &log, "duplicate")?;
    let pid = child.id().ok_or("the duplicate exited at once")? as i32;
    inner.state.add_process(pid, ProcRole::Duplicate, &svc.name);
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
                    process::describe_status(&st),
                    started.elapsed().as_secs_f64(),
                    log.display()
                ),
            );
        }
    });
    Ok(DupProc { pid, exited: rx })
}

/// Wait until the service is healthy again and stays so for [`RECOVERY_STREAK`] probes.
/// After a crash (`must_see_down`) a healthy probe only counts once the service was seen
/// down (a failed probe) or its instance changed (new pid): a probe answered by the
/// dying process must not count. Returns the time from `from` to the answer of the first
/// probe of the healthy streak.
async fn wait_recovered(
    health: &Health,
    from: Instant,
    must_see_down: bool,
    svc: &Service,
    inner: &ServicesInner,
    before: Option<&str>,
) -> Duration {
    let mut seen_down = !must_see_down;
    let mut streak_start: Option<Instant> = None;
    let mut streak = 0u32;
    let timeout = health.timeout.min(Duration::from_secs(2));
    loop {
        let ok = super::health::probe(&health.target, timeout).await.is_ok();
        let answered = Instant::now();
        if !ok {
            seen_down = true;
            streak = 0;
            streak_start = None;
        } else {
            if !seen_down {
                if let Some(before) = before {
                    if svc.instance(inner).await.as_deref() != Some(before) {
                        seen_down = true;
                    }
                }
            }
            if seen_down {
                if streak == 0 {
                    // When the healthy answer came (a probe may hang for a while).
                    streak_start = Some(answered);
                }
                streak += 1;
                if streak >= RECOVERY_STREAK {
                    return streak_start
                        .unwrap_or(answered)
                        .saturating_duration_since(from);
                }
            }
        }
        tokio::time::sleep(RECOVERY_PROBE_EVERY).await;
    }
}

/// Wait (at most 2s) until the process state satisfies `ok`.
async fn wait_state(pid: i32, ok: impl Fn(Option<char>) -> bool) {
    let start = Instant::now();
    while !ok(process::proc_state(pid)) && start.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
