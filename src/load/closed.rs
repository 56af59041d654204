//! Closed model: goose 0.19 schedules the virtual users (ramps, holds, ramp downs); each
//! user runs one transaction, built here at runtime, that does one iteration of the plan
//! through our own hyper connection, then thinks.
//!
//! * Per-user state (RNG, extracted values, iteration count, keep-alive connection) lives
//!   in goose session data, in a [`Holder`] whose clone is empty: goose clones users, and
//!   a cloned user simply starts fresh (reseeds, reconnects).
//! * Users are counted by a guard inside that state: +1 at a user's first iteration, -1
//!   when goose drops the user; every change is a `RunEvent::Users`.
//! * goose stays silent: every metric, report, print and controller is off, and users
//!   share one cookie-less reqwest client (never used: requests go through hyper). A
//!   scenario whose stages are "ramp up, hold, ramp down" runs as a goose users ramp,
//!   which prints nothing; any other shape runs as a goose test plan, and goose 0.19
//!   then prints one line ("N users launched.") to stdout, which no setting turns off.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::prelude::*;
use tokio::sync::Notify;

use super::engine::{Conns, Engine, Flow, Sent};
use super::LoadError;
use crate::event::{EventSink, Level, RunEvent};

/// In-flight requests get this long after the planned end before they are abandoned.
const GRACE: Duration = Duration::from_secs(2);
/// A user with nothing to do (load ending, waiting for goose to stop it) waits this long
/// between two checks, so it never spins.
const IDLE: Duration = Duration::from_millis(100);

/// How goose is told to schedule users.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Schedule {
    /// `--users N --increase-rate R [--run-time H] [--decrease-rate D]`: silent.
    Ramp {
        users: usize,
        increase_rate: f64,
        hold_secs: usize,
        decrease_rate: Option<f64>,
    },
    /// `--test-plan "users,secs;..."`.
    TestPlan(String),
}

/// Users started or stopped per second to change `users` over `d`.
fn rate(users: u32, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s < 0.001 {
        1e9
    } else {
        f64::from(users) / s
    }
}

/// Map the plan's stages (`(duration, users)`, ramping linearly from 0) to goose.
pub(crate) fn schedule(stages: &[(Duration, u32)]) -> Schedule {
    let round = |d: Duration| (d.as_millis() as usize + 500) / 1000;
    // ramp up, holds, optional ramp down to 0, nothing else.
    if let Some(&(up, n)) = stages.first() {
        let mut i = 1;
        let mut hold = Duration::ZERO;
        while i < stages.len() && stages[i].1 == n {
            hold += stages[i].0;
            i += 1;
        }
        let down = match stages.get(i) {
            Some(&(d, 0)) if i + 1 == stages.len() => {
                i += 1;
                Some(d)
            }
            _ => None,
        };
        let up_rate = rate(n, up);
        if n > 0 && i == stages.len() && up_rate >= 1e-3 {
            let hold_secs = round(hold);
            let decrease_rate = match down {
                Some(d) => Some(rate(n, d)),
                // Without a ramp down and without a hold, goose would hold until
                // stopped: stop everyone at once instead.
                None if hold_secs == 0 => Some(1e9),
                None => None,
            };
            return Schedule::Ramp {
                users: n as usize,
                increase_rate: up_rate,
                hold_secs,
                decrease_rate: decrease_rate.map(|r| r.max(1e-3)),
            };
        }
    }
    let mut steps: Vec<String> = stages
        .iter()
        .map(|(d, u)| format!("{u},{}", round(*d)))
        .collect();
    if stages.last().is_some_and(|s| s.1 != 0) {
        steps.push("0,0".into());
    }
    Schedule::TestPlan(steps.join(";"))
}

/// Counts active users; each change is an event.
struct Census {
    count: AtomicU32,
    events: EventSink,
}

impl Census {
    fn add(&self) {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        self.events.send(RunEvent::Users {
            at: self.events.now(),
            count: n,
        });
    }

    fn remove(&self) {
        let n = self.count.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
        self.events.send(RunEvent::Users {
            at: self.events.now(),
            count: n,
        });
    }
}

struct UserGuard(Arc<Census>);

impl Drop for UserGuard {
    fn drop(&mut self) {
        self.0.remove();
    }
}

struct UserState {
    flow: Flow,
    conn: Option<super::client::Conn>,
    _counted: UserGuard,
}

