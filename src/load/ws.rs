//! WebSocket virtual users (`[[ws]]`): our own loop on tokio-tungstenite, not goose.
//!
//! Each WebSocket user is one of the closed model's users (the HTTP mix and the `[[ws]]`
//! entries share them by weight, see [`super::ramp::split`]) and is active when the same
//! ramp says so. While active it loops: connect (headers, subprotocol), send each message
//! and wait for its matching reply (the round trip is timed), hold the connection open
//! (reading, so pings are answered; sending its own pings if asked), close with 1000,
//! think, connect again. Turning inactive or the end of the stages closes the connection
//! normally; the hard stop drops it.
//!
//! Figures are folded here (one histogram, counters) and sent once as
//! [`EventKind::Ws`] when every WebSocket user stopped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::checks::{self, JsonBody};
use super::ramp::{self, Ramp};
use super::tls::Tls;
use super::{Census, Counted, LoadError};
use crate::event::{EventKind, EventSink, WsTotals};
use crate::scenario::load_plan::{Check, Think};
use crate::scenario::model::HttpVersion;
use crate::scenario::template::RenderCtx;
use crate::scenario::{Plan, WsPlan};

/// After the planned end, a closing handshake gets this long before the users are dropped.
const GRACE: Duration = Duration::from_secs(2);
/// How long our close frame and the server's answer may take.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// A user whose connect failed waits at least this long before the next try.
const RETRY: Duration = Duration::from_millis(100);
/// Each connection's read buffer (it grows for a larger message).
const READ_BUFFER: usize = 8 * 1024;
/// A user's RNG stream: its number, plus this times how often it was active before.
const GENERATION: u64 = 1 << 32;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Ws = WebSocketStream<Box<dyn Io>>;

/// How a connection's life ended.
enum End {
    /// We closed it (hold over, user off, load ending): the user goes on.
    Done,
    /// The server closed it, or it broke: already counted.
    Lost,
    /// The load is over: nothing more.
    Stop,
}

struct Users {
    plan: Arc<Plan>,
    /// One per `[[ws]]` entry: the TLS client of a wss:// URL.
    tls: Vec<Option<Tls>>,
    think: Think,
    ramp: Ramp,
    census: Arc<Census>,
    connect_timeout: Duration,
    /// The planned end: connections close normally, no new one opens.
    ending: CancellationToken,
    /// The hard stop: everything is dropped.
    cancel: CancellationToken,
    totals: Mutex<WsTotals>,
    open: AtomicU32,
}

/// One open connection, counted while it lives.
struct Open<'a>(&'a Users);

