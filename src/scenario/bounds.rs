//! The largest value a scenario may give each number, in one place (README: "Bounds").
//!
//! Every number a user writes flows into arithmetic somewhere (sums of stages, repeats,
//! deadlines, rates turned into times, tasks spawned per repetition). Bounding each one at
//! validation keeps all of that exact and finite: nothing later can overflow, wrap or
//! panic, and no schedule can be endless. The bounds are far above any real scenario.

use std::time::Duration;

/// Any single duration written (`"30s"`, `at`, `every`, `think_time`, `timeout`, ...).
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// The load's stages added up; the run's hard cap `duration` is a single duration.
pub const MAX_LOAD: Duration = MAX_DURATION;
/// Virtual users in one closed-model stage.
pub const MAX_USERS: u32 = 100_000;
/// Iterations (open model) or WebSocket connections (`leak_websockets`) per second.
pub const MAX_RATE: f64 = 1_000_000.0;
/// `max_in_flight` (open model) and `pool_size` (shared connections): each is a socket.
pub const MAX_CONNECTIONS: u32 = 100_000;
/// Distinct `[[requests]]`: each costs a few hundred KiB of histograms at run time.
pub const MAX_REQUESTS: usize = 1_000;
/// A request's `weight` (with [`MAX_REQUESTS`], the total stays far below `u32::MAX`).
pub const MAX_WEIGHT: u32 = 1_000_000;
/// Distinct `[[flows]]`: each keeps a latency histogram at run time.
pub const MAX_FLOWS: usize = 1_000;
/// Steps of one flow.
pub const MAX_FLOW_STEPS: usize = 100;
/// A request's `follow_redirects` count.
pub const MAX_REDIRECTS: u32 = 20;
/// What `follow_redirects = true` follows.
pub const DEFAULT_REDIRECTS: u32 = 10;
/// `[[ws]]` entries (each keeps its figures during the run), and messages per entry.
pub const MAX_WS: usize = 100;
pub const MAX_WS_MESSAGES: usize = 1_000;
/// A fault's `times` (each repetition is scheduled as a task).
pub const MAX_TIMES: u32 = 10_000;
/// `leak_websockets.connections`.
pub const MAX_WS_CONNECTIONS: u32 = 100_000;
/// `cpu.workers` (each is a process).
pub const MAX_WORKERS: u32 = 1_024;
/// `services[].restart.max`.
pub const MAX_RESTARTS: u32 = 1_000_000;
/// Levels a `[capacity]` search may run (stepping up plus bisecting), each a whole run.
pub const MAX_CAPACITY_LEVELS: u32 = 1_000;
/// A criterion's threshold in its base unit (µs, bytes, count, ...): 2^53.
pub use crate::metric::MAX_THRESHOLD;

/// `--scale-time F`: `0 < F <=` this (a 30s gate becomes at most a 8h20m run).
pub const MAX_SCALE_TIME: f64 = 1000.0;

/// [`MAX_DURATION`], for messages.
pub const MAX_DURATION_TEXT: &str = "7 days";
