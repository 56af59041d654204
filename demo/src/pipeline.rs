//! `gauntlet demo pipeline`: an Airbyte-like sync worker.
//!
//! Source: the Redis stream the API appends to. Sink: Redis hashes that record, per record
//! id, its data and how many times it was written (so duplicates can be counted).
//!
//! Single instance (fixed): the active instance holds `demo:pipeline:lock` (SET NX PX,
//! renewed every third of the TTL). A second non-standby instance finds the lock held and
//! exits with an error; a `--standby` instance waits and takes the lock over once it expires
//! (the active one stalled or died). A non-standby instance that finds the lock held by a
//! standby (it took over while this one was down, e.g. restarted by a restart policy)
//! joins as the standby instead of exiting. Every batch runs as one Lua script that first checks
//! the lock is still ours (fencing), so an instance that resumes after a stall cannot write
//! a batch its successor already wrote. The cursor lives in Redis, so a successor continues
//! where its predecessor stopped.
//!
//! `no-single-instance`: no lock; each instance keeps its own cursor, so every record is
//! written once per instance. `no-failover`: a standby never takes over.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio_util::sync::CancellationToken;

use crate::metrics::single;
use crate::store::keys::STREAM;
use crate::{Defect, Defects, DemoError, PipelineArgs};

pub mod keys {
    pub const LOCK: &str = "demo:pipeline:lock";
    pub const CURSOR: &str = "demo:pipeline:cursor";
    pub const LAST_SYNC_MS: &str = "demo:pipeline:last_sync_ms";
    /// Hash: record id -> times written.
    pub const SINK: &str = "demo:sink";
    /// Hash: record id -> record JSON.
    pub const SINK_DATA: &str = "demo:sink:data";
    /// Counter: records written, duplicates included.
    pub const SINK_WRITES: &str = "demo:sink:writes";
    /// Hash: record id -> record JSON, for records the sink's validation step rejected.
    pub const REJECTED: &str = "demo:sink:rejected";
    /// Counter of records through the transform (which ones `corrupt-records` mangles).
    pub const SEQ: &str = "demo:pipeline:seq";
    /// Counter behind the ids of the synthetic source's records (`--source-rate`).
    pub const SOURCE_SEQ: &str = "demo:source:seq";
}

/// `corrupt-records`: every this-many-th record is mangled by the transform.
const CORRUPT_EVERY: u32 = 10;

const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// One batch, atomically: fencing check, read from the cursor, transform, validate, write
/// the sink, move the cursor, stamp the sync time. Returns {written, new cursor, rejected}
/// or {-1, holder, 0} when the lock belongs to someone else.
const SYNC_LUA: &str = r#"
if ARGV[1] ~= '' then
  local h = redis.call('GET', KEYS[1])
  if not h then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  elseif h ~= ARGV[1] then
    return {-1, h, 0}
  end
