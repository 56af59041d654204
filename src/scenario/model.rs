//! The scenario file, as typed data. These structs mirror the TOML one to one;
//! `scenario::load` parses, collects unknown keys and type errors, then validates
//! into a [`crate::scenario::Plan`]. Unknown keys are found with `serde_ignored`
//! (so every one is reported, with its line), hence no `deny_unknown_fields` here.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// A duration written the human way: "250ms", "30s", "5m", "1h 30m".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a duration like "250ms", "30s" or "5m""#)
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<HumanDuration, E> {
                humantime::parse_duration(s.trim())
                    .map(HumanDuration)
                    .map_err(|e| {
                        E::custom(format!(
                            r#"invalid duration "{s}": {e}; write it like "250ms", "30s" or "5m""#
                        ))
                    })
            }
        }
        d.deserialize_str(V)
    }
}

/// The whole scenario file.
#[derive(Debug, Clone, Deserialize)]
pub struct Scenario {
    /// Short name, used in reports and the run id.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Every random choice (request pick, think time, fake data, fault target) follows
    /// this seed. Absent: a random one is drawn and written in the report so the run
    /// can be replayed.
    pub seed: Option<u64>,
    /// Hard upper bound on the whole run (load, faults, observation). Absent: the sum of
    /// the load stages plus 30s. Load stops by itself at the end of its stages anyway.
    pub duration: Option<HumanDuration>,
    /// Success criteria, e.g. `"latency.p95 < 200ms"`; see `grade::criteria`.
    #[serde(default)]
    pub criteria: Vec<String>,
    /// Which histogram latency criteria read in the closed model (the open model always
    /// measures from the intended start, so it is corrected by construction).
    #[serde(default)]
    pub latency_basis: LatencyBasis,
    /// What to do when a fault cannot be applied, unless the fault says otherwise.
    #[serde(default)]
    pub on_fault_error: OnFaultError,
    pub target: Target,
    #[serde(default)]
    pub backend: BackendKind,
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    pub load: Option<LoadSpec>,
    #[serde(default)]
    pub requests: Vec<RequestSpec>,
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// A data canary: keys written to a Redis before the load and faults, read back at the
    /// end; the missing ones are the `data_loss.keys` criterion's figure.
    pub canary: Option<CanarySpec>,
}

/// `[canary]`: data-loss canary keys in a Redis (see `observe::canary`).
#[derive(Debug, Clone, Deserialize)]
pub struct CanarySpec {
    /// The Redis the keys go to, e.g. "redis://127.0.0.1:6379" (its host must be in
    /// `target.allow_hosts`, and loopback).
    pub redis: String,
    /// How many keys. Default 100.
    pub keys: Option<u32>,
    /// Key prefix; the run adds a random token, so runs never share keys. Default
    /// "gauntlet:canary:".
    pub prefix: Option<String>,
    /// At the end, how long to keep trying to read the keys back while Redis is down or
    /// restarting. Default 30s.
    pub timeout: Option<HumanDuration>,
}

