//! Services and faults: start and supervise the system under test (process or docker
//! backend), apply faults on the timeline, and undo every one of them whatever happens.
//!
//! - [`Services::start`] starts (process backend) or finds/creates (docker backend) every
//!   service, places the chaos proxies, waits for the health checks, then probes health
//!   (availability) and samples resources during the run. [`Services::shutdown`] undoes
//!   what faults are still in force and stops everything the run started.
//! - [`Chaos`] runs the fault timeline (`run_timeline`) and undoes every applied fault in
//!   reverse order (`undo_all`); a `Drop` guard undoes what it can synchronously on panic.
//! - [`cleanup`] removes the leftovers of earlier runs (`gauntlet cleanup`).
//!
//! Layout: `faults/` (one file per fault kind, the ledger, the timeline) works through
//! `backend::Backend`, implemented by `process` (managed or by pid file) and `docker`;
//! `os` (signals, /proc) and `state` (the run-state file) sit below them, `cleanup`
//! above. `proxy`, `stress` and `wsleak` are the mechanisms of the network, cpu/memory
//! and leak_websockets faults; `health` and `resources` watch the services.
//!
//! Safety rule: every address gauntlet itself talks to (health checks, proxy, leaked
//! WebSockets) must be a loopback one.

mod backend;
mod cleanup;
pub(crate) mod docker;
pub mod faults;
pub(crate) mod health;
mod os;
pub mod process;
pub mod proxy;
mod resources;
pub mod state;
pub mod stress;
mod wsleak;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::event::{EventKind, EventSink, Level, ServiceEvent, ServiceEventKind};
use crate::scenario::model::{BackendKind, ServiceSpec};
use crate::scenario::Plan;

pub use backend::BackendError;
pub use cleanup::cleanup;
pub use faults::{watches_recovery, Chaos, FaultError};
pub use state::CleanupReport;

use backend::Backend;
use faults::ledger::{self, Ledger};
use health::Health;
use process::{ManagedProc, ProcessError, UnmanagedProc};
use proxy::Proxy;
use state::StateFile;

#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("service `{service}`: {message}")]
    Service { service: String, message: String },
    #[error("docker: {0}")]
    Docker(String),
    /// A fault could not be applied and the scenario says that fails the run.
    #[error("fault `{name}` could not be applied: {source}")]
    Fault { name: String, source: FaultError },
    #[error("fault `{name}`: undo failed: {source}")]
    Undo { name: String, source: BackendError },
    #[error("no fault #{0} in the plan")]
    NoSuchFault(usize),
    #[error("cleanup: {0}")]
    Cleanup(String),
    #[error(transparent)]
    State(#[from] state::StateError),
}

/// Is `host` a loopback name or address? gauntlet only talks to those.
pub(crate) fn require_loopback_host(host: &str) -> Result<(), String> {
    if crate::units::is_loopback(host) {
        Ok(())
    } else {
        Err(format!(
            "`{host}` is not a loopback address; gauntlet only sends traffic to 127.0.0.1/localhost"
        ))
    }
}

/// How gauntlet controls one service.
pub(crate) enum Control {
    /// Process backend, started and supervised by gauntlet.
    Managed(Arc<ManagedProc>),
    /// Process backend, already running; its pid is read from `pid_file` at each use.
    Unmanaged(UnmanagedProc),
    /// Docker backend.
    Docker(docker::DockerService),
}

impl Control {
    /// What faults do to it.
    pub fn backend(&self) -> &dyn Backend {
        match self {
            Control::Managed(m) => m,
            Control::Unmanaged(u) => u,
            Control::Docker(d) => d,
        }
    }
}

/// One service of the run.
pub(crate) struct Service {
    pub name: String,
    pub spec: ServiceSpec,
    pub health: Option<Arc<Health>>,
    pub proxy: Option<Arc<Proxy>>,
    pub control: Control,
    pub log_path: PathBuf,
}

impl Service {
    /// The pid of the running instance (process backend) or the container's main process
    /// (docker): a crash fault's recovery waits until it changes or a probe fails.
    pub async fn instance(&self, inner: &ServicesInner) -> Option<String> {
        self.control.backend().instance(inner).await
    }
}

/// What the run's services share with the fault scheduler.
pub(crate) struct ServicesInner {
    pub run_id: String,
    pub report_dir: PathBuf,
    pub logs_dir: PathBuf,
    pub backend: BackendKind,
    pub events: EventSink,
    pub services: Mutex<Vec<Arc<Service>>>,
    pub docker: Option<bollard::Docker>,
    pub state: Arc<StateFile>,
    pub ledger: Arc<Ledger>,
    /// Managed processes spawned so far, also those still waiting for their first healthy
    /// probe (a start cut short by an interrupt or a panic must not leave them behind).
    pub spawned: Mutex<Vec<Arc<ManagedProc>>>,
    /// Stops probers, samplers, log followers and proxies.
    pub tasks_cancel: CancellationToken,
}

