//! Faults on the process backend, each applied, observed, undone and observed gone, with
//! real processes; the timeline, the ledger, on_error, and the run-state clean-up.

mod chaos_support;

use std::time::{Duration, Instant};

use chaos_support::*;
use gauntlet::chaos::{Chaos, Services};
use gauntlet::event::{EventKind, FaultState};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

fn service(name: &str, port: u16, extra: &str) -> String {
    format!(
        r#"
[[services]]
name = "{name}"
command = ["{bin}", "serve", "{port}"]
health = {{ http = "http://127.0.0.1:{port}/health", startup = "10s", interval = "100ms" }}
{extra}
"#,
        bin = helper_bin().display()
    )
}

struct Fixture {
    dir: RunDir,
    ev: Events,
    services: Services,
    chaos: Chaos,
    port: u16,
}

impl Fixture {
    async fn new(name: &str, service_extra: &str, faults: &str) -> Fixture {
        let dir = RunDir::new(name);
        let port = free_port();
        let plan = plan(&format!(
            "{HEAD}{}\n{}",
            service("api", port, service_extra),
            faults
        ));
        let ev = Events::new();
        let services = Services::start(&plan, &dir.folder(), ev.sink.clone())
            .await
            .expect("services start");
        let chaos = Chaos::new(&plan, &services, ev.sink.clone(), CancellationToken::new());
        Fixture {
            dir,
            ev,
            services,
            chaos,
            port,
        }
    }

    fn pid(&self) -> u32 {
        self.services.pid("api").expect("api running")
    }

    async fn finish(mut self) {
        self.chaos.undo_all().await;
        self.services.shutdown().await;
    }
}

fn recovered(ev: &mut Events) -> Option<f64> {
    ev.fault_states().iter().find_map(|s| match s {
        FaultState::Recovered { recovery_s } => Some(*recovery_s),
        _ => None,
    })
}

#[tokio::test]
async fn pause_stops_the_process_group_and_undo_resumes_it() {
    let mut f = Fixture::new(
        "pause",
        "",
        "[[faults]]\nkind = \"pause\"\ntarget = \"api\"\nat = \"0s\"\nduration = \"1m\"",
    )
    .await;
    let pid = f.pid();
    let id = f.chaos.apply_now(0, 0).await.unwrap().expect("ledger id");
    assert_eq!(proc_state(pid), Some('T'), "not stopped");
    // The run-state file records the paused process (for `gauntlet cleanup`).
    assert_eq!(f.services.run_state().pending.len(), 1);
    assert!(http_get_async(f.port, Duration::from_millis(400))
        .await
        .is_err());
    f.chaos.undo_now(id).await.unwrap();
    assert!(
        matches!(proc_state(pid), Some('S') | Some('R')),
        "{:?}",
        proc_state(pid)
    );
    assert!(f.services.run_state().pending.is_empty());
    assert!(http_get_async(f.port, Duration::from_secs(2)).await.is_ok());
    // Recovery is measured from the undo.
    assert!(eventually(Duration::from_secs(5), || recovered(&mut f.ev).is_some()).await);
    let r = recovered(&mut f.ev).unwrap();
    assert!(r < 3.0, "recovery after resume took {r}s");
    let states = f.ev.fault_states();
    assert!(matches!(states[0], FaultState::Applied));
    assert!(states.iter().any(|s| matches!(s, FaultState::Undone)));
    f.finish().await;
}

#[tokio::test]
async fn kill_with_restart_policy_comes_back_and_recovery_is_recorded() {
    let mut f = Fixture::new(
        "kill",
        "restart = { policy = \"on-failure\", delay = \"500ms\" }",
        "[[faults]]\nkind = \"kill\"\ntarget = \"api\"\nat = \"0s\"",
    )
    .await;
    let pid = f.pid();
    assert_eq!(f.chaos.apply_now(0, 0).await.unwrap(), None);
    assert!(
        eventually(Duration::from_secs(3), || !alive(pid)).await,
        "not killed"
    );
    assert!(
        eventually(Duration::from_secs(10), || recovered(&mut f.ev).is_some()).await,
        "no recovery recorded: {:?}",
        f.ev.fault_states()
    );
    let r = recovered(&mut f.ev).unwrap();
    // Restart delay 500ms: recovery cannot be faster, and should not be much slower.
    assert!((0.45..6.0).contains(&r), "recovery {r}s");
    assert_ne!(f.pid(), pid);
    assert!(http_get_async(f.port, Duration::from_secs(2)).await.is_ok());
    f.finish().await;
}

