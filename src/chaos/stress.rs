//! CPU and memory pressure: forked child processes of gauntlet (no external tool needed)
//! that spin (cpu) or hold touched memory (memory). For the docker backend they are
//! placed in the target container's cgroups before they start working, so the pressure
//! counts against the container's CPU share and memory limit (and shows in its stats),
//! whatever the image holds (a `FROM scratch` image has no shell to exec a loop in).
//!
//! Each child closes every inherited descriptor at once (it must not keep gauntlet's
//! sockets open), dies with gauntlet (PR_SET_PDEATHSIG), and is named `gauntlet-stress`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::signal::{self, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};

/// The cgroup files a stress process must join (`cgroup.procs` of each hierarchy).
#[derive(Debug, Clone)]
pub struct CgroupTarget {
    pub procs_files: Vec<PathBuf>,
}

/// Stress processes that could not be started or placed.
#[derive(Debug, thiserror::Error)]
pub enum StressError {
    #[error("cannot read /proc/{pid}/cgroup: {source}")]
    ReadCgroup { pid: i32, source: std::io::Error },
    #[error("no cgroup of process {0} is reachable under /sys/fs/cgroup")]
    NoCgroup(i32),
    #[error("cannot move pid {pid} into {}: {source}", file.display())]
    JoinCgroup {
        pid: i32,
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {errno}")]
    Os {
        what: &'static str,
        errno: nix::errno::Errno,
    },
}

impl CgroupTarget {
    /// The cgroups of process `pid` (e.g. a container's main process), as seen from here.
    pub fn of_pid(pid: i32) -> Result<CgroupTarget, StressError> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map_err(|source| StressError::ReadCgroup { pid, source })?;
        let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let mut files = vec![];
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let rel = path.trim_start_matches('/');
            let dir = if ctrls.is_empty() {
                if !unified {
                    continue;
                }
                PathBuf::from("/sys/fs/cgroup").join(rel)
            } else {
                let wanted = ctrls
                    .split(',')
                    .any(|c| matches!(c, "cpu" | "cpuacct" | "memory" | "pids" | "cpuset"));
                if !wanted {
                    continue;
                }
                PathBuf::from("/sys/fs/cgroup").join(ctrls).join(rel)
            };
            let f = dir.join("cgroup.procs");
            if f.exists() {
                files.push(f);
            }
        }
        if files.is_empty() {
            return Err(StressError::NoCgroup(pid));
        }
        Ok(CgroupTarget { procs_files: files })
    }

    fn join(&self, pid: i32) -> Result<(), StressError> {
        for f in &self.procs_files {
            std::fs::write(f, pid.to_string()).map_err(|source| StressError::JoinCgroup {
                pid,
                file: f.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// Stress processes in force; `stop` kills and reaps them.
#[derive(Debug)]
pub struct StressProcs {
    pids: Vec<i32>,
}

impl StressProcs {
    pub fn pids(&self) -> &[i32] {
        &self.pids
    }

    /// SIGKILL and reap every one (blocking, but SIGKILL is quick).
    pub fn stop(&self) {
        for &p in &self.pids {
            let _ = signal::kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        for &p in &self.pids {
            let _ = waitpid(Pid::from_raw(p), None);
        }
    }
}

#[derive(Clone, Copy)]
enum Work {
    Spin,
    Hold(u64),
}

/// `workers` processes that each keep one core busy.
pub fn cpu(workers: u32, cgroup: Option<&CgroupTarget>) -> Result<StressProcs, StressError> {
    let mut procs = StressProcs { pids: vec![] };
    for _ in 0..workers {
        match fork_worker(Work::Spin, cgroup) {
            Ok(p) => procs.pids.push(p),
            Err(e) => {
                procs.stop();
                return Err(e);
            }
        }
    }
    Ok(procs)
}

/// One process that allocates and touches `bytes` of memory, then holds it.
pub fn memory(bytes: u64, cgroup: Option<&CgroupTarget>) -> Result<StressProcs, StressError> {
    Ok(StressProcs {
        pids: vec![fork_worker(Work::Hold(bytes), cgroup)?],
    })
}

fn fork_worker(work: Work, cgroup: Option<&CgroupTarget>) -> Result<i32, StressError> {
    let (r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe().map_err(|errno| StressError::Os {
        what: "pipe",
        errno,
    })?;
    let parent = std::process::id() as i32;
    // SAFETY: the child only makes raw system calls (no allocation, no locks) and never
    // returns into Rust code of the parent: it ends in `_exit` or loops forever.
    match unsafe { fork() }.map_err(|errno| StressError::Os {
        what: "fork",
        errno,
    })? {
        ForkResult::Child => unsafe { child_main(r.as_raw_fd(), parent, work) },
        ForkResult::Parent { child } => {
            drop(r);
            let pid = child.as_raw();
            if let Some(cg) = cgroup {
                if let Err(e) = cg.join(pid) {
                    drop(w); // the child reads EOF and exits
                    let _ = signal::kill(child, Signal::SIGKILL);
                    let _ = waitpid(child, None);
                    return Err(e);
                }
            }
            // Go.
            let _ = nix::unistd::write(&w, b"g");
            drop(w);
            Ok(pid)
        }
    }
}

/// The forked child: only async-signal-safe system calls.
unsafe fn child_main(go_fd: i32, parent: i32, work: Work) -> ! {
    use nix::libc;
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        if libc::getppid() != parent {
            libc::_exit(0);
        }
        libc::prctl(
            libc::PR_SET_NAME,
            c"gauntlet-stress".as_ptr() as libc::c_ulong,
        );
        // Keep only the go pipe (as fd 0): gauntlet's sockets must not stay open here.
        libc::dup2(go_fd, 0);
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
            for fd in 3..65536 {
                libc::close(fd);
            }
        }
        // Default signal dispositions (SIGTERM must kill it).
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::signal(sig, libc::SIG_DFL);
        }
        let mut b = 0u8;
        let n = libc::read(0, &mut b as *mut u8 as *mut libc::c_void, 1);
        libc::close(0);
        if n != 1 {
            libc::_exit(0);
        }
        match work {
            Work::Spin => {
                let mut x: u64 = 0;
                loop {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    std::ptr::read_volatile(&x);
                }
            }
            Work::Hold(bytes) => {
                let len = bytes.max(1) as usize;
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                if p == libc::MAP_FAILED {
                    libc::_exit(1);
                }
                let p = p as *mut u8;
                let mut off = 0usize;
                while off < len {
                    std::ptr::write_volatile(p.add(off), 1);
                    off += 4096;
                }
                loop {
                    libc::pause();
                }
            }
        }
    }
}
