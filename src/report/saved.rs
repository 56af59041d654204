//! What a run folder keeps besides its reports, so that `gauntlet report RUN_DIR` can
//! rebuild every report later from the folder alone:
//!
//! - `run.json`: the run's facts ([`RunInfo`]) and the `--tolerance`s of the command line;
//! - `scenario.toml`: the scenario as it ran (`${VAR}` filled in, `--set` applied), read
//!   again into the plan;
//! - `record.json`: the recorder's state except the latency histograms, which are in
//!   `histograms.hlog` (read back from it); numbers that are not integers are written as
//!   text (Rust's shortest round-trip form), so they read back bit for bit;
//! - `baseline.json`: with `--baseline`, the baseline as a baseline file, so the gate
//!   can be computed again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::{FaultEvent, FaultState, Level, ServiceEvent, Timed};
use crate::record::{
    ConnectionStats, MetricStats, ProbeStats, Record, RequestStats, ResourceStats, Window,
};
use crate::report::histograms::{self, Histograms};
use crate::report::RunInfo;
use crate::scenario::model::{FaultKind, LatencyBasis};

pub const RUN_FILE: &str = "run.json";
pub const SCENARIO_FILE: &str = "scenario.toml";
pub const RECORD_FILE: &str = "record.json";
pub const BASELINE_FILE: &str = "baseline.json";

/// Raised when the layout of `run.json` or `record.json` changes.
pub const SAVED_VERSION: u32 = 1;

/// A saved file that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("cannot read {path}: {source} (was the run made by a gauntlet that saves its data?)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Format { path: PathBuf, why: String },
}

/// `run.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedRun {
    pub gauntlet_saved: u32,
    pub info: RunInfo,
    /// `--tolerance KEY=VALUE` as given.
    pub tolerances: Vec<String>,
    /// The run folder as the run named it (the gate's `current`).
    pub report_dir: String,
}

/// `run.json`'s bytes.
pub fn run_json(info: &RunInfo, tolerances: &[String], report_dir: &str) -> Vec<u8> {
    let saved = SavedRun {
        gauntlet_saved: SAVED_VERSION,
        info: info.clone(),
        tolerances: tolerances.to_vec(),
        report_dir: report_dir.to_string(),
    };
    let mut s = serde_json::to_string_pretty(&saved).expect("run info always serializes");
    s.push('\n');
    s.into_bytes()
}

