//! `[capacity]`: the search `gauntlet capacity` runs (levels of load, each a graded run).

use serde::{Deserialize, Serialize};

use super::*;

/// `[capacity]`. The load is users in the closed model, iterations/s in the open model.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct CapacitySpec {
    /// The first level tried (lower bound).
    pub from: f64,
    /// The last level tried (upper bound).
    pub to: f64,
    /// How much each level adds to the previous one while stepping up.
    pub step: f64,
    /// `bisect` (default): step up until a level fails, then halve the gap between the
    /// last pass and the first fail down to `resolution`. `step`: stop at the first fail.
    #[serde(default)]
    pub strategy: CapacityStrategy,
    /// Bisect stops when the first fail is at most this far above the last pass.
    /// Default: a tenth of `step` (at least 1 user in the closed model).
    pub resolution: Option<f64>,
    /// How long each level holds its load, graded. Default 30s.
    pub hold: Option<HumanDuration>,
    /// Before the hold, the ramp from 0 to the level; not graded. Default 10s.
    pub warmup: Option<HumanDuration>,
    /// The level the knee must reach for exit 0. Default `from`.
    pub require: Option<f64>,
    /// A level whose error rate (in %) goes above this after its warmup is stopped at
    /// once and fails. Default: no early stop.
    pub stop_error_rate: Option<f64>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CapacityStrategy {
    #[default]
    Bisect,
    Step,
}
