//! The lean HTTP client: one hyper `SendRequest` per keep-alive connection (HTTP/1.1, or
//! HTTP/2 with its streams on that one connection), over TCP or TLS ([`super::tls`]), no
//! pool logic, no cookies. Every request goes to the plan's target (the host validation
//! allowed); a URL taken from a response (a redirect a request follows, in the engine) is
//! used only when its host is on the allow list.
//!
//! Each new connection reports its handshake (TCP connect + TLS, µs) apart from the
//! request that needed it: [`Handshake`].
//!
//! Memory per request is bounded whatever the server sends: the head by the read buffer
//! ([`READ_BUFFER`]), the body by `max_body` (read as it streams, kept only when a check
//! or an extractor reads it), the time by the request timeout around all of it. A
//! connection dropped mid-response is closed at once (its driver task is aborted).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, HOST, USER_AGENT};
use http::uri::{Authority, Scheme};
use http::{HeaderMap, Request, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::checks::CheckFailure;
use super::tls::{Tls, TlsError};
use crate::scenario::model::HttpVersion;

/// Why the target cannot be used at all (the load does not start).
/// URLs are shown without user-info.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "target {}: only http:// and https:// targets are supported by the load engine",
        crate::units::redact_userinfo(.0.as_str())
    )]
    NotHttp(url::Url),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("target {} has no host", crate::units::redact_userinfo(.0.as_str()))]
    NoHost(url::Url),
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("cannot resolve {0}: no address")]
    NoAddress(String),
    #[error("target {}: host is not a valid header value", crate::units::redact_userinfo(.0.as_str()))]
    BadHost(url::Url),
}

/// Why one request failed; its `Display` is the reason the report shows.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// The rendered request is not valid HTTP.
    #[error("{0}")]
    Build(#[from] super::RequestError),
    #[error("connect: {0}")]
    Connect(String),
    /// The TLS handshake failed; `certificate`: because of the server's certificate.
    #[error("tls: {reason}")]
    Tls { reason: String, certificate: bool },
    #[error("http: {0}")]
    Http(String),
    #[error("body: http: {0}")]
    Body(String),
    #[error("timeout after {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// The body went past `max_body` (and the scenario does not accept it cut).
    #[error("body larger than {0}")]
    TooLarge(crate::units::ByteSize),
    /// The requests in flight already hold [`BODY_BUDGET`] of bodies for their checks.
    #[error(
        "body not read: requests in flight already hold {} of bodies (lower [load] max_body or the users)",
        crate::units::ByteSize(BODY_BUDGET)
    )]
    OverBudget,
    #[error(transparent)]
    Check(#[from] CheckFailure),
    /// A redirect that is not followed: off the allow list, too many, or unreadable.
    #[error("{0}")]
    Redirect(String),
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One keep-alive connection to the target.
pub(crate) struct Conn {
    tx: Sender,
    /// The connection's driver; aborted on drop, so a connection given up on (timeout,
    /// body too large) is closed now, not when the server finishes.
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Conn {
    /// Can carry another request (the server did not close it).
    pub(crate) fn usable(&self) -> bool {
        match &self.tx {
            Sender::H1(tx) => !tx.is_closed(),
            Sender::H2(tx) => !tx.is_closed(),
        }
    }
}

/// What opening one connection took.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Handshake {
    /// TCP connect plus the TLS handshake, µs (not the HTTP/2 preface).
    pub us: u64,
    pub tls: bool,
    /// A TLS session of an earlier connection was resumed.
    pub resumed: bool,
    pub h2: bool,
}

/// Body bytes all requests in flight may keep together: `max_body` bounds one request,
/// this bounds thousands of users that all check a large body.
pub(crate) const BODY_BUDGET: u64 = 128 << 20;

/// Body bytes kept by the requests in flight, across the process.
static KEPT: AtomicU64 = AtomicU64::new(0);

/// A reply's share of [`KEPT`], given back when the reply is dropped.
#[derive(Debug, Default)]
pub(crate) struct Held(u64);

impl Held {
    /// Count `n` more bytes; false (nothing counted) past the budget.
    fn take(&mut self, n: u64) -> bool {
        if KEPT.fetch_add(n, Ordering::Relaxed) + n > BODY_BUDGET {
            KEPT.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        self.0 += n;
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        KEPT.fetch_sub(self.0, Ordering::Relaxed);
    }
}

/// A response, its body read up to the limit.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Empty unless the body was asked for; at most `max_body` bytes.
    pub body: Bytes,
    /// The connection cannot carry another request: the server asked to close it
    /// (`Connection: close`), or the body was cut.
    pub close: bool,
    /// The body's share of [`BODY_BUDGET`], given back with the reply.
    pub _held: Held,
}

/// How much of a body to read, and what to do with it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit {
    pub max: u64,
    /// Past `max`: cut (true) or fail (false).
    pub truncate: bool,
    /// Keep the bytes (a check or an extractor reads them); otherwise only count them.
    pub keep: bool,
}

