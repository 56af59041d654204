//! `report.html`: one self-contained page (inline CSS, inline SVG charts drawn here; no
//! script, no external asset) with the verdict, the criteria, the requests, charts over
//! time (latency percentiles, throughput, errors, users) with the fault windows shaded on
//! every chart, and the faults, service events, probes, resources, metrics and notices.

use std::fmt::Write;

use crate::grade::Verdict;
use crate::metric::format;
use crate::record::{Record, RequestStats};
use crate::report::text::{self, FaultWindow};
use crate::report::timeseries::{self, Row};
use crate::report::{EndedBy, RunInfo};
use crate::scenario::model::LatencyBasis;
use crate::scenario::Plan;

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

pub(crate) const CSS: &str = r#"
:root{--fg:#1d232b;--muted:#5d6875;--line:#dde2e8;--bg:#f6f7f9;--pass:#16803c;--fail:#c62828;--warn:#b26a00}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1040px;margin:0 auto;padding:24px}
header{display:flex;gap:24px;align-items:center;background:#fff;border:1px solid var(--line);border-left:10px solid var(--fail);border-radius:8px;padding:18px 24px}
header.passed{border-left-color:var(--pass)}
header.interrupted{border-left-color:var(--warn)}
.verdict{font-size:44px;font-weight:800;letter-spacing:1px;color:var(--fail)}
header.passed .verdict{color:var(--pass)}
header.interrupted .verdict{color:var(--warn)}
h1{margin:0 0 4px;font-size:22px}
h2{font-size:16px;margin:28px 0 10px}
.meta{color:var(--muted);margin:0}
.meta b{color:var(--fg);font-weight:600}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:4px 18px 16px;margin-top:18px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.4px}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600}
.pass{color:var(--pass);font-weight:700}
.fail{color:var(--fail);font-weight:700}
.detail{color:var(--muted);font-size:12px}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.chart{margin:8px 0 14px}
.chart h3{font-size:13px;margin:0 0 2px;display:flex;gap:14px;align-items:center;flex-wrap:wrap}
.key{font-weight:400;color:var(--muted);font-size:12px}
.key i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
svg{display:block;width:100%;height:auto}
.note{color:var(--muted);font-size:12px;margin:6px 0 0}
footer{color:var(--muted);font-size:12px;margin:18px 0}
"#;

/// One line on a chart; a None y breaks the line.
struct Series<'a> {
    label: &'a str,
    color: &'a str,
    points: Vec<(f64, Option<f64>)>,
}

/// A round step so that `max / step` is about `n` ticks.
fn nice_step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

fn fmt_tick(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{}k", format::trim(v / 1000.0, 1))
    } else {
        format::trim(v, 2)
    }
}

// Chart geometry: the viewBox, the plot margins and the plot area.
const W: f64 = 960.0;
const H: f64 = 200.0;
const L: f64 = 56.0;
const R: f64 = 14.0;
const T: f64 = 18.0;
const B: f64 = 26.0;
const PW: f64 = W - L - R;
const PH: f64 = H - T - B;

/// Maps data to plot coordinates: x in seconds, y rounded up to whole ticks.
struct Scale {
    x_max: f64,
    y_max: f64,
    y_step: f64,
}

impl Scale {
    fn new(series: &[Series], x_max: f64) -> Scale {
        let y_top = series
            .iter()
            .flat_map(|s| s.points.iter().filter_map(|p| p.1))
            .fold(0.0f64, f64::max);
        let y_step = nice_step(if y_top > 0.0 { y_top } else { 1.0 }, 4.0);
        Scale {
            x_max: x_max.max(1.0),
            y_max: (y_top / y_step).ceil().max(1.0) * y_step,
            y_step,
        }
    }
    fn x(&self, x: f64) -> f64 {
        L + (x.clamp(0.0, self.x_max) / self.x_max) * PW
    }
    fn y(&self, y: f64) -> f64 {
        T + PH - (y.clamp(0.0, self.y_max) / self.y_max) * PH
    }
}

fn chart(
    title: &str,
    unit: &str,
    series: &[Series],
    x_max: f64,
    faults: &[(f64, f64, String)],
) -> String {
    let sc = Scale::new(series, x_max);
    let mut s = String::new();
    chart_head(&mut s, title, series);
    // Fault windows under everything.
    fault_shading(&mut s, &sc, faults);
    y_grid(&mut s, &sc, unit);
    x_axis(&mut s, &sc);
    for se in series {
        series_line(&mut s, &sc, se);
    }
    s.push_str("</svg></div>");
    s
}