/// Goose session data. Cloning yields an empty holder: the clone starts a fresh user.
#[derive(Default)]
struct Holder(Option<Box<UserState>>);

impl Clone for Holder {
    fn clone(&self) -> Self {
        Holder(None)
    }
}

struct Shared {
    engine: Engine,
    census: Arc<Census>,
    per_user: bool,
    started: Notify,
    started_flag: AtomicBool,
}

impl Shared {
    async fn step(&self, user: &mut GooseUser) {
        if self.engine.ending.is_cancelled() {
            // The load is over (or cancelled): wait for goose to stop this user.
            tokio::time::sleep(IDLE).await;
            return;
        }
        let held = user
            .get_session_data_mut::<Holder>()
            .and_then(|h| h.0.take());
        let mut st = match held {
            Some(st) => st,
            None => {
                let n = user.weighted_users_index + 1;
                self.census.add();
                Box::new(UserState {
                    flow: Flow {
                        rng: super::rng_for(self.engine.plan.seed, n as u64),
                        vars: Default::default(),
                        user: n,
                        iteration: 0,
                    },
                    conn: None,
                    _counted: UserGuard(self.census.clone()),
                })
            }
        };
        let sent = {
            let UserState { flow, conn, .. } = &mut *st;
            let mut conns = match (&self.engine.pool, self.per_user) {
                (Some(p), false) => Conns::Pool(p),
                _ => Conns::Own(conn),
            };
            self.engine.iteration(flow, &mut conns, None).await
        };
        let think = self.engine.think.sample(&mut st.flow.rng);
        match user.get_session_data_mut::<Holder>() {
            Some(h) => h.0 = Some(st),
            None => user.set_session_data(Holder(Some(st))),
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

type StepFuture<'r> = Pin<Box<dyn Future<Output = TransactionResult> + Send + 'r>>;

fn step<'r>(shared: &Arc<Shared>, user: &'r mut GooseUser) -> StepFuture<'r> {
    let shared = shared.clone();
    Box::pin(async move {
        shared.step(user).await;
        Ok(())
    })
}

fn started<'r>(shared: &Arc<Shared>, _user: &'r mut GooseUser) -> StepFuture<'r> {
    let shared = shared.clone();
    Box::pin(async move {
        shared.started_flag.store(true, Ordering::Relaxed);
        shared.started.notify_one();
        Ok(())
    })
}

fn goose_err(e: GooseError) -> LoadError {
    LoadError::Engine(format!("goose: {e}"))
}

fn configure(attack: GooseAttack, base: &str, sched: &Schedule) -> Result<GooseAttack, GooseError> {
    let mut a = *attack.set_default(GooseDefault::Host, base)?;
    for flag in [
        GooseDefault::NoMetrics,
        GooseDefault::NoTransactionMetrics,
        GooseDefault::NoScenarioMetrics,
        GooseDefault::NoPrintMetrics,
        GooseDefault::NoErrorSummary,
        GooseDefault::NoStatusCodes,
        GooseDefault::NoTelnet,
        GooseDefault::NoGzip,
    ] {
        a = *a.set_default(flag, true)?;
    }
    a = *a.set_default(GooseDefault::Quiet, 1usize)?;
    match sched {
        Schedule::Ramp {
            users,
            increase_rate,
            hold_secs,
            decrease_rate,
        } => {
            a = *a.set_default(GooseDefault::Users, *users)?;
            a = *a.set_default(
                GooseDefault::IncreaseRate,
                increase_rate.to_string().as_str(),
            )?;
            if *hold_secs > 0 {
                a = *a.set_default(GooseDefault::RunTime, *hold_secs)?;
            }
            if let Some(d) = decrease_rate {
                a = *a.set_default(GooseDefault::DecreaseRate, d.to_string().as_str())?;
            }
        }
        Schedule::TestPlan(p) => {
            a = *a.set_default(GooseDefault::TestPlan, p.as_str())?;
        }
    }
    Ok(a)
}

