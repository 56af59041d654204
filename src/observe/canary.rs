//! The data canary: keys written to a Redis before the load and the faults, read back at
//! the end. The missing ones (absent, or holding another value) are recorded as
//! `RunEvent::Metric { service: "canary", name: "data_loss_keys" }`, which the
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

use crate::event::{EventSink, Level, RunEvent};
use crate::scenario::model::CanarySpec;

/// The service name canary metrics are recorded under.
pub const SERVICE: &str = "canary";
/// Keys found missing at the end.
pub const LOSS_METRIC: &str = "data_loss_keys";
/// Keys written at the start.
pub const WRITTEN_METRIC: &str = "canary_keys";
pub const DEFAULT_KEYS: u32 = 100;
pub const DEFAULT_PREFIX: &str = "gauntlet:canary:";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the start keeps trying to write the keys.
pub const WRITE_WINDOW: Duration = Duration::from_secs(10);
/// One Redis call's (and one connect's) timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between two attempts.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// Keys per command.
const CHUNK: usize = 1000;

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

fn check_url(url: &str) -> Result<(), String> {
    let u = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if u.scheme() != "redis" {
        return Err(format!("`{url}` is not a redis:// URL"));
    }
    let host = u.host_str().ok_or_else(|| format!("`{url}` has no host"))?;
    crate::chaos::require_loopback_host(host)
}

async fn connect(client: &redis::Client) -> Result<MultiplexedConnection, String> {
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CALL_TIMEOUT))
        .set_response_timeout(Some(CALL_TIMEOUT));
    tokio::time::timeout(
        CALL_TIMEOUT * 2,
        client.get_multiplexed_async_connection_with_config(&cfg),
    )
    .await
    .map_err(|_| format!("no connection within {}s", CALL_TIMEOUT.as_secs() * 2))?
    .map_err(|e| e.to_string())
}

