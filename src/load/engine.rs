//! What both load models share: the plan compiled for sending (templates, checks,
//! extraction), the weighted pick, the "run first what extracts a value I need" chain,
//! and one request's life: render, send on a connection, time, check, extract, report.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Uri};
use http_body_util::Full;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::checks::{self, JsonBody};
use super::client::{self, Conn, Failure, Target};
use super::{LoadError, RequestError, Shown};
use crate::event::{Connected, EventKind, EventSink, FlowDone, Level, RequestDone};
use crate::scenario::load_plan::{Check, Extractor, Think};
use crate::scenario::template::{BodyTemplate, RenderCtx, Template};
use crate::scenario::{Plan, RequestPlan};

/// One request of the plan, ready to send.
pub(crate) struct Compiled {
    idx: u16,
    method: Method,
    /// The full request target when the path has no placeholder.
    literal_uri: Option<Uri>,
    path: Template,
    headers: Vec<(HeaderName, HeaderPart)>,
    body: Option<BodyTemplate>,
    /// Set unless the request's own headers give a content type.
    content_type: bool,
    has_status_check: bool,
    /// A check or an extractor reads the body: keep it (up to `max_body`).
    reads_body: bool,
    checks: Vec<Check>,
    extracts: Vec<Extractor>,
    needs: Vec<(String, usize)>,
    /// Redirects followed at most (0: none).
    redirects: u32,
    /// Which target (0: the default one).
    target: usize,
}

enum HeaderPart {
    Literal(HeaderValue),
    Template(Template),
}

/// A user's (closed) or an iteration's (open) mutable state.
pub(crate) struct Flow {
    pub rng: ChaCha8Rng,
    pub vars: HashMap<String, String>,
    /// 1-based user number (open model: the iteration number).
    pub user: usize,
    pub iteration: u64,
}

/// Connections shared by many users or iterations: at most `size` in use at once, idle
/// ones kept for reuse.
pub(crate) struct Pool {
    /// Idle connections, one list per target (0: the default one).
    idle: Mutex<Vec<Vec<Conn>>>,
    sem: Arc<Semaphore>,
}

pub(crate) struct Lease {
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    pub(crate) fn new(size: usize, targets: usize) -> Pool {
        Pool {
            idle: Mutex::new(
                (0..targets.max(1))
                    .map(|_| Vec::with_capacity(size.min(4096)))
                    .collect(),
            ),
            sem: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    async fn lease(&self, target: usize) -> (Lease, Option<Conn>) {
        let permit = self
            .sem
            .clone()
            .acquire_owned()
            .await
            .expect("the pool's semaphore is never closed");
        let conn = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let idle = &mut idle[target];
            loop {
                match idle.pop() {
                    Some(c) if c.usable() => break Some(c),
                    Some(_) => continue,
                    None => break None,
                }
            }
        };
        (Lease { _permit: permit }, conn)
    }

    fn give_back(&self, target: usize, conn: Conn) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())[target].push(conn);
    }
}

