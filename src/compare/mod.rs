//! The CI regression gate: compare a run with a baseline, figure by figure.
//!
//! A side is a run folder (`summary.json` + `histograms.hlog`), a `summary.json` (its
//! folder's `histograms.hlog` is used when it is there) or a baseline file written by
//! [`baseline::save`]. Each figure gets its baseline, current value, change and a
//! verdict. A regression fails the gate only when it is beyond its tolerance *and*
//! beyond noise: latency percentiles are tested with a bootstrap of the two histograms
//! ([`stats::bootstrap`]), error rates with a two-proportion z-test; figures that are one
//! value per run (throughput, peaks, recovery, other criteria) have no distribution to
//! test and are judged on their tolerance alone. Improvements never fail.

pub mod baseline;
pub mod github;
pub mod stats;

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::metric::tolerance::{self, Tolerance};
use crate::metric::Quantity;
use crate::report::histograms::{self, Histograms};
use crate::report::summary::{RequestSummary, Summary, Value};

/// A side that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Format { path: PathBuf, why: String },
    #[error(transparent)]
    Write(#[from] crate::report::ReportError),
}

/// One side of a comparison.
#[derive(Debug, Clone)]
pub struct Side {
    /// Where it was read from.
    pub source: String,
    pub summary: Summary,
    /// Empty when the side has none (a bare `summary.json`): latency is then compared
    /// on the summary's numbers, without a noise test.
    pub histograms: Histograms,
}

impl Side {
    /// Read a run folder, a `summary.json` or a baseline file.
    pub fn load(path: &Path) -> Result<Side, CompareError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| CompareError::Read {
                path: p.to_path_buf(),
                source,
            })
        };
        let format = |p: &Path, why: String| CompareError::Format {
            path: p.to_path_buf(),
            why,
        };
        let (summary_path, folder) = if path.is_dir() {
            (path.join("summary.json"), path.to_path_buf())
        } else {
            let folder = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            (path.to_path_buf(), folder)
        };
        let bytes = read(&summary_path)?;
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| format(&summary_path, format!("not JSON: {e}")))?;
        if json.get("gauntlet_baseline").is_some() {
            return baseline::from_json(json).map_err(|why| format(&summary_path, why));
        }
        let summary: Summary = serde_json::from_value(json).map_err(|e| {
            format(
                &summary_path,
                format!("neither a gauntlet summary.json nor a baseline file: {e}"),
            )
        })?;
        let hlog = folder.join("histograms.hlog");
        let histograms = if path.is_dir() || hlog.is_file() {
            histograms::parse_hlog(&read(&hlog)?).map_err(|why| format(&hlog, why))?
        } else {
            Histograms::new()
        };
        Ok(Side {
            source: path.display().to_string(),
            summary,
            histograms,
        })
    }
}

/// A figure's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Worse beyond its tolerance and beyond noise: fails the gate.
    Regression,
    /// Worse, but within its tolerance (or not beyond noise): a warning.
    WithinTolerance,
    Unchanged,
    /// Better beyond its tolerance (and beyond noise); never fails.
    Improvement,
    /// On one side only.
    NotCompared,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::WithinTolerance => "within tolerance",
            Verdict::Unchanged => "unchanged",
            Verdict::Improvement => "improvement",
            Verdict::NotCompared => "not compared",
        }
    }
}

/// One compared figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// The key tolerances are looked up by: `latency.p99{name="get item"}`,
    /// `errors.rate`, `memory.api.peak`, `criterion: <text>` shows as its metric.
    pub key: String,
    /// As shown: the key, or a criterion's text.
    pub name: String,
    pub baseline: Option<Quantity>,
    pub current: Option<Quantity>,
    /// current − baseline, in the figure's unit.
    pub change: Option<f64>,
    /// (current − baseline) / baseline; None when the baseline is 0.
    pub change_rel: Option<f64>,
    pub tolerance: Tolerance,
    /// The key that set the tolerance, or `built-in`.
    pub tolerance_from: String,
    pub verdict: Verdict,
    /// Which test decided, with its figures.
    pub test: String,
}

