//! The criteria grammar: `METRIC[{name="..."}] OP VALUE[UNIT]`, parsed and type-checked
//! when the scenario is loaded, before anything starts, so a typo can never switch
//! grading off. Examples:
//!
//! ```text
//! latency.p95 < 200ms                  latency.p99.9{name="create item"} < 1s
//! latency.avg < 50ms                   latency.max < 2s
//! errors.rate < 0.1%                   errors.count{name="get item"} == 0
//! throughput.rps >= 100                requests.count > 1000
//! users.peak >= 5000                   iterations.dropped == 0
//! availability >= 99.99%               availability{service="api"} >= 99.9%
//! recovery.max < 5m                    data_loss.keys == 0
//! memory.api.peak < 2GiB               cpu.api.avg < 40%
//! pipeline.freshness.max < 5m          duplicates.records == 0
//! ```

use std::fmt;

use serde::Serialize;

/// One parsed criterion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Criterion {
    /// The text as written in the scenario (used as the test-case name in JUnit).
    pub source: String,
    pub metric: Metric,
    pub op: Op,
    pub threshold: Quantity,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "metric")]
pub enum Metric {
    /// `latency.<stat>`, optionally for one request name.
    Latency {
        stat: LatencyStat,
        name: Option<String>,
    },
    /// Failed requests over all requests.
    ErrorRate {
        name: Option<String>,
    },
    ErrorCount {
        name: Option<String>,
    },
    /// Requests per second over the load's duration.
    Throughput {
        name: Option<String>,
    },
    RequestCount {
        name: Option<String>,
    },
    UsersPeak,
    DroppedIterations,
    /// Successful health probes over all probes (one service, or all).
    Availability {
        service: Option<String>,
    },
    /// Longest recovery time after a fault (one service, or all).
    RecoveryMax {
        service: Option<String>,
    },
    /// Canary keys written before a fault and missing after it.
    DataLossKeys,
    /// Records written to the sink more than once.
    DuplicateRecords,
    MemoryPeak {
        service: String,
    },
    CpuAvg {
        service: String,
    },
    CpuPeak {
        service: String,
    },
    /// Max of (now - pipeline_last_sync_timestamp_seconds) over the run.
    FreshnessMax,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyStat {
    /// Percentile, 0 < p <= 100 (p95 = 95.0, p99.9 = 99.9).
    Percentile(f64),
    Avg,
    Min,
    Max,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    pub fn holds(self, measured: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => measured < threshold,
            Op::Le => measured <= threshold,
            Op::Gt => measured > threshold,
            Op::Ge => measured >= threshold,
            Op::Eq => measured == threshold,
            Op::Ne => measured != threshold,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A threshold value with its kind. Values are normalised: durations in microseconds,
/// percentages in percent (0.1% = 0.1), bytes in bytes, counts and rates as written.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "unit", content = "value")]
pub enum Quantity {
    DurationUs(f64),
    Percent(f64),
    Bytes(f64),
    Count(f64),
    PerSecond(f64),
}

impl Quantity {
    pub fn value(self) -> f64 {
        match self {
            Quantity::DurationUs(v)
            | Quantity::Percent(v)
            | Quantity::Bytes(v)
            | Quantity::Count(v)
            | Quantity::PerSecond(v) => v,
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Quantity::DurationUs(us) => {
                if us >= 60_000_000.0 {
                    write!(f, "{:.2}m", us / 60_000_000.0)
                } else if us >= 1_000_000.0 {
                    write!(f, "{:.2}s", us / 1_000_000.0)
                } else if us >= 1_000.0 {
                    write!(f, "{:.2}ms", us / 1_000.0)
                } else {
                    write!(f, "{us:.0}µs")
                }
            }
            Quantity::Percent(p) => write!(f, "{p:.4}%"),
            Quantity::Bytes(b) => {
                const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
                const MIB: f64 = 1024.0 * 1024.0;
                if b >= GIB {
                    write!(f, "{:.2}GiB", b / GIB)
                } else if b >= MIB {
                    write!(f, "{:.1}MiB", b / MIB)
                } else {
                    write!(f, "{:.0}KiB", b / 1024.0)
                }
            }
            Quantity::Count(c) => {
                if c.fract() == 0.0 {
                    write!(f, "{c:.0}")
                } else {
                    write!(f, "{c}")
                }
            }
            Quantity::PerSecond(r) => write!(f, "{r:.1}/s"),
        }
    }
}

/// Why a criterion text does not parse: the message says what was expected; `column` is
/// 0-based within the criterion string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CriterionError {
    pub message: String,
    pub column: usize,
    /// How many chars the offending token spans (at least 1).
    pub width: usize,
    pub hint: Option<String>,
}

/// Every metric the grammar knows, as shown in messages.
pub const METRICS: &[&str] = &[
    "latency.pNN (p50, p95, p99, p99.9 ...)",
    "latency.avg",
    "latency.min",
    "latency.max",
    "errors.rate",
    "errors.count",
    "throughput.rps",
    "requests.count",
    "users.peak",
    "iterations.dropped",
    "availability",
    "recovery.max",
    "data_loss.keys",
    "duplicates.records",
    "memory.<service>.peak",
    "cpu.<service>.avg",
    "cpu.<service>.peak",
    "pipeline.freshness.max",
];

/// Concrete metric names, for "did you mean".
const METRIC_NAMES: &[&str] = &[
    "latency.p50",
    "latency.p90",
    "latency.p95",
    "latency.p99",
    "latency.p99.9",
    "latency.avg",
    "latency.min",
    "latency.max",
    "errors.rate",
    "errors.count",
    "throughput.rps",
    "requests.count",
    "users.peak",
    "iterations.dropped",
    "availability",
    "recovery.max",
    "data_loss.keys",
    "duplicates.records",
    "pipeline.freshness.max",
];

/// What kind of value a metric is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Duration,
    /// A percentage that cannot exceed 100.
    Share,
    /// A percentage that may exceed 100 (CPU over several cores).
    Percent,
    Bytes,
    Count,
    PerSecond,
}

impl Kind {
    fn example(self) -> &'static str {
        match self {
            Kind::Duration => "a duration like 200ms",
            Kind::Share | Kind::Percent => "a percentage like 0.1%",
            Kind::Bytes => "a size like 512MiB",
            Kind::Count => "a plain count like 0 or 1000",
            Kind::PerSecond => "a rate like 100 or 100/s",
        }
    }

