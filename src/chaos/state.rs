//! The run-state file (`reports/<run-id>/state.json`): every process and container the
//! run created, and every process or container it paused or stopped, kept up to date so
//! that `gauntlet cleanup` can undo what a run that died left behind.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use super::os::{proc_start_time, same_process, signal_group, signal_pid};
use super::ChaosError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcRole {
    Service,
    Duplicate,
    Stress,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcRecord {
    pub pid: i32,
    /// Start time in clock ticks since boot: a recycled pid is not the same process.
    pub start_time: Option<u64>,
    pub role: ProcRole,
    pub service: String,
    /// The process leads its own process group (signals go to the group).
    #[serde(default)]
    pub group: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerRole {
    /// Created by the run from the service's image.
    Service,
    /// A duplicate created by a fault.
    Duplicate,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub role: ContainerRole,
    pub service: String,
}

/// A fault in force that must be undone: a paused process or container, a stopped
/// container that the run did not create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "what")]
pub enum Pending {
    PausedProcess {
        pid: i32,
        start_time: Option<u64>,
        group: bool,
    },
    PausedContainer {
        id: String,
    },
    StoppedContainer {
        id: String,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunState {
    pub run_id: String,
    pub gauntlet_pid: u32,
    pub gauntlet_start_time: Option<u64>,
    /// true once the run stopped everything it started and undid every fault.
    pub finished: bool,
    pub processes: Vec<ProcRecord>,
    pub containers: Vec<ContainerRecord>,
    pub pending: Vec<Pending>,
}

/// The state file of the current run; every change is written at once (atomically).
pub struct StateFile {
    path: Option<PathBuf>,
    state: Mutex<RunState>,
}

impl StateFile {
    pub fn new(path: Option<PathBuf>, run_id: &str) -> StateFile {
        let me = std::process::id();
        let f = StateFile {
            path,
            state: Mutex::new(RunState {
                run_id: run_id.to_string(),
                gauntlet_pid: me,
                gauntlet_start_time: proc_start_time(me as i32),
                ..RunState::default()
            }),
        };
        f.save(&f.state.lock().unwrap());
        f
    }

    fn save(&self, st: &RunState) {
        let Some(path) = &self.path else { return };
        let Ok(text) = serde_json::to_vec_pretty(st) else {
            return;
        };
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }

    fn update(&self, f: impl FnOnce(&mut RunState)) {
        let mut st = self.state.lock().unwrap();
        f(&mut st);
        self.save(&st);
    }

    pub fn add_process(&self, pid: i32, role: ProcRole, service: &str) {
        let start_time = proc_start_time(pid);
        self.update(|st| {
            st.processes.push(ProcRecord {
                pid,
                start_time,
                role,
                service: service.to_string(),
                group: role != ProcRole::Stress,
            })
        });
    }

    pub fn remove_process(&self, pid: i32) {
        self.update(|st| st.processes.retain(|p| p.pid != pid));
    }

    pub fn add_container(&self, id: &str, name: &str, role: ContainerRole, service: &str) {
        self.update(|st| {
            st.containers.push(ContainerRecord {
                id: id.to_string(),
                name: name.to_string(),
                role,
                service: service.to_string(),
            })
        });
    }

    pub fn remove_container(&self, id: &str) {
        self.update(|st| st.containers.retain(|c| c.id != id));
    }

    pub fn add_pending(&self, p: Pending) {
        self.update(|st| st.pending.push(p));
    }

    pub fn remove_pending(&self, p: &Pending) {
        self.update(|st| {
            if let Some(i) = st.pending.iter().position(|x| x == p) {
                st.pending.remove(i);
            }
        });
    }

    pub fn finish(&self) {
        self.update(|st| st.finished = true);
    }

    pub fn snapshot(&self) -> RunState {
        self.state.lock().unwrap().clone()
    }
}

/// What `gauntlet cleanup` did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CleanupReport {
    /// One line per thing done ("killed stray process 1234 (duplicate of api, run X)").
    pub actions: Vec<String>,
    /// Runs still in progress, left alone.
    pub skipped: Vec<String>,
    /// What could not be done, with why.
    pub errors: Vec<String>,
}

impl CleanupReport {
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for CleanupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.actions.is_empty() && self.errors.is_empty() {
            writeln!(f, "nothing to clean up")?;
        }
        for a in &self.actions {
            writeln!(f, "{a}")?;
        }
        for s in &self.skipped {
            writeln!(f, "skipped: {s}")?;
        }
        for e in &self.errors {
            writeln!(f, "error: {e}")?;
        }
        Ok(())
    }
}

fn owner_alive(st: &RunState) -> bool {
    same_process(st.gauntlet_pid as i32, st.gauntlet_start_time)
}

/// Find and remove leftovers of earlier runs under `reports_root`: stray processes and
/// paused ones recorded in their state files, containers labelled with a run id whose run
/// is no longer going, paused or stopped containers. Runs still in progress (their
/// gauntlet process alive) are left alone.
pub async fn cleanup(reports_root: &Path) -> Result<CleanupReport, ChaosError> {
    let mut report = CleanupReport::default();
    let mut live_runs: Vec<String> = vec![];
    let mut states: Vec<(PathBuf, RunState)> = vec![];
    if let Ok(dir) = std::fs::read_dir(reports_root) {
        for e in dir.flatten() {
            let p = e.path().join("state.json");
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            match serde_json::from_str::<RunState>(&text) {
                Ok(st) => states.push((p, st)),
                Err(err) => report
                    .errors
                    .push(format!("cannot read {}: {err}", p.display())),
            }
        }
    } else if reports_root.exists() {
        return Err(ChaosError::Cleanup(format!(
            "cannot read {}",
            reports_root.display()
        )));
    }
    states.sort_by(|a, b| a.1.run_id.cmp(&b.1.run_id));

    let mut docker_work: Vec<(String, Pending)> = vec![];
    for (_, st) in &mut states {
        if owner_alive(st) {
            live_runs.push(st.run_id.clone());
            if !st.finished {
                report.skipped.push(format!(
                    "run {} is still in progress (gauntlet pid {})",
                    st.run_id, st.gauntlet_pid
                ));
            }
            continue;
        }
        let mut left = RunState {
            processes: vec![],
            pending: vec![],
            containers: vec![],
            ..st.clone()
        };
        for p in &st.pending {
            match p {
                Pending::PausedProcess {
                    pid,
                    start_time,
                    group,
                } => {
                    if same_process(*pid, *start_time) {
                        let r = if *group {
                            signal_group(*pid, Signal::SIGCONT)
                        } else {
                            signal_pid(*pid, Signal::SIGCONT)
                        };
                        match r {
                            Ok(()) => report
                                .actions
                                .push(format!("resumed paused process {pid} (run {})", st.run_id)),
                            Err(e) => {
                                report.errors.push(format!("run {}: {e}", st.run_id));
                                left.pending.push(p.clone());
                            }
                        }
                    }
                }
                other => docker_work.push((st.run_id.clone(), other.clone())),
            }
        }
        for p in &st.processes {
            if !same_process(p.pid, p.start_time) {
                continue;
            }
            let r = if p.group {
                let _ = signal_group(p.pid, Signal::SIGCONT);
                signal_group(p.pid, Signal::SIGKILL)
            } else {
                let _ = signal_pid(p.pid, Signal::SIGCONT);
                signal_pid(p.pid, Signal::SIGKILL)
            };
            let what = match p.role {
                ProcRole::Service => format!("service `{}`", p.service),
                ProcRole::Duplicate => format!("duplicate of `{}`", p.service),
                ProcRole::Stress => format!("stress process on `{}`", p.service),
            };
            match r {
                Ok(()) => report.actions.push(format!(
                    "killed stray process {} ({what}, run {})",
                    p.pid, st.run_id
                )),
                Err(e) => {
                    report.errors.push(format!("run {}: {e}", st.run_id));
                    left.processes.push(p.clone());
                }
            }
        }
        left.containers = st.containers.clone();
        // Docker leftovers stay recorded until Docker has handled them.
        left.pending.extend(
            st.pending
                .iter()
                .filter(|p| !matches!(p, Pending::PausedProcess { .. }))
                .cloned(),
        );
        *st = left;
    }

    // Docker: labelled containers of runs no longer going, and recorded paused/stopped ones.
    let need_docker =
        !docker_work.is_empty() || states.iter().any(|(_, s)| !s.containers.is_empty());
    match super::docker::connect().await {
        Ok(docker) => {
            super::docker::cleanup(&docker, &live_runs, &docker_work, &mut report).await;
            for (_, st) in &mut states {
                if !live_runs.contains(&st.run_id) {
                    st.containers.clear();
                    st.pending
                        .retain(|p| matches!(p, Pending::PausedProcess { .. }));
                }
            }
        }
        Err(e) => {
            if need_docker {
                report.errors.push(format!(
                    "Docker is unreachable, containers left as they are: {e}"
                ));
            }
        }
    }

    for (path, st) in &mut states {
        if live_runs.contains(&st.run_id) {
            continue;
        }
        let docker_left = report
            .errors
            .iter()
            .any(|e| e.contains(&st.run_id) || e.starts_with("Docker is unreachable"));
        if st.processes.is_empty() && st.pending.is_empty() && !docker_left {
            st.finished = true;
            st.containers.clear();
            st.pending.clear();
        }
        if let Ok(text) = serde_json::to_vec_pretty(st) {
            let tmp = path.with_extension("json.tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, &*path);
            }
        }
    }
    Ok(report)
}