/// The title with a colour key per series, then the opening `<svg>`.
fn chart_head(s: &mut String, title: &str, series: &[Series]) {
    let _ = write!(s, "<div class=\"chart\"><h3>{}", esc(title));
    for se in series {
        let _ = write!(
            s,
            "<span class=\"key\"><i style=\"background:{}\"></i>{}</span>",
            se.color,
            esc(se.label)
        );
    }
    let _ = write!(
        s,
        "</h3><svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(title)
    );
}

fn fault_shading(s: &mut String, sc: &Scale, faults: &[(f64, f64, String)]) {
    let rows = label_rows(sc, faults);
    for ((a, b, label), row) in faults.iter().zip(rows) {
        let x0 = sc.x(*a);
        let x1 = sc.x(*b).max(x0 + 2.0);
        let _ = write!(
            s,
            "<g><title>{l}</title><rect x=\"{x0:.1}\" y=\"{T}\" width=\"{:.1}\" height=\"{PH}\" fill=\"#c62828\" fill-opacity=\"0.10\"/>\
             <line x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{T}\" y2=\"{:.1}\" stroke=\"#c62828\" stroke-dasharray=\"3 3\" stroke-width=\"1\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#c62828\">{l}</text></g>",
            x1 - x0,
            T + PH,
            x0 + 3.0,
            T + 10.0 + row as f64 * LABEL_ROW,
            l = esc(label)
        );
    }
}

/// Height of one row of fault labels.
const LABEL_ROW: f64 = 11.0;

/// The row of each fault's label: left to right, each label goes into the first row
/// where it does not run into the label before it (an estimate of its width at 10px),
/// so labels of faults close in time are staggered instead of drawn over each other.
fn label_rows(sc: &Scale, faults: &[(f64, f64, String)]) -> Vec<usize> {
    let max_rows = ((PH - 10.0) / LABEL_ROW).floor().max(1.0) as usize;
    let mut order: Vec<usize> = (0..faults.len()).collect();
    order.sort_by(|&i, &j| faults[i].0.total_cmp(&faults[j].0).then(i.cmp(&j)));
    let mut ends: Vec<f64> = Vec::new();
    let mut rows = vec![0; faults.len()];
    for i in order {
        let x = sc.x(faults[i].0) + 3.0;
        let width = faults[i].2.chars().count() as f64 * 5.6 + 6.0;
        let row = match ends.iter().position(|end| *end <= x) {
            Some(r) => r,
            None if ends.len() < max_rows => {
                ends.push(0.0);
                ends.len() - 1
            }
            // Every row is taken here: the one that frees up first.
            None => ends
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(r, _)| r),
        };
        ends[row] = x + width;
        rows[i] = row;
    }
    rows
}

/// Horizontal grid lines with their y labels, and the unit above them.
fn y_grid(s: &mut String, sc: &Scale, unit: &str) {
    let mut y = 0.0;
    while y <= sc.y_max + sc.y_step * 0.01 {
        let py = sc.y(y);
        let _ = write!(
            s,
            "<line x1=\"{L}\" x2=\"{:.1}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#dde2e8\" stroke-width=\"1\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#5d6875\" text-anchor=\"end\">{}</text>",
            L + PW,
            L - 6.0,
            py + 3.5,
            fmt_tick(y)
        );
        y += sc.y_step;
    }
    let _ = write!(
        s,
        "<text x=\"4\" y=\"{:.1}\" font-size=\"10\" fill=\"#5d6875\">{}</text>",
        T - 6.0,
        esc(unit)
    );
}

/// X labels (seconds of load, minutes past a minute step) and the base line.
fn x_axis(s: &mut String, sc: &Scale) {
    let x_step = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
    ]
    .into_iter()
    .find(|st| sc.x_max / st <= 12.0)
    .unwrap_or(7200.0);
    let mut x = 0.0;
    while x <= sc.x_max + 1e-9 {
        let label = if x_step >= 60.0 {
            format!("{}m", format::trim(x / 60.0, 1))
        } else {
            format!("{}s", format::trim(x, 0))
        };
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#5d6875\" text-anchor=\"middle\">{label}</text>",
            sc.x(x),
            H - 8.0
        );
        x += x_step;
    }
    let _ = write!(
        s,
        "<line x1=\"{L}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#9aa4af\" stroke-width=\"1\"/>",
        L + PW,
        T + PH,
        T + PH
    );
}

