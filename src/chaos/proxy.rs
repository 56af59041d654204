//! A TCP chaos proxy, Toxiproxy style: clients connect to `listen` (loopback only), the
//! proxy forwards to `upstream` (loopback only), and `network` faults add toxics:
//! latency with jitter (server to client), drops (a new connection, or a chunk a client
//! sends on an established one, with the given probability: the connection is then held
//! open and silent, never forwarded, so the request times out; it is closed when the
//! drop ends), resets (RST), a bandwidth limit, a full partition (nothing flows either
//! way until it is lifted).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::require_loopback_host;
use crate::scenario::model::ProxyPlan;

/// One network fault's effect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Toxic {
    /// Added to every chunk from the service to the client.
    pub latency: Duration,
    /// Uniform in [-jitter, +jitter] around `latency`.
    pub jitter: Duration,
    /// Share of new connections, and of chunks clients send on established ones, dropped
    /// (the connection held open and silent until the drop ends), 0..=100.
    pub drop_pct: f64,
    /// Reset new connections, and existing ones at their next chunk.
    pub reset: bool,
    /// Bytes per second in each direction.
    pub bandwidth: Option<u64>,
    /// Nothing flows in either direction.
    pub partition: bool,
}

impl Toxic {
    /// Several toxics at once: latencies add up, the worst of the rest wins.
    fn combine(all: &BTreeMap<u64, Toxic>) -> Toxic {
        let mut t = Toxic::default();
        for x in all.values() {
            t.latency += x.latency;
            t.jitter += x.jitter;
            t.drop_pct = t.drop_pct.max(x.drop_pct);
            t.reset |= x.reset;
            t.partition |= x.partition;
            t.bandwidth = match (t.bandwidth, x.bandwidth) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        t
    }
}

pub struct Proxy {
    pub service: String,
    pub listen: SocketAddr,
    pub upstream: (String, u16),
    toxics: Mutex<(u64, BTreeMap<u64, Toxic>)>,
    effective: watch::Sender<Arc<Toxic>>,
    cancel: CancellationToken,
    /// Connections currently open through the proxy.
    open: Arc<AtomicU64>,
}

impl Proxy {
    /// Bind `listen` and start forwarding.
    pub async fn start(
        service: &str,
        plan: &ProxyPlan,
        cancel: CancellationToken,
    ) -> Result<Arc<Proxy>, String> {
        // Resolved and checked by `scenario`; checked again because it is a safety rule.
        let ((lh, lp), (uh, up)) = (plan.listen.clone(), plan.upstream.clone());
        require_loopback_host(&lh).map_err(|e| format!("proxy.listen: {e}"))?;
        require_loopback_host(&uh).map_err(|e| format!("proxy.upstream: {e}"))?;
        let listener = TcpListener::bind((lh.as_str(), lp))
            .await
            .map_err(|e| format!("proxy cannot listen on {lh}:{lp}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (effective, _) = watch::channel(Arc::new(Toxic::default()));
        let proxy = Arc::new(Proxy {
            service: service.to_string(),
            listen: addr,
            upstream: (uh, up),
            toxics: Mutex::new((0, BTreeMap::new())),
            effective,
            cancel,
            open: Arc::new(AtomicU64::new(0)),
        });
        tokio::spawn(accept_loop(proxy.clone(), listener));
        Ok(proxy)
    }

    /// Add a toxic; returns its id for [`Proxy::remove`].
    pub fn add(&self, t: Toxic) -> u64 {
        let mut g = self.toxics.lock().unwrap();
        g.0 += 1;
        let id = g.0;
        g.1.insert(id, t);
        self.effective.send_replace(Arc::new(Toxic::combine(&g.1)));
        id
    }

    pub fn remove(&self, id: u64) {
        let mut g = self.toxics.lock().unwrap();
        g.1.remove(&id);
        self.effective.send_replace(Arc::new(Toxic::combine(&g.1)));
    }

    pub fn current(&self) -> Toxic {
        (**self.effective.borrow()).clone()
    }

    pub fn open_connections(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

async fn accept_loop(p: Arc<Proxy>, listener: TcpListener) {
    loop {
        let (client, _) = tokio::select! {
            _ = p.cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(_) => { tokio::time::sleep(Duration::from_millis(50)).await; continue; }
            },
        };
        let p = p.clone();
        tokio::spawn(async move {
            p.open.fetch_add(1, Ordering::Relaxed);
            let cancel = p.cancel.clone();
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = handle(&p, client) => {}
            }
            p.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Close with a RST instead of a FIN.
fn reset(s: TcpStream) {
    linger_zero(s.as_raw_fd());
    drop(s);
}

/// Wait while `pred` holds for the current toxic.
async fn wait_while(rx: &mut watch::Receiver<Arc<Toxic>>, pred: impl Fn(&Toxic) -> bool) {
    loop {
        if !pred(&rx.borrow_and_update()) {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn handle(p: &Proxy, client: TcpStream) {
    let mut rx = p.effective.subscribe();
    // A partition holds new connections too: nothing flows until it is lifted.
    wait_while(&mut rx, |t| t.partition).await;
    let t = rx.borrow_and_update().clone();
    if t.reset {
        reset(client);
        return;
    }
    if t.drop_pct > 0.0 && rand::rng().random_range(0.0..100.0) < t.drop_pct {
        // Dropped: held open, never forwarded, until this drop is lifted; then closed.
        wait_while(&mut rx, |t| t.drop_pct > 0.0).await;
        return;
    }
    let Ok(up) = TcpStream::connect((p.upstream.0.as_str(), p.upstream.1)).await else {
        reset(client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = up.set_nodelay(true);
    let conn = Conn {
        fds: [client.as_raw_fd(), up.as_raw_fd()],
        cancel: CancellationToken::new(),
    };
    let (cr, cw) = client.into_split();
    let (ur, uw) = up.into_split();
    let a = pipe(cr, uw, p.effective.subscribe(), false, &conn);
    let b = pipe(ur, cw, p.effective.subscribe(), true, &conn);
    let _ = tokio::join!(a, b);
}

/// Both sockets of one proxied connection, to reset them together.
struct Conn {
    fds: [RawFd; 2],
    cancel: CancellationToken,
}

impl Conn {
    /// Abort both sides: SO_LINGER 0, so that closing sends a RST; the pipes then end.
    fn reset(&self) {
        for fd in self.fds {
            linger_zero(fd);
        }
        self.cancel.cancel();
    }
}

fn linger_zero(fd: RawFd) {
    let l = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: fd is a socket owned by a live half of this connection; the struct has the
    // size the option expects.
    unsafe {
        nix::libc::setsockopt(
            fd,
            nix::libc::SOL_SOCKET,
            nix::libc::SO_LINGER,
            &l as *const _ as *const nix::libc::c_void,
            std::mem::size_of::<nix::libc::linger>() as nix::libc::socklen_t,
        );
    }
}

/// One direction: a reader stamps each chunk with its delivery time (latency, jitter),
/// a writer delivers it then (pipelined, so latency does not cut throughput), honouring
/// partition and bandwidth at delivery.
async fn pipe(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    rx: watch::Receiver<Arc<Toxic>>,
    downstream: bool,
    conn: &Conn,
) {
    let (tx, mut chunks) = mpsc::channel::<(Instant, Vec<u8>)>(64);
    let mut rx_r = rx.clone();
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut last = Instant::now();
        loop {
            let n = tokio::select! {
                _ = conn.cancel.cancelled() => break,
                r = r.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                },
            };
            let t = rx_r.borrow_and_update().clone();
            if t.reset {
                conn.reset();
                break;
            }
            // A request on a kept-alive connection is dropped too: this chunk and all
            // that follow vanish (the stream cannot resume mid-way), the client waits.
            if !downstream && t.drop_pct > 0.0 && rand::rng().random_range(0.0..100.0) < t.drop_pct
            {
                tokio::select! {
                    _ = conn.cancel.cancelled() => {}
                    _ = wait_while(&mut rx_r, |t| t.drop_pct > 0.0) => conn.reset(),
                    _ = async {
                        while matches!(r.read(&mut buf).await, Ok(n) if n > 0) {}
                    } => {}
                }
                break;
            }
            let mut at = Instant::now();
            if downstream && !t.latency.is_zero() {
                let mut d = t.latency.as_secs_f64();
                if !t.jitter.is_zero() {
                    let j = t.jitter.as_secs_f64();
                    d += rand::rng().random_range(-j..=j);
                }
                at += Duration::from_secs_f64(d.max(0.0));
            }
            // Keep the byte order: never deliver before the previous chunk.
            at = at.max(last);
            last = at;
            if tx.send((at, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    };
    let mut rx_w = rx;
    let writer = async move {
        let deliver = async {
            while let Some((at, data)) = chunks.recv().await {
                wait_while(&mut rx_w, |t| t.partition).await;
                tokio::time::sleep_until(at).await;
                let bw = rx_w.borrow().bandwidth;
                if let Some(bw) = bw.filter(|b| *b > 0) {
                    // Write in slices so the rate holds within a chunk too.
                    // Each slice waits for its share of time before it goes out.
                    for part in data.chunks(((bw / 10).max(1)) as usize) {
                        tokio::time::sleep(Duration::from_secs_f64(part.len() as f64 / bw as f64))
                            .await;
                        if w.write_all(part).await.is_err() {
                            return;
                        }
                    }
                } else if w.write_all(&data).await.is_err() {
                    return;
                }
            }
            let _ = w.shutdown().await;
        };
        tokio::select! {
            _ = conn.cancel.cancelled() => {}
            _ = deliver => {}
        }
    };
    tokio::join!(reader, writer);
}
