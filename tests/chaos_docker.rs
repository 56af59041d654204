//! The docker backend against the real engine: containers created from an image (and
//! found by name and label), every fault kind applied, observed through inspect / cgroups
//! / probes, undone and observed gone; `cleanup` of a dead run's leftovers.
//!
//! The image is `FROM scratch` + the static helper (built here, no registry needed).
//! With CI=true an unreachable engine fails these tests instead of skipping them.

mod chaos_support;

use std::time::{Duration, Instant};

use chaos_support::*;
use gauntlet::chaos::{Chaos, Services};
use gauntlet::event::{EventKind, FaultState};
use tokio_util::sync::CancellationToken;

struct Dock {
    dir: RunDir,
    ev: Events,
    services: Services,
    chaos: Chaos,
    port: u16,
}

impl Dock {
    async fn new(name: &str, restart: &str, faults: &str) -> Dock {
        let dir = RunDir::new(&format!("dk-{name}"));
        let port = free_port();
        let plan = plan(&format!(
            r#"{DOCKER_HEAD}
[[services]]
name = "api"
image = "{image}"
ports = ["127.0.0.1:{port}:8080"]
health = {{ http = "http://127.0.0.1:{port}/health", startup = "30s", interval = "200ms" }}
{restart}
{faults}
"#,
            image = helper_image()
        ));
        let ev = Events::new();
        let services = match Services::start(&plan, &dir.folder(), ev.sink.clone()).await {
            Ok(s) => s,
            Err(e) => {
                remove_run_containers(&dir.run_id);
                panic!("start: {e}");
            }
        };
        let chaos = Chaos::new(&plan, &services, ev.sink.clone(), CancellationToken::new());
        Dock {
            dir,
            ev,
            services,
            chaos,
            port,
        }
    }

    fn id(&self) -> String {
        self.services.containers("api")[0].clone()
    }

    fn inspect(&self, f: &str) -> String {
        docker_inspect(&self.id(), f).unwrap_or_default()
    }

    async fn finish(mut self) {
        self.chaos.undo_all().await;
        self.services.shutdown().await;
        remove_run_containers(&self.dir.run_id);
    }
}

impl Drop for Dock {
    fn drop(&mut self) {
        // Whatever happened, nothing of this test stays.
        remove_run_containers(&self.dir.run_id);
    }
}

/// The chaos tests' `HEAD` with `backend = "docker"` (a top-level key: before any table).
const DOCKER_HEAD: &str = r#"
name = "chaos test"
duration = "30m"
backend = "docker"
[target]
base_url = "http://127.0.0.1:1"
allow_hosts = ["127.0.0.1"]
"#;

fn recovered(ev: &mut Events) -> Vec<f64> {
    ev.fault_states()
        .iter()
        .filter_map(|s| match s {
            FaultState::Recovered { recovery_s } => Some(*recovery_s),
            _ => None,
        })
        .collect()
}

macro_rules! need_docker {
    () => {
        if !docker_or_skip(module_path!()) {
            return;
        }
    };
}

/// One fault on `api` at 0s; timed kinds last a minute (the tests undo them earlier).
fn fault(kind: &str, extra: &str) -> String {
    let duration = if matches!(kind, "kill" | "stop" | "restart") {
        ""
    } else {
        "duration = \"1m\"\n"
    };
    format!("[[faults]]\nkind = \"{kind}\"\ntarget = \"api\"\nat = \"0s\"\n{duration}{extra}\n")
}