impl<'a> Open<'a> {
    fn new(u: &'a Users) -> Open<'a> {
        let n = u.open.fetch_add(1, Ordering::Relaxed) + 1;
        let mut t = u.totals();
        t.peak = t.peak.max(n);
        Open(u)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Run the WebSocket users `numbers` (1-based user number, `[[ws]]` index) to the end
/// of the ramp (or until `cancel`), then send their figures.
pub(crate) async fn run(
    plan: &Arc<Plan>,
    think: Think,
    ramp: Ramp,
    census: &Arc<Census>,
    numbers: Vec<(u32, usize)>,
    events: &EventSink,
    cancel: &CancellationToken,
) -> Result<(), LoadError> {
    if plan.ws.is_empty() {
        return Ok(());
    }
    let mut tls = Vec::with_capacity(plan.ws.len());
    for w in &plan.ws {
        tls.push(if w.url.scheme() == "wss" {
            let settings = plan.tls.clone().unwrap_or_default();
            let mut https = w.url.clone();
            // Only its host is read (for SNI): any http(s) URL with it does.
            let _ = https.set_scheme("https");
            Some(
                Tls::new(&settings, HttpVersion::Http1, &https).map_err(|source| {
                    LoadError::WsTls {
                        name: w.name.clone(),
                        source,
                    }
                })?,
            )
        } else {
            None
        });
    }
    let cancel = cancel.child_token();
    let users = Arc::new(Users {
        plan: plan.clone(),
        tls,
        think,
        connect_timeout: plan
            .load
            .as_ref()
            .map_or(crate::scenario::load_plan::DEFAULT_TIMEOUT, |l| l.timeout),
        ending: cancel.child_token(),
        cancel: cancel.clone(),
        census: census.clone(),
        totals: Mutex::new(WsTotals::default()),
        open: AtomicU32::new(0),
        ramp,
    });
    let t0 = Instant::now();
    let planned = users.ramp.total();
    let mut tasks = tokio::task::JoinSet::new();
    let mut ids = HashMap::new();
    for (user, entry) in numbers {
        let u = users.clone();
        let h = tasks.spawn(async move { u.user(user, entry, t0).await });
        ids.insert(h.id(), user);
    }
    let all = async {
        while let Some(done) = tasks.join_next_with_id().await {
            // A panicked user sends nothing more: say so, as goose users do.
            if let Err(e) = done {
                if e.is_panic() {
                    let user = ids.get(&e.id()).copied().unwrap_or(0);
                    let p = e.into_panic();
                    let reason = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panic".into());
                    events.send(EventKind::UserDied {
                        user: u64::from(user),
                        reason: format!("WebSocket user: {reason}"),
                    });
                }
            }
        }
    };
    tokio::pin!(all);
    tokio::select! {
        _ = &mut all => {}
        _ = tokio::time::sleep_until(t0 + planned) => {
            users.ending.cancel();
            tokio::select! {
                _ = &mut all => {}
                _ = tokio::time::sleep(GRACE) => {
                    users.cancel.cancel();
                    all.await;
                }
            }
        }
    }
    users.ending.cancel();
    let totals = std::mem::take(&mut *users.totals());
    events.send(EventKind::Ws(Box::new(totals)));
    Ok(())
}

impl Users {
    fn totals(&self) -> std::sync::MutexGuard<'_, WsTotals> {
        // A poisoned lock only means a user panicked mid-update; the figures stand.
        self.totals.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Completes when the user must close: `off` (it turns inactive) or the planned end.
    async fn stop(&self, off: Option<Instant>) {
        match off {
            Some(off) => tokio::select! {
                _ = tokio::time::sleep_until(off) => {}
                _ = self.ending.cancelled() => {}
            },
            None => self.ending.cancelled().await,
        }
    }

    /// User `user` (1-based) of `[[ws]]` entry `entry`, following the ramp from `t0`.
    async fn user(&self, user: u32, entry: usize, t0: Instant) {
        let toggles = self.ramp.toggles(user);
        let mut generation = 0u64;
        while !self.ending.is_cancelled() {
            match ramp::state_at(&toggles, t0.elapsed()) {
                (false, Some(on)) => self.stop(Some(t0 + on)).await,
                (false, None) => return,
                (true, off) => {
                    let _counted = Counted::new(&self.census);
                    let mut rng =
                        super::rng_for(self.plan.seed, u64::from(user) + generation * GENERATION);
                    generation += 1;
                    let mut vars = HashMap::new();
                    let mut iteration = 0u64;
                    let off = off.map(|o| t0 + o);
                    while !self.ending.is_cancelled() && off.is_none_or(|o| Instant::now() < o) {
                        let mut ctx = RenderCtx {
                            rng: &mut rng,
                            vars: &vars,
                            user: user as usize,
                            iteration,
                        };
                        let conn = tokio::select! {
                            c = self.connect(&self.plan.ws[entry], entry, &mut ctx) => c,
                            _ = self.stop(off) => break,
                            _ = self.cancel.cancelled() => return,
                        };
                        let pause = match conn {
                            Some(ws) => {
                                let end = self
                                    .session(
                                        ws,
                                        &self.plan.ws[entry],
                                        user,
                                        &mut rng,
                                        &mut vars,
                                        iteration,
                                        off,
                                    )
                                    .await;
                                if matches!(end, End::Stop) {
                                    return;
                                }
                                self.think.sample(&mut rng)
                            }
                            None => self.think.sample(&mut rng).max(RETRY),
                        };
                        iteration += 1;
                        if !pause.is_zero() {
                            tokio::select! {
                                _ = tokio::time::sleep(pause) => {}
                                _ = self.stop(off) => {}
                            }
                        } else {
                            tokio::task::yield_now().await;
                        }
                    }
                }
            }
        }
    }

    /// Open a connection (TCP, TLS for wss, the handshake), counted either way.
    async fn connect(&self, w: &WsPlan, entry: usize, ctx: &mut RenderCtx<'_>) -> Option<Ws> {
        let result = tokio::time::timeout(self.connect_timeout, self.handshake(w, entry, ctx))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "connect: timeout after {}",
                    humantime::format_duration(self.connect_timeout)
                ))
            });
        let mut t = self.totals();
        t.connects += 1;
        match result {
            Ok(ws) => Some(ws),
            Err(why) => {
                t.connect_failures += 1;
                t.reason(why);
                None
            }
        }
    }

    async fn handshake(
        &self,
        w: &WsPlan,
        entry: usize,
        ctx: &mut RenderCtx<'_>,
    ) -> Result<Ws, String> {
        let mut req = w
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("handshake: {e}"))?;
        let mut buf = String::new();
        for (name, t) in &w.headers {
            buf.clear();
            t.render(ctx, &mut buf);
            let v = http::HeaderValue::from_str(&buf)
                .map_err(|_| format!("invalid value for header {name}"))?;
            req.headers_mut().append(name.clone(), v);
        }
        if let Some(p) = &w.subprotocol {
            if let Ok(v) = http::HeaderValue::from_str(p) {
                req.headers_mut().insert("sec-websocket-protocol", v);
            }
        }
        let host = crate::units::bare_host(w.url.host_str().unwrap_or_default());
        let port = w.url.port_or_known_default().unwrap_or(80);
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("connect: {}", io_reason(&e)))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match &self.tls[entry] {
            Some(tls) => Box::new(tls.connect(tcp).await.map_err(|e| e.to_string())?),
            None => Box::new(tcp),
        };
        // Small buffers: thousands of users hold a connection each (the default read
        // buffer is 128 KiB, allocated up front).
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::client_async_with_config(req, io, Some(config))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        Ok(ws)
    }

    /// One connection's life: the messages, the hold, the close.
    #[allow(clippy::too_many_arguments)]
    async fn session(
        &self,
        mut ws: Ws,
        w: &WsPlan,
        user: u32,
        rng: &mut rand_chacha::ChaCha8Rng,
        vars: &mut HashMap<String, String>,
        iteration: u64,
        off: Option<Instant>,
    ) -> End {
        let _open = Open::new(self);
        let mut text = String::new();
        for m in &w.messages {
            text.clear();
            let mut ctx = RenderCtx {
                rng: &mut *rng,
                vars,
                user: user as usize,
                iteration,
            };
            m.send.render(&mut ctx, &mut text);
            let sent = Instant::now();
            let outcome = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return End::Stop,
                _ = self.stop(off) => return self.close(ws).await,
                o = self.exchange(&mut ws, &text, m.expect.as_ref(), m.timeout, &m.extract, vars) => o,
            };
            let mut t = self.totals();
            t.messages += 1;
            match outcome {
                Reply::Matched => {
                    let us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                    let _ = t.rtt.record(us.clamp(1, crate::event::MAX_LATENCY_US));
                }
                Reply::Sent => {}
                Reply::Failed(why) => {
                    t.message_failures += 1;
                    t.reason(why);
                }
                Reply::Gone(why, abnormal) => {
                    t.message_failures += 1;
                    t.reason(why);
                    t.abnormal_closes += u64::from(abnormal);
                    return End::Lost;
                }
            }
        }
        // The hold: read (pings are answered by the library), ping if asked.
        let until = Instant::now() + w.hold;
        let mut ping = w.ping_interval.map(|every| {
            let mut i = tokio::time::interval_at(Instant::now() + every, every);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return End::Stop,
                _ = self.stop(off) => break,
                _ = tokio::time::sleep_until(until) => break,
                _ = async {
                    match ping.as_mut() {
                        Some(p) => p.tick().await,
                        None => std::future::pending().await,
                    }
                } => {
                    // Bounded: a server that stops reading must not hold the user.
                    match tokio::time::timeout(CLOSE_WAIT, ws.send(Message::Ping(Default::default()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return self.lost(format!("ping: {e}"), true),
                        Err(_) => return self.lost("ping: the server stopped reading".into(), true),
                    }
                }
                msg = ws.next() => {
                    if let Some((why, abnormal)) = ended(msg) {
                        return self.lost(why, abnormal);
                    }
                }
            }
        }
        self.close(ws).await
    }

    /// The connection ended under the user (counted as abnormal when it was).
    fn lost(&self, why: String, abnormal: bool) -> End {
        if abnormal {
            let mut t = self.totals();
            t.abnormal_closes += 1;
            t.reason(why);
        }
        End::Lost
    }

    /// Close with 1000 and wait (bounded) for the server's answer.
    async fn close(&self, mut ws: Ws) -> End {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            if ws.close(Some(frame)).await.is_ok() {
                while let Some(Ok(_)) = ws.next().await {}
            }
        })
        .await;
        if self.cancel.is_cancelled() {
            End::Stop
        } else {
            End::Done
        }
    }

    /// Send `text`; with `expect`, wait for the first text reply passing it.
    async fn exchange(
        &self,
        ws: &mut Ws,
        text: &str,
        expect: Option<&Check>,
        timeout: Duration,
        extract: &[crate::scenario::load_plan::Extractor],
        vars: &mut HashMap<String, String>,
    ) -> Reply {
        if let Err(e) = ws.send(Message::text(text)).await {
            return Reply::Gone(format!("send: {e}"), true);
        }
        let Some(check) = expect else {
            return Reply::Sent;
        };
        let show = self.plan.show_values;
        let deadline = Instant::now() + timeout;
        let mut last: Option<String> = None;
        loop {
            let msg = tokio::select! {
                m = ws.next() => m,
                _ = tokio::time::sleep_until(deadline) => {
                    return Reply::Failed(match last {
                        Some(why) => format!("no matching reply within {}: last {why}", humantime::format_duration(timeout)),
                        None => format!("no reply within {}", humantime::format_duration(timeout)),
                    });
                }
            };
            let body = match msg {
                Some(Ok(Message::Text(t))) => t.as_str().as_bytes().to_vec(),
                Some(Ok(Message::Binary(b))) => b.to_vec(),
                other => match ended(other) {
                    Some((why, abnormal)) => {
                        return Reply::Gone(format!("{why} before the reply"), abnormal)
                    }
                    None => continue,
                },
            };
            let mut json = JsonBody::default();
            match checks::check_body(check, &body, &mut json, show) {
                Ok(()) => {
                    return match checks::extract_body(extract, &body, &mut json, vars) {
                        Ok(()) => Reply::Matched,
                        Err(e) => Reply::Failed(e.to_string()),
                    };
                }
                Err(e) => last = Some(e.to_string()),
            }
        }
    }
}

