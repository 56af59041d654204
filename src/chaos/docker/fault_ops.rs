//! What faults do to a docker-backend service: kill, restart, stop, pause, duplicate,
//! the cgroup stress processes join, its [`Backend`], and the undos it hands back
//! (start stopped containers, unpause paused ones, remove duplicates).

use std::path::Path;
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures::future::BoxFuture;
use futures::FutureExt;
use nix::sys::signal::Signal;

use super::{
    connect, container_name, inspect, not_found, on_own_runtime, run_labels, running, short,
    state_of, DockerService, STOP_T,
};
use crate::chaos::backend::{Backend, BackendError, Undo};
use crate::chaos::os::signal_pid;
use crate::chaos::state::{ContainerRole, Pending, StateFile};
use crate::chaos::stress::CgroupTarget;
use crate::chaos::{Service, ServicesInner};

/// A Docker operation of a fault (or of its undo) that did not go through.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine refused: what was asked of which container, and its answer.
    #[error("{op} `{container}`: {source}")]
    Engine {
        op: &'static str,
        container: String,
        source: Box<bollard::errors::Error>,
    },
    #[error("container `{0}` does not exist")]
    Missing(String),
    #[error("container `{name}` is not running ({state})")]
    NotRunning { name: String, state: String },
    #[error("the main process of `{name}` (pid {pid}) is not visible from here (gauntlet runs in another pid namespace than the engine)")]
    NotVisible { name: String, pid: i64 },
    #[error("the service has no container")]
    NoContainer,
    #[error(transparent)]
    Signal(#[from] crate::chaos::os::SignalError),
    #[error(transparent)]
    Stress(#[from] crate::chaos::stress::StressError),
    /// What it would change cannot be recorded for `cleanup`: not done.
    #[error("its undo cannot be recorded: {0}")]
    State(#[from] crate::chaos::state::StateError),
    /// Every step of a batch was tried; these failed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<DockerError>),
}

pub(super) fn engine(
    op: &'static str,
    container: &str,
) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let container = container.to_string();
    move |source| DockerError::Engine {
        op,
        container,
        source: Box::new(source),
    }
}

impl DockerService {
    /// Crash: signal each container's main process from the host.
    pub async fn kill_main_process(&self, docker: &Docker, sig: Signal) -> Result<(), DockerError> {
        for c in &self.containers {
            let i = inspect(docker, &c.id).await?;
            let pid = i.state.as_ref().and_then(|s| s.pid).unwrap_or(0);
            if !running(&i) || pid <= 0 {
                return Err(DockerError::NotRunning {
                    name: c.name.clone(),
                    state: state_of(&i),
                });
            }
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return Err(DockerError::NotVisible {
                    name: c.name.clone(),
                    pid,
                });
            }
            signal_pid(pid as i32, sig)?;
        }
        Ok(())
    }

    pub async fn restart(&self, docker: &Docker) -> Result<(), DockerError> {
        for c in &self.containers {
            docker
                .restart_container(
                    &c.id,
                    Some(RestartContainerOptionsBuilder::default().t(STOP_T).build()),
                )
                .await
                .map_err(engine("restart", &c.name))?;
        }
        Ok(())
    }

    /// Graceful stop: `sig` (SIGTERM by default), SIGKILL after the stop timeout.
    pub async fn stop(
        &self,
        docker: &Docker,
        inner: &ServicesInner,
        sig: Signal,
    ) -> Result<Vec<String>, DockerError> {
        let mut done = vec![];
        for c in &self.containers {
            let p = Pending::StoppedContainer { id: c.id.clone() };
            if let Err(e) = inner.state.add_pending(p.clone()) {
                let _ = start_containers(docker, &inner.state, &done).await;
                return Err(e.into());
            }
            if sig != Signal::SIGTERM {
                // Engines before API 1.42 take no stop signal: send it, give it the stop
                // timeout to exit, then the stop below finishes the job.
                let _ = docker
                    .kill_container(
                        &c.id,
                        Some(
                            KillContainerOptionsBuilder::default()
                                .signal(sig.as_str())
                                .build(),
                        ),
                    )
                    .await;
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(STOP_T as u64) {
                    match inspect(docker, &c.id).await {
                        Ok(i) if running(&i) => {
                            tokio::time::sleep(Duration::from_millis(100)).await
                        }
                        _ => break,
                    }
                }
            }
            if let Err(e) = docker
                .stop_container(
                    &c.id,
                    Some(StopContainerOptionsBuilder::default().t(STOP_T).build()),
                )
                .await
            {
                inner.state.remove_pending(&p);
                let _ = start_containers(docker, &inner.state, &done).await;
                return Err(engine("stop", &c.name)(e));
            }
            done.push(c.id.clone());
        }
        Ok(done)
    }

    pub async fn pause(
        &self,
        docker: &Docker,
        inner: &ServicesInner,
    ) -> Result<Vec<String>, DockerError> {
        let mut done = vec![];
        for c in &self.containers {
            let p = Pending::PausedContainer { id: c.id.clone() };
            if let Err(e) = inner.state.add_pending(p.clone()) {
                let _ = unpause_containers(docker, &inner.state, &done).await;
                return Err(e.into());
            }
            if let Err(e) = docker.pause_container(&c.id).await {
                inner.state.remove_pending(&p);
                let _ = unpause_containers(docker, &inner.state, &done).await;
                return Err(engine("pause", &c.name)(e));
            }
            done.push(c.id.clone());
        }
        Ok(done)
    }

    /// A second container from the same image and configuration (no published ports:
    /// they are taken), labelled with the run id.
    pub async fn duplicate(
        &self,
        docker: &Docker,
        inner: &ServicesInner,
        suffix: &str,
    ) -> Result<Vec<String>, DockerError> {
        let c = self.containers.first().ok_or(DockerError::NoContainer)?;
        let i = inspect(docker, &c.id).await?;
        let cfg = i.config.clone().unwrap_or_default();
        let hc = i.host_config.clone().unwrap_or_default();
        let mut labels = cfg.labels.clone().unwrap_or_default();
        labels.extend(run_labels(inner, &self.name, "duplicate"));
        let body = ContainerCreateBody {
            // The image as named (a tag), not its digest.
            image: cfg.image.clone().or(i.image.clone()),
            cmd: cfg.cmd.clone(),
            entrypoint: cfg.entrypoint.clone(),
            env: cfg.env.clone(),
            working_dir: cfg.working_dir.clone(),
            user: cfg.user.clone(),
            labels: Some(labels),
            stop_signal: cfg.stop_signal.clone(),
            host_config: Some(HostConfig {
                binds: hc.binds.clone(),
                network_mode: hc.network_mode.clone(),
                memory: hc.memory,
                nano_cpus: hc.nano_cpus,
                cpu_shares: hc.cpu_shares,
                cpu_quota: hc.cpu_quota,
                cpu_period: hc.cpu_period,
                init: hc.init,
                extra_hosts: hc.extra_hosts.clone(),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = container_name(&[&c.name, "dup", suffix, &inner.run_id]);
        let created = docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                body,
            )
            .await
            .map_err(engine("create the duplicate of", &c.name))?;
        // Created but not started: removed again when it cannot be recorded.
        if let Err(e) =
            inner
                .state
                .add_container(&created.id, &name, ContainerRole::Duplicate, &self.name)
        {
            let _ =
                remove_containers(docker, &inner.state, std::slice::from_ref(&created.id)).await;
            return Err(e.into());
        }
        if let Err(e) = docker.start_container(&created.id, None).await {
            let _ =
                remove_containers(docker, &inner.state, std::slice::from_ref(&created.id)).await;
            return Err(engine("start the duplicate of", &c.name)(e));
        }
        Ok(vec![created.id])
    }

    /// The cgroups of the (first) container's main process, for stress processes.
    pub async fn cgroup(&self, docker: &Docker) -> Result<CgroupTarget, DockerError> {
        let c = self.containers.first().ok_or(DockerError::NoContainer)?;
        let i = inspect(docker, &c.id).await?;
        let pid = i.state.as_ref().and_then(|s| s.pid).unwrap_or(0);
        if !running(&i) || pid <= 0 {
            return Err(DockerError::NotRunning {
                name: c.name.clone(),
                state: state_of(&i),
            });
        }
        Ok(CgroupTarget::of_pid(pid as i32)?)
    }
}

pub(crate) async fn start_containers(
    docker: &Docker,
    state: &StateFile,
    ids: &[String],
) -> Result<(), DockerError> {
    let mut errs = vec![];
    for id in ids {
        match docker.start_container(id, None).await {
            Ok(()) => {}
            // 304: already running.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => {}
            Err(e) => errs.push(engine("start", short(id))(e)),
        }
        state.remove_pending(&Pending::StoppedContainer { id: id.clone() });
    }
    joined(errs)
}

/// All the errors of a batch of undo steps as one message; every step was tried.
fn joined(errs: Vec<DockerError>) -> Result<(), DockerError> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(DockerError::Several(errs))
    }
}