/// One series of [`xy_chart`]: label, colour, points (a None y breaks the line).
pub(crate) type XySeries<'a> = (&'a str, &'a str, Vec<(f64, Option<f64>)>);

/// A chart of figures against a load (x: users or a rate, not time), its points dotted,
/// with a dashed vertical mark (the capacity knee). Series: label, colour, points.
pub(crate) fn xy_chart(
    title: &str,
    unit: &str,
    x_unit: &str,
    series: &[XySeries<'_>],
    mark: Option<(f64, &str)>,
) -> String {
    let series: Vec<Series> = series
        .iter()
        .map(|(label, color, points)| Series {
            label,
            color,
            points: points.clone(),
        })
        .collect();
    let x_top = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .chain(mark.map(|m| m.0))
        .fold(0.0f64, f64::max);
    let x_step = nice_step(if x_top > 0.0 { x_top } else { 1.0 }, 8.0);
    let mut sc = Scale::new(&series, (x_top / x_step).ceil().max(1.0) * x_step);
    sc.x_max = sc.x_max.max(x_step);
    let mut s = String::new();
    chart_head(&mut s, title, &series);
    if let Some((x, label)) = mark {
        let px = sc.x(x);
        let _ = write!(
            s,
            "<g><title>{l}</title><line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{T}\" y2=\"{:.1}\" stroke=\"#16803c\" stroke-dasharray=\"4 3\" stroke-width=\"1.5\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#16803c\">{l}</text></g>",
            T + PH,
            px + 4.0,
            T + 10.0,
            l = esc(label)
        );
    }
    y_grid(&mut s, &sc, unit);
    let mut x = 0.0;
    while x <= sc.x_max + x_step * 0.01 {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#5d6875\" text-anchor=\"middle\">{}</text>",
            sc.x(x),
            H - 8.0,
            fmt_tick(x)
        );
        x += x_step;
    }
    let _ = write!(
        s,
        "<line x1=\"{L}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#9aa4af\" stroke-width=\"1\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#5d6875\" text-anchor=\"end\">{}</text>",
        L + PW,
        T + PH,
        T + PH,
        L + PW,
        T - 6.0,
        esc(x_unit)
    );
    for se in &series {
        series_line(&mut s, &sc, se);
        for (x, y) in &se.points {
            if let Some(y) = y {
                let _ = write!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"/>",
                    sc.x(*x),
                    sc.y(*y),
                    se.color
                );
            }
        }
    }
    s.push_str("</svg></div>");
    s
}

/// One series as polylines, broken where there is no value.
fn series_line(s: &mut String, sc: &Scale, se: &Series) {
    let mut seg: Vec<String> = Vec::new();
    for (x, y) in &se.points {
        match y {
            Some(y) => seg.push(format!("{:.1},{:.1}", sc.x(*x), sc.y(*y))),
            None => flush_segment(s, se, &mut seg),
        }
    }
    flush_segment(s, se, &mut seg);
}

fn flush_segment(s: &mut String, se: &Series, seg: &mut Vec<String>) {
    if seg.len() == 1 {
        // A lone point: a dot.
        let xy: Vec<&str> = seg[0].split(',').collect();
        let _ = write!(
            s,
            "<circle cx=\"{}\" cy=\"{}\" r=\"2\" fill=\"{}\"/>",
            xy[0], xy[1], se.color
        );
    } else if seg.len() > 1 {
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" stroke-linejoin=\"round\" points=\"{}\"><title>{}</title></polyline>",
            se.color,
            seg.join(" "),
            esc(se.label)
        );
    }
    seg.clear();
}

fn request_row(s: &RequestStats, record: &Record, secs: f64, total: bool) -> String {
    let h = s.graded(record.latency_basis);
    let q = |p: f64| {
        if h.is_empty() {
            "–".into()
        } else {
            format::ms(h.value_at_quantile(p) as f64, 2)
        }
    };
    format!(
        "<tr{}><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
        if total { " class=total" } else { "" },
        esc(&s.name),
        s.count,
        s.errors,
        if s.count > 0 {
            format::percent(s.errors as f64 / s.count as f64 * 100.0)
        } else {
            "–".into()
        },
        if secs > 0.0 {
            format!("{:.1}", s.count as f64 / secs)
        } else {
            "–".into()
        },
        q(0.5),
        q(0.9),
        q(0.95),
        q(0.99),
        if h.is_empty() {
            "–".into()
        } else {
            format::ms(h.max() as f64, 2)
        },
    )
}

