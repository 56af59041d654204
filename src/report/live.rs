//! Live metrics in the Prometheus text format (version 0.0.4), for `run --metrics-listen`:
//! what the recorder knows while the run goes, scraped by a Prometheus (or a test).
//!
//! - `gauntlet_requests_total{outcome="ok"|"error"}`: requests that ran (counter);
//! - `gauntlet_request_duration_seconds`: their service time (raw latency), a histogram
//!   with fixed buckets from 1 ms to 60 s, read from the run's HDR histogram;
//! - `gauntlet_users`: virtual users running now (open model: iterations in flight);
//! - `gauntlet_fault_active{kind, target}`: 1 while a fault is applied and neither undone
//!   nor recovered from, else 0 (every fault occurrence seen so far).
//!
//! Every series carries `scenario` and `run_id`.

use std::fmt::Write;

use crate::record::{fault_windows, Record};

/// Bucket bounds of the duration histogram, seconds.
const BUCKETS_S: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A label value escaped as the format asks (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text of one scrape.
pub fn prometheus(record: &Record, users: u32, scenario: &str, run_id: &str) -> String {
    let base = format!(
        "scenario=\"{}\",run_id=\"{}\"",
        label(scenario),
        label(run_id)
    );
    let t = &record.total;
    let mut o = String::with_capacity(2048);
    o.push_str("# HELP gauntlet_requests_total Requests that ran, by outcome.\n");
    o.push_str("# TYPE gauntlet_requests_total counter\n");
    let _ = writeln!(
        o,
        "gauntlet_requests_total{{{base},outcome=\"ok\"}} {}",
        t.count.saturating_sub(t.errors)
    );
    let _ = writeln!(
        o,
        "gauntlet_requests_total{{{base},outcome=\"error\"}} {}",
        t.errors
    );
    o.push_str(
        "# HELP gauntlet_request_duration_seconds Service time of the requests (raw latency).\n",
    );
    o.push_str("# TYPE gauntlet_request_duration_seconds histogram\n");
    let h = &t.raw;
    for le in BUCKETS_S {
        let us = (le * 1e6) as u64;
        // HDR buckets are exact to their precision: values equivalent to the bound count.
        let n = if h.is_empty() {
            0
        } else {
            h.count_between(0, us)
        };
        let _ = writeln!(
            o,
            "gauntlet_request_duration_seconds_bucket{{{base},le=\"{le}\"}} {n}"
        );
    }
    let _ = writeln!(
        o,
        "gauntlet_request_duration_seconds_bucket{{{base},le=\"+Inf\"}} {}",
        h.len()
    );
    let sum_s = if h.is_empty() {
        0.0
    } else {
        h.mean() * h.len() as f64 / 1e6
    };
    let _ = writeln!(o, "gauntlet_request_duration_seconds_sum{{{base}}} {sum_s}");
    let _ = writeln!(
        o,
        "gauntlet_request_duration_seconds_count{{{base}}} {}",
        h.len()
    );
    o.push_str("# HELP gauntlet_users Virtual users running now.\n");
    o.push_str("# TYPE gauntlet_users gauge\n");
    let _ = writeln!(o, "gauntlet_users{{{base}}} {users}");
    o.push_str("# HELP gauntlet_fault_active Whether a fault is in force on a target.\n");
    o.push_str("# TYPE gauntlet_fault_active gauge\n");
    // One series per (kind, target): active if any occurrence is.
    let mut seen: Vec<(&'static str, String, bool)> = Vec::new();
    for w in fault_windows(&record.faults) {
        let active = w.applied_at.is_some() && w.undone_at.is_none() && w.recovered_at.is_none();
        match seen
            .iter_mut()
            .find(|(k, t, _)| *k == w.kind.as_str() && *t == w.target)
        {
            Some(s) => s.2 |= active,
            None => seen.push((w.kind.as_str(), w.target.clone(), active)),
        }
    }
    for (kind, target, active) in seen {
        let _ = writeln!(
            o,
            "gauntlet_fault_active{{{base},kind=\"{kind}\",target=\"{}\"}} {}",
            label(&target),
            u8::from(active)
        );
    }
    o
}

/// Serve `text()` to every connection on `listener` until `stop`: a minimal HTTP/1.x
/// server (read the request head, answer, close), enough for a Prometheus scrape.
pub async fn serve(
    listener: tokio::net::TcpListener,
    text: std::sync::Arc<std::sync::Mutex<String>>,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let conn = tokio::select! {
            c = listener.accept() => c,
            _ = stop.cancelled() => return,
        };
        let Ok((sock, peer)) = conn else {
            continue;
        };
        let body = text.lock().map(|t| t.clone()).unwrap_or_default();
        tokio::spawn(async move {
            if let Err(e) = answer(sock, body).await {
                tracing::debug!(%peer, error = %e, "metrics scrape failed");
            }
        });
    }
}

async fn answer(mut sock: tokio::net::TcpStream, body: String) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The request head, bounded in size and time; its content does not matter.
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    let read = async {
        while n < buf.len() {
            let k = sock.read(&mut buf[n..]).await?;
            if k == 0 {
                break;
            }
            n += k;
            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        Ok::<(), std::io::Error>(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), read)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head"))??;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body.as_bytes()).await?;
    sock.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
