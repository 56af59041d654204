//! The terminal summary: a table per request name, the faults, the criteria with
//! PASS/FAIL, one verdict line. Plain text unless `color`.

use std::fmt::Write;

use crate::grade::Verdict;
use crate::metric::format;
use crate::record::{Record, RequestStats};
use crate::report::text::{self, FaultWindow};
use crate::report::{EndedBy, RunInfo};
use crate::scenario::model::LatencyBasis;
use crate::scenario::Plan;

pub(crate) struct Style {
    pub(crate) on: bool,
}

impl Style {
    pub(crate) fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub(crate) fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    pub(crate) fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    pub(crate) fn green(&self, s: &str) -> String {
        self.paint("1;32", s)
    }
    pub(crate) fn red(&self, s: &str) -> String {
        self.paint("1;31", s)
    }
    pub(crate) fn yellow(&self, s: &str) -> String {
        self.paint("1;33", s)
    }
}

fn width(s: &str) -> usize {
    s.chars().count()
}

fn pad_right(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(width(s))))
}

fn pad_left(s: &str, w: usize) -> String {
    format!("{}{s}", " ".repeat(w.saturating_sub(width(s))))
}

/// A table: first column left-aligned, the others right-aligned, two spaces apart.
pub(crate) fn table(
    out: &mut String,
    st: &Style,
    header: &[&str],
    rows: &[Vec<String>],
    indent: &str,
) {
    let mut w: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(width(c));
        }
    }
    let line = |cells: Vec<String>| -> String {
        let mut l = String::from(indent);
        for (i, c) in cells.iter().enumerate() {
            if i == 0 {
                l.push_str(&pad_right(c, w[0]));
            } else {
                l.push_str("  ");
                l.push_str(&pad_left(c, w[i]));
            }
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(
        out,
        "{}",
        st.bold(&line(header.iter().map(|h| h.to_string()).collect()))
    );
    for r in rows {
        let _ = writeln!(out, "{}", line(r.clone()));
    }
}

fn request_row(s: &RequestStats, basis: LatencyBasis, secs: f64) -> Vec<String> {
    let h = s.graded(basis);
    let lat = |q: f64| {
        if h.is_empty() {
            "-".to_string()
        } else {
            format::ms(h.value_at_quantile(q) as f64, 2)
        }
    };
    vec![
        s.name.clone(),
        s.count.to_string(),
        s.errors.to_string(),
        if secs > 0.0 {
            format!("{:.1}", s.count as f64 / secs)
        } else {
            "-".into()
        },
        lat(0.50),
        lat(0.90),
        lat(0.95),
        lat(0.99),
        if h.is_empty() {
            "-".into()
        } else {
            format::ms(h.max() as f64, 2)
        },
    ]
}

fn fault_line(w: &FaultWindow, plan: &Plan, record: &Record) -> String {
    let at = |d: std::time::Duration| format!("{:.1}s", text::since_load(record, d));
    let mut s = w.label();
    if let Some(a) = w.applied_at {
        let _ = write!(s, ": applied at {}", at(a));
        if let Some(u) = w.undone_at {
            let _ = write!(s, ", undone at {}", at(u));
        }
        match w.recovery_s {
            Some(r) => {
                let _ = write!(s, ", recovered in {}", format::duration_s(r));
            }
            None if crate::grade::recovery_expected(plan, w.kind, &w.target) => {
                s.push_str(", did not recover");
            }
            None => {}
        }
    }
    if let Some(f) = &w.failed {
        let _ = write!(s, ": failed: {f}");
    }
    s
}

pub fn render(
    plan: &Plan,
    info: &RunInfo,
    record: &Record,
    verdict: &Verdict,
    color: bool,
) -> String {
    let st = Style { on: color };
    let mut out = String::new();
    heading(&mut out, &st, plan, info, record);
    requests(&mut out, &st, record);
    flows(&mut out, &st, record);
    top_errors(&mut out, &st, record);
    websockets(&mut out, &st, record);
    faults(&mut out, &st, plan, record);
    notices(&mut out, &st, record);
    criteria(&mut out, &st, verdict);
    verdict_line(&mut out, &st, info, record, verdict);
    out
}

/// The scenario, run and seed, then the load's figures.
fn heading(out: &mut String, st: &Style, plan: &Plan, info: &RunInfo, record: &Record) {
    let _ = writeln!(
        out,
        "{}  run {}  seed {}",
        st.bold(&info.scenario),
        info.run_id,
        info.seed
    );
    let _ = writeln!(
        out,
        "load {:.1}s of {:.1}s planned, users peak {}, {} requests, {} errors{}",
        record.load_duration.as_secs_f64(),
        plan.load_duration.as_secs_f64(),
        record.users_peak,
        record.total.count,
        record.total.errors,
        if record.dropped > 0 {
            format!(", {} iterations dropped", record.dropped)
        } else {
            String::new()
        }
    );
    out.push('\n');
}

fn requests(out: &mut String, st: &Style, record: &Record) {
    if record.requests.is_empty() && record.total.count == 0 {
        return;
    }
    table(
        out,
        st,
        &[
            "request", "count", "errors", "rps", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms",
        ],
        &request_rows(record),
        "",
    );
    let _ = writeln!(
        out,
        "{}",
        st.dim(&format!("latency: {}", text::basis_phrase(record)))
    );
    out.push('\n');
}

/// A row per flow (whole-flow latency, think times included); nothing without flows.
fn flows(out: &mut String, st: &Style, record: &Record) {
    if record.flows.is_empty() {
        return;
    }
    let secs = record.load_duration.as_secs_f64();
    let rows: Vec<Vec<String>> = record
        .flows
        .iter()
        .map(|s| request_row(s, LatencyBasis::Raw, secs))
        .collect();
    table(
        out,
        st,
        &[
            "flow", "count", "failed", "per s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms",
        ],
        &rows,
        "",
    );
    let _ = writeln!(
        out,
        "{}",
        st.dim("flow latency: first step sent to last step answered, think times included")
    );
    out.push('\n');
}

/// A row per request, an "all" row unless there is only one request, and the other
/// histogram's latencies when it differs.
fn request_rows(record: &Record) -> Vec<Vec<String>> {
    let secs = record.load_duration.as_secs_f64();
    let mut rows: Vec<Vec<String>> = record
        .requests
        .iter()
        .map(|s| request_row(s, record.latency_basis, secs))
        .collect();
    if record.requests.len() != 1 {
        let mut total = request_row(&record.total, record.latency_basis, secs);
        total[0] = "all".into();
        rows.push(total);
    }
    // With a think time the two histograms differ: show the other one too.
    if record.expected_interval_us.is_some() && record.total.count > 0 {
        let other = match record.latency_basis {
            LatencyBasis::Corrected => LatencyBasis::Raw,
            LatencyBasis::Raw => LatencyBasis::Corrected,
        };
        let mut row = request_row(&record.total, other, secs);
        row[0] = format!("all ({})", text::basis_name(other));
        for c in &mut row[1..4] {
            c.clear();
        }
        rows.push(row);
    }
    rows
}

fn top_errors(out: &mut String, st: &Style, record: &Record) {
    if record.total.error_reasons.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", st.bold("top errors"));
    for (reason, n) in record.total.error_reasons.iter().take(5) {
        let _ = writeln!(out, "  {n:>7}  {reason}");
    }
    out.push('\n');
}

/// The WebSocket users' figures, when there were any.
fn websockets(out: &mut String, st: &Style, record: &Record) {
    let Some(t) = &record.ws else {
        return;
    };
    let ms = |q: f64| format!("{:.1}", t.rtt.value_at_quantile(q) as f64 / 1000.0);
    let rtt = if t.rtt.is_empty() {
        "no reply matched".to_string()
    } else {
        format!(
            "round trip p50 {} ms, p95 {} ms, p99 {} ms, max {:.1} ms",
            ms(0.50),
            ms(0.95),
            ms(0.99),
            t.rtt.max() as f64 / 1000.0
        )
    };
    let _ = writeln!(out, "{}", st.bold("websocket"));
    let _ = writeln!(
        out,
        "  {} connects ({} failed), peak {} open, {} closed abnormally; {} messages ({} failed)",
        t.connects, t.connect_failures, t.peak, t.abnormal_closes, t.messages, t.message_failures
    );
    let _ = writeln!(out, "  {rtt}");
    let mut top: Vec<_> = t.reasons.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    for (reason, n) in top.into_iter().take(3) {
        let _ = writeln!(out, "  {n:>7}  {reason}");
    }
    out.push('\n');
}

fn faults(out: &mut String, st: &Style, plan: &Plan, record: &Record) {
    let windows = text::fault_windows(&record.faults);
    if windows.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", st.bold("faults"));
    for w in &windows {
        let _ = writeln!(out, "  {}", fault_line(w, plan, record));
    }
    out.push('\n');
}

/// Warnings and errors only; info notices stay in the files.
fn notices(out: &mut String, st: &Style, record: &Record) {
    let notices: Vec<_> = record
        .notices
        .iter()
        .filter(|(_, l, _)| *l != crate::event::Level::Info)
        .collect();
    if notices.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", st.bold("notices"));
    for (_, l, m) in notices {
        let lv = crate::report::summary::level(*l);
        let _ = writeln!(out, "  {}  {m}", st.yellow(&pad_right(lv, 5)));
    }
    out.push('\n');
}

/// A PASS/FAIL line per criterion, sources and measurements in aligned columns; the
/// detail under each failed one.
fn criteria(out: &mut String, st: &Style, verdict: &Verdict) {
    if verdict.criteria.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", st.bold("criteria"));
    let src_w = verdict
        .criteria
        .iter()
        .map(|c| width(&c.source))
        .max()
        .unwrap_or(0);
    let meas: Vec<String> = verdict
        .criteria
        .iter()
        .map(|c| {
            c.measured
                .map(|q| q.to_string())
                .unwrap_or_else(|| "-".into())
        })
        .collect();
    let meas_w = meas.iter().map(|m| width(m)).max().unwrap_or(0);
    for (c, m) in verdict.criteria.iter().zip(&meas) {
        let mark = if c.passed {
            st.green("PASS")
        } else {
            st.red("FAIL")
        };
        let line = format!(
            "  {mark}  {}  measured {}  threshold {} {}",
            pad_right(&c.source, src_w),
            pad_right(m, meas_w),
            c.op,
            c.threshold
        );
        let _ = writeln!(out, "{}", line.trim_end());
        if !c.passed {
            if let Some(d) = &c.detail {
                let _ = writeln!(out, "        {}", st.dim(d));
            }
        }
    }
    out.push('\n');
}

/// The last line: how the run ended, the criteria count, the grader's problems.
fn verdict_line(out: &mut String, st: &Style, info: &RunInfo, record: &Record, verdict: &Verdict) {
    let failed = verdict.criteria.iter().filter(|c| !c.passed).count();
    let total = verdict.criteria.len();
    let head = match &info.ended_by {
        EndedBy::Interrupted => st.yellow("INTERRUPTED"),
        EndedBy::Error(e) => st.red(&format!("ERROR: {e}")),
        EndedBy::Completed if verdict.passed => st.green("PASSED"),
        EndedBy::Completed => st.red("FAILED"),
    };
    let mut tail = if failed > 0 {
        format!("{failed} of {total} criteria failed")
    } else {
        format!("{total} of {total} criteria passed")
    };
    for p in &verdict.problems {
        tail.push_str(", ");
        tail.push_str(p);
    }
    let _ = writeln!(
        out,
        "{head}  {tail}; latency criteria used the {} histogram",
        text::basis_name(record.latency_basis)
    );
}
