//! The benchmark's target server, shared by `bench-server` (scripts/bench.sh) and the
//! `bench_server` test (scripts/bench-load.sh): HTTP/1.1 keep-alive, a 2-byte body.
//!
//! * `GET /__count`: the number of requests answered so far (this one not counted), so
//!   the harness counts the requests of a measured window on the server side.
//! * `GET /sleep20...`: answered after 20 ms (the fixed-latency endpoint of the open-model
//!   run).
//! * anything else: answered at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

/// Accepts and serves connections on `listener` until the future is dropped; every
/// answered request (but `/__count`) adds one to `served`.
pub async fn serve(listener: tokio::net::TcpListener, served: Arc<AtomicU64>) {
    let body = Bytes::from_static(b"ok");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let served = served.clone();
        let body = body.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let served = served.clone();
                let body = body.clone();
                async move {
                    let path = req.uri().path();
                    let out = if path == "/__count" {
                        Bytes::from(served.load(Ordering::Relaxed).to_string())
                    } else {
                        if path.starts_with("/sleep20") {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        served.fetch_add(1, Ordering::Relaxed);
                        body
                    };
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(out)))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
