//! `bench-server PORT`: the target server of scripts/bench.sh (see serve.rs), on one
//! thread. Prints `served N` to stderr when it gets SIGTERM or SIGINT.

mod serve;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(18999);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind 127.0.0.1");
        let served = Arc::new(AtomicU64::new(0));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = serve::serve(listener, served.clone()) => {}
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        eprintln!("served {}", served.load(Ordering::Relaxed));
    });
}
