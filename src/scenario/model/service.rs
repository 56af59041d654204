//! `[[services]]`: what the system under test is made of and how gauntlet controls and checks each part.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::*;

/// A part of the system under test.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct ServiceSpec {
    pub name: String,
    /// Process backend: argv. A first word `gauntlet` means this very binary.
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    /// false: the service is already running (not started or stopped by gauntlet); its
    /// process is found by `pid_file`. Default true.
    #[serde(default = "yes")]
    pub managed: bool,
    pub pid_file: Option<PathBuf>,
    pub health: Option<HealthSpec>,
    #[serde(default)]
    pub restart: RestartSpec,
    /// Docker backend: an existing container, by name.
    pub container: Option<String>,
    /// Docker backend: existing containers selected by label (`key=value`).
    pub label: Option<String>,
    /// Docker backend: create the container from this image (labelled with the run id).
    pub image: Option<String>,
    /// Docker backend, with `image`: the container's command.
    pub cmd: Option<Vec<String>>,
    /// Docker backend, with `image`: published ports, "127.0.0.1:HOST:CONTAINER".
    #[serde(default)]
    pub ports: Vec<String>,
    /// Docker backend, with `image`: the network to join.
    pub network: Option<String>,
    /// A TCP chaos proxy gauntlet places in front of the service, for `network` faults:
    /// clients connect to `listen`, the proxy forwards to `upstream`.
    pub proxy: Option<ProxySpec>,
    /// Scrape this service's Prometheus metrics during the run.
    pub metrics: Option<MetricsSpec>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct ProxySpec {
    pub listen: String,
    pub upstream: String,
}

/// How to tell that a service is healthy: exactly one of `http` (2xx, and the body
/// contains `body` when given), `redis` (PING answered PONG), `command` (exit code 0) or
/// `tcp` (a connection is accepted; blind to a paused process, whose kernel still
/// accepts). A process-backend service is also unhealthy while its process is stopped or
/// gone, whatever the check says.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
pub struct HealthSpec {
    pub http: Option<String>,
    pub tcp: Option<String>,
    /// `host:port` or a `redis://` URL (a password in it is never shown).
    pub redis: Option<String>,
    /// argv of a command run at each probe; healthy when it exits 0 within the timeout.
    pub command: Option<Vec<String>>,
    /// With `http`: text the response body must contain.
    pub body: Option<String>,
    /// With an `https://` check: a PEM file of CA certificates to trust (relative to the
    /// scenario file). Default: `target.tls.ca`, else the system's roots.
    pub ca: Option<std::path::PathBuf>,
    /// With an `https://` check: accept any certificate (a self-signed local service).
    /// Default: `target.tls.insecure`.
    pub insecure: Option<bool>,
    /// Process backend: a stopped (paused) or missing process makes the service
    /// unhealthy whatever the check says. Default true; false leaves only the check.
    pub process_state: Option<bool>,
    /// Between two probes during the run (availability, recovery). Default 500ms.
    pub interval: Option<HumanDuration>,
    /// One probe's timeout. Default 2s.
    pub timeout: Option<HumanDuration>,
    /// How long to wait for the first healthy probe at start. Default 30s.
    pub startup: Option<HumanDuration>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
pub struct RestartSpec {
    #[serde(default)]
    pub policy: RestartPolicy,
    /// Restarts allowed over the run. Default 5.
    pub max: Option<u32>,
    /// Wait before a restart. Default 1s.
    pub delay: Option<HumanDuration>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart (a crash stays a crash).
    #[default]
    No,
    /// Restart when the process exits with a failure or a signal.
    OnFailure,
    /// Restart whenever it exits (but not when gauntlet stops it).
    Always,
}

/// A service as the run uses it: the spec as written (relative paths made absolute), its
/// health check, published ports and chaos proxy resolved.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    pub spec: ServiceSpec,
    pub health: Option<HealthPlan>,
    /// Docker backend, with `image`: the published ports, in file order.
    pub ports: Vec<PortMapping>,
    pub proxy: Option<ProxyPlan>,
}

