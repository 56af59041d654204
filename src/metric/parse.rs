//! The criteria grammar: `METRIC[{key="...", ...}] OP VALUE[UNIT]`, parsed and
//! type-checked against the [`REGISTRY`] when the scenario is loaded, before anything
//! starts, so a typo can never switch grading off.

use crate::units::ByteSize;

use super::{
    concrete_names, shown_names, Criterion, Kind, Metric, MetricDef, Op, Quantity, Selects, Stat,
    StatKind, REGISTRY,
};

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

/// The largest threshold, in the metric's base unit (µs, bytes, count...): 2^53, where an
/// f64 still holds every whole number. Larger values are typos, and an infinite one (a
/// number with hundreds of digits parses to infinity) would make a criterion meaningless.
pub const MAX_THRESHOLD: f64 = 9_007_199_254_740_992.0;

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

/// One `key="value"` of a selector; `key_at` is where the key starts (bytes).
struct Sel {
    key_at: usize,
    key: String,
    value: String,
}

/// Parse one criterion. `CriterionError::column` is the 0-based char index of the
/// offending token within `source`.
pub fn parse(source: &str) -> Result<Criterion, CriterionError> {
    let mut c = Cursor {
        src: source,
        pos: 0,
    };
    let (mstart, mname) = metric_name(&mut c)?;
    let (brace, sels) = selectors(&mut c)?;
    let metric = resolve(&c, mstart, mname, brace, sels)?;
    let kind = metric.kind();
    let op = operator(&mut c, mname)?;
    let value = value(&mut c, mname, kind)?;
    let threshold = threshold(&c, mname, kind, &value)?;
    if !threshold.value().is_finite() || threshold.value().abs() > MAX_THRESHOLD {
        let found = c.src[value.start..value.end].trim();
        let found = match found.char_indices().nth(24) {
            Some((i, _)) => format!("{}…", &found[..i]),
            None => found.to_string(),
        };
        return Err(c.err_span(
            value.start,
            value.end,
            format!("the threshold `{found}` is too large to compare with"),
            Some("write a value a measurement can reach".into()),
        ));
    }
    Ok(Criterion {
        source: source.to_string(),
        metric,
        op,
        threshold,
    })
}

