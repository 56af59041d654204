//! Helpers for the demo-stack tests: real `gauntlet demo ...` processes and a real
//! redis-server on loopback, each killed by a Drop guard.
//!
//! Include with `#[path = "common/demo.rs"] mod demo;`.
#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gauntlet")
}

/// A port free on 127.0.0.1 right now (bind :0, read, release).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A running child with its output captured line by line.
pub struct Proc {
    pub name: String,
    pub child: Child,
    log: Arc<Mutex<Vec<String>>>,
    /// Output pipes still being read (0: every line the child wrote is in `log`).
    pumps: Arc<AtomicUsize>,
    status: Option<ExitStatus>,
}

fn pump(r: impl Read + Send + 'static, log: Arc<Mutex<Vec<String>>>, open: Arc<AtomicUsize>) {
    open.fetch_add(1, Ordering::SeqCst);
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            log.lock().unwrap().push(line);
        }
        open.fetch_sub(1, Ordering::SeqCst);
    });
}

impl Proc {
    /// `gauntlet demo <args>`.
    pub fn demo(name: &str, args: &[&str]) -> Proc {
        let mut c = Command::new(bin());
        // Only the flags a test passes count.
        c.arg("demo").args(args).env_remove("GAUNTLET_DEMO_DEFECTS");
        Proc::spawn(name, c)
    }

    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let pumps = Arc::new(AtomicUsize::new(0));
        pump(child.stdout.take().unwrap(), log.clone(), pumps.clone());
        pump(child.stderr.take().unwrap(), log.clone(), pumps.clone());
        Proc {
            name: name.to_string(),
            child,
            log,
            pumps,
            status: None,
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn signal(&self, sig: Signal) {
        let _ = kill(self.pid(), sig);
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The first log line containing `needle`, waiting up to `timeout`.
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            if let Some(s) = self.try_wait() {
                self.drain();
                if let Some(l) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                    return l.clone();
                }
                panic!(
                    "{} exited ({s}) before logging {needle:?}; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not log {needle:?} within {timeout:?}; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port from the component's "listening on http://HOST:PORT" line.
    pub fn listen_port(&mut self) -> u16 {
        let line = self.wait_log("listening on http://", Duration::from_secs(60));
        let rest = line.split("listening on http://").nth(1).unwrap();
        let addr = rest.split_whitespace().next().unwrap();
        addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// After the child exited: waits until its last lines are in the log (the pipes hit
    /// end of file), at most 5 s, since a grandchild may still hold them open.
    fn drain(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.pumps.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(s) = self.try_wait() {
                self.drain();
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            // A stopped process must be continued to die of anything but SIGKILL; be safe.
            self.signal(Signal::SIGCONT);
            self.signal(Signal::SIGKILL);
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- log of {}:\n{}", self.name, self.log());
        }
    }
}

/// A real redis-server (through `gauntlet demo redis`, which execs it) on a free port.
pub struct Redis {
    pub proc: Proc,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub defects: Vec<String>,
}

impl Redis {
    pub fn start(defects: &[&str]) -> Redis {
        let dir = tempfile::tempdir().expect("tempdir");
        let defects: Vec<String> = defects.iter().map(|s| s.to_string()).collect();
        // A free port can be taken between our probe and Redis's bind: retry.
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut proc = Self::spawn(port, dir.path(), &defects);
            if wait_ping(&mut proc, port, Duration::from_secs(20)) {
                return Redis {
                    proc,
                    port,
                    dir,
                    defects,
                };
            }
            last_log = proc.log();
        }
        panic!("redis-server did not start on a free port in 5 attempts; last log:\n{last_log}");
    }

    fn spawn(port: u16, dir: &std::path::Path, defects: &[String]) -> Proc {
        let mut args: Vec<String> = vec![
            "redis".into(),
            "--port".into(),
            port.to_string(),
            "--dir".into(),
            dir.display().to_string(),
        ];
        for d in defects {
            args.push("--defect".into());
            args.push(d.clone());
        }
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        Proc::demo("redis", &refs)
    }

    pub fn wait_ready(&mut self, timeout: Duration) -> bool {
        wait_ping(&mut self.proc, self.port, timeout)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A blocking connection, for test assertions.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("connect to test redis")
    }

    /// SIGKILL redis-server (a crash: no shutdown save).
    pub fn crash(&mut self) {
        self.proc.signal(Signal::SIGKILL);
        assert!(
            self.proc.wait_exit(Duration::from_secs(10)).is_some(),
            "redis-server did not die"
        );
    }

    /// Start again on the same port and folder.
    pub fn restart(&mut self) {
        self.proc = Self::spawn(self.port, self.dir.path(), &self.defects);
        assert!(
            self.wait_ready(Duration::from_secs(30)),
            "redis-server did not restart; log:\n{}",
            self.proc.log()
        );
    }
}

/// True once PING answers on `port`; false if the process exited (e.g. port taken).
fn wait_ping(proc: &mut Proc, port: u16, timeout: Duration) -> bool {
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if proc.try_wait().is_some() {
            return false;
        }
        if let Ok(client) = redis::Client::open(url.as_str()) {
            if let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(1)) {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Polls `f` until it returns Some, or panics with `what` after `timeout`.
pub async fn poll<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// GET `url`: status and body, or None when there is no answer.
pub async fn get(c: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let r = c.get(url).send().await.ok()?;
    let s = r.status().as_u16();
    Some((s, r.text().await.ok()?))
}

pub async fn get_json(c: &reqwest::Client, url: &str) -> Option<serde_json::Value> {
    let (s, body) = get(c, url).await?;
    if s != 200 {
        return None;
    }
    serde_json::from_str(&body).ok()
}

/// One sample from a component's /metrics.
pub async fn metric(c: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let (s, body) = get(c, &format!("{base}/metrics")).await?;
    if s != 200 {
        return None;
    }
    gauntlet_demo::metrics::sample(&body, name)
}

/// Waits until GET `base/health` answers 200.
pub async fn wait_healthy(c: &reqwest::Client, base: &str) {
    let url = format!("{base}/health");
    poll(Duration::from_secs(60), &url, || async {
        match get(c, &url).await {
            Some((200, _)) => Some(()),
            _ => None,
        }
    })
    .await
}

/// `gauntlet demo api` on a free port, optionally with Redis and extra args.
pub fn start_api(redis: Option<&str>, extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["api", "--port", "0"];
    if let Some(u) = redis {
        args.extend(["--redis", u]);
    }
    args.extend_from_slice(extra);
    let mut p = Proc::demo("api", &args);
    let port = p.listen_port();
    (p, format!("http://127.0.0.1:{port}"))
}

/// `gauntlet demo pipeline` on a free port.
pub fn start_pipeline(name: &str, redis: &str, extra: &[&str]) -> (Proc, String) {
    let mut args = vec![
        "pipeline",
        "--port",
        "0",
        "--redis",
        redis,
        "--instance-name",
        name,
    ];
    args.extend_from_slice(extra);
    let mut p = Proc::demo(name, &args);
    let port = p.listen_port();
    (p, format!("http://127.0.0.1:{port}"))
}
