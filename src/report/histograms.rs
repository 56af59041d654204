//! `histograms.hlog`: the run's full latency histograms, so any two runs can be compared
//! exactly later (`gauntlet compare`). HdrHistogram's interval log format (the one
//! `HistogramLogWriter` writes and `HistogramLogProcessor` reads): one line per
//! histogram, `Tag=TAG,START,LENGTH,MAX,BASE64` where BASE64 is the histogram in the V2
//! format, deflate-compressed. Values are microseconds; START and LENGTH are seconds from
//! `#[BaseTime]` (the run's start) to the load's start and the load's duration; MAX is in
//! µs.
//!
//! Tags: `raw` and `corrected` for all requests together, `raw:NAME` and
//! `corrected:NAME` per request, NAME with `%`, `,` and whitespace percent-encoded (the
//! format forbids commas and spaces in a tag).

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::record::Record;
use crate::report::RunInfo;

/// Histograms by tag (see the module doc).
pub type Histograms = BTreeMap<String, Histogram<u64>>;

/// The tag of one histogram: `raw`, `corrected:create%20item`.
pub fn tag(basis: &str, request: Option<&str>) -> String {
    match request {
        None => basis.to_string(),
        Some(name) => {
            let mut t = format!("{basis}:");
            for c in name.chars() {
                if c == '%' || c == ',' || c.is_whitespace() || c.is_control() {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        t.push_str(&format!("%{b:02X}"));
                    }
                } else {
                    t.push(c);
                }
            }
            t
        }
    }
}

/// Every histogram of the record by tag: per request, then the totals.
pub fn of_record(record: &Record) -> Vec<(String, &Histogram<u64>)> {
    let mut out = Vec::new();
    for r in &record.requests {
        out.push((tag("raw", Some(&r.name)), &r.raw));
        out.push((tag("corrected", Some(&r.name)), &r.corrected));
    }
    out.push((tag("raw", None), &record.total.raw));
    out.push((tag("corrected", None), &record.total.corrected));
    out
}

/// The log's text.
pub fn to_hlog(info: &RunInfo, record: &Record) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut ser = V2DeflateSerializer::new();
    let base = SystemTime::from(info.started_at);
    let mut w = IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "gauntlet latency histograms of run {} (scenario {}); values in microseconds",
            info.run_id, info.scenario
        ))
        .add_comment(
            "tags: raw, corrected (all requests); raw:NAME, corrected:NAME (NAME percent-encoded)",
        )
        .with_start_time(base)
        .with_base_time(base)
        .begin_log_with(&mut out, &mut ser)
        .map_err(|e| e.to_string())?;
    let start = record.load_started.unwrap_or_default();
    for (t, h) in of_record(record) {
        let tag = Tag::new(&t).ok_or_else(|| format!("histogram tag `{t}` is not valid"))?;
        w.write_histogram(h, start, record.load_duration, Some(tag))
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// One histogram as base64 of its V2 deflate serialization (the log's last column, and
/// what a baseline file holds).
pub fn encode(h: &Histogram<u64>) -> Result<String, String> {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .map_err(|e| format!("cannot serialize a histogram: {e}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

/// The inverse of [`encode`].
pub fn decode(b64: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("not an HdrHistogram V2 histogram: {e:?}"))
}

/// Read a log written by [`to_hlog`] (or any interval log with tags); a tag seen twice is
/// added up.
pub fn parse_hlog(bytes: &[u8]) -> Result<Histograms, String> {
    let mut out = Histograms::new();
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| format!("not an interval log: {e:?}"))?;
        if let LogEntry::Interval(i) = entry {
            let t = i.tag().map(|t| t.as_str().to_string()).unwrap_or_default();
            let h = decode(i.encoded_histogram()).map_err(|e| format!("tag `{t}`: {e}"))?;
            match out.get_mut(&t) {
                Some(acc) => acc.add(&h).map_err(|e| format!("tag `{t}`: {e:?}"))?,
                None => {
                    out.insert(t, h);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_escape_what_the_format_forbids() {
        assert_eq!(tag("raw", None), "raw");
        assert_eq!(tag("raw", Some("get item")), "raw:get%20item");
        assert_eq!(tag("corrected", Some("a,b%")), "corrected:a%2Cb%25");
        assert!(Tag::new(&tag("raw", Some("x y\tz,"))).is_some());
    }

    #[test]
    fn encode_decode_round_trip() {
        let mut h = crate::record::new_histogram();
        for v in [100u64, 250, 1000, 1000, 50_000] {
            h.record(v).unwrap();
        }
        let back = decode(&encode(&h).unwrap()).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        assert_eq!(back.max(), h.max());
    }
}