/// One published port of a created container: `127.0.0.1:HOST_PORT:CONTAINER_PORT[/proto]`,
/// always on a loopback address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// As [`crate::units::bare_host`] gives it.
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    /// "tcp" unless written otherwise.
    pub protocol: String,
}

impl std::str::FromStr for PortMapping {
    type Err = String;
    fn from_str(s: &str) -> Result<PortMapping, String> {
        let (spec, protocol) = match s.rsplit_once('/') {
            Some((a, p)) => (a, p),
            None => (s, "tcp"),
        };
        let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
        let [cport, hport, ip] = parts[..] else {
            return Err(format!(
                "port `{s}`: write it as \"127.0.0.1:HOST_PORT:CONTAINER_PORT\" (published on loopback only)"
            ));
        };
        let host_ip = crate::units::bare_host(ip);
        if !crate::units::is_loopback(&host_ip) {
            return Err(format!(
                "port `{s}`: `{ip}` is not a loopback address; ports are published on 127.0.0.1 only"
            ));
        }
        let port = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| format!("port `{s}`: `{p}` is not a port"))
        };
        if !matches!(protocol, "tcp" | "udp" | "sctp") {
            return Err(format!(
                "port `{s}`: protocol `{protocol}` is not tcp, udp or sctp"
            ));
        }
        Ok(PortMapping {
            host_ip,
            host_port: port(hport)?,
            container_port: port(cport)?,
            protocol: protocol.to_string(),
        })
    }
}

/// The chaos proxy in front of a service: both ends on loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyPlan {
    /// Where clients connect (bare host, port).
    pub listen: (String, u16),
    /// Where the proxy forwards to.
    pub upstream: (String, u16),
}

impl ProxyPlan {
    /// Resolve `proxy = { listen, upstream }`; an error names the key (`listen` or
    /// `upstream`) and says what is wrong.
    pub fn resolve(spec: &ProxySpec) -> Result<ProxyPlan, (&'static str, String)> {
        let end = |key: &'static str, v: &str| {
            let (host, port) = crate::units::split_host_port(v)
                .ok_or_else(|| (key, format!("proxy.{key} must be host:port; found \"{v}\"")))?;
            if !crate::units::is_loopback(&host) {
                return Err((
                    key,
                    format!("proxy.{key} `{v}`: `{host}` is not a loopback address; gauntlet only sends traffic to 127.0.0.1/localhost"),
                ));
            }
            Ok((host, port))
        };
        Ok(ProxyPlan {
            listen: end("listen", &spec.listen)?,
            upstream: end("upstream", &spec.upstream)?,
        })
    }
}

impl ServicePlan {
    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

/// Between two probes during the run, unless `health.interval` says otherwise.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_millis(500);
/// One probe's timeout, unless `health.timeout` says otherwise.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// The wait for the first healthy probe at start, unless `health.startup` says otherwise.
pub const DEFAULT_HEALTH_STARTUP: Duration = Duration::from_secs(30);

/// A service's health check, resolved: where it goes and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthPlan {
    pub target: ProbeTarget,
    /// Also look at the process state (process backend).
    pub process_state: bool,
    pub interval: Duration,
    pub timeout: Duration,
    pub startup: Duration,
}

/// The trust of an `https://` health check, its files read by validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthTls {
    /// CA certificates trusted; empty: the system's roots.
    pub ca: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// No verification of the certificate.
    pub insecure: bool,
}

/// What a health check talks to; always a loopback address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeTarget {
    Http {
        /// As [`crate::units::bare_host`] gives it: what is connected to.
        host: String,
        port: u16,
        /// Path and query, e.g. "/health".
        path: String,
        /// The `Host` header: host and port as written.
        authority: String,
        /// Text the body must contain.
        body: Option<String>,
        /// `Some` for an `https://` check: whom it trusts.
        tls: Option<HealthTls>,
    },
    Tcp {
        host: String,
        port: u16,
    },
    /// PING must be answered PONG.
    Redis {
        /// What the redis client opens (may hold a password).
        url: String,
        /// host:port, what reports show.
        shown: String,
    },
    /// Healthy when it exits 0 within the timeout (killed otherwise).
    Command {
        argv: Vec<String>,
    },
}