/// Values of `keys`, in order (None: absent).
async fn read(
    conn: &mut MultiplexedConnection,
    keys: &[String],
) -> Result<Vec<Option<String>>, String> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(CHUNK) {
        let v: Vec<Option<String>> = redis::cmd("MGET")
            .arg(chunk)
            .query_async(conn)
            .await
            .map_err(|e| e.to_string())?;
        if v.len() != chunk.len() {
            return Err(format!(
                "MGET of {} keys answered {} values",
                chunk.len(),
                v.len()
            ));
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
) -> Result<(), String> {
    let mut conn = connect(client).await?;
    for (k, v) in keys.chunks(CHUNK).zip(values.chunks(CHUNK)) {
        let mut pipe = redis::pipe();
        let mut mset = redis::cmd("MSET");
        for (k, v) in k.iter().zip(v) {
            mset.arg(k).arg(v);
        }
        pipe.add_command(mset).ignore();
        let _: () = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    let found = read(&mut conn, keys).await?;
    match missing(&found, values) {
        0 => Ok(()),
        n => Err(format!(
            "{n} of {} keys were not there right after they were written",
            keys.len()
        )),
    }
}

/// Write the canary keys and confirm them. None (with an `Error` notice) when that is not
/// possible; `data_loss.keys` then fails for missing data.
pub async fn start(spec: &CanarySpec, events: &EventSink) -> Option<Canary> {
    start_within(spec, events, WRITE_WINDOW).await
}

async fn start_within(spec: &CanarySpec, events: &EventSink, window: Duration) -> Option<Canary> {
    let fail = |why: String| {
        events.notice(
            Level::Error,
            format!("data canary: {why}; data loss cannot be measured, so `data_loss.keys` fails"),
        );
    };
    if let Err(e) = check_url(&spec.redis) {
        fail(format!("canary.redis: {e}"));
        return None;
    }
    let client = match redis::Client::open(spec.redis.as_str()) {
        Ok(c) => c,
        Err(e) => {
            fail(format!("canary.redis `{}`: {e}", spec.redis));
            return None;
        }
    };
    let n = spec.keys.unwrap_or(DEFAULT_KEYS).max(1) as usize;
    let prefix = spec.prefix.as_deref().unwrap_or(DEFAULT_PREFIX);
    let token = format!("{:016x}", rand::random::<u64>());
    let keys: Vec<String> = (0..n).map(|i| format!("{prefix}{token}:{i}")).collect();
    let values: Vec<String> = (0..n)
        .map(|i| format!("{token}:{i}:{:08x}", rand::random::<u32>()))
        .collect();
    let started = Instant::now();
    let mut last;
    loop {
        match write_once(&client, &keys, &values).await {
            Ok(()) => break,
            Err(e) => last = e,
        }
        if started.elapsed() + RETRY_EVERY >= window {
            fail(format!(
                "cannot write {n} keys to {} within {}s: {last}",
                spec.redis,
                window.as_secs_f64()
            ));
            return None;
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
    events.send(RunEvent::Metric {
        at: events.now(),
        service: SERVICE.into(),
        name: WRITTEN_METRIC.into(),
        value: n as f64,
    });
    events.notice(
        Level::Info,
        format!(
            "data canary: {n} keys written to {} ({prefix}{token}:*)",
            spec.redis
        ),
    );
    Some(Canary {
        url: spec.redis.clone(),
        client,
        keys,
        values,
        timeout: spec
            .timeout
            .map(|d| d.as_duration())
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_TIMEOUT),
    })
}

impl Canary {
    /// Read the keys back (retrying while Redis is unreachable, up to the canary's
    /// timeout), record how many are missing, and delete them. Returns the missing count
    /// (None: Redis never answered; an `Error` notice says so and nothing is recorded).
    pub async fn check(self, events: &EventSink) -> Option<usize> {
        let started = Instant::now();
        let mut last = String::new();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let r = async {
                let mut conn = connect(&self.client).await?;
                let found = read(&mut conn, &self.keys).await?;
                Ok::<_, String>((conn, found))
            }
            .await;
            match r {
                Ok((mut conn, found)) => {
                    let lost = missing(&found, &self.values);
                    events.send(RunEvent::Metric {
                        at: events.now(),
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
                    let waited = if attempts > 1 {
                        format!(
                            " (Redis answered after {:.1}s: {last})",
                            started.elapsed().as_secs_f64()
                        )
                    } else {
                        String::new()
                    };
                    events.notice(level, format!("data canary: {what}{waited}"));
                    for chunk in self.keys.chunks(CHUNK) {
                        let _: Result<i64, _> =
                            redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
                    }
                    return Some(lost);
                }
                Err(e) => last = e,
            }
            if started.elapsed() + RETRY_EVERY >= self.timeout {
                events.notice(
                    Level::Error,
                    format!(
                        "data canary: {} did not answer within {}s at the end ({last}); data loss is unknown, so `data_loss.keys` fails",
                        self.url,
                        self.timeout.as_secs_f64()
                    ),
                );
                return None;
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_loopback_redis() {
        assert!(check_url("redis://127.0.0.1:6379").is_ok());
        assert!(check_url("redis://localhost:6379/0").is_ok());
        assert!(check_url("redis://10.0.0.1:6379").is_err());
        assert!(check_url("http://127.0.0.1:6379").is_err());
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
        let spec = CanarySpec {
            redis: format!("redis://127.0.0.1:{port}"),
            keys: Some(3),
            prefix: None,
            timeout: None,
        };
        let c = start_within(&spec, &events, Duration::from_secs(1)).await;
        assert!(c.is_none());
        let mut notices = vec![];
        while let Ok(ev) = rx.try_recv() {
            if let RunEvent::Notice { level, message, .. } = ev {
                notices.push((level, message));
            }
        }
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert_eq!(notices[0].0, Level::Error);
        assert!(notices[0].1.contains("data_loss.keys"), "{notices:?}");
    }
}