#[tokio::test]
async fn kill_with_restart_after_and_no_policy() {
    let mut f = Fixture::new(
        "killafter",
        "",
        "[[faults]]\nkind = \"kill\"\ntarget = \"api\"\nat = \"0s\"\nrestart_after = \"700ms\"",
    )
    .await;
    let pid = f.pid();
    let t = Instant::now();
    let timeline = f.chaos.run_timeline(Instant::now());
    tokio::time::timeout(Duration::from_secs(20), timeline)
        .await
        .unwrap()
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(650));
    assert!(!alive(pid));
    assert!(
        eventually(Duration::from_secs(10), || recovered(&mut f.ev).is_some()).await,
        "{:?}",
        f.ev.fault_states()
    );
    let r = recovered(&mut f.ev).unwrap();
    assert!((0.6..6.0).contains(&r), "recovery {r}s");
    f.finish().await;
}

#[tokio::test]
async fn stop_keeps_the_service_down_until_undone_and_restart_replaces_it() {
    let mut f = Fixture::new(
        "stop",
        "restart = { policy = \"always\", delay = \"100ms\" }",
        "[[faults]]\nkind = \"stop\"\ntarget = \"api\"\nat = \"0s\"\n\
         [[faults]]\nkind = \"restart\"\ntarget = \"api\"\nat = \"0s\"",
    )
    .await;
    let pid = f.pid();
    let id = f.chaos.apply_now(0, 0).await.unwrap().unwrap();
    assert!(!alive(pid));
    // With `always` and a 100ms delay a restart would come within the window.
    assert!(
        holds_for(Duration::from_millis(500), || f
            .services
            .pid("api")
            .is_none())
        .await,
        "policy must not restart a stopped service"
    );
    f.chaos.undo_now(id).await.unwrap();
    let pid2 = f.pid();
    assert!(
        eventually(Duration::from_secs(5), || http_get(
            f.port,
            Duration::from_millis(300)
        )
        .is_ok())
        .await
    );
    // restart: a new process, healthy again, recovery recorded from the apply.
    f.chaos.apply_now(1, 0).await.unwrap();
    let pid3 = f.pid();
    assert_ne!(pid2, pid3);
    assert!(!alive(pid2));
    assert!(
        eventually(Duration::from_secs(10), || {
            f.ev.fault_states()
                .iter()
                .filter(|s| matches!(s, FaultState::Recovered { .. }))
                .count()
                >= 2
        })
        .await,
        "{:?}",
        f.ev.fault_states()
    );
    f.finish().await;
}

#[tokio::test]
async fn duplicate_runs_a_second_instance_until_undone() {
    let f = Fixture::new(
        "dup",
        "",
        "[[faults]]\nkind = \"duplicate\"\ntarget = \"api\"\nat = \"0s\"\nduration = \"1m\"",
    )
    .await;
    let pid = f.pid();
    let id = f.chaos.apply_now(0, 0).await.unwrap().unwrap();
    let dup = f
        .services
        .run_state()
        .processes
        .iter()
        .find(|p| p.pid != pid as i32)
        .map(|p| p.pid as u32)
        .expect("duplicate recorded");
    assert!(alive(dup));
    assert_eq!(
        nix::unistd::getpgid(Some(Pid::from_raw(dup as i32)))
            .unwrap()
            .as_raw(),
        dup as i32
    );
    // Both instances answer on the shared port.
    let mut pids = std::collections::HashSet::new();
    for _ in 0..40 {
        if let Ok(b) = http_get_async(f.port, Duration::from_secs(1)).await {
            if let Some(p) = b
                .split("pid=")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
            {
                pids.insert(p.to_string());
            }
        }
        if pids.len() == 2 {
            break;
        }
    }
    assert!(f.dir.logs().join("api.duplicate-0-0.log").exists());
    f.chaos.undo_now(id).await.unwrap();
    assert!(!alive(dup), "duplicate survived its undo");
    assert!(alive(pid), "the original must stay");
    assert_eq!(
        pids.len(),
        2,
        "both instances should have answered: {pids:?}"
    );
    f.finish().await;
}