#[tokio::test]
async fn created_container_is_labelled_loopback_published_and_removed() {
    need_docker!();
    let d = Dock::new("create", "", "").await;
    let id = d.id();
    assert_eq!(d.inspect("{{.State.Running}}"), "true");
    assert_eq!(
        d.inspect("{{index .Config.Labels \"gauntlet.run-id\"}}"),
        d.dir.run_id
    );
    assert_eq!(
        d.inspect("{{(index (index .HostConfig.PortBindings \"8080/tcp\") 0).HostIp}}"),
        "127.0.0.1"
    );
    assert!(http_get_async(d.port, Duration::from_secs(3)).await.is_ok());
    assert!(d.services.run_state().containers.iter().any(|c| c.id == id));
    let log = d.dir.logs().join("api.log");
    assert!(
        eventually(Duration::from_secs(5), || std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening on"))
        .await,
        "container output not in its log file"
    );
    d.finish().await;
    assert!(
        docker_inspect(&id, "{{.Id}}").is_none(),
        "container not removed"
    );
}

#[tokio::test]
async fn pause_and_unpause() {
    need_docker!();
    let mut d = Dock::new("pause", "", &fault("pause", "")).await;
    let id = d.chaos.apply_now(0, 0).await.unwrap().unwrap();
    assert_eq!(d.inspect("{{.State.Paused}}"), "true");
    assert!(http_get_async(d.port, Duration::from_millis(500))
        .await
        .is_err());
    assert_eq!(d.services.run_state().pending.len(), 1);
    d.chaos.undo_now(id).await.unwrap();
    assert_eq!(d.inspect("{{.State.Paused}}"), "false");
    assert!(d.services.run_state().pending.is_empty());
    assert!(eventually(Duration::from_secs(5), || !recovered(&mut d.ev).is_empty()).await);
    d.finish().await;
}

#[tokio::test]
async fn kill_of_the_main_process_fires_the_restart_policy() {
    need_docker!();
    let mut d = Dock::new(
        "kill",
        "restart = { policy = \"on-failure\", max = 3 }",
        &fault("kill", ""),
    )
    .await;
    let pid0 = d.inspect("{{.State.Pid}}");
    let t = Instant::now();
    d.chaos.apply_now(0, 0).await.unwrap();
    assert!(
        eventually(Duration::from_secs(20), || d.inspect("{{.RestartCount}}")
            == "1"
            && d.inspect("{{.State.Running}}") == "true")
        .await,
        "the restart policy did not fire (an API kill would bypass it)"
    );
    assert_ne!(d.inspect("{{.State.Pid}}"), pid0);
    assert!(
        eventually(Duration::from_secs(20), || !recovered(&mut d.ev).is_empty()).await,
        "{:?}",
        d.ev.fault_states()
    );
    let r = recovered(&mut d.ev)[0];
    assert!(
        r > 0.0 && r < t.elapsed().as_secs_f64() + 0.5,
        "recovery {r}"
    );
    assert!(http_get_async(d.port, Duration::from_secs(3)).await.is_ok());
    d.finish().await;
}

#[tokio::test]
async fn stop_until_undone_and_restart() {
    need_docker!();
    let faults =
        fault("stop", "") + "[[faults]]\nkind = \"restart\"\ntarget = \"api\"\nat = \"0s\"\n";
    let mut d = Dock::new("stop", "", &faults).await;
    let id = d.chaos.apply_now(0, 0).await.unwrap().unwrap();
    assert_eq!(d.inspect("{{.State.Status}}"), "exited");
    d.chaos.undo_now(id).await.unwrap();
    assert_eq!(d.inspect("{{.State.Status}}"), "running");
    assert!(
        eventually(Duration::from_secs(10), || http_get(
            d.port,
            Duration::from_millis(300)
        )
        .is_ok())
        .await
    );
    let pid = d.inspect("{{.State.Pid}}");
    d.chaos.apply_now(1, 0).await.unwrap();
    assert_eq!(d.inspect("{{.State.Status}}"), "running");
    assert_ne!(d.inspect("{{.State.Pid}}"), pid);
    assert!(eventually(Duration::from_secs(15), || recovered(&mut d.ev).len() >= 2).await);
    d.finish().await;
}

#[tokio::test]
async fn duplicate_is_a_labelled_second_container_removed_on_undo() {
    need_docker!();
    let d = Dock::new("dup", "", &fault("duplicate", "")).await;
    let id = d.chaos.apply_now(0, 0).await.unwrap().unwrap();
    let dup = d
        .services
        .run_state()
        .containers
        .iter()
        .find(|c| c.id != d.id())
        .map(|c| c.id.clone())
        .expect("duplicate recorded");
    assert_eq!(
        docker_inspect(&dup, "{{.State.Running}}").as_deref(),
        Some("true")
    );
    assert_eq!(
        docker_inspect(&dup, "{{index .Config.Labels \"gauntlet.role\"}}").as_deref(),
        Some("duplicate")
    );
    assert_eq!(
        docker_inspect(&dup, "{{.Config.Image}}"),
        Some(helper_image())
    );
    d.chaos.undo_now(id).await.unwrap();
    assert!(
        docker_inspect(&dup, "{{.Id}}").is_none(),
        "duplicate not removed"
    );
    d.finish().await;
}

fn cg(kind: &str, id: &str, file: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{kind}/docker/{id}/{file}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[tokio::test]
async fn cpu_and_memory_pressure_count_against_the_container() {
    need_docker!();
    let faults = fault("cpu", "workers = 1") + &fault("memory", "size = \"64MiB\"");
    let mut d = Dock::new("stress", "", &faults).await;
    let id = d.id();
    let before: Vec<i32> = d
        .services
        .run_state()
        .processes
        .iter()
        .map(|p| p.pid)
        .collect();
    let cpu = d.chaos.apply_now(0, 0).await.unwrap().unwrap();
    let stress: Vec<i32> = d
        .services
        .run_state()
        .processes
        .iter()
        .map(|p| p.pid)
        .filter(|p| !before.contains(p))
        .collect();
    let cg_of = std::fs::read_to_string(format!("/proc/{}/cgroup", stress[0])).unwrap();
    assert!(
        cg_of.contains(&id),
        "stress process not in the container's cgroup:\n{cg_of}"
    );
    if let Some(u0) = cg("cpuacct", &id, "cpuacct.usage") {
        let used = || cg("cpuacct", &id, "cpuacct.usage").unwrap() - u0;
        assert!(
            eventually(Duration::from_secs(5), || used() > 200_000_000).await,
            "container used {} ns of CPU in 5s",
            used()
        );
    }
    // Resource samples of the container see it too.
    assert!(
        eventually(Duration::from_secs(8), || {
            d.ev.drain().iter().any(|e| {
                matches!(&e.kind,
            EventKind::Resource { service, cpu_pct, .. } if service == "api" && *cpu_pct > 30.0)
            })
        })
        .await,
        "no resource sample with the stress CPU: {:?}",
        d.ev.drain()
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Resource { .. }))
            .collect::<Vec<_>>()
    );
    d.chaos.undo_now(cpu).await.unwrap();
    assert!(!alive(stress[0] as u32));

    let m0 = cg("memory", &id, "memory.usage_in_bytes");
    let mem = d.chaos.apply_now(1, 0).await.unwrap().unwrap();
    if let Some(m0) = m0 {
        assert!(
            eventually(Duration::from_secs(5), || cg(
                "memory",
                &id,
                "memory.usage_in_bytes"
            )
            .unwrap_or(0)
                >= m0 + 60 * 1024 * 1024)
            .await,
            "container memory did not grow by 64MiB"
        );
    }
    d.chaos.undo_now(mem).await.unwrap();
    if let Some(m0) = m0 {
        assert!(
            eventually(Duration::from_secs(5), || cg(
                "memory",
                &id,
                "memory.usage_in_bytes"
            )
            .unwrap_or(u64::MAX)
                < m0 + 32 * 1024 * 1024)
            .await
        );
    }
    d.finish().await;
}