end
local cursor = ARGV[3]
if cursor == '' then cursor = redis.call('GET', KEYS[2]) or '0-0' end
local entries = redis.call('XRANGE', KEYS[3], '(' .. cursor, '+', 'COUNT', tonumber(ARGV[4]))
local corrupt = tonumber(ARGV[6])
local n, bad = 0, 0
for _, e in ipairs(entries) do
  cursor = e[1]
  local f = e[2]
  local id, json = nil, ''
  for i = 1, #f, 2 do
    if f[i] == 'id' then id = f[i + 1] elseif f[i] == 'json' then json = f[i + 1] end
  end
  if id then
    if corrupt > 0 and redis.call('INCR', KEYS[9]) % corrupt == 0 then
      json = string.sub(json, 1, math.floor(#json / 2))
    end
    -- The sink's validation step: well-formed JSON that carries the record's own id.
    local ok, obj = pcall(cjson.decode, json)
    if ok and type(obj) == 'table' and tostring(obj['id']) == id then
      redis.call('HINCRBY', KEYS[4], id, 1)
      redis.call('HSET', KEYS[5], id, json)
      redis.call('INCR', KEYS[6])
      n = n + 1
    else
      redis.call('HSET', KEYS[8], id, json)
      bad = bad + 1
    end
  end
end
redis.call('SET', KEYS[2], cursor)
redis.call('SET', KEYS[7], ARGV[5])
return {n, cursor, bad}
"#;

/// Renew our lock; take it if it is free. 1: ours, 0: someone else's.
const RENEW_LUA: &str = r#"
local h = redis.call('GET', KEYS[1])
if h == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not h then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"#;

const RELEASE_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// Last part of the lock value of an instance started with `--standby`.
const STANDBY_ORIGIN: &str = ":standby";

const ROLE_ACTIVE: u8 = 0;
const ROLE_STANDBY: u8 = 1;
const ROLE_UNLOCKED: u8 = 2;

fn role_name(r: u8) -> &'static str {
    match r {
        ROLE_ACTIVE => "active",
        ROLE_STANDBY => "standby",
        _ => "unlocked",
    }
}

struct Pipeline {
    conn: ConnectionManager,
    instance: String,
    /// Lock value: unique per process, so a restarted instance is a different holder.
    token: String,
    failover: bool,
    ttl: Duration,
    batch: usize,
    /// `corrupt-records`: mangle every this-many-th record (0: none).
    corrupt_every: u32,
    role: AtomicU8,
    /// Own cursor, used only without the lock (`no-single-instance`).
    cursor: Mutex<String>,
    synced: AtomicU64,
    /// Records the sink's validation step rejected.
    invalid: AtomicU64,
    failing: AtomicBool,
    failures: AtomicU64,
    syncs: AtomicU64,
    takeovers: AtomicU64,
    last_sync_ms: AtomicU64,
    sync: redis::Script,
    renew: redis::Script,
}

impl Pipeline {
    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    fn role(&self) -> u8 {
        self.role.load(Ordering::Relaxed)
    }

    fn ttl_ms(&self) -> u64 {
        self.ttl.as_millis() as u64
    }

    async fn try_acquire(&self) -> Result<Option<String>, redis::RedisError> {
        let ok: Option<String> = redis::cmd("SET")
            .arg(keys::LOCK)
            .arg(&self.token)
            .arg("NX")
            .arg("PX")
            .arg(self.ttl_ms())
            .query_async(&mut self.conn())
            .await?;
        if ok.is_some() {
            return Ok(None);
        }
        let holder: Option<String> = redis::cmd("GET")
            .arg(keys::LOCK)
            .query_async(&mut self.conn())
            .await?;
        Ok(Some(holder.unwrap_or_default()))
    }

    /// Runs batches until the source is drained (bounded per tick). Err: lost the lock.
    async fn sync_run(&self) -> Result<(), String> {
        let locked = self.role() == ROLE_ACTIVE;
        for _ in 0..20 {
            let cursor = if locked {
                String::new()
            } else {
                self.cursor
                    .lock()
                    .map(|c| c.clone())
                    .unwrap_or_else(|e| e.into_inner().clone())
            };
            let now = crate::now_ms();
            let r: Result<(i64, String, i64), _> = self
                .sync
                .key(keys::LOCK)
                .key(keys::CURSOR)
                .key(STREAM)
                .key(keys::SINK)
                .key(keys::SINK_DATA)
                .key(keys::SINK_WRITES)
                .key(keys::LAST_SYNC_MS)
                .key(keys::REJECTED)
                .key(keys::SEQ)
                .arg(if locked { self.token.as_str() } else { "" })
                .arg(self.ttl_ms())
                .arg(&cursor)
                .arg(self.batch)
                .arg(now)
                .arg(self.corrupt_every)
                .invoke_async(&mut self.conn())
                .await;
            match r {
                Ok((-1, holder, _)) => return Err(holder),
                Ok((n, new_cursor, bad)) => {
                    if self.failing.swap(false, Ordering::Relaxed) {
                        eprintln!("demo pipeline {}: sync recovered", self.instance);
                    }
                    if !locked {
                        if let Ok(mut c) = self.cursor.lock() {
                            *c = new_cursor;
                        }
                    }
                    self.synced.fetch_add(n.max(0) as u64, Ordering::Relaxed);
                    self.invalid.fetch_add(bad.max(0) as u64, Ordering::Relaxed);
                    self.syncs.fetch_add(1, Ordering::Relaxed);
                    self.last_sync_ms.store(now, Ordering::Relaxed);
                    if ((n + bad) as usize) < self.batch {
                        return Ok(());
                    }
                }
                Err(e) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    // One line when a failure streak starts, not one per tick.
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        eprintln!("demo pipeline {}: sync failing: {e}", self.instance);
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn step_down(&self, holder: &str) {
        if self
            .role
            .compare_exchange(
                ROLE_ACTIVE,
                ROLE_STANDBY,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            eprintln!(
                "demo pipeline {}: lost the lock to {holder}; standing by",
                self.instance
            );
        }
    }

    async fn sync_loop(self: Arc<Self>, interval: Duration, stop: CancellationToken) {
        let mut told_no_failover = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            match self.role() {
                ROLE_STANDBY => {
                    if !self.failover {
                        if !told_no_failover {
                            eprintln!(
                                "demo pipeline {}: standby with failover disabled (defect no-failover): never taking over",
                                self.instance
                            );
                            told_no_failover = true;
                        }
                        continue;
                    }
                    match self.try_acquire().await {
                        Ok(None) => {
                            self.role.store(ROLE_ACTIVE, Ordering::Relaxed);
                            self.takeovers.fetch_add(1, Ordering::Relaxed);
                            eprintln!(
                                "demo pipeline {}: the active instance's lock expired; taking over",
                                self.instance
                            );
                        }
                        Ok(Some(_)) => continue,
                        Err(_) => continue,
                    }
                    if let Err(holder) = self.sync_run().await {
                        self.step_down(&holder);
                    }
                }
                _ => {
                    if let Err(holder) = self.sync_run().await {
                        self.step_down(&holder);
                    }
                }
            }
        }
    }

    /// Keeps the lock alive while active.
    async fn heartbeat_loop(self: Arc<Self>, stop: CancellationToken) {
        let every = self.ttl / 3;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if self.role() != ROLE_ACTIVE {
                continue;
            }
            let r: Result<i64, _> = self
                .renew
                .key(keys::LOCK)
                .arg(&self.token)
                .arg(self.ttl_ms())
                .invoke_async(&mut self.conn())
                .await;
            if let Ok(0) = r {
                let holder: Option<String> = redis::cmd("GET")
                    .arg(keys::LOCK)
                    .query_async(&mut self.conn())
                    .await
                    .unwrap_or(None);
                self.step_down(&holder.unwrap_or_default());
            }
        }
    }

    async fn release(&self) {
        if self.role() != ROLE_ACTIVE {
            return;
        }
        let r: Result<i64, _> = redis::Script::new(RELEASE_LUA)
            .key(keys::LOCK)
            .arg(&self.token)
            .invoke_async(&mut self.conn())
            .await;
        if let Ok(1) = r {
            eprintln!("demo pipeline {}: lock released", self.instance);
        }
    }
}

/// What the sink holds (also the source size, to count records not synced yet or lost).
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct SinkStats {
    source: u64,
    records: u64,
    distinct: u64,
    duplicates: u64,
    unsynced: u64,
}

async fn sink_stats(mut c: ConnectionManager) -> Result<SinkStats, redis::RedisError> {
    let (source, records, distinct): (u64, Option<u64>, u64) = redis::pipe()
        .cmd("XLEN")
        .arg(STREAM)
        .cmd("GET")
        .arg(keys::SINK_WRITES)
        .cmd("HLEN")
        .arg(keys::SINK)
        .query_async(&mut c)
        .await?;
    let records = records.unwrap_or(0);
    Ok(SinkStats {
        source,
        records,
        distinct,
        duplicates: records.saturating_sub(distinct),
        unsynced: source.saturating_sub(distinct),
    })
}

async fn ping(c: &ConnectionManager) -> Result<(), String> {
    let fut = async {
        let mut c = c.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(Duration::from_secs(1), fut)
        .await
        .map_err(|_| "Redis did not answer within 1s".to_string())?
}

fn json_response(status: StatusCode, v: serde_json::Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn health(State(p): State<Arc<Pipeline>>) -> Response {
    let role = role_name(p.role());
    match ping(&p.conn).await {
        Ok(()) => json_response(
            StatusCode::OK,
            serde_json::json!({"status": "ok", "instance": p.instance, "role": role}),
        ),
        Err(reason) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unavailable", "instance": p.instance, "role": role, "reason": reason}),
        ),
    }
}

async fn sink(State(p): State<Arc<Pipeline>>) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), sink_stats(p.conn())).await {
        Ok(Ok(s)) => json_response(StatusCode::OK, serde_json::to_value(s).unwrap_or_default()),
        Ok(Err(e)) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": e.to_string()}),
        ),
        Err(_) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "Redis did not answer within 2s"}),
        ),
    }
}

