//! A baseline file: one run's `summary.json` and its latency histograms (base64 of the
//! V2 deflate serialization, tagged as in `histograms.hlog`) in one JSON document, small
//! enough to commit next to the scenario it gates.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{CompareError, Side};
use crate::report::histograms;
use crate::report::summary::Summary;

/// Raised when the layout changes.
pub const BASELINE_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineFile {
    /// The layout's version.
    pub gauntlet_baseline: u32,
    /// The run folder it was saved from.
    pub saved_from: String,
    pub summary: Summary,
    /// Tag → base64 of the HdrHistogram V2 deflate serialization (µs).
    pub histograms: BTreeMap<String, String>,
}

pub(super) fn from_json(json: serde_json::Value) -> Result<Side, String> {
    let f: BaselineFile =
        serde_json::from_value(json).map_err(|e| format!("not a gauntlet baseline file: {e}"))?;
    if f.gauntlet_baseline != BASELINE_VERSION {
        return Err(format!(
            "baseline layout {} is not the one this gauntlet reads ({BASELINE_VERSION})",
            f.gauntlet_baseline
        ));
    }
    let mut hs = histograms::Histograms::new();
    for (tag, b64) in &f.histograms {
        hs.insert(
            tag.clone(),
            histograms::decode(b64).map_err(|e| format!("histogram `{tag}`: {e}"))?,
        );
    }
    Ok(Side {
        source: f.saved_from,
        summary: f.summary,
        histograms: hs,
    })
}

/// Read a run folder (or a baseline) and write it as one baseline file at `to`
/// (atomically). Returns the number of histograms kept.
pub fn save(run: &Path, to: &Path) -> Result<usize, CompareError> {
    let side = Side::load(run)?;
    let text = to_bytes(&side).map_err(|why| CompareError::Format {
        path: run.to_path_buf(),
        why,
    })?;
    crate::report::write_atomic(to, &text)?;
    Ok(side.histograms.len())
}

/// A side as the bytes of a baseline file.
pub fn to_bytes(side: &Side) -> Result<Vec<u8>, String> {
    let mut hs = BTreeMap::new();
    for (tag, h) in &side.histograms {
        hs.insert(tag.clone(), histograms::encode(h)?);
    }
    let file = BaselineFile {
        gauntlet_baseline: BASELINE_VERSION,
        saved_from: side.source.clone(),
        summary: side.summary.clone(),
        histograms: hs,
    };
    let mut text = serde_json::to_string_pretty(&file).expect("a baseline always serializes");
    text.push('\n');
    Ok(text.into_bytes())
}
