//! The demo stack: a small copy of a typical production setup (HTTP API with WebSockets,
//! Redis, an Airbyte-like sync worker), each part a `gauntlet demo <component>` command,
//! with the seed system's known defects as switchable `--defect` flags (all off by default:
//! the "fixed" configuration).
//!
//! Components log to stderr only (one line per notable event); they run until SIGINT or
//! SIGTERM and then shut down cleanly.
//!
//! A crate apart from the harness (it uses none of it), so a harness built without the
//! demo (`--no-default-features` of `gauntlet`) does not compile axum and the servers.

pub mod api;
mod http;
pub mod metrics;
pub mod pipeline;
pub mod redis_server;
mod server;
mod state;
mod store;
pub mod up;
mod ws;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// `gauntlet demo ...`
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    #[command(subcommand)]
    pub component: DemoComponent,
}

/// One part of the demo stack, or all of it.
#[derive(clap::Subcommand, Debug)]
pub enum DemoComponent {
    /// The HTTP API (items, sessions, /metrics, /ws WebSocket); in memory, or in Redis with --redis.
    Api(ApiArgs),
    /// The Airbyte-like sync worker: moves records from the API's Redis stream to a sink.
    Pipeline(PipelineArgs),
    /// redis-server (Debian's package) with the stack's persistence settings; replaces this
    /// process, so signals sent to it reach redis-server itself.
    Redis(RedisArgs),
    /// The whole stack as local child processes: redis-server, api, pipeline and its standby.
    Up(UpArgs),
    /// Check one component once: an http:// URL must answer 200, a redis:// URL must answer
    /// PING. Exit 0 when healthy. For container health checks (the images have no shell).
    Probe(ProbeArgs),
}

/// A known defect of the seed system, switched on by `--defect NAME` (repeatable) or the
/// comma-separated GAUNTLET_DEMO_DEFECTS environment variable.
/// Components ignore the defects that do not concern them, so one list fits the whole stack.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Defect {
    /// redis-server runs with no AOF and no RDB: a crash loses every key.
    RedisNoPersistence,
    /// No single-instance lock: a second pipeline instance runs and syncs every record again.
    NoSingleInstance,
    /// A standby pipeline never takes over, so a stalled active instance stops all syncing.
    NoFailover,
    /// WebSocket per-connection state is kept forever, even after the client vanished.
    WsLeak,
    /// A new Redis connection per API request instead of a pool.
    NoPool,
    /// The pipeline's transform mangles every 10th record (its JSON cut in half), so the
    /// sink's validation step rejects it.
    CorruptRecords,
}

impl Defect {
    /// The flag value, as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Defect::RedisNoPersistence => "redis-no-persistence",
            Defect::NoSingleInstance => "no-single-instance",
            Defect::NoFailover => "no-failover",
            Defect::WsLeak => "ws-leak",
            Defect::NoPool => "no-pool",
            Defect::CorruptRecords => "corrupt-records",
        }
    }
}

/// Environment variable with more defects (comma-separated names), added to the `--defect`
/// flags; container setups use it because a list of flags cannot be templated there.
pub const DEFECTS_ENV: &str = "GAUNTLET_DEMO_DEFECTS";

/// The set of defects switched on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Defects(BTreeSet<Defect>);

impl Defects {
    pub fn new(list: &[Defect]) -> Self {
        Defects(list.iter().copied().collect())
    }
    /// The `--defect` flags plus the names in [`DEFECTS_ENV`].
    pub fn resolve(flags: &[Defect]) -> Result<Self, DemoError> {
        let mut set = Defects::new(flags);
        if let Ok(list) = std::env::var(DEFECTS_ENV) {
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let d = <Defect as clap::ValueEnum>::from_str(name, false).map_err(|_| {
                    DemoError::Invalid(format!(
                        "{DEFECTS_ENV}: unknown defect {name:?}; valid: redis-no-persistence, no-single-instance, no-failover, ws-leak, no-pool, corrupt-records"
                    ))
                })?;
                set.0.insert(d);
            }
        }
        Ok(set)
    }
    pub fn has(&self, d: Defect) -> bool {
        self.0.contains(&d)
    }
    pub fn iter(&self) -> impl Iterator<Item = Defect> + '_ {
        self.0.iter().copied()
    }
    /// "none" or a comma-separated list, for logs.
    pub fn describe(&self) -> String {
        if self.0.is_empty() {
            "none".to_string()
        } else {
            self.iter().map(Defect::name).collect::<Vec<_>>().join(",")
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 3s, 1m)"))
}

