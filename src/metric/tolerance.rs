//! How much worse a figure may get against a baseline before the CI gate fails: the
//! values of a scenario's `[gate]` table and of `--tolerance KEY=VALUE`.
//!
//! A value is relative (`"10%"`: of the baseline), in percentage points (`"0.1pp"`, for
//! figures that are percentages), a duration (`"5ms"`), a size (`"64MiB"`) or a bare
//! number in the figure's own unit (`"50"`: requests per second, a count). A key is
//! `default`, a family (`latency`, `errors`, `memory`, ...), a metric (`latency.p99`,
//! `memory.api.peak`) or a metric with its request (`latency.p99{name="get item"}`); the
//! most specific key that fits a figure wins.

use std::fmt;

use serde::Serialize;

use super::{Quantity, REGISTRY};

/// A tolerance, normalised: durations in µs, sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Tolerance {
    /// A fraction of the baseline (10% = 0.10).
    Relative(f64),
    /// Percentage points, for figures in percent.
    Points(f64),
    DurationUs(f64),
    Bytes(f64),
    /// In the figure's own unit (a count, a rate, a number).
    Number(f64),
}

impl Tolerance {
    /// The allowed change in the figure's unit, for absolute tolerances that fit its
    /// unit; None for a relative one or one that does not fit.
    pub fn absolute_for(self, q: Quantity) -> Option<f64> {
        match (self, q) {
            (Tolerance::Points(p), Quantity::Percent(_)) => Some(p),
            (Tolerance::DurationUs(us), Quantity::DurationUs(_)) => Some(us),
            (Tolerance::Bytes(b), Quantity::Bytes(_) | Quantity::BytesPerMinute(_)) => Some(b),
            (
                Tolerance::Number(n),
                Quantity::Count(_) | Quantity::Number(_) | Quantity::PerSecond(_),
            ) => Some(n),
            _ => None,
        }
    }

    /// Whether this tolerance can apply to a figure of this kind.
    pub fn fits(self, q: Quantity) -> bool {
        matches!(self, Tolerance::Relative(_)) || self.absolute_for(q).is_some()
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::format;
        match *self {
            Tolerance::Relative(r) => write!(f, "{}%", format::trim(r * 100.0, 3)),
            Tolerance::Points(p) => write!(f, "{}pp", format::trim(p, 4)),
            Tolerance::DurationUs(us) => f.write_str(&format::duration_us(us)),
            Tolerance::Bytes(b) => f.write_str(&format::bytes(b)),
            Tolerance::Number(n) => f.write_str(&format::number(n)),
        }
    }
}

/// Parse a tolerance value; the error says how to write one.
pub fn parse_tolerance(text: &str) -> Result<Tolerance, String> {
    let t = text.trim();
    let how = r#"write it like "10%" (of the baseline), "0.1pp" (percentage points), "5ms", "64MiB" or a number"#;
    let num = |s: &str| -> Result<f64, String> {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("`{text}` is not a tolerance; {how}"))
    };
    if t.is_empty() {
        return Err(format!("the tolerance is empty; {how}"));
    }
    if let Some(p) = t.strip_suffix("pp") {
        return num(p).map(Tolerance::Points);
    }
    if let Some(p) = t.strip_suffix('%') {
        return num(p).map(|v| Tolerance::Relative(v / 100.0));
    }
    if let Ok(v) = num(t) {
        return Ok(Tolerance::Number(v));
    }
    if let Ok(d) = humantime::parse_duration(t) {
        return Ok(Tolerance::DurationUs(d.as_micros() as f64));
    }
    if let Ok(b) = t.parse::<crate::units::ByteSize>() {
        return Ok(Tolerance::Bytes(b.bytes() as f64));
    }
    Err(format!("`{text}` is not a tolerance; {how}"))
}

/// The families a key may start with: `default` and every metric's first word.
pub fn families() -> Vec<&'static str> {
    let mut out = vec!["default"];
    for d in REGISTRY {
        let first = d.pattern.split('.').next().unwrap_or(d.pattern);
        if !out.contains(&first) {
            out.push(first);
        }
    }
    out
}

/// The family of a key or figure name: its first word (`latency.p99{...}` → `latency`).
pub fn family(key: &str) -> &str {
    key.split(['.', '{']).next().unwrap_or(key)
}