impl ServicesInner {
    pub fn service(&self, name: &str) -> Option<Arc<Service>> {
        self.services
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.name == name)
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<Service>> {
        self.services.lock().unwrap().clone()
    }
}

/// The running services of one run.
pub struct Services {
    pub(crate) inner: Arc<ServicesInner>,
    tasks: Vec<JoinHandle<()>>,
    shut_down: bool,
}

/// Where one run keeps its files: `<reports>/<run-id>/`.
#[derive(Debug, Clone)]
pub struct RunFolder {
    pub run_id: String,
    pub dir: PathBuf,
}

impl RunFolder {
    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }
}

impl Services {
    /// Start every managed service, capture its output under `logs_dir`, and wait for its
    /// health check. On error, what was started is stopped again.
    ///
    /// Logs go to `folder.logs()`, the run-state file is `folder.dir/state.json`, and
    /// containers are labelled with `folder.run_id`.
    pub async fn start(
        plan: &Plan,
        folder: &RunFolder,
        events: EventSink,
    ) -> Result<Services, ChaosError> {
        let run_id = folder.run_id.clone();
        let report_dir = folder.dir.clone();
        let logs_dir = &folder.logs();
        let _ = std::fs::create_dir_all(logs_dir);
        // Nothing starts when what it starts cannot be recorded.
        let state = Arc::new(StateFile::new(
            Some(report_dir.join("state.json")),
            &run_id,
        )?);
        let backend = plan.backend;
        let docker = if backend == BackendKind::Docker {
            Some(docker::connect().await.map_err(ChaosError::Docker)?)
        } else {
            None
        };
        let inner = Arc::new(ServicesInner {
            run_id,
            report_dir,
            logs_dir: logs_dir.to_path_buf(),
            backend,
            events: events.clone(),
            services: Mutex::new(vec![]),
            docker,
            state: state.clone(),
            ledger: Arc::new(Ledger::default()),
            spawned: Mutex::new(vec![]),
            tasks_cancel: CancellationToken::new(),
        });
        let mut me = Services {
            inner,
            tasks: vec![],
            shut_down: false,
        };
        match me.start_all(plan).await {
            Ok(()) => Ok(me),
            Err(e) => {
                me.shutdown().await;
                Err(e)
            }
        }
    }

    async fn start_all(&mut self, plan: &Plan) -> Result<(), ChaosError> {
        let base_dir = plan
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let inner = self.inner.clone();
        let events = &inner.events;
        // Resolve everything first, so a mistake fails before anything starts.
        for sp in &plan.services {
            let spec = &sp.spec;
            let health = sp.health.clone().map(Arc::new);
            let name = spec.name.clone();
            let err = |message: String| ChaosError::Service {
                service: name.clone(),
                message,
            };
            let proxy = match &sp.proxy {
                Some(p) => Some(
                    Proxy::start(&name, p, inner.tasks_cancel.child_token())
                        .await
                        .map_err(err)?,
                ),
                None => None,
            };
            let log_path = inner.logs_dir.join(format!("{name}.log"));
            let control = match inner.backend {
                BackendKind::Process if spec.managed => Control::Managed(
                    start_managed(&inner, spec, health.as_deref(), &base_dir)
                        .await
                        .map_err(|e| err(e.to_string()))?,
                ),
                BackendKind::Process => Control::Unmanaged(
                    find_unmanaged(spec, health.as_deref(), &base_dir)
                        .await
                        .map_err(|e| err(e.to_string()))?,
                ),
                BackendKind::Docker => Control::Docker(
                    docker::DockerService::start(&inner, sp, health.as_deref(), &log_path).await?,
                ),
            };
            if health.is_some() {
                events.send(EventKind::Service(ServiceEvent {
                    service: name.clone(),
                    kind: ServiceEventKind::Healthy,
                }));
            }
            inner.services.lock().unwrap().push(Arc::new(Service {
                name,
                spec: spec.clone(),
                health,
                proxy,
                control,
                log_path,
            }));
        }
        // During the run: health probes (availability) and resource samples.
        for svc in inner.all() {
            if let Some(h) = &svc.health {
                self.tasks.push(tokio::spawn(health::run_prober(
                    svc.clone(),
                    h.clone(),
                    events.clone(),
                    inner.tasks_cancel.child_token(),
                )));
            }
        }
        self.tasks
            .push(tokio::spawn(resources::run_sampler(inner.clone())));
        Ok(())
    }

    /// Stop everything that was started (SIGTERM, then SIGKILL after a grace period):
    /// faults still in force are undone first (paused resumed, duplicates removed).
    pub async fn shutdown(&mut self) {
        if self.shut_down {
            return;
        }
        self.shut_down = true;
        let inner = self.inner.clone();
        ledger::undo_all(&inner).await;
        inner.tasks_cancel.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        let services = inner.all();
        for svc in services.iter().rev() {
            match &svc.control {
                Control::Managed(m) => m.shutdown().await,
                Control::Unmanaged(_) => {}
                Control::Docker(d) => {
                    if let Some(docker) = &inner.docker {
                        d.shutdown(docker, &inner).await;
                    }
                }
            }
            if let Some(p) = &svc.proxy {
                p.stop();
            }
        }
        inner.state.finish();
    }