/// Where requests go, and how long they may take.
pub(crate) struct Target {
    addrs: Vec<SocketAddr>,
    /// Index into `addrs` of the address that last connected.
    preferred: AtomicUsize,
    authority: HeaderValue,
    /// HTTP/2 requests carry scheme and authority in the URI (`:scheme`, `:authority`).
    scheme: Scheme,
    uri_authority: Authority,
    http: HttpVersion,
    tls: Option<Tls>,
    /// The base URL's path without its trailing `/` ("" for the root).
    pub base_path: String,
    pub timeout: Duration,
    pub max_body: u64,
    pub truncate_body: bool,
}

/// A connection's read buffer: the largest response head, and what a connection holds
/// while a body streams (hyper's default, 400 KiB, times thousands of users is too much).
const READ_BUFFER: usize = 64 << 10;

const UA: HeaderValue = HeaderValue::from_static(concat!("gauntlet/", env!("CARGO_PKG_VERSION")));

impl Target {
    /// Resolve the base URL once, and build its TLS client (https).
    pub(crate) async fn resolve(
        plan: &crate::scenario::Plan,
        load: &crate::scenario::load_plan::LoadPlan,
    ) -> Result<Target, TargetError> {
        Self::resolve_url(
            &plan.base_url,
            plan.http,
            plan.tls.as_ref(),
            (load.timeout, load.max_body, load.truncate_body),
        )
        .await
    }

    /// A `[targets.<name>]` table, as the default target is resolved.
    pub(crate) async fn resolve_named(
        t: &crate::scenario::NamedTargetPlan,
        load: &crate::scenario::load_plan::LoadPlan,
    ) -> Result<Target, TargetError> {
        Self::resolve_url(
            &t.base_url,
            t.http,
            t.tls.as_ref(),
            (load.timeout, load.max_body, load.truncate_body),
        )
        .await
    }

    /// Another origin on the allow list that a redirect leads to: the same HTTP version,
    /// trust and limits as `self`, the name verified being the URL's own host.
    pub(crate) async fn for_redirect(
        &self,
        url: &url::Url,
        plan: &crate::scenario::Plan,
    ) -> Result<Target, TargetError> {
        let tls = plan.tls.as_ref().map(|t| crate::scenario::TlsPlan {
            server_name: None,
            ..t.clone()
        });
        Self::resolve_url(
            url,
            self.http,
            tls.as_ref(),
            (self.timeout, self.max_body, self.truncate_body),
        )
        .await
    }

    /// The request target of `url` is on this target's origin (scheme, host, port).
    pub(crate) fn same_origin(&self, url: &url::Url) -> bool {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        url.scheme() == scheme
            && url.host_str().map(crate::units::bare_host)
                == Some(crate::units::bare_host(self.uri_authority.host()))
            && url.port_or_known_default()
                == Some(
                    self.uri_authority
                        .port_u16()
                        .unwrap_or(if self.tls.is_some() { 443 } else { 80 }),
                )
    }

    async fn resolve_url(
        base: &url::Url,
        http: HttpVersion,
        tls_plan: Option<&crate::scenario::TlsPlan>,
        (timeout, max_body, truncate_body): (Duration, u64, bool),
    ) -> Result<Target, TargetError> {
        let tls = match (base.scheme(), tls_plan) {
            ("http", _) => None,
            ("https", Some(tls)) => Some(Tls::new(tls, http, base)?),
            ("https", None) => Some(Tls::new(&Default::default(), http, base)?),
            _ => return Err(TargetError::NotHttp(base.clone())),
        };
        let host = base
            .host_str()
            .ok_or_else(|| TargetError::NoHost(base.clone()))?;
        let port = base.port_or_known_default().unwrap_or(80);
        let scheme = if tls.is_some() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((crate::units::bare_host(host), port))
            .await
            .map_err(|source| TargetError::Resolve {
                host: host.to_string(),
                source,
            })?
            .collect();
        if addrs.is_empty() {
            return Err(TargetError::NoAddress(host.to_string()));
        }
        let authority = match base.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let uri_authority = Authority::try_from(authority.as_str())
            .map_err(|_| TargetError::BadHost(base.clone()))?;
        let authority =
            HeaderValue::from_str(&authority).map_err(|_| TargetError::BadHost(base.clone()))?;
        let base_path = base.path().trim_end_matches('/').to_string();
        Ok(Target {
            addrs,
            preferred: AtomicUsize::new(0),
            authority,
            scheme,
            uri_authority,
            http,
            tls,
            base_path,
            timeout,
            max_body,
            truncate_body,
        })
    }