impl Figure {
    /// `+12.5%` / `+1.2ms (+12.5%)`.
    pub fn change_text(&self) -> String {
        let rel = self.change_rel.map(|r| {
            format!(
                "{}{}%",
                sign(r),
                crate::metric::format::trim(r.abs() * 100.0, 1)
            )
        });
        match (self.change, self.current) {
            (Some(d), Some(q)) => {
                let abs = format!("{}{}", sign(d), with_unit(q, d.abs()));
                match rel {
                    Some(r) => format!("{abs} ({r})"),
                    None => abs,
                }
            }
            _ => "—".into(),
        }
    }
}

fn sign(v: f64) -> &'static str {
    if v >= 0.0 {
        "+"
    } else {
        "-"
    }
}

/// `v` shown in the unit of `q`.
fn with_unit(q: Quantity, v: f64) -> String {
    match q {
        Quantity::Percent(_) => format!("{}pp", crate::metric::format::trim(v, 4)),
        Quantity::DurationUs(_) => Quantity::DurationUs(v).to_string(),
        Quantity::Bytes(_) => Quantity::Bytes(v).to_string(),
        Quantity::Count(_) => Quantity::Count(v).to_string(),
        Quantity::Number(_) => Quantity::Number(v).to_string(),
        Quantity::PerSecond(_) => Quantity::PerSecond(v).to_string(),
        Quantity::BytesPerMinute(_) => Quantity::BytesPerMinute(v).to_string(),
    }
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub baseline: String,
    pub current: String,
    /// The latency histogram compared (`corrected` or `raw`: the current run's basis).
    pub latency_basis: String,
    pub figures: Vec<Figure>,
}

impl Comparison {
    pub fn regressions(&self) -> impl Iterator<Item = &Figure> {
        self.figures
            .iter()
            .filter(|f| f.verdict == Verdict::Regression)
    }

    /// No figure regressed beyond its tolerance and noise.
    pub fn passed(&self) -> bool {
        self.regressions().next().is_none()
    }

    pub fn count(&self, v: Verdict) -> usize {
        self.figures.iter().filter(|f| f.verdict == v).count()
    }
}

/// Tolerances in force: the command line's over the scenario's `[gate]` over the
/// built-in defaults.
#[derive(Debug, Clone, Default)]
pub struct Tolerances {
    pub scenario: Vec<(String, Tolerance)>,
    pub command_line: Vec<(String, Tolerance)>,
}

impl Tolerances {
    /// The tolerance of a figure of this kind, and the key that set it.
    pub fn of(&self, key: &str, q: Quantity) -> (Tolerance, String) {
        for k in tolerance::lookup_keys(key) {
            for set in [&self.command_line, &self.scenario] {
                if let Some((_, t)) = set.iter().rev().find(|(sk, t)| *sk == k && t.fits(q)) {
                    return (*t, k);
                }
            }
        }
        (tolerance::default_for(key), "built-in".into())
    }
}

/// Parse `KEY=VALUE` (the command line's `--tolerance`).
pub fn parse_tolerance_arg(arg: &str) -> Result<(String, Tolerance), String> {
    let (k, v) = arg
        .split_once('=')
        .ok_or_else(|| format!("`{arg}`: write KEY=VALUE, e.g. latency.p99=20%"))?;
    let k = k.trim().to_string();
    let t = tolerance::parse_tolerance(v)?;
    tolerance::check(&k, t).map_err(|(m, h)| match h {
        Some(h) => format!("{m} ({h})"),
        None => m,
    })?;
    Ok((k, t))
}

const PERCENTILES: &[(&str, f64)] = &[("p50", 0.50), ("p95", 0.95), ("p99", 0.99)];

/// The selector suffix of a request's figures.
fn selector(request: Option<&str>) -> String {
    request
        .map(|n| format!("{{name=\"{n}\"}}"))
        .unwrap_or_default()
}

