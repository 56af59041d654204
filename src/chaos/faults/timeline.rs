//! The timeline: each `[[faults]]` entry (and each of its `every`/`times` repetitions)
//! runs as its own task: wait for its time (from load start), pick its target, apply,
//! record the undo in the ledger, wait its duration, undo. Tasks are detached from
//! `run_timeline`'s future, so an apply in progress is never cut in half; `undo_all`
//! stops them, then undoes what the ledger still holds in reverse order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;
use rand::SeedableRng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::event::{EventSink, FaultState, Level};
use crate::scenario::model::{FaultSpec, OnFaultError};
use crate::scenario::Plan;

use super::ledger::{undo_all_blocking, Entry};
use super::recovery::wait_recovered;
use super::{apply, emit, emit_at, kill, recovery, Applied, Cx, FaultError, FaultInfo, Recovery};
use crate::chaos::{ChaosError, Services, ServicesInner};

/// At the end of a run, how long recoveries still in progress are waited for.
pub const RECOVERY_GRACE: Duration = Duration::from_secs(5);

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
                faults: plan.faults.clone(),
                seed: plan.seed,
                on_fault_error: plan.on_fault_error,
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
            let c = spec.common();
            let times = c.times.unwrap_or(1).max(1);
            let every = c.every.map(|d| d.as_duration()).unwrap_or_else(|| {
                spec.duration().map(|d| d.as_duration()).unwrap_or_default()
                    + Duration::from_secs(1)
            });
            for rep in 0..times {
                let at = load_start + c.at.as_duration() + every * rep;
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
        let spec = self
            .ci
            .faults
            .get(fault)
            .ok_or(ChaosError::NoSuchFault(fault))?;
        let info = self.ci.info(fault, rep, spec);
        match self.ci.apply_one(&info, spec).await {
            Ok(id) => Ok(id),
            Err(e) => {
                emit(
                    &self.ci.events,
                    &info,
                    FaultState::Failed {
                        reason: e.to_string(),
                        fatal: false,
                    },
                );
                Err(ChaosError::Fault {
                    name: info.name,
                    source: e,
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
            undo_all_blocking(&self.ci.services);
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
                .common()
                .name
                .map(str::to_string)
                .unwrap_or_else(|| format!("{} {}", spec.kind().as_str(), target)),
            kind: spec.kind(),
            target,
        }
    }

    /// The fault's target: `target`, or a pick among `targets` that follows the seed.
    fn pick_target(&self, idx: usize, rep: u32, spec: &FaultSpec) -> String {
        let c = spec.common();
        if let Some(t) = c.target {
            return t.to_string();
        }
        if !c.targets.is_empty() {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
                self.seed
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add((idx as u64) << 32 | rep as u64),
            );
            return c.targets.choose(&mut rng).cloned().unwrap_or_default();
        }
        match spec {
            // Shown in reports: without user-info.
            FaultSpec::LeakWebsockets(l) => l
                .url
                .as_deref()
                .map(|u| crate::units::redact_userinfo(u).into_owned())
                .unwrap_or_default(),
            _ => String::new(),
        }
    }

    fn on_error(&self, spec: &FaultSpec) -> OnFaultError {
        spec.common().on_error.unwrap_or(self.on_fault_error)
    }

    /// Apply one fault: its undo goes to the ledger (the id is returned), a crash gets
    /// its recovery watched from now.
    async fn apply_one(
        &self,
        info: &FaultInfo,
        spec: &FaultSpec,
    ) -> Result<Option<u64>, FaultError> {
        let cx = Cx {
            inner: &self.services,
            info,
        };
        let applied = apply(spec, &cx).await?;
        let applied_at = Instant::now();
        // Recovery is timed from this same instant, so recovered_at - applied_at is
        // exactly recovery_s in every report.
        emit_at(
            &self.events,
            info,
            FaultState::Applied,
            self.events.at(applied_at),
        );
        let recovery = recovery(info.kind);
        Ok(match applied {
            Applied::Instant { instance_before } => {
                if recovery == Recovery::FromApply {
                    self.watch_recovery(info, applied_at, true, instance_before);
                }
                None
            }
            Applied::InForce(undo) => Some(self.services.ledger.push(Entry {
                info: info.clone(),
                undo,
                recover_after_undo: recovery == Recovery::FromUndo,
            })),
        })
    }

    async fn undo_entry(&self, e: Entry) -> Result<(), ChaosError> {
        let info = e.info.clone();
        match e.undo.undo(&self.services).await {
            Ok(()) => {
                let undone_at = Instant::now();
                emit_at(
                    &self.events,
                    &info,
                    FaultState::Undone,
                    self.events.at(undone_at),
                );
                if e.recover_after_undo {
                    self.watch_recovery(&info, undone_at, false, None);
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
                Err(ChaosError::Undo {
                    name: info.name,
                    source: reason,
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
                    emit_at(&events, &info, FaultState::Recovered { recovery_s: d.as_secs_f64() }, events.at(from + d));
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
    let ledger_id = match ci.apply_one(&info, spec).await {
        Ok(id) => id,
        Err(e) => {
            let fatal = ci.on_error(spec) == OnFaultError::Fail;
            emit(
                &ci.events,
                &info,
                FaultState::Failed {
                    reason: e.to_string(),
                    fatal,
                },
            );
            return if fatal {
                Err(ChaosError::Fault {
                    name: info.name,
                    source: e,
                })
            } else {
                Ok(())
            };
        }
    };
    // kill with restart_after: gauntlet brings the service back itself.
    if let FaultSpec::Kill(k) = spec {
        if let Some(after) = k.restart_after {
            tokio::select! {
                _ = tokio::time::sleep(after.as_duration()) => {}
                _ = ci.stop.cancelled() => return Ok(()),
            }
            if let Err(e) = kill::start_again(&ci.services, &info).await {
                ci.events.notice(
                    Level::Error,
                    format!("fault `{}`: restart after the kill failed: {e}", info.name),
                );
            }
        }
    }
    let Some(id) = ledger_id else {
        return Ok(());
    };
    let Some(d) = spec.in_force_for() else {
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
