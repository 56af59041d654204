//! The operating system side shared by the backends and `cleanup`: signals, and what
//! /proc says about a process. (Read by hand: the few fields needed do not justify the
//! `procfs` crate.)

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// A signal that could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("{sig} to {target}: {errno}")]
pub struct SignalError {
    pub sig: Signal,
    /// "pid 42" or "process group 42".
    pub target: String,
    pub errno: nix::errno::Errno,
}

/// Signal a whole process group.
pub(crate) fn signal_group(pgid: i32, sig: Signal) -> Result<(), SignalError> {
    signal::killpg(Pid::from_raw(pgid), sig).map_err(|errno| SignalError {
        sig,
        target: format!("process group {pgid}"),
        errno,
    })
}

pub(crate) fn signal_pid(pid: i32, sig: Signal) -> Result<(), SignalError> {
    signal::kill(Pid::from_raw(pid), sig).map_err(|errno| SignalError {
        sig,
        target: format!("pid {pid}"),
        errno,
    })
}

/// Signal `pid` and every descendant (a service gauntlet did not start: nginx's master
/// and its workers). Parents first, so a stopped parent cannot respawn a child meanwhile.
pub(crate) fn signal_tree(pid: i32, sig: Signal) -> Result<(), SignalError> {
    signal_pid(pid, sig)?;
    for child in tree_members(pid).into_iter().filter(|p| *p != pid) {
        // A child may exit between the listing and the signal.
        let _ = signal_pid(child, sig);
    }
    Ok(())
}

/// Signal a service: its whole group when it leads one (gauntlet started it), else the
/// process and its descendants.
pub(crate) fn signal(pid: i32, group: bool, sig: Signal) -> Result<(), SignalError> {
    if group {
        signal_group(pid, sig)
    } else {
        signal_tree(pid, sig)
    }
}

/// Wait (at most 2s) until the process state satisfies `ok`.
pub(crate) async fn wait_state(pid: i32, ok: impl Fn(Option<char>) -> bool) {
    let start = std::time::Instant::now();
    while !ok(proc_state(pid)) && start.elapsed() < std::time::Duration::from_secs(2) {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Fields of /proc/<pid>/stat after the command name.
fn proc_stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = s.rfind(')')?;
    Some(
        s[close + 2..]
            .split_whitespace()
            .map(String::from)
            .collect(),
    )
}

/// The process's state letter (R, S, D, T, t, Z, ...), None when gone.
pub fn proc_state(pid: i32) -> Option<char> {
    proc_stat_fields(pid)?.first()?.chars().next()
}

/// Start time of a process in clock ticks since boot (identifies it against pid reuse).
pub(crate) fn proc_start_time(pid: i32) -> Option<u64> {
    proc_stat_fields(pid)?.get(19)?.parse().ok()
}

/// Every live process (not a zombie) as (pid, parent pid, process group).
fn all_processes() -> Vec<(i32, i32, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let f = proc_stat_fields(pid)?;
            if f.first().map(String::as_str) == Some("Z") {
                return None;
            }
            Some((pid, f.get(1)?.parse().ok()?, f.get(2)?.parse().ok()?))
        })
        .collect()
}

/// `pid` and every live descendant, parents before children.
pub(crate) fn tree_members(pid: i32) -> Vec<i32> {
    service_members(pid, false)
}

/// The processes of a service: its group (when it leads one) and every descendant of
/// `pid`, also those that left the group (a daemon's `setsid`). What resources sum and
/// the process-state health check looks at.
pub(crate) fn service_members(pid: i32, group: bool) -> Vec<i32> {
    let all = all_processes();
    let mut out: Vec<i32> = if group {
        all.iter()
            .filter(|(_, _, g)| *g == pid)
            .map(|(p, _, _)| *p)
            .collect()
    } else {
        vec![]
    };
    if !out.contains(&pid) && all.iter().any(|(p, _, _)| *p == pid) {
        out.insert(0, pid);
    }
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        let kids: Vec<i32> = all
            .iter()
            .filter(|(p, pp, _)| *pp == parent && !out.contains(p))
            .map(|(p, _, _)| *p)
            .collect();
        out.extend(kids);
        i += 1;
    }
    out
}

/// utime + stime in clock ticks, and resident memory in bytes.
pub(crate) fn proc_cpu_mem(pid: i32) -> Option<(u64, u64)> {
    let f = proc_stat_fields(pid)?;
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let rss_pages: u64 = f.get(21)?.parse().ok()?;
    Some((ticks, rss_pages * page_size()))
}

pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { nix::libc::sysconf(nix::libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}

pub(crate) fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
    if v > 0 {
        v as u64
    } else {
        100
    }
}

/// Is `pid` alive and the same process as recorded (same start time)?
pub(crate) fn same_process(pid: i32, start_time: Option<u64>) -> bool {
    match (proc_start_time(pid), start_time) {
        (Some(now), Some(then)) => now == then && proc_state(pid) != Some('Z'),
        (Some(_), None) => proc_state(pid) != Some('Z'),
        _ => false,
    }
}