/// A service's Prometheus `/metrics`, scraped during the run (see `observe::scrape`).
#[derive(Debug, Clone, Deserialize)]
pub struct MetricsSpec {
    /// e.g. "http://127.0.0.1:9090/metrics" (host in `target.allow_hosts`, loopback).
    pub url: String,
    /// Between two scrapes. Default 1s.
    pub interval: Option<HumanDuration>,
    /// One scrape's timeout. Default: the interval, at most 2s.
    pub timeout: Option<HumanDuration>,
    /// Metric names to record (every series of each; labelled ones as `name{labels}`).
    /// Absent: every metric, up to a bound.
    pub keep: Option<Vec<String>>,
    /// A gauge holding the Unix time of the last sync, e.g.
    /// "pipeline_last_sync_timestamp_seconds": every interval gauntlet records
    /// `pipeline_freshness_seconds` = now - that time, also while scrapes fail (a stalled
    /// service cannot answer, and its data keeps getting older).
    pub freshness: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyBasis {
    /// Coordinated-omission corrected histogram (HdrHistogram `record_correct` with the
    /// mean think time as the expected interval). The safer default for a gate.
    #[default]
    Corrected,
    /// Raw service time as each user saw it.
    Raw,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFaultError {
    /// The run stops, faults are undone, exit code 3.
    #[default]
    Fail,
    /// The failure is recorded in the report and the run goes on.
    Record,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Target {
    /// e.g. "http://127.0.0.1:18080"; request paths are joined to it.
    pub base_url: String,
    /// Hosts load may be sent to. A target (or WebSocket URL) whose host is not listed is
    /// refused before anything starts.
    pub allow_hosts: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// Services are local child processes; faults are signals.
    #[default]
    Process,
    /// Services are Docker containers, driven through the Engine API.
    Docker,
}

/// A part of the system under test.
#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
pub struct ProxySpec {
    pub listen: String,
    pub upstream: String,
}

/// How to tell that a service is healthy: one of `http` (2xx = healthy) or `tcp`.
#[derive(Debug, Clone, Deserialize)]
pub struct HealthSpec {
    pub http: Option<String>,
    pub tcp: Option<String>,
    /// Between two probes during the run (availability, recovery). Default 500ms.
    pub interval: Option<HumanDuration>,
    /// One probe's timeout. Default 2s.
    pub timeout: Option<HumanDuration>,
    /// How long to wait for the first healthy probe at start. Default 30s.
    pub startup: Option<HumanDuration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RestartSpec {
    #[serde(default)]
    pub policy: RestartPolicy,
    /// Restarts allowed over the run. Default 5.
    pub max: Option<u32>,
    /// Wait before a restart. Default 1s.
    pub delay: Option<HumanDuration>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadModel {
    /// A number of users, each looping: request, think, request... (goose).
    #[default]
    Closed,
    /// Iterations started at a rate, whatever the system's speed (arrival rate).
    Open,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LoadSpec {
    #[serde(default)]
    pub model: LoadModel,
    /// Closed: `{ duration, users }` ramps linearly from the previous stage's users (0 at
    /// first). Open: `{ duration, rate }` ramps linearly from the previous rate
    /// (`start_rate` at first), k6 `ramping-arrival-rate` style.
    pub stages: Vec<StageSpec>,
    /// Open model: rate at the start of the first stage (iterations/s). Default 0.
    pub start_rate: Option<f64>,
    /// Open model: at most this many iterations in flight; an iteration due when all are
    /// busy is dropped and counted. Default 1000.
    pub max_in_flight: Option<u32>,
    /// Pause between two requests of a user: "100ms" or `{ min = "50ms", max = "200ms" }`.
    pub think_time: Option<ThinkTime>,
    /// One request's timeout. Default 10s.
    pub timeout: Option<HumanDuration>,
    /// `per_user` (default): each virtual user holds its own keep-alive connection, like
    /// a real client. `shared`: users share a pool of `pool_size` connections.
    #[serde(default)]
    pub connections: ConnectionMode,
    pub pool_size: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StageSpec {
    pub duration: HumanDuration,
    pub users: Option<u32>,
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ThinkTime {
    Fixed(HumanDuration),
    Range {
        min: HumanDuration,
        max: HumanDuration,
    },
}

impl ThinkTime {
    pub fn mean(&self) -> Duration {
        match self {
            ThinkTime::Fixed(d) => d.0,
            ThinkTime::Range { min, max } => (min.0 + max.0) / 2,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionMode {
    #[default]
    PerUser,
    Shared,
}

/// One entry of the weighted request mix.
#[derive(Debug, Clone, Deserialize)]
pub struct RequestSpec {
    /// Unique; criteria and reports refer to it (`latency.p95{name="create item"}`).
    pub name: String,
    /// Relative weight in the mix. Default 1. 0 = only run when another request needs a
    /// value it extracts.
    pub weight: Option<u32>,
    /// Default GET.
    pub method: Option<String>,
    /// Joined to `target.base_url`; may hold placeholders (`/api/items/{{item_id}}`).
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Raw body (placeholders allowed).
    pub body: Option<String>,
    /// JSON body (placeholders allowed in strings); sets content-type.
    pub json: Option<toml::Value>,
    /// Values taken from the response for this user's later requests.
    #[serde(default)]
    pub extract: Vec<ExtractSpec>,
    /// Response checks; a failed check counts as an error, with its reason. Without a
    /// `status` check, any status outside 200..=399 is an error.
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExtractSpec {
    /// Variable name, used as `{{var}}` in later requests of the same user.
    pub var: String,
    /// JSON pointer into the response body, e.g. "/id".
    pub json: Option<String>,
    /// Response header name, e.g. "location".
    pub header: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckSpec {
    /// 201, [200, 201], or "2xx".
    pub status: Option<StatusCheck>,
    pub body_contains: Option<String>,
    /// JSON pointer; with `equals` or `exists`.
    pub json: Option<String>,
    pub equals: Option<toml::Value>,
    pub exists: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StatusCheck {
    One(u16),
    Any(Vec<u16>),
    Class(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Kill,
    Stop,
    Restart,
    Pause,
    Duplicate,
    LeakWebsockets,
    Network,
    Cpu,
    Memory,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Stop => "stop",
            FaultKind::Restart => "restart",
            FaultKind::Pause => "pause",
            FaultKind::Duplicate => "duplicate",
            FaultKind::LeakWebsockets => "leak_websockets",
            FaultKind::Network => "network",
            FaultKind::Cpu => "cpu",
            FaultKind::Memory => "memory",
        }
    }
}

/// A fault on the timeline. One flat table; which keys apply depends on `kind`
/// (validation says so when a key does not apply).
#[derive(Debug, Clone, Deserialize)]
pub struct FaultSpec {
    pub kind: FaultKind,
    /// Label in reports. Default "<kind> <target>".
    pub name: Option<String>,
    /// The service it hits, by name.
    pub target: Option<String>,
    /// Or a random pick (scenario seed) among these.
    #[serde(default)]
    pub targets: Vec<String>,
    /// When, from the start of the load.
    pub at: HumanDuration,
    /// How long it lasts before its undo (pause, duplicate, network, leak, cpu, memory).
    pub duration: Option<HumanDuration>,
    /// Repeat every this long ...
    pub every: Option<HumanDuration>,
    /// ... this many times in all. Default 1.
    pub times: Option<u32>,
    /// Per fault: overrides the scenario's `on_fault_error`.
    pub on_error: Option<OnFaultError>,
    // kill / stop
    /// Signal for `kill`, default "SIGKILL".
    pub signal: Option<String>,
    /// kill: gauntlet itself restarts the service after this delay (otherwise recovery
    /// is left to the restart policy, or to nobody).
    pub restart_after: Option<HumanDuration>,
    // leak_websockets
    pub url: Option<String>,
    pub connections: Option<u32>,
    /// Connections opened per second. Default 50.
    pub rate: Option<f64>,
    // network (through the service's proxy)
    pub latency: Option<HumanDuration>,
    pub jitter: Option<HumanDuration>,
    /// Share of connections dropped, percent.
    pub drop: Option<f64>,
    /// Reset connections instead of forwarding.
    pub reset: Option<bool>,
    /// Bytes per second, e.g. "64KiB".
    pub bandwidth: Option<String>,
    /// Cut all traffic.
    pub partition: Option<bool>,
    // cpu / memory pressure
    pub workers: Option<u32>,
    /// e.g. "512MiB".
    pub size: Option<String>,
}