/// `gauntlet demo api`
#[derive(clap::Args, Debug, Clone)]
pub struct ApiArgs {
    /// TCP port to listen on (0: any free port; the chosen one is logged).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Keep items in this Redis (e.g. redis://127.0.0.1:6379); without it items live in memory.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Ride through a Redis restart: a Redis call that fails is tried again (every 50ms)
    /// for up to this long before the request gets a 503. 0 (default): no retry.
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    pub redis_retry: Duration,
    /// Switch a defect on (repeatable). The API uses `ws-leak` and `no-pool`.
    #[arg(long = "defect", value_name = "NAME")]
    pub defects: Vec<Defect>,
    /// A WebSocket client that sent nothing (not even a pong) for this long is disconnected.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub ws_idle_timeout: Duration,
    /// Interval of the server's WebSocket heartbeat pings.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub ws_heartbeat: Duration,
    /// In-memory store only: keep at most this many items (oldest evicted), so a long load
    /// test does not grow memory without bound.
    #[arg(long, default_value_t = 100_000)]
    pub max_items: usize,
    /// Redis connections in the pool (multiplexed: each carries many requests at once).
    #[arg(long, default_value_t = 4)]
    pub pool_size: usize,
    /// Sleep this long before answering each /api/... request (a slower build, to see a
    /// latency regression); /health, /metrics and /ws are not delayed.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub delay: Duration,
    /// At most this many /api/... requests are served at once; the others wait their turn
    /// (first come, first served). With --delay as the service time S, the API's capacity
    /// is N / S requests per second, so a capacity search has a known answer. 0: no limit.
    #[arg(long, default_value_t = 0)]
    pub max_concurrency: usize,
}

/// `gauntlet demo pipeline`
#[derive(clap::Args, Debug, Clone)]
pub struct PipelineArgs {
    /// TCP port of /health, /metrics and /sink (0: any free port; the chosen one is logged).
    #[arg(long, default_value_t = 8090)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Redis holding the source stream, the sink, the lock and the cursor.
    #[arg(long, value_name = "URL")]
    pub redis: String,
    /// Name of this instance, shown in the lock and the logs (default: pipeline-<pid>).
    #[arg(long)]
    pub instance_name: Option<String>,
    /// Switch a defect on (repeatable). The pipeline uses `no-single-instance`, `no-failover`
    /// and `corrupt-records`.
    #[arg(long = "defect", value_name = "NAME")]
    pub defects: Vec<Defect>,
    /// Start as a standby: wait while the active instance's heartbeat is fresh, take over
    /// when it stops (unless the `no-failover` defect is on).
    #[arg(long)]
    pub standby: bool,
    /// Time between sync runs.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// Lifetime of the instance lock; the active instance renews it every third of this.
    /// A standby takes over once the lock has not been renewed for this long.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub lock_ttl: Duration,
    /// Most records moved per batch.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// When `--port` is taken, listen on any free port instead (logged) of failing: each
    /// copy of a worker behaves as if it had its own network namespace (a pod), so a
    /// stray duplicate started with the same command still runs.
    #[arg(long)]
    pub any_port_if_taken: bool,
    /// A synthetic upstream: this instance appends this many records per second to the
    /// source stream (besides the items the API creates), so the pipeline can be driven at
    /// a seed-sized throughput without HTTP load. 0: off. Give it to one instance only.
    #[arg(long, default_value_t = 0, value_name = "RECORDS_PER_S")]
    pub source_rate: u32,
}