fn fault_spans(windows: &[FaultWindow], record: &Record, x_max: f64) -> Vec<(f64, f64, String)> {
    windows
        .iter()
        .filter_map(|w| {
            let a = text::since_load(record, w.applied_at?);
            let end = record.load_started.unwrap_or_default()
                + std::time::Duration::from_secs_f64(x_max.max(0.0));
            let b = text::since_load(record, w.end(end));
            Some((a.max(0.0), b.max(a).max(0.0), w.name.clone()))
        })
        .collect()
}

pub fn render(plan: &Plan, info: &RunInfo, record: &Record, verdict: &Verdict) -> String {
    render_with(plan, info, record, verdict, &[])
}

/// [`render`], with `sections` (HTML, e.g. the gate's comparison) after the criteria.
pub fn render_with(
    plan: &Plan,
    info: &RunInfo,
    record: &Record,
    verdict: &Verdict,
    sections: &[String],
) -> String {
    let big = big_word(info, verdict);
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · {} · gauntlet</title><style>{CSS}</style></head><body><main>",
        esc(&info.scenario),
        big
    );
    header(&mut h, plan, info, record, verdict, big);
    criteria(&mut h, record, verdict);
    for sec in sections {
        h.push_str(sec);
    }
    requests(&mut h, record);
    websockets(&mut h, record);
    let windows = text::fault_windows(&record.faults);
    over_time(&mut h, record, &windows);
    faults(&mut h, record, &windows);
    service_events(&mut h, record);
    observations(&mut h, record);
    notices(&mut h, record);
    let _ = writeln!(
        h,
        "<footer>gauntlet {} · exit code {} · summary.json, timeseries.csv and junit.xml are next to this file.</footer></main></body></html>",
        esc(&info.gauntlet_version),
        info.exit_code
    );
    h
}

/// The word in the verdict box (and the page title).
fn big_word(info: &RunInfo, verdict: &Verdict) -> &'static str {
    match &info.ended_by {
        EndedBy::Completed if verdict.passed => "PASS",
        EndedBy::Completed => "FAIL",
        EndedBy::Interrupted => "INTERRUPTED",
        EndedBy::Error(_) => "ERROR",
    }
}

/// The verdict box with the run's figures, how it ended and the grader's problems.
fn header(
    h: &mut String,
    plan: &Plan,
    info: &RunInfo,
    record: &Record,
    verdict: &Verdict,
    big: &str,
) {
    let status = text::status(info, verdict);
    let _ = write!(
        h,
        "<header class=\"{status}\"><div class=\"verdict\">{big}</div><div><h1>{}</h1>\
         <p class=\"meta\">run <b>{}</b> · seed <b>{}</b> · load <b>{:.1}s</b> of {:.1}s planned · users peak <b>{}</b> · <b>{}</b> requests, <b>{}</b> errors</p>\
         <p class=\"meta\">{} → {} · {}</p>",
        esc(&info.scenario),
        esc(&info.run_id),
        info.seed,
        record.load_duration.as_secs_f64(),
        plan.load_duration.as_secs_f64(),
        record.users_peak,
        record.total.count,
        record.total.errors,
        info.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        info.ended_at.format("%H:%M:%S UTC"),
        esc(&info.file.display().to_string()),
    );
    match &info.ended_by {
        EndedBy::Interrupted => h.push_str(
            "<p class=\"meta\"><b>Interrupted</b>: faults were undone; this report is partial.</p>",
        ),
        EndedBy::Error(e) => {
            let _ = write!(h, "<p class=\"meta\"><b>Error</b>: {}</p>", esc(e));
        }
        EndedBy::Completed => {}
    }
    for p in &verdict.problems {
        let _ = write!(h, "<p class=\"meta fail\">{}</p>", esc(p));
    }
    h.push_str("</div></header>");
}

