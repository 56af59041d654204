//! The terminal table of a capacity search, rendered for the binary to print.

use std::fmt::Write;

use super::{fmt_load, CapacityReport, Level};
use crate::metric::format;
use crate::report::terminal::{table, Style};

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format::trim(v, 1))
}

/// Peaks of every service: `api 95% 31.0MiB`.
fn peaks(l: &Level) -> String {
    let v: Vec<String> = l
        .resources
        .iter()
        .map(|(name, r)| {
            format!(
                "{name} {}% {}",
                format::trim(r.cpu_peak_pct, 0),
                format::bytes(r.mem_peak_bytes as f64)
            )
        })
        .collect();
    if v.is_empty() {
        "–".into()
    } else {
        v.join(", ")
    }
}

/// One line per level as it ends (the binary prints it while the search goes on).
pub fn level_line(l: &Level, unit: &str, color: bool) -> String {
    let st = Style { on: color };
    let word = match l.verdict {
        "pass" => st.green("PASS"),
        "interrupted" | "error" => st.yellow(&l.verdict.to_uppercase()),
        _ => st.red(&l.verdict.to_uppercase()),
    };
    let mut s = format!(
        "level {:>2}  {} {unit}  {word}  {} req/s  p95 {} ms  {} errors",
        l.index,
        fmt_load(l.load),
        l.rps.map_or_else(|| "–".into(), |r| format::trim(r, 1)),
        opt_ms(l.p95_ms),
        l.errors
    );
    if let Some(f) = &l.failed_first {
        let _ = write!(s, "  {}", st.dim(&format!("({f})")));
    }
    s
}

/// The levels sorted by load, the knee and the verdict.
pub fn render(r: &CapacityReport, color: bool) -> String {
    let st = Style { on: color };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — capacity search, {} model ({}), {} level(s)",
        st.bold(&r.scenario),
        r.model,
        r.unit,
        r.levels.len()
    );
    let mut levels: Vec<&Level> = r.levels.iter().collect();
    levels.sort_by(|a, b| a.load.total_cmp(&b.load));
    let rows: Vec<Vec<String>> = levels
        .iter()
        .map(|l| {
            let mark = if Some(l.load) == r.knee {
                " ◀ knee"
            } else {
                ""
            };
            vec![
                format!("{}{mark}", fmt_load(l.load)),
                l.rps.map_or_else(|| "–".into(), |v| format::trim(v, 1)),
                opt_ms(l.p50_ms),
                opt_ms(l.p95_ms),
                opt_ms(l.p99_ms),
                format!(
                    "{} ({})",
                    l.errors,
                    l.error_rate_pct
                        .map_or_else(|| "–".into(), |p| format!("{}%", format::trim(p, 2)))
                ),
                peaks(l),
                l.verdict.to_uppercase(),
                l.failed_first.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &mut out,
        &st,
        &[
            r.unit,
            "req/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "errors",
            "peaks",
            "verdict",
            "failed first",
        ],
        &rows,
        "  ",
    );
    let knee = r.knee.map_or_else(
        || "none (no level passed)".into(),
        |k| format!("{} {}", fmt_load(k), r.unit),
    );
    let _ = writeln!(
        out,
        "knee: {knee}; required: {} {}",
        fmt_load(r.search.require),
        r.unit
    );
    if let Some(c) = &r.limited_by {
        let _ = writeln!(out, "limited by: {c}");
    }
    if let Some(why) = &r.reason {
        let _ = writeln!(out, "{}", st.yellow(why));
    }
    let word = match (r.ended_by, r.passed) {
        ("interrupted", _) => st.yellow("INTERRUPTED"),
        ("error", _) => st.yellow("ERROR"),
        (_, true) => st.green("PASS"),
        (_, false) => st.red("FAIL"),
    };
    let _ = write!(out, "{word}");
    out
}