/// A memory fault the machine cannot give is refused before any process starts.
#[tokio::test]
async fn a_memory_fault_larger_than_the_machine_is_refused() {
    let f = Fixture::new(
        "stress-too-big",
        "",
        "[[faults]]\nkind = \"memory\"\ntarget = \"api\"\nat = \"0s\"\nduration = \"1m\"\nsize = \"900TiB\"",
    )
    .await;
    let before = f.services.run_state().processes.len();
    let e = f.chaos.apply_now(0, 0).await.unwrap_err().to_string();
    assert!(e.contains("MemAvailable"), "{e}");
    assert_eq!(f.services.run_state().processes.len(), before);
    f.finish().await;
}

#[tokio::test]
async fn cpu_and_memory_pressure_run_until_undone() {
    let f = Fixture::new(
        "stress",
        "",
        "[[faults]]\nkind = \"cpu\"\ntarget = \"api\"\nat = \"0s\"\nduration = \"1m\"\nworkers = 1\n\
         [[faults]]\nkind = \"memory\"\ntarget = \"api\"\nat = \"0s\"\nduration = \"1m\"\nsize = \"64MiB\"",
    )
    .await;
    let before: Vec<i32> = f
        .services
        .run_state()
        .processes
        .iter()
        .map(|p| p.pid)
        .collect();
    let cpu = f.chaos.apply_now(0, 0).await.unwrap().unwrap();
    let mem = f.chaos.apply_now(1, 0).await.unwrap().unwrap();
    let stress: Vec<i32> = f
        .services
        .run_state()
        .processes
        .iter()
        .map(|p| p.pid)
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(stress.len(), 2, "{stress:?}");
    let (cpu_pid, mem_pid) = (stress[0], stress[1]);
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{cpu_pid}/comm"))
            .unwrap()
            .trim(),
        "gauntlet-stress"
    );
    let ticks = |pid: i32| -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<&str> = s[s.rfind(')').unwrap() + 2..].split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let t0 = ticks(cpu_pid);
    assert!(
        eventually(Duration::from_secs(5), || ticks(cpu_pid) - t0 >= 20).await,
        "the cpu worker used only {} ticks in 5s",
        ticks(cpu_pid) - t0
    );
    let rss_kb = |pid: i32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        eventually(Duration::from_secs(5), || rss_kb(mem_pid) >= 60 * 1024).await,
        "rss {} kB",
        rss_kb(mem_pid)
    );
    f.chaos.undo_now(cpu).await.unwrap();
    f.chaos.undo_now(mem).await.unwrap();
    assert!(!alive(cpu_pid as u32) && !alive(mem_pid as u32));
    assert!(f
        .services
        .run_state()
        .processes
        .iter()
        .all(|p| !stress.contains(&p.pid)));
    f.finish().await;
}

#[tokio::test]
async fn resource_samples_are_emitted_for_process_services() {
    let mut f = Fixture::new("resources", "", "").await;
    assert!(
        eventually(Duration::from_secs(5), || {
            f.ev.drain().iter().any(|e| matches!(&e.kind, EventKind::Resource { service, mem_bytes, .. } if service == "api" && *mem_bytes > 0))
        })
        .await
    );
    f.finish().await;
}