    /// The target is reached over TLS.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Open a new connection (TCP, TLS for https, then the HTTP/1 or HTTP/2 handshake);
    /// its driver runs as its own task and ends when the `Conn` is dropped or the server
    /// closes.
    pub(crate) async fn connect(&self) -> Result<(Conn, Handshake), Failure> {
        let t0 = Instant::now();
        let stream = self.tcp().await?;
        let Some(tls) = &self.tls else {
            let us = micros(t0.elapsed());
            let h2 = self.http == HttpVersion::Http2;
            let conn = handshake(stream, h2).await?;
            return Ok((
                conn,
                Handshake {
                    us,
                    tls: false,
                    resumed: false,
                    h2,
                },
            ));
        };
        let stream = tls.connect(stream).await?;
        let us = micros(t0.elapsed());
        let session = stream.get_ref().1;
        let h2 = session.alpn_protocol() == Some(b"h2");
        let resumed = session.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        if self.http == HttpVersion::Http2 && !h2 {
            return Err(Failure::Connect(
                "the server did not agree to HTTP/2 in the TLS handshake (ALPN); set target.http = \"auto\" or \"1.1\"".into(),
            ));
        }
        let conn = handshake(stream, h2).await?;
        Ok((
            conn,
            Handshake {
                us,
                tls: true,
                resumed,
                h2,
            },
        ))
    }

    /// A TCP connection to the first address that answers.
    async fn tcp(&self) -> Result<TcpStream, Failure> {
        let first = self.preferred.load(Ordering::Relaxed) % self.addrs.len();
        let mut last_err = String::new();
        for k in 0..self.addrs.len() {
            let i = (first + k) % self.addrs.len();
            match TcpStream::connect(self.addrs[i]).await {
                Ok(stream) => {
                    if i != first {
                        self.preferred.store(i, Ordering::Relaxed);
                    }
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(e) => last_err = io_reason(&e),
            }
        }
        Err(Failure::Connect(last_err))
    }

    /// An HTTP/2 request names its target in the URI (`:scheme`, `:authority`), not in
    /// a Host header.
    fn for_h2(&self, mut req: Request<Full<Bytes>>) -> Request<Full<Bytes>> {
        let mut parts = std::mem::take(req.uri_mut()).into_parts();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.uri_authority.clone());
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        *req.uri_mut() = Uri::from_parts(parts).unwrap_or_default();
        *req.version_mut() = Version::HTTP_2;
        req.headers_mut().remove(HOST);
        req
    }

    /// Stamp the headers every request carries.
    pub(crate) fn prepare(&self, req: &mut Request<Full<Bytes>>) {
        let h = req.headers_mut();
        h.insert(HOST, self.authority.clone());
        if !h.contains_key(USER_AGENT) {
            h.insert(USER_AGENT, UA);
        }
    }
}

/// The HTTP handshake on an open stream; the connection's driver runs as its own task.
async fn handshake<I>(io: I, h2: bool) -> Result<Conn, Failure>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let failed = |e: hyper::Error| Failure::Connect(http_reason(&e));
    if h2 {
        let (tx, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            // The same bound on a response head as HTTP/1's read buffer.
            .max_header_list_size(READ_BUFFER as u32)
            .handshake::<_, Full<Bytes>>(io)
            .await
            .map_err(failed)?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        return Ok(Conn {
            tx: Sender::H2(tx),
            driver,
        });
    }
    let (tx, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(READ_BUFFER)
        .handshake::<_, Full<Bytes>>(io)
        .await
        .map_err(failed)?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Conn {
        tx: Sender::H1(tx),
        driver,
    })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Send on `conn` and read the response, its body up to `limit`. `Err((reason,
/// sent_back))`: when the connection turned out closed before the request was written,
/// the request comes back so it can be retried on a fresh connection (never a request the
/// server may have seen).
pub(crate) async fn send(
    target: &Target,
    conn: &mut Conn,
    req: Request<Full<Bytes>>,
    limit: BodyLimit,
) -> Result<Reply, (Failure, Option<Request<Full<Bytes>>>)> {
    let sent = match &mut conn.tx {
        Sender::H1(tx) => tx.try_send_request(req).await,
        Sender::H2(tx) => tx.try_send_request(target.for_h2(req)).await,
    };
    let resp = match sent {
        Ok(r) => r,
        Err(mut e) => {
            let back = e.take_message();
            return Err((Failure::Http(http_reason(e.error())), back));
        }
    };
    let (parts, body) = resp.into_parts();
    let (body, cut, held) = read_body(body, limit).await.map_err(|f| (f, None))?;
    let close = cut
        || parts
            .headers
            .get(CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
        close,
        _held: held,
    })
}

