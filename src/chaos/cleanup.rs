//! `gauntlet cleanup`: undo what runs that died left behind, from their state files
//! (processes through the process backend's signals, containers through Docker).

use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

use super::os::{same_process, signal, signal_group, signal_pid};
use super::state::{CleanupReport, Pending, ProcRole, RunState};
use super::ChaosError;

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
    let mut states = read_states(reports_root, &mut report)?;

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
        *st = undo_processes(st, &mut report, &mut docker_work);
    }
    undo_docker(&mut states, &live_runs, &docker_work, &mut report).await;
    write_states(&mut states, &live_runs, &report);
    Ok(report)
}

/// Every run's state file under `reports_root`, oldest run first.
fn read_states(
    reports_root: &Path,
    report: &mut CleanupReport,
) -> Result<Vec<(PathBuf, RunState)>, ChaosError> {
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
    Ok(states)
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
    states: &mut [(PathBuf, RunState)],
    live_runs: &[String],
    docker_work: &[(String, Pending)],
    report: &mut CleanupReport,
) {
    let need_docker =
        !docker_work.is_empty() || states.iter().any(|(_, s)| !s.containers.is_empty());
    match super::docker::connect().await {
        Ok(docker) => {
            super::docker::cleanup(&docker, live_runs, docker_work, report).await;
            for (_, st) in states.iter_mut() {
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
}

/// Rewrite the state files: a run with nothing left is finished.
fn write_states(states: &mut [(PathBuf, RunState)], live_runs: &[String], report: &CleanupReport) {
    for (path, st) in states.iter_mut() {
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
}
