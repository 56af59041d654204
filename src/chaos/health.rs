//! Health checks: one probe (HTTP GET 2xx with an optional body check, Redis PING, a
//! command's exit code, or a TCP connect), the per-service prober that runs during the
//! whole run (availability), and the process-state check a process-backend service adds.
//!
//! Time stamps (one definition, used by every report): a failed probe says the service
//! was unhealthy when the probe was *sent* (it did not answer a request sent then); a
//! successful probe says it was healthy when the answer *came*, and, when that answer
//! took longer than one probe interval, that it was not answering from the send until
//! then (a stall shorter than the timeout is still a stall). Probes are sent on a fixed
//! cadence whatever earlier probes are still waiting for, so an outage is sampled every
//! interval, not every timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesOrdered, StreamExt};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::event::{EventKind, EventSink, ServiceEvent, ServiceEventKind};

use super::{os, Control, Service};

/// A service's health check, resolved by `scenario` (target, interval, timeout, startup).
pub(crate) use crate::scenario::model::{HealthPlan as Health, ProbeTarget};

/// What is read of an HTTP health check's body, at most (the `body` text is searched in it).
const BODY_LIMIT: usize = 64 * 1024;
/// What is kept of a health command's stderr for the reason.
const STDERR_LIMIT: u64 = 2048;

impl Health {
    /// One probe, bounded by the check's timeout. Ok(latency) when healthy.
    pub async fn probe(&self) -> Result<Duration, String> {
        probe(&self.target, self.timeout).await
    }
}

/// One health probe. Ok(latency) when healthy; Err(reason) otherwise.
pub(crate) async fn probe(target: &ProbeTarget, timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    match tokio::time::timeout(timeout, probe_inner(target)).await {
        Ok(Ok(())) => Ok(start.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "{}: no answer within {}",
            target.describe(),
            humantime::format_duration(timeout)
        )),
    }
}

/// The whole health of a service: its process state first (process backend: a stopped or
/// missing process is unhealthy whatever its socket says), then its check.
pub(crate) async fn probe_service(
    svc: &Service,
    health: &Health,
    timeout: Duration,
) -> Result<Duration, String> {
    let by_state = health.process_state;
    if let Some(problem) = by_state.then(|| process_problem(&svc.control)).flatten() {
        return Err(problem);
    }
    let r = probe(&health.target, timeout).await;
    // A process stopped while the probe waited: the answer (if any) came from the kernel.
    if r.is_ok() && by_state {
        if let Some(problem) = process_problem(&svc.control) {
            return Err(problem);
        }
    }
    r
}

/// Why a process-backend service's processes are not running, if they are not.
pub(crate) fn process_problem(control: &Control) -> Option<String> {
    let (pid, group) = match control {
        Control::Managed(m) => match m.pid() {
            Some(p) => (p as i32, true),
            None => return Some("process not running".into()),
        },
        // Without a pid file there is no process to look at: the check alone decides.
        Control::Unmanaged(u) if u.pid_file.is_none() => return None,
        Control::Unmanaged(u) => match u.pid() {
            Some(p) => (p, false),
            None => return Some("no process (its pid file cannot be read)".into()),
        },
        Control::Docker(_) => return None,
    };
    match os::proc_state(pid) {
        None | Some('Z') | Some('X') => return Some(format!("process {pid} is gone")),
        _ => {}
    }
    os::service_members(pid, group)
        .into_iter()
        .find(|p| matches!(os::proc_state(*p), Some('T') | Some('t')))
        .map(|p| format!("process {p} is stopped (state T)"))
}

async fn probe_inner(target: &ProbeTarget) -> Result<(), String> {
    match target {
        ProbeTarget::Tcp { host, port } => {
            TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(|e| format!("connect {host}:{port}: {e}"))?;
            Ok(())
        }
        ProbeTarget::Http {
            host,
            port,
            path,
            authority,
            body,
            tls,
        } => {
            let stream = TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(|e| format!("connect {host}:{port}: {e}"))?;
            let _ = stream.set_nodelay(true);
            // Only the status is read; a head past 64 KiB is an error, not memory.
            let builder = {
                let mut b = hyper::client::conn::http1::Builder::new();
                b.max_buf_size(64 << 10);
                b
            };
            let (mut sender, conn) = match tls {
                None => {
                    let (tx, conn) = builder
                        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                        .await
                        .map_err(|e| format!("http handshake: {e}"))?;
                    (tx, tokio::spawn(async move { conn.await.map(|_| ()) }))
                }
                Some(t) => {
                    let tls =
                        crate::load::tls::Tls::for_health(t, host).map_err(|e| e.to_string())?;
                    let stream = tls.connect(stream).await.map_err(|e| e.to_string())?;
                    let (tx, conn) = builder
                        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                        .await
                        .map_err(|e| format!("http handshake: {e}"))?;
                    (tx, tokio::spawn(async move { conn.await.map(|_| ()) }))
                }
            };
            let req = http::Request::get(path.as_str())
                .header(http::header::HOST, authority.as_str())
                .header(http::header::CONNECTION, "close")
                .header(http::header::USER_AGENT, "gauntlet-health")
                .body(Empty::<Bytes>::new())
                .map_err(|e| format!("request: {e}"))?;
            let res = sender.send_request(req).await;
            let res = match res {
                Ok(r) => r,
                Err(e) => {
                    conn.abort();
                    return Err(format!("GET {path}: {e}"));
                }
            };
            let status = res.status();
            let r = if !status.is_success() {
                Err(format!("GET {path}: status {}", status.as_u16()))
            } else if let Some(want) = body {
                match Limited::new(res.into_body(), BODY_LIMIT).collect().await {
                    Ok(b) => {
                        let b = b.to_bytes();
                        if String::from_utf8_lossy(&b).contains(want.as_str()) {
                            Ok(())
                        } else {
                            // The body is not quoted: it may hold anything.
                            Err(format!(
                                "GET {path}: status {} but the body ({} bytes) does not contain {want:?}",
                                status.as_u16(),
                                b.len()
                            ))
                        }
                    }
                    Err(e) => Err(format!("GET {path}: body: {e}")),
                }
            } else {
                Ok(())
            };
            conn.abort();
            r
        }
        ProbeTarget::Redis { url, shown } => {
            let client = redis::Client::open(url.as_str())
                .map_err(|e| format!("redis {shown}: {}", redis_reason(&e)))?;
            let mut con = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| format!("redis {shown}: {}", redis_reason(&e)))?;
            let pong: String = redis::cmd("PING")
                .query_async(&mut con)
                .await
                .map_err(|e| format!("redis {shown}: PING: {}", redis_reason(&e)))?;
            if pong == "PONG" {
                Ok(())
            } else {
                Err(format!("redis {shown}: PING answered {pong:?}"))
            }
        }
        ProbeTarget::Command { argv } => {
            let mut child = tokio::process::Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                // The probe's timeout drops this future: the command must not outlive it.
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("command `{}`: {e}", argv[0]))?;
            let mut stderr = child.stderr.take();
            let mut tail = Vec::new();
            let read = async {
                if let Some(e) = stderr.as_mut() {
                    let _ = e.take(STDERR_LIMIT).read_to_end(&mut tail).await;
                    // The rest is drained so a chatty command never blocks on its pipe.
                    let _ = tokio::io::copy(e, &mut tokio::io::sink()).await;
                }
            };
            let (status, ()) = tokio::join!(child.wait(), read);
            let status = status.map_err(|e| format!("command `{}`: {e}", argv[0]))?;
            if status.success() {
                Ok(())
            } else {
                let msg = String::from_utf8_lossy(&tail);
                let line = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                Err(format!(
                    "command `{}`: {status}{}",
                    argv[0],
                    if line.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", line.trim())
                    }
                ))
            }
        }
    }
}

