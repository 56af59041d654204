//! The API's shared state: its routes, its counters, the WebSocket settings and the
//! `ws-leak` registry. Read by the HTTP handlers (`api`) and the WebSocket handlers (`ws`),
//! so neither of them imports the other's internals.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use axum::http::StatusCode;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// What a request was, for the per-route counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Health,
    ItemsList,
    ItemGet,
    ItemCreate,
    ItemDelete,
    SessionCreate,
    SessionGet,
    Metrics,
    Ws,
    Other,
}

/// Each route's label on /metrics, in `Route` order (the counters' index).
pub(crate) const ROUTES: [(Route, &str); 10] = [
    (Route::Health, "/health"),
    (Route::ItemsList, "GET /api/items"),
    (Route::ItemGet, "GET /api/items/{id}"),
    (Route::ItemCreate, "POST /api/items"),
    (Route::ItemDelete, "DELETE /api/items/{id}"),
    (Route::SessionCreate, "POST /api/sessions"),
    (Route::SessionGet, "GET /api/sessions/{token}"),
    (Route::Metrics, "/metrics"),
    (Route::Ws, "/ws"),
    (Route::Other, "other"),
];

/// Status codes with their own counter; anything else is counted as "other".
pub(crate) const STATUSES: [u16; 10] = [101, 200, 201, 204, 400, 404, 405, 413, 500, 503];
pub(crate) const N_STATUS: usize = STATUSES.len() + 1;

/// The API's counters, exported on /metrics.
pub(crate) struct ApiMetrics {
    pub requests: [[AtomicU64; N_STATUS]; ROUTES.len()],
    pub errors: AtomicU64,
    pub ws_open: AtomicI64,
    pub ws_total: AtomicU64,
    pub ws_idle_closed: AtomicU64,
    pub ws_messages_out: AtomicU64,
}

impl ApiMetrics {
    pub(crate) fn new() -> Self {
        ApiMetrics {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            errors: AtomicU64::new(0),
            ws_open: AtomicI64::new(0),
            ws_total: AtomicU64::new(0),
            ws_idle_closed: AtomicU64::new(0),
            ws_messages_out: AtomicU64::new(0),
        }
    }

    pub(crate) fn count(&self, route: Route, status: StatusCode) {
        let code = status.as_u16();
        let s = STATUSES
            .iter()
            .position(|&c| c == code)
            .unwrap_or(N_STATUS - 1);
        let r = route as usize;
        self.requests[r][s].fetch_add(1, Ordering::Relaxed);
        if code >= 500 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Everything the API's handlers share.
pub(crate) struct AppState {
    pub store: Store,
    pub metrics: ApiMetrics,
    /// Created items, pushed to WebSocket subscribers.
    pub events: broadcast::Sender<Utf8Bytes>,
    pub ws: WsConfig,
    /// The `ws-leak` defect's registry: per-connection state that is never removed.
    pub leaked: Mutex<Vec<LeakedConn>>,
    pub shutdown: CancellationToken,
    /// `--delay`: added before every `/api/...` answer (a slower release, for the gate's
    /// tests).
    pub delay: Duration,
    /// `--max-concurrency`: permits for /api/... requests in service (fair: FIFO).
    pub limit: Option<tokio::sync::Semaphore>,
}

/// WebSocket settings from the command line and the defects.
pub(crate) struct WsConfig {
    pub idle_timeout: Duration,
    pub heartbeat: Duration,
    pub leak: bool,
}

/// A connection's state kept forever by the `ws-leak` defect.
pub(crate) struct LeakedConn {
    _buffer: Vec<u8>,
    _subscription: broadcast::Receiver<Utf8Bytes>,
}

/// Bytes of state each connection keeps with the `ws-leak` defect.
const LEAK_BYTES: usize = 64 * 1024;

impl LeakedConn {
    pub(crate) fn new(subscription: broadcast::Receiver<Utf8Bytes>) -> Self {
        LeakedConn {
            // Filled, not just reserved, so the leak shows in resident memory.
            _buffer: vec![0xA5; LEAK_BYTES],
            _subscription: subscription,
        }
    }
}
