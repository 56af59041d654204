//! The scenario file, as typed data. These structs mirror the TOML one to one;
//! `scenario::load` parses, collects unknown keys and type errors, then validates
//! into a [`crate::scenario::Plan`]. Unknown keys are found with `serde_ignored`
//! (so every one is reported, with its line), hence no `deny_unknown_fields` here.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

mod capacity;
mod fault;
mod load;
mod observe;
mod request;
mod service;
mod ws;

pub use capacity::*;
pub use fault::*;
pub use load::*;
pub use observe::*;
pub use request::*;
pub use service::*;
pub use ws::*;

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

impl schemars::JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration: a number and a unit (ns, us, ms, s, m, h, d), several added up: \"250ms\", \"30s\", \"5m\", \"1h 30m\". At most 7 days.",
            "pattern": "^\\s*([0-9]+\\s*[a-zA-Zµ]+\\s*)+$"
        })
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
                let d = humantime::parse_duration(s.trim()).map_err(|e| {
                    E::custom(format!(
                        r#"invalid duration "{s}": {e}; write it like "250ms", "30s" or "5m""#
                    ))
                })?;
                // Bounded here, so no sum or product of durations can overflow later.
                if d > crate::scenario::bounds::MAX_DURATION {
                    return Err(E::custom(format!(
                        r#"duration "{s}" is longer than {}, the most a scenario may write"#,
                        crate::scenario::bounds::MAX_DURATION_TEXT
                    )));
                }
                Ok(HumanDuration(d))
            }
        }
        d.deserialize_str(V)
    }
}

/// The whole scenario file.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
    /// After the load and the faults have ended, how long the services are still watched
    /// (health, CPU, memory) before they stop: what `memory.<svc>.retained` reads.
    /// Default 5s when a `retained` criterion is given, else 0. At most 1h.
    pub cooldown: Option<HumanDuration>,
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
    /// `[targets.<name>]`: more targets a request may name (`target = "admin"`); their
    /// hosts must be on `target.allow_hosts`. `[target]` stays the default.
    #[serde(default)]
    pub targets: std::collections::BTreeMap<String, NamedTarget>,
    #[serde(default)]
    pub backend: BackendKind,
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    pub load: Option<LoadSpec>,
    #[serde(default)]
    pub requests: Vec<RequestSpec>,
    /// Ordered journeys through the requests, picked in the same weighted mix.
    #[serde(default)]
    pub flows: Vec<FlowSpec>,
    /// WebSocket users (`[[ws]]`), sharing the closed model's users with the requests.
    #[serde(default)]
    pub ws: Vec<WsSpec>,
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// A data canary: keys written to a Redis before the load and faults, read back at the
    /// end; the missing ones are the `data_loss.keys` criterion's figure.
    pub canary: Option<CanarySpec>,
    /// What reports may show.
    pub report: Option<ReportSpec>,
    /// `[gate]`: how much worse each figure may get against a baseline before
    /// `--baseline` / `gauntlet compare` fail, e.g. `latency = "10%"`,
    /// `"latency.p99" = "20%"`, `"errors.rate" = "0.1pp"`.
    #[serde(default)]
    pub gate: std::collections::BTreeMap<String, String>,
    /// `[vars]`: the scenario's variables, for `${NAME}` anywhere in the file, with their
    /// defaults: `NAME = "value"`, or `NAME = { default = "value", secret = true }` (a
    /// secret is masked as `***` in every report, log and message). The environment and
    /// `--vars FILE` override them.
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, VarSpec>,
    /// Names of variables whose values are secret, typically read from the environment
    /// (`secrets = ["API_TOKEN"]` with `Authorization = "Bearer ${API_TOKEN}"`): masked as
    /// `***` in every report, log and message, like a `[vars]` entry with `secret = true`.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// `[capacity]`: the levels `gauntlet capacity` tries; `gauntlet run` ignores it.
    pub capacity: Option<CapacitySpec>,
}

/// One variable of `[vars]`.
#[derive(Debug, Clone, schemars::JsonSchema)]
#[serde(untagged)]
pub enum VarSpec {
    /// Its default value.
    Value(VarValue),
    /// `{ default, secret }`.
    Declared(VarDecl),
}

