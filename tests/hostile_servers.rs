//! The real `gauntlet` binary against hostile servers on 127.0.0.1, hand-written on tokio
//! sockets: a 100 MB body, an endless chunked body, headers at one byte a second, garbage
//! instead of HTTP, connection resets, a redirect to a host off the allow list, and a
//! server that echoes the request's Authorization token into a failing check. Each run
//! must end on time, with a verdict (exit 1) or a clear error, never a panic (101), and
//! with its peak RSS (VmHWM, polled while it runs) under [`RSS_BOUND`]. Plus the binary
//! under `ulimit -n 8`: a clear error, nothing started.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::*;

/// Peak resident memory allowed to a run against any of these servers.
const RSS_BOUND: u64 = 300 << 20;
/// The load lasts 3s (plus 2s of grace for requests in flight); the scenario's hard cap
/// is 20s. A run must end well within this.
const RUN_BOUND: Duration = Duration::from_secs(15);

/// What a hostile server does with each request.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// 200 with `Content-Length: 100000000`, then the bytes, as fast as they go.
    HugeBody,
    /// 200, chunked, chunks of 64 KiB forever.
    EndlessChunked,
    /// Headers at one byte per second, never finished.
    Slowloris,
    /// Header lines as fast as they go, never finished.
    EndlessHeaders,
    /// Bytes that are not HTTP, then close.
    Garbage,
    /// Read the request, then reset the connection (RST).
    Reset,
    /// 302 to `http://127.0.0.2:PORT/` (not on the allow list).
    Redirect(u16),
    /// 200 with the request's Authorization header in a JSON body; `/login` answers a
    /// token holding a control character (no header can carry it).
    EchoAuth,
}

/// A hostile server on its own thread and runtime; counts connections.
struct Server {
    port: u16,
    connections: Arc<AtomicU64>,
}

fn serve(host: &str, how: Hostile) -> Server {
    let std_listener = std::net::TcpListener::bind((host, 0)).expect("bind");
    std_listener.set_nonblocking(true).unwrap();
    let port = std_listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicU64::new(0));
    let counted = connections.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let _ = connection(sock, how).await;
                });
            }
        });
    });
    Server { port, connections }
}

/// Read one request head (the load sends GETs without a body); None when the peer closed.
async fn read_head(sock: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(1024);
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut byte).await?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(None);
        }
        buf.extend_from_slice(&byte[..n]);
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

async fn connection(mut sock: TcpStream, how: Hostile) -> std::io::Result<()> {
    while let Some(head) = read_head(&mut sock).await? {
        match how {
            Hostile::HugeBody => {
                sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
                    .await?;
                let chunk = vec![b'x'; 64 * 1024];
                let mut left: usize = 100_000_000;
                while left > 0 {
                    let n = left.min(chunk.len());
                    sock.write_all(&chunk[..n]).await?;
                    left -= n;
                }
            }
            Hostile::EndlessChunked => {
                sock.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .await?;
                let mut chunk = b"10000\r\n".to_vec();
                chunk.extend(std::iter::repeat_n(b'y', 0x10000));
                chunk.extend_from_slice(b"\r\n");
                loop {
                    sock.write_all(&chunk).await?;
                }
            }
            Hostile::Slowloris => {
                sock.write_all(b"HTTP/1.1 200 OK\r\n").await?;
                loop {
                    sock.write_all(b"X-Slow: a").await?;
                    for _ in 0..1000 {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        sock.write_all(b"a").await?;
                    }
                }
            }
            Hostile::EndlessHeaders => {
                sock.write_all(b"HTTP/1.1 200 OK\r\n").await?;
                let line = format!("X-Flood: {}\r\n", "z".repeat(1000));
                loop {
                    sock.write_all(line.as_bytes()).await?;
                }
            }
            Hostile::Garbage => {
                sock.write_all(b"\x00\x01\x02 SMTP READY\r\n\xff\xfe garbage\r\n\r\n")
                    .await?;
                return Ok(());
            }
            Hostile::Reset => {
                // A zero linger resets at close; it does not block (nothing to flush).
                #[allow(deprecated)]
                sock.set_linger(Some(Duration::ZERO))?;
                return Ok(());
            }
            Hostile::Redirect(port) => {
                let resp = format!(
                    "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:{port}/stolen\r\nContent-Length: 0\r\n\r\n"
                );
                sock.write_all(resp.as_bytes()).await?;
            }
            Hostile::EchoAuth => {
                let auth = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("authorization")
                            .then(|| v.trim().to_string())
                    })
                    .unwrap_or_default();
                let body = if head.starts_with("GET /login ") {
                    r#"{"token": "s3cr3t-T0KEN-abc123\u0001"}"#.to_string()
                } else {
                    format!(r#"{{"auth": "{auth}"}}"#)
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(resp.as_bytes()).await?;
            }
        }
    }
    Ok(())
}