impl ProbeTarget {
    /// What the check asks, for reports and docs.
    pub fn describe(&self) -> String {
        match self {
            ProbeTarget::Http {
                authority,
                path,
                body,
                tls,
                ..
            } => {
                let proto = if tls.is_some() { "HTTPS" } else { "HTTP" };
                match body {
                    Some(b) => {
                        format!("{proto} GET {authority}{path}, 2xx and body contains {b:?}")
                    }
                    None => format!("{proto} GET {authority}{path}, 2xx"),
                }
            }
            ProbeTarget::Tcp { host, port } => format!("TCP connect {host}:{port}"),
            ProbeTarget::Redis { shown, .. } => format!("Redis PING {shown}"),
            ProbeTarget::Command { argv } => format!("command `{}` exits 0", argv.join(" ")),
        }
    }
}

impl HealthPlan {
    /// Resolve `health = { http | tcp | redis | command, body, interval, timeout, startup }`.
    /// Errors name the key (relative to `health`) and say what is wrong.
    pub fn resolve(spec: &HealthSpec) -> Result<HealthPlan, (&'static str, String)> {
        let given = [
            spec.http.is_some(),
            spec.tcp.is_some(),
            spec.redis.is_some(),
            spec.command.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err((
                "",
                "a health check gives exactly one of `http` (a URL), `redis` (host:port), `command` (argv) or `tcp` (host:port)"
                    .into(),
            ));
        }
        if spec.http.is_none() && (spec.ca.is_some() || spec.insecure.is_some()) {
            let key = if spec.ca.is_some() { "ca" } else { "insecure" };
            return Err((
                key,
                format!("`{key}` applies only to an https:// health check"),
            ));
        }
        if spec.body.is_some() && spec.http.is_none() {
            return Err((
                "body",
                "`body` applies only to an `http` health check".into(),
            ));
        }
        let target = match (&spec.http, &spec.tcp) {
            (Some(u), None) => {
                let bad = |why: String| ("http", why);
                let url = url::Url::parse(u)
                    .map_err(|e| bad(format!("health.http `{u}` is not a URL: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(bad(format!(
                        "health.http must be an http:// or https:// URL; found \"{u}\""
                    )));
                }
                let https = url.scheme() == "https";
                if !https && (spec.ca.is_some() || spec.insecure.is_some()) {
                    let key = if spec.ca.is_some() { "ca" } else { "insecure" };
                    return Err((
                        key,
                        format!("`{key}` applies only to an https:// health check"),
                    ));
                }
                let written = url
                    .host_str()
                    .ok_or_else(|| bad(format!("health.http `{u}` has no host")))?;
                let host = crate::units::bare_host(written);
                if !crate::units::is_loopback(&host) {
                    return Err(bad(format!(
                        "health.http `{u}`: `{written}` is not a loopback address; gauntlet only sends traffic to 127.0.0.1/localhost"
                    )));
                }
                let port = url.port_or_known_default().unwrap_or(80);
                let mut path = url.path().to_string();
                if let Some(q) = url.query() {
                    path.push('?');
                    path.push_str(q);
                }
                let authority = match url.port() {
                    Some(p) => format!("{written}:{p}"),
                    None => written.to_string(),
                };
                ProbeTarget::Http {
                    host,
                    port,
                    path,
                    authority,
                    body: spec.body.clone(),
                    // The CA file is read by validation.
                    tls: https.then(|| HealthTls {
                        ca: Vec::new(),
                        insecure: spec.insecure.unwrap_or(false),
                    }),
                }
            }
            (None, Some(a)) => {
                let (host, port) = crate::units::split_host_port(a).ok_or_else(|| {
                    (
                        "tcp",
                        format!("health.tcp must be host:port; found \"{a}\""),
                    )
                })?;
                if !crate::units::is_loopback(&host) {
                    return Err((
                        "tcp",
                        format!("health.tcp `{a}`: `{host}` is not a loopback address; gauntlet only sends traffic to 127.0.0.1/localhost"),
                    ));
                }
                ProbeTarget::Tcp { host, port }
            }
            _ => match (&spec.redis, &spec.command) {
                (Some(r), _) => resolve_redis(r)?,
                (_, Some(argv)) => {
                    if argv.first().is_none_or(|a| a.trim().is_empty()) {
                        return Err((
                            "command",
                            "health.command is an argv: a program, then its arguments".into(),
                        ));
                    }
                    ProbeTarget::Command { argv: argv.clone() }
                }
                _ => unreachable!("exactly one check is given (checked above)"),
            },
        };
        let or = |d: Option<HumanDuration>, default| d.map(|d| d.as_duration()).unwrap_or(default);
        Ok(HealthPlan {
            target,
            process_state: spec.process_state.unwrap_or(true),
            interval: or(spec.interval, DEFAULT_HEALTH_INTERVAL),
            timeout: or(spec.timeout, DEFAULT_HEALTH_TIMEOUT),
            startup: or(spec.startup, DEFAULT_HEALTH_STARTUP),
        })
    }
}

