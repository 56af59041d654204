//! The load engine: HTTP users on goose (closed model) or our own arrival-rate scheduler
//! (open model), each request sent through a lean hyper client and timed in µs.
//!
//! * [`client`]: the HTTP client (HTTP/1.1 or HTTP/2; one keep-alive connection per
//!   user, or a pool), over TLS ([`tls`]) for https targets.
//! * [`engine`]: what both models share: the compiled requests, the weighted pick, one
//!   request's life (render, send, time, check, extract, report).
//! * [`closed`]: users that loop, active as [`ramp`] says, run by goose (the only file
//!   that knows goose is [`goose_users`]); [`open`]: iterations at intended times.
//!
//! The engine never prints: it only sends [`RunEvent`]s.

mod checks;
mod client;
mod closed;
mod engine;
mod goose_users;
mod open;
mod ramp;
pub(crate) mod tls;
mod ws;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio_util::sync::CancellationToken;

#[cfg(doc)]
use crate::event::RunEvent;
use crate::event::{EventKind, EventSink, Level};
use crate::scenario::load_plan::{Connections, Model};
use crate::scenario::Plan;
pub use client::TargetError;
pub use tls::TlsError;

/// Why the load could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("load engine: {0}")]
    Target(#[from] TargetError),
    /// The TLS handshake before the load failed on the server's certificate: no request
    /// could pass, so the load does not start.
    #[error("load engine: the target's certificate is not accepted: {reason}; {hint}")]
    Certificate { reason: String, hint: &'static str },
    #[error("load engine: request {name:?}: {source}")]
    Request { name: String, source: RequestError },
    /// The TLS client of a `wss://` `[[ws]]` entry cannot be built.
    #[error("load engine: [[ws]] {name:?}: {source}")]
    WsTls { name: String, source: TlsError },
    #[error("load engine: more than 65535 requests")]
    TooManyRequests,
    #[error("load engine: no request has a weight above 0, so there is nothing to send")]
    NothingToSend,
    /// The closed model's user scheduler (goose) failed.
    #[error("load engine: goose: {0}")]
    Scheduler(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A request of the plan that cannot be sent as rendered.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("invalid path {path}: {source}")]
    Path {
        path: Shown,
        source: http::uri::InvalidUri,
    },
    #[error("invalid value for header {name}: {value}")]
    HeaderValue {
        name: http::HeaderName,
        value: Shown,
    },
}

/// A value from the exchange (a rendered header or path, a value of a response) as an
/// error reason shows it: quoted only when the scenario says so (`[report] show_values`),
/// since it may be a token, a cookie or personal data; otherwise "(value hidden)".
#[derive(Debug, Clone, PartialEq)]
pub struct Shown(Option<String>);

impl Shown {
    pub fn new(value: String, show: bool) -> Shown {
        Shown(show.then_some(value))
    }
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(v) => write!(f, "{v:?}"),
            None => f.write_str("(value hidden)"),
        }
    }
}

