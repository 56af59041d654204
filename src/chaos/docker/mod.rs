//! The docker backend (bollard): services are containers, found by name or label, or
//! created from an image (labelled `gauntlet.run-id=<id>`). Faults go through the Engine
//! API, except `kill`, which signals the container's main process from the host so that
//! the container's restart policy fires (an API kill counts as "stopped by hand").

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HostConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StatsOptionsBuilder,
    StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;

use crate::event::{EventKind, Level, ServiceEvent, ServiceEventKind};
use crate::scenario::model::{PortMapping, RestartPolicy as Policy, ServicePlan, ServiceSpec};

use super::health::Health;
use super::state::{CleanupReport, ContainerRole, Pending};
use super::{ChaosError, ServicesInner};

mod fault_ops;

use fault_ops::engine;
pub use fault_ops::DockerError;

pub const LABEL_RUN: &str = "gauntlet.run-id";
pub const LABEL_SERVICE: &str = "gauntlet.service";
pub const LABEL_ROLE: &str = "gauntlet.role";
/// "<pid>:<start time>" of the gauntlet process that created it: `cleanup` leaves the
/// containers of a gauntlet still running alone, whatever its reports folder.
pub const LABEL_OWNER: &str = "gauntlet.owner";

/// Stop timeout (seconds) for graceful stops and restarts.
const STOP_T: i32 = 10;

/// Connect to the local engine and agree on an API version (engines here may be older).
pub async fn connect() -> Result<Docker, String> {
    let d =
        Docker::connect_with_local_defaults().map_err(|e| format!("Docker is unreachable: {e}"))?;
    let d = tokio::time::timeout(Duration::from_secs(10), d.negotiate_version())
        .await
        .map_err(|_| "Docker is unreachable: no answer within 10s".to_string())?
        .map_err(|e| format!("Docker is unreachable: {e}"))?;
    d.ping()
        .await
        .map_err(|e| format!("Docker is unreachable: {e}"))?;
    Ok(d)
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// A container name from free text: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
pub(crate) fn container_name(parts: &[&str]) -> String {
    let s: String = parts
        .join("-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_start_matches(['-', '.', '_']).to_string();
    s.chars().take(120).collect()
}

#[derive(Debug, Clone)]
pub(crate) struct Ctr {
    pub id: String,
    pub name: String,
}

pub(crate) struct DockerService {
    pub name: String,
    pub containers: Vec<Ctr>,
    /// Created by this run (removed at shutdown).
    pub created: bool,
}

fn not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A published port as the engine takes it: ("80/tcp", binding on 127.0.0.1:8080).
fn port_binding(p: &PortMapping) -> Result<(String, PortBinding), String> {
    // Resolved and checked by `scenario`; checked again because it is a safety rule.
    super::require_loopback_host(&p.host_ip)?;
    Ok((
        format!("{}/{}", p.container_port, p.protocol),
        PortBinding {
            host_ip: Some(p.host_ip.clone()),
            host_port: Some(p.host_port.to_string()),
        },
    ))
}

fn restart_policy(spec: &ServiceSpec) -> RestartPolicy {
    match spec.restart.policy {
        Policy::No => RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        },
        Policy::OnFailure => RestartPolicy {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: Some(spec.restart.max.unwrap_or(5) as i64),
        },
        Policy::Always => RestartPolicy {
            name: Some(RestartPolicyNameEnum::ALWAYS),
            maximum_retry_count: None,
        },
    }
}

fn run_labels(inner: &ServicesInner, service: &str, role: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_RUN.to_string(), inner.run_id.clone()),
        (LABEL_SERVICE.to_string(), service.to_string()),
        (LABEL_ROLE.to_string(), role.to_string()),
        (LABEL_OWNER.to_string(), owner_label()),
    ])
}

fn owner_label() -> String {
    let me = std::process::id();
    format!(
        "{me}:{}",
        super::os::proc_start_time(me as i32).unwrap_or(0)
    )
}

/// Is the gauntlet that created a container (its owner label) still running?
fn owner_alive(label: Option<&String>) -> bool {
    let Some((pid, start)) = label.and_then(|l| l.split_once(':')) else {
        return false;
    };
    match (pid.parse::<i32>(), start.parse::<u64>()) {
        (Ok(pid), Ok(start)) => super::os::same_process(pid, Some(start)),
        _ => false,
    }
}