async fn metrics(State(p): State<Arc<Pipeline>>) -> Response {
    let mut out = String::with_capacity(2048);
    let local_ms = p.last_sync_ms.load(Ordering::Relaxed);
    // Stack-wide freshness: the last sync by any instance, as recorded in Redis, so a
    // standby's scrape shows whether the stack as a whole is still syncing.
    let global: Option<u64> = {
        let mut c = p.conn();
        let cmd = redis::cmd("GET").arg(keys::LAST_SYNC_MS).to_owned();
        tokio::time::timeout(
            Duration::from_secs(1),
            cmd.query_async::<Option<u64>>(&mut c),
        )
        .await
        .ok()
        .and_then(|r| r.ok())
        .flatten()
    };
    let last_ms = global.unwrap_or(local_ms).max(local_ms);
    single(
        &mut out,
        "pipeline_last_sync_timestamp_seconds",
        "gauge",
        "Unix time of the last successful sync run by any instance (0: never).",
        last_ms as f64 / 1000.0,
    );
    if last_ms > 0 {
        single(
            &mut out,
            "pipeline_freshness_seconds",
            "gauge",
            "Seconds since the last successful sync run by any instance.",
            crate::now_ms().saturating_sub(last_ms) as f64 / 1000.0,
        );
    }
    single(
        &mut out,
        "pipeline_instance_last_sync_timestamp_seconds",
        "gauge",
        "Unix time of this instance's last successful sync run (0: never).",
        local_ms as f64 / 1000.0,
    );
    single(
        &mut out,
        "pipeline_records_synced_total",
        "counter",
        "Records this instance wrote to the sink.",
        p.synced.load(Ordering::Relaxed) as f64,
    );
    single(
        &mut out,
        "pipeline_records_invalid_total",
        "counter",
        "Records the sink's validation step rejected (malformed, or not carrying their id).",
        p.invalid.load(Ordering::Relaxed) as f64,
    );
    single(
        &mut out,
        "pipeline_sync_failures_total",
        "counter",
        "Sync runs of this instance that failed.",
        p.failures.load(Ordering::Relaxed) as f64,
    );
    single(
        &mut out,
        "pipeline_syncs_total",
        "counter",
        "Successful sync batches of this instance.",
        p.syncs.load(Ordering::Relaxed) as f64,
    );
    single(
        &mut out,
        "pipeline_active",
        "gauge",
        "1 when this instance syncs (holds the lock, or runs without one).",
        if p.role() == ROLE_STANDBY { 0.0 } else { 1.0 },
    );
    single(
        &mut out,
        "pipeline_takeovers_total",
        "counter",
        "Times this standby took the lock over.",
        p.takeovers.load(Ordering::Relaxed) as f64,
    );
    if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(1), sink_stats(p.conn())).await {
        for (name, help, v) in [
            (
                "pipeline_source_records",
                "Records in the source stream.",
                s.source,
            ),
            (
                "pipeline_sink_records",
                "Records written to the sink, duplicates included.",
                s.records,
            ),
            (
                "pipeline_sink_distinct_records",
                "Distinct records in the sink.",
                s.distinct,
            ),
            (
                "pipeline_sink_duplicate_records",
                "Sink writes of a record already there.",
                s.duplicates,
            ),
        ] {
            single(&mut out, name, "gauge", help, v as f64);
        }
    }
    crate::metrics::process(&mut out);
    let mut r = Response::new(Body::from(out));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// `--source-rate`: the upstream system, appending `rate` records per second to the source
