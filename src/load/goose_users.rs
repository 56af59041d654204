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
}

/// goose session data. Cloning yields an empty holder: the clone starts afresh.
struct Holder<S>(Option<S>);

impl<S> Clone for Holder<S> {
    fn clone(&self) -> Self {
        Holder(None)
    }
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
            let index = user.weighted_users_index;
            let mut state = user
                .get_session_data_mut::<Holder<L::State>>()
                .and_then(|h| h.0.take());
            user_loop.step(index, &mut state).await;
            match user.get_session_data_mut::<Holder<L::State>>() {
                Some(h) => h.0 = state,
                None => user.set_session_data(Holder(state)),
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
