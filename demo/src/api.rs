//! `gauntlet demo api`: the seed system's HTTP API in miniature.
//!
//! Hot path: handlers count their own route/status in fixed atomic tables (no middleware,
//! no label maps), items are kept as finished JSON bytes, and the in-memory store is one
//! `RwLock` held only for a map operation.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use tokio::sync::broadcast;

use crate::metrics::{header as prom_header, single};
use crate::state::{ApiMetrics, AppState, Route, WsConfig, N_STATUS, ROUTES, STATUSES};
use crate::store::{MemoryStore, RedisStore, Store};
use crate::ws;
use crate::{ApiArgs, Defect, Defects, DemoError};

/// Most items `GET /api/items` returns.
const LIST_LIMIT: usize = 100;

fn respond(
    st: &AppState,
    route: Route,
    status: StatusCode,
    body: impl Into<Body>,
    ctype: &'static str,
) -> Response {
    st.metrics.count(route, status);
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

const JSON: &str = "application/json";

fn json(st: &AppState, route: Route, status: StatusCode, body: impl Into<Body>) -> Response {
    respond(st, route, status, body, JSON)
}

fn error_body(msg: &str) -> String {
    serde_json::json!({ "error": msg }).to_string()
}

fn unavailable(st: &AppState, route: Route, reason: &str) -> Response {
    json(
        st,
        route,
        StatusCode::SERVICE_UNAVAILABLE,
        error_body(&format!("store unavailable: {reason}")),
    )
}

async fn health(State(st): State<Arc<AppState>>) -> Response {
    match tokio::time::timeout(Duration::from_secs(1), st.store.ping()).await {
        Ok(Ok(())) => json(
            &st,
            Route::Health,
            StatusCode::OK,
            Bytes::from_static(br#"{"status":"ok"}"#),
        ),
        Ok(Err(e)) => json(
            &st,
            Route::Health,
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unavailable", "reason": e.0}).to_string(),
        ),
        Err(_) => json(
            &st,
            Route::Health,
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(
                br#"{"status":"unavailable","reason":"Redis did not answer within 1s"}"#,
            ),
        ),
    }
}

async fn list_items(State(st): State<Arc<AppState>>) -> Response {
    match st.store.list(LIST_LIMIT).await {
        Ok(b) => json(&st, Route::ItemsList, StatusCode::OK, b),
        Err(e) => unavailable(&st, Route::ItemsList, &e.0),
    }
}

async fn get_item(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match st.store.get(&id).await {
        Ok(Some(b)) => json(&st, Route::ItemGet, StatusCode::OK, b),
        Ok(None) => json(
            &st,
            Route::ItemGet,
            StatusCode::NOT_FOUND,
            Bytes::from_static(br#"{"error":"no such item"}"#),
        ),
        Err(e) => unavailable(&st, Route::ItemGet, &e.0),
    }
}

async fn delete_item(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match st.store.delete(&id).await {
        Ok(true) => respond(
            &st,
            Route::ItemDelete,
            StatusCode::NO_CONTENT,
            Body::empty(),
            JSON,
        ),
        Ok(false) => json(
            &st,
            Route::ItemDelete,
            StatusCode::NOT_FOUND,
            Bytes::from_static(br#"{"error":"no such item"}"#),
        ),
        Err(e) => unavailable(&st, Route::ItemDelete, &e.0),
    }
}

async fn create_item(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let rest = match body_members(&body, "id") {
        Ok(r) => r,
        Err(e) => {
            return json(
                &st,
                Route::ItemCreate,
                StatusCode::BAD_REQUEST,
                error_body(&format!("body must be a JSON object: {e}")),
            )
        }
    };
    match st.store.create(&rest).await {
        Ok((id, item)) => {
            if st.events.receiver_count() > 0 {
                if let Ok(text) = axum::extract::ws::Utf8Bytes::try_from(item.clone()) {
                    // No subscriber listening is not an error.
                    let _ = st.events.send(text);
                }
            }
            let mut r = json(&st, Route::ItemCreate, StatusCode::CREATED, item);
            if let Ok(loc) = HeaderValue::from_str(&format!("/api/items/{id}")) {
                r.headers_mut().insert(header::LOCATION, loc);
            }
            r
        }
        Err(e) => unavailable(&st, Route::ItemCreate, &e.0),
    }
}

async fn create_session(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let rest = match body_members(&body, "token") {
        Ok(r) => r,
        Err(e) => {
            return json(
                &st,
                Route::SessionCreate,
                StatusCode::BAD_REQUEST,
                error_body(&format!("body must be a JSON object: {e}")),
            )
        }
    };
    match st.store.create_session(&rest).await {
        Ok((token, session)) => {
            let mut r = json(&st, Route::SessionCreate, StatusCode::CREATED, session);
            if let Ok(loc) = HeaderValue::from_str(&format!("/api/sessions/{token}")) {
                r.headers_mut().insert(header::LOCATION, loc);
            }
            r
        }
        Err(e) => unavailable(&st, Route::SessionCreate, &e.0),
    }
}

async fn get_session(State(st): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    match st.store.get_session(&token).await {
        Ok(Some(b)) => json(&st, Route::SessionGet, StatusCode::OK, b),
        Ok(None) => json(
            &st,
            Route::SessionGet,
            StatusCode::NOT_FOUND,
            Bytes::from_static(br#"{"error":"no such session"}"#),
        ),
        Err(e) => unavailable(&st, Route::SessionGet, &e.0),
    }
}

/// Checks that `body` is one JSON object and returns its members without the braces
/// (`"a":1,"b":2`), ready to follow the server-assigned `reserved` key ("id", "token"). A
/// client-sent `reserved` key is dropped; only then is the body re-serialized.
fn body_members<'b>(body: &'b [u8], reserved: &str) -> Result<Cow<'b, [u8]>, String> {
    /// Deserializes a map key into "is it the reserved one".
    struct KeyIs<'k>(&'k str);
    impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_str(self)
        }
    }
    impl Visitor<'_> for KeyIs<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E>(self, v: &str) -> Result<bool, E> {
            Ok(v == self.0)
        }
    }
    struct Obj<'k>(&'k str);
    impl<'de> Visitor<'de> for Obj<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut found = false;
            while let Some(k) = map.next_key_seed(KeyIs(self.0))? {
                found |= k;
                map.next_value::<IgnoredAny>()?;
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = de
        .deserialize_map(Obj(reserved))
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    if found {
        let mut obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(body).map_err(|e| e.to_string())?;
        obj.remove(reserved);
        let s = serde_json::to_vec(&obj).map_err(|e| e.to_string())?;
        return Ok(Cow::Owned(strip_braces(&s).to_vec()));
    }
    Ok(Cow::Borrowed(strip_braces(body)))
}

