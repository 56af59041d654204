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
use crate::scenario::model::HealthSpec;

use super::{require_loopback_host, ChaosError};
use crate::units::split_host_port;

pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const DEFAULT_STARTUP: Duration = Duration::from_secs(30);

/// What a health check talks to. Only loopback addresses are allowed.
#[derive(Debug, Clone)]
pub(crate) enum ProbeTarget {
    Http {
        host: String,
        port: u16,
        /// Path and query, e.g. "/health".
        path: String,
        authority: String,
    },
    Tcp {
        host: String,
        port: u16,
    },
}

/// A service's health check, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    pub target: ProbeTarget,
    pub interval: Duration,
    pub timeout: Duration,
    pub startup: Duration,
}

impl Health {
    pub fn from_spec(service: &str, spec: &HealthSpec) -> Result<Health, ChaosError> {
        let err = |message: String| ChaosError::Service {
            service: service.to_string(),
            message,
        };
        let target = match (&spec.http, &spec.tcp) {
            (Some(u), None) => {
                let url = url::Url::parse(u)
                    .map_err(|e| err(format!("health.http `{u}` is not a URL: {e}")))?;
                if url.scheme() != "http" {
                    return Err(err(format!(
                        "health.http `{u}`: only http:// health checks are supported"
                    )));
                }
                let host = crate::units::bare_host(
                    url.host_str()
                        .ok_or_else(|| err(format!("health.http `{u}` has no host")))?,
                );
                require_loopback_host(&host).map_err(|m| err(format!("health.http: {m}")))?;
                let port = url.port_or_known_default().unwrap_or(80);
                let mut path = url.path().to_string();
                if let Some(q) = url.query() {
                    path.push('?');
                    path.push_str(q);
                }
                let authority = match url.port() {
                    Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
                    None => url.host_str().unwrap_or_default().to_string(),
                };
                ProbeTarget::Http {
                    host,
                    port,
                    path,
                    authority,
                }
            }
            (None, Some(a)) => {
                let (host, port) = split_host_port(a)
                    .ok_or_else(|| err(format!("health.tcp `{a}` is not HOST:PORT")))?;
                require_loopback_host(&host).map_err(|m| err(format!("health.tcp: {m}")))?;
                ProbeTarget::Tcp { host, port }
            }
            (Some(_), Some(_)) => {
                return Err(err("health: give one of `http` or `tcp`, not both".into()))
            }
            (None, None) => return Err(err("health: give `http` or `tcp`".into())),
        };
        Ok(Health {
            target,
            interval: spec
                .interval
                .map(|d| d.as_duration())
                .unwrap_or(DEFAULT_INTERVAL),
            timeout: spec
                .timeout
                .map(|d| d.as_duration())
                .unwrap_or(DEFAULT_TIMEOUT),
            startup: spec
                .startup
                .map(|d| d.as_duration())
                .unwrap_or(DEFAULT_STARTUP),
        })
    }

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
                hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
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