    fn units(self) -> &'static str {
        match self {
            Kind::Duration => "units: us, ms, s, m, h",
            Kind::Share | Kind::Percent => "write the number followed by %",
            Kind::Bytes => "units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB",
            Kind::Count => "a count has no unit",
            Kind::PerSecond => "a rate is a plain number or a number followed by /s",
        }
    }
}

/// Microseconds per duration unit.
fn duration_unit(u: &str) -> Option<f64> {
    Some(match u {
        "us" | "µs" | "μs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    })
}

/// Bytes per size unit (SI for KB/MB/GB/TB, binary for KiB/MiB/GiB/TiB).
pub(crate) fn bytes_unit(u: &str) -> Option<f64> {
    const K: f64 = 1024.0;
    Some(match u {
        "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => K,
        "MiB" => K * K,
        "GiB" => K * K * K,
        "TiB" => K * K * K * K,
        _ => return None,
    })
}

struct Cursor<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if !c.is_whitespace() {
                break;
            }
            self.pos += c.len_utf8();
        }
    }
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> (usize, &'a str) {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        (start, &self.src[start..self.pos])
    }
    /// 0-based char column of a byte offset.
    fn col(&self, byte: usize) -> usize {
        self.src[..byte].chars().count()
    }
    /// An error at the token starting at `byte`.
    fn err(&self, byte: usize, message: impl Into<String>, hint: Option<String>) -> CriterionError {
        let token = self.src[byte..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .count();
        CriterionError {
            message: message.into(),
            column: self.col(byte),
            width: token.max(1),
            hint,
        }
    }

    /// An error over `start..end` (bytes).
    fn err_span(
        &self,
        start: usize,
        end: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> CriterionError {
        CriterionError {
            message: message.into(),
            column: self.col(start),
            width: self.src[start..end.max(start)].chars().count().max(1),
            hint,
        }
    }
}

fn shown(s: &str) -> String {
    if s.is_empty() {
        "nothing".into()
    } else {
        format!("`{s}`")
    }
}

/// Parse one criterion. `CriterionError::column` is the 0-based char index of the
/// offending token within `source`.
pub fn parse(source: &str) -> Result<Criterion, CriterionError> {
    let mut c = Cursor {
        src: source,
        pos: 0,
    };
    c.skip_ws();
    if c.peek().is_none() {
        return Err(c.err_span(
            0,
            source.len(),
            "empty criterion",
            Some("write it like `latency.p95 < 200ms`".into()),
        ));
    }
    let (mstart, mname) =
        c.take_while(|ch| ch.is_alphanumeric() || ch == '_' || ch == '-' || ch == '.');
    if mname.is_empty() {
        return Err(c.err(
            mstart,
            format!(
                "expected a metric name, found {}",
                shown(first_token(c.rest()))
            ),
            Some("write it like `latency.p95 < 200ms`".into()),
        ));
    }
    c.skip_ws();

    // Optional selector: {name="..."} or {service="..."}.
    let mut selector: Option<(usize, String, usize, String)> = None;
    if c.peek() == Some('{') {
        c.pos += 1;
        c.skip_ws();
        let (kstart, key) = c.take_while(|ch| ch.is_alphanumeric() || ch == '_');
        if key.is_empty() {
            return Err(c.err(
                kstart,
                "expected a selector like {name=\"create item\"}",
                None,
            ));
        }
        let key = key.to_string();
        c.skip_ws();
        if c.peek() != Some('=') {
            return Err(c.err(
                c.pos,
                format!("expected `=` after `{key}` in the selector"),
                Some(format!("write it like {{{key}=\"...\"}}")),
            ));
        }
        c.pos += 1;
        c.skip_ws();
        let vstart = c.pos;
        let quote = match c.peek() {
            Some(q @ ('"' | '\'')) => q,
            _ => {
                return Err(c.err(
                    vstart,
                    format!("the selector value must be quoted: {{{key}=\"...\"}}"),
                    None,
                ))
            }
        };
        c.pos += 1;
        let (_, val) = c.take_while(|ch| ch != quote);
        if c.peek() != Some(quote) {
            return Err(c.err(vstart, "unclosed quote in the selector", None));
        }
        c.pos += 1;
        let val = val.to_string();
        c.skip_ws();
        match c.peek() {
            Some('}') => c.pos += 1,
            Some(',') => {
                return Err(c.err(c.pos, "a criterion takes one selector only", None));
            }
            _ => {
                return Err(c.err(
                    c.pos,
                    format!(
                        "expected `}}` to close the selector, found {}",
                        shown(first_token(c.rest()))
                    ),
                    None,
                ))
            }
        }
        if val.is_empty() {
            return Err(c.err(vstart, format!("the selector `{key}` is empty"), None));
        }
        selector = Some((kstart, key, vstart, val));
        c.skip_ws();
    }

    let (metric, kind) = resolve_metric(&c, mstart, mname, selector)?;

    // Operator.
    let opstart = c.pos;
    let rest = c.rest();
    let (op, len) = if rest.starts_with("<=") {
        (Op::Le, 2)
    } else if rest.starts_with(">=") {
        (Op::Ge, 2)
    } else if rest.starts_with("==") {
        (Op::Eq, 2)
    } else if rest.starts_with("!=") {
        (Op::Ne, 2)
    } else if rest.starts_with('<') {
        (Op::Lt, 1)
    } else if rest.starts_with('>') {
        (Op::Gt, 1)
    } else if rest.starts_with('=') {
        return Err(c.err(opstart, "`=` is not an operator; use `==`", None));
    } else {
        return Err(c.err(
            opstart,
            format!(
                "expected an operator (<, <=, >, >=, ==, !=) after `{mname}`, found {}",
                shown(first_token(rest))
            ),
            None,
        ));
    };
    c.pos += len;
    c.skip_ws();

    // Value and unit.
    let vstart = c.pos;
    let (_, num) = c.take_while(|ch| ch.is_ascii_digit() || ch == '.');
    let number: f64 = match num.parse() {
        Ok(n) if !num.starts_with('.') => n,
        _ => {
            return Err(c.err(
                vstart,
                format!(
                    "{mname} takes {}; found {}",
                    kind.example(),
                    shown(first_token(c.src[vstart..].trim_end()))
                ),
                None,
            ))
        }
    };
    let before_unit = c.pos;
    c.skip_ws();
    let (_, unit) = c.take_while(|ch| !ch.is_whitespace());
    let unit_end = c.pos;
    c.skip_ws();
    if c.peek().is_some() {
        return Err(c.err(
            c.pos,
            format!(
                "unexpected {} after the threshold",
                shown(c.rest().trim_end())
            ),
            Some("a criterion is METRIC OP VALUE, like `latency.p95 < 200ms`".into()),
        ));
    }
    let found = source[vstart..unit_end].trim();
    let wrong = |c: &Cursor| {
        c.err_span(
            vstart,
            unit_end,
            format!("{mname} takes {}; found `{found}`", kind.example()),
            Some(kind.units().into()),
        )
    };
    let _ = before_unit;
    let threshold = match kind {
        Kind::Duration => match duration_unit(unit) {
            Some(f) => Quantity::DurationUs(number * f),
            None => return Err(wrong(&c)),
        },
        Kind::Share | Kind::Percent => {
            if unit != "%" {
                return Err(wrong(&c));
            }
            if kind == Kind::Share && number > 100.0 {
                return Err(c.err(
                    vstart,
                    format!("{mname} is a share of 100%; found `{found}`"),
                    None,
                ));
            }
            Quantity::Percent(number)
        }
        Kind::Bytes => match bytes_unit(unit) {
            Some(f) => Quantity::Bytes(number * f),
            None => return Err(wrong(&c)),
        },
        Kind::Count => {
            if !unit.is_empty() {
                return Err(wrong(&c));
            }
            if number.fract() != 0.0 {
                return Err(c.err(
                    vstart,
                    format!("{mname} takes a whole number; found `{found}`"),
                    None,
                ));
            }
            Quantity::Count(number)
        }
        Kind::PerSecond => {
            if !(unit.is_empty() || unit == "/s") {
                return Err(wrong(&c));
            }
            Quantity::PerSecond(number)
        }
    };
    Ok(Criterion {
        source: source.to_string(),
        metric,
        op,
        threshold,
    })
}

fn first_token(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("")
}

fn resolve_metric(
    c: &Cursor,
    mstart: usize,
    mname: &str,
    selector: Option<(usize, String, usize, String)>,
) -> Result<(Metric, Kind), CriterionError> {
    let unknown = || {
        let hint = match crate::scenario::suggest::closest(mname, METRIC_NAMES.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? valid metrics: {}", METRICS.join(", ")),
            None => format!("valid metrics: {}", METRICS.join(", ")),
        };
        c.err_span(
            mstart,
            mstart + mname.len(),
            format!("unknown metric `{mname}`"),
            Some(hint),
        )
    };
    let stat_col = mstart + "latency.".len();
    let bad_stat = |p: &str| {
        c.err(
            stat_col,
            format!("unknown latency statistic `{p}`"),
            Some("use a percentile like p95 or p99.9, or avg, min, max".into()),
        )
    };
    let parts: Vec<&str> = mname.split('.').collect();
    let (mut metric, kind) = match parts.as_slice() {
        ["latency"] => {
            return Err(c.err(
                mstart,
                "`latency` needs a statistic: latency.p95, latency.avg, latency.min or latency.max",
                None,
            ))
        }
        ["latency", stat @ ..] => {
            let stat_text = stat.join(".");
            let stat = match stat_text.as_str() {
                "avg" | "mean" => LatencyStat::Avg,
                "min" => LatencyStat::Min,
                "max" => LatencyStat::Max,
                p if p.starts_with('p') && !p[1..].starts_with('.') => {
                    let v: f64 = p[1..].parse().map_err(|_| bad_stat(p))?;
                    if !(v > 0.0 && v <= 100.0) {
                        return Err(c.err(
                            stat_col,
                            format!(
                                "percentile `{p}` is out of range; it must be above 0 and at most 100"
                            ),
                            None,
                        ));
                    }
                    LatencyStat::Percentile(v)
                }
                other => return Err(bad_stat(other)),
            };
            (Metric::Latency { stat, name: None }, Kind::Duration)
        }
        ["errors", "rate"] => (Metric::ErrorRate { name: None }, Kind::Share),
        ["errors", "count"] => (Metric::ErrorCount { name: None }, Kind::Count),
        ["throughput", "rps"] => (Metric::Throughput { name: None }, Kind::PerSecond),
        ["requests", "count"] => (Metric::RequestCount { name: None }, Kind::Count),
        ["users", "peak"] => (Metric::UsersPeak, Kind::Count),
        ["iterations", "dropped"] => (Metric::DroppedIterations, Kind::Count),
        ["availability"] => (Metric::Availability { service: None }, Kind::Share),
        ["recovery", "max"] => (Metric::RecoveryMax { service: None }, Kind::Duration),
        ["data_loss", "keys"] => (Metric::DataLossKeys, Kind::Count),
        ["duplicates", "records"] => (Metric::DuplicateRecords, Kind::Count),
        ["pipeline", "freshness", "max"] => (Metric::FreshnessMax, Kind::Duration),
        ["memory", service, "peak"] if !service.is_empty() => (
            Metric::MemoryPeak {
                service: service.to_string(),
            },
            Kind::Bytes,
        ),
        ["memory", ..] => {
            return Err(c.err(
                mstart,
                format!("`{mname}`: write memory criteria as memory.<service>.peak"),
                Some("e.g. `memory.api.peak < 2GiB`".into()),
            ))
        }
        ["cpu", service, "avg"] if !service.is_empty() => (
            Metric::CpuAvg {
                service: service.to_string(),
            },
            Kind::Percent,
        ),
        ["cpu", service, "peak"] if !service.is_empty() => (
            Metric::CpuPeak {
                service: service.to_string(),
            },
            Kind::Percent,
        ),
        ["cpu", ..] => {
            return Err(c.err(
                mstart,
                format!("`{mname}`: write CPU criteria as cpu.<service>.avg or cpu.<service>.peak"),
                Some("e.g. `cpu.api.avg < 40%`".into()),
            ))
        }
        _ => return Err(unknown()),
    };
    if let Some((kstart, key, _, val)) = selector {
        let (slot, takes) = match &mut metric {
            Metric::Latency { name, .. }
            | Metric::ErrorRate { name }
            | Metric::ErrorCount { name }
            | Metric::Throughput { name }
            | Metric::RequestCount { name } => (Some(name), "name"),
            Metric::Availability { service } | Metric::RecoveryMax { service } => {
                (Some(service), "service")
            }
            _ => (None, ""),
        };
        match slot {
            None => return Err(c.err(kstart - 1, format!("{mname} takes no selector"), None)),
            Some(slot) if key == takes => *slot = Some(val),
            Some(_) => {
                let what = if takes == "name" {
                    "request name"
                } else {
                    "service"
                };
                return Err(c.err(
                    kstart,
                    format!("{mname} selects by {what}, not `{key}`"),
                    Some(format!("write {mname}{{{takes}=\"...\"}}")),
                ));
            }
        }
    }
    Ok((metric, kind))
}

impl Metric {
    /// The request name this metric is restricted to, if any.
    pub fn request_name(&self) -> Option<&str> {
        match self {
            Metric::Latency { name, .. }
            | Metric::ErrorRate { name }
            | Metric::ErrorCount { name }
            | Metric::Throughput { name }
            | Metric::RequestCount { name } => name.as_deref(),
            _ => None,
        }
    }

    /// The service this metric reads, if any.
    pub fn service(&self) -> Option<&str> {
        match self {
            Metric::Availability { service } | Metric::RecoveryMax { service } => {
                service.as_deref()
            }
            Metric::MemoryPeak { service }
            | Metric::CpuAvg { service }
            | Metric::CpuPeak { service } => Some(service),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Criterion {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e} (col {})", e.column))
    }

    fn err(s: &str) -> CriterionError {
        match parse(s) {
            Ok(c) => panic!("{s} parsed: {c:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn latency_percentiles_and_stats() {
        let c = ok("latency.p95 < 200ms");
        assert_eq!(
            c.metric,
            Metric::Latency {
                stat: LatencyStat::Percentile(95.0),
                name: None
            }
        );
        assert_eq!(c.op, Op::Lt);
        assert_eq!(c.threshold, Quantity::DurationUs(200_000.0));
        assert_eq!(c.source, "latency.p95 < 200ms");
        let c = ok("latency.p99.9{name=\"create item\"} <= 1s");
        assert_eq!(
            c.metric,
            Metric::Latency {
                stat: LatencyStat::Percentile(99.9),
                name: Some("create item".into())
            }
        );
        assert_eq!(c.threshold, Quantity::DurationUs(1e6));
        assert_eq!(c.metric.request_name(), Some("create item"));
        assert!(
            matches!(ok("latency.p100 < 1s").metric, Metric::Latency { stat: LatencyStat::Percentile(p), .. } if p == 100.0)
        );
        assert!(matches!(
            ok("latency.avg < 50ms").metric,
            Metric::Latency {
                stat: LatencyStat::Avg,
                ..
            }
        ));
        assert!(matches!(
            ok("latency.min > 1us").metric,
            Metric::Latency {
                stat: LatencyStat::Min,
                ..
            }
        ));
        assert!(matches!(
            ok("latency.max < 2s").metric,
            Metric::Latency {
                stat: LatencyStat::Max,
                ..
            }
        ));
        // Whitespace is free.
        let c = ok("  latency.p50 { name = 'get' }>=0.5 ms ");
        assert_eq!(c.op, Op::Ge);
        assert_eq!(c.threshold, Quantity::DurationUs(500.0));
        assert_eq!(c.metric.request_name(), Some("get"));
    }

    #[test]
    fn duration_units() {
        for (s, us) in [
            ("latency.max < 7us", 7.0),
            ("latency.max < 7µs", 7.0),
            ("latency.max < 7ms", 7e3),
            ("latency.max < 7s", 7e6),
            ("latency.max < 2m", 120e6),
            ("latency.max < 1h", 3600e6),
            ("recovery.max < 5m", 300e6),
            ("pipeline.freshness.max < 1.5s", 1.5e6),
        ] {
            assert_eq!(ok(s).threshold, Quantity::DurationUs(us), "{s}");
        }
    }

    #[test]
    fn size_units() {
        for (s, b) in [
            ("memory.api.peak < 10B", 10.0),
            ("memory.api.peak < 2KB", 2e3),
            ("memory.api.peak < 2MB", 2e6),
            ("memory.api.peak < 2GB", 2e9),
            ("memory.api.peak < 2KiB", 2048.0),
            ("memory.api.peak < 2MiB", 2.0 * 1024.0 * 1024.0),
            ("memory.api.peak < 2GiB", 2.0 * 1024.0 * 1024.0 * 1024.0),
        ] {
            assert_eq!(ok(s).threshold, Quantity::Bytes(b), "{s}");
        }
        assert_eq!(
            ok("memory.api.peak < 2GiB").metric,
            Metric::MemoryPeak {
                service: "api".into()
            }
        );
    }

    #[test]
    fn every_metric() {
        let cases: &[(&str, Metric, Quantity)] = &[
            (
                "errors.rate < 0.1%",
                Metric::ErrorRate { name: None },
                Quantity::Percent(0.1),
            ),
            (
                "errors.count{name=\"get item\"} == 0",
                Metric::ErrorCount {
                    name: Some("get item".into()),
                },
                Quantity::Count(0.0),
            ),
            (
                "throughput.rps >= 100",
                Metric::Throughput { name: None },
                Quantity::PerSecond(100.0),
            ),
            (
                "throughput.rps >= 100/s",
                Metric::Throughput { name: None },
                Quantity::PerSecond(100.0),
            ),
            (
                "requests.count > 1000",
                Metric::RequestCount { name: None },
                Quantity::Count(1000.0),
            ),
            (
                "users.peak >= 5000",
                Metric::UsersPeak,
                Quantity::Count(5000.0),
            ),
            (
                "iterations.dropped == 0",
                Metric::DroppedIterations,
                Quantity::Count(0.0),
            ),
            (
                "availability >= 99.99%",
                Metric::Availability { service: None },
                Quantity::Percent(99.99),
            ),
            (
                "availability{service=\"api\"} >= 99.9%",
                Metric::Availability {
                    service: Some("api".into()),
                },
                Quantity::Percent(99.9),
            ),
            (
                "recovery.max < 5m",
                Metric::RecoveryMax { service: None },
                Quantity::DurationUs(300e6),
            ),
            (
                "recovery.max{service=\"db\"} < 5s",
                Metric::RecoveryMax {
                    service: Some("db".into()),
                },
                Quantity::DurationUs(5e6),
            ),
            (
                "data_loss.keys == 0",
                Metric::DataLossKeys,
                Quantity::Count(0.0),
            ),
            (
                "duplicates.records == 0",
                Metric::DuplicateRecords,
                Quantity::Count(0.0),
            ),
            (
                "cpu.api.avg < 40%",
                Metric::CpuAvg {
                    service: "api".into(),
                },
                Quantity::Percent(40.0),
            ),
            (
                "cpu.api.peak < 150%",
                Metric::CpuPeak {
                    service: "api".into(),
                },
                Quantity::Percent(150.0),
            ),
            (
                "pipeline.freshness.max < 5m",
                Metric::FreshnessMax,
                Quantity::DurationUs(300e6),
            ),
        ];
        for (s, m, q) in cases {
            let c = ok(s);
            assert_eq!(&c.metric, m, "{s}");
            assert_eq!(&c.threshold, q, "{s}");
        }
        assert_eq!(ok("cpu.api.avg < 40%").metric.service(), Some("api"));
    }

    #[test]
    fn operators() {
        for (s, op) in [
            ("users.peak < 1", Op::Lt),
            ("users.peak <= 1", Op::Le),
            ("users.peak > 1", Op::Gt),
            ("users.peak >= 1", Op::Ge),
            ("users.peak == 1", Op::Eq),
            ("users.peak != 1", Op::Ne),
            ("users.peak<1", Op::Lt),
        ] {
            assert_eq!(ok(s).op, op, "{s}");
        }
        let e = err("users.peak = 1");
        assert!(e.message.contains("=="), "{e}");
        assert_eq!(e.column, 11);
        let e = err("users.peak 1");
        assert!(e.message.starts_with("expected an operator"), "{e}");
        assert_eq!(e.column, 11);
    }

    #[test]
    fn wrong_units_say_what_the_metric_takes() {
        let e = err("latency.p95 < 200");
        assert_eq!(
            e.message,
            "latency.p95 takes a duration like 200ms; found `200`"
        );
        assert_eq!(e.column, 14);
        let e = err("errors.rate < 0.001");
        assert_eq!(
            e.message,
            "errors.rate takes a percentage like 0.1%; found `0.001`"
        );
        let e = err("errors.count < 5ms");
        assert_eq!(
            e.message,
            "errors.count takes a plain count like 0 or 1000; found `5ms`"
        );
        let e = err("memory.api.peak < 2");
        assert_eq!(
            e.message,
            "memory.api.peak takes a size like 512MiB; found `2`"
        );
        let e = err("memory.api.peak < 2gb");
        assert!(e.hint.unwrap().contains("GiB"));
        let e = err("throughput.rps > 5ms");
        assert_eq!(
            e.message,
            "throughput.rps takes a rate like 100 or 100/s; found `5ms`"
        );
        let e = err("cpu.api.avg < 40");
        assert_eq!(
            e.message,
            "cpu.api.avg takes a percentage like 0.1%; found `40`"
        );
        let e = err("availability > 99");
        assert!(e.message.contains("percentage"), "{e}");
        let e = err("latency.p95 < 200 %");
        assert_eq!(
            e.message,
            "latency.p95 takes a duration like 200ms; found `200 %`"
        );
        let e = err("latency.p95 < fast");
        assert_eq!(
            e.message,
            "latency.p95 takes a duration like 200ms; found `fast`"
        );
        assert_eq!(e.column, 14);
        let e = err("latency.p95 <");
        assert_eq!(
            e.message,
            "latency.p95 takes a duration like 200ms; found nothing"
        );
        let e = err("errors.rate < 150%");
        assert!(e.message.contains("share of 100%"), "{e}");
        let e = err("users.peak > 1.5");
        assert!(e.message.contains("whole number"), "{e}");
    }

    #[test]
    fn unknown_metrics_and_stats() {
        let e = err("latncy.p95 < 200ms");
        assert_eq!(e.message, "unknown metric `latncy.p95`");
        assert_eq!(e.column, 0);
        let hint = e.hint.unwrap();
        assert!(hint.starts_with("did you mean `latency.p95`?"), "{hint}");
        assert!(
            hint.contains("errors.rate") && hint.contains("memory.<service>.peak"),
            "{hint}"
        );
        let e = err("  bogus > 1");
        assert_eq!(e.column, 2);
        assert!(!e.hint.unwrap().contains("did you mean"));
        let e = err("latency.p0 < 1s");
        assert!(e.message.contains("out of range"), "{e}");
        assert_eq!(e.column, 8);
        let e = err("latency.p101 < 1s");
        assert!(e.message.contains("out of range"), "{e}");
        let e = err("latency.median < 1s");
        assert_eq!(e.message, "unknown latency statistic `median`");
        let e = err("latency < 1s");
        assert!(e.message.contains("needs a statistic"), "{e}");
        let e = err("memory.api < 1GiB");
        assert!(e.message.contains("memory.<service>.peak"), "{e}");
        let e = err("cpu.api.max < 1%");
        assert!(e.message.contains("cpu.<service>.avg"), "{e}");
    }

    #[test]
    fn selectors() {
        let e = err("users.peak{name=\"x\"} > 1");
        assert_eq!(e.message, "users.peak takes no selector");
        assert_eq!(e.column, 10);
        let e = err("latency.p95{service=\"api\"} < 1s");
        assert!(e.message.contains("selects by request name"), "{e}");
        assert_eq!(e.column, 12);
        let e = err("availability{name=\"api\"} > 1%");
        assert!(e.message.contains("selects by service"), "{e}");
        let e = err("latency.p95{name=x} < 1s");
        assert!(e.message.contains("quoted"), "{e}");
        let e = err("latency.p95{name=\"x\" < 1s");
        assert!(e.message.contains("close the selector"), "{e}");
        let e = err("latency.p95{name=\"x\", service=\"y\"} < 1s");
        assert!(e.message.contains("one selector"), "{e}");
        let e = err("latency.p95{name=\"\"} < 1s");
        assert!(e.message.contains("empty"), "{e}");
        let e = err("latency.p95{name=\"x} < 1s");
        assert!(e.message.contains("unclosed"), "{e}");
    }

    #[test]
    fn syntax_errors() {
        let e = err("");
        assert_eq!(e.message, "empty criterion");
        let e = err("< 1s");
        assert!(e.message.starts_with("expected a metric name"), "{e}");
        let e = err("latency.p95 < 200ms extra");
        assert_eq!(e.message, "unexpected `extra` after the threshold");
        assert_eq!(e.column, 20);
        let e = err("latency.p95 < .5s");
        assert!(e.message.contains("takes a duration"), "{e}");
    }

    #[test]
    fn columns_count_chars_not_bytes() {
        let e = err("latency.max < 5µs xx");
        assert_eq!(e.column, 18);
    }
}