/// Compare `current` with `baseline`.
pub fn compare(baseline: &Side, current: &Side, tol: &Tolerances) -> Comparison {
    let basis = current.summary.load.latency_basis.clone();
    let mut figures = Vec::new();
    let (b, c) = (&baseline.summary, &current.summary);
    let secs = |s: &Summary| s.load.duration_s;
    let mut reqs: Vec<(Option<&str>, &RequestSummary, Option<&RequestSummary>)> = c
        .requests
        .iter()
        .map(|r| {
            (
                Some(r.name.as_str()),
                r,
                b.requests.iter().find(|x| x.name == r.name),
            )
        })
        .collect();
    reqs.push((None, &c.total, Some(&b.total)));

    for (name, cr, br) in &reqs {
        // Latency percentiles, tested on the histograms when both sides have them.
        let tag = histograms::tag(&basis, *name);
        let hists = baseline
            .histograms
            .get(&tag)
            .zip(current.histograms.get(&tag));
        let boot = hists.and_then(|(bh, ch)| {
            let qs: Vec<f64> = PERCENTILES.iter().map(|p| p.1).collect();
            stats::bootstrap(bh, ch, &qs, stats::seed_of(&tag))
        });
        for (i, (p, _)) in PERCENTILES.iter().enumerate() {
            let key = format!("latency.{p}{}", selector(*name));
            let pick = |r: &RequestSummary| {
                let l = if basis == "raw" {
                    &r.latency_us.raw
                } else {
                    &r.latency_us.corrected
                };
                l.as_ref().map(|l| match *p {
                    "p50" => l.p50,
                    "p95" => l.p95,
                    _ => l.p99,
                } as f64)
            };
            let fig = match &boot {
                Some(v) => latency_figure(&key, v[i], tol),
                None => scalar_figure(
                    &key,
                    key.clone(),
                    br.and_then(pick).map(Quantity::DurationUs),
                    pick(cr).map(Quantity::DurationUs),
                    true,
                    tol,
                    hists.map_or("tolerance only: no histograms on one side", |_| {
                        "tolerance only: a histogram is empty"
                    }),
                ),
            };
            figures.push(fig);
        }
        // Error rate.
        let key = format!("errors.rate{}", selector(*name));
        figures.push(match br {
            Some(br) => error_rate_figure(&key, br, cr, tol),
            None => not_compared(&key, None, rate(cr).map(Quantity::Percent)),
        });
    }
    // Throughput of the whole load.
    let rps =
        |s: &Summary| (secs(s) > 0.0).then(|| Quantity::PerSecond(s.total.count as f64 / secs(s)));
    figures.push(scalar_figure(
        "throughput.rps",
        "throughput.rps".into(),
        rps(b),
        rps(c),
        false,
        tol,
        ONE_VALUE,
    ));
    // Recovery: the longest of the run.
    let rec = |s: &Summary| {
        s.faults
            .iter()
            .filter_map(|f| f.recovery_s)
            .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))))
            .map(|s| Quantity::DurationUs(s * 1e6))
    };
    if rec(b).is_some() || rec(c).is_some() {
        figures.push(scalar_figure(
            "recovery.max",
            "recovery.max".into(),
            rec(b),
            rec(c),
            true,
            tol,
            ONE_VALUE,
        ));
    }
    // Resource peaks per service.
    for r in &c.resources {
        let br = b.resources.iter().find(|x| x.service == r.service);
        for (key, bq, cq) in [
            (
                format!("memory.{}.peak", r.service),
                br.map(|x| Quantity::Bytes(x.mem_peak_bytes as f64)),
                Quantity::Bytes(r.mem_peak_bytes as f64),
            ),
            (
                format!("cpu.{}.peak", r.service),
                br.map(|x| Quantity::Percent(x.cpu_peak_pct)),
                Quantity::Percent(r.cpu_peak_pct),
            ),
        ] {
            figures.push(scalar_figure(
                &key.clone(),
                key,
                bq,
                Some(cq),
                true,
                tol,
                ONE_VALUE,
            ));
        }
    }
    // Every graded criterion's measured value, unless it is a figure already compared.
    for cc in &c.criteria {
        let key = format!("{}{}", cc.metric, selector(cc.request.as_deref()));
        if figures.iter().any(|f| f.key == key) {
            continue;
        }
        let bc = b.criteria.iter().find(|x| x.source == cc.source);
        let higher_is_worse = !matches!(cc.op.as_str(), ">" | ">=");
        figures.push(scalar_figure(
            &key,
            cc.source.clone(),
            bc.and_then(|x| x.measured.as_ref()).map(quantity),
            cc.measured.as_ref().map(quantity),
            higher_is_worse,
            tol,
            ONE_VALUE,
        ));
    }
    Comparison {
        baseline: baseline.source.clone(),
        current: current.source.clone(),
        latency_basis: basis,
        figures,
    }
}

