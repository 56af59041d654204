//! GitHub Actions conventions, as text: the Markdown for `$GITHUB_STEP_SUMMARY` and the
//! workflow commands (`::error`, `::warning`) that annotate a job. The binary decides
//! when to write or print them; this module only builds them.

use std::path::Path;

use super::{show, Comparison, Verdict};
use crate::report::summary::Summary;

/// Markdown for the job summary: verdict, criteria, comparison (when there is one), and
/// where the HTML report is.
pub fn step_summary(
    current: &Summary,
    comparison: Option<&Comparison>,
    report_html: Option<&Path>,
) -> String {
    let gate_failed = comparison.is_some_and(|c| !c.passed());
    let ok = current.verdict.passed && !gate_failed;
    let mut md = format!(
        "## gauntlet: {} {}\n\n",
        current.run.scenario,
        if ok { "✅ passed" } else { "❌ failed" }
    );
    md.push_str(&format!(
        "Run `{}`: {} ({} of {} criteria passed)",
        current.run.id,
        current.verdict.status,
        current.verdict.criteria_passed,
        current.verdict.criteria_passed + current.verdict.criteria_failed
    ));
    if let Some(c) = comparison {
        md.push_str(&format!(
            "; gate against `{}`: {}",
            c.baseline,
            if c.passed() {
                "no regression".to_string()
            } else {
                format!("{} regression(s)", c.count(Verdict::Regression))
            }
        ));
    }
    md.push_str(".\n\n");
    for p in &current.verdict.problems {
        md.push_str(&format!("- ❌ {}\n", cell(p)));
    }
    if !current.criteria.is_empty() {
        md.push_str("| criterion | measured | result |\n|---|---|---|\n");
        for c in &current.criteria {
            md.push_str(&format!(
                "| `{}` | {} | {} |\n",
                cell(&c.source),
                c.measured
                    .as_ref()
                    .map(|v| v.text.clone())
                    .unwrap_or_else(|| "nothing".into()),
                if c.passed { "✅ pass" } else { "❌ fail" }
            ));
        }
        md.push('\n');
    }
    if let Some(c) = comparison {
        md.push_str(&format!(
            "### Comparison with the baseline ({} latency)\n\n| figure | baseline | current | change | verdict | decided by |\n|---|---|---|---|---|---|\n",
            c.latency_basis
        ));
        for f in &c.figures {
            let mark = match f.verdict {
                Verdict::Regression => "❌ ",
                Verdict::WithinTolerance => "⚠️ ",
                Verdict::Improvement => "✅ ",
                _ => "",
            };
            md.push_str(&format!(
                "| `{}` | {} | {} | {} | {mark}{} | {} (tolerance {}, {}) |\n",
                cell(&f.name),
                show(f.baseline),
                show(f.current),
                f.change_text(),
                f.verdict.as_str(),
                cell(&f.test),
                f.tolerance,
                f.tolerance_from
            ));
        }
        md.push('\n');
    }
    if let Some(p) = report_html {
        md.push_str(&format!("Report: `{}`\n", p.display()));
    }
    md
}

/// Workflow commands: `::error` per failed criterion and per regression, `::warning` per
/// regression within tolerance.
pub fn annotations(current: &Summary, comparison: Option<&Comparison>) -> Vec<String> {
    let mut out = Vec::new();
    for c in current.criteria.iter().filter(|c| !c.passed) {
        let measured = c
            .measured
            .as_ref()
            .map(|v| v.text.clone())
            .unwrap_or_else(|| "nothing".into());
        out.push(format!(
            "::error title={}::{}",
            property(&format!("criterion failed: {}", c.source)),
            data(&format!(
                "{}: measured {measured}, threshold {} {}",
                c.source, c.op, c.threshold.text
            ))
        ));
    }
    for f in comparison.iter().flat_map(|c| c.figures.iter()) {
        let level = match f.verdict {
            Verdict::Regression => "error",
            Verdict::WithinTolerance => "warning",
            _ => continue,
        };
        let title = if level == "error" {
            format!("regression: {}", f.name)
        } else {
            format!("slower within tolerance: {}", f.name)
        };
        out.push(format!(
            "::{level} title={}::{}",
            property(&title),
            data(&format!(
                "{}: {} → {} ({}), tolerance {}; {}",
                f.name,
                show(f.baseline),
                show(f.current),
                f.change_text(),
                f.tolerance,
                f.test
            ))
        ));
    }
    out
}

/// A table cell: no pipes or line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Escaping of a workflow command's message (GitHub's `escapeData`).
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping of a workflow command's property (GitHub's `escapeProperty`).
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(property("a: b, c%"), "a%3A b%2C c%25");
        assert_eq!(data("x\ny: z"), "x%0Ay: z");
    }
}