#[tokio::test]
async fn timeline_repetitions_undo_on_time_and_pick_targets_with_the_seed() {
    let dir = RunDir::new("timeline");
    let (p1, p2) = (free_port(), free_port());
    let faults = r#"
[[faults]]
kind = "pause"
targets = ["a", "b"]
at = "100ms"
duration = "300ms"
every = "700ms"
times = 3
"#;
    let plan = plan(&format!(
        "{HEAD}{}{}{faults}",
        service("a", p1, ""),
        service("b", p2, "")
    ));
    let mut ev = Events::new();
    let mut services = Services::start(&plan, &dir.folder(), ev.sink.clone())
        .await
        .unwrap();
    let chaos = Chaos::new(&plan, &services, ev.sink.clone(), CancellationToken::new());
    let (pa, pb) = (services.pid("a").unwrap(), services.pid("b").unwrap());
    let start = Instant::now();
    let timeline = chaos.run_timeline(start);
    tokio::pin!(timeline);
    // While the first repetition is in force, exactly one of the two is stopped.
    let mut saw_stopped = false;
    let r = loop {
        tokio::select! {
            r = &mut timeline => break r,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                let stopped = [pa, pb].iter().filter(|p| proc_state(**p) == Some('T')).count();
                assert!(stopped <= 1);
                saw_stopped |= stopped == 1;
            }
        }
    };
    r.unwrap();
    assert!(saw_stopped);
    assert!(
        start.elapsed() >= Duration::from_millis(1700),
        "{:?}",
        start.elapsed()
    );
    assert!(proc_state(pa) != Some('T') && proc_state(pb) != Some('T'));
    let events: Vec<_> = ev
        .drain()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Fault(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    let applied: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.state, FaultState::Applied))
        .collect();
    let undone = events
        .iter()
        .filter(|e| matches!(e.state, FaultState::Undone))
        .count();
    assert_eq!(applied.len(), 3);
    assert_eq!(undone, 3);
    assert_eq!(
        applied.iter().map(|e| e.repetition).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(applied.iter().all(|e| e.target == "a" || e.target == "b"));
    // Same seed, same picks.
    let chaos2 = Chaos::new(&plan, &services, ev.sink.clone(), CancellationToken::new());
    let mut picks2 = vec![];
    let n0 = ev.drain().len();
    for rep in 0..3 {
        let id = chaos2.apply_now(0, rep).await.unwrap().unwrap();
        chaos2.undo_now(id).await.unwrap();
    }
    for e in ev.drain().iter().skip(n0) {
        if let EventKind::Fault(f) = &e.kind {
            if matches!(f.state, FaultState::Applied) {
                picks2.push(f.target.clone());
            }
        }
    }
    assert_eq!(
        picks2,
        applied.iter().map(|e| e.target.clone()).collect::<Vec<_>>()
    );
    chaos.undo_all().await;
    chaos2.undo_all().await;
    services.shutdown().await;
}

#[tokio::test]
async fn on_error_fail_ends_the_timeline_and_record_goes_on() {
    let faults = r#"
[[faults]]
kind = "leak_websockets"
target = "api"
url = "ws://127.0.0.1:1/ws"
connections = 5
at = "0s"
duration = "1s"
on_error = "record"

[[faults]]
kind = "pause"
target = "api"
at = "200ms"
duration = "200ms"
"#;
    let mut f = Fixture::new("onerror", "", faults).await;
    tokio::time::timeout(
        Duration::from_secs(10),
        f.chaos.run_timeline(Instant::now()),
    )
    .await
    .unwrap()
    .expect("a recorded failure does not end the run");
    let states = f.ev.fault_states();
    assert!(states.iter().any(|s| matches!(s, FaultState::Failed { fatal: false, reason } if reason.contains("127.0.0.1:1"))), "{states:?}");
    assert!(states.iter().any(|s| matches!(s, FaultState::Undone)));
    f.finish().await;

    let faults = r#"
on_fault_error = "fail"
[[faults]]
kind = "leak_websockets"
target = "api"
url = "ws://127.0.0.1:1/ws"
connections = 5
at = "0s"
duration = "1s"
"#;
    // Nothing listens at the URL: cannot be applied (only the run can know), and the
    // scenario says that fails the run.
    let dir = RunDir::new("onerror-fail");
    let port = free_port();
    let head_with = format!("{}\n{}", faults.split("[[faults]]").next().unwrap(), HEAD);
    let plan = plan(&format!(
        "{head_with}{}[[faults]]{}",
        service("api", port, ""),
        faults.split("[[faults]]").nth(1).unwrap()
    ));
    let mut ev = Events::new();
    let mut services = Services::start(&plan, &dir.folder(), ev.sink.clone())
        .await
        .unwrap();
    let chaos = Chaos::new(&plan, &services, ev.sink.clone(), CancellationToken::new());
    let err = tokio::time::timeout(Duration::from_secs(10), chaos.run_timeline(Instant::now()))
        .await
        .unwrap()
        .expect_err("must fail");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    assert!(ev
        .fault_states()
        .iter()
        .any(|s| matches!(s, FaultState::Failed { fatal: true, .. })));
    chaos.undo_all().await;
    services.shutdown().await;
}