/// The metric name and where it starts (bytes), the cursor past the blanks after it.
fn metric_name<'a>(c: &mut Cursor<'a>) -> Result<(usize, &'a str), CriterionError> {
    c.skip_ws();
    if c.peek().is_none() {
        return Err(c.err_span(
            0,
            c.src.len(),
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
    Ok((mstart, mname))
}

/// Optional selectors: {name="..."}, {service="...", name="..."}; with where the brace
/// opens (bytes).
fn selectors(c: &mut Cursor) -> Result<(Option<usize>, Vec<Sel>), CriterionError> {
    let mut sels = Vec::new();
    if c.peek() != Some('{') {
        return Ok((None, sels));
    }
    let brace = Some(c.pos);
    c.pos += 1;
    loop {
        c.skip_ws();
        sels.push(selector(c)?);
        c.skip_ws();
        match c.peek() {
            Some('}') => {
                c.pos += 1;
                break;
            }
            Some(',') => c.pos += 1,
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
    }
    c.skip_ws();
    Ok((brace, sels))
}

/// The comparison, the cursor past it and the blanks after it.
fn operator(c: &mut Cursor, mname: &str) -> Result<Op, CriterionError> {
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
    Ok(op)
}

/// The threshold as written: a number and its unit, spanning `start..end` (bytes).
struct Value<'a> {
    start: usize,
    end: usize,
    number: f64,
    unit: &'a str,
}

/// The number and the unit, which must end the criterion.
fn value<'a>(c: &mut Cursor<'a>, mname: &str, kind: Kind) -> Result<Value<'a>, CriterionError> {
    let start = c.pos;
    // Only a plain number (a gauge) can be negative.
    let negative = kind == Kind::Number && c.peek() == Some('-');
    if negative {
        c.pos += 1;
    }
    let (_, num) = c.take_while(|ch| ch.is_ascii_digit() || ch == '.');
    let number: f64 = match num.parse::<f64>() {
        Ok(n) if !num.starts_with('.') => {
            if negative {
                -n
            } else {
                n
            }
        }
        _ => {
            return Err(c.err(
                start,
                format!(
                    "{mname} takes {}; found {}",
                    kind.example(),
                    shown(first_token(c.src[start..].trim_end()))
                ),
                None,
            ))
        }
    };
    c.skip_ws();
    let (_, unit) = c.take_while(|ch| !ch.is_whitespace());
    let end = c.pos;
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
    Ok(Value {
        start,
        end,
        number,
        unit,
    })
}

/// The value as the quantity the metric's kind takes, its unit checked.
fn threshold(c: &Cursor, mname: &str, kind: Kind, v: &Value) -> Result<Quantity, CriterionError> {
    let (number, unit) = (v.number, v.unit);
    let found = c.src[v.start..v.end].trim();
    let wrong = || {
        c.err_span(
            v.start,
            v.end,
            format!("{mname} takes {}; found `{found}`", kind.example()),
            Some(kind.units().into()),
        )
    };
    let bad_value = |what: &str| c.err(v.start, format!("{mname} {what}; found `{found}`"), None);
    Ok(match kind {
        Kind::Duration => match duration_unit(unit) {
            Some(f) => Quantity::DurationUs(number * f),
            None => return Err(wrong()),
        },
        Kind::Share | Kind::Percent => {
            if unit != "%" {
                return Err(wrong());
            }
            if kind == Kind::Share && number > 100.0 {
                return Err(bad_value("is a share of 100%"));
            }
            Quantity::Percent(number)
        }
        // A size needs its unit: a bare `2` would silently mean 2 bytes.
        Kind::Bytes => match ByteSize::unit(unit).filter(|_| !unit.is_empty()) {
            Some(f) => Quantity::Bytes(number * f),
            None => return Err(wrong()),
        },
        Kind::BytesPerMinute => {
            let per = unit.rsplit_once('/').and_then(|(size, per)| {
                let per_min = match per {
                    "s" => 60.0,
                    "min" | "m" => 1.0,
                    "h" => 1.0 / 60.0,
                    _ => return None,
                };
                ByteSize::unit(size)
                    .filter(|_| !size.is_empty())
                    .map(|f| f * per_min)
            });
            match per {
                Some(f) => Quantity::BytesPerMinute(number * f),
                None => return Err(wrong()),
            }
        }
        Kind::Count => {
            if !unit.is_empty() {
                return Err(wrong());
            }
            if number.fract() != 0.0 {
                return Err(bad_value("takes a whole number"));
            }
            Quantity::Count(number)
        }
        Kind::Number | Kind::OfSeries => {
            if !unit.is_empty() {
                return Err(wrong());
            }
            Quantity::Number(number)
        }
        Kind::PerSecond => {
            if !(unit.is_empty() || unit == "/s") {
                return Err(wrong());
            }
            Quantity::PerSecond(number)
        }
    })
}

/// One `key="value"` (or `key='value'`), the cursor on the key.
fn selector(c: &mut Cursor) -> Result<Sel, CriterionError> {
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
    let (_, value) = c.take_while(|ch| ch != quote);
    if c.peek() != Some(quote) {
        return Err(c.err(vstart, "unclosed quote in the selector", None));
    }
    c.pos += 1;
    if value.is_empty() {
        return Err(c.err(vstart, format!("the selector `{key}` is empty"), None));
    }
    Ok(Sel {
        key_at: kstart,
        key,
        value: value.to_string(),
    })
}

fn first_token(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("")
}

/// `a, b or c`.
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// `{key="..."}` for every selector of a row.
fn selector_example(d: &MetricDef) -> String {
    let keys: Vec<String> = d
        .selectors
        .iter()
        .map(|s| format!("{}=\"...\"", s.key))
        .collect();
    format!("{{{}}}", keys.join(", "))
}

/// Whether `mname` is this row's name: the stat text and the service of its placeholders.
fn match_row<'a>(d: &MetricDef, mname: &'a str) -> Option<(Option<&'a str>, Option<&'a str>)> {
    let parts: Vec<&str> = mname.split('.').collect();
    let mut service = None;
    let mut offset = 0;
    for (i, seg) in d.pattern.split('.').enumerate() {
        let part = parts.get(i)?;
        if seg == "<service>" {
            if part.is_empty() {
                return None;
            }
            service = Some(*part);
        } else if seg.starts_with('<') {
            // The statistic is last and takes the rest (`p99.9` has a dot).
            return Some((Some(&mname[offset..]), service));
        } else if *part != seg {
            return None;
        }
        offset += part.len() + 1;
    }
    (parts.len() == d.pattern.split('.').count()).then_some((None, service))
}

