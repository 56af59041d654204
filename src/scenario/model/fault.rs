//! `[[faults]]`: faults on the timeline.

use serde::{Deserialize, Serialize};

use super::*;

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