/// `gauntlet demo redis`
#[derive(clap::Args, Debug, Clone)]
pub struct RedisArgs {
    /// TCP port.
    #[arg(long, default_value_t = 6379)]
    pub port: u16,
    /// Address to listen on (protected mode is switched off when it is not loopback).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Folder for the append-only file.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Switch a defect on (repeatable). Redis uses `redis-no-persistence`.
    #[arg(long = "defect", value_name = "NAME")]
    pub defects: Vec<Defect>,
    /// The redis-server program.
    #[arg(long, default_value = "redis-server")]
    pub redis_server: PathBuf,
}

/// `gauntlet demo up`
#[derive(clap::Args, Debug, Clone)]
pub struct UpArgs {
    /// Ports: api = N, pipeline = N+1, standby pipeline = N+2, redis = N+3.
    #[arg(long, default_value_t = 18080)]
    pub base_port: u16,
    /// Switch a defect on (repeatable); passed to every component.
    #[arg(long = "defect", value_name = "NAME")]
    pub defects: Vec<Defect>,
    /// Folder for Redis data and the append-only file (default: a folder under the system's
    /// temporary folder, named after the base port).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The redis-server program.
    #[arg(long, default_value = "redis-server")]
    pub redis_server: PathBuf,
    /// Longest wait for each component's health check at start.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub start_timeout: Duration,
}

/// `gauntlet demo probe`
#[derive(clap::Args, Debug, Clone)]
pub struct ProbeArgs {
    /// http://HOST:PORT/PATH (must answer 200) or redis://HOST:PORT (must answer PING).
    pub url: String,
    /// Longest wait for the answer.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Why a demo component could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("redis-server not found (looked for {0:?} on PATH): install Debian's redis-server package (apt-get install redis-server)")]
    RedisServerNotFound(PathBuf),
    #[error("cannot start {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid Redis URL {url:?}: {source}")]
    RedisUrl {
        url: String,
        #[source]
        source: ::redis::RedisError,
    },
    #[error("Redis at {url} unreachable: {reason}")]
    RedisUnreachable { url: String, reason: String },
    #[error("another pipeline instance holds the lock ({holder}, renewed within the last {ttl_ms} ms); refusing to run a duplicate. Start this one with --standby to make it a failover standby")]
    PipelineLockHeld { holder: String, ttl_ms: u128 },
    #[error("{what} did not become healthy within {secs} s{detail}")]
    NotHealthy {
        what: String,
        secs: u64,
        detail: String,
    },
    #[error("cannot use folder {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("probe of {url} failed: {reason}")]
    ProbeFailed { url: String, reason: String },
    #[error("invalid argument: {0}")]
    Invalid(String),
}

/// Run one demo component until SIGINT/SIGTERM.
pub async fn run(args: DemoArgs) -> Result<(), DemoError> {
    match args.component {
        DemoComponent::Api(a) => api::run(a).await,
        DemoComponent::Pipeline(a) => pipeline::run(a).await,
        DemoComponent::Redis(a) => redis_server::run(a),
        DemoComponent::Up(a) => up::run(a).await,
        DemoComponent::Probe(a) => up::probe(a).await,
    }
}

/// Resolves when SIGINT or SIGTERM arrives. Install it before serving, so an early signal
/// is not lost.
pub(crate) fn shutdown_signal(
) -> Result<impl std::future::Future<Output = &'static str> + Send + 'static, DemoError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).map_err(DemoError::Signals)?;
    let mut term = signal(SignalKind::terminate()).map_err(DemoError::Signals)?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    })
}

/// A token cancelled when SIGINT or SIGTERM arrives (logged as `who: SIG... received`).
pub(crate) fn cancel_on_signal(
    who: String,
) -> Result<tokio_util::sync::CancellationToken, DemoError> {
    let token = tokio_util::sync::CancellationToken::new();
    let signal = shutdown_signal()?;
    let t = token.clone();
    tokio::spawn(async move {
        let name = signal.await;
        eprintln!("{who}: {name} received, shutting down");
        t.cancel();
    });
    Ok(token)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
