//! `[load]`: the load model and its stages.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::*;

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LoadModel {
    /// A number of users, each looping: request, think, request... (goose).
    #[default]
    Closed,
    /// Iterations started at a rate, whatever the system's speed (arrival rate).
    Open,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
    /// The most of a response body read per request. Default 1MiB. A larger body fails
    /// the request ("body larger than 1MiB") and its connection is closed, unless
    /// `truncate_body` is set.
    pub max_body: Option<crate::units::ByteSize>,
    /// A body larger than `max_body` is fine: checks see its first `max_body` bytes, the
    /// rest is not read (the connection is closed). Default false.
    pub truncate_body: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct StageSpec {
    pub duration: HumanDuration,
    pub users: Option<u32>,
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionMode {
    #[default]
    PerUser,
    Shared,
}
