//! The data canary: keys written to a Redis before the load and the faults, read back at
//! the end. The missing ones (absent, or holding another value) are recorded as
//! `EventKind::Metric { service: "canary", name: "data_loss_keys" }`, which the
//! `data_loss.keys` criterion reads.
//!
//! - Keys are `<prefix><token>:<i>`, the token random per run, so runs (and earlier runs'
//!   leftovers) never share keys; each value is unique too. They are deleted again at the
//!   end (best effort), so a persistent Redis does not fill up with canaries.
//! - At the start, the write is retried for up to [`WRITE_WINDOW`] (Redis was just
//!   started), then read back to confirm every key is there. If that fails, an
//!   `Error` notice says why and nothing is measured: `data_loss.keys` then fails for
//!   missing data (it never passes on a canary that was not written).
//! - At the end, the read-back is retried while Redis is down, restarting or loading its
//!   data, for up to the canary's `timeout` (default 30s). If Redis never answers, an
//!   `Error` notice says so and nothing is measured either (the criterion fails).

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;

use crate::event::{EventKind, EventSink, Level};
use crate::scenario::model::CanaryPlan;

use super::{require_loopback, NotLoopback};

pub use crate::scenario::model::{CANARY_LOSS_METRIC as LOSS_METRIC, CANARY_SERVICE as SERVICE};
/// Keys written at the start.
pub const WRITTEN_METRIC: &str = "canary_keys";
/// How long the start keeps trying to write the keys.
pub const WRITE_WINDOW: Duration = Duration::from_secs(10);
/// One Redis call's (and one connect's) timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between two attempts.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// Keys per command.
const CHUNK: usize = 1000;

/// Why the canary could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CanaryError {
    #[error(transparent)]
    NotLoopback(#[from] NotLoopback),
    #[error("no connection within {}s", .0.as_secs())]
    ConnectTimeout(Duration),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error("MGET of {asked} keys answered {got} values")]
    ShortRead { asked: usize, got: usize },
    #[error("{missing} of {total} keys were not there right after they were written")]
    NotConfirmed { missing: usize, total: usize },
}

/// A canary whose keys were written and confirmed.
#[derive(Debug)]
pub struct Canary {
    url: String,
    client: redis::Client,
    keys: Vec<String>,
    values: Vec<String>,
    timeout: Duration,
}

impl Canary {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys written (for tests).
    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

async fn connect(client: &redis::Client) -> Result<MultiplexedConnection, CanaryError> {
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CALL_TIMEOUT))
        .set_response_timeout(Some(CALL_TIMEOUT));
    let within = CALL_TIMEOUT * 2;
    Ok(tokio::time::timeout(
        within,
        client.get_multiplexed_async_connection_with_config(&cfg),
    )
    .await
    .map_err(|_| CanaryError::ConnectTimeout(within))??)
}

/// Values of `keys`, in order (None: absent).
async fn read(
    conn: &mut MultiplexedConnection,
    keys: &[String],
) -> Result<Vec<Option<String>>, CanaryError> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(CHUNK) {
        let v: Vec<Option<String>> = redis::cmd("MGET").arg(chunk).query_async(conn).await?;
        if v.len() != chunk.len() {
            return Err(CanaryError::ShortRead {
                asked: chunk.len(),
                got: v.len(),
            });
        }
        out.extend(v);
    }
    Ok(out)
}

fn missing(found: &[Option<String>], values: &[String]) -> usize {
    found
        .iter()
        .zip(values)
        .filter(|(f, v)| f.as_deref() != Some(v.as_str()))
        .count()
}

async fn write_once(
    client: &redis::Client,
    keys: &[String],
    values: &[String],
) -> Result<(), CanaryError> {
    let mut conn = connect(client).await?;
    for (k, v) in keys.chunks(CHUNK).zip(values.chunks(CHUNK)) {
        let mut pipe = redis::pipe();
        let mut mset = redis::cmd("MSET");
        for (k, v) in k.iter().zip(v) {
            mset.arg(k).arg(v);
        }
        pipe.add_command(mset).ignore();
        let _: () = pipe.query_async(&mut conn).await?;
    }
    let found = read(&mut conn, keys).await?;
    match missing(&found, values) {
        0 => Ok(()),
        n => Err(CanaryError::NotConfirmed {
            missing: n,
            total: keys.len(),
        }),
    }
}

/// Write the canary keys and confirm them. None (with an `Error` notice) when that is not
/// possible; `data_loss.keys` then fails for missing data.
pub async fn start(plan: &CanaryPlan, events: &EventSink) -> Option<Canary> {
    start_within(plan, events, WRITE_WINDOW).await
}