fn criteria(h: &mut String, record: &Record, verdict: &Verdict) {
    h.push_str("<section><h2>Criteria</h2>");
    if verdict.criteria.is_empty() {
        h.push_str("<p class=\"note\">The scenario has no criteria.</p>");
    } else {
        h.push_str("<table><tr><th></th><th>criterion</th><th class=n>measured</th><th class=n>threshold</th></tr>");
        for c in &verdict.criteria {
            let _ = write!(
                h,
                "<tr><td class=\"{}\">{}</td><td><code>{}</code>{}</td><td class=n>{}</td><td class=n>{} {}</td></tr>",
                if c.passed { "pass" } else { "fail" },
                if c.passed { "PASS" } else { "FAIL" },
                esc(&c.source),
                c.detail
                    .as_ref()
                    .map(|d| format!("<div class=\"detail\">{}</div>", esc(d)))
                    .unwrap_or_default(),
                c.measured
                    .map(|m| esc(&m.to_string()))
                    .unwrap_or_else(|| "–".into()),
                esc(c.op.as_str()),
                esc(&c.threshold.to_string()),
            );
        }
        h.push_str("</table>");
    }
    let _ = write!(
        h,
        "<p class=\"note\">Latency criteria read the {} histogram: {}.</p></section>",
        text::basis_name(record.latency_basis),
        esc(&text::basis_phrase(record))
    );
}