/// stream in ten pipelined batches a second (ids `src-<n>`, apart from the API's items).
async fn source_loop(mut c: ConnectionManager, rate: u32, stop: CancellationToken) {
    const TICKS: u32 = 10;
    let mut tick = tokio::time::interval(Duration::from_secs(1) / TICKS);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Spread the remainder so the ten batches of a second add up to exactly `rate`.
    let mut n = 0u32;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let count = rate * (n % TICKS + 1) / TICKS - rate * (n % TICKS) / TICKS;
        n = n.wrapping_add(1);
        if count == 0 {
            continue;
        }
        let first: Result<u64, _> = redis::cmd("INCRBY")
            .arg(keys::SOURCE_SEQ)
            .arg(count)
            .query_async(&mut c)
            .await;
        // Redis down: the upstream waits for it like any writer would.
        let Ok(last) = first else { continue };
        let mut pipe = redis::pipe();
        for i in (last + 1 - count as u64)..=last {
            let id = format!("src-{i}");
            let json = format!(r#"{{"id":"{id}","kind":"event","seq":{i}}}"#);
            pipe.cmd("XADD")
                .arg(STREAM)
                .arg("MAXLEN")
                .arg("~")
                .arg(1_000_000)
                .arg("*")
                .arg("id")
                .arg(&id)
                .arg("json")
                .arg(json)
                .ignore();
        }
        let _: Result<(), _> = pipe.query_async(&mut c).await;
    }
}