pub(crate) async fn run(
    engine: Engine,
    stages: Vec<(Duration, u32)>,
    per_user: bool,
) -> Result<(), LoadError> {
    let planned: Duration = stages.iter().map(|s| s.0).sum();
    let max_users = stages.iter().map(|s| s.1).max().unwrap_or(0);
    if max_users == 0 {
        // Nothing to run: the stages only wait.
        tokio::select! {
            _ = tokio::time::sleep(planned) => {}
            _ = engine.cancel.cancelled() => {}
        }
        return Ok(());
    }
    let sched = schedule(&stages);
    let events = engine.events.clone();
    let base = engine
        .plan
        .base_url
        .as_str()
        .trim_end_matches('/')
        .to_string();
    let shared = Arc::new(Shared {
        census: Arc::new(Census {
            count: AtomicU32::new(0),
            events: events.clone(),
        }),
        engine,
        per_user,
        started: Notify::new(),
        started_flag: AtomicBool::new(false),
    });

    let s1 = shared.clone();
    let s2 = shared.clone();
    let on_start: TransactionFunction = Arc::new(move |user| started(&s1, user));
    let iteration: TransactionFunction = Arc::new(move |user| step(&s2, user));
    let attack = GooseAttack::initialize_with_config(GooseConfiguration::default())
        .map_err(goose_err)?
        .register_scenario(
            Scenario::new("gauntlet")
                .register_transaction(Transaction::new(iteration).set_name("iteration")),
        )
        .test_start(Transaction::new(on_start).set_name("start"))
        .set_client_builder_without_cookies(GooseClientBuilder::new().without_cookies())
        .map_err(goose_err)?;
    let attack = configure(attack, &base, &sched).map_err(goose_err)?;

    let goose = attack.execute();
    tokio::pin!(goose);
    let cancel = shared.engine.cancel.clone();
    let ending = shared.engine.ending.clone();
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let mut end_at = far;
    let mut hard_at = far;
    let mut killing = false;
    let mut retrigger = tokio::time::interval(Duration::from_millis(250));
    let result = loop {
        tokio::select! {
            r = &mut goose => break r,
            _ = shared.started.notified(), if end_at == far => {
                let now = tokio::time::Instant::now();
                end_at = now + planned;
                hard_at = end_at + GRACE;
            }
            _ = tokio::time::sleep_until(end_at), if end_at != far && !ending.is_cancelled() => {
                ending.cancel();
            }
            _ = tokio::time::sleep_until(hard_at), if hard_at != far && !cancel.is_cancelled() => {
                // Goose is still waiting for users whose requests hang: abandon them.
                cancel.cancel();
            }
            _ = cancel.cancelled(), if !killing => {
                killing = true;
                goose::trigger_killswitch("gauntlet: load stopped");
            }
            // goose clears the killswitch when its run starts; say it again until it ends.
            _ = retrigger.tick(), if killing => goose::trigger_killswitch("gauntlet: load stopped"),
        }
    };
    ending.cancel();
    let count = shared.census.count.load(Ordering::Relaxed);
    if count != 0 {
        events.send(RunEvent::Users {
            at: events.now(),
            count: 0,
        });
    }
    if !shared.started_flag.load(Ordering::Relaxed) && result.is_ok() && !killing {
        events.notice(Level::Warn, "goose ended before its test plan started");
    }
    shared.engine.report_abandoned();
    result.map(|_| ()).map_err(goose_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[(u64, u32)]) -> Vec<(Duration, u32)> {
        v.iter()
            .map(|&(ms, u)| (Duration::from_millis(ms), u))
            .collect()
    }

    #[test]
    fn ramp_hold_down_is_a_users_ramp() {
        assert_eq!(
            schedule(&s(&[(5000, 200), (15000, 200), (2000, 0)])),
            Schedule::Ramp {
                users: 200,
                increase_rate: 40.0,
                hold_secs: 15,
                decrease_rate: Some(100.0)
            }
        );
        // No hold, no ramp down: everyone stops at once at the end of the ramp.
        assert_eq!(
            schedule(&s(&[(2000, 10)])),
            Schedule::Ramp {
                users: 10,
                increase_rate: 5.0,
                hold_secs: 0,
                decrease_rate: Some(1e9)
            }
        );
        // Hold without ramp down: goose stops everyone after the hold.
        assert_eq!(
            schedule(&s(&[(0, 10), (3000, 10)])),
            Schedule::Ramp {
                users: 10,
                increase_rate: 1e9,
                hold_secs: 3,
                decrease_rate: None
            }
        );
    }

    #[test]
    fn other_shapes_are_test_plans() {
        assert_eq!(
            schedule(&s(&[(5000, 100), (5000, 300), (10000, 300), (3000, 0)])),
            Schedule::TestPlan("100,5;300,5;300,10;0,3".into())
        );
        assert_eq!(
            schedule(&s(&[(5000, 100), (5000, 50)])),
            Schedule::TestPlan("100,5;50,5;0,0".into())
        );
    }
}
