//! The run-state file (`reports/<run-id>/state.json`): every process and container the
//! run created, and every process or container it paused or stopped, kept up to date so
//! that `gauntlet cleanup` can undo what a run that died left behind.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
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

/// The run state could not be written durably: whatever needed it is not done.
#[derive(Debug, thiserror::Error)]
#[error("cannot record the run state in {}: {source}", path.display())]
pub struct StateError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Write `st` to `path` so that a crash at any moment leaves the old or the new state,
/// whole and on disk: a temp file beside it, fsync, rename, fsync the folder.
pub(crate) fn write_state(path: &Path, st: &RunState) -> Result<(), StateError> {
    let err = |source| StateError {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_vec_pretty(st).map_err(|e| err(std::io::Error::other(e)))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = path.with_extension("json.tmp");
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(err)
}

/// fsync a folder (makes a rename in it durable); a file system that cannot sync folders
/// (EINVAL) has nothing more to offer.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::File::open(dir)?.sync_all() {
        Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => Ok(()),
        r => r,
    }
}

/// The state file of the current run. Whatever a fault or a spawn changes is recorded
/// (written durably) *before* it is done, and not done when it cannot be recorded; what is
/// undone is forgotten afterwards, best effort (a stale entry is harmless: cleanup checks
/// a process's start time, and resuming a running process changes nothing).
pub struct StateFile {
    path: Option<PathBuf>,
    state: Mutex<RunState>,
}

impl StateFile {
    /// The state of a new run, written at once: a run whose undo cannot be recorded does
    /// not start.
    pub fn new(path: Option<PathBuf>, run_id: &str) -> Result<StateFile, StateError> {
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
        f.check()?;
        Ok(f)
    }

    fn save(&self, st: &RunState) -> Result<(), StateError> {
        match &self.path {
            Some(path) => write_state(path, st),
            None => Ok(()),
        }
    }

    /// Write the current state again: proves the file can still be written, before
    /// starting something that can only be recorded once it runs (its pid).
    pub fn check(&self) -> Result<(), StateError> {
        self.save(&self.state.lock().unwrap())
    }

    /// Record a change; the state in memory changes only if the file was written.
    fn record(&self, f: impl FnOnce(&mut RunState)) -> Result<(), StateError> {
        let mut st = self.state.lock().unwrap();
        let mut next = st.clone();
        f(&mut next);
        self.save(&next)?;
        *st = next;
        Ok(())
    }

    /// Forget what was undone: in memory always, on disk best effort (see the type).
    fn forget(&self, f: impl FnOnce(&mut RunState)) {
        let mut st = self.state.lock().unwrap();
        f(&mut st);
        let _ = self.save(&st);
    }

    pub fn add_process(&self, pid: i32, role: ProcRole, service: &str) -> Result<(), StateError> {
        let start_time = proc_start_time(pid);
        self.record(|st| {
            st.processes.push(ProcRecord {
                pid,
                start_time,
                role,
                service: service.to_string(),
                group: role != ProcRole::Stress,
            })
        })
    }

    pub fn remove_process(&self, pid: i32) {
        self.forget(|st| st.processes.retain(|p| p.pid != pid));
    }

    pub fn add_container(
        &self,
        id: &str,
        name: &str,
        role: ContainerRole,
        service: &str,
    ) -> Result<(), StateError> {
        self.record(|st| {
            st.containers.push(ContainerRecord {
                id: id.to_string(),
                name: name.to_string(),
                role,
                service: service.to_string(),
            })
        })
    }

    pub fn remove_container(&self, id: &str) {
        self.forget(|st| st.containers.retain(|c| c.id != id));
    }

    pub fn add_pending(&self, p: Pending) -> Result<(), StateError> {
        self.record(|st| st.pending.push(p))
    }

    pub fn remove_pending(&self, p: &Pending) {
        self.forget(|st| {
            if let Some(i) = st.pending.iter().position(|x| x == p) {
                st.pending.remove(i);
            }
        });
    }

    pub fn finish(&self) {
        self.forget(|st| st.finished = true);
    }

    pub fn snapshot(&self) -> RunState {
        self.state.lock().unwrap().clone()
    }
}

/// The name of the lock file in a run folder.
pub const LOCK_FILE: &str = "run.lock";

/// A run folder's advisory lock (`flock` on `<dir>/run.lock`), held by its run for its
/// whole life and by `gauntlet cleanup` while it works on the folder; the kernel drops it
/// when the holder dies, however it dies.
#[derive(Debug)]
pub struct RunLock {
    _lock: Flock<std::fs::File>,
}

/// Why a run folder's lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{} is locked by another live gauntlet process", .0.display())]
    Busy(PathBuf),
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RunLock {
    /// Take the lock of the run folder `dir` without waiting (creating the lock file).
    pub fn acquire(dir: &Path) -> Result<RunLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(RunLock { _lock: lock }),
            Err((_, Errno::EWOULDBLOCK)) => Err(LockError::Busy(dir.to_path_buf())),
            Err((_, errno)) => Err(io(std::io::Error::from(errno))),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn paused(pid: i32) -> Pending {
        Pending::PausedProcess {
            pid,
            start_time: None,
            group: false,
        }
    }

    #[test]
    fn each_change_is_on_disk_whole_and_no_temp_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let f = StateFile::new(Some(path.clone()), "r").unwrap();
        f.add_pending(paused(42)).unwrap();
        let on_disk: RunState =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(on_disk.pending, vec![paused(42)]);
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[test]
    fn a_change_that_cannot_be_written_is_refused_and_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let f = StateFile::new(Some(path.clone()), "r").unwrap();
        // A folder where the file goes: the rename fails, whoever runs the test.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        let e = f.add_pending(paused(42)).unwrap_err();
        assert!(e.to_string().contains("state.json"), "{e}");
        assert!(f.snapshot().pending.is_empty());
        assert!(f.check().is_err());
        assert!(StateFile::new(Some(path), "r2").is_err());
    }

    #[test]
    fn a_run_folder_is_locked_once() {
        let dir = tempfile::tempdir().unwrap();
        let held = RunLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            RunLock::acquire(dir.path()),
            Err(LockError::Busy(_))
        ));
        drop(held);
        RunLock::acquire(dir.path()).unwrap();
    }
}
