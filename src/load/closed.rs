//! Closed model: virtual users, each looping "iteration, think", through our own hyper
//! connection. goose runs the users ([`super::goose_users`]); which of them are active,
//! and when, follows the stages ([`super::ramp`]).
//!
//! * A user's state (RNG, extracted values, iteration count, keep-alive connection) is
//!   made when it turns active and dropped when it turns inactive or stops: it comes back
//!   as a fresh user (new RNG stream, new connection).
//! * Users are counted by a guard inside that state: +1 when made, -1 when dropped; every
//!   change is a `EventKind::Users`.
//! * The stages' clock starts when goose starts its run. At their end no new iteration
//!   starts and goose is stopped; in-flight requests get [`GRACE`] more, then are
//!   abandoned.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::client::Conn;
use super::engine::{Conns, Engine, Flow, Sent};
use super::goose_users::{self, UserLoop};
use super::ramp::{self, Ramp};
use super::LoadError;
use super::{Census, Counted};
use crate::event::{EventKind, Level};

/// In-flight requests get this long after the planned end before they are abandoned.
const GRACE: Duration = Duration::from_secs(2);
/// A user with nothing left to do (load ending, waiting for goose to stop it) waits this
/// long between two steps, so it never spins.
const IDLE: Duration = Duration::from_millis(100);
/// A user's RNG stream: its number, plus this times how often it was active before.
const GENERATION: u64 = 1 << 32;

/// An active user.
struct Active {
    flow: Flow,
    /// One keep-alive connection per target.
    conns: Vec<Option<Conn>>,
    _counted: Counted,
}

/// A user's state between steps.
pub(crate) struct Slot {
    /// When it turns on and off (see [`Ramp::toggles`]).
    toggles: Vec<Duration>,
    /// How many times it was active before.
    generation: u64,
    active: Option<Box<Active>>,
}

struct Users {
    engine: Engine,
    ramp: Ramp,
    /// The user number (1-based, of all users) of each goose user: the HTTP share of
    /// the users when `[[ws]]` users take the rest.
    numbers: Vec<u32>,
    census: Arc<Census>,
    per_user: bool,
    /// When goose started its run: the stages' clock.
    t0: OnceLock<Instant>,
    started: Notify,
}

impl UserLoop for Users {
    type State = Slot;

    fn started(&self) {
        let _ = self.t0.set(Instant::now());
        self.started.notify_one();
    }

    fn step<'a>(
        &'a self,
        index: usize,
        state: &'a mut Option<Slot>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.step(index, state))
    }

    fn died(&self, index: usize, reason: String) {
        self.engine.events.send(EventKind::UserDied {
            user: index as u64 + 1,
            reason,
        });
    }
}

impl Users {
    /// A fresh user `user`, active for the `generation`-th time (0 at first).
    fn activate(&self, user: u32, generation: u64) -> Box<Active> {
        Box::new(Active {
            flow: Flow {
                rng: super::rng_for(
                    self.engine.plan.seed,
                    u64::from(user) + generation * GENERATION,
                ),
                vars: Default::default(),
                user: user as usize,
                iteration: 0,
            },
            conns: (0..self.engine.targets()).map(|_| None).collect(),
            _counted: Counted::new(&self.census),
        })
    }

    async fn step(&self, index: usize, state: &mut Option<Slot>) {
        let t0 = match self.t0.get() {
            Some(t0) if !self.engine.ending.is_cancelled() => *t0,
            // The load is over (or cancelled): wait for goose to stop this user.
            _ => {
                if let Some(slot) = state {
                    slot.active = None;
                }
                tokio::time::sleep(IDLE).await;
                return;
            }
        };
        let user = self.numbers.get(index).copied().unwrap_or(index as u32 + 1);
        let slot = state.get_or_insert_with(|| Slot {
            toggles: self.ramp.toggles(user),
            generation: 0,
            active: None,
        });
        match ramp::state_at(&slot.toggles, t0.elapsed()) {
            (false, on) => {
                slot.active = None;
                self.wait_for(on.map(|on| t0 + on)).await;
            }
            (true, off) => self.iterate(user, slot, off.map(|off| t0 + off)).await,
        }
    }

