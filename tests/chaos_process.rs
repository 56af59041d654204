//! Process backend: starting, health checks, logs, supervision, shutdown (real processes).

mod chaos_support;

use std::time::Duration;

use chaos_support::*;
use gauntlet::chaos::Services;
use gauntlet::event::{EventKind, ServiceEventKind};

fn helper_service(name: &str, port: u16, extra: &str) -> String {
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

#[tokio::test]
async fn starts_with_env_and_cwd_logs_output_and_stops_everything() {
    let dir = RunDir::new("start");
    let port = free_port();
    let cwd = dir.tmp.path().to_path_buf();
    let plan = plan(&format!(
        "{HEAD}{}",
        helper_service(
            "api",
            port,
            &format!(
                "env = {{ GREETING = \"hello-chaos\" }}\ncwd = \"{}\"",
                cwd.display()
            )
        )
    ));
    let mut ev = Events::new();
    let mut services = Services::start(&plan, &dir.folder(), ev.sink.clone())
        .await
        .expect("start");
    let pid = services.pid("api").expect("pid");
    // Own process group.
    assert_eq!(
        nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid as i32)))
            .unwrap()
            .as_raw(),
        pid as i32
    );
    let body = http_get_async(port, Duration::from_secs(5)).await.unwrap();
    assert!(body.contains("greeting=hello-chaos"), "{body}");
    assert!(body.contains(&format!("cwd={}", cwd.display())), "{body}");
    // Output goes to the log file, not to our terminal.
    let log = std::fs::read_to_string(dir.logs().join("api.log")).unwrap();
    assert!(log.contains("listening on"), "{log}");
    // The run-state file lists it.
    let state = services.run_state();
    assert!(state.processes.iter().any(|p| p.pid == pid as i32));
    // Health probes run during the run.
    let mut probes = 0;
    assert!(
        eventually(Duration::from_secs(5), || {
            probes += ev
                .drain()
                .iter()
                .filter(
                    |e| matches!(&e.kind, EventKind::Probe { service, ok: true, .. } if service == "api"),
                )
                .count();
            probes >= 2
        })
        .await,
        "expected probe events, got {probes}"
    );

    services.shutdown().await;
    assert!(!alive(pid), "service still alive after shutdown");
    let kinds = ev.service_kinds("api");
    assert!(
        matches!(kinds.first(), Some(ServiceEventKind::Started { .. })),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| matches!(k, ServiceEventKind::Healthy)));
    assert!(kinds.iter().any(|k| matches!(k, ServiceEventKind::Stopped)));
    let st: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.report_dir().join("state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(st["finished"], true);
    assert_eq!(st["processes"].as_array().unwrap().len(), 0, "{st}");
}