/// The statistics a row takes, as a hint.
fn stat_help(d: &MetricDef) -> String {
    let names: Vec<String> = d
        .stats
        .iter()
        .filter(|s| **s != StatKind::Percentile)
        .map(|s| s.example().to_string())
        .collect();
    if d.stats.contains(&StatKind::Percentile) {
        format!("a percentile like p95 or p99.9, or {}", names.join(", "))
    } else {
        or_list(&names)
    }
}

fn parse_stat(c: &Cursor, d: &MetricDef, at: usize, text: &str) -> Result<Stat, CriterionError> {
    let family = d.pattern.split('.').next().unwrap_or(d.pattern);
    let bad = || {
        c.err(
            at,
            format!("unknown {family} statistic `{text}`"),
            Some(format!("use {}", stat_help(d))),
        )
    };
    let stat = match text {
        "avg" | "mean" => Stat::Avg,
        "min" => Stat::Min,
        "max" => Stat::Max,
        "last" => Stat::Last,
        "rate" => Stat::Rate,
        p if p.starts_with('p')
            && !p[1..].starts_with('.')
            && d.stats.contains(&StatKind::Percentile) =>
        {
            let v: f64 = p[1..].parse().map_err(|_| bad())?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(c.err(
                    at,
                    format!("percentile `{p}` is out of range; it must be above 0 and at most 100"),
                    None,
                ));
            }
            Stat::Percentile(v)
        }
        _ => return Err(bad()),
    };
    if !d.stats.contains(&stat.kind()) {
        return Err(bad());
    }
    Ok(stat)
}

