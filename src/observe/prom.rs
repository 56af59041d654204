//! The Prometheus text exposition format (version 0.0.4; the OpenMetrics text a server may
//! send instead parses too): a small, careful parser, so no extra dependency is needed for
//! reading a handful of gauges.
//!
//! What it reads, line by line:
//!
//! - `# HELP ...`, `# TYPE ...`, any other `#` comment, `# EOF`, blank lines: skipped;
//! - `name value [timestamp]` and `name{label="value",...} value [timestamp]`, with spaces or
//!   tabs between the parts, label values with the escapes `\\`, `\"` and `\n`, a trailing
//!   comma in the label set, values `NaN`, `+Inf`, `-Inf` and any float Rust reads;
//! - an OpenMetrics exemplar after the value (` # {...} 1.0`) is ignored.
//!
//! A line that is none of these is counted as bad and skipped; the rest of the text is
//! still read.
//!
//! Why not a crate: `prometheus-parse` (the common one) splits label sets on `,` and `=`
//! without unescaping (a `,`, `}` or `\"` inside a value breaks it), rejects `:` in names,
//! folds histogram and summary lines into one value (we record every series as written),
//! and drops bad lines silently; `openmetrics-parser` fails the whole text on one bad line.

/// One sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order written.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// `name` when unlabelled, else `name{a="x",b="y"}` (labels in the order written,
    /// values escaped as in the exposition format).
    pub fn series(&self) -> String {
        if self.labels.is_empty() {
            return self.name.clone();
        }
        let mut s = String::with_capacity(self.name.len() + 16 * self.labels.len());
        s.push_str(&self.name);
        s.push('{');
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(k);
            s.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => s.push_str("\\\\"),
                    '"' => s.push_str("\\\""),
                    '\n' => s.push_str("\\n"),
                    c => s.push(c),
                }
            }
            s.push('"');
        }
        s.push('}');
        s
    }
}

/// What one exposition held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub samples: Vec<Sample>,
    /// Lines that were neither a comment nor a sample (1-based line numbers, first few).
    pub bad_lines: Vec<usize>,
    pub bad_count: usize,
}

/// How many bad line numbers are remembered (the count goes on).
const BAD_LINES_KEPT: usize = 5;

