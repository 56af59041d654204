//! The load engine's benchmark (ignored by `cargo test`; run by `scripts/bench-load.sh`,
//! which pins the server and the generator to different cores). No timed assertion:
//! it prints figures.
//!
//! * `bench_server`: a lean hyper HTTP/1.1 server on `BENCH_PORT` (one thread, the
//!   `bench/server/src/serve.rs` of scripts/bench.sh), answering every request with a
//!   2-byte body, for `BENCH_SERVE_SECS`.
//! * `bench_engine`: the real engine (`gauntlet::load::run`, closed model, goose users,
//!   one keep-alive connection per user) with `BENCH_USERS` users for `BENCH_SECS`
//!   against `BENCH_URL`; prints req/s, peak RSS and the time until every user runs.
//! * `bench_bare`: the reference: the same number of connections, each a task looping
//!   on a bare hyper `SendRequest`, no goose, no checks, no events.

mod load_support;
// The target server of scripts/bench.sh too (bench/server).
#[path = "../bench/server/src/serve.rs"]
mod serve;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gauntlet::event::{EventKind, EventSink, Phase, RunEvent};
use gauntlet::record::Recorder;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn raise_nofile() {
    if let Ok((_, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        let _ = rlimit::increase_nofile_limit(hard);
    }
}

/// kB from /proc/self/status.
fn proc_status(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "benchmark: run by scripts/bench-load.sh"]
fn bench_server() {
    raise_nofile();
    let port: u16 = env("BENCH_PORT", 18999);
    let secs: u64 = env("BENCH_SERVE_SECS", 120);
    rt().block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let served = Arc::new(AtomicU64::new(0));
        let serve = serve::serve(listener, served.clone());
        tokio::select! {
            _ = serve => {}
            _ = tokio::time::sleep(Duration::from_secs(secs)) => {}
        }
        eprintln!("server: {} requests served", served.load(Ordering::Relaxed));
    });
}

#[test]
#[ignore = "benchmark: run by scripts/bench-load.sh"]
fn bench_engine() {
    let url: String = env("BENCH_URL", "http://127.0.0.1:18999".to_string());
    let users: u32 = env("BENCH_USERS", 5000);
    let secs: u64 = env("BENCH_SECS", 10);
    let think: String = env("BENCH_THINK", "0s".to_string());
    let p = load_support::plan(
        &url,
        &format!(
            r#"think_time = "{think}"
stages = [{{ duration = "0s", users = {users} }}, {{ duration = "{secs}s", users = {users} }}]"#
        ),
        r#"
[[requests]]
name = "get"
path = "/"
"#,
    );
    let plan = Arc::new(p);
    let rss_before = proc_status("VmRSS:");
    let runtime = rt();
    let mut recorder = Recorder::new(&plan);
    let (sink, mut rx) = EventSink::new(Instant::now());
    let all_users_at = runtime.block_on(async {
        sink.send(EventKind::Phase(Phase::LoadStarted));
        let started = sink.now();
        let load = gauntlet::load::run(plan.clone(), sink.clone(), CancellationToken::new());
        tokio::pin!(load);
        let mut all_at = None;
        let result = loop {
            tokio::select! {
                r = &mut load => break r,
                Some(ev) = rx.recv() => {
                    if let RunEvent { at, kind: EventKind::Users { count } } = &ev {
                        if *count >= users && all_at.is_none() {
                            all_at = Some(at.saturating_sub(started));
                        }
                    }
                    recorder.record(&ev);
                }
            }
        };
        result.expect("load ran");
        sink.send(EventKind::Phase(Phase::LoadFinished));
        all_at
    });
    drop(sink);
    while let Ok(ev) = rx.try_recv() {
        recorder.record(&ev);
    }
    let rss_peak = proc_status("VmHWM:");
    let rec = recorder.finish();
    // Throughput over the full seconds once every user runs (skip the first second and
    // the last, partial one).
    let start_sec = all_users_at.map(|d| d.as_secs() as usize + 1).unwrap_or(1);
    let full: Vec<_> = rec
        .windows
        .iter()
        .skip(start_sec)
        .take(rec.windows.len().saturating_sub(start_sec + 1))
        .collect();
    let steady = if full.is_empty() {
        0.0
    } else {
        full.iter().map(|w| w.requests).sum::<u64>() as f64 / full.len() as f64
    };
    let p = |q: f64| rec.total.raw.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "engine: users {users}, think {think}, hold {secs}s: {} requests, {} errors {:?}",
        rec.total.count, rec.total.errors, rec.total.error_reasons
    );
    println!(
        "engine: steady throughput {steady:.0} req/s over {} s; overall {:.0} req/s",
        full.len(),
        rec.total.count as f64 / rec.load_duration.as_secs_f64()
    );
    println!(
        "engine: all {users} users running {:.2} s after start; users peak {}",
        all_users_at.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN),
        rec.users_peak
    );
    println!(
        "engine: RSS before {} MiB, peak {} MiB, {:.1} KiB per user",
        rss_before / 1024,
        rss_peak / 1024,
        rss_peak.saturating_sub(rss_before) as f64 / f64::from(users.max(1))
    );
    println!(
        "engine: latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        p(0.5),
        p(0.99),
        rec.total.raw.max() as f64 / 1000.0
    );
}

#[test]
#[ignore = "benchmark: run by scripts/bench-load.sh"]
fn bench_bare() {
    raise_nofile();
    let url: String = env("BENCH_URL", "http://127.0.0.1:18999".to_string());
    let conns: u32 = env("BENCH_USERS", 5000);
    let secs: u64 = env("BENCH_SECS", 10);
    let u = url::Url::parse(&url).unwrap();
    let addr = format!(
        "{}:{}",
        u.host_str().unwrap(),
        u.port_or_known_default().unwrap()
    );
    let host = u.authority().to_string();
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    rt().block_on(async {
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (addr, host, done, errors, stop) = (
                addr.clone(),
                host.clone(),
                done.clone(),
                errors.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let Ok(stream) = tokio::net::TcpStream::connect(&addr).await else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let _ = stream.set_nodelay(true);
                let (mut tx, conn) =
                    hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                        .await
                        .unwrap();
                tokio::spawn(conn);
                while !stop.is_cancelled() {
                    let req = hyper::Request::builder()
                        .uri("/")
                        .header("host", host.as_str())
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    match tx.send_request(req).await {
                        Ok(r) => {
                            let _ = r.into_body().collect().await;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            }));
        }
        // Warm up one second, then count.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let d0 = done.load(Ordering::Relaxed);
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let n = done.load(Ordering::Relaxed) - d0;
        let rate = n as f64 / t0.elapsed().as_secs_f64();
        stop.cancel();
        for t in tasks {
            let _ = t.await;
        }
        println!(
            "bare: {conns} connections, {secs}s: {rate:.0} req/s, {} errors, RSS peak {} MiB",
            errors.load(Ordering::Relaxed),
            proc_status("VmHWM:") / 1024
        );
    });
}