#[tokio::test]
async fn network_fault_through_the_proxy_in_front_of_a_container() {
    need_docker!();
    let dir = RunDir::new("dk-net");
    let (port, proxy) = (free_port(), free_port());
    let plan = plan(&format!(
        r#"{DOCKER_HEAD}
[[services]]
name = "api"
image = "{image}"
ports = ["127.0.0.1:{port}:8080"]
health = {{ http = "http://127.0.0.1:{port}/health", startup = "30s" }}
proxy = {{ listen = "127.0.0.1:{proxy}", upstream = "127.0.0.1:{port}" }}
{f}"#,
        image = helper_image(),
        f = fault("network", "latency = \"300ms\"")
    ));
    let ev = Events::new();
    let mut services = Services::start(&plan, &dir.folder(), ev.sink.clone())
        .await
        .unwrap();
    let _guard = scopeguard(&dir.run_id);
    let chaos = Chaos::new(&plan, &services, ev.sink.clone(), CancellationToken::new());
    let id = chaos.apply_now(0, 0).await.unwrap().unwrap();
    let t = Instant::now();
    assert!(http_get_async(proxy, Duration::from_secs(5))
        .await
        .unwrap()
        .contains("200 OK"));
    assert!(t.elapsed() >= Duration::from_millis(290));
    chaos.undo_now(id).await.unwrap();
    let t = Instant::now();
    assert!(http_get_async(proxy, Duration::from_secs(5)).await.is_ok());
    assert!(t.elapsed() < Duration::from_millis(250));
    chaos.undo_all().await;
    services.shutdown().await;
}

struct RunGuard(String);
impl Drop for RunGuard {
    fn drop(&mut self) {
        remove_run_containers(&self.0);
    }
}
fn scopeguard(run_id: &str) -> RunGuard {
    RunGuard(run_id.to_string())
}

