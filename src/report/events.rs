//! `events.jsonl`: the run's faults, service events and notices, one JSON object a line,
//! in time order. For debugging; not a stable format. Every line has `at_s` (run clock),
//! `since_load_s` and `type` (`fault`, `service`, `notice`).

use serde_json::{json, Value};

use crate::event::FaultState;
use crate::record::Record;
use crate::report::text;

pub fn to_jsonl(record: &Record) -> String {
    let mut lines: Vec<(f64, usize, Value)> = Vec::new();
    let at = |d: std::time::Duration| {
        (
            d.as_secs_f64(),
            json!(d.as_secs_f64()),
            json!((text::since_load(record, d) * 1000.0).round() / 1000.0),
        )
    };
    for f in &record.faults {
        let (t, a, s) = at(f.at);
        let mut v = json!({
            "at_s": a, "since_load_s": s, "type": "fault",
            "fault": f.fault, "repetition": f.repetition, "name": f.name,
            "kind": f.kind.as_str(), "target": f.target,
        });
        match &f.state {
            FaultState::Applied => v["state"] = json!("applied"),
            FaultState::Undone => v["state"] = json!("undone"),
            FaultState::Failed { reason, fatal } => {
                v["state"] = json!("failed");
                v["reason"] = json!(reason);
                v["fatal"] = json!(fatal);
            }
            FaultState::Recovered { recovery_s } => {
                v["state"] = json!("recovered");
                v["recovery_s"] = json!(text::finite(*recovery_s));
            }
        }
        lines.push((t, lines.len(), v));
    }
    for e in &record.services {
        let (t, a, s) = at(e.at);
        let v = json!({
            "at_s": a, "since_load_s": s, "type": "service", "service": e.service,
            "event": text::service_event_name(&e.kind), "detail": text::service_event_detail(e),
        });
        lines.push((t, lines.len(), v));
    }
    for (d, l, m) in &record.notices {
        let (t, a, s) = at(*d);
        let v = json!({
            "at_s": a, "since_load_s": s, "type": "notice",
            "level": crate::report::summary::level(*l), "message": m,
        });
        lines.push((t, lines.len(), v));
    }
    lines.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut out = String::new();
    for (_, _, v) in lines {
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}
