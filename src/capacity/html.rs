//! `capacity.html`: one self-contained page (the run report's style and chart code):
//! the verdict, throughput and p95 against the load with the knee marked, the levels.

use std::fmt::Write;

use super::{fmt_load, CapacityReport};
use crate::metric::format;
use crate::report::html::{esc, xy_chart, CSS};

pub fn render(r: &CapacityReport) -> String {
    let mut h = String::with_capacity(32 * 1024);
    let word = match (r.ended_by, r.passed) {
        ("interrupted", _) => "INTERRUPTED",
        ("error", _) => "ERROR",
        (_, true) => "PASS",
        (_, false) => "FAIL",
    };
    let class = match word {
        "PASS" => "passed",
        "INTERRUPTED" => "interrupted",
        _ => "",
    };
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · capacity · {word} · gauntlet</title><style>{CSS}</style></head><body><main>",
        esc(&r.scenario)
    );
    let knee = r.knee.map_or_else(
        || "none: no level passed".to_string(),
        |k| format!("{} {}", fmt_load(k), r.unit),
    );
    let _ = write!(
        h,
        "<header class=\"{class}\"><div class=\"verdict\">{word}</div><div><h1>{} — capacity</h1>\
         <p class=\"meta\">knee <b>{}</b> · required <b>{} {}</b> · {} model · {} level(s), {} hold and {} warmup each</p>",
        esc(&r.scenario),
        esc(&knee),
        fmt_load(r.search.require),
        esc(r.unit),
        r.model,
        r.levels.len(),
        format::duration_s(r.search.hold_s),
        format::duration_s(r.search.warmup_s),
    );
    if let Some(c) = &r.limited_by {
        let _ = write!(
            h,
            "<p class=\"meta\">limited by <code>{}</code></p>",
            esc(c)
        );
    }
    if let Some(why) = &r.reason {
        let _ = write!(h, "<p class=\"meta\">{}</p>", esc(why));
    }
    h.push_str("</div></header>");

    let mut levels: Vec<_> = r.levels.iter().collect();
    levels.sort_by(|a, b| a.load.total_cmp(&b.load));
    let mark = r.knee.map(|k| (k, format!("knee {}", fmt_load(k))));
    let mark = mark.as_ref().map(|(k, l)| (*k, l.as_str()));
    let pts = |f: &dyn Fn(&super::Level) -> Option<f64>| -> Vec<(f64, Option<f64>)> {
        levels.iter().map(|l| (l.load, f(l))).collect()
    };
    h.push_str("<section><h2>Against the load</h2>");
    h.push_str(&xy_chart(
        "Throughput",
        "req/s",
        r.unit,
        &[("requests per second", "#16803c", pts(&|l| l.rps))],
        mark,
    ));
    h.push_str(&xy_chart(
        "Latency",
        "ms",
        r.unit,
        &[
            ("p95", "#e08a00", pts(&|l| l.p95_ms)),
            ("p99", "#c62828", pts(&|l| l.p99_ms)),
        ],
        mark,
    ));
    h.push_str("<p class=\"note\">One point per level, over its hold (the warmup is not graded). Dashed: the knee, the last passing level.</p></section>");

    h.push_str("<section><h2>Levels</h2><table><tr><th>#</th><th class=\"n\">");
    h.push_str(&esc(r.unit));
    h.push_str("</th><th class=\"n\">req/s</th><th class=\"n\">p50 ms</th><th class=\"n\">p95 ms</th><th class=\"n\">p99 ms</th><th class=\"n\">errors</th><th>peaks</th><th>verdict</th><th>failed first</th><th>run</th></tr>");
    let ms = |v: Option<f64>| v.map_or_else(|| "–".into(), |v| format::trim(v, 1));
    for l in &levels {
        let peaks: Vec<String> = l
            .resources
            .iter()
            .map(|(n, p)| {
                format!(
                    "{n} {}% {}",
                    format::trim(p.cpu_peak_pct, 0),
                    format::bytes(p.mem_peak_bytes as f64)
                )
            })
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"{}\">{}</td><td><code>{}</code></td><td><a href=\"{}/report.html\">{}</a></td></tr>",
            l.index,
            fmt_load(l.load),
            ms(l.rps),
            ms(l.p50_ms),
            ms(l.p95_ms),
            ms(l.p99_ms),
            l.errors,
            esc(&peaks.join(", ")),
            if l.passed { "pass" } else { "fail" },
            l.verdict.to_uppercase(),
            esc(l.failed_first.as_deref().unwrap_or("")),
            esc(&l.run),
            esc(&l.run),
        );
    }
    h.push_str("</table><p class=\"note\"># is the order the levels ran in; each level's own report is linked.</p></section>");
    let _ = writeln!(
        h,
        "<footer>gauntlet {} · exit code {} · capacity.json is next to this file.</footer></main></body></html>",
        env!("CARGO_PKG_VERSION"),
        r.exit_code
    );
    h
}