/// `  { members }  ` -> `members` (input already validated as one object).
fn strip_braces(b: &[u8]) -> &[u8] {
    let t = b.trim_ascii();
    let inner = t
        .strip_prefix(b"{")
        .and_then(|t| t.strip_suffix(b"}"))
        .unwrap_or(t);
    inner.trim_ascii()
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let mut out = String::with_capacity(4096);
    prom_header(
        &mut out,
        "demo_http_requests_total",
        "counter",
        "HTTP requests answered, by route and status.",
    );
    // Count this scrape first, so it appears in its own output.
    st.metrics.count(Route::Metrics, StatusCode::OK);
    for (r, (_, rname)) in ROUTES.iter().enumerate() {
        for s in 0..N_STATUS {
            let n = st.metrics.requests[r][s].load(Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            let status = STATUSES
                .get(s)
                .map(|c| c.to_string())
                .unwrap_or_else(|| "other".into());
            out.push_str(&format!(
                "demo_http_requests_total{{route=\"{rname}\",status=\"{status}\"}} {n}\n"
            ));
        }
    }
    let m = &st.metrics;
    single(
        &mut out,
        "demo_http_errors_total",
        "counter",
        "HTTP responses with a 5xx status.",
        m.errors.load(Ordering::Relaxed) as f64,
    );
    single(
        &mut out,
        "demo_ws_connections_open",
        "gauge",
        "WebSocket connections the server holds state for.",
        m.ws_open.load(Ordering::Relaxed) as f64,
    );
    single(
        &mut out,
        "demo_ws_connections_total",
        "counter",
        "WebSocket connections accepted.",
        m.ws_total.load(Ordering::Relaxed) as f64,
    );
    single(
        &mut out,
        "demo_ws_idle_closed_total",
        "counter",
        "WebSocket connections closed by the server for idleness (no pong).",
        m.ws_idle_closed.load(Ordering::Relaxed) as f64,
    );
    single(
        &mut out,
        "demo_ws_messages_sent_total",
        "counter",
        "WebSocket text messages sent (echoes and item events).",
        m.ws_messages_out.load(Ordering::Relaxed) as f64,
    );
    let leaked = st.leaked.lock().map(|v| v.len()).unwrap_or(0);
    single(
        &mut out,
        "demo_ws_leaked_states",
        "gauge",
        "Per-connection states kept after their client left (ws-leak defect).",
        leaked as f64,
    );
    single(
        &mut out,
        "demo_redis_pool_in_use",
        "gauge",
        "Redis connections in use (pooled checked out, or per-request open).",
        st.store.redis_in_use().unwrap_or(0) as f64,
    );
    if let Some(n) = st.store.redis_connections_created() {
        single(
            &mut out,
            "demo_redis_connections_created_total",
            "counter",
            "Redis connections opened (pool size when pooled).",
            n as f64,
        );
    }
    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), st.store.count()).await {
        single(
            &mut out,
            "demo_items_total",
            "gauge",
            "Items in the store.",
            n as f64,
        );
    }
    crate::metrics::process(&mut out);
    let mut r = Response::new(Body::from(out));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

