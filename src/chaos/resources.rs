//! Resource samples per service, once a second: CPU (percent of one core) and memory.
//! Process backend: /proc of every process of the service (its process group when
//! gauntlet started it, and every descendant of its pid either way), summed.
//! Docker backend: the engine's stats (Δcpu / Δsystem × online CPUs × 100;
//! memory = usage − inactive_file).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::event::EventKind;

use super::os;
use super::{Control, ServicesInner};

pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(1);

enum Prev {
    Proc { ticks: u64, at: Instant },
    Docker { total: u64, system: u64 },
}

pub(crate) async fn run_sampler(inner: Arc<ServicesInner>) {
    let mut prev: HashMap<String, Prev> = HashMap::new();
    let mut cgroups: HashMap<String, CgFiles> = HashMap::new();
    let hz = os::clock_ticks() as f64;
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = inner.tasks_cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        for svc in inner.all() {
            let sample = match &svc.control {
                Control::Managed(m) => m.pid().map(|p| group_sample(p as i32, true)),
                Control::Unmanaged(u) => u.pid().map(|p| group_sample(p, false)),
                Control::Docker(d) => {
                    let Some(docker) = &inner.docker else {
                        continue;
                    };
                    // Straight from the container's cgroups when they are visible (fast,
                    // no load on the engine); the engine's stats otherwise.
                    let mut files = vec![];
                    for id in d.ids() {
                        if !cgroups.contains_key(&id) {
                            if let Some(pid) = d.main_pid(docker, &id).await {
                                if let Some(f) = CgFiles::of_pid(pid) {
                                    cgroups.insert(id.clone(), f);
                                }
                            }
                        }
                        files.push(cgroups.get(&id).and_then(|f| f.read()));
                    }
                    if !files.is_empty() && files.iter().all(Option::is_some) {
                        let (ns, mem) = files
                            .into_iter()
                            .flatten()
                            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
                        // In clock ticks, like processes.
                        Some(((ns as f64 * hz / 1e9) as u64, mem))
                    } else {
                        let r = tokio::select! {
                            _ = inner.tasks_cancel.cancelled() => return,
                            r = d.stats(docker) => r,
                        };
                        if let Some((total, system, cpus, mem)) = r {
                            let prev_docker =
                                prev.insert(svc.name.clone(), Prev::Docker { total, system });
                            if let Some(Prev::Docker {
                                total: t0,
                                system: s0,
                            }) = prev_docker
                            {
                                if system > s0 && total >= t0 {
                                    inner.events.send(EventKind::Resource {
                                        service: svc.name.clone(),
                                        cpu_pct: (total - t0) as f64 / (system - s0) as f64
                                            * cpus as f64
                                            * 100.0,
                                        mem_bytes: mem,
                                    });
                                }
                            }
                        }
                        continue;
                    }
                }
            };
            let Some((ticks, mem)) = sample else { continue };
            let now = Instant::now();
            let cpu = match prev.insert(svc.name.clone(), Prev::Proc { ticks, at: now }) {
                Some(Prev::Proc { ticks: t0, at }) if ticks >= t0 => {
                    let dt = now.duration_since(at).as_secs_f64();
                    if dt <= 0.0 {
                        continue;
                    }
                    (ticks - t0) as f64 / hz / dt * 100.0
                }
                _ => continue,
            };
            inner.events.send(EventKind::Resource {
                service: svc.name.clone(),
                cpu_pct: cpu,
                mem_bytes: mem,
            });
        }
    }
}

/// CPU ticks and RSS of a service's processes: its group (when gauntlet started it) and
/// every descendant, so a master/worker server counts its workers.
fn group_sample(pid: i32, group: bool) -> (u64, u64) {
    os::service_members(pid, group)
        .iter()
        .filter_map(|p| os::proc_cpu_mem(*p))
        .fold((0, 0), |(t, m), (t2, m2)| (t + t2, m + m2))
}

/// The cgroup files of a container: CPU time and memory.
enum CgFiles {
    V1 { cpuacct: PathBuf, memory: PathBuf },
    V2 { dir: PathBuf },
}

impl CgFiles {
    fn of_pid(pid: i32) -> Option<CgFiles> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let root = Path::new("/sys/fs/cgroup");
        if root.join("cgroup.controllers").exists() {
            let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
            let dir = root.join(rel.trim_start_matches('/'));
            return dir.join("cpu.stat").exists().then_some(CgFiles::V2 { dir });
        }
        let mut cpuacct = None;
        let mut memory = None;
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let dir = root.join(ctrls).join(path.trim_start_matches('/'));
            if ctrls.split(',').any(|c| c == "cpuacct") {
                cpuacct = Some(dir.join("cpuacct.usage"));
            } else if ctrls == "memory" {
                memory = Some(dir);
            }
        }
        let (cpuacct, memory) = (cpuacct?, memory?);
        (cpuacct.exists() && memory.join("memory.usage_in_bytes").exists())
            .then_some(CgFiles::V1 { cpuacct, memory })
    }

    /// (CPU time in ns, memory in use minus inactive file cache).
    fn read(&self) -> Option<(u64, u64)> {
        let num =
            |p: PathBuf| -> Option<u64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
        let stat = |p: PathBuf, key: &str| -> Option<u64> {
            std::fs::read_to_string(p).ok()?.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok()).flatten()
            })
        };
        match self {
            CgFiles::V1 { cpuacct, memory } => {
                let ns = num(cpuacct.clone())?;
                let usage = num(memory.join("memory.usage_in_bytes"))?;
                let inactive = stat(memory.join("memory.stat"), "total_inactive_file").unwrap_or(0);
                Some((ns, usage.saturating_sub(inactive)))
            }
            CgFiles::V2 { dir } => {
                let ns = stat(dir.join("cpu.stat"), "usage_usec")? * 1000;
                let usage = num(dir.join("memory.current"))?;
                let inactive = stat(dir.join("memory.stat"), "inactive_file").unwrap_or(0);
                Some((ns, usage.saturating_sub(inactive)))
            }
        }
    }
}