    /// Names of the services, in start order.
    pub fn names(&self) -> Vec<String> {
        self.inner.all().iter().map(|s| s.name.clone()).collect()
    }

    /// The pid of a process-backend service's running instance.
    pub fn pid(&self, service: &str) -> Option<u32> {
        match &self.inner.service(service)?.control {
            Control::Managed(m) => m.pid(),
            Control::Unmanaged(u) => u.pid().map(|p| p as u32),
            Control::Docker(_) => None,
        }
    }

    /// The ids of a docker-backend service's containers.
    pub fn containers(&self, service: &str) -> Vec<String> {
        self.inner
            .service(service)
            .map(|s| match &s.control {
                Control::Docker(d) => d.ids(),
                _ => vec![],
            })
            .unwrap_or_default()
    }

    /// Where the chaos proxy in front of a service listens.
    pub fn proxy_addr(&self, service: &str) -> Option<std::net::SocketAddr> {
        Some(self.inner.service(service)?.proxy.as_ref()?.listen)
    }

    /// The run-state file's current content.
    pub fn run_state(&self) -> state::RunState {
        self.inner.state.snapshot()
    }

    /// The run's log folder.
    pub fn logs_dir(&self) -> &Path {
        &self.inner.logs_dir
    }

    /// The run's report folder (where `state.json` is).
    pub fn report_dir(&self) -> &Path {
        &self.inner.report_dir
    }

    /// A service's log file.
    pub fn log_path(&self, service: &str) -> Option<PathBuf> {
        Some(self.inner.service(service)?.log_path.clone())
    }
}

/// Start a managed process-backend service and wait until it is healthy.
async fn start_managed(
    inner: &ServicesInner,
    spec: &ServiceSpec,
    health: Option<&Health>,
    base_dir: &Path,
) -> Result<Arc<ManagedProc>, ProcessError> {
    let m = Arc::new(ManagedProc::new(
        spec.clone(),
        base_dir,
        &inner.logs_dir,
        inner.events.clone(),
        inner.state.clone(),
    ));
    // Something already answering the health check would make us grade another process
    // (e.g. a leftover on the same port) while ours dies with "address in use": refuse.
    if let Some(h) = health {
        if h.probe().await.is_ok() {
            return Err(ProcessError::NotReady(String::from(
                "its health check already answers before it was started: \
                 another process holds its address (a leftover run? try \
                 `gauntlet cleanup`, or change the port)",
            )));
        }
    }
    inner.spawned.lock().unwrap().push(m.clone());
    let mut child = m.spawn("start")?;
    if let Err(e) = m.wait_ready(&mut child, health).await {
        let tail = process::log_tail(&m.log_path, 15);
        return Err(ProcessError::NotReady(format!(
            "{e}\n  log: {}{}",
            m.log_path.display(),
            if tail.is_empty() {
                " (empty)".to_string()
            } else {
                format!("\n  last lines of the log:\n{tail}")
            }
        )));
    }
    m.supervise(child);
    Ok(m)
}

/// A process-backend service gauntlet does not start: check its pid file and health.
async fn find_unmanaged(
    spec: &ServiceSpec,
    health: Option<&Health>,
    base_dir: &Path,
) -> Result<UnmanagedProc, ProcessError> {
    let pid_file = spec
        .pid_file
        .as_deref()
        .map(|p| process::resolve_path(base_dir, p));
    if let Some(pf) = &pid_file {
        process::read_pid_file(pf)?;
    }
    if let Some(h) = health {
        wait_healthy_unmanaged(h)
            .await
            .map_err(ProcessError::NotReady)?;
    }
    Ok(UnmanagedProc {
        name: spec.name.clone(),
        pid_file,
        cwd: spec
            .cwd
            .as_deref()
            .map(|c| process::resolve_path(base_dir, c)),
    })
}

async fn wait_healthy_unmanaged(h: &Health) -> Result<(), String> {
    let start = std::time::Instant::now();
    loop {
        match h.probe().await {
            Ok(_) => return Ok(()),
            Err(e) if start.elapsed() >= h.startup => {
                return Err(format!(
                    "not healthy within {} (last probe: {e})",
                    humantime::format_duration(h.startup)
                ))
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

impl Drop for Services {
    /// Panic path (shutdown was never called): undo what can be undone synchronously and
    /// kill every process started; docker clean-up best effort on a thread of its own.
    fn drop(&mut self) {
        if self.shut_down {
            return;
        }
        let inner = self.inner.clone();
        inner.tasks_cancel.cancel();
        ledger::undo_all_blocking(&inner);
        for m in inner.spawned.lock().unwrap().iter() {
            m.kill_sync();
        }
        if inner.docker.is_some() {
            docker::drop_cleanup(&inner);
        }
        inner.events.notice(
            Level::Warn,
            "services dropped without shutdown; killed them",
        );
    }
}