async fn start_within(plan: &CanaryPlan, events: &EventSink, window: Duration) -> Option<Canary> {
    let fail = |why: String| {
        events.notice(
            Level::Error,
            format!("data canary: {why}; data loss cannot be measured, so `data_loss.keys` fails"),
        );
    };
    if let Err(e) = require_loopback("canary.redis", &plan.host) {
        fail(e.to_string());
        return None;
    }
    let client = match redis::Client::open(plan.connection.clone()) {
        Ok(c) => c,
        Err(e) => {
            fail(format!("canary.redis `{}`: {e}", plan.url));
            return None;
        }
    };
    let n = plan.keys.get() as usize;
    let prefix = &plan.prefix;
    let token = format!("{:016x}", rand::random::<u64>());
    let keys: Vec<String> = (0..n).map(|i| format!("{prefix}{token}:{i}")).collect();
    let values: Vec<String> = (0..n)
        .map(|i| format!("{token}:{i}:{:08x}", rand::random::<u32>()))
        .collect();
    let started = Instant::now();
    loop {
        let last = match write_once(&client, &keys, &values).await {
            Ok(()) => break,
            Err(e) => e,
        };
        if started.elapsed() + RETRY_EVERY >= window {
            fail(format!(
                "cannot write {n} keys to {} within {}s: {last}",
                plan.url,
                window.as_secs_f64()
            ));
            return None;
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
    events.send(EventKind::Metric {
        service: SERVICE.into(),
        name: WRITTEN_METRIC.into(),
        value: n as f64,
    });
    events.notice(
        Level::Info,
        format!(
            "data canary: {n} keys written to {} ({prefix}{token}:*)",
            plan.url
        ),
    );
    Some(Canary {
        url: plan.url.clone(),
        client,
        keys,
        values,
        timeout: plan.timeout,
    })
}

impl Canary {
    /// Read the keys back (retrying while Redis is unreachable, up to the canary's
    /// timeout), record how many are missing, and delete them. Returns the missing count
    /// (None: Redis never answered; an `Error` notice says so and nothing is recorded).
    pub async fn check(self, events: &EventSink) -> Option<usize> {
        let started = Instant::now();
        // The last failed attempt's error.
        let mut last: Option<CanaryError> = None;
        loop {
            let r = async {
                let mut conn = connect(&self.client).await?;
                let found = read(&mut conn, &self.keys).await?;
                Ok::<_, CanaryError>((conn, found))
            }
            .await;
            let e = match r {
                Ok((mut conn, found)) => {
                    let lost = missing(&found, &self.values);
                    events.send(EventKind::Metric {
                        service: SERVICE.into(),
                        name: LOSS_METRIC.into(),
                        value: lost as f64,
                    });
                    let n = self.keys.len();
                    let (level, what) = if lost == 0 {
                        (Level::Info, format!("all {n} keys are there"))
                    } else {
                        (Level::Warn, format!("{lost} of {n} keys are lost"))
                    };
                    let waited = match &last {
                        Some(e) => format!(
                            " (Redis answered after {:.1}s: {e})",
                            started.elapsed().as_secs_f64()
                        ),
                        None => String::new(),
                    };
                    events.notice(level, format!("data canary: {what}{waited}"));
                    for chunk in self.keys.chunks(CHUNK) {
                        let _: Result<i64, _> =
                            redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
                    }
                    return Some(lost);
                }
                Err(e) => e,
            };
            if started.elapsed() + RETRY_EVERY >= self.timeout {
                events.notice(
                    Level::Error,
                    format!(
                        "data canary: {} did not answer within {}s at the end ({e}); data loss is unknown, so `data_loss.keys` fails",
                        self.url,
                        self.timeout.as_secs_f64()
                    ),
                );
                return None;
            }
            last = Some(e);
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A canary plan for `host:port` (as validation would resolve it).
    fn plan(host: &str, port: u16, keys: u32) -> CanaryPlan {
        use redis::IntoConnectionInfo;
        CanaryPlan {
            url: format!("redis://{host}:{port}"),
            host: host.into(),
            port,
            connection: (host, port).into_connection_info().unwrap(),
            keys: std::num::NonZeroU32::new(keys).unwrap(),
            prefix: "t:".into(),
            timeout: Duration::from_secs(1),
        }
    }

    fn notices(rx: &mut crate::event::EventStream) -> Vec<(Level, String)> {
        let mut out = vec![];
        while let Ok(ev) = rx.try_recv() {
            if let EventKind::Notice { level, message } = ev.kind {
                out.push((level, message));
            }
        }
        out
    }

    #[tokio::test]
    async fn a_redis_that_is_not_loopback_is_not_talked_to() {
        let (events, mut rx) = EventSink::new(Instant::now());
        let t0 = Instant::now();
        let c = start_within(&plan("10.0.0.1", 6379, 3), &events, Duration::from_secs(5)).await;
        assert!(c.is_none());
        // Refused before any connection attempt, so well within the write window.
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
        let n = notices(&mut rx);
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!(n[0].0, Level::Error);
        assert!(
            n[0].1
                .contains("canary.redis: `10.0.0.1` is not a loopback address"),
            "{n:?}"
        );
    }

    #[test]
    fn missing_counts_absent_and_changed() {
        let values = vec!["a".to_string(), "b".into(), "c".into()];
        let found = vec![Some("a".to_string()), None, Some("x".into())];
        assert_eq!(missing(&found, &values), 2);
    }

    #[tokio::test]
    async fn unreachable_redis_is_an_error_notice_and_no_canary() {
        let (events, mut rx) = EventSink::new(Instant::now());
        // A port nothing listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = start_within(&plan("127.0.0.1", port, 3), &events, Duration::from_secs(1)).await;
        assert!(c.is_none());
        let notices = notices(&mut rx);
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert_eq!(notices[0].0, Level::Error);
        assert!(notices[0].1.contains("data_loss.keys"), "{notices:?}");
    }
}