/// Check a `[gate]` key and its value together: Err with the message and a hint.
pub fn check(key: &str, tol: Tolerance) -> Result<(), (String, Option<String>)> {
    let fam = family(key);
    let known = families();
    if !known.contains(&fam) {
        let hint = match crate::suggest::closest(fam, known.iter().copied()) {
            Some(m) => format!(
                "did you mean `{m}`? keys start with one of: {}",
                known.join(", ")
            ),
            None => format!("keys start with one of: {}", known.join(", ")),
        };
        return Err((format!("`{key}` names no figure"), Some(hint)));
    }
    if key.contains('{') && !(key.ends_with("\"}") && key.contains("{name=\"")) {
        return Err((
            format!("`{key}`: a selector is written {{name=\"REQUEST\"}}"),
            Some(r#"e.g. 'latency.p99{name="get item"}' = "20%""#.into()),
        ));
    }
    // Which absolute units each family's figures take.
    let ok = match (fam, tol) {
        (_, Tolerance::Relative(_)) | ("default", _) | ("metric", _) => true,
        ("latency" | "recovery" | "detect" | "pipeline", t) => {
            matches!(t, Tolerance::DurationUs(_))
        }
        ("errors", t) if key.starts_with("errors.rate") => matches!(t, Tolerance::Points(_)),
        ("availability" | "probes" | "cpu", t) => matches!(t, Tolerance::Points(_)),
        ("memory", t) => matches!(t, Tolerance::Bytes(_)),
        (_, t) => matches!(t, Tolerance::Number(_)),
    };
    if ok {
        Ok(())
    } else {
        Err((
            format!("`{tol}` does not fit `{key}`"),
            Some(match fam {
                "latency" | "recovery" | "detect" | "pipeline" => {
                    r#"give a share of the baseline ("10%") or a duration ("5ms")"#.into()
                }
                "errors" | "availability" | "probes" | "cpu" => {
                    r#"give a share of the baseline ("10%") or percentage points ("0.1pp")"#.into()
                }
                "memory" => r#"give a share of the baseline ("10%") or a size ("64MiB")"#.into(),
                _ => r#"give a share of the baseline ("10%") or a number"#.into(),
            }),
        ))
    }
}

/// Built-in tolerances, used when no key fits. Figures with a noise test (latency from
/// the histograms, error rates from the counts) can be tight; figures that are one value
/// per run (resource peaks, recovery) swing more between equal runs, so theirs are wider.
pub fn default_for(figure: &str) -> Tolerance {
    match family(figure) {
        "latency" => Tolerance::Relative(0.10),
        "throughput" => Tolerance::Relative(0.10),
        "errors" if figure.starts_with("errors.rate") => Tolerance::Points(0.1),
        "cpu" => Tolerance::Relative(0.50),
        "memory" => Tolerance::Relative(0.25),
        "recovery" | "detect" => Tolerance::Relative(0.25),
        _ => Tolerance::Relative(0.10),
    }
}

/// The keys that may set a figure's tolerance, most specific first:
/// `latency.p99{name="x"}`, `latency.p99`, `latency`, `default`.
pub fn lookup_keys(figure: &str) -> Vec<String> {
    let mut keys = vec![figure.to_string()];
    let bare = figure.split('{').next().unwrap_or(figure);
    if bare != figure {
        keys.push(bare.to_string());
    }
    let fam = family(figure);
    if fam != bare {
        keys.push(fam.to_string());
    }
    keys.push("default".into());
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(parse_tolerance("10%"), Ok(Tolerance::Relative(0.10)));
        assert_eq!(parse_tolerance("0.1pp"), Ok(Tolerance::Points(0.1)));
        assert_eq!(parse_tolerance("5ms"), Ok(Tolerance::DurationUs(5000.0)));
        assert_eq!(
            parse_tolerance("64MiB"),
            Ok(Tolerance::Bytes(64.0 * 1024.0 * 1024.0))
        );
        assert_eq!(parse_tolerance("50"), Ok(Tolerance::Number(50.0)));
        assert!(parse_tolerance("-5%").is_err());
        assert!(parse_tolerance("lots").is_err());
    }

    #[test]
    fn keys() {
        assert!(check("latency", Tolerance::Relative(0.1)).is_ok());
        assert!(check("latency.p99", Tolerance::DurationUs(5.0)).is_ok());
        assert!(check("errors.rate", Tolerance::Points(0.1)).is_ok());
        assert!(check("errors.rate", Tolerance::DurationUs(5.0)).is_err());
        assert!(check("latncy", Tolerance::Relative(0.1)).is_err());
        assert_eq!(
            lookup_keys("latency.p99{name=\"a\"}"),
            vec![
                "latency.p99{name=\"a\"}",
                "latency.p99",
                "latency",
                "default"
            ]
        );
        assert_eq!(
            lookup_keys("errors.rate"),
            vec!["errors.rate", "errors", "default"]
        );
    }
}