const ONE_VALUE: &str = "tolerance only: one value per run, no distribution to test noise on";

fn rate(r: &RequestSummary) -> Option<f64> {
    r.error_rate_pct
}

/// A summary value back as a quantity.
fn quantity(v: &Value) -> Quantity {
    match v.unit.as_str() {
        "us" => Quantity::DurationUs(v.value),
        "percent" => Quantity::Percent(v.value),
        "bytes" => Quantity::Bytes(v.value),
        "count" => Quantity::Count(v.value),
        "per_second" => Quantity::PerSecond(v.value),
        "bytes_per_minute" => Quantity::BytesPerMinute(v.value),
        _ => Quantity::Number(v.value),
    }
}

fn not_compared(key: &str, b: Option<Quantity>, c: Option<Quantity>) -> Figure {
    Figure {
        key: key.into(),
        name: key.into(),
        baseline: b,
        current: c,
        change: None,
        change_rel: None,
        tolerance: tolerance::default_for(key),
        tolerance_from: "built-in".into(),
        verdict: Verdict::NotCompared,
        test: format!(
            "{} has no value",
            if b.is_none() {
                "the baseline"
            } else {
                "the current run"
            }
        ),
    }
}

fn changes(b: f64, c: f64) -> (f64, Option<f64>) {
    (c - b, (b != 0.0).then(|| (c - b) / b.abs()))
}

/// A figure with one value per side: its tolerance decides alone.
fn scalar_figure(
    key: &str,
    name: String,
    b: Option<Quantity>,
    c: Option<Quantity>,
    higher_is_worse: bool,
    tol: &Tolerances,
    test: &str,
) -> Figure {
    let (Some(bq), Some(cq)) = (b, c) else {
        let mut f = not_compared(key, b, c);
        f.name = name;
        return f;
    };
    let (t, from) = tol.of(key, cq);
    let (d, rel) = changes(bq.value(), cq.value());
    let allowed = t.absolute_for(cq).unwrap_or_else(|| match t {
        Tolerance::Relative(r) => r * bq.value().abs(),
        _ => 0.0,
    });
    let worse = if higher_is_worse { d } else { -d };
    let verdict = if worse > allowed {
        Verdict::Regression
    } else if -worse > allowed {
        Verdict::Improvement
    } else if worse > 0.0 {
        Verdict::WithinTolerance
    } else {
        Verdict::Unchanged
    };
    Figure {
        key: key.into(),
        name,
        baseline: b,
        current: c,
        change: Some(d),
        change_rel: rel,
        tolerance: t,
        tolerance_from: from,
        verdict,
        test: test.into(),
    }
}

/// A latency percentile, decided by the bootstrap interval of its change.
fn latency_figure(key: &str, p: stats::PercentileChange, tol: &Tolerances) -> Figure {
    let cq = Quantity::DurationUs(p.current_us);
    let (t, from) = tol.of(key, cq);
    let (d, rel) = changes(p.baseline_us, p.current_us);
    let (lo, hi, limit, shown) = match t.absolute_for(cq) {
        Some(us) => (
            p.abs_ci.0,
            p.abs_ci.1,
            us,
            format!(
                "[{}{}, {}{}]",
                sign(p.abs_ci.0),
                Quantity::DurationUs(p.abs_ci.0.abs()),
                sign(p.abs_ci.1),
                Quantity::DurationUs(p.abs_ci.1.abs())
            ),
        ),
        None => {
            let r = match t {
                Tolerance::Relative(r) => r,
                _ => 0.0,
            };
            let pct = |v: f64| {
                format!(
                    "{}{}%",
                    sign(v),
                    crate::metric::format::trim(v.abs() * 100.0, 1)
                )
            };
            (
                p.rel_ci.0,
                p.rel_ci.1,
                r,
                format!("[{}, {}]", pct(p.rel_ci.0), pct(p.rel_ci.1)),
            )
        }
    };
    // Beyond the tolerance with the whole interval: beyond tolerance and beyond noise.
    let verdict = if lo > limit {
        Verdict::Regression
    } else if hi < -limit {
        Verdict::Improvement
    } else if lo > 0.0 {
        Verdict::WithinTolerance
    } else {
        Verdict::Unchanged
    };
    Figure {
        key: key.into(),
        name: key.into(),
        baseline: Some(Quantity::DurationUs(p.baseline_us)),
        current: Some(cq),
        change: Some(d),
        change_rel: rel,
        tolerance: t,
        tolerance_from: from,
        verdict,
        test: format!(
            "bootstrap {}% CI of the change {shown} ({} resamples of at most {} requests from each histogram)",
            crate::metric::format::trim(stats::CONFIDENCE * 100.0, 1),
            stats::RESAMPLES,
            stats::MAX_DRAWS
        ),
    }
}