    /// An inactive user waits until it turns active (`on`), or the load ends.
    async fn wait_for(&self, on: Option<Instant>) {
        let ending = &self.engine.ending;
        match on {
            Some(on) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(on) => {}
                    _ = ending.cancelled() => {}
                }
            }
            None => ending.cancelled().await,
        }
    }

    /// An active user runs one iteration, then thinks (until `off` at most).
    async fn iterate(&self, user: u32, slot: &mut Slot, off: Option<Instant>) {
        let st = match &mut slot.active {
            Some(st) => st,
            None => {
                let generation = slot.generation;
                slot.generation += 1;
                slot.active.insert(self.activate(user, generation))
            }
        };
        let sent = {
            let Active { flow, conns, .. } = &mut **st;
            let mut conns = match (&self.engine.pool, self.per_user) {
                (Some(p), false) => Conns::Pool(p),
                _ => Conns::Own(conns),
            };
            self.engine.iteration(flow, &mut conns, None).await
        };
        let mut think = self.engine.think.sample(&mut st.flow.rng);
        if let Some(off) = off {
            // Turning inactive cuts the think time short.
            think = think.min(off.saturating_duration_since(Instant::now()));
        }
        match sent {
            Sent::Aborted => tokio::time::sleep(IDLE).await,
            _ if !think.is_zero() => {
                self.engine.pause(think).await;
            }
            // Nothing else may yield when the target fails fast: give others a turn.
            Sent::Failed => tokio::task::yield_now().await,
            Sent::Ok => {}
        }
    }
}

/// Run the users numbered `numbers` (1-based, of all users) to the end of the ramp (or
/// until the engine's cancel), counted in `census`.
pub(crate) async fn run(
    engine: Engine,
    ramp: Ramp,
    census: Arc<Census>,
    numbers: Vec<u32>,
) -> Result<(), LoadError> {
    let planned = ramp.total();
    let max_users = numbers.len();
    if max_users == 0 {
        // Nothing to run: the stages only wait.
        tokio::select! {
            _ = tokio::time::sleep(planned) => {}
            _ = engine.cancel.cancelled() => {}
        }
        return Ok(());
    }
    let events = engine.events.clone();
    let base = engine
        .plan
        .base_url
        .as_str()
        .trim_end_matches('/')
        .to_string();
    let cancel = engine.cancel.clone();
    let ending = engine.ending.clone();
    let users = Arc::new(Users {
        census,
        numbers,
        per_user: engine.pool.is_none(),
        engine,
        ramp,
        t0: OnceLock::new(),
        started: Notify::new(),
    });

    let goose = goose_users::run(
        users.clone(),
        max_users,
        &base,
        ending.clone().cancelled_owned(),
    );
    tokio::pin!(goose);
    // Set once goose started: the planned end, then the hard stop.
    let mut end: Option<(Instant, Instant)> = None;
    let result = loop {
        let (end_at, hard_at) = end.unwrap_or_else(|| {
            let far = Instant::now() + Duration::from_secs(86_400 * 365);
            (far, far)
        });
        tokio::select! {
            r = &mut goose => break r,
            _ = users.started.notified(), if end.is_none() => {
                let t0 = users.t0.get().copied().unwrap_or_else(Instant::now);
                end = Some((t0 + planned, t0 + planned + GRACE));
            }
            _ = tokio::time::sleep_until(end_at), if end.is_some() && !ending.is_cancelled() => {
                ending.cancel();
            }
            _ = tokio::time::sleep_until(hard_at), if end.is_some() && !cancel.is_cancelled() => {
                // Users whose requests hang keep goose waiting: abandon those requests.
                cancel.cancel();
            }
        }
    };
    ending.cancel();
    if users.t0.get().is_none() && result.is_ok() && !cancel.is_cancelled() {
        events.notice(Level::Warn, "goose ended before its run started");
    }
    users.engine.report_abandoned();
    result
}
