//! `[[services]]`: what the system under test is made of and how gauntlet controls and checks each part.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::*;

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