async fn not_found(State(st): State<Arc<AppState>>) -> Response {
    json(
        &st,
        Route::Other,
        StatusCode::NOT_FOUND,
        Bytes::from_static(br#"{"error":"not found"}"#),
    )
}

async fn method_not_allowed(State(st): State<Arc<AppState>>) -> Response {
    json(
        &st,
        Route::Other,
        StatusCode::METHOD_NOT_ALLOWED,
        Bytes::from_static(br#"{"error":"method not allowed"}"#),
    )
}

/// `--max-concurrency` then `--delay`: wait for a permit (held until the answer is
/// ready, so the delay is service time), sleep, run the handler.
async fn delay(
    State(st): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // The semaphore is never closed, so acquiring only waits.
    let _permit = match &st.limit {
        Some(s) => s.acquire().await.ok(),
        None => None,
    };
    if !st.delay.is_zero() {
        tokio::time::sleep(st.delay).await;
    }
    next.run(req).await
}

pub(crate) fn router(st: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/api/items", get(list_items).post(create_item))
        .route("/api/items/{id}", get(get_item).delete(delete_item))
        .route("/api/sessions", post(create_session))
        .route("/api/sessions/{token}", get(get_session))
        .route_layer(axum::middleware::from_fn_with_state(st.clone(), delay));
    Router::new()
        .merge(api)
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/ws", get(ws::upgrade))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(st)
}

/// Runs the API until SIGINT/SIGTERM.
pub async fn run(args: ApiArgs) -> Result<(), DemoError> {
    let defects = Defects::resolve(&args.defects)?;
    let store = match &args.redis {
        None => Store::Memory(MemoryStore::new(args.max_items)),
        Some(url) => Store::Redis(Box::new(RedisStore::new(
            url,
            !defects.has(Defect::NoPool),
            args.pool_size,
            args.redis_retry,
        )?)),
    };
    if args.ws_heartbeat.is_zero() || args.ws_idle_timeout.is_zero() {
        return Err(DemoError::Invalid(
            "--ws-heartbeat and --ws-idle-timeout must be above zero".into(),
        ));
    }
    let (events, _) = broadcast::channel(1024);
    let shutdown = crate::cancel_on_signal("demo api".into())?;
    let st = Arc::new(AppState {
        store,
        metrics: ApiMetrics::new(),
        events,
        ws: WsConfig {
            idle_timeout: args.ws_idle_timeout,
            heartbeat: args.ws_heartbeat,
            leak: defects.has(Defect::WsLeak),
        },
        leaked: Mutex::new(Vec::new()),
        shutdown: shutdown.clone(),
        delay: args.delay,
        limit: (args.max_concurrency > 0)
            .then(|| tokio::sync::Semaphore::new(args.max_concurrency)),
    });
    let addr = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| DemoError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener.local_addr().map_err(DemoError::Serve)?;
    eprintln!(
        "demo api: listening on http://{local} (store: {}, defects: {})",
        args.redis.as_deref().unwrap_or("memory"),
        defects.describe()
    );
    crate::server::serve(listener, router(st), shutdown, "demo api").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_of_objects() {
        assert_eq!(
            &*body_members(br#" {"a": 1, "b":"x"} "#, "id").unwrap(),
            br#""a": 1, "b":"x""#
        );
        assert_eq!(&*body_members(b"{}", "id").unwrap(), b"");
        assert_eq!(
            &*body_members(br#"{"id":5,"a":1}"#, "id").unwrap(),
            br#""a":1"#
        );
        assert!(body_members(b"[1]", "id").is_err());
        assert!(body_members(b"{\"a\":1} x", "id").is_err());
        assert!(body_members(b"", "id").is_err());
        assert!(body_members(br#"{"a":}"#, "id").is_err());
        assert_eq!(
            &*body_members(br#"{"token":"t","u":1}"#, "token").unwrap(),
            br#""u":1"#
        );
    }
}