/// What a message waited for came to.
enum Reply {
    /// Sent; no reply expected.
    Sent,
    /// The matching reply arrived.
    Matched,
    /// Not sent, or no matching reply in time; the connection goes on.
    Failed(String),
    /// The connection ended (abnormally or not) before the reply.
    Gone(String, bool),
}

/// `Some((why, abnormal))` when a read ends the connection: a close frame (abnormal
/// unless 1000 or 1001), an error or the stream's end without a close frame (abnormal).
fn ended(
    msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Option<(String, bool)> {
    match msg {
        Some(Ok(Message::Close(frame))) => Some(match frame {
            Some(f) if matches!(f.code, CloseCode::Normal | CloseCode::Away) => (
                format!("closed by the server ({})", u16::from(f.code)),
                false,
            ),
            Some(f) => (
                format!("closed by the server with code {}", u16::from(f.code)),
                true,
            ),
            // A close frame without a code (1005): not a normal closure.
            None => ("closed by the server without a code".into(), true),
        }),
        Some(Ok(_)) => None,
        Some(Err(e)) => Some((format!("connection lost: {}", short_error(&e)), true)),
        None => Some(("connection dropped without a close frame".into(), true)),
    }
}

fn short_error(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    use tokio_tungstenite::tungstenite::Error as E;
    match e {
        E::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            "dropped without a close frame".into()
        }
        E::Io(io) => io_reason(io),
        other => other.to_string(),
    }
}

/// An I/O error without the OS error number (the same reason groups together).
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
