//! Faults: one file per kind (how it is applied, how it is undone, what recovery means
//! for it; `stop`, `pause` and `duplicate` take the undo their backend hands back), the
//! ledger of faults in force, recovery watches and the timeline that schedules them.
//!
//! Adding a kind: its entry in `scenario::model::fault`'s `fault_kinds!` (and in
//! `FaultSpec::duration` if it lasts a `duration`), a file here implementing [`Fault`],
//! and its arm in [`apply`] and [`recovery`]. The parser and the validation need nothing.

mod cpu;
mod duplicate;
mod kill;
mod leak_websockets;
pub(crate) mod ledger;
mod memory;
mod network;
mod pause;
mod recovery;
mod restart;
mod stop;
mod timeline;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::event::{EventKind, EventSink, FaultEvent, FaultState};
use crate::scenario::model::{FaultKind, FaultSpec};

use super::backend::{Backend, BackendError, Undo};
use super::{Service, ServicesInner};

pub use recovery::{recovery, watches_recovery, Recovery};
pub use timeline::Chaos;

/// Why a fault could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("the fault names no `target`")]
    NoTarget,
    #[error("no service named `{0}` in this run")]
    UnknownService(String),
    #[error("service `{0}` has no chaos proxy; give it `proxy = {{ listen = \"127.0.0.1:PORT\", upstream = \"127.0.0.1:PORT\" }}` and send traffic to `listen`")]
    NoProxy(String),
    /// The fault's keys do not say what to do (validation normally catches it).
    #[error("{0}")]
    Incomplete(&'static str),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Websockets(#[from] super::wsleak::WsLeakError),
    /// A `memory` fault larger than the machine can give: it would bring the host (and
    /// gauntlet) down instead of pressing on the service.
    #[error("memory fault of {} but only {} is available on this machine (MemAvailable); ask for at most {}", crate::metric::format::bytes(*.asked as f64), crate::metric::format::bytes(*.available as f64), crate::metric::format::bytes(*.limit as f64))]
    MemoryTooLarge {
        asked: u64,
        available: u64,
        limit: u64,
    },
}

/// One fault kind: its spec struct, applied by the chaos engine.
pub(crate) trait Fault {
    fn apply(&self, cx: &Cx<'_>) -> impl Future<Output = Result<Applied, FaultError>> + Send;
}

/// What applying a fault left behind.
pub(crate) enum Applied {
    /// Over at once (a crash, a restart). The instance before it, to tell a new one.
    Instant { instance_before: Option<String> },
    /// In force until its undo runs.
    InForce(Box<dyn Undo>),
}

/// Which fault (and repetition) an event or ledger entry belongs to.
#[derive(Debug, Clone)]
pub(crate) struct FaultInfo {
    pub fault: usize,
    pub rep: u32,
    pub name: String,
    pub kind: FaultKind,
    pub target: String,
}

/// What an apply works with.
pub(crate) struct Cx<'a> {
    pub inner: &'a ServicesInner,
    pub info: &'a FaultInfo,
}

impl Cx<'_> {
    /// The target service.
    fn service(&self) -> Result<Arc<Service>, FaultError> {
        if self.info.target.is_empty() {
            return Err(FaultError::NoTarget);
        }
        self.inner
            .service(&self.info.target)
            .ok_or_else(|| FaultError::UnknownService(self.info.target.clone()))
    }
}

impl Service {
    pub(crate) fn backend(&self) -> &dyn Backend {
        self.control.backend()
    }
}

/// Apply one fault.
pub(crate) async fn apply(spec: &FaultSpec, cx: &Cx<'_>) -> Result<Applied, FaultError> {
    match spec {
        FaultSpec::Kill(f) => f.apply(cx).await,
        FaultSpec::Stop(f) => f.apply(cx).await,
        FaultSpec::Restart(f) => f.apply(cx).await,
        FaultSpec::Pause(f) => f.apply(cx).await,
        FaultSpec::Duplicate(f) => f.apply(cx).await,
        FaultSpec::LeakWebsockets(f) => f.apply(cx).await,
        FaultSpec::Network(f) => f.apply(cx).await,
        FaultSpec::Cpu(f) => f.apply(cx).await,
        FaultSpec::Memory(f) => f.apply(cx).await,
    }
}

pub(crate) fn emit(events: &EventSink, info: &FaultInfo, state: FaultState) {
    emit_at(events, info, state, events.now());
}

/// [`emit`] stamped with a run-clock time the caller measured.
pub(crate) fn emit_at(events: &EventSink, info: &FaultInfo, state: FaultState, at: Duration) {
    events.send_at(
        at,
        EventKind::Fault(FaultEvent {
            fault: info.fault,
            repetition: info.rep,
            name: info.name.clone(),
            kind: info.kind,
            target: info.target.clone(),
            state,
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_is_watched_unless_the_target_stays_up() {
        for k in FaultKind::ALL {
            let expected = match k {
                FaultKind::Kill | FaultKind::Restart => Recovery::FromApply,
                FaultKind::Duplicate | FaultKind::LeakWebsockets => Recovery::None,
                _ => Recovery::FromUndo,
            };
            assert_eq!(recovery(*k), expected, "{k:?}");
            assert_eq!(watches_recovery(*k), expected != Recovery::None);
        }
    }
}