async fn inspect(docker: &Docker, id: &str) -> Result<ContainerInspectResponse, DockerError> {
    docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .map_err(|e| {
            if not_found(&e) {
                DockerError::Missing(id.to_string())
            } else {
                engine("inspect", id)(e)
            }
        })
}

fn state_of(i: &ContainerInspectResponse) -> String {
    i.state
        .as_ref()
        .and_then(|s| s.status)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn running(i: &ContainerInspectResponse) -> bool {
    i.state.as_ref().and_then(|s| s.running).unwrap_or(false)
}

/// The last lines of a container's log, for error messages.
async fn docker_log_tail(docker: &Docker, id: &str, n: usize) -> String {
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&n.to_string())
        .build();
    let mut s = docker.logs(id, Some(opts));
    let mut out = String::new();
    while let Some(Ok(chunk)) = s.next().await {
        out.push_str(&String::from_utf8_lossy(chunk.as_ref()));
    }
    out.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl DockerService {
    pub async fn start(
        inner: &Arc<ServicesInner>,
        plan: &ServicePlan,
        health: Option<&Health>,
        log_path: &Path,
    ) -> Result<DockerService, ChaosError> {
        let spec = &plan.spec;
        let docker = inner
            .docker
            .as_ref()
            .ok_or_else(|| ChaosError::Docker("no client".into()))?;
        let err = |message: String| ChaosError::Service {
            service: spec.name.clone(),
            message,
        };
        let mut svc = DockerService {
            name: spec.name.clone(),
            containers: vec![],
            created: false,
        };
        if let Some(image) = &spec.image {
            let ctr = create_from_image(docker, inner, plan, image)
                .await
                .map_err(err)?;
            svc.created = true;
            svc.containers.push(ctr);
        } else if let Some(name) = &spec.container {
            let i = inspect(docker, name)
                .await
                .map_err(|e| err(e.to_string()))?;
            if !running(&i) {
                return Err(err(format!(
                    "container `{name}` is not running (state: {})",
                    state_of(&i)
                )));
            }
            svc.containers.push(Ctr {
                id: i.id.clone().unwrap_or_default(),
                name: i
                    .name
                    .clone()
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
            });
        } else if let Some(label) = &spec.label {
            let filters = HashMap::from([("label", vec![label.as_str()])]);
            let list = docker
                .list_containers(Some(
                    ListContainersOptionsBuilder::default()
                        .filters(&filters)
                        .build(),
                ))
                .await
                .map_err(|e| err(format!("list containers: {e}")))?;
            if list.is_empty() {
                return Err(err(format!("no running container has the label `{label}`")));
            }
            for c in list {
                svc.containers.push(Ctr {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .and_then(|n| n.first().cloned())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                });
            }
        } else {
            return Err(err(
                "a docker service needs `container` (a name), `label` (key=value) or `image`"
                    .into(),
            ));
        }
        // Its output goes to the service's log file.
        for c in &svc.containers {
            tokio::spawn(follow_logs(
                docker.clone(),
                c.clone(),
                log_path.to_path_buf(),
                svc.containers.len() > 1,
                svc.created,
                inner.tasks_cancel.child_token(),
            ));
        }
        if let Err(e) = svc.wait_ready(docker, health).await {
            let tail = match svc.containers.first() {
                Some(c) => docker_log_tail(docker, &c.id, 15).await,
                None => String::new(),
            };
            if svc.created {
                svc.shutdown(docker, inner).await;
            }
            return Err(err(format!(
                "{e}\n  log: {}{}",
                log_path.display(),
                if tail.is_empty() {
                    String::new()
                } else {
                    format!("\n  last lines of the container's log:\n{tail}")
                }
            )));
        }
        for c in &svc.containers {
            tokio::spawn(watch_container(
                docker.clone(),
                c.clone(),
                svc.name.clone(),
                inner.clone(),
            ));
        }
        Ok(svc)
    }

    async fn wait_ready(&self, docker: &Docker, health: Option<&Health>) -> Result<(), String> {
        let start = Instant::now();
        let startup = health
            .map(|h| h.startup)
            .unwrap_or(crate::scenario::model::DEFAULT_HEALTH_STARTUP);
        let mut last = String::from("no probe answered yet");
        loop {
            for c in &self.containers {
                let i = inspect(docker, &c.id).await.map_err(|e| e.to_string())?;
                let st = i.state.as_ref();
                let restarting = st.and_then(|s| s.restarting).unwrap_or(false);
                if !running(&i) && !restarting {
                    return Err(format!(
                        "container `{}` is {} (exit code {}) before it became healthy (last probe: {last})",
                        c.name,
                        state_of(&i),
                        st.and_then(|s| s.exit_code).unwrap_or(-1)
                    ));
                }
            }
            match health {
                None => return Ok(()),
                Some(h) => {
                    let budget = h.timeout.min(
                        startup
                            .saturating_sub(start.elapsed())
                            .max(Duration::from_millis(50)),
                    );
                    match super::health::probe(&h.target, budget).await {
                        Ok(_) => return Ok(()),
                        Err(e) => last = e,
                    }
                }
            }
            if start.elapsed() >= startup {
                return Err(format!(
                    "did not become healthy within {} (last probe: {last})",
                    humantime::format_duration(startup)
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn ids(&self) -> Vec<String> {
        self.containers.iter().map(|c| c.id.clone()).collect()
    }

    /// The main process of the (first) container: changes when it restarts.
    pub async fn instance(&self, docker: &Docker) -> Option<String> {
        let c = self.containers.first()?;
        let i = inspect(docker, &c.id).await.ok()?;
        let pid = i.state.as_ref()?.pid?;
        (pid > 0).then(|| format!("{pid}@{}", i.restart_count.unwrap_or(0)))
    }

    /// Remove the containers this run created.
    pub async fn shutdown(&self, docker: &Docker, inner: &ServicesInner) {
        if !self.created {
            return;
        }
        for c in &self.containers {
            let _ = docker
                .stop_container(
                    &c.id,
                    Some(StopContainerOptionsBuilder::default().t(3).build()),
                )
                .await;
            let _ = docker
                .remove_container(
                    &c.id,
                    Some(RemoveContainerOptionsBuilder::default().force(true).build()),
                )
                .await;
            inner.state.remove_container(&c.id);
            inner.events.send(EventKind::Service(ServiceEvent {
                service: self.name.clone(),
                kind: ServiceEventKind::Stopped,
            }));
        }
    }

    /// The host pid of a container's main process, when it runs.
    pub async fn main_pid(&self, docker: &Docker, id: &str) -> Option<i32> {
        let i = inspect(docker, id).await.ok()?;
        let pid = i.state.as_ref()?.pid?;
        (running(&i) && pid > 0).then_some(pid as i32)
    }

    /// (cpu total ns, system cpu ns, online cpus, memory bytes) summed over containers.
    pub async fn stats(&self, docker: &Docker) -> Option<(u64, u64, u32, u64)> {
        let mut acc: Option<(u64, u64, u32, u64)> = None;
        for c in &self.containers {
            let opts = StatsOptionsBuilder::default()
                .stream(false)
                .one_shot(true)
                .build();
            let mut s = docker.stats(&c.id, Some(opts));
            let st = tokio::time::timeout(Duration::from_secs(5), s.next())
                .await
                .ok()??
                .ok()?;
            let cpu = st.cpu_stats?;
            let total = cpu.cpu_usage.and_then(|u| u.total_usage).unwrap_or(0);
            let system = cpu.system_cpu_usage.unwrap_or(0);
            let cpus = cpu.online_cpus.unwrap_or(1);
            let mem = st.memory_stats.map(|m| {
                let usage = m.usage.unwrap_or(0);
                let inactive = m
                    .stats
                    .as_ref()
                    .and_then(|s| {
                        s.get("total_inactive_file")
                            .or(s.get("inactive_file"))
                            .copied()
                    })
                    .unwrap_or(0);
                usage.saturating_sub(inactive)
            });
            let a = acc.get_or_insert((0, system, cpus, 0));
            a.0 += total;
            a.3 += mem.unwrap_or(0);
        }
        acc
    }
}

async fn create_from_image(
    docker: &Docker,
    inner: &ServicesInner,
    plan: &ServicePlan,
    image: &str,
) -> Result<Ctr, String> {
    let spec = &plan.spec;
    let mut exposed = vec![];
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &plan.ports {
        let (key, b) = port_binding(p)?;
        exposed.push(key.clone());
        bindings
            .entry(key)
            .or_insert_with(|| Some(vec![]))
            .get_or_insert_with(Vec::new)
            .push(b);
    }
    let name = container_name(&["gauntlet", &spec.name, &inner.run_id]);
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: spec.cmd.clone(),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: spec.cwd.as_ref().map(|p| p.display().to_string()),
        labels: Some(run_labels(inner, &spec.name, "service")),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(HostConfig {
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            restart_policy: Some(restart_policy(spec)),
            network_mode: spec.network.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(Some(CreateContainerOptionsBuilder::default().name(&name).build()), body)
        .await
        .map_err(|e| {
            if not_found(&e) {
                format!("image `{image}` is not here (no registry can be reached: build it first, e.g. with docker build)")
            } else {
                format!("create a container from `{image}`: {e}")
            }
        })?;
    let recorded =
        inner
            .state
            .add_container(&created.id, &name, ContainerRole::Service, &spec.name);
    let started = match recorded {
        Ok(()) => docker
            .start_container(&created.id, None)
            .await
            .map_err(|e| format!("start container `{name}`: {e}")),
        // Never started when cleanup could not find it.
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = started {
        let _ = docker
            .remove_container(
                &created.id,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await;
        inner.state.remove_container(&created.id);
        return Err(e);
    }
    inner.events.send(EventKind::Service(ServiceEvent {
        service: spec.name.clone(),
        kind: ServiceEventKind::Started { pid: None },
    }));
    Ok(Ctr {
        id: created.id,
        name,
    })
}

/// Append a container's output to the service's log file until the run ends.
async fn follow_logs(
    docker: Docker,
    c: Ctr,
    path: std::path::PathBuf,
    prefix: bool,
    from_start: bool,
    cancel: tokio_util::sync::CancellationToken,
) {
    let since = if from_start {
        0
    } else {
        chrono::Utc::now().timestamp() as i32
    };
    let opts = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .since(since)
        .build();
    let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return;
    };
    let mut s = docker.logs(&c.id, Some(opts));
    loop {
        let chunk = tokio::select! {
            _ = cancel.cancelled() => return,
            c = s.next() => c,
        };
        match chunk {
            Some(Ok(out)) => {
                if prefix {
                    let _ = write!(f, "[{}] ", c.name);
                }
                let _ = f.write_all(out.as_ref());
            }
            // The stream ends when the container stops; follow it again after a restart.
            _ => {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let opts = LogsOptionsBuilder::default()
                    .follow(true)
                    .stdout(true)
                    .stderr(true)
                    .since(chrono::Utc::now().timestamp() as i32)
                    .build();
                s = docker.logs(&c.id, Some(opts));
            }
        }
    }
}

/// Container life as service events: exits, restarts by the policy, new main processes.
async fn watch_container(docker: Docker, c: Ctr, service: String, inner: Arc<ServicesInner>) {
    let mut last_pid: i64 = -1;
    let mut last_restarts: i64 = -1;
    let mut was_running = true;
    loop {
        tokio::select! {
            _ = inner.tasks_cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let Ok(i) = inspect(&docker, &c.id).await else {
            continue;
        };
        let st = i.state.clone().unwrap_or_default();
        let pid = st.pid.unwrap_or(0);
        let restarts = i.restart_count.unwrap_or(0);
        let is_running = st.running.unwrap_or(false);
        let emit = |kind| {
            inner.events.send(EventKind::Service(ServiceEvent {
                service: service.clone(),
                kind,
            }))
        };
        if last_pid < 0 {
            (last_pid, last_restarts, was_running) = (pid, restarts, is_running);
            continue;
        }
        if pid != last_pid && last_pid > 0 && !st.paused.unwrap_or(false) {
            // The old main process is gone and a new one runs: restarted between two
            // looks, its exit code is no longer known.
            if is_running && was_running {
                emit(ServiceEventKind::Exited {
                    code: None,
                    signal: None,
                });
            }
        }
        if !is_running && was_running {
            emit(ServiceEventKind::Exited {
                code: st.exit_code.map(|c| c as i32),
                signal: None,
            });
        }
        if restarts > last_restarts {
            emit(ServiceEventKind::Restarting {
                attempt: restarts as u32,
            });
        }
        if is_running && pid > 0 && pid != last_pid {
            emit(ServiceEventKind::Started {
                pid: Some(pid as u32),
            });
        }
        (last_pid, last_restarts, was_running) = (pid, restarts, is_running);
    }
}

/// Run docker work synchronously from a `Drop` (panic path): on a thread of its own with
/// its own runtime, bounded in time.
fn on_own_runtime<F>(f: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()>,
{
    let h = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(20), f()).await;
            });
        }
    });
    let _ = h.join();
}

/// Panic path: remove the containers this run created.
pub(crate) fn drop_cleanup(inner: &ServicesInner) {
    let ids: Vec<String> = inner
        .state
        .snapshot()
        .containers
        .iter()
        .map(|c| c.id.clone())
        .collect();
    if ids.is_empty() {
        return;
    }
    let state = inner.state.clone();
    on_own_runtime(move || async move {
        let Ok(docker) = connect().await else { return };
        let _ = fault_ops::remove_containers(&docker, &state, &ids).await;
    });
}

/// `gauntlet cleanup`, docker part: remove containers labelled with a run id whose run is
/// not in progress; resume paused and start stopped containers recorded by dead runs.
pub(crate) async fn cleanup(
    docker: &Docker,
    live_runs: &[String],
    work: &[(String, Pending)],
    report: &mut CleanupReport,
) {
    for (run, p) in work {
        match p {
            Pending::PausedContainer { id } => match inspect(docker, id).await {
                Ok(i) if i.state.as_ref().and_then(|s| s.paused).unwrap_or(false) => {
                    match docker.unpause_container(id).await {
                        Ok(()) => report.actions.push(format!(
                            "unpaused container {} ({}, run {run})",
                            short(id),
                            i.name.unwrap_or_default().trim_start_matches('/')
                        )),
                        Err(e) => report
                            .errors
                            .push(format!("run {run}: unpause {}: {e}", short(id))),
                    }
                }
                _ => {}
            },
            Pending::StoppedContainer { id } => match inspect(docker, id).await {
                Ok(i) if !running(&i) => match docker.start_container(id, None).await {
                    Ok(()) => report.actions.push(format!(
                        "started container {} again ({}, stopped by run {run})",
                        short(id),
                        i.name.unwrap_or_default().trim_start_matches('/')
                    )),
                    Err(e) => report
                        .errors
                        .push(format!("run {run}: start {}: {e}", short(id))),
                },
                _ => {}
            },
            Pending::PausedProcess { .. } => {}
        }
    }
    let filters = HashMap::from([("label", vec![LABEL_RUN])]);
    let list = match docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
    {
        Ok(l) => l,
        Err(e) => {
            report.errors.push(format!("list containers: {e}"));
            return;
        }
    };
    for c in list {
        let labels = c.labels.clone().unwrap_or_default();
        let run = labels.get(LABEL_RUN).cloned().unwrap_or_default();
        if live_runs.contains(&run) || owner_alive(labels.get(LABEL_OWNER)) {
            continue;
        }
        let id = c.id.clone().unwrap_or_default();
        let name = c
            .names
            .as_ref()
            .and_then(|n| n.first().cloned())
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        match docker
            .remove_container(
                &id,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
        {
            Ok(()) => report.actions.push(format!(
                "removed container {name} ({}, {} of `{}`, run {run})",
                short(&id),
                labels
                    .get(LABEL_ROLE)
                    .map(String::as_str)
                    .unwrap_or("container"),
                labels.get(LABEL_SERVICE).map(String::as_str).unwrap_or("?"),
            )),
            Err(e) => report.errors.push(format!("run {run}: remove {name}: {e}")),
        }
    }
    let _ = Level::Info;
}
