//! The demo stack in Docker: build the images with docker/build.sh (no registry), start the
//! stack with compose under its own project name and ports, probe it through the ports
//! published on 127.0.0.1, tear everything down (also when the test fails).
//!
//! Without Docker the test says why and passes; with CI=true it fails instead.

#[path = "common/demo.rs"]
mod demo;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The compose command: Debian's docker-compose (v1), or the `docker compose` plugin.
fn compose_cmd() -> Option<Vec<String>> {
    let ok = |c: &mut Command| {
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if ok(Command::new("docker-compose").arg("version")) {
        return Some(vec!["docker-compose".into()]);
    }
    if ok(Command::new("docker").args(["compose", "version"])) {
        return Some(vec!["docker".into(), "compose".into()]);
    }
    None
}

/// Why Docker cannot be used here, if it cannot.
fn docker_missing() -> Option<String> {
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
    {
        Err(e) => return Some(format!("docker CLI not runnable: {e}")),
        Ok(o) if !o.status.success() => {
            return Some(format!(
                "Docker engine unreachable: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Ok(_) => {}
    }
    if compose_cmd().is_none() {
        return Some("neither docker-compose nor `docker compose` is installed".into());
    }
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("redis-server (Debian package) is needed to build the Redis image".into());
    }
    None
}

/// Runs `cmd` to completion within `limit`, output captured; kills it on timeout.
fn run(mut cmd: Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

fn show(o: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A compose project; `down -v` on drop, whatever happened.
struct Stack {
    compose: Vec<String>,
    project: String,
    env: Vec<(String, String)>,
}

impl Stack {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.compose[0]);
        c.args(&self.compose[1..])
            .arg("-f")
            .arg(root().join("docker/compose.yml"))
            .arg("-p")
            .arg(&self.project)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = run(self.cmd(&["logs", "--no-color"]), Duration::from_secs(60));
            eprintln!(
                "--- compose logs:\n{}",
                String::from_utf8_lossy(&logs.stdout)
            );
        }
        let o = run(
            self.cmd(&["down", "-v", "--remove-orphans", "-t", "5"]),
            Duration::from_secs(180),
        );
        if !o.status.success() {
            eprintln!("compose down failed: {}", show(&o));
        }
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port`; status and body.
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.get(9..12)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn inspect(container: &str, format: &str) -> String {
    let o = run(
        {
            let mut c = Command::new("docker");
            c.args(["inspect", "-f", format, container]);
            c
        },
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "docker inspect: {}", show(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn docker_stack_builds_starts_and_answers_on_loopback() {
    if let Some(why) = docker_missing() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true and Docker is required for this test: {why}");
        }
        eprintln!("SKIPPED demo_docker: {why}");
        return;
    }

    // A first static release build takes minutes on two cores; later runs are quick.
    let build = run(
        Command::new(root().join("docker/build.sh")),
        Duration::from_secs(45 * 60),
    );
    assert!(build.status.success(), "docker/build.sh: {}", show(&build));

    let project = format!("gauntlet-test-{}", std::process::id());
    let ports: Vec<u16> = (0..4).map(|_| demo::free_port()).collect();
    let stack = Stack {
        compose: compose_cmd().unwrap(),
        project: project.clone(),
        env: vec![
            ("GAUNTLET_DEMO_NAME".into(), project.clone()),
            ("GAUNTLET_API_PORT".into(), ports[0].to_string()),
            ("GAUNTLET_PIPELINE_PORT".into(), ports[1].to_string()),
            ("GAUNTLET_STANDBY_PORT".into(), ports[2].to_string()),
            ("GAUNTLET_REDIS_PORT".into(), ports[3].to_string()),
            ("GAUNTLET_DEMO_DEFECTS".into(), String::new()),
        ],
    };
    let up = run(stack.cmd(&["up", "-d"]), Duration::from_secs(300));
    assert!(up.status.success(), "compose up: {}", show(&up));

    wait_for("api /health = 200", Duration::from_secs(120), || {
        matches!(http(ports[0], "GET", "/health", ""), Some((200, _)))
    });
    let created = http(
        ports[0],
        "POST",
        "/api/items",
        r#"{"name":"in a container"}"#,
    );
    assert!(
        matches!(&created, Some((201, b)) if b.contains("in a container")),
        "{created:?}"
    );
    // Through the network and the service name redis://redis:6379, into the sink.
    wait_for(
        "the item in the pipeline's sink",
        Duration::from_secs(120),
        || {
            http(ports[1], "GET", "/sink", "")
                .and_then(|(s, b)| (s == 200).then_some(b))
                .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v["distinct"] == 1)
        },
    );
    wait_for(
        "standby /health = 200",
        Duration::from_secs(120),
        || matches!(http(ports[2], "GET", "/health", ""), Some((200, b)) if b.contains("standby")),
    );

    for svc in ["redis", "api", "pipeline", "pipeline-standby"] {
        let name = format!("{project}-{svc}");
        assert_eq!(
            inspect(&name, "{{.HostConfig.RestartPolicy.Name}}"),
            "on-failure",
            "{name}"
        );
        let ips = inspect(
            &name,
            "{{range $p, $b := .HostConfig.PortBindings}}{{range $b}}{{.HostIp}} {{end}}{{end}}",
        );
        assert!(
            !ips.is_empty() && ips.split_whitespace().all(|ip| ip == "127.0.0.1"),
            "{name} publishes beyond loopback: {ips:?}"
        );
    }
    drop(stack);
    let left = run(
        {
            let mut c = Command::new("docker");
            c.args(["ps", "-aq", "--filter"])
                .arg(format!("name={project}-"));
            c
        },
        Duration::from_secs(30),
    );
    assert!(
        left.stdout.iter().all(|b| b.is_ascii_whitespace()),
        "containers left behind: {}",
        show(&left)
    );
}