pub(crate) async fn unpause_containers(
    docker: &Docker,
    state: &StateFile,
    ids: &[String],
) -> Result<(), DockerError> {
    let mut errs = vec![];
    for id in ids {
        if let Err(e) = docker.unpause_container(id).await {
            // Not paused any more (restarted or removed meanwhile): nothing to undo.
            let still_paused = inspect(docker, id)
                .await
                .ok()
                .and_then(|i| i.state.and_then(|s| s.paused))
                .unwrap_or(false);
            if still_paused {
                errs.push(engine("unpause", short(id))(e));
                continue;
            }
        }
        state.remove_pending(&Pending::PausedContainer { id: id.clone() });
    }
    joined(errs)
}

pub(crate) async fn remove_containers(
    docker: &Docker,
    state: &StateFile,
    ids: &[String],
) -> Result<(), DockerError> {
    let mut errs = vec![];
    for id in ids {
        match docker
            .remove_container(
                id,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
        {
            Ok(()) => state.remove_container(id),
            Err(e) if not_found(&e) => state.remove_container(id),
            Err(e) => errs.push(engine("remove", short(id))(e)),
        }
    }
    joined(errs)
}

fn client(inner: &ServicesInner) -> Result<&Docker, BackendError> {
    inner.docker.as_ref().ok_or(BackendError::NoDocker)
}

impl Backend for DockerService {
    fn instance<'a>(&'a self, inner: &'a ServicesInner) -> BoxFuture<'a, Option<String>> {
        async move { DockerService::instance(self, inner.docker.as_ref()?).await }.boxed()
    }

    fn kill<'a>(
        &'a self,
        inner: &'a ServicesInner,
        sig: Signal,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            self.kill_main_process(client(inner)?, sig)
                .await
                .map_err(BackendError::Docker)
        }
        .boxed()
    }

    fn restart<'a>(&'a self, inner: &'a ServicesInner) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            DockerService::restart(self, client(inner)?)
                .await
                .map_err(BackendError::Docker)
        }
        .boxed()
    }

    fn stop<'a>(
        &'a self,
        inner: &'a ServicesInner,
        sig: Signal,
    ) -> BoxFuture<'a, Result<Box<dyn Undo>, BackendError>> {
        async move {
            let ids = DockerService::stop(self, client(inner)?, inner, sig)
                .await
                .map_err(BackendError::Docker)?;
            Ok(ContainerUndo::boxed(ContainerOp::Start, ids))
        }
        .boxed()
    }

    fn start<'a>(&'a self, inner: &'a ServicesInner) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            start_containers(client(inner)?, &inner.state, &self.ids())
                .await
                .map_err(BackendError::Docker)
        }
        .boxed()
    }

    fn pause<'a>(
        &'a self,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<Box<dyn Undo>, BackendError>> {
        async move {
            let ids = DockerService::pause(self, client(inner)?, inner)
                .await
                .map_err(BackendError::Docker)?;
            Ok(ContainerUndo::boxed(ContainerOp::Unpause, ids))
        }
        .boxed()
    }

    fn duplicate<'a>(
        &'a self,
        inner: &'a ServicesInner,
        _: &'a Service,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn Undo>, BackendError>> {
        async move {
            let ids = DockerService::duplicate(self, client(inner)?, inner, tag)
                .await
                .map_err(BackendError::Docker)?;
            Ok(ContainerUndo::boxed(ContainerOp::Remove, ids))
        }
        .boxed()
    }

    fn cgroup<'a>(
        &'a self,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<Option<CgroupTarget>, BackendError>> {
        async move {
            DockerService::cgroup(self, client(inner)?)
                .await
                .map(Some)
                .map_err(BackendError::Docker)
        }
        .boxed()
    }
}