#[tokio::test]
async fn a_service_that_exits_fails_with_its_name_log_and_last_lines() {
    let dir = RunDir::new("exits");
    let port = free_port();
    let plan = plan(&format!(
        r#"{HEAD}
[[services]]
name = "broken"
command = ["sh", "-c", "echo 'boom: cannot open config' >&2; exit 3"]
health = {{ tcp = "127.0.0.1:{port}", startup = "10s" }}
"#
    ));
    let ev = Events::new();
    let err = match Services::start(&plan, &dir.folder(), ev.sink.clone()).await {
        Ok(_) => panic!("start should fail"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("service `broken`"), "{err}");
    assert!(err.contains("exited with code 3"), "{err}");
    assert!(err.contains("broken.log"), "{err}");
    assert!(err.contains("boom: cannot open config"), "{err}");
}

#[tokio::test]
async fn a_service_that_never_gets_healthy_is_killed_and_named() {
    let dir = RunDir::new("unhealthy");
    let port = free_port();
    let ok_port = free_port();
    let plan = plan(&format!(
        r#"{HEAD}{}
[[services]]
name = "stuck"
command = ["sleep", "60"]
health = {{ tcp = "127.0.0.1:{port}", startup = "1s" }}
"#,
        helper_service("first", ok_port, "")
    ));
    let ev = Events::new();
    let t = std::time::Instant::now();
    let err = match Services::start(&plan, &dir.folder(), ev.sink.clone()).await {
        Ok(_) => panic!("start should fail"),
        Err(e) => e.to_string(),
    };
    assert!(t.elapsed() < Duration::from_secs(8));
    assert!(err.contains("service `stuck`"), "{err}");
    assert!(err.contains("did not become healthy within 1s"), "{err}");
    assert!(err.contains("connect 127.0.0.1"), "{err}");
    // Everything started was stopped again: the first service too.
    let st: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.report_dir().join("state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(st["processes"].as_array().unwrap().len(), 0, "{st}");
    assert!(http_get_async(ok_port, Duration::from_millis(500))
        .await
        .is_err());
}

#[tokio::test]
async fn on_failure_policy_restarts_a_crashed_service() {
    let dir = RunDir::new("restart");
    let port = free_port();
    let plan = plan(&format!(
        "{HEAD}{}",
        helper_service(
            "api",
            port,
            "restart = { policy = \"on-failure\", max = 3, delay = \"200ms\" }"
        )
    ));
    let mut ev = Events::new();
    let mut services = Services::start(&plan, &dir.folder(), ev.sink.clone())
        .await
        .unwrap();
    let pid = services.pid("api").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let back = eventually(
        Duration::from_secs(10),
        || matches!(services.pid("api"), Some(p) if p != pid),
    )
    .await;
    assert!(back, "not restarted");
    let new_pid = services.pid("api").unwrap();
    assert!(
        eventually(Duration::from_secs(10), || http_get(
            port,
            Duration::from_millis(500)
        )
        .is_ok())
        .await
    );
    let kinds = ev.service_kinds("api");
    assert!(
        kinds.iter().any(|k| matches!(
            k,
            ServiceEventKind::Exited {
                signal: Some(9),
                ..
            }
        )),
        "{kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, ServiceEventKind::Restarting { attempt: 1 })),
        "{kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, ServiceEventKind::Started { pid: Some(p) } if *p == new_pid)),
        "{kinds:?}"
    );
    services.shutdown().await;
    assert!(!alive(new_pid));
}

#[tokio::test]
async fn policy_no_leaves_a_crash_down_and_probes_see_it() {
    let dir = RunDir::new("nopolicy");
    let port = free_port();
    let plan = plan(&format!("{HEAD}{}", helper_service("api", port, "")));
    let mut ev = Events::new();
    let mut services = Services::start(&plan, &dir.folder(), ev.sink.clone())
        .await
        .unwrap();
    let pid = services.pid("api").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(eventually(Duration::from_secs(5), || services.pid("api").is_none()).await);
    assert!(
        holds_for(Duration::from_millis(800), || services.pid("api").is_none()).await,
        "restarted without a policy"
    );
    let failed = ev
        .drain()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Probe { ok: false, .. }))
        .count();
    assert!(failed >= 1);
    let kinds = ev.service_kinds("api");
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, ServiceEventKind::Unhealthy { .. })),
        "{kinds:?}"
    );
    services.shutdown().await;
}

#[tokio::test]
async fn unmanaged_service_is_found_by_pid_file_and_never_stopped() {
    let dir = RunDir::new("unmanaged");
    let port = free_port();
    let mut child = std::process::Command::new(helper_bin())
        .args(["serve", &port.to_string()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = dir.tmp.path().join("ext.pid");
    std::fs::write(&pid_file, child.id().to_string()).unwrap();
    let plan = plan(&format!(
        r#"{HEAD}
[[services]]
name = "ext"
managed = false
pid_file = "{}"
health = {{ http = "http://127.0.0.1:{port}/", startup = "10s" }}
"#,
        pid_file.display()
    ));
    let ev = Events::new();
    let mut services = Services::start(&plan, &dir.folder(), ev.sink.clone())
        .await
        .unwrap();
    assert_eq!(services.pid("ext"), Some(child.id()));
    services.shutdown().await;
    assert!(
        alive(child.id()),
        "an unmanaged service must not be stopped"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Run by `no_orphan_survives_when_gauntlet_is_killed` in a child process.
#[tokio::test]
#[ignore = "helper of no_orphan_survives_when_gauntlet_is_killed"]
async fn orphan_holder() {
    let Ok(port) = std::env::var("CHAOS_ORPHAN_PORT") else {
        return;
    };
    let dir = RunDir::new("orphan");
    let plan = plan(&format!(
        "{HEAD}{}",
        helper_service("api", port.parse().unwrap(), "")
    ));
    let ev = Events::new();
    let services = Services::start(&plan, &dir.folder(), ev.sink.clone())
        .await
        .unwrap();
    println!("SERVICE_PID={}", services.pid("api").unwrap());
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[test]
fn no_orphan_survives_when_gauntlet_is_killed() {
    use std::io::BufRead;
    let port = free_port();
    let mut holder = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "orphan_holder", "--ignored", "--nocapture"])
        .env("CHAOS_ORPHAN_PORT", port.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = holder.stdout.take().unwrap();
    let mut pid = None;
    for line in std::io::BufReader::new(out).lines() {
        let line = line.unwrap();
        if let Some(p) = line.strip_prefix("SERVICE_PID=") {
            pid = Some(p.trim().parse::<u32>().unwrap());
            break;
        }
    }
    let pid = pid.expect("holder printed the service pid");
    assert!(alive(pid));
    holder.kill().unwrap(); // SIGKILL: no destructor, no shutdown
    holder.wait().unwrap();
    let start = std::time::Instant::now();
    while alive(pid) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(pid), "service {pid} outlived gauntlet");
}
