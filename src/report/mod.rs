//! Reporters: terminal summary and progress, `summary.json`, `timeseries.csv`,
//! `junit.xml`, `report.html`, `events.jsonl`; all written atomically under
//! `reports/<run-id>/` (temp file in the same folder, fsync, rename), so a reader never
//! sees a half-written report.

pub mod events;
pub mod histograms;
pub mod html;
pub mod junit;
pub mod live;
pub mod progress;
pub mod saved;
pub mod summary;
pub mod terminal;
pub mod text;
pub mod timeseries;

use std::io::Write;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::grade::Verdict;
use crate::record::Record;
use crate::scenario::Plan;

/// Facts about the run that are not measurements.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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

/// Report files that could not be written; every other one was.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe_failures(.0))]
pub struct ReportErrors(pub Vec<ReportError>);

fn describe_failures(failures: &[ReportError]) -> String {
    let mut out = format!(
        "{} report file{} could not be written (the others were):",
        failures.len(),
        if failures.len() == 1 { "" } else { "s" }
    );
    for f in failures {
        out.push_str(&format!("\n  {}: {}", f.path.display(), f.source));
    }
    out
}

/// The files [`write_all`] writes, in order.
pub const FILES: &[&str] = &[
    "summary.json",
    "timeseries.csv",
    "junit.xml",
    "events.jsonl",
    "histograms.hlog",
    "report.html",
];

/// What a report adds beyond the run itself: the gate's JUnit cases and its files
/// (`comparison.json`), when a baseline was given.
#[derive(Debug, Default)]
pub struct Extra {
    pub junit: Vec<junit::Case>,
    /// File name in the report folder and its bytes.
    pub files: Vec<(String, Vec<u8>)>,
    /// Files that could not be made, and why (reported with the write failures).
    pub failed: Vec<(String, String)>,
    /// HTML sections for `report.html`, after the criteria (the gate's comparison).
    pub html: Vec<String>,
    /// Files of [`FILES`] not to write (`gauntlet report` keeps `histograms.hlog`, which
    /// it reads).
    pub skip: Vec<&'static str>,
}

/// Write every report file into `dir` (created if needed). Each file is written on its
/// own: one that fails does not keep the others from being written; every failure is
/// returned.
pub fn write_all(
    dir: &Path,
    plan: &Plan,
    info: &RunInfo,
    record: &Record,
    verdict: &Verdict,
) -> Result<(), ReportErrors> {
    write_all_with(dir, plan, info, record, verdict, &Extra::default())
}

/// [`write_all`], plus the `extra` JUnit cases and files.
pub fn write_all_with(
    dir: &Path,
    plan: &Plan,
    info: &RunInfo,
    record: &Record,
    verdict: &Verdict,
    extra: &Extra,
) -> Result<(), ReportErrors> {
    std::fs::create_dir_all(dir).map_err(|source| {
        ReportErrors(vec![ReportError {
            path: dir.to_path_buf(),
            source,
        }])
    })?;
    let other = |e: String| std::io::Error::other(e);
    let mut failures = vec![];
    for name in FILES.iter().filter(|n| !extra.skip.contains(n)) {
        let path = dir.join(name);
        let bytes: Result<Vec<u8>, std::io::Error> = match *name {
            "summary.json" => {
                Ok(summary::to_json(&summary::build(plan, info, record, verdict)).into_bytes())
            }
            "timeseries.csv" => timeseries::to_csv(record).map_err(|e| other(e.to_string())),
            "junit.xml" => junit::to_xml_with(info, record, verdict, &extra.junit)
                .map(String::into_bytes)
                .map_err(other),
            "events.jsonl" => Ok(events::to_jsonl(record).into_bytes()),
            "histograms.hlog" => histograms::to_hlog(info, record).map_err(other),
            "report.html" => {
                Ok(html::render_with(plan, info, record, verdict, &extra.html).into_bytes())
            }
            unknown => Err(other(format!("no writer for {unknown}"))),
        };
        // Secret values never reach a file, whatever the format quoted.
        let written = match bytes {
            Ok(b) => write_atomic(&path, &plan.secrets.mask_bytes(b)),
            Err(source) => Err(ReportError { path, source }),
        };
        if let Err(e) = written {
            failures.push(e);
        }
    }
    for (name, bytes) in &extra.files {
        if let Err(e) = write_atomic(&dir.join(name), &plan.secrets.mask_bytes(bytes.clone())) {
            failures.push(e);
        }
    }
    for (name, why) in &extra.failed {
        failures.push(ReportError {
            path: dir.join(name),
            source: other(why.clone()),
        });
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ReportErrors(failures))
    }
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