#[tokio::test]
async fn cancel_then_undo_all_resumes_a_pause_in_force() {
    let faults = "[[faults]]\nkind = \"pause\"\ntarget = \"api\"\nat = \"0s\"\nduration = \"10m\"\n\
                  [[faults]]\nkind = \"duplicate\"\ntarget = \"api\"\nat = \"0s\"\nduration = \"10m\"";
    let dir = RunDir::new("cancel");
    let port = free_port();
    let plan = plan(&format!("{HEAD}{}{faults}", service("api", port, "")));
    let mut ev = Events::new();
    let mut services = Services::start(&plan, &dir.folder(), ev.sink.clone())
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let chaos = Chaos::new(&plan, &services, ev.sink.clone(), cancel.clone());
    let pid = services.pid("api").unwrap();
    {
        let timeline = chaos.run_timeline(Instant::now());
        tokio::pin!(timeline);
        let ok = eventually_async(&mut timeline, Duration::from_secs(5), || {
            proc_state(pid) == Some('T') && services.run_state().processes.len() == 2
        })
        .await;
        assert!(ok, "faults not applied");
        cancel.cancel();
        // The run drops the timeline future when it ends.
    }
    let dup = services
        .run_state()
        .processes
        .iter()
        .find(|p| p.pid != pid as i32)
        .unwrap()
        .pid;
    chaos.undo_all().await;
    assert!(proc_state(pid) != Some('T'), "still paused");
    assert!(!alive(dup as u32), "duplicate still running");
    assert_eq!(chaos.in_force(), 0);
    assert_eq!(
        ev.fault_states()
            .iter()
            .filter(|s| matches!(s, FaultState::Undone))
            .count(),
        2
    );
    services.shutdown().await;
}