async fn wait_for_redis(
    c: &ConnectionManager,
    url: &str,
    within: Duration,
    stop: &CancellationToken,
) -> Result<(), DemoError> {
    let deadline = Instant::now() + within;
    let mut told = false;
    loop {
        let reason = match ping(c).await {
            Ok(()) => return Ok(()),
            Err(r) => r,
        };
        if Instant::now() >= deadline || stop.is_cancelled() {
            return Err(DemoError::RedisUnreachable {
                url: url.to_string(),
                reason,
            });
        }
        if !told {
            eprintln!("demo pipeline: waiting for Redis at {url}: {reason}");
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs one pipeline instance until SIGINT/SIGTERM.
pub async fn run(args: PipelineArgs) -> Result<(), DemoError> {
    let defects = Defects::resolve(&args.defects)?;
    if args.lock_ttl < Duration::from_millis(300) || args.interval.is_zero() || args.batch == 0 {
        return Err(DemoError::Invalid(
            "--lock-ttl must be at least 300ms, --interval and --batch above zero".into(),
        ));
    }
    let instance = args
        .instance_name
        .clone()
        .unwrap_or_else(|| format!("pipeline-{}", std::process::id()));
    let client =
        redis::Client::open(args.redis.as_str()).map_err(|source| DemoError::RedisUrl {
            url: args.redis.clone(),
            source,
        })?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|source| {
        DemoError::RedisUrl {
            url: args.redis.clone(),
            source,
        }
    })?;

    let stop = crate::cancel_on_signal(format!("demo pipeline {instance}"))?;

    wait_for_redis(&conn, &args.redis, Duration::from_secs(30), &stop).await?;

    let locking = !defects.has(Defect::NoSingleInstance);
    let p = Arc::new(Pipeline {
        conn,
        token: format!(
            "{instance}:{}:{:08x}:{}",
            std::process::id(),
            rand::random::<u32>(),
            if args.standby { "standby" } else { "primary" }
        ),
        instance: instance.clone(),
        failover: !defects.has(Defect::NoFailover),
        ttl: args.lock_ttl,
        batch: args.batch,
        corrupt_every: if defects.has(Defect::CorruptRecords) {
            CORRUPT_EVERY
        } else {
            0
        },
        role: AtomicU8::new(ROLE_STANDBY),
        cursor: Mutex::new(String::new()),
        synced: AtomicU64::new(0),
        invalid: AtomicU64::new(0),
        failing: AtomicBool::new(false),
        failures: AtomicU64::new(0),
        syncs: AtomicU64::new(0),
        takeovers: AtomicU64::new(0),
        last_sync_ms: AtomicU64::new(0),
        sync: redis::Script::new(SYNC_LUA),
        renew: redis::Script::new(RENEW_LUA),
    });

    let unreachable = |e: redis::RedisError| DemoError::RedisUnreachable {
        url: args.redis.clone(),
        reason: e.to_string(),
    };
    if !locking {
        if args.standby {
            eprintln!("demo pipeline {instance}: --standby ignored: defect no-single-instance means no lock to stand by on");
        }
        // Own cursor, starting where the stack's committed cursor is.
        let start: Option<String> = redis::cmd("GET")
            .arg(keys::CURSOR)
            .query_async(&mut p.conn())
            .await
            .map_err(unreachable)?;
        if let Ok(mut c) = p.cursor.lock() {
            *c = start.unwrap_or_else(|| "0-0".into());
        }
        p.role.store(ROLE_UNLOCKED, Ordering::Relaxed);
    } else if !args.standby {
        // A dead holder's lock expires within one TTL; a live one keeps renewing it.
        let deadline = Instant::now() + args.lock_ttl + Duration::from_millis(500);
        loop {
            match p.try_acquire().await.map_err(unreachable)? {
                None => {
                    p.role.store(ROLE_ACTIVE, Ordering::Relaxed);
                    break;
                }
                // A standby took over from us (we were restarted after a crash or stall):
                // that is failover working, not a duplicate; wait as the standby now.
                Some(holder) if holder.ends_with(STANDBY_ORIGIN) => {
                    eprintln!("demo pipeline {instance}: the lock is held by {holder}, a standby that took over; joining as standby");
                    break;
                }
                Some(holder) => {
                    if Instant::now() >= deadline {
                        return Err(DemoError::PipelineLockHeld {
                            holder,
                            ttl_ms: args.lock_ttl.as_millis(),
                        });
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let addr = format!("{}:{}", args.host, args.port);
    let mut listener = tokio::net::TcpListener::bind(&addr).await;
    if args.any_port_if_taken
        && matches!(&listener, Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
    {
        eprintln!("demo pipeline {instance}: {addr} is taken; listening on any free port");
        listener = tokio::net::TcpListener::bind(format!("{}:0", args.host)).await;
    }
    let listener = match listener {
        Ok(l) => l,
        Err(source) => {
            p.release().await;
            return Err(DemoError::Bind { addr, source });
        }
    };
    let local = listener.local_addr().map_err(DemoError::Serve)?;
    eprintln!(
        "demo pipeline {instance}: listening on http://{local} (role: {}, defects: {})",
        role_name(p.role()),
        defects.describe()
    );

    let sync = tokio::spawn(p.clone().sync_loop(args.interval, stop.clone()));
    let feed = (args.source_rate > 0)
        .then(|| tokio::spawn(source_loop(p.conn(), args.source_rate, stop.clone())));
    let beat = tokio::spawn(p.clone().heartbeat_loop(stop.clone()));
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/sink", get(sink))
        .with_state(p.clone());
    let who = format!("demo pipeline {instance}");
    let result = crate::server::serve(listener, app, stop.clone(), &who).await;
    let _ = sync.await;
    let _ = beat.await;
    if let Some(feed) = feed {
        let _ = feed.await;
    }
    // Hand over at once instead of making the standby wait for the TTL.
    p.release().await;
    result
}