/// A short closed-model scenario: 5 users for 3s, requests time out after 2s.
fn scenario(port: u16, request_extra: &str, report: &str) -> String {
    format!(
        r#"
name = "hostile"
seed = 1
duration = "20s"

[target]
base_url = "http://127.0.0.1:{port}"
allow_hosts = ["127.0.0.1"]

[load]
timeout = "2s"
stages = [{{ duration = "3s", users = 5 }}]

[[requests]]
name = "get"
path = "/"
{request_extra}
{report}
"#
    )
}

/// How one run of the binary went.
struct Run {
    code: Option<i32>,
    elapsed: Duration,
    /// Largest VmHWM seen while it ran (bytes).
    peak_rss: u64,
    stdout: String,
    stderr: String,
    summary: Option<serde_json::Value>,
    /// Every report file's text, for what must not be in them.
    reports: String,
}

/// VmHWM of `pid`, in bytes (None once it is gone or a zombie).
fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let kb = l.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?.trim();
        kb.parse::<u64>().ok().map(|k| k * 1024)
    })
}

/// Run the binary on `text` (quiet), polling its peak RSS until it exits; killed past
/// [`RUN_BOUND`] (the test then fails on the time).
fn run(dir: &Path, text: &str, run_id: &str, shell_prefix: Option<&str>) -> Run {
    let file = dir.join(format!("{run_id}.toml"));
    std::fs::write(&file, text).unwrap();
    let reports = dir.join("reports");
    let args = [
        "run".as_ref(),
        file.as_os_str(),
        "--reports".as_ref(),
        reports.as_os_str(),
        "--run-id".as_ref(),
        run_id.as_ref(),
        "--quiet".as_ref(),
    ];
    let mut cmd = match shell_prefix {
        // `exec` keeps the pid: the limit applies to gauntlet itself.
        Some(prefix) => {
            let mut c = Command::new("bash");
            c.arg("-c")
                .arg(format!("{prefix}; exec \"$0\" \"$@\""))
                .arg(gauntlet_bin())
                .args(args);
            c
        }
        None => {
            let mut c = Command::new(gauntlet_bin());
            c.args(args);
            c
        }
    };
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gauntlet");
    let pid = child.id();
    // Drain the pipes on threads so a chatty child never blocks.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let mut peak = 0;
    let status = loop {
        if let Some(h) = vm_hwm(pid) {
            peak = peak.max(h);
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if started.elapsed() > RUN_BOUND {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    eprintln!(
        "{run_id}: exit {:?} after {:.1}s, peak RSS {:.1} MiB",
        status.code(),
        elapsed.as_secs_f64(),
        peak as f64 / (1 << 20) as f64
    );
    let report_dir = reports.join(run_id);
    let summary = std::fs::read_to_string(report_dir.join("summary.json"))
        .ok()
        .map(|t| serde_json::from_str(&t).expect("summary.json parses"));
    let mut all = String::new();
    if let Ok(rd) = std::fs::read_dir(&report_dir) {
        for e in rd.flatten() {
            if let Ok(t) = std::fs::read_to_string(e.path()) {
                all.push_str(&t);
            }
        }
    }
    Run {
        code: status.code(),
        elapsed,
        peak_rss: peak,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
        summary,
        reports: all,
    }
}

impl Run {
    fn show(&self) -> String {
        format!(
            "exit {:?} after {:?}, peak RSS {} MiB\n--- stdout\n{}\n--- stderr\n{}\n--- summary\n{}",
            self.code,
            self.elapsed,
            self.peak_rss >> 20,
            self.stdout,
            self.stderr,
            self.summary
                .as_ref()
                .map(|s| serde_json::to_string_pretty(s).unwrap())
                .unwrap_or_default()
        )
    }

    /// Ended on time with a failed verdict (exit 1), under the memory bound.
    fn assert_failed_verdict(&self) {
        assert_eq!(self.code, Some(1), "{}", self.show());
        assert!(self.elapsed < RUN_BOUND, "{}", self.show());
        assert!(self.peak_rss > 0, "no RSS sample\n{}", self.show());
        assert!(self.peak_rss < RSS_BOUND, "{}", self.show());
    }

    fn summary(&self) -> &serde_json::Value {
        self.summary.as_ref().expect("summary.json written")
    }

    fn problems(&self) -> Vec<String> {
        self.summary()["verdict"]["problems"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The error reasons of request `get`.
    fn reasons(&self) -> Vec<String> {
        self.summary()["requests"][0]["top_errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r["reason"].as_str())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Every request failed for `reason`: the verdict says so (no criteria in the file).
fn hostile_case(how: Hostile, reason: &str) {
    let server = serve("127.0.0.1", how);
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        dir.path(),
        &scenario(server.port, "", ""),
        &format!("{how:?}"),
        None,
    );
    r.assert_failed_verdict();
    assert!(
        r.problems()
            .iter()
            .any(|p| p.starts_with("no request succeeded")),
        "{}",
        r.show()
    );
    assert!(
        r.reasons().iter().any(|x| x.contains(reason)),
        "want a reason with {reason:?}: {:?}\n{}",
        r.reasons(),
        r.show()
    );
}

#[test]
fn a_100_mb_body_is_refused_at_its_announced_length() {
    hostile_case(Hostile::HugeBody, "body larger than 1MiB");
}

#[test]
fn an_endless_chunked_body_is_cut_at_the_limit() {
    hostile_case(Hostile::EndlessChunked, "body larger than 1MiB");
}

#[test]
fn headers_at_one_byte_a_second_time_out() {
    hostile_case(Hostile::Slowloris, "timeout after 2s");
}

#[test]
fn endless_headers_are_cut_by_the_head_limit() {
    hostile_case(Hostile::EndlessHeaders, "message head is too large");
}

#[test]
fn garbage_instead_of_http_is_an_error() {
    hostile_case(Hostile::Garbage, "http:");
}

#[test]
fn connection_resets_are_errors() {
    hostile_case(Hostile::Reset, "connection reset");
}

/// With `truncate_body`, an endless body is cut and the request passes; memory stays
/// bounded all the same (a check reads the kept start).
#[test]
fn truncation_when_the_scenario_accepts_it() {
    let server = serve("127.0.0.1", Hostile::EndlessChunked);
    let dir = tempfile::tempdir().unwrap();
    let text = scenario(server.port, r#"checks = [{ body_contains = "yyyy" }]"#, "").replace(
        "timeout = \"2s\"",
        "timeout = \"2s\"\nmax_body = \"256KiB\"\ntruncate_body = true",
    );
    let r = run(dir.path(), &text, "t", None);
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert!(r.elapsed < RUN_BOUND, "{}", r.show());
    assert!(r.peak_rss > 0 && r.peak_rss < RSS_BOUND, "{}", r.show());
    assert!(r.summary()["requests"][0]["count"].as_u64().unwrap_or(0) > 0);
}

/// A redirect is never followed, least of all off the allow list: the host it points to
/// sees no connection. (With `status = 200` the 302 fails the check.)
#[test]
fn a_redirect_off_the_allow_list_is_not_followed() {
    let off_list = serve("127.0.0.2", Hostile::Garbage);
    let server = serve("127.0.0.1", Hostile::Redirect(off_list.port));
    let dir = tempfile::tempdir().unwrap();
    let text = scenario(server.port, "checks = [{ status = 200 }]", "");
    let r = run(dir.path(), &text, "r", None);
    r.assert_failed_verdict();
    assert!(server.connections.load(Ordering::SeqCst) > 0);
    assert_eq!(
        off_list.connections.load(Ordering::SeqCst),
        0,
        "{}",
        r.show()
    );
    assert!(
        r.reasons()
            .iter()
            .any(|x| x.contains("check failed: status 302, expected 200")),
        "{}",
        r.show()
    );
}

/// A check that fails on an echoed Authorization token, and a header that cannot carry an
/// extracted token, never quote the token, in any report or output, unless the scenario
/// says `[report] show_values = true`.
#[test]
fn a_token_in_a_failing_check_stays_out_of_every_report() {
    const TOKEN: &str = "s3cr3t-T0KEN-abc123";
    let server = serve("127.0.0.1", Hostile::EchoAuth);
    let dir = tempfile::tempdir().unwrap();
    let request = format!(
        r#"headers = {{ authorization = "Bearer {TOKEN}" }}
checks = [{{ json = "/auth", equals = "Bearer expected" }}]

[[requests]]
name = "login"
weight = 0
path = "/login"
extract = [{{ var = "token", json = "/token" }}]

[[requests]]
name = "use token"
path = "/use"
headers = {{ x-api-key = "{{{{token}}}}" }}"#
    );
    // Some requests succeed (the logins): a criterion fails the run.
    let gate =
        |text: String| text.replace("seed = 1", "seed = 1\ncriteria = [\"errors.count == 0\"]");
    let r = run(
        dir.path(),
        &gate(scenario(server.port, &request, "")),
        "hidden",
        None,
    );
    r.assert_failed_verdict();
    assert!(
        r.reasons()
            .iter()
            .any(|x| x
                == "check failed: /auth == \"Bearer expected\", found a string (value hidden)"),
        "{:?}\n{}",
        r.reasons(),
        r.show()
    );
    assert!(
        r.reports
            .contains("invalid value for header x-api-key: (value hidden)"),
        "{}",
        r.show()
    );
    for (what, text) in [
        ("reports", &r.reports),
        ("stdout", &r.stdout),
        ("stderr", &r.stderr),
    ] {
        assert!(!text.contains(TOKEN), "the token is in {what}");
    }

    // Opted in: the value is shown.
    let r = run(
        dir.path(),
        &gate(scenario(
            server.port,
            &request,
            "[report]\nshow_values = true",
        )),
        "shown",
        None,
    );
    r.assert_failed_verdict();
    assert!(r.reports.contains(TOKEN), "{}", r.show());
}

/// `ulimit -n 8` (soft and hard): a clear error naming the limit and the need, exit 3,
/// never a panic; nothing started, so no report folder.
#[test]
fn too_few_open_files_is_a_clear_error() {
    let server = serve("127.0.0.1", Hostile::Garbage);
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        dir.path(),
        &scenario(server.port, "", ""),
        "nofile",
        Some("ulimit -n 8"),
    );
    assert_eq!(r.code, Some(3), "{}", r.show());
    assert!(
        r.stderr.contains("open-files limit (RLIMIT_NOFILE) is 8")
            && r.stderr
                .contains("needs about 69 open files (5 users, 64 for the rest)"),
        "{}",
        r.show()
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
    assert!(!dir.path().join("reports").join("nofile").exists());
}