/// An error rate, decided by a two-proportion z-test on the counts.
fn error_rate_figure(
    key: &str,
    b: &RequestSummary,
    c: &RequestSummary,
    tol: &Tolerances,
) -> Figure {
    let (Some(br), Some(cr)) = (rate(b), rate(c)) else {
        return not_compared(
            key,
            rate(b).map(Quantity::Percent),
            rate(c).map(Quantity::Percent),
        );
    };
    let cq = Quantity::Percent(cr);
    let (t, from) = tol.of(key, cq);
    let (d, rel) = changes(br, cr);
    let allowed = t.absolute_for(cq).unwrap_or(match t {
        Tolerance::Relative(r) => r * br,
        _ => 0.0,
    });
    let (p_worse, p_better) = stats::proportion_test(b.errors, b.count, c.errors, c.count);
    let (verdict, p) = if d > allowed && p_worse < stats::ALPHA {
        (Verdict::Regression, p_worse)
    } else if -d > allowed && p_better < stats::ALPHA {
        (Verdict::Improvement, p_better)
    } else if d > 0.0 && (p_worse < stats::ALPHA || d > allowed) {
        (Verdict::WithinTolerance, p_worse)
    } else {
        (Verdict::Unchanged, p_worse.min(p_better))
    };
    let test = if b.errors == 0 && c.errors == 0 {
        "no errors in either run".to_string()
    } else {
        format!(
            "two-proportion z-test, one-sided p = {} (noise when p ≥ {})",
            p_text(p),
            stats::ALPHA
        )
    };
    Figure {
        key: key.into(),
        name: key.into(),
        baseline: Some(Quantity::Percent(br)),
        current: Some(cq),
        change: Some(d),
        change_rel: rel,
        tolerance: t,
        tolerance_from: from,
        verdict,
        test,
    }
}

fn p_text(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        crate::metric::format::trim(p, 4)
    }
}

/// The current run as a side, straight from its record (for `run --baseline`).
pub fn side_of_run(summary: Summary, record: &crate::record::Record, source: String) -> Side {
    let histograms = histograms::of_record(record)
        .into_iter()
        .map(|(t, h): (String, &Histogram<u64>)| (t, h.clone()))
        .collect();
    Side {
        source,
        summary,
        histograms,
    }
}

/// JUnit test cases, one per compared figure (a regression is a failure).
pub fn junit_cases(cmp: &Comparison) -> Vec<crate::report::junit::Case> {
    cmp.figures
        .iter()
        .map(|f| crate::report::junit::Case {
            name: format!("gate: {}", f.name),
            failed: (f.verdict == Verdict::Regression).then(|| {
                format!(
                    "regression: {} → {} ({}), tolerance {} ({})",
                    show(f.baseline),
                    show(f.current),
                    f.change_text(),
                    f.tolerance,
                    f.tolerance_from
                )
            }),
            out: format!(
                "baseline {}, current {}, change {}, verdict {}, tolerance {} ({}); {}",
                show(f.baseline),
                show(f.current),
                f.change_text(),
                f.verdict.as_str(),
                f.tolerance,
                f.tolerance_from,
                f.test
            ),
        })
        .collect()
}