/// `NAME = { default = ..., secret = true }` in `[vars]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VarDecl {
    /// Absent: the variable must come from the environment or `--vars`.
    pub default: Option<VarValue>,
    /// Mask its value as `***` wherever gauntlet writes.
    #[serde(default)]
    pub secret: bool,
}

impl<'de> Deserialize<'de> for VarSpec {
    // By hand: an untagged enum would take an array as the struct's fields in order.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        Ok(VarSpec::Value(match toml::Value::deserialize(d)? {
            toml::Value::String(s) => VarValue::Text(s),
            toml::Value::Integer(i) => VarValue::Integer(i),
            toml::Value::Float(f) => VarValue::Float(f),
            toml::Value::Boolean(b) => VarValue::Bool(b),
            toml::Value::Table(t) => {
                return toml::Value::Table(t)
                    .try_into::<VarDecl>()
                    .map(VarSpec::Declared)
                    .map_err(|e| D::Error::custom(e.message()))
            }
            _ => return Err(D::Error::custom(
                "a variable is text, a number or a boolean, or { default = ..., secret = true }",
            )),
        }))
    }
}

/// A variable's value: text, a number or a boolean (put in the file as written).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum VarValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

/// `[report]`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
pub struct ReportSpec {
    /// Quote values from the exchange (header values, response values, rendered paths) in
    /// error reasons. Default false: they may hold secrets (tokens, cookies).
    pub show_values: Option<bool>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LatencyBasis {
    /// Coordinated-omission corrected histogram (HdrHistogram `record_correct` with the
    /// mean think time as the expected interval). The safer default for a gate.
    #[default]
    Corrected,
    /// Raw service time as each user saw it.
    Raw,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnFaultError {
    /// The run stops, faults are undone, exit code 3.
    #[default]
    Fail,
    /// The failure is recorded in the report and the run goes on.
    Record,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct Target {
    /// e.g. "http://127.0.0.1:18080"; request paths are joined to it.
    pub base_url: String,
    /// Hosts load may be sent to. A target (or WebSocket URL) whose host is not listed is
    /// refused before anything starts.
    pub allow_hosts: Vec<String>,
    /// The HTTP version spoken to the target (default `auto`).
    #[serde(default)]
    pub http: HttpVersion,
    /// TLS settings of an `https://` target (none: the system's roots, SNI from the host).
    pub tls: Option<TlsSpec>,
}

/// `[targets.<name>]`: a target besides the default one, on the same allow list.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct NamedTarget {
    pub base_url: String,
    #[serde(default)]
    pub http: HttpVersion,
    pub tls: Option<TlsSpec>,
}

/// `target.http`: which HTTP version the load speaks.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
pub enum HttpVersion {
    /// HTTP/1.1 only.
    #[serde(rename = "1.1")]
    Http1,
    /// HTTP/2 only: negotiated with ALPN over TLS (the handshake fails without it), prior
    /// knowledge (h2c) over plain http.
    #[serde(rename = "2")]
    Http2,
    /// Over TLS, ALPN offers h2 then http/1.1 and the server picks; over plain http, 1.1.
    #[default]
    #[serde(rename = "auto")]
    Auto,
}

/// `target.tls = { ca, cert, key, insecure, server_name }`; paths are relative to the
/// scenario file.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
pub struct TlsSpec {
    /// PEM file of CA certificates trusted besides the system's roots.
    pub ca: Option<std::path::PathBuf>,
    /// PEM client certificate chain (mTLS); needs `key`.
    pub cert: Option<std::path::PathBuf>,
    /// PEM private key of `cert` (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<std::path::PathBuf>,
    /// Do not verify the server's certificate at all (self-signed staging). Every report
    /// says so.
    #[serde(default)]
    pub insecure: bool,
    /// The name sent as SNI and verified in the certificate (default: the URL's host).
    pub server_name: Option<String>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// Services are local child processes; faults are signals.
    #[default]
    Process,
    /// Services are Docker containers, driven through the Engine API.
    Docker,
}
