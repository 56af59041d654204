//! `gauntlet cleanup`: undo what runs that died left behind, from their state files
//! (processes through the process backend's signals, containers through Docker).

use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

use super::os::{same_process, signal, signal_group, signal_pid};
use super::state::{write_state, CleanupReport, LockError, Pending, ProcRole, RunLock, RunState};
use super::ChaosError;

fn owner_alive(st: &RunState) -> bool {
    same_process(st.gauntlet_pid as i32, st.gauntlet_start_time)
}

/// How deep under `--reports` state files are looked for (runs grouped in folders).
const MAX_DEPTH: usize = 8;

/// Find and remove leftovers of earlier runs under `reports_root`: stray processes and
/// paused ones recorded in their state files (every `state.json` below it, at any depth
/// up to 8 folders, symlinks not followed), containers labelled with a run id whose run
/// is no longer going, paused or stopped containers. A run folder still locked by its
/// run (or whose gauntlet process is alive) is left alone and named in `skipped`.
pub async fn cleanup(reports_root: &Path) -> Result<CleanupReport, ChaosError> {
    let mut report = CleanupReport::default();
    let mut live_runs: Vec<String> = vec![];
    let found = read_states(reports_root, &mut report)?;

    // Each folder's lock is held while its state is undone and rewritten.
    let mut states: Vec<(PathBuf, RunState, Option<RunLock>)> = vec![];
    let mut docker_work: Vec<(String, Pending)> = vec![];
    for (path, st) in found {
        let done = st.processes.is_empty() && st.pending.is_empty() && st.containers.is_empty();
        if st.finished && done {
            continue;
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let lock = match RunLock::acquire(dir) {
            Ok(l) => Some(l),
            Err(LockError::Busy(_)) => {
                live_runs.push(st.run_id.clone());
                report.skipped.push(format!(
                    "run {} ({}): its folder is locked by a live gauntlet run",
                    st.run_id,
                    dir.display()
                ));
                continue;
            }
            // A folder that cannot hold a lock file: the owner's pid decides below.
            Err(LockError::Io { .. }) => None,
        };
        if owner_alive(&st) {
            live_runs.push(st.run_id.clone());
            if !st.finished {
                report.skipped.push(format!(
                    "run {} ({}) is still in progress (gauntlet pid {})",
                    st.run_id,
                    dir.display(),
                    st.gauntlet_pid
                ));
            }
            continue;
        }
        let left = undo_processes(&st, &mut report, &mut docker_work);
        states.push((path, left, lock));
    }
    undo_docker(&mut states, &live_runs, &docker_work, &mut report).await;
    write_states(&mut states, &mut report);
    Ok(report)
}

/// Every run's state file under `reports_root`, sorted by run id then path.
fn read_states(
    reports_root: &Path,
    report: &mut CleanupReport,
) -> Result<Vec<(PathBuf, RunState)>, ChaosError> {
    if let Err(e) = std::fs::read_dir(reports_root) {
        if !reports_root.exists() {
            return Ok(vec![]);
        }
        return Err(ChaosError::Cleanup(format!(
            "cannot read {}: {e}",
            reports_root.display()
        )));
    }
    let mut files = vec![];
    find_state_files(reports_root, 0, &mut files, report);
    let mut states: Vec<(PathBuf, RunState)> = vec![];
    for p in files {
        match std::fs::read_to_string(&p)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<RunState>(&t).map_err(|e| e.to_string()))
        {
            Ok(st) => states.push((p, st)),
            Err(err) => report
                .errors
                .push(format!("cannot read {}: {err}", p.display())),
        }
    }
    states.sort_by(|a, b| a.1.run_id.cmp(&b.1.run_id).then(a.0.cmp(&b.0)));
    Ok(states)
}

/// Collect `state.json` files under `dir`; symlinks (e.g. `latest`) are not followed, so
/// no run is counted twice and nothing outside `--reports` is touched.
fn find_state_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>, report: &mut CleanupReport) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            report
                .errors
                .push(format!("cannot read {}: {e}", dir.display()));
            return;
        }
    };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let p = e.path();
        if ft.is_dir() && depth < MAX_DEPTH {
            find_state_files(&p, depth + 1, out, report);
        } else if ft.is_file() && e.file_name() == "state.json" {
            out.push(p);
        }
    }
}

/// Resume the paused processes and kill the stray ones of a dead run; the docker part
/// goes to `docker_work`. Returns what is left to do.
fn undo_processes(
    st: &RunState,
    report: &mut CleanupReport,
    docker_work: &mut Vec<(String, Pending)>,
) -> RunState {
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
                    // The same scope the pause had: group, or process tree.
                    let r = signal(*pid, *group, Signal::SIGCONT);
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
    left
}

/// Docker: labelled containers of runs no longer going, and recorded paused/stopped ones.
async fn undo_docker(
    states: &mut [(PathBuf, RunState, Option<RunLock>)],
    live_runs: &[String],
    docker_work: &[(String, Pending)],
    report: &mut CleanupReport,
) {
    let need_docker =
        !docker_work.is_empty() || states.iter().any(|(_, s, _)| !s.containers.is_empty());
    match super::docker::connect().await {
        Ok(docker) => {
            super::docker::cleanup(&docker, live_runs, docker_work, report).await;
            // `states` holds only runs that are not live.
            for (_, st, _) in states.iter_mut() {
                st.containers.clear();
                st.pending
                    .retain(|p| matches!(p, Pending::PausedProcess { .. }));
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
}

/// Rewrite the state files of the runs handled (durably, as the run does): a run with
/// nothing left is finished.
fn write_states(states: &mut [(PathBuf, RunState, Option<RunLock>)], report: &mut CleanupReport) {
    for (path, st, _lock) in states.iter_mut() {
        let docker_left = report
            .errors
            .iter()
            .any(|e| e.contains(&st.run_id) || e.starts_with("Docker is unreachable"));
        if st.processes.is_empty() && st.pending.is_empty() && !docker_left {
            st.finished = true;
            st.containers.clear();
            st.pending.clear();
        }
        if let Err(e) = write_state(path, st) {
            report.errors.push(e.to_string());
        }
    }
}