#[tokio::test]
async fn existing_containers_by_name_and_label_are_faulted_but_never_removed() {
    need_docker!();
    let name = format!("chaos-existing-{}", std::process::id());
    let label = format!("chaos.test={name}");
    let port = free_port();
    let _g = ContainerGuard(vec![name.clone()]);
    let out = std::process::Command::new("docker")
        .args(["run", "-d", "--name", &name, "--label", &label, "-p"])
        .arg(format!("127.0.0.1:{port}:8080"))
        .arg(helper_image())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for selector in [
        format!("container = \"{name}\""),
        format!("label = \"{label}\""),
    ] {
        let dir = RunDir::new("dk-existing");
        let plan = plan(&format!(
            r#"{DOCKER_HEAD}
[[services]]
name = "api"
{selector}
health = {{ http = "http://127.0.0.1:{port}/", startup = "20s" }}
{f}"#,
            f = fault("pause", "")
        ));
        let ev = Events::new();
        let mut services = Services::start(&plan, &dir.folder(), ev.sink.clone())
            .await
            .unwrap();
        let chaos = Chaos::new(&plan, &services, ev.sink.clone(), CancellationToken::new());
        chaos.apply_now(0, 0).await.unwrap();
        assert_eq!(
            docker_inspect(&name, "{{.State.Paused}}").as_deref(),
            Some("true")
        );
        // The run ends with the pause in force: shutdown undoes it, and leaves the
        // container (not ours) running.
        services.shutdown().await;
        assert_eq!(
            docker_inspect(&name, "{{.State.Paused}}").as_deref(),
            Some("false")
        );
        assert_eq!(
            docker_inspect(&name, "{{.State.Running}}").as_deref(),
            Some("true")
        );
        drop(chaos);
    }
}

#[tokio::test]
async fn cleanup_removes_labelled_containers_and_unpauses_recorded_ones() {
    need_docker!();
    let dir = RunDir::new("dk-cleanup");
    let dead_run = format!("dead-run-{}", std::process::id());
    let leftover = format!("chaos-leftover-{}", std::process::id());
    let paused = format!("chaos-paused-{}", std::process::id());
    let _g = ContainerGuard(vec![leftover.clone(), paused.clone()]);
    for (n, label) in [
        (&leftover, format!("gauntlet.run-id={dead_run}")),
        (&paused, "x=y".to_string()),
    ] {
        let o = std::process::Command::new("docker")
            .args(["run", "-d", "--name", n, "--label", &label])
            .arg(helper_image())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert!(std::process::Command::new("docker")
        .args(["pause", &paused])
        .output()
        .unwrap()
        .status
        .success());
    let paused_id = docker_inspect(&paused, "{{.Id}}").unwrap();
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let st = serde_json::json!({
        "run_id": dead_run, "gauntlet_pid": dead_pid, "gauntlet_start_time": 1, "finished": false,
        "processes": [], "containers": [],
        "pending": [{"what": "paused_container", "id": paused_id}]
    });
    let rd = dir.reports().join(&dead_run);
    std::fs::create_dir_all(&rd).unwrap();
    std::fs::write(rd.join("state.json"), st.to_string()).unwrap();
    let report = gauntlet::chaos::cleanup(&dir.reports()).await.unwrap();
    let text = report.to_string();
    assert!(
        text.contains(&format!("removed container {leftover}")),
        "{text}"
    );
    assert!(text.contains("unpaused container"), "{text}");
    assert!(docker_inspect(&leftover, "{{.Id}}").is_none());
    assert_eq!(
        docker_inspect(&paused, "{{.State.Paused}}").as_deref(),
        Some("false")
    );
}

/// Run by `unreachable_engine_is_a_clear_error` with DOCKER_HOST pointing nowhere.
#[tokio::test]
#[ignore = "helper of unreachable_engine_is_a_clear_error"]
async fn unreachable_holder() {
    if std::env::var("CHAOS_UNREACHABLE").is_err() {
        return;
    }
    let dir = RunDir::new("dk-unreachable");
    let plan = plan(&format!(
        "{DOCKER_HEAD}\n[[services]]\nname = \"api\"\ncontainer = \"whatever\"\n"
    ));
    let ev = Events::new();
    match Services::start(&plan, &dir.folder(), ev.sink.clone()).await {
        Ok(_) => println!("RESULT=started"),
        Err(e) => println!("RESULT={e}"),
    }
}

#[test]
fn unreachable_engine_is_a_clear_error() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "unreachable_holder", "--ignored", "--nocapture"])
        .env("CHAOS_UNREACHABLE", "1")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("RESULT="))
        .unwrap_or("");
    assert!(line.contains("Docker is unreachable"), "{text}");
}