/// The per-request table with an "all" row, then the top error reasons.
fn requests(h: &mut String, record: &Record) {
    let secs = record.load_duration.as_secs_f64();
    h.push_str("<section><h2>Requests</h2><table><tr><th>request</th><th class=n>count</th><th class=n>errors</th><th class=n>error rate</th><th class=n>rps</th><th class=n>p50 ms</th><th class=n>p90 ms</th><th class=n>p95 ms</th><th class=n>p99 ms</th><th class=n>max ms</th></tr>");
    for s in &record.requests {
        h.push_str(&request_row(s, record, secs, false));
    }
    let mut all = record.total.clone();
    all.name = "all".into();
    h.push_str(&request_row(&all, record, secs, true));
    h.push_str("</table>");
    if !record.total.error_reasons.is_empty() {
        h.push_str("<h2>Top errors</h2><table><tr><th class=n>count</th><th>reason</th></tr>");
        for (r, n) in record.total.error_reasons.iter().take(10) {
            let _ = write!(
                h,
                "<tr><td class=n>{n}</td><td><code>{}</code></td></tr>",
                esc(r)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>");
}

/// The WebSocket users' figures, when there were any.
fn websockets(h: &mut String, record: &Record) {
    let Some(t) = &record.ws else {
        return;
    };
    let ms = |v: u64| format!("{:.1}", v as f64 / 1000.0);
    let q = |p: f64| {
        if t.rtt.is_empty() {
            "–".to_string()
        } else {
            ms(t.rtt.value_at_quantile(p))
        }
    };
    let _ = write!(
        h,
        "<section><h2>WebSocket</h2><table><tr><th class=n>connects</th><th class=n>failed</th><th class=n>peak open</th><th class=n>abnormal closes</th><th class=n>messages</th><th class=n>failed</th><th class=n>p50 ms</th><th class=n>p95 ms</th><th class=n>p99 ms</th></tr>\
         <tr><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr></table>",
        t.connects,
        t.connect_failures,
        t.peak,
        t.abnormal_closes,
        t.messages,
        t.message_failures,
        q(0.50),
        q(0.95),
        q(0.99)
    );
    if !t.reasons.is_empty() {
        h.push_str("<table><tr><th class=n>count</th><th>reason</th></tr>");
        for (r, n) in &t.reasons {
            let _ = write!(
                h,
                "<tr><td class=n>{n}</td><td><code>{}</code></td></tr>",
                esc(r)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>");
}

/// The four charts over time, each with the fault windows shaded.
fn over_time(h: &mut String, record: &Record, windows: &[FaultWindow]) {
    let rows: Vec<Row> = timeseries::rows(record);
    let x_max = record.load_duration.as_secs_f64().max(rows.len() as f64);
    let spans = fault_spans(windows, record, x_max);
    h.push_str("<section><h2>Over time</h2>");
    if rows.is_empty() {
        h.push_str("<p class=\"note\">No per-second figures were recorded.</p>");
    } else {
        for (title, unit, series) in chart_list(&rows, record.latency_basis) {
            h.push_str(&chart(&title, unit, &series, x_max, &spans));
        }
        let _ = write!(
            h,
            "<p class=\"note\">Seconds since the load started. The first latency chart is the {} latency, the basis the criteria read ({}); the second is the {} latency. Shaded: fault windows, from the apply to the undo or the recovery, whichever is later.</p>",
            text::basis_name(record.latency_basis),
            esc(&text::basis_phrase(record)),
            text::basis_name(other_basis(record.latency_basis)),
        );
    }
    h.push_str("</section>");
}

fn other_basis(b: LatencyBasis) -> LatencyBasis {
    match b {
        LatencyBasis::Corrected => LatencyBasis::Raw,
        LatencyBasis::Raw => LatencyBasis::Corrected,
    }
}

/// Title, unit and series of each chart, in page order: the latency the criteria read
/// first, then the other basis, throughput, errors and users.
fn chart_list(
    rows: &[Row],
    basis: LatencyBasis,
) -> [(String, &'static str, Vec<Series<'static>>); 5] {
    let xs = |f: &dyn Fn(&Row) -> Option<f64>| -> Vec<(f64, Option<f64>)> {
        rows.iter().map(|r| (r.second as f64 + 0.5, f(r))).collect()
    };
    let line = |label: &'static str, color: &'static str, points| Series {
        label,
        color,
        points,
    };
    let latency = |b: LatencyBasis| {
        let pick = move |r: &Row| match b {
            LatencyBasis::Corrected => r.corrected_us,
            LatencyBasis::Raw => r.raw_us,
        };
        let lat = |i: usize| move |r: &Row| pick(r).map(|l| l[i] as f64 / 1000.0);
        vec![
            line("p50", "#2f6fdb", xs(&lat(0))),
            line("p95", "#e08a00", xs(&lat(1))),
            line("p99", "#c62828", xs(&lat(2))),
        ]
    };
    let other = other_basis(basis);
    [
        (
            format!(
                "Latency per second, {} (the criteria's basis)",
                text::basis_name(basis)
            ),
            "ms",
            latency(basis),
        ),
        (
            format!("Latency per second, {}", text::basis_name(other)),
            "ms",
            latency(other),
        ),
        (
            "Throughput".into(),
            "req/s",
            vec![line("requests per second", "#16803c", xs(&|r| Some(r.rps)))],
        ),
        (
            "Errors".into(),
            "per s",
            vec![line(
                "errors per second",
                "#c62828",
                xs(&|r| Some(r.errors as f64)),
            )],
        ),
        (
            "Users".into(),
            "users",
            vec![line(
                "active users",
                "#6a4fc2",
                xs(&|r| Some(r.users as f64)),
            )],
        ),
    ]
}

fn faults(h: &mut String, record: &Record, windows: &[FaultWindow]) {
    if windows.is_empty() {
        return;
    }
    h.push_str("<section><h2>Faults</h2><table><tr><th>fault</th><th>kind</th><th>target</th><th class=n>applied</th><th class=n>undone</th><th class=n>recovery</th><th>note</th></tr>");
    let at = |d: Option<std::time::Duration>| {
        d.map(|d| format!("{:.1}s", text::since_load(record, d)))
            .unwrap_or_else(|| "–".into())
    };
    for w in windows {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
            esc(&w.name),
            w.kind.as_str(),
            esc(&w.target),
            at(w.applied_at),
            at(w.undone_at),
            w.recovery_s
                .map(|r| esc(&format::duration_s(r)))
                .unwrap_or_else(|| "–".into()),
            w.failed
                .as_ref()
                .map(|f| format!("<span class=\"fail\">failed</span>: {}{}", esc(f), if w.fatal { " (fatal)" } else { "" }))
                .unwrap_or_default(),
        );
    }
    h.push_str("</table><p class=\"note\">Times are seconds since the load started.</p></section>");
}

fn service_events(h: &mut String, record: &Record) {
    if record.services.is_empty() {
        return;
    }
    h.push_str("<section><h2>Service events</h2><table><tr><th class=n>at</th><th>service</th><th>event</th><th>detail</th></tr>");
    for e in &record.services {
        let _ = write!(
            h,
            "<tr><td class=n>{:.1}s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            text::since_load(record, e.at),
            esc(&e.service),
            text::service_event_name(&e.kind),
            esc(&text::service_event_detail(e).unwrap_or_default())
        );
    }
    h.push_str("</table><p class=\"note\">Seconds since the load started (negative: before it).</p></section>");
}

/// Health probes, resources and metrics share one section.
fn observations(h: &mut String, record: &Record) {
    if record.probes.is_empty() && record.resources.is_empty() && record.metrics.is_empty() {
        return;
    }
    h.push_str("<section>");
    probes(h, record);
    resources(h, record);
    metrics(h, record);
    h.push_str("</section>");
}

fn probes(h: &mut String, record: &Record) {
    if record.probes.is_empty() {
        return;
    }
    h.push_str("<h2>Health probes</h2><table><tr><th>service</th><th class=n>ok</th><th class=n>total</th><th class=n>probes ok</th><th class=n>availability (time)</th><th class=n>down</th><th class=n>outages</th><th class=n>resolution</th></tr>");
    for (s, p) in &record.probes {
        let u = p.uptime();
        let secs = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1}s"));
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            esc(s),
            p.ok,
            p.total,
            if p.total > 0 {
                format::percent(p.ok as f64 / p.total as f64 * 100.0)
            } else {
                "–".into()
            },
            u.map_or("–".into(), |u| format::percent(u.percent)),
            secs(u.map(|u| u.down_s)),
            u.map_or("–".into(), |u| u.outages.to_string()),
            secs(u.map(|u| u.resolution_s)),
        );
    }
    h.push_str("</table>");
}

fn resources(h: &mut String, record: &Record) {
    if record.resources.is_empty() {
        return;
    }
    h.push_str("<h2>Resources</h2><table><tr><th>service</th><th class=n>samples</th><th class=n>cpu avg</th><th class=n>cpu peak</th><th class=n>memory peak</th><th class=n>memory last</th></tr>");
    for (s, r) in &record.resources {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            esc(s),
            r.samples,
            format::percent(r.cpu_avg_pct),
            format::percent(r.cpu_peak_pct),
            format::bytes(r.mem_peak_bytes as f64),
            format::bytes(r.mem_last_bytes as f64),
        );
    }
    h.push_str("</table>");
}

fn metrics(h: &mut String, record: &Record) {
    if record.metrics.is_empty() {
        return;
    }
    h.push_str("<h2>Metrics</h2><table><tr><th>service</th><th>metric</th><th class=n>samples</th><th class=n>min</th><th class=n>max</th><th class=n>last</th></tr>");
    for ((s, n), m) in &record.metrics {
        let _ = write!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            esc(s),
            esc(n),
            m.samples,
            format::number(m.min),
            format::number(m.max),
            format::number(m.last)
        );
    }
    h.push_str("</table>");
}

fn notices(h: &mut String, record: &Record) {
    if record.notices.is_empty() {
        return;
    }
    h.push_str("<section><h2>Notices</h2><table><tr><th class=n>at</th><th>level</th><th>message</th></tr>");
    for (at, l, m) in &record.notices {
        let _ = write!(
            h,
            "<tr><td class=n>{:.1}s</td><td>{}</td><td>{}</td></tr>",
            text::since_load(record, *at),
            crate::report::summary::level(*l),
            esc(m)
        );
    }
    h.push_str("</table></section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_of_faults_close_in_time_are_staggered() {
        let sc = Scale {
            x_max: 60.0,
            y_max: 1.0,
            y_step: 1.0,
        };
        let f = |a: f64, name: &str| (a, a + 5.0, name.to_string());
        let faults = [
            f(10.0, "pause api"),
            f(10.5, "kill redis"),
            f(11.0, "network api"),
            f(40.0, "pause api"),
        ];
        let rows = label_rows(&sc, &faults);
        // Three labels at about the same x: three rows; far later: back to the first.
        assert_eq!(rows, vec![0, 1, 2, 0]);
        // Drawn at those heights.
        let mut s = String::new();
        fault_shading(&mut s, &sc, &faults);
        for row in 0..3 {
            let y = format!("y=\"{:.1}\"", T + 10.0 + row as f64 * LABEL_ROW);
            assert!(s.contains(&y), "{y} missing in {s}");
        }
        // Never more rows than fit the plot.
        let many: Vec<_> = (0..40).map(|i| f(10.0, &format!("fault {i}"))).collect();
        let rows = label_rows(&sc, &many);
        assert!(rows.iter().all(|r| (*r as f64) * LABEL_ROW + 10.0 <= PH));
    }
}