/// A redis error without what the server may have echoed (it can quote a password).
fn redis_reason(e: &redis::RedisError) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connection_refusal() {
        "connection refused".into()
    } else if e.is_io_error() {
        format!("{:?} (connection)", e.kind())
    } else {
        match e.code() {
            Some(code) => format!("error {code}"),
            None => format!("{:?}", e.kind()),
        }
    }
}

/// One probe as the prober sees it: when it was sent, when it was answered (or gave up).
struct Outcome {
    sent: Instant,
    answered: Instant,
    result: Result<Duration, String>,
}

/// The prober of one service during the run: a probe sent every `interval` whatever the
/// earlier ones are still waiting for (so a probe hanging for its timeout does not slow
/// the sampling of an outage), each one a `EventKind::Probe` stamped by the module's rule;
/// a change between healthy and unhealthy is a service event with the same stamp.
pub(crate) async fn run_prober(
    svc: Arc<Service>,
    health: Arc<Health>,
    events: EventSink,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(health.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Enough probes in flight to cover one timeout, and a bound on them.
    let in_flight =
        usize::try_from(health.timeout.as_nanos() / health.interval.as_nanos().max(1) + 2)
            .unwrap_or(usize::MAX)
            .min(64);
    let mut pending = FuturesOrdered::new();
    let mut healthy = true; // it passed its startup check
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick(), if pending.len() < in_flight => {
                let (svc, health) = (svc.clone(), health.clone());
                pending.push_back(async move {
                    let sent = Instant::now();
                    let result = probe_service(&svc, &health, health.timeout).await;
                    Outcome { sent, answered: Instant::now(), result }
                });
            }
            Some(o) = pending.next() => {
                record_probe(&svc.name, &health, &events, &mut healthy, o);
            }
        }
    }
    // The probes still out say how the run's last moments went (a stall that ends with
    // the run is answered only then): wait for them, at most one timeout.
    let until = tokio::time::Instant::now() + health.timeout;
    while let Ok(Some(o)) = tokio::time::timeout_at(until, pending.next()).await {
        record_probe(&svc.name, &health, &events, &mut healthy, o);
    }
}

/// One probe's events, in send order (FuturesOrdered), so state changes come in time
/// order: the probe, and a service event when it changes healthy ↔ unhealthy.
fn record_probe(
    service: &str,
    health: &Health,
    events: &EventSink,
    healthy: &mut bool,
    o: Outcome,
) {
    let ok = o.result.is_ok();
    let at = events.at(if ok { o.answered } else { o.sent });
    // A stall (a paused process, a full backlog) holds probes until it ends and then
    // answers them: slower than the cadence means not answering.
    let stalled_since =
        (ok && o.answered.duration_since(o.sent) > health.interval).then(|| events.at(o.sent));
    events.send_at(
        at,
        EventKind::Probe {
            service: service.to_string(),
            ok,
            latency_us: o
                .result
                .as_ref()
                .map_or(0, |l| u64::try_from(l.as_micros()).unwrap_or(u64::MAX)),
            stalled_since,
        },
    );
    if ok != *healthy {
        *healthy = ok;
        let kind = match o.result {
            Ok(_) => ServiceEventKind::Healthy,
            Err(reason) => ServiceEventKind::Unhealthy { reason },
        };
        events.send_at(
            at,
            EventKind::Service(ServiceEvent {
                service: service.to_string(),
                kind,
            }),
        );
    }
}

/// How often the recovery watcher probes (finer than the prober, for a precise figure).
pub(crate) const RECOVERY_PROBE_EVERY: Duration = Duration::from_millis(100);
/// Consecutive healthy probes that make a recovery.
pub(crate) const RECOVERY_STREAK: u32 = 2;