/// `health.redis`: `host:port` or `redis://[:password@]host:port[/db]`, loopback only.
fn resolve_redis(r: &str) -> Result<ProbeTarget, (&'static str, String)> {
    let bad = |why: String| ("redis", why);
    let (url, host, port) = if r.contains("://") {
        let u = url::Url::parse(r).map_err(|e| bad(format!("health.redis is not a URL: {e}")))?;
        if u.scheme() != "redis" {
            return Err(bad(format!(
                "health.redis must be host:port or a redis:// URL; found the scheme `{}`",
                u.scheme()
            )));
        }
        let host = crate::units::bare_host(u.host_str().unwrap_or_default());
        (r.to_string(), host, u.port().unwrap_or(6379))
    } else {
        let (host, port) = crate::units::split_host_port(r).ok_or_else(|| {
            bad(format!(
                "health.redis must be host:port or a redis:// URL; found \"{r}\""
            ))
        })?;
        let url = if host.contains(':') {
            format!("redis://[{host}]:{port}/")
        } else {
            format!("redis://{host}:{port}/")
        };
        (url, host, port)
    };
    if !crate::units::is_loopback(&host) {
        return Err(bad(format!(
            "health.redis: `{host}` is not a loopback address; gauntlet only sends traffic to 127.0.0.1/localhost"
        )));
    }
    Ok(ProbeTarget::Redis {
        url,
        shown: format!("{host}:{port}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(http: Option<&str>, tcp: Option<&str>) -> HealthSpec {
        HealthSpec {
            http: http.map(Into::into),
            tcp: tcp.map(Into::into),
            ..HealthSpec::default()
        }
    }

    #[test]
    fn ports_and_proxies_resolve_once() {
        let p: PortMapping = "127.0.0.1:18080:80".parse().unwrap();
        assert_eq!(
            (
                p.host_ip.as_str(),
                p.host_port,
                p.container_port,
                p.protocol.as_str()
            ),
            ("127.0.0.1", 18080, 80, "tcp")
        );
        let p: PortMapping = "[::1]:53:5353/udp".parse().unwrap();
        assert_eq!((p.host_ip.as_str(), p.protocol.as_str()), ("::1", "udp"));
        for (bad, says) in [
            ("8080:80", "write it as"),
            ("0.0.0.0:8080:80", "not a loopback"),
            ("127.0.0.1:x:80", "`x` is not a port"),
            ("127.0.0.1:8080:99999", "`99999` is not a port"),
            ("127.0.0.1:8080:80/http", "protocol"),
        ] {
            let e = bad.parse::<PortMapping>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let spec = |l: &str, u: &str| ProxySpec {
            listen: l.into(),
            upstream: u.into(),
        };
        let px = ProxyPlan::resolve(&spec("127.0.0.1:7000", "localhost:7001")).unwrap();
        assert_eq!(px.listen, ("127.0.0.1".into(), 7000));
        assert_eq!(px.upstream, ("localhost".into(), 7001));
        let (k, e) = ProxyPlan::resolve(&spec("0.0.0.0:7000", "127.0.0.1:1")).unwrap_err();
        assert!(k == "listen" && e.contains("loopback"), "{e}");
        let (k, e) = ProxyPlan::resolve(&spec("127.0.0.1:7000", "nope")).unwrap_err();
        assert!(k == "upstream" && e.contains("host:port"), "{e}");
    }

    #[test]
    fn health_targets_resolve_once() {
        let h = HealthPlan::resolve(&spec(Some("http://[::1]:8080/health?deep=1"), None)).unwrap();
        assert_eq!(
            h.target,
            ProbeTarget::Http {
                host: "::1".into(),
                port: 8080,
                path: "/health?deep=1".into(),
                authority: "[::1]:8080".into(),
                body: None,
                tls: None,
            }
        );
        assert_eq!(h.interval, DEFAULT_HEALTH_INTERVAL);
        let t = HealthPlan::resolve(&spec(None, Some("localhost:6379"))).unwrap();
        assert_eq!(
            t.target,
            ProbeTarget::Tcp {
                host: "localhost".into(),
                port: 6379
            }
        );
        for (http, tcp, key, says) in [
            (
                Some("ftp://127.0.0.1/h"),
                None,
                "http",
                "http:// or https://",
            ),
            (Some("http://10.0.0.5/h"), None, "http", "not a loopback"),
            (Some("not a url"), None, "http", "not a URL"),
            (None, Some("10.1.1.1:80"), "tcp", "not a loopback"),
            (None, Some("127.0.0.1"), "tcp", "host:port"),
            (
                Some("http://127.0.0.1/"),
                Some("127.0.0.1:1"),
                "",
                "exactly one",
            ),
            (None, None, "", "exactly one"),
        ] {
            let (k, msg) = HealthPlan::resolve(&spec(http, tcp)).unwrap_err();
            assert_eq!(k, key, "{http:?} {tcp:?}");
            assert!(msg.contains(says), "{http:?} {tcp:?}: {msg}");
        }
    }

    #[test]
    fn redis_command_and_body_checks_resolve() {
        let r = |s: &str| {
            HealthPlan::resolve(&HealthSpec {
                redis: Some(s.into()),
                ..HealthSpec::default()
            })
        };
        assert_eq!(
            r("127.0.0.1:6390").unwrap().target,
            ProbeTarget::Redis {
                url: "redis://127.0.0.1:6390/".into(),
                shown: "127.0.0.1:6390".into()
            }
        );
        let t = r("redis://:secret@localhost:7000/2").unwrap().target;
        assert!(!t.describe().contains("secret"), "{}", t.describe());
        assert!(r("10.0.0.1:6379").unwrap_err().1.contains("loopback"));
        assert!(r("http://127.0.0.1:1").unwrap_err().1.contains("scheme"));
        let c = HealthPlan::resolve(&HealthSpec {
            command: Some(vec![]),
            ..HealthSpec::default()
        });
        assert_eq!(c.unwrap_err().0, "command");
        let b = HealthPlan::resolve(&HealthSpec {
            tcp: Some("127.0.0.1:1".into()),
            body: Some("ok".into()),
            ..HealthSpec::default()
        });
        assert_eq!(b.unwrap_err().0, "body");
        let both = HealthPlan::resolve(&HealthSpec {
            tcp: Some("127.0.0.1:1".into()),
            redis: Some("127.0.0.1:1".into()),
            ..HealthSpec::default()
        });
        assert!(both.unwrap_err().1.contains("exactly one"));
    }
}