/// Parse an exposition; never fails (bad lines are counted and skipped).
pub fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Some(s) => out.samples.push(s),
            None => {
                out.bad_count += 1;
                if out.bad_lines.len() < BAD_LINES_KEPT {
                    out.bad_lines.push(i + 1);
                }
            }
        }
    }
    out
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn skip_ws(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

/// One sample line (already trimmed, not a comment).
pub fn parse_line(line: &str) -> Option<Sample> {
    let mut chars = line.char_indices();
    let (_, first) = chars.next()?;
    if !is_name_start(first) {
        return None;
    }
    let end = line
        .char_indices()
        .find(|(_, c)| !is_name_char(*c))
        .map(|(i, _)| i)
        .unwrap_or(line.len());
    let name = &line[..end];
    let mut rest = skip_ws(&line[end..]);
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let (l, after) = parse_labels(r)?;
        labels = l;
        rest = skip_ws(after);
    }
    // The value: up to the next space/tab.
    let vend = rest.find([' ', '\t']).unwrap_or(rest.len());
    if vend == 0 {
        return None;
    }
    let value = parse_value(&rest[..vend])?;
    let mut tail = skip_ws(&rest[vend..]);
    // An optional integer timestamp (ms; OpenMetrics: float seconds), then an optional
    // exemplar.
    if !tail.is_empty() && !tail.starts_with('#') {
        let tend = tail.find([' ', '\t']).unwrap_or(tail.len());
        tail[..tend].parse::<f64>().ok()?;
        tail = skip_ws(&tail[tend..]);
    }
    if !tail.is_empty() && !tail.starts_with('#') {
        return None;
    }
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Labels after the `{`: returns them and the text after the closing `}`.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = skip_ws(s);
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let first = s.chars().next()?;
        if !(first.is_ascii_alphabetic() || first == '_') {
            return None;
        }
        let kend = s
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map(|(i, _)| i)?;
        let key = &s[..kend];
        s = skip_ws(&s[kend..]);
        s = skip_ws(s.strip_prefix('=')?);
        s = s.strip_prefix('"')?;
        let mut value = String::new();
        let mut it = s.char_indices();
        let close = loop {
            let (i, c) = it.next()?;
            match c {
                '"' => break i,
                '\\' => match it.next()?.1 {
                    'n' => value.push('\n'),
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    // Not a defined escape: keep it as written.
                    other => {
                        value.push('\\');
                        value.push(other);
                    }
                },
                c => value.push(c),
            }
        };
        labels.push((key.to_string(), value));
        s = skip_ws(&s[close + 1..]);
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return None;
        }
    }
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" => Some(f64::NAN),
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse::<f64>().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Sample {
        parse_line(line).unwrap_or_else(|| panic!("should parse: {line}"))
    }

    #[test]
    fn plain_and_labelled_samples() {
        let text = "# HELP a A thing.\n# TYPE a gauge\na 3\n\n\
                    b{route=\"x\",status=\"200\"} 7\n\
                    c_total{} 1.5e3 1712000000000\n";
        let p = parse(text);
        assert_eq!(p.bad_count, 0);
        assert_eq!(p.samples.len(), 3);
        assert_eq!(p.samples[0].series(), "a");
        assert_eq!(p.samples[0].value, 3.0);
        assert_eq!(p.samples[1].series(), "b{route=\"x\",status=\"200\"}");
        assert_eq!(
            p.samples[1].labels,
            vec![
                ("route".to_string(), "x".to_string()),
                ("status".to_string(), "200".to_string())
            ]
        );
        assert_eq!(p.samples[2].name, "c_total");
        assert!(p.samples[2].labels.is_empty());
        assert_eq!(p.samples[2].value, 1500.0);
    }

    #[test]
    fn escapes_special_values_spacing_and_exemplars() {
        let s = one(r#"m{path="/a b,c}",msg="say \"hi\"\\n\n",} -Inf"#);
        assert_eq!(s.labels[0].1, "/a b,c}");
        assert_eq!(s.labels[1].1, "say \"hi\"\\n\n");
        assert_eq!(s.value, f64::NEG_INFINITY);
        assert_eq!(s.series(), r#"m{path="/a b,c}",msg="say \"hi\"\\n\n"}"#);
        assert!(one("x NaN").value.is_nan());
        assert_eq!(one("x +Inf").value, f64::INFINITY);
        assert_eq!(one("x\t \t42\t").value, 42.0);
        assert_eq!(one("x { a = \"1\" } 2").labels.len(), 1);
        assert_eq!(one("ns:sub_metric 0.25").name, "ns:sub_metric");
        assert_eq!(
            one(r#"h_bucket{le="0.5"} 12 # {trace_id="abc"} 0.3 1.0"#).value,
            12.0
        );
        assert_eq!(one("t 1 1712000000.5").value, 1.0);
    }

    #[test]
    fn bad_lines_are_counted_and_skipped() {
        let text =
            "ok 1\n9bad 1\nnovalue\nx{a=\"1\" 2\nx{a=1} 2\ny 1 2 3\nz abc\n  \r\nlast 2\n# EOF\n";
        let p = parse(text);
        assert_eq!(
            p.samples
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["ok", "last"]
        );
        assert_eq!(p.bad_count, 6);
        assert_eq!(p.bad_lines, vec![2, 3, 4, 5, 6]);
    }

    #[test]
    fn the_demo_pipeline_metrics_parse() {
        let text = "# HELP pipeline_last_sync_timestamp_seconds Unix time.\n\
# TYPE pipeline_last_sync_timestamp_seconds gauge\n\
pipeline_last_sync_timestamp_seconds 1712345678.123\n\
# TYPE pipeline_sink_duplicate_records gauge\n\
pipeline_sink_duplicate_records 0\n\
demo_http_requests_total{route=\"health\",status=\"200\"} 17\n";
        let p = parse(text);
        assert_eq!(p.bad_count, 0);
        assert_eq!(p.samples[0].value, 1712345678.123);
        assert_eq!(p.samples[1].name, "pipeline_sink_duplicate_records");
        assert_eq!(p.samples[2].labels.len(), 2);
    }
}
