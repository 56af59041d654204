//! The load engine: HTTP users on goose (closed model) or our own arrival-rate scheduler
//! (open model), each request sent through a lean hyper client and timed in µs.
//!
//! * [`client`]: the HTTP/1.1 client (one keep-alive connection per user, or a pool).
//! * [`engine`]: what both models share: the compiled requests, the weighted pick, one
//!   request's life (render, send, time, check, extract, report).
//! * [`closed`]: goose schedules users; [`open`]: iterations at intended times.
//!
//! The engine never prints: it only sends [`RunEvent`]s.

mod checks;
mod client;
mod closed;
mod engine;
mod open;

use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio_util::sync::CancellationToken;

#[cfg(doc)]
use crate::event::RunEvent;
use crate::event::{EventSink, Level};
use crate::scenario::model::{ConnectionMode, LoadModel};
use crate::scenario::Plan;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("load engine: {0}")]
    Engine(String),
}

/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default size of the shared pool (`connections = "shared"`).
pub const DEFAULT_POOL_SIZE: u32 = 100;
/// Default `max_in_flight` of the open model.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 1000;
/// File descriptors kept aside for everything that is not a load connection.
const FD_MARGIN: u64 = 256;

/// Run the plan's load to the end of its stages (or until `cancel`), sending a
/// `RunEvent` per request and per user-count change. Bounded in time by the plan: the
/// load stops by itself at the end of its stages (in-flight requests get 2s more), and
/// within about a second of `cancel`.
///
/// When the open-files limit (raised to the hard limit here) is below what the load
/// needs, a `Notice` (warn) says so and the load runs anyway: the connections that do
/// not fit fail with "connect: too many open files", which shows in the report.
pub async fn run(
    plan: Arc<Plan>,
    events: EventSink,
    cancel: CancellationToken,
) -> Result<(), LoadError> {
    let Some(load) = plan.scenario.load.clone() else {
        return Ok(());
    };
    if plan.requests.is_empty() || load.stages.is_empty() {
        return Ok(());
    }
    let timeout = load.timeout.map(|d| d.0).unwrap_or(DEFAULT_TIMEOUT);
    let timeout = if timeout.is_zero() {
        DEFAULT_TIMEOUT
    } else {
        timeout
    };
    let target = client::Target::resolve(&plan.base_url, timeout)
        .await
        .map_err(LoadError::Engine)?;
    // Our own token: cancelling it (at the hard stop) must not cancel the run's.
    let abort = cancel.child_token();
    match load.model {
        LoadModel::Closed => {
            let stages: Vec<(Duration, u32)> = load
                .stages
                .iter()
                .map(|s| (s.duration.0, s.users.unwrap_or(0)))
                .collect();
            let max_users = stages.iter().map(|s| s.1).max().unwrap_or(0);
            let per_user = load.connections == ConnectionMode::PerUser;
            let pool_size = load.pool_size.unwrap_or(DEFAULT_POOL_SIZE).max(1);
            let (fds, what) = if per_user {
                (u64::from(max_users), format!("{max_users} users"))
            } else {
                (
                    u64::from(pool_size.min(max_users.max(1))),
                    format!("{pool_size} shared connections"),
                )
            };
            raise_open_files(&events, fds, &what);
            let pool = (!per_user).then(|| engine::Pool::new(pool_size as usize));
            let engine = engine::Engine::new(plan.clone(), target, events, abort, pool)
                .map_err(LoadError::Engine)?;
            closed::run(engine, stages, per_user).await
        }
        LoadModel::Open => {
            let stages: Vec<(Duration, f64)> = load
                .stages
                .iter()
                .map(|s| (s.duration.0, s.rate.unwrap_or(0.0)))
                .collect();
            let max = load.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT).max(1);
            raise_open_files(
                &events,
                u64::from(max),
                &format!("{max} iterations in flight"),
            );
            let pool = engine::Pool::new(max as usize);
            let engine = engine::Engine::new(plan.clone(), target, events, abort, Some(pool))
                .map_err(LoadError::Engine)?;
            open::run(engine, load.start_rate.unwrap_or(0.0), stages, max as usize).await
        }
    }
}

/// The RNG of a user (stream = user number) or of an open-model iteration: the same
/// seed replays the same picks, think times and fake data.
pub(crate) fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Raise the soft open-files limit to the hard one; warn when it is still too low for
/// `needed` connections.
fn raise_open_files(events: &EventSink, needed: u64, what: &str) {
    let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
        return;
    };
    let mut limit = soft;
    if soft < hard {
        if let Ok(new) = rlimit::increase_nofile_limit(hard) {
            limit = new;
        }
    }
    let want = needed + FD_MARGIN;
    if limit < want {
        events.notice(
            Level::Warn,
            format!(
                "open-files limit {limit} is too low for {what} (about {want} needed); \
                 raise it with `ulimit -n` (the hard limit is {hard}); connections beyond it will fail"
            ),
        );
    } else if limit > soft && soft < want {
        events.notice(
            Level::Info,
            format!("open-files limit raised from {soft} to {limit}"),
        );
    }
}