/// What undoes a `stop`, a `pause` or a `duplicate` of containers.
#[derive(Clone, Copy)]
enum ContainerOp {
    /// After a `stop`: start them again.
    Start,
    /// After a `pause`.
    Unpause,
    /// After a `duplicate`: remove the extra containers.
    Remove,
}

/// Undo of a fault on a batch of containers: every container is tried, every error kept.
struct ContainerUndo {
    op: ContainerOp,
    ids: Vec<String>,
}

impl ContainerUndo {
    fn boxed(op: ContainerOp, ids: Vec<String>) -> Box<dyn Undo> {
        Box::new(ContainerUndo { op, ids })
    }
}

async fn undo_batch(
    op: ContainerOp,
    docker: &Docker,
    state: &StateFile,
    ids: &[String],
) -> Result<(), DockerError> {
    match op {
        ContainerOp::Start => start_containers(docker, state, ids).await,
        ContainerOp::Unpause => unpause_containers(docker, state, ids).await,
        ContainerOp::Remove => remove_containers(docker, state, ids).await,
    }
}

impl Undo for ContainerUndo {
    fn undo<'a>(
        self: Box<Self>,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            undo_batch(self.op, client(inner)?, &inner.state, &self.ids)
                .await
                .map_err(BackendError::Docker)
        }
        .boxed()
    }

    fn undo_blocking(self: Box<Self>, inner: &ServicesInner) {
        let state = inner.state.clone();
        on_own_runtime(move || async move {
            let Ok(docker) = connect().await else { return };
            let _ = undo_batch(self.op, &docker, &state, &self.ids).await;
        });
    }
}
