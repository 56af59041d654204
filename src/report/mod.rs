//! Reporters: terminal summary and progress, `summary.json`, `timeseries.csv`,
//! `junit.xml`, `report.html`, `events.jsonl`; all written atomically under
//! `reports/<run-id>/` (temp file in the same folder, fsync, rename), so a reader never
//! sees a half-written report.

pub mod events;
pub mod html;
pub mod junit;
pub mod progress;
pub mod summary;
pub mod terminal;
pub mod text;
pub mod timeseries;

use std::io::Write;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::grade::Verdict;
use crate::record::Record;
use crate::scenario::Plan;

/// Facts about the run that are not measurements.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub run_id: String,
    pub scenario: String,
    pub file: PathBuf,
    pub seed: u64,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub ended_at: chrono::DateTime<chrono::Utc>,
    pub ended_by: EndedBy,
    /// The exit code `gauntlet run` returns for this run.
    pub exit_code: i32,
    pub gauntlet_version: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "kind", content = "reason")]
pub enum EndedBy {
    /// Load ran to the end of its stages.
    Completed,
    /// SIGINT/SIGTERM: faults undone, this report is partial.
    Interrupted,
    /// The environment failed mid-run (a service, a fault that must apply).
    Error(String),
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write report {path}: {source}")]
pub struct ReportError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The files [`write_all`] writes, in order.
pub const FILES: &[&str] = &[
    "summary.json",
    "timeseries.csv",
    "junit.xml",
    "events.jsonl",
    "report.html",
];

/// Write every report file into `dir` (created if needed).
pub fn write_all(
    dir: &Path,
    plan: &Plan,
    info: &RunInfo,
    record: &Record,
    verdict: &Verdict,
) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError {
        path: dir.to_path_buf(),
        source,
    })?;
    let other = |path: &Path, e: String| ReportError {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    };

    let s = summary::build(plan, info, record, verdict);
    write_atomic(&dir.join("summary.json"), summary::to_json(&s).as_bytes())?;

    let p = dir.join("timeseries.csv");
    let csv = timeseries::to_csv(record).map_err(|e| other(&p, e.to_string()))?;
    write_atomic(&p, &csv)?;

    let p = dir.join("junit.xml");
    let xml = junit::to_xml(info, record, verdict).map_err(|e| other(&p, e))?;
    write_atomic(&p, xml.as_bytes())?;

    write_atomic(
        &dir.join("events.jsonl"),
        events::to_jsonl(record).as_bytes(),
    )?;
    write_atomic(
        &dir.join("report.html"),
        html::render(plan, info, record, verdict).as_bytes(),
    )?;
    Ok(())
}

/// Write `bytes` to `path` so that readers see the old file or the whole new one, never
/// a part: a temp file in the same folder, fsync, rename over `path`, fsync the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let err = |source| ReportError {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    // Make the rename itself durable; not every file system lets a folder be synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The terminal summary: per-request table, then each criterion with PASS/FAIL.
pub fn terminal_summary(
    plan: &Plan,
    info: &RunInfo,
    record: &Record,
    verdict: &Verdict,
    color: bool,
) -> String {
    terminal::render(plan, info, record, verdict, color)
}
