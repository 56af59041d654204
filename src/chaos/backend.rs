//! What faults need from a service, whatever runs it. The process backend (a managed
//! process, or one found by its pid file) and the docker backend implement [`Backend`];
//! a reversible operation hands back its [`Undo`], which the fault ledger keeps until
//! the fault ends.

use futures::future::BoxFuture;
use nix::sys::signal::Signal;

use super::os::SignalError;
use super::stress::CgroupTarget;
use super::{Service, ServicesInner};

/// An operation on a service that did not go through.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("service `{0}` is not running")]
    NotRunning(String),
    #[error("`{op}` needs a service gauntlet manages (it must start it again); `{service}` is `managed = false`")]
    NotManaged { op: &'static str, service: String },
    #[error("service `{0}` has no `pid_file`")]
    NoPidFile(String),
    #[error("`duplicate` needs the service's `command`; `{0}` has none")]
    NoCommand(String),
    #[error("no docker client")]
    NoDocker,
    #[error(transparent)]
    Signal(#[from] SignalError),
    #[error(transparent)]
    Process(#[from] super::process::ProcessError),
    #[error(transparent)]
    Docker(#[from] super::docker::DockerError),
    #[error(transparent)]
    Stress(#[from] super::stress::StressError),
    /// What it would change cannot be recorded for `cleanup`, so it was not done.
    #[error("its undo cannot be recorded: {0}")]
    State(#[from] super::state::StateError),
    /// A blocking step (stopping stress processes) panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

/// The operations faults use. Async methods return boxed futures so services of both
/// backends live behind one `&dyn Backend`.
pub(crate) trait Backend: Send + Sync {
    /// The running instance (a pid, a container's main pid): a crash's recovery waits
    /// until it changes or a probe fails.
    fn instance<'a>(&'a self, inner: &'a ServicesInner) -> BoxFuture<'a, Option<String>>;

    /// Send `sig` to the service's process (every container's main process).
    fn kill<'a>(
        &'a self,
        inner: &'a ServicesInner,
        sig: Signal,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    fn restart<'a>(&'a self, inner: &'a ServicesInner) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Stop it (`sig`, then SIGKILL after a grace) and keep it down; the undo starts it.
    fn stop<'a>(
        &'a self,
        inner: &'a ServicesInner,
        sig: Signal,
    ) -> BoxFuture<'a, Result<Box<dyn Undo>, BackendError>>;

    /// Start it if it is not running.
    fn start<'a>(&'a self, inner: &'a ServicesInner) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Freeze it; the undo thaws it.
    fn pause<'a>(
        &'a self,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<Box<dyn Undo>, BackendError>>;

    /// A second instance next to it (`tag` tells duplicates apart); the undo removes it.
    fn duplicate<'a>(
        &'a self,
        inner: &'a ServicesInner,
        svc: &'a Service,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn Undo>, BackendError>>;

    /// The cgroup stress processes must join to weigh on the service (a container's),
    /// None when they simply run next to it.
    fn cgroup<'a>(
        &'a self,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<Option<CgroupTarget>, BackendError>>;
}

/// How to take back one fault in force.
pub(crate) trait Undo: Send {
    fn undo<'a>(
        self: Box<Self>,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// The panic path: no runtime to rely on; do what can be done, best effort.
    fn undo_blocking(self: Box<Self>, inner: &ServicesInner);
}