/// Where a request gets its connection.
pub(crate) enum Conns<'a> {
    /// The user's own keep-alive connection to each target (reconnects when it is gone).
    Own(&'a mut [Option<Conn>]),
    Pool(&'a Pool),
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    Ok,
    Failed,
    /// Cut short by cancel: nothing recorded.
    Aborted,
}

/// One `[[flows]]` table: its steps, as request indexes.
struct CompiledFlow {
    idx: u16,
    /// Indexes into the requests.
    steps: Vec<usize>,
}

pub(crate) struct Engine {
    pub plan: Arc<Plan>,
    /// The default `[target]`.
    pub target: Target,
    /// `[targets.<name>]`, in `Plan::targets` order (a request's target k > 0 is k - 1).
    others: Vec<Target>,
    reqs: Vec<Compiled>,
    flows: Vec<CompiledFlow>,
    cumulative: Vec<u64>,
    total_weight: u64,
    pub think: Think,
    pub events: EventSink,
    /// Everything stops now: in-flight requests are dropped, not recorded.
    pub cancel: CancellationToken,
    /// The planned end was reached: no new iteration starts (think times are cut).
    pub ending: CancellationToken,
    /// The shared pool (`connections = "shared"` or the open model).
    pub pool: Option<Pool>,
    /// Requests cut short by cancel or by the end of the load (not recorded).
    abandoned: AtomicU64,
}

impl Engine {
    pub(crate) fn new(
        plan: Arc<Plan>,
        think: Think,
        target: Target,
        others: Vec<Target>,
        events: EventSink,
        cancel: CancellationToken,
        pool: Option<Pool>,
    ) -> Result<Engine, LoadError> {
        let mut reqs = Vec::with_capacity(plan.requests.len());
        for (i, r) in plan.requests.iter().enumerate() {
            let t = match r.target {
                0 => &target,
                k => &others[k - 1],
            };
            reqs.push(compile(i, r, t, plan.show_values)?);
        }
        let mut flows = Vec::with_capacity(plan.flows.len());
        for (i, f) in plan.flows.iter().enumerate() {
            flows.push(CompiledFlow {
                idx: u16::try_from(i).map_err(|_| LoadError::TooManyRequests)?,
                steps: f.steps.clone(),
            });
        }
        // Requests first, then flows: one weighted mix.
        let mut cumulative = Vec::with_capacity(reqs.len() + flows.len());
        let mut total: u64 = 0;
        for w in plan
            .requests
            .iter()
            .map(|r| r.weight)
            .chain(plan.flows.iter().map(|f| f.weight))
        {
            total += u64::from(w);
            cumulative.push(total);
        }
        if total == 0 {
            return Err(LoadError::NothingToSend);
        }
        let ending = cancel.child_token();
        Ok(Engine {
            plan,
            target,
            others,
            reqs,
            flows,
            cumulative,
            total_weight: total,
            think,
            events,
            cancel,
            ending,
            pool,
            abandoned: AtomicU64::new(0),
        })
    }

    /// Target `k` (0: the default one).
    fn target_of(&self, k: usize) -> &Target {
        match k {
            0 => &self.target,
            k => &self.others[k - 1],
        }
    }

    /// How many targets there are.
    pub(crate) fn targets(&self) -> usize {
        1 + self.others.len()
    }

    /// A request index by weight.
    fn pick(&self, rng: &mut ChaCha8Rng) -> usize {
        let x = rng.random_range(0..self.total_weight);
        self.cumulative.partition_point(|&c| c <= x)
    }

    /// `i`, preceded by whatever must run first to extract a value it needs.
    fn chain(&self, i: usize, vars: &HashMap<String, String>, out: &mut Vec<usize>, depth: usize) {
        if depth <= self.reqs.len() {
            for (var, j) in &self.reqs[i].needs {
                if *j != i && !vars.contains_key(var) && !out.contains(j) {
                    self.chain(*j, vars, out, depth + 1);
                }
            }
        }
        if !out.contains(&i) {
            out.push(i);
        }
    }

    /// One iteration: a weighted pick (a request, with the requests it needs first, or a
    /// whole flow). `intended` (open model) is when the iteration should have started;
    /// the first request's latency counts from it.
    pub(crate) async fn iteration(
        &self,
        flow: &mut Flow,
        conns: &mut Conns<'_>,
        intended: Option<Instant>,
    ) -> Sent {
        let pick = self.pick(&mut flow.rng);
        let result = match pick.checked_sub(self.reqs.len()) {
            Some(f) => self.run_flow(f, flow, conns, intended).await,
            None => self.send_with_needs(pick, flow, conns, intended).await,
        };
        flow.iteration += 1;
        result
    }

    /// Request `i`, preceded by whatever extracts a value it needs that the user lacks.
    async fn send_with_needs(
        &self,
        i: usize,
        flow: &mut Flow,
        conns: &mut Conns<'_>,
        intended: Option<Instant>,
    ) -> Sent {
        if self.reqs[i].needs.is_empty() {
            return self.send_one(i, flow, conns, intended).await;
        }
        let mut order: Vec<usize> = Vec::new();
        self.chain(i, &flow.vars, &mut order, 0);
        let mut result = Sent::Ok;
        for (k, &j) in order.iter().enumerate() {
            let from = if k == 0 { intended } else { None };
            result = self.send_one(j, flow, conns, from).await;
            if result != Sent::Ok {
                break;
            }
        }
        result
    }

    /// Flow `f`: its steps in order, thinking between them; it stops at the first failed
    /// step (a failed flow). Cut short by the end of the load, it is not counted.
    async fn run_flow(
        &self,
        f: usize,
        flow: &mut Flow,
        conns: &mut Conns<'_>,
        intended: Option<Instant>,
    ) -> Sent {
        let compiled = &self.flows[f];
        let start = intended.unwrap_or_else(Instant::now);
        for (k, &step) in compiled.steps.iter().enumerate() {
            if k > 0 {
                let think = self.think.sample(&mut flow.rng);
                if !self.pause(think).await {
                    return Sent::Aborted;
                }
            }
            let from = if k == 0 { intended } else { None };
            match self.send_with_needs(step, flow, conns, from).await {
                Sent::Ok => {}
                Sent::Aborted => return Sent::Aborted,
                Sent::Failed => {
                    let why = format!("step {} {:?} failed", k + 1, self.plan.requests[step].name);
                    self.report_flow(compiled.idx, start, Some(why.into_boxed_str()));
                    return Sent::Failed;
                }
            }
        }
        self.report_flow(compiled.idx, start, None);
        Sent::Ok
    }

    fn report_flow(&self, flow: u16, start: Instant, error: Option<Box<str>>) {
        let done = Instant::now();
        self.events.send_at(
            done.saturating_duration_since(self.events.clock()),
            EventKind::Flow(FlowDone {
                flow,
                latency_us: micros(done.saturating_duration_since(start)),
                error,
            }),
        );
    }

    /// Render and build the request.
    fn build(&self, r: &Compiled, flow: &mut Flow) -> Result<Request<Full<Bytes>>, RequestError> {
        let mut ctx = RenderCtx {
            rng: &mut flow.rng,
            vars: &flow.vars,
            user: flow.user,
            iteration: flow.iteration,
        };
        let uri = match &r.literal_uri {
            Some(u) => u.clone(),
            None => {
                let mut p = String::with_capacity(64);
                p.push_str(&self.target_of(r.target).base_path);
                let at = p.len();
                r.path.render(&mut ctx, &mut p);
                if !p[at..].starts_with('/') {
                    p.insert(at, '/');
                }
                client::encode_target(&mut p);
                Uri::try_from(p.as_str()).map_err(|source| RequestError::Path {
                    path: Shown::new(p, self.plan.show_values),
                    source,
                })?
            }
        };
        let mut buf = String::new();
        let (body, ctype) = match &r.body {
            Some(b) => {
                let ct = b.render_into(&mut ctx, &mut buf);
                (Bytes::from(std::mem::take(&mut buf)), Some(ct))
            }
            None => (Bytes::new(), None),
        };
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = r.method.clone();
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        for (name, v) in &r.headers {
            let value = match v {
                HeaderPart::Literal(v) => v.clone(),
                HeaderPart::Template(t) => {
                    buf.clear();
                    t.render(&mut ctx, &mut buf);
                    HeaderValue::from_str(&buf).map_err(|_| RequestError::HeaderValue {
                        name: name.clone(),
                        value: Shown::new(std::mem::take(&mut buf), self.plan.show_values),
                    })?
                }
            };
            h.append(name.clone(), value);
        }
        if let (Some(ct), true) = (ctype, r.content_type) {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        self.target_of(r.target).prepare(&mut req);
        Ok(req)
    }

    /// Send request `i` and report it.
    async fn send_one(
        &self,
        i: usize,
        flow: &mut Flow,
        conns: &mut Conns<'_>,
        intended: Option<Instant>,
    ) -> Sent {
        let r = &self.reqs[i];
        let req = match self.build(r, flow) {
            Ok(req) => req,
            Err(e) => {
                self.report(Instant::now(), r.idx, 0, 0, 0, Some(e.into()));
                return Sent::Failed;
            }
        };
        let t0 = Instant::now();
        let outcome = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => {
                self.abandoned.fetch_add(1, Ordering::Relaxed);
                return Sent::Aborted;
            }
            o = tokio::time::timeout(self.target.timeout, self.exchange_following(conns, req, r)) => o,
        };
        let done = Instant::now();
        let service_us = micros(done - t0);
        let latency_us = match intended {
            Some(at) => micros(done.saturating_duration_since(at)),
            None => service_us,
        };
        let (status, error) = match outcome {
            Err(_elapsed) => (0, Some(Failure::Timeout(self.target.timeout))),
            Ok(Err(failure)) => (0, Some(failure)),
            Ok(Ok(reply)) => (
                reply.status.as_u16(),
                Self::verify(r, &reply, &mut flow.vars, self.plan.show_values).err(),
            ),
        };
        let sent = if error.is_none() {
            Sent::Ok
        } else {
            Sent::Failed
        };
        self.report(done, r.idx, latency_us, service_us, status, error);
        sent
    }

    /// Send on the user's own connection or a pooled one, connecting when there is none
    /// (or it was closed); the connection is kept when it can carry another request.
    async fn exchange(
        &self,
        conns: &mut Conns<'_>,
        k: usize,
        req: Request<Full<Bytes>>,
        keep_body: bool,
    ) -> Result<client::Reply, Failure> {
        let target = self.target_of(k);
        let limit = client::BodyLimit {
            max: self.target.max_body,
            truncate: self.target.truncate_body,
            keep: keep_body,
        };
        let (lease, cached) = match conns {
            Conns::Own(slots) => (None, slots[k].take()),
            Conns::Pool(p) => {
                let (l, c) = p.lease(k).await;
                (Some(l), c)
            }
        };
        let mut conn = match cached {
            Some(c) if c.usable() => c,
            _ => self.connect(k).await?,
        };
        let reply = match client::send(target, &mut conn, req, limit).await {
            Ok(reply) => reply,
            // The kept-alive connection was already closed: the request was never
            // written, so it is safe to send it once more on a fresh connection.
            Err((_, Some(req))) => {
                conn = self.connect(k).await?;
                client::send(target, &mut conn, req, limit)
                    .await
                    .map_err(|(e, _)| e)?
            }
            Err((failure, None)) => return Err(failure),
        };
        if !reply.close && conn.usable() {
            match conns {
                Conns::Own(slots) => slots[k] = Some(conn),
                Conns::Pool(p) => p.give_back(k, conn),
            }
        }
        drop(lease);
        Ok(reply)
    }

    /// Send `req`; when the request follows redirects, follow the 3xx answers (up to its
    /// count), each only to a host on the allow list: a redirect elsewhere fails the
    /// request and nothing is sent there. Another origin gets a connection of its own
    /// for that hop; credentials (`authorization`, `cookie`) do not go with it.
    async fn exchange_following(
        &self,
        conns: &mut Conns<'_>,
        req: Request<Full<Bytes>>,
        r: &Compiled,
    ) -> Result<client::Reply, Failure> {
        let k = r.target;
        let target = self.target_of(k);
        if r.redirects == 0 {
            return self.exchange(conns, k, req, r.reads_body).await;
        }
        let (method, headers, body) = (
            req.method().clone(),
            req.headers().clone(),
            req.body().clone(),
        );
        let base = match k {
            0 => &self.plan.base_url,
            k => &self.plan.targets[k - 1].base_url,
        };
        let mut current = base
            .join(req.uri().path_and_query().map_or("/", |p| p.as_str()))
            .map_err(|e| Failure::Redirect(format!("redirect: {e}")))?;
        let mut reply = self.exchange(conns, k, req, r.reads_body).await?;
        let mut method = method;
        let mut body = Some(body);
        for hop in 0..=r.redirects {
            let status = reply.status;
            if !status.is_redirection() || status == http::StatusCode::NOT_MODIFIED {
                return Ok(reply);
            }
            let Some(location) = reply.headers.get(http::header::LOCATION) else {
                return Ok(reply);
            };
            if hop == r.redirects {
                return Err(Failure::Redirect(format!(
                    "more than {} redirects",
                    r.redirects
                )));
            }
            let next = location
                .to_str()
                .ok()
                .and_then(|l| current.join(l).ok())
                .ok_or_else(|| {
                    Failure::Redirect(format!(
                        "redirect ({status}) to a location that is not a URL"
                    ))
                })?;
            let host = next
                .host_str()
                .map(crate::units::bare_host)
                .unwrap_or_default();
            if !matches!(next.scheme(), "http" | "https") {
                return Err(Failure::Redirect(format!(
                    "redirect to {}: refused, only http and https are followed",
                    next.scheme()
                )));
            }
            if !crate::units::host_allowed(&self.plan.allow_hosts, &host) {
                return Err(Failure::Redirect(format!(
                    "redirect to {host} refused: not on allow_hosts"
                )));
            }
            // 303 (and 301/302 after a POST, as browsers do) becomes a GET without body;
            // 307 and 308 repeat the request as it was.
            let keep = matches!(status.as_u16(), 307 | 308)
                || (status.as_u16() != 303 && method != Method::POST);
            if !keep {
                method = if method == Method::HEAD {
                    Method::HEAD
                } else {
                    Method::GET
                };
                body = None;
            }
            let same = target.same_origin(&next);
            let mut hop_req = Request::new(body.clone().unwrap_or_default());
            *hop_req.method_mut() = method.clone();
            let mut path = next.path().to_string();
            if let Some(q) = next.query() {
                path.push('?');
                path.push_str(q);
            }
            *hop_req.uri_mut() = Uri::try_from(path.as_str())
                .map_err(|e| Failure::Redirect(format!("redirect: {e}")))?;
            let h = hop_req.headers_mut();
            for (name, value) in &headers {
                let dropped = (!same
                    && (name == http::header::AUTHORIZATION || name == http::header::COOKIE))
                    || (body.is_none()
                        && (name == CONTENT_TYPE || name == http::header::CONTENT_LENGTH));
                if !dropped {
                    h.append(name.clone(), value.clone());
                }
            }
            reply = if same {
                target.prepare(&mut hop_req);
                self.exchange(conns, k, hop_req, r.reads_body).await?
            } else {
                let other = target
                    .for_redirect(&next, &self.plan)
                    .await
                    .map_err(|e| Failure::Redirect(format!("redirect to {host}: {e}")))?;
                other.prepare(&mut hop_req);
                let (mut conn, _) = other.connect().await?;
                let limit = client::BodyLimit {
                    max: self.target.max_body,
                    truncate: self.target.truncate_body,
                    keep: r.reads_body,
                };
                client::send(&other, &mut conn, hop_req, limit)
                    .await
                    .map_err(|(e, _)| e)?
            };
            current = next;
        }
        Ok(reply)
    }

    /// A new connection, its handshake reported apart from the request's latency.
    async fn connect(&self, k: usize) -> Result<client::Conn, Failure> {
        let (conn, hs) = self.target_of(k).connect().await?;
        self.events.send(EventKind::Connected(Connected {
            handshake_us: hs.us,
            tls: hs.tls,
            resumed: hs.resumed,
            h2: hs.h2,
        }));
        Ok(conn)
    }

    /// The request's checks, then its extractors (into the user's `vars`).
    fn verify(
        r: &Compiled,
        reply: &client::Reply,
        vars: &mut HashMap<String, String>,
        show_values: bool,
    ) -> Result<(), Failure> {
        let mut json = JsonBody::default();
        checks::evaluate(&r.checks, r.has_status_check, reply, &mut json, show_values)?;
        checks::extract(&r.extracts, reply, &mut json, vars)?;
        Ok(())
    }

    fn report(
        &self,
        done: Instant,
        request: u16,
        latency_us: u64,
        service_us: u64,
        status: u16,
        error: Option<Failure>,
    ) {
        self.events.send_at(
            done.saturating_duration_since(self.events.clock()),
            EventKind::Request(RequestDone {
                request,
                latency_us,
                service_us,
                status,
                error: error.map(|e| e.to_string().into_boxed_str()),
            }),
        );
    }

    /// Say how many requests were abandoned, if any.
    pub(crate) fn report_abandoned(&self) {
        let n = self.abandoned.load(Ordering::Relaxed);
        if n > 0 {
            self.events.notice(
                Level::Info,
                format!("{n} request(s) still in flight when the load stopped were abandoned (not counted)"),
            );
        }
    }

    /// Sleep `d` unless the load ends or is cancelled first; false when cut short.
    pub(crate) async fn pause(&self, d: Duration) -> bool {
        if d.is_zero() {
            return !self.ending.is_cancelled();
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.ending.cancelled() => false,
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn compile(i: usize, r: &RequestPlan, target: &Target, show: bool) -> Result<Compiled, LoadError> {
    let idx = u16::try_from(i).map_err(|_| LoadError::TooManyRequests)?;
    let invalid = |source| LoadError::Request {
        name: r.name.clone(),
        source,
    };
    let literal_uri = match r.path.as_literal() {
        Some(p) => {
            let mut s = target.base_path.clone();
            if !p.starts_with('/') {
                s.push('/');
            }
            s.push_str(p);
            client::encode_target(&mut s);
            match Uri::try_from(s.as_str()) {
                Ok(u) => Some(u),
                Err(source) => {
                    return Err(invalid(RequestError::Path {
                        path: Shown::new(s, show),
                        source,
                    }))
                }
            }
        }
        None => None,
    };
    let mut headers = Vec::with_capacity(r.headers.len());
    let mut content_type = true;
    for (name, t) in &r.headers {
        if name == CONTENT_TYPE {
            content_type = false;
        }
        let part = match t.as_literal() {
            Some(v) => HeaderPart::Literal(HeaderValue::from_str(v).map_err(|_| {
                invalid(RequestError::HeaderValue {
                    name: name.clone(),
                    value: Shown::new(v.to_string(), show),
                })
            })?),
            None => HeaderPart::Template(t.clone()),
        };
        headers.push((name.clone(), part));
    }
    Ok(Compiled {
        idx,
        method: r.method.clone(),
        literal_uri,
        path: r.path.clone(),
        headers,
        body: r.body.clone(),
        content_type,
        has_status_check: r.checks.iter().any(|c| matches!(c, Check::Status(_))),
        reads_body: r.checks.iter().any(|c| !matches!(c, Check::Status(_)))
            || r.extract
                .iter()
                .any(|e| matches!(e, Extractor::Json { .. })),
        checks: r.checks.clone(),
        extracts: r.extract.clone(),
        needs: r.needs.clone(),
        redirects: r.redirects,
        target: r.target,
    })
}
