//! Health checks: one probe (HTTP GET 2xx, or TCP connect), the per-service prober that
//! runs during the whole run (availability), and the recovery watcher a fault starts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::event::{EventKind, EventSink, ServiceEvent, ServiceEventKind};

/// A service's health check, resolved by `scenario` (target, interval, timeout, startup).
pub(crate) use crate::scenario::model::{HealthPlan as Health, ProbeTarget};

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
            "timeout after {}",
            humantime::format_duration(timeout)
        )),
    }
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
        } => {
            let stream = TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(|e| format!("connect {host}:{port}: {e}"))?;
            let _ = stream.set_nodelay(true);
            let (mut sender, conn) =
                // Only the status is read; a head past 64 KiB is an error, not memory.
                hyper::client::conn::http1::Builder::new()
                    .max_buf_size(64 << 10)
                    .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                    .await
                    .map_err(|e| format!("http handshake: {e}"))?;
            let conn = tokio::spawn(conn);
            let req = http::Request::get(path.as_str())
                .header(http::header::HOST, authority.as_str())
                .header(http::header::CONNECTION, "close")
                .header(http::header::USER_AGENT, "gauntlet-health")
                .body(Empty::<Bytes>::new())
                .map_err(|e| format!("request: {e}"))?;
            let res = sender.send_request(req).await;
            conn.abort();
            let res = res.map_err(|e| format!("GET {path}: {e}"))?;
            let status = res.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("GET {path}: status {}", status.as_u16()))
            }
        }
    }
}

/// The prober of one service during the run: a probe every `interval`, each one a
/// `EventKind::Probe`; a change between healthy and unhealthy is a service event too.
pub(crate) async fn run_prober(
    service: String,
    health: Arc<Health>,
    events: EventSink,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(health.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut healthy = true; // it passed its startup check
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let r = tokio::select! {
            _ = cancel.cancelled() => return,
            r = health.probe() => r,
        };
        let at = events.now();
        match r {
            Ok(lat) => {
                events.send_at(
                    at,
                    EventKind::Probe {
                        service: service.clone(),
                        ok: true,
                        latency_us: lat.as_micros() as u64,
                    },
                );
                if !healthy {
                    healthy = true;
                    events.send_at(
                        at,
                        EventKind::Service(ServiceEvent {
                            service: service.clone(),
                            kind: ServiceEventKind::Healthy,
                        }),
                    );
                }
            }
            Err(reason) => {
                events.send_at(
                    at,
                    EventKind::Probe {
                        service: service.clone(),
                        ok: false,
                        latency_us: 0,
                    },
                );
                if healthy {
                    healthy = false;
                    events.send_at(
                        at,
                        EventKind::Service(ServiceEvent {
                            service: service.clone(),
                            kind: ServiceEventKind::Unhealthy { reason },
                        }),
                    );
                }
            }
        }
    }
}

/// How often the recovery watcher probes (finer than the prober, for a precise figure).
pub(crate) const RECOVERY_PROBE_EVERY: Duration = Duration::from_millis(100);
/// Consecutive healthy probes that make a recovery.
pub(crate) const RECOVERY_STREAK: u32 = 2;