/// Why `mname` is no metric: a name that lacks its statistic, a `<service>` name written
/// wrong, or an unknown name (with the closest known one).
fn no_match(c: &Cursor, mstart: usize, mname: &str) -> CriterionError {
    for d in REGISTRY.iter().filter(|d| !d.stats.is_empty()) {
        if let Some((prefix, _)) = d.pattern.rsplit_once('.') {
            if prefix == mname {
                let names: Vec<String> = d
                    .stats
                    .iter()
                    .map(|s| format!("{prefix}.{}", s.example()))
                    .collect();
                return c.err(
                    mstart,
                    format!("`{mname}` needs a statistic: {}", or_list(&names)),
                    None,
                );
            }
        }
    }
    let first = mname.split('.').next().unwrap_or(mname);
    let family: Vec<&MetricDef> = REGISTRY
        .iter()
        .filter(|d| d.pattern.contains("<service>") && d.pattern.split('.').next() == Some(first))
        .collect();
    if let Some(d) = family.first() {
        let forms: Vec<String> = family.iter().map(|d| d.pattern.to_string()).collect();
        return c.err(
            mstart,
            format!("`{mname}`: write {first} criteria as {}", or_list(&forms)),
            Some(format!("e.g. `{}`", d.example)),
        );
    }
    let valid = shown_names().join(", ");
    let names = concrete_names();
    let hint = match crate::suggest::closest(mname, names.iter().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`? valid metrics: {valid}"),
        None => format!("valid metrics: {valid}"),
    };
    c.err_span(
        mstart,
        mstart + mname.len(),
        format!("unknown metric `{mname}`"),
        Some(hint),
    )
}

/// The metric a name and its selectors stand for, checked against its registry row.
fn resolve(
    c: &Cursor,
    mstart: usize,
    mname: &str,
    brace: Option<usize>,
    sels: Vec<Sel>,
) -> Result<Metric, CriterionError> {
    let Some((d, (stat, service))) = REGISTRY
        .iter()
        .find_map(|d| match_row(d, mname).map(|m| (d, m)))
    else {
        return Err(no_match(c, mstart, mname));
    };
    let mut metric = Metric::new(d.id);
    metric.service = service.map(String::from);
    if let Some(text) = stat {
        let at = mstart + mname.len() - text.len();
        metric.stat = Some(parse_stat(c, d, at, text)?);
    }
    let seen = apply_selectors(c, d, mname, brace, sels, &mut metric)?;
    if d.selectors
        .iter()
        .any(|x| x.required && !seen.contains(&x.key))
    {
        return Err(c.err_span(
            mstart,
            mstart + mname.len(),
            format!("{mname} needs {}", selector_example(d)),
            Some(format!("e.g. `{}`", d.example)),
        ));
    }
    Ok(metric)
}

/// Put each selector's value in its slot of `metric`; the keys seen.
fn apply_selectors(
    c: &Cursor,
    d: &MetricDef,
    mname: &str,
    brace: Option<usize>,
    sels: Vec<Sel>,
    metric: &mut Metric,
) -> Result<Vec<&'static str>, CriterionError> {
    let mut seen: Vec<&str> = Vec::new();
    for s in sels {
        if d.selectors.is_empty() {
            return Err(c.err(
                brace.unwrap_or(s.key_at),
                format!("{mname} takes no selector"),
                None,
            ));
        }
        let Some(def) = d.selectors.iter().find(|x| x.key == s.key) else {
            let whats: Vec<&str> = d.selectors.iter().map(|x| x.selects.what()).collect();
            return Err(c.err(
                s.key_at,
                format!(
                    "{mname} selects by {}, not `{}`",
                    whats.join(" and "),
                    s.key
                ),
                Some(format!("write {mname}{}", selector_example(d))),
            ));
        };
        if seen.contains(&def.key) {
            return Err(c.err(s.key_at, format!("`{}` is selected twice", s.key), None));
        }
        seen.push(def.key);
        let slot = match def.selects {
            Selects::Request | Selects::Flow => &mut metric.request,
            Selects::Service => &mut metric.service,
            Selects::Series => &mut metric.series,
            Selects::Fault => &mut metric.fault,
        };
        *slot = Some(s.value);
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::MetricId;

    fn ok(s: &str) -> Criterion {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e} (col {})", e.column))
    }

    fn err(s: &str) -> CriterionError {
        match parse(s) {
            Ok(c) => panic!("{s} parsed: {c:?}"),
            Err(e) => e,
        }
    }

    fn m(id: MetricId) -> Metric {
        Metric::new(id)
    }

    fn latency(stat: Stat, name: Option<&str>) -> Metric {
        Metric {
            stat: Some(stat),
            request: name.map(String::from),
            ..m(MetricId::Latency)
        }
    }

    fn with_service(id: MetricId, service: &str) -> Metric {
        Metric {
            service: Some(service.into()),
            ..m(id)
        }
    }

    fn with_request(id: MetricId, name: &str) -> Metric {
        Metric {
            request: Some(name.into()),
            ..m(id)
        }
    }

    #[test]
    fn thresholds_too_large_to_compare_are_refused() {
        let digits = "9".repeat(400);
        for text in [
            format!("latency.p95 < {digits}ms"),
            "requests.count > 10000000000000000".to_string(),
            format!("metric.max{{service=\"a\", name=\"x\"}} > {digits}"),
        ] {
            let e = parse(&text).unwrap_err();
            assert!(e.message.contains("too large"), "{text}: {e:?}");
        }
        // The bound itself, in the base unit, is fine.
        assert!(parse("requests.count > 9007199254740992").is_ok());
        assert!(parse("latency.p95 < 100000h").is_ok());
    }

    #[test]
    fn latency_percentiles_and_stats() {
        let c = ok("latency.p95 < 200ms");
        assert_eq!(c.metric, latency(Stat::Percentile(95.0), None));
        assert_eq!(c.op, Op::Lt);
        assert_eq!(c.threshold, Quantity::DurationUs(200_000.0));
        assert_eq!(c.source, "latency.p95 < 200ms");
        let c = ok("latency.p99.9{name=\"create item\"} <= 1s");
        assert_eq!(
            c.metric,
            latency(Stat::Percentile(99.9), Some("create item"))
        );
        assert_eq!(c.threshold, Quantity::DurationUs(1e6));
        assert_eq!(c.metric.request_name(), Some("create item"));
        assert_eq!(
            ok("latency.p100 < 1s").metric.stat,
            Some(Stat::Percentile(100.0))
        );
        assert_eq!(ok("latency.avg < 50ms").metric.stat, Some(Stat::Avg));
        assert_eq!(ok("latency.mean < 50ms").metric.stat, Some(Stat::Avg));
        assert_eq!(ok("latency.min > 1us").metric.stat, Some(Stat::Min));
        assert_eq!(ok("latency.max < 2s").metric.stat, Some(Stat::Max));
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
            ("memory.api.peak < 2gb", 2e9),
            ("memory.api.peak < 2KiB", 2048.0),
            ("memory.api.peak < 2MiB", 2.0 * 1024.0 * 1024.0),
            ("memory.api.peak < 2GiB", 2.0 * 1024.0 * 1024.0 * 1024.0),
        ] {
            assert_eq!(ok(s).threshold, Quantity::Bytes(b), "{s}");
        }
        assert_eq!(
            ok("memory.api.peak < 2GiB").metric,
            with_service(MetricId::MemoryPeak, "api")
        );
    }

    #[test]
    fn every_metric() {
        let cases: &[(&str, Metric, Quantity)] = &[
            (
                "errors.rate < 0.1%",
                m(MetricId::ErrorRate),
                Quantity::Percent(0.1),
            ),
            (
                "errors.count{name=\"get item\"} == 0",
                with_request(MetricId::ErrorCount, "get item"),
                Quantity::Count(0.0),
            ),
            (
                "throughput.rps >= 100",
                m(MetricId::Throughput),
                Quantity::PerSecond(100.0),
            ),
            (
                "throughput.rps >= 100/s",
                m(MetricId::Throughput),
                Quantity::PerSecond(100.0),
            ),
            (
                "requests.count > 1000",
                m(MetricId::RequestCount),
                Quantity::Count(1000.0),
            ),
            (
                "users.peak >= 5000",
                m(MetricId::UsersPeak),
                Quantity::Count(5000.0),
            ),
            (
                "iterations.dropped == 0",
                m(MetricId::DroppedIterations),
                Quantity::Count(0.0),
            ),
            (
                "availability >= 99.99%",
                m(MetricId::Availability),
                Quantity::Percent(99.99),
            ),
            (
                "availability{service=\"api\"} >= 99.9%",
                with_service(MetricId::Availability, "api"),
                Quantity::Percent(99.9),
            ),
            (
                "recovery.max < 5m",
                m(MetricId::RecoveryMax),
                Quantity::DurationUs(300e6),
            ),
            (
                "recovery.max{service=\"db\"} < 5s",
                with_service(MetricId::RecoveryMax, "db"),
                Quantity::DurationUs(5e6),
            ),
            (
                "data_loss.keys == 0",
                m(MetricId::DataLossKeys),
                Quantity::Count(0.0),
            ),
            (
                "duplicates.records == 0",
                m(MetricId::DuplicateRecords),
                Quantity::Count(0.0),
            ),
            (
                "cpu.api.avg < 40%",
                with_service(MetricId::CpuAvg, "api"),
                Quantity::Percent(40.0),
            ),
            (
                "cpu.api.peak < 150%",
                with_service(MetricId::CpuPeak, "api"),
                Quantity::Percent(150.0),
            ),
            (
                "pipeline.freshness.max < 5m",
                m(MetricId::FreshnessMax),
                Quantity::DurationUs(300e6),
            ),
        ];
        for (s, metric, q) in cases {
            let c = ok(s);
            assert_eq!(&c.metric, metric, "{s}");
            assert_eq!(&c.threshold, q, "{s}");
        }
        assert_eq!(ok("cpu.api.avg < 40%").metric.service(), Some("api"));
    }

    #[test]
    fn recovery_of_one_fault() {
        let c = ok("recovery{fault=\"kill redis\"} < 10s");
        assert_eq!(
            c.metric,
            Metric {
                fault: Some("kill redis".into()),
                ..m(MetricId::Recovery)
            }
        );
        assert_eq!(c.threshold, Quantity::DurationUs(10e6));
        assert_eq!(c.metric.to_string(), "recovery{fault=\"kill redis\"}");
        // The fault is required, and it is the only selector.
        let e = err("recovery < 10s");
        assert!(e.message.contains("needs {fault="), "{e}");
        let e = err("recovery{service=\"api\"} < 10s");
        assert!(e.message.contains("fault name or kind"), "{e}");
        let e = err("recovery{fault=\"pause\"} < 10%");
        assert!(e.message.contains("duration"), "{e}");
        // recovery.max keeps its service selector.
        assert_eq!(
            ok("recovery.max{service=\"api\"} < 1s").metric.id,
            MetricId::RecoveryMax
        );
    }

    #[test]
    fn series() {
        let c = ok("metric.max{service=\"pipeline\", name=\"pipeline_records_synced_total\"} > 0");
        assert_eq!(
            c.metric,
            Metric {
                stat: Some(Stat::Max),
                service: Some("pipeline".into()),
                series: Some("pipeline_records_synced_total".into()),
                ..m(MetricId::Series)
            }
        );
        assert_eq!(c.threshold, Quantity::Number(0.0));
        // Selectors in any order; a plain number may be negative or fractional.
        let c = ok("metric.min{name=\"temp\", service=\"a\"} >= -2.5");
        assert_eq!(c.metric.service(), Some("a"));
        assert_eq!(c.metric.series.as_deref(), Some("temp"));
        assert_eq!(c.threshold, Quantity::Number(-2.5));
        // Units follow the series name; rate is per second.
        let c = ok("metric.avg{service=\"a\", name=\"lag_seconds\"} < 10s");
        assert_eq!(c.threshold, Quantity::DurationUs(10e6));
        let c = ok("metric.last{service=\"a\", name=\"heap_bytes\"} < 1GiB");
        assert_eq!(c.threshold, Quantity::Bytes(1024.0 * 1024.0 * 1024.0));
        let c = ok("metric.rate{service=\"a\", name=\"x_total\"} >= 5/s");
        assert_eq!(c.threshold, Quantity::PerSecond(5.0));
        let e = err("metric.max{service=\"a\", name=\"lag_seconds\"} < 10");
        assert!(e.message.contains("takes a duration"), "{e}");
        let e = err("metric.max{service=\"a\", name=\"x\"} < 10ms");
        assert!(e.message.contains("plain number"), "{e}");
        // Both selectors are required.
        let e = err("metric.max{service=\"a\"} > 0");
        assert_eq!(
            e.message,
            "metric.max needs {service=\"...\", name=\"...\"}"
        );
        assert_eq!(e.column, 0);
        let e = err("metric.max > 0");
        assert!(e.message.contains("needs {service"), "{e}");
        // Only the legal aggregations.
        let e = err("metric.p95{service=\"a\", name=\"x\"} > 0");
        assert_eq!(e.message, "unknown metric statistic `p95`");
        assert_eq!(e.hint.unwrap(), "use max, min, last, avg or rate");
        let e = err("latency.rate < 1s");
        assert_eq!(e.message, "unknown latency statistic `rate`");
        let e = err("metric < 1");
        assert!(e.message.contains("needs a statistic: metric.max"), "{e}");
        let e = err("metric.max{service=\"a\", name=\"x\", service=\"b\"} > 0");
        assert_eq!(e.message, "`service` is selected twice");
        let e = err("metric.max{service=\"a\", request=\"x\"} > 0");
        assert_eq!(
            e.message,
            "metric.max selects by service and series name, not `request`"
        );
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
        let e = err("memory.api.peak < 2gib/s");
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
        let e = err("latency.p95 < -1s");
        assert!(e.message.contains("found `-1s`"), "{e}");
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
        let e = err("metrc.max < 1");
        assert!(e.hint.unwrap().starts_with("did you mean `metric.max`?"));
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
        assert_eq!(e.column, 8);
        let e = err("latency < 1s");
        assert_eq!(
            e.message,
            "`latency` needs a statistic: latency.p95, latency.avg, latency.min or latency.max"
        );
        let e = err("memory.api < 1GiB");
        assert!(e.message.contains("memory.<service>.peak"), "{e}");
        let e = err("cpu.api.max < 1%");
        assert_eq!(
            e.message,
            "`cpu.api.max`: write cpu criteria as cpu.<service>.avg or cpu.<service>.peak"
        );
    }

    #[test]
    fn selectors() {
        let e = err("users.peak{name=\"x\"} > 1");
        assert_eq!(e.message, "users.peak takes no selector");
        assert_eq!(e.column, 10);
        let e = err("latency.p95{service=\"api\"} < 1s");
        assert_eq!(
            e.message,
            "latency.p95 selects by request name, not `service`"
        );
        assert_eq!(e.column, 12);
        assert_eq!(e.hint.unwrap(), "write latency.p95{name=\"...\"}");
        let e = err("availability{name=\"api\"} > 1%");
        assert!(e.message.contains("selects by service"), "{e}");
        let e = err("latency.p95{name=x} < 1s");
        assert!(e.message.contains("quoted"), "{e}");
        let e = err("latency.p95{name=\"x\" < 1s");
        assert!(e.message.contains("close the selector"), "{e}");
        let e = err("latency.p95{name=\"x\", service=\"y\"} < 1s");
        assert!(e.message.contains("not `service`"), "{e}");
        let e = err("latency.p95{name=\"x\", name=\"y\"} < 1s");
        assert!(e.message.contains("selected twice"), "{e}");
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

    #[test]
    fn memory_growth_takes_a_size_per_time() {
        use crate::metric::Quantity;
        let mib = 1024.0 * 1024.0;
        for (text, per_min) in [
            ("memory.api.growth < 10MiB/min", 10.0 * mib),
            ("memory.api.growth < 1MiB/s", 60.0 * mib),
            ("memory.api.growth < 60MiB/h", mib),
        ] {
            let c = parse(text).unwrap();
            assert_eq!(c.threshold, Quantity::BytesPerMinute(per_min), "{text}");
        }
        for bad in ["memory.api.growth < 10MiB", "memory.api.growth < 10/min"] {
            let e = parse(bad).unwrap_err();
            assert!(e.message.contains("10MiB/min"), "{bad}: {e}");
        }
        assert_eq!(
            parse("memory.api.retained < 64MiB").unwrap().threshold,
            Quantity::Bytes(64.0 * mib)
        );
    }
}