/// Poll `f` while driving `fut` (which must not finish first).
async fn eventually_async<F: std::future::Future + Unpin>(
    fut: &mut F,
    max: Duration,
    mut f: impl FnMut() -> bool,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < max {
        if f() {
            return true;
        }
        tokio::select! {
            _ = &mut *fut => panic!("finished early"),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    f()
}

#[tokio::test]
async fn dropping_without_undo_resumes_and_kills_synchronously() {
    let faults =
        "[[faults]]\nkind = \"pause\"\ntarget = \"api\"\nat = \"0s\"\nduration = \"10m\"\n\
                  [[faults]]\nkind = \"cpu\"\ntarget = \"api\"\nat = \"0s\"\nduration = \"10m\"";
    let f = Fixture::new("drop", "", faults).await;
    let pid = f.pid();
    f.chaos.apply_now(0, 0).await.unwrap();
    f.chaos.apply_now(1, 0).await.unwrap();
    let stress = f
        .services
        .run_state()
        .processes
        .iter()
        .find(|p| p.pid != pid as i32)
        .unwrap()
        .pid;
    assert_eq!(proc_state(pid), Some('T'));
    let Fixture {
        chaos,
        services,
        dir,
        ..
    } = f;
    // As on a panic: no undo_all, no shutdown.
    drop(chaos);
    assert!(proc_state(pid) != Some('T'), "the Drop guard must resume");
    assert!(
        !alive(stress as u32),
        "the Drop guard must kill stress processes"
    );
    drop(services);
    assert!(
        eventually(Duration::from_secs(3), || !alive(pid)).await,
        "services must die with the guard"
    );
    drop(dir);
}

#[tokio::test]
async fn cleanup_kills_strays_and_resumes_paused_processes_of_dead_runs() {
    let dir = RunDir::new("cleanup");
    // A stray duplicate (own group) and a paused service left by a run whose gauntlet died.
    let mut stray = {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("sleep")
            .arg("120")
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let mut paused = std::process::Command::new("sleep")
        .arg("120")
        .spawn()
        .unwrap();
    kill(Pid::from_raw(paused.id() as i32), Signal::SIGSTOP).unwrap();
    assert!(
        eventually(Duration::from_secs(2), || proc_state(paused.id())
            == Some('T'))
        .await
    );
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let start_time = |pid: u32| -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        s[s.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .nth(19)
            .unwrap()
            .parse()
            .unwrap()
    };
    let state = serde_json::json!({
        "run_id": "old-run",
        "gauntlet_pid": dead_pid,
        "gauntlet_start_time": 1,
        "finished": false,
        "processes": [{"pid": stray.id(), "start_time": start_time(stray.id()), "role": "duplicate", "service": "api", "group": true}],
        "containers": [],
        "pending": [{"what": "paused_process", "pid": paused.id(), "start_time": start_time(paused.id()), "group": false}]
    });
    let old = dir.reports().join("old-run");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("state.json"), state.to_string()).unwrap();
    // A run in progress (this process) is left alone.
    let live = dir.reports().join("live-run");
    std::fs::create_dir_all(&live).unwrap();
    let live_state = serde_json::json!({
        "run_id": "live-run", "gauntlet_pid": std::process::id(), "gauntlet_start_time": start_time(std::process::id()),
        "finished": false, "processes": [], "containers": [], "pending": []
    });
    std::fs::write(live.join("state.json"), live_state.to_string()).unwrap();

    let report = gauntlet::chaos::cleanup(&dir.reports()).await.unwrap();
    let text = report.to_string();
    assert!(
        text.contains(&format!("killed stray process {}", stray.id())),
        "{text}"
    );
    assert!(
        text.contains(&format!("resumed paused process {}", paused.id())),
        "{text}"
    );
    stray.wait().unwrap();
    assert!(matches!(proc_state(paused.id()), Some('S') | Some('R')));
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(old.join("state.json")).unwrap()).unwrap();
    assert_eq!(after["finished"], true, "{after}");
    // Twice: nothing left to do.
    let again = gauntlet::chaos::cleanup(&dir.reports()).await.unwrap();
    assert!(
        again.actions.iter().all(|a| !a.contains("old-run")),
        "{again}"
    );
    paused.kill().unwrap();
    paused.wait().unwrap();
}

#[tokio::test]
async fn stop_with_a_signal_comes_back_after_restart_after() {
    let mut f = Fixture::new(
        "stopafter",
        "",
        "[[faults]]\nkind = \"stop\"\ntarget = \"api\"\nat = \"0s\"\nsignal = \"SIGINT\"\nrestart_after = \"600ms\"",
    )
    .await;
    let pid = f.pid();
    let t = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(20),
        f.chaos.run_timeline(Instant::now()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(550));
    assert!(!alive(pid));
    let pid2 = f.pid();
    assert_ne!(pid, pid2);
    // The log is copied from a pipe by a task of its own: the second
    // "listening on" can land a moment after the restart is healthy.
    let log_path = f.dir.logs().join("api.log");
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let twice = eventually(Duration::from_secs(5), || {
        read_log().matches("listening on").count() >= 2
    })
    .await;
    assert!(twice, "{}", read_log());
    assert!(eventually(Duration::from_secs(10), || recovered(&mut f.ev).is_some()).await);
    let states = f.ev.fault_states();
    assert!(
        states.iter().any(|s| matches!(s, FaultState::Undone)),
        "{states:?}"
    );
    f.finish().await;
}