/// File descriptors kept aside for everything that is not a load connection (the same
/// base `limits` checks before the run).
const FD_MARGIN: u64 = crate::limits::BASE_FDS;

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
    let Some(load) = plan.load.clone() else {
        return Ok(());
    };
    if (plan.requests.is_empty() && plan.ws.is_empty()) || load.duration().is_zero() {
        return Ok(());
    }
    if plan.requests.is_empty() {
        // WebSocket users only.
        if let Model::Closed { stages, .. } = load.model {
            let ramp = ramp::Ramp::new(stages);
            let max_users = ramp.max_users();
            raise_open_files(&events, u64::from(max_users), &format!("{max_users} users"));
            let census = Census::new(&events);
            let numbers = ramp::split(&plan, max_users);
            ws::run(
                &plan, load.think, ramp, &census, numbers.ws, &events, &cancel,
            )
            .await?;
            census.settle();
        }
        return Ok(());
    }
    let target = client::Target::resolve(&plan, &load).await?;
    let mut others = Vec::with_capacity(plan.targets.len());
    for t in &plan.targets {
        others.push(client::Target::resolve_named(t, &load).await?);
    }
    if plan.tls.as_ref().is_some_and(|t| t.insecure) {
        events.notice(
            Level::Warn,
            "TLS verification is OFF (target.tls.insecure = true): the target's certificate \
             was not checked, anyone in the path could have answered",
        );
    }
    for t in &plan.targets {
        if t.tls.as_ref().is_some_and(|t| t.insecure) {
            events.notice(
                Level::Warn,
                format!(
                    "TLS verification is OFF (targets.{}.tls.insecure = true): its certificate \
                     was not checked, anyone in the path could have answered",
                    t.name
                ),
            );
        }
    }
    preflight(&target).await?;
    for t in &others {
        preflight(t).await?;
    }
    let n_targets = 1 + others.len();
    // Our own token: cancelling it (at the hard stop) must not cancel the run's.
    let abort = cancel.child_token();
    match load.model {
        Model::Closed {
            stages,
            connections,
        } => {
            let ramp = ramp::Ramp::new(stages);
            let max_users = ramp.max_users();
            let pool = match connections {
                Connections::PerUser => {
                    raise_open_files(&events, u64::from(max_users), &format!("{max_users} users"));
                    None
                }
                Connections::Shared { pool_size } => {
                    let size = pool_size.get();
                    raise_open_files(
                        &events,
                        u64::from(size.min(max_users.max(1))),
                        &format!("{size} shared connections"),
                    );
                    Some(engine::Pool::new(size as usize, n_targets))
                }
            };
            let census = Census::new(&events);
            let numbers = ramp::split(&plan, max_users);
            let ws_ramp = ramp.clone();
            let engine = engine::Engine::new(
                plan.clone(),
                load.think,
                target,
                others,
                events.clone(),
                abort.clone(),
                pool,
            )?;
            let (http, ws) = tokio::join!(
                closed::run(engine, ramp, census.clone(), numbers.http),
                ws::run(&plan, load.think, ws_ramp, &census, numbers.ws, &events, &abort),
            );
            census.settle();
            http.and(ws)
        }
        Model::Open {
            start_rate,
            stages,
            max_in_flight,
        } => {
            let max = max_in_flight.get();
            raise_open_files(
                &events,
                u64::from(max),
                &format!("{max} iterations in flight"),
            );
            let pool = engine::Pool::new(max as usize, n_targets);
            let engine = engine::Engine::new(
                plan.clone(),
                load.think,
                target,
                others,
                events,
                abort,
                None,
            )?;
            open::run(engine, pool, start_rate, &stages, max as usize).await
        }
    }
}

/// Counts active users (HTTP and WebSocket alike); each change is an event.
pub(crate) struct Census {
    count: AtomicU32,
    events: EventSink,
}

impl Census {
    fn new(events: &EventSink) -> Arc<Census> {
        Arc::new(Census {
            count: AtomicU32::new(0),
            events: events.clone(),
        })
    }

    fn change(&self, up: bool) {
        let n = if up {
            self.count.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.count.fetch_sub(1, Ordering::Relaxed).saturating_sub(1)
        };
        self.events.send(EventKind::Users { count: n });
    }

    /// After the load: say 0 users if a user was still counted (abandoned at the end).
    fn settle(&self) {
        if self.count.load(Ordering::Relaxed) != 0 {
            self.events.send(EventKind::Users { count: 0 });
        }
    }
}

/// An active user, counted while it lives.
pub(crate) struct Counted(Arc<Census>);

impl Counted {
    pub(crate) fn new(census: &Arc<Census>) -> Counted {
        census.change(true);
        Counted(census.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.change(false);
    }
}

/// One TLS handshake before the load: a certificate the client refuses fails every
/// request alike, so it ends the run as an environment error (exit 3) naming the
/// problem. Anything else (refused, reset) is left to the requests to report, as for
/// plain http.
async fn preflight(target: &client::Target) -> Result<(), LoadError> {
    if !target.is_tls() {
        return Ok(());
    }
    match tokio::time::timeout(target.timeout, target.connect()).await {
        Ok(Err(client::Failure::Tls {
            reason,
            certificate: true,
        })) => Err(LoadError::Certificate {
            reason,
            hint: "trust its CA with target.tls.ca (or SSL_CERT_FILE / SSL_CERT_DIR), \
                   name the host it is for with target.tls.server_name, or, for a self-signed \
                   staging server only, set target.tls.insecure = true",
        }),
        _ => Ok(()),
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
