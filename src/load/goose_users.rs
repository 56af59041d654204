//! The one file that knows goose 0.19: it runs `users` virtual users, each calling
//! [`UserLoop::step`] over and over with its own state, until told to stop.
//!
//! * goose starts every user at once and holds them (a users ramp with no run time); how
//!   many are active, and when, is [`super::ramp`]'s business, so stages keep their exact
//!   durations (goose counts run and hold times in whole seconds).
//! * goose stays silent: metrics, reports, controllers and gzip are off, and the run is a
//!   users ramp, whose "users launched" line goose prints only with metrics displayed or
//!   `NoResetMetrics` set. (A goose test plan writes "N users launched." to stdout
//!   whatever the settings, from `GooseAttack::reset_metrics` in goose's
//!   metrics.rs. That is why stages are not given to goose as a test plan.)
//! * It is stopped once with goose's killswitch, after goose started its run: goose
//!   clears the killswitch when a run starts (before `test_start`), not after.
//! * Users share one cookie-less reqwest client that is never used: requests go through
//!   our own hyper client.
//! * A user whose step panics dies: [`UserLoop::died`] is told (the run must not pass
//!   as if it had sent its requests), and it idles until the end.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::prelude::*;
use tokio::sync::Notify;

use super::LoadError;

/// What the users do.
pub(crate) trait UserLoop: Send + Sync + 'static {
    /// A user's own state, kept between steps. goose may clone a user: the clone starts
    /// with `None`.
    type State: Send + Sync + 'static;

    /// goose started its run; users start right after.
    fn started(&self);

    /// One step of user `index` (0-based). Should not spin: a user with nothing to do
    /// waits a little before returning.
    fn step<'a>(
        &'a self,
        index: usize,
        state: &'a mut Option<Self::State>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

    /// User `index` panicked in a step (`reason`: the panic's message); its state is gone
    /// and it steps no more.
    fn died(&self, index: usize, reason: String);
}

/// How long a dead user waits between two of goose's calls.
const DEAD_IDLE: std::time::Duration = std::time::Duration::from_millis(100);

/// goose session data. Cloning yields an empty holder: the clone starts afresh.
struct Holder<S> {
    state: Option<S>,
    dead: bool,
}

impl<S> Clone for Holder<S> {
    fn clone(&self) -> Self {
        Holder {
            state: None,
            dead: false,
        }
    }
}

/// The message of a panic payload.
pub(crate) fn panic_reason(payload: &(dyn std::any::Any + Send)) -> String {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with no message".into());
    format!("panicked: {msg}")
}

/// Run `users` users of `user_loop` until `stop` completes (then all stop), or until goose
/// fails. `host` is only goose's bookkeeping.
pub(crate) async fn run<L: UserLoop>(
    user_loop: Arc<L>,
    users: usize,
    host: &str,
    stop: impl Future<Output = ()>,
) -> Result<(), LoadError> {
    let started = Arc::new(Notify::new());
    let attack = attack(user_loop, started.clone(), users, host).map_err(scheduler)?;
    let goose = attack.execute();
    tokio::pin!(goose);
    let killswitch = async {
        stop.await;
        // A killswitch fired before goose's run started would be cleared by it.
        started.notified().await;
        goose::trigger_killswitch("gauntlet: load stopped");
    };
    let result = tokio::select! {
        r = &mut goose => r,
        () = killswitch => goose.await,
    };
    result.map(|_| ()).map_err(scheduler)
}

fn scheduler(e: GooseError) -> LoadError {
    LoadError::Scheduler(Box::new(e))
}

fn attack<L: UserLoop>(
    user_loop: Arc<L>,
    started: Arc<Notify>,
    users: usize,
    host: &str,
) -> Result<GooseAttack, GooseError> {
    let on_start: TransactionFunction = {
        let user_loop = user_loop.clone();
        Arc::new(move |_user| {
            user_loop.started();
            // notify_one keeps the permit for a later `notified()`.
            started.notify_one();
            Box::pin(async { Ok(()) })
        })
    };
    let step: TransactionFunction = Arc::new(move |user| {
        let user_loop = user_loop.clone();
        Box::pin(async move {
            use futures::FutureExt;
            let index = user.weighted_users_index;
            let (mut state, dead) = match user.get_session_data_mut::<Holder<L::State>>() {
                Some(h) => (h.state.take(), h.dead),
                None => (None, false),
            };
            if dead {
                tokio::time::sleep(DEAD_IDLE).await;
                return Ok(());
            }
            let stepped = std::panic::AssertUnwindSafe(user_loop.step(index, &mut state))
                .catch_unwind()
                .await;
            let dead = match stepped {
                Ok(()) => false,
                Err(payload) => {
                    // What the panic left half-done is dropped, not reused.
                    state = None;
                    user_loop.died(index, panic_reason(payload.as_ref()));
                    true
                }
            };
            match user.get_session_data_mut::<Holder<L::State>>() {
                Some(h) => {
                    h.state = state;
                    h.dead = dead;
                }
                None => user.set_session_data(Holder { state, dead }),
            }
            Ok(())
        })
    });
    let mut a = GooseAttack::initialize_with_config(GooseConfiguration::default())?
        .register_scenario(
            Scenario::new("gauntlet").register_transaction(Transaction::new(step).set_name("step")),
        )
        .test_start(Transaction::new(on_start).set_name("start"))
        .set_client_builder_without_cookies(GooseClientBuilder::new().without_cookies())?;
    a = *a.set_default(GooseDefault::Host, host)?;
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
    // Every user at once, held until the killswitch: no run time, no decrease.
    a = *a.set_default(GooseDefault::Users, users)?;
    a = *a.set_default(GooseDefault::IncreaseRate, "1000000000")?;
    Ok(a)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// Every step panics; counts deaths and steps.
    #[derive(Default)]
    struct Panics {
        steps: AtomicUsize,
        deaths: Mutex<Vec<(usize, String)>>,
    }

    impl UserLoop for Panics {
        type State = ();

        fn started(&self) {}

        fn step<'a>(
            &'a self,
            index: usize,
            _state: &'a mut Option<()>,
        ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
            Box::pin(async move {
                self.steps.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                panic!("boom in user {index}");
            })
        }

        fn died(&self, index: usize, reason: String) {
            self.deaths.lock().unwrap().push((index, reason));
        }
    }

    /// A panicking user is reported once, with its message, and steps no more; the run
    /// still ends when told.
    #[tokio::test]
    async fn a_user_that_panics_dies_once_and_is_reported() {
        let users = Arc::new(Panics::default());
        let watched = users.clone();
        let stop = async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while watched.deaths.lock().unwrap().len() < 3 && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Dead users are called again meanwhile: they must not step (nor die) again.
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        run(users.clone(), 3, "http://127.0.0.1:9", stop)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut deaths = users.deaths.lock().unwrap().clone();
        deaths.sort();
        assert_eq!(
            deaths,
            (0..3)
                .map(|i| (i, format!("panicked: boom in user {i}")))
                .collect::<Vec<_>>()
        );
        assert_eq!(users.steps.load(Ordering::SeqCst), 3);
    }
}
