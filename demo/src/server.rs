//! The HTTP server loop shared by the api and the pipeline: HTTP/1.1 only, one task per
//! connection, upgrades (WebSocket) allowed.
//!
//! Why not `axum::serve`: it sniffs every connection for HTTP/2 (hyper-util's auto
//! builder); plain http1 is what the load tests speak and is measurably cheaper per request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::DemoError;

/// How long open connections get to finish after shutdown starts.
const DRAIN: Duration = Duration::from_secs(3);

/// Decrements the live-connection count when a connection task ends.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `app` until `shutdown` is cancelled, then drains for at most [`DRAIN`].
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    who: &str,
) -> Result<(), DemoError> {
    let svc = TowerToHyperService::new(app);
    let live = Arc::new(AtomicUsize::new(0));
    let mut accept_error_logged = false;
    loop {
        let (tcp, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the open ones.
                    if !accept_error_logged {
                        eprintln!("{who}: accept failed: {e} (further accept errors not logged)");
                        accept_error_logged = true;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        // Small request/response pairs: do not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        live.fetch_add(1, Ordering::Relaxed);
        let guard = Live(live.clone());
        let svc = svc.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN, conn).await;
                }
            }
        });
    }
    drop(listener);
    let deadline = Instant::now() + DRAIN;
    while live.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = live.load(Ordering::Relaxed);
    if left > 0 {
        eprintln!("{who}: {left} connections still open after {DRAIN:?}; closing them");
    }
    eprintln!("{who}: stopped");
    Ok(())
}