/// Read a body as it streams, at most `limit.max` bytes; true when it was cut there. An
/// announced length above the limit fails before a byte is read. The caller drops the
/// connection of a failed or cut body, which closes it (nothing more is read).
async fn read_body(
    mut body: hyper::body::Incoming,
    limit: BodyLimit,
) -> Result<(Bytes, bool, Held), Failure> {
    use hyper::body::Body as _;
    let too_large = || Failure::TooLarge(crate::units::ByteSize(limit.max));
    let announced = body.size_hint().exact();
    if !limit.truncate && announced.is_some_and(|n| n > limit.max) {
        return Err(too_large());
    }
    // One chunk (the usual small body) is kept as is; more are copied together, in a
    // buffer that doubles but never past the limit (the announced length when known).
    let cap = announced.unwrap_or(limit.max).min(limit.max) as usize;
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    let mut held = Held::default();
    let mut keep = |data: Bytes| -> Result<(), Failure> {
        if !limit.keep {
            return Ok(());
        }
        if first.is_none() && joined.is_empty() {
            if !held.take(data.len() as u64) {
                return Err(Failure::OverBudget);
            }
            first = Some(data);
            return Ok(());
        }
        // Counted by what is allocated: the first chunk, then the buffer's capacity.
        let head = first.take();
        let need = joined.len() + head.as_ref().map_or(0, Bytes::len) + data.len();
        if need > joined.capacity() {
            let grown = need.max(joined.capacity() * 2).min(cap.max(need));
            let counted = head.as_ref().map_or(joined.capacity(), Bytes::len);
            if !held.take((grown - counted.min(grown)) as u64) {
                return Err(Failure::OverBudget);
            }
            joined.reserve_exact(grown - joined.len());
        }
        if let Some(h) = head {
            joined.extend_from_slice(&h);
        }
        joined.extend_from_slice(&data);
        Ok(())
    };
    let mut seen: u64 = 0;
    let mut cut = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::Body(http_reason(&e)))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let room = limit.max - seen;
        if data.len() as u64 > room {
            if !limit.truncate {
                return Err(too_large());
            }
            keep(data.slice(..room as usize))?;
            cut = true;
            break;
        }
        seen += data.len() as u64;
        keep(data)?;
    }
    let bytes = match first {
        Some(b) => b,
        None => Bytes::from(joined),
    };
    Ok((bytes, cut, held))
}

fn http_reason(e: &hyper::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        let msg = match inner.downcast_ref::<std::io::Error>() {
            Some(io) => io_reason(io),
            None => inner.to_string(),
        };
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        src = inner.source();
    }
    s
}

/// A short, stable reason for an I/O error (no "os error N" suffix).
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset".into(),
        K::ConnectionAborted => "connection aborted".into(),
        K::TimedOut => "timed out".into(),
        K::AddrNotAvailable => "address not available (out of local ports?)".into(),
        K::AddrInUse => "address in use".into(),
        K::BrokenPipe => "broken pipe".into(),
        K::UnexpectedEof => "unexpected end of stream".into(),
        _ => match e.raw_os_error() {
            Some(24) => "too many open files (raise it with `ulimit -n`)".into(),
            Some(101) => "network unreachable".into(),
            Some(113) => "no route to host".into(),
            _ => {
                let s = e.to_string();
                match s.find(" (os error") {
                    Some(i) => s[..i].to_lowercase(),
                    None => s,
                }
            }
        },
    }
}

/// Percent-encode what may not appear in a request target (spaces, quotes, non-ASCII...);
/// `%` is kept so already-encoded text passes through.
pub(crate) fn encode_target(s: &mut String) {
    fn ok(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b)
    }
    if s.bytes().all(ok) {
        return;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for b in s.bytes() {
        if ok(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    *s = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_only_what_must_be() {
        let mut s = "/api/items/42?q=a%20b".to_string();
        encode_target(&mut s);
        assert_eq!(s, "/api/items/42?q=a%20b");
        let mut s = "/api/users/Ava Smith\"é".to_string();
        encode_target(&mut s);
        assert_eq!(s, "/api/users/Ava%20Smith%22%C3%A9");
    }

    /// The budget counts what replies hold and gets it back when they go.
    #[test]
    fn kept_bodies_share_a_budget() {
        let before = KEPT.load(Ordering::Relaxed);
        let mut a = Held::default();
        assert!(a.take(BODY_BUDGET / 2));
        let mut b = Held::default();
        assert!(!b.take(BODY_BUDGET), "over the budget");
        assert!(b.take(1000));
        drop(a);
        drop(b);
        assert_eq!(KEPT.load(Ordering::Relaxed), before);
    }

    #[test]
    fn io_reasons_are_short() {
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(io_reason(&e), "connection refused");
        let e = std::io::Error::from_raw_os_error(24);
        assert!(io_reason(&e).starts_with("too many open files"));
    }
}