/// A value as a person reads it, `—` when absent.
pub fn show(q: Option<Quantity>) -> String {
    q.map(|q| q.to_string()).unwrap_or_else(|| "—".into())
}

/// The comparison as a `report.html` section: the sides, then one row per figure.
pub fn html(cmp: &Comparison) -> String {
    use crate::report::html::esc;
    let n = cmp.count(Verdict::Regression);
    let mut h = format!(
        "<section id=\"gate\"><h2>Comparison with the baseline</h2>\
         <p class=\"meta\">baseline <code>{}</code> · current <code>{}</code> · latency basis <b>{}</b> · <span class=\"{}\">{}</span></p>\
         <table><tr><th>figure</th><th class=n>baseline</th><th class=n>current</th><th class=n>change</th><th>verdict</th><th>decided by</th></tr>",
        esc(&cmp.baseline),
        esc(&cmp.current),
        esc(&cmp.latency_basis),
        if n == 0 { "pass" } else { "fail" },
        if n == 0 {
            "no regression".to_string()
        } else {
            format!("{n} regression{}", if n == 1 { "" } else { "s" })
        }
    );
    for f in &cmp.figures {
        let class = match f.verdict {
            Verdict::Regression => "fail",
            Verdict::Improvement => "pass",
            _ => "",
        };
        h.push_str(&format!(
            "<tr><td><code>{}</code></td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=\"{class}\">{}</td><td class=\"detail\">{} (tolerance {}, {})</td></tr>",
            esc(&f.name),
            esc(&show(f.baseline)),
            esc(&show(f.current)),
            esc(&f.change_text()),
            f.verdict.as_str(),
            esc(&f.test),
            esc(&f.tolerance.to_string()),
            esc(&f.tolerance_from),
        ));
    }
    h.push_str("</table><p class=\"note\">A regression fails the gate only beyond its tolerance and beyond noise; improvements never fail.</p></section>");
    h
}

/// The comparison as a terminal table (the binary prints it).
pub fn render(cmp: &Comparison) -> String {
    let mut rows = vec![[
        "figure".to_string(),
        "baseline".into(),
        "current".into(),
        "change".into(),
        "verdict".into(),
        "decided by".into(),
    ]];
    for f in &cmp.figures {
        rows.push([
            f.name.clone(),
            show(f.baseline),
            show(f.current),
            f.change_text(),
            f.verdict.as_str().into(),
            format!(
                "{} (tolerance {}, {})",
                f.test, f.tolerance, f.tolerance_from
            ),
        ]);
    }
    let mut width = [0usize; 6];
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(5) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = format!(
        "baseline: {}\ncurrent:  {}\nlatency basis: {}\n",
        cmp.baseline, cmp.current, cmp.latency_basis
    );
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i < 5 {
                let pad = width[i] - c.chars().count();
                out.push_str(c);
                out.push_str(&" ".repeat(pad + 2));
            } else {
                out.push_str(c);
            }
        }
        out.push('\n');
    }
    let n = cmp.count(Verdict::Regression);
    out.push_str(&if n == 0 {
        format!(
            "gate: no regression ({} within tolerance, {} improvements, {} unchanged)",
            cmp.count(Verdict::WithinTolerance),
            cmp.count(Verdict::Improvement),
            cmp.count(Verdict::Unchanged)
        )
    } else {
        format!(
            "gate: {n} regression{} beyond tolerance and noise",
            if n == 1 { "" } else { "s" }
        )
    });
    out
}

/// The comparison alone as JUnit XML: one suite, one test case per figure.
pub fn junit_xml(cmp: &Comparison, cases: &[crate::report::junit::Case]) -> Result<String, String> {
    use quick_junit::{Report, TestSuite};
    let mut suite = TestSuite::new("gauntlet gate");
    suite.add_property(("baseline", cmp.baseline.as_str()));
    suite.add_property(("current", cmp.current.as_str()));
    suite.add_property(("latency_basis", cmp.latency_basis.as_str()));
    for c in cases {
        suite.add_test_case(c.test_case("gauntlet.gate"));
    }
    let mut report = Report::new("gauntlet");
    report.add_test_suite(suite);
    report.to_string().map_err(|e| e.to_string())
}
