//! `timeseries.csv`: one row per second of load.
//!
//! Columns: `second` (since load start; the row covers [second, second+1)), `users`,
//! `requests` (finished in that second), `rps`, `errors`, `p50_ms`, `p95_ms`, `p99_ms`,
//! `max_ms` (latency of the requests that finished in that second, as measured, in ms with
//! 3 decimals; empty when no request finished). Seconds without any event are filled in
//! (users carried over, zero requests), so the rows are contiguous.

use crate::record::{Record, Window};

/// One second of load, gaps filled, with its rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub second: u32,
    pub users: u32,
    pub requests: u64,
    pub rps: f64,
    pub errors: u64,
    /// None when no request finished in that second.
    pub latency_us: Option<[u64; 4]>,
    /// The same figures of the raw and of the corrected latency (for the charts).
    pub raw_us: Option<[u64; 4]>,
    pub corrected_us: Option<[u64; 4]>,
}

/// The rows of the run: contiguous seconds from 0 to the last recorded window.
pub fn rows(record: &Record) -> Vec<Row> {
    let mut windows: Vec<&Window> = record.windows.iter().collect();
    windows.sort_by_key(|w| w.second);
    let Some(last) = windows.last().map(|w| w.second) else {
        return Vec::new();
    };
    let load_s = record.load_duration.as_secs_f64();
    let mut out = Vec::with_capacity(last as usize + 1);
    let mut it = windows.into_iter().peekable();
    let mut users = 0;
    for second in 0..=last {
        // Several windows for one second should not happen; merge them if they do.
        let mut row = Row {
            second,
            users,
            requests: 0,
            rps: 0.0,
            errors: 0,
            latency_us: None,
            raw_us: None,
            corrected_us: None,
        };
        while let Some(w) = it.next_if(|w| w.second == second) {
            row.users = w.users;
            row.requests += w.requests;
            row.errors += w.errors;
            if w.requests > 0 {
                merge(
                    &mut row.latency_us,
                    [w.p50_us, w.p95_us, w.p99_us, w.max_us],
                );
                merge(&mut row.raw_us, w.raw_us);
                merge(&mut row.corrected_us, w.corrected_us);
            }
        }
        users = row.users;
        // The last second of the load may be partial.
        let span = if load_s > second as f64 {
            (load_s - second as f64).clamp(0.25, 1.0)
        } else {
            1.0
        };
        row.rps = row.requests as f64 / span;
        out.push(row);
    }
    out
}

fn merge(into: &mut Option<[u64; 4]>, l: [u64; 4]) {
    *into = Some(match *into {
        None => l,
        Some(p) => [
            p[0].max(l[0]),
            p[1].max(l[1]),
            p[2].max(l[2]),
            p[3].max(l[3]),
        ],
    });
}

fn ms3(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// The CSV text.
pub fn to_csv(record: &Record) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "second", "users", "requests", "rps", "errors", "p50_ms", "p95_ms", "p99_ms", "max_ms",
    ])?;
    for r in rows(record) {
        let lat: [String; 4] = match r.latency_us {
            Some(l) => l.map(ms3),
            None => Default::default(),
        };
        w.write_record([
            r.second.to_string(),
            r.users.to_string(),
            r.requests.to_string(),
            format!("{:.1}", r.rps),
            r.errors.to_string(),
            lat[0].clone(),
            lat[1].clone(),
            lat[2].clone(),
            lat[3].clone(),
        ])?;
    }
    w.into_inner()
        .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}