fn read(path: &Path) -> Result<Vec<u8>, SavedError> {
    std::fs::read(path).map_err(|source| SavedError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn format_err(path: &Path, why: impl Into<String>) -> SavedError {
    SavedError::Format {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

pub fn read_run(dir: &Path) -> Result<SavedRun, SavedError> {
    let path = dir.join(RUN_FILE);
    let saved: SavedRun = serde_json::from_slice(&read(&path)?)
        .map_err(|e| format_err(&path, format!("not a gauntlet run.json: {e}")))?;
    check_version(&path, saved.gauntlet_saved)?;
    Ok(saved)
}

fn check_version(path: &Path, v: u32) -> Result<(), SavedError> {
    if v == SAVED_VERSION {
        Ok(())
    } else {
        Err(format_err(
            path,
            format!("saved layout {v} is not the one this gauntlet reads ({SAVED_VERSION})"),
        ))
    }
}

/// The scenario text the run was made from.
pub fn read_scenario(dir: &Path) -> Result<String, SavedError> {
    let path = dir.join(SCENARIO_FILE);
    String::from_utf8(read(&path)?).map_err(|_| format_err(&path, "not UTF-8"))
}

/// The scenario text with the value of every header (any table or inline table under a
/// `headers` key: requests, WebSocket users) replaced by `(value hidden)`: what the run
/// folder keeps without `[report] show_values`. Grading and reports never read header
/// values, so a rebuild from it is the same. Text that does not parse is kept as it is
/// (it was validated before the run).
pub fn hide_header_values(text: &str) -> String {
    use toml_edit::{DocumentMut, Item, Value};
    fn hide_in_table(t: &mut dyn toml_edit::TableLike) {
        for (_, v) in t.iter_mut() {
            match v {
                Item::Value(Value::String(_)) => *v = toml_edit::value("(value hidden)"),
                Item::Value(Value::InlineTable(it)) => walk_table(it),
                Item::Value(Value::Array(a)) => walk_array(a),
                Item::Table(tt) => walk_table(tt),
                Item::ArrayOfTables(aot) => {
                    for tt in aot.iter_mut() {
                        walk_table(tt);
                    }
                }
                _ => {}
            }
        }
    }
    fn walk_array(a: &mut toml_edit::Array) {
        for v in a.iter_mut() {
            if let Value::InlineTable(it) = v {
                walk_table(it);
            }
        }
    }
    fn walk_table(t: &mut dyn toml_edit::TableLike) {
        for (k, v) in t.iter_mut() {
            let headers = k.get() == "headers";
            match v {
                Item::Table(tt) if headers => hide_in_table(tt),
                Item::Value(Value::InlineTable(it)) if headers => hide_in_table(it),
                Item::Table(tt) => walk_table(tt),
                Item::Value(Value::InlineTable(it)) => walk_table(it),
                Item::Value(Value::Array(a)) => walk_array(a),
                Item::ArrayOfTables(aot) => {
                    for tt in aot.iter_mut() {
                        walk_table(tt);
                    }
                }
                _ => {}
            }
        }
    }
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return text.to_string();
    };
    walk_table(doc.as_table_mut());
    doc.to_string()
}

/// f64 as text in its shortest round-trip form: JSON readers may round a long decimal
/// by one unit in the last place, and a rebuilt report must show the same figures.
mod exact {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:?}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let t = String::deserialize(d)?;
        t.parse().map_err(D::Error::custom)
    }
}

#[derive(Serialize, Deserialize)]
struct Request {
    name: String,
    count: u64,
    errors: u64,
    error_reasons: Vec<(String, u64)>,
    statuses: BTreeMap<u16, u64>,
    clamped: u64,
}

#[derive(Serialize, Deserialize)]
struct Fault {
    at: Duration,
    fault: usize,
    repetition: u32,
    name: String,
    kind: FaultKind,
    target: String,
    state: SavedState,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
enum SavedState {
    Applied,
    Undone,
    Failed {
        reason: String,
        fatal: bool,
    },
    Recovered {
        #[serde(with = "exact")]
        recovery_s: f64,
    },
}

#[derive(Serialize, Deserialize)]
struct Probes {
    ok: u64,
    total: u64,
    points: Vec<(u32, bool)>,
}

#[derive(Serialize, Deserialize)]
struct Resources {
    samples: u64,
    #[serde(with = "exact")]
    cpu_avg_pct: f64,
    #[serde(with = "exact")]
    cpu_peak_pct: f64,
    mem_peak_bytes: u64,
    mem_last_bytes: u64,
    mem_series: Vec<(u32, u64)>,
}

#[derive(Serialize, Deserialize)]
struct Metric {
    service: String,
    name: String,
    samples: u64,
    #[serde(with = "exact")]
    last: f64,
    #[serde(with = "exact")]
    min: f64,
    #[serde(with = "exact")]
    max: f64,
    #[serde(with = "exact")]
    sum: f64,
    #[serde(with = "exact")]
    increase: f64,
    first_at: Duration,
    last_at: Duration,
}

#[derive(Serialize, Deserialize)]
struct Connections {
    count: u64,
    tls: u64,
    resumed: u64,
    h2: u64,
    /// base64 of the V2 deflate serialization.
    handshake: String,
}

/// `record.json`: [`Record`] without its latency histograms.
#[derive(Serialize, Deserialize)]
struct SavedRecord {
    gauntlet_saved: u32,
    load_started: Option<Duration>,
    load_duration: Duration,
    /// Not graded at the start of the load (a capacity level's warmup).
    #[serde(default)]
    warmup: Duration,
    latency_basis: LatencyBasis,
    expected_interval_us: Option<u64>,
    requests: Vec<Request>,
    total: Request,
    windows: Vec<Window>,
    users_peak: u32,
    dropped: u64,
    faults: Vec<Fault>,
    services: Vec<(Duration, ServiceEvent)>,
    probes: BTreeMap<String, Probes>,
    resources: BTreeMap<String, Resources>,
    metrics: Vec<Metric>,
    notices: Vec<(Duration, Level, String)>,
    interrupted: bool,
    requests_folded: u64,
    events_shed: u64,
    users_died: u64,
    first_death: Option<String>,
    connections: Connections,
    /// Flows (`[[flows]]`), their histograms inline: `histograms.hlog` holds requests only.
    #[serde(default)]
    flows: Vec<Flow>,
    #[serde(default)]
    flow_total: Option<Flow>,
    /// The WebSocket users' totals, their round-trip histogram inline.
    #[serde(default)]
    ws: Option<Ws>,
}

#[derive(Serialize, Deserialize)]
struct Ws {
    connects: u64,
    connect_failures: u64,
    messages: u64,
    message_failures: u64,
    peak: u32,
    abnormal_closes: u64,
    rtt: String,
    reasons: BTreeMap<String, u64>,
}

fn ws(w: &crate::event::WsTotals) -> Result<Ws, String> {
    Ok(Ws {
        connects: w.connects,
        connect_failures: w.connect_failures,
        messages: w.messages,
        message_failures: w.message_failures,
        peak: w.peak,
        abnormal_closes: w.abnormal_closes,
        rtt: histograms::encode(&w.rtt)?,
        reasons: w.reasons.clone(),
    })
}

fn unws(w: Ws) -> Result<crate::event::WsTotals, String> {
    Ok(crate::event::WsTotals {
        connects: w.connects,
        connect_failures: w.connect_failures,
        messages: w.messages,
        message_failures: w.message_failures,
        peak: w.peak,
        abnormal_closes: w.abnormal_closes,
        rtt: histograms::decode(&w.rtt)?,
        reasons: w.reasons,
    })
}

#[derive(Serialize, Deserialize)]
struct Flow {
    stats: Request,
    raw: String,
    corrected: String,
}

fn flow(r: &RequestStats) -> Result<Flow, String> {
    Ok(Flow {
        stats: request(r),
        raw: histograms::encode(&r.raw)?,
        corrected: histograms::encode(&r.corrected)?,
    })
}

fn unflow(f: Flow) -> Result<RequestStats, String> {
    let r = f.stats;
    Ok(RequestStats {
        raw: histograms::decode(&f.raw)?,
        corrected: histograms::decode(&f.corrected)?,
        name: r.name,
        count: r.count,
        errors: r.errors,
        error_reasons: r.error_reasons,
        statuses: r.statuses,
        clamped: r.clamped,
    })
}

fn request(r: &RequestStats) -> Request {
    Request {
        name: r.name.clone(),
        count: r.count,
        errors: r.errors,
        error_reasons: r.error_reasons.clone(),
        statuses: r.statuses.clone(),
        clamped: r.clamped,
    }
}

/// `record.json`'s bytes.
pub fn record_json(record: &Record) -> Result<Vec<u8>, String> {
    let saved = SavedRecord {
        gauntlet_saved: SAVED_VERSION,
        load_started: record.load_started,
        load_duration: record.load_duration,
        warmup: record.warmup,
        latency_basis: record.latency_basis,
        expected_interval_us: record.expected_interval_us,
        requests: record.requests.iter().map(request).collect(),
        total: request(&record.total),
        windows: record.windows.clone(),
        users_peak: record.users_peak,
        dropped: record.dropped,
        faults: record
            .faults
            .iter()
            .map(|f| Fault {
                at: f.at,
                fault: f.fault,
                repetition: f.repetition,
                name: f.name.clone(),
                kind: f.kind,
                target: f.target.clone(),
                state: match &f.state {
                    FaultState::Applied => SavedState::Applied,
                    FaultState::Undone => SavedState::Undone,
                    FaultState::Failed { reason, fatal } => SavedState::Failed {
                        reason: reason.clone(),
                        fatal: *fatal,
                    },
                    FaultState::Recovered { recovery_s } => SavedState::Recovered {
                        recovery_s: *recovery_s,
                    },
                },
            })
            .collect(),
        services: record
            .services
            .iter()
            .map(|s| (s.at, s.event.clone()))
            .collect(),
        probes: record
            .probes
            .iter()
            .map(|(k, p)| {
                (
                    k.clone(),
                    Probes {
                        ok: p.ok,
                        total: p.total,
                        points: p.points.clone(),
                    },
                )
            })
            .collect(),
        resources: record
            .resources
            .iter()
            .map(|(k, r)| {
                (
                    k.clone(),
                    Resources {
                        samples: r.samples,
                        cpu_avg_pct: r.cpu_avg_pct,
                        cpu_peak_pct: r.cpu_peak_pct,
                        mem_peak_bytes: r.mem_peak_bytes,
                        mem_last_bytes: r.mem_last_bytes,
                        mem_series: r.mem_series.clone(),
                    },
                )
            })
            .collect(),
        metrics: record
            .metrics
            .iter()
            .map(|((service, name), m)| Metric {
                service: service.clone(),
                name: name.clone(),
                samples: m.samples,
                last: m.last,
                min: m.min,
                max: m.max,
                sum: m.sum,
                increase: m.increase,
                first_at: m.first_at,
                last_at: m.last_at,
            })
            .collect(),
        notices: record.notices.clone(),
        interrupted: record.interrupted,
        requests_folded: record.requests_folded,
        events_shed: record.events_shed,
        users_died: record.users_died,
        first_death: record.first_death.clone(),
        connections: Connections {
            count: record.connections.count,
            tls: record.connections.tls,
            resumed: record.connections.resumed,
            h2: record.connections.h2,
            handshake: histograms::encode(&record.connections.handshake)?,
        },
        flows: record.flows.iter().map(flow).collect::<Result<_, _>>()?,
        flow_total: Some(flow(&record.flow_total)?),
        ws: record.ws.as_ref().map(ws).transpose()?,
    };
    // Compact: the probe points and memory series of a long run are many.
    let mut s = serde_json::to_string(&saved).map_err(|e| e.to_string())?;
    s.push('\n');
    Ok(s.into_bytes())
}

/// The record of a run folder: `record.json` with the histograms of `histograms.hlog`.
pub fn read_record(dir: &Path) -> Result<Record, SavedError> {
    let path = dir.join(RECORD_FILE);
    let saved: SavedRecord = serde_json::from_slice(&read(&path)?)
        .map_err(|e| format_err(&path, format!("not a gauntlet record.json: {e}")))?;
    check_version(&path, saved.gauntlet_saved)?;
    let hlog = dir.join("histograms.hlog");
    let mut hs: Histograms =
        histograms::parse_hlog(&read(&hlog)?).map_err(|why| format_err(&hlog, why))?;
    let mut stats = |r: Request, name: Option<&str>| -> Result<RequestStats, SavedError> {
        let mut take = |basis: &str| {
            let tag = histograms::tag(basis, name);
            hs.remove(&tag)
                .ok_or_else(|| format_err(&hlog, format!("no histogram tagged `{tag}`")))
        };
        Ok(RequestStats {
            raw: take("raw")?,
            corrected: take("corrected")?,
            name: r.name,
            count: r.count,
            errors: r.errors,
            error_reasons: r.error_reasons,
            statuses: r.statuses,
            clamped: r.clamped,
        })
    };
    let mut requests = Vec::with_capacity(saved.requests.len());
    for r in saved.requests {
        let name = r.name.clone();
        requests.push(stats(r, Some(&name))?);
    }
    let total = stats(saved.total, None)?;
    let c = saved.connections;
    let handshake = histograms::decode(&c.handshake)
        .map_err(|why| format_err(&path, format!("connections.handshake: {why}")))?;
    let flows = saved
        .flows
        .into_iter()
        .map(unflow)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|why| format_err(&path, format!("flows: {why}")))?;
    let flow_total = match saved.flow_total {
        Some(f) => unflow(f).map_err(|why| format_err(&path, format!("flow_total: {why}")))?,
        None => RequestStats::new("all"),
    };
    let ws = saved
        .ws
        .map(unws)
        .transpose()
        .map_err(|why| format_err(&path, format!("ws: {why}")))?;
    Ok(Record {
        ws,
        flows,
        flow_total,
        load_started: saved.load_started,
        load_duration: saved.load_duration,
        warmup: saved.warmup,
        latency_basis: saved.latency_basis,
        expected_interval_us: saved.expected_interval_us,
        requests,
        total,
        windows: saved.windows,
        users_peak: saved.users_peak,
        dropped: saved.dropped,
        faults: saved
            .faults
            .into_iter()
            .map(|f| {
                Timed::new(
                    f.at,
                    FaultEvent {
                        fault: f.fault,
                        repetition: f.repetition,
                        name: f.name,
                        kind: f.kind,
                        target: f.target,
                        state: match f.state {
                            SavedState::Applied => FaultState::Applied,
                            SavedState::Undone => FaultState::Undone,
                            SavedState::Failed { reason, fatal } => {
                                FaultState::Failed { reason, fatal }
                            }
                            SavedState::Recovered { recovery_s } => {
                                FaultState::Recovered { recovery_s }
                            }
                        },
                    },
                )
            })
            .collect(),
        services: saved
            .services
            .into_iter()
            .map(|(at, e)| Timed::new(at, e))
            .collect(),
        probes: saved
            .probes
            .into_iter()
            .map(|(k, p)| {
                (
                    k,
                    ProbeStats {
                        ok: p.ok,
                        total: p.total,
                        points: p.points,
                    },
                )
            })
            .collect(),
        resources: saved
            .resources
            .into_iter()
            .map(|(k, r)| {
                (
                    k,
                    ResourceStats {
                        samples: r.samples,
                        cpu_avg_pct: r.cpu_avg_pct,
                        cpu_peak_pct: r.cpu_peak_pct,
                        mem_peak_bytes: r.mem_peak_bytes,
                        mem_last_bytes: r.mem_last_bytes,
                        mem_series: r.mem_series,
                    },
                )
            })
            .collect(),
        metrics: saved
            .metrics
            .into_iter()
            .map(|m| {
                (
                    (m.service, m.name),
                    MetricStats {
                        samples: m.samples,
                        last: m.last,
                        min: m.min,
                        max: m.max,
                        sum: m.sum,
                        increase: m.increase,
                        first_at: m.first_at,
                        last_at: m.last_at,
                    },
                )
            })
            .collect(),
        notices: saved.notices,
        interrupted: saved.interrupted,
        requests_folded: saved.requests_folded,
        events_shed: saved.events_shed,
        users_died: saved.users_died,
        first_death: saved.first_death,
        connections: ConnectionStats {
            count: c.count,
            tls: c.tls,
            resumed: c.resumed,
            h2: c.h2,
            handshake,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_hidden_wherever_they_are_written() {
        let text = r#"
name = "x"
[[requests]]
name = "a"
path = "/"
headers = { authorization = "Bearer t0ken", x-n = "1" }
[[requests]]
name = "b"
path = "/"
[requests.headers]
cookie = "sid=c00kie"
[[ws]]
name = "w"
headers = { x-key = "k3y" }
"#;
        let out = hide_header_values(text);
        for secret in ["t0ken", "c00kie", "k3y"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert_eq!(out.matches("(value hidden)").count(), 4, "{out}");
        assert!(out.contains("path = \"/\""), "{out}");
    }

    #[test]
    fn floats_read_back_bit_for_bit() {
        #[derive(Serialize, Deserialize)]
        struct F(#[serde(with = "exact")] f64);
        for v in [0.1 + 0.2, 1e-300, 123456.78901234567, f64::MAX, -0.0, 2.5] {
            let back: F = serde_json::from_str(&serde_json::to_string(&F(v)).unwrap()).unwrap();
            assert_eq!(back.0.to_bits(), v.to_bits(), "{v}");
        }
    }
}
