//! The run-state file (`reports/<run-id>/state.json`): every process and container the
//! run created, and every process or container it paused or stopped, kept up to date so
//! that `gauntlet cleanup` can undo what a run that died left behind.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::os::proc_start_time;

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
