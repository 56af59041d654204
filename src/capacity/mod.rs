//! `gauntlet capacity`: the largest load at which every criterion still passes.
//!
//! Each level is one whole, graded run of the scenario ([`crate::run::execute`]) with the
//! load's stages replaced by a warmup ramp from 0 to the level and a hold at the level;
//! the warmup is not graded. Services start afresh and the faults run at their times from
//! the level's start, so every level is the scenario's own timeline at another load. The
//! levels' run folders sit in the capacity folder, next to `capacity.json` and
//! `capacity.html`.
//!
//! The search steps up from `from` by `step` until a level fails (or `to` passes), then,
//! with the `bisect` strategy, halves the gap between the last pass and the first fail
//! down to `resolution`. The knee is the last passing level.

mod html;
mod terminal;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::{exit, Error};
use crate::record::LiveStats;
use crate::report::EndedBy;
use crate::scenario::load_plan::{CapacityPlan, Model, RateStage, UserStage};
use crate::scenario::model::CapacityStrategy;
use crate::scenario::Plan;

pub use terminal::{level_line, render};

/// `capacity.json`'s `schema_version`.
pub const SCHEMA_VERSION: u32 = 1;
/// Requests seen after the warmup before `stop_error_rate` may stop a level.
const MIN_REQUESTS_TO_STOP: u64 = 20;

pub struct CapacityOptions {
    /// Where the capacity folder goes (`reports/` by default).
    pub reports_root: PathBuf,
    /// The capacity folder's name (default: UTC time, the scenario's name, `-capacity`).
    pub id: Option<String>,
    /// Cancelled on SIGINT/SIGTERM: the current level undoes its faults and writes its
    /// partial report, no other level starts, and what was measured is written.
    pub cancel: CancellationToken,
}

/// What the search tells its caller while it goes (for the terminal).
pub enum Progress<'a> {
    LevelStarted { index: usize, load: f64 },
    LevelDone(&'a Level),
}

/// `capacity.json`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CapacityReport {
    pub schema_version: u32,
    pub id: String,
    pub scenario: String,
    pub file: String,
    /// `closed` (levels are users) or `open` (levels are iterations per second).
    pub model: &'static str,
    /// `users` or `iterations/s`.
    pub unit: &'static str,
    pub search: Search,
    /// In the order they ran.
    pub levels: Vec<Level>,
    /// The last passing level: the highest pass below the lowest fail. None when no level
    /// passed.
    pub knee: Option<f64>,
    /// The lowest failing level (None when every level up to `to` passed).
    pub first_fail: Option<f64>,
    /// The criterion that failed first at the lowest failing level.
    pub limited_by: Option<String>,
    /// The knee is at or above `search.require`, and the search completed.
    pub passed: bool,
    /// `completed`, `interrupted` or `error`.
    pub ended_by: &'static str,
    /// Why the search ended early, when it did.
    pub reason: Option<String>,
    pub started_at: String,
    pub ended_at: String,
    pub exit_code: i32,
}

/// The `[capacity]` table in force.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Search {
    pub from: f64,
    pub to: f64,
    pub step: f64,
    pub strategy: CapacityStrategy,
    pub resolution: f64,
    pub hold_s: f64,
    pub warmup_s: f64,
    pub require: f64,
    pub stop_error_rate: Option<f64>,
}

/// One level: one graded run.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Level {
    /// 1-based, in the order run.
    pub index: usize,
    /// Users or iterations per second.
    pub load: f64,
    /// `step` (stepping up) or `bisect`.
    pub phase: &'static str,
    /// The level's run folder, relative to the capacity folder.
    pub run: String,
    /// `pass`, `fail`, `stopped` (by `stop_error_rate`), `interrupted` or `error`.
    pub verdict: &'static str,
    pub passed: bool,
    /// Over the hold (the warmup is not graded).
    pub requests: u64,
    pub errors: u64,
    pub error_rate_pct: Option<f64>,
    pub rps: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Peak CPU and memory of each service, over the whole level.
    pub resources: BTreeMap<String, ResourcePeak>,
    /// The first failed criterion in the scenario's order (or the run's problem).
    pub failed_first: Option<String>,
    /// Every failed criterion, as written, and every problem.
    pub failed: Vec<String>,
    /// The run's exit code.
    pub exit_code: i32,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ResourcePeak {
    pub cpu_peak_pct: f64,
    pub mem_peak_bytes: u64,
}

/// A finished (or stopped) search.
pub struct CapacityOutcome {
    pub report: CapacityReport,
    pub dir: PathBuf,
    /// `capacity.json` / `capacity.html` that could not be written (then exit 3).
    pub write_errors: Vec<String>,
}

/// Why the search could not start.
#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error(
        "{0}: the scenario has no [capacity] table; add one, e.g. from = 10, to = 200, step = 10"
    )]
    NoCapacity(String),
    #[error(transparent)]
    Run(#[from] Error),
}

impl CapacityError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CapacityError::NoCapacity(_) => exit::INVALID,
            CapacityError::Run(e) => e.exit_code(),
        }
    }
}

/// The JSON Schema of `capacity.json` (draft 2020-12); the committed
/// `schemas/capacity.schema.json` is this text (regenerate it with
/// `UPDATE_SCHEMA=1 cargo test --test capacity`).
pub fn json_schema() -> String {
    crate::report::summary::schema_of::<CapacityReport>()
}

/// The plan of the highest level: what the open-files check must allow for.
pub fn peak_plan(base: &Plan) -> Option<Plan> {
    let cap = base.capacity.as_ref()?;
    Some(level_plan(base, cap, cap.to))
}

/// The scenario at one level: warmup ramp + hold, graded after the warmup.
pub fn level_plan(base: &Plan, cap: &CapacityPlan, load: f64) -> Plan {
    let mut p = base.clone();
    if let Some(l) = p.load.as_mut() {
        match &mut l.model {
            Model::Closed { stages, .. } => {
                // Whole users by validation; the cast saturates anyway.
                let users = load.round() as u32;
                *stages = [(cap.warmup, users), (cap.hold, users)]
                    .into_iter()
                    .filter(|(d, _)| !d.is_zero())
                    .map(|(duration, users)| UserStage { duration, users })
                    .collect();
            }
            Model::Open {
                start_rate, stages, ..
            } => {
                *start_rate = 0.0;
                *stages = [(cap.warmup, load), (cap.hold, load)]
                    .into_iter()
                    .filter(|(d, _)| !d.is_zero())
                    .map(|(duration, rate)| RateStage { duration, rate })
                    .collect();
            }
        }
    }
    p.load_duration = cap.warmup + cap.hold;
    p.deadline = cap.level_deadline();
    p.warmup = cap.warmup;
    p
}

/// The levels to try: stepping up, then bisecting. Pure, so the search is tested alone.
#[derive(Debug, Clone)]
pub struct Searcher {
    cap: CapacityPlan,
    whole: bool,
    last_pass: Option<f64>,
    first_fail: Option<f64>,
    /// The next step-up level, or None once stepping up is over.
    next_up: Option<f64>,
}

impl Searcher {
    /// `whole`: levels are users (whole numbers).
    pub fn new(cap: &CapacityPlan, whole: bool) -> Searcher {
        Searcher {
            cap: cap.clone(),
            whole,
            last_pass: None,
            first_fail: None,
            next_up: Some(cap.from),
        }
    }

    /// The next level and its phase, or None when the search is done.
    pub fn next(&self) -> Option<(f64, &'static str)> {
        if let Some(x) = self.next_up {
            return Some((x, "step"));
        }
        if self.cap.strategy != CapacityStrategy::Bisect {
            return None;
        }
        let (lo, hi) = (self.last_pass?, self.first_fail?);
        if hi - lo <= self.cap.resolution {
            return None;
        }
        let mid = (lo + hi) / 2.0;
        let mid = if self.whole { mid.floor() } else { mid };
        (mid > lo && mid < hi).then_some((mid, "bisect"))
    }

    /// The verdict of the level `next` gave.
    pub fn record(&mut self, load: f64, passed: bool) {
        if passed {
            self.last_pass = Some(self.last_pass.map_or(load, |p| p.max(load)));
        } else {
            self.first_fail = Some(self.first_fail.map_or(load, |f| f.min(load)));
        }
        if self.next_up == Some(load) {
            self.next_up =
                (passed && load < self.cap.to).then(|| (load + self.cap.step).min(self.cap.to));
        }
    }

    pub fn knee(&self) -> Option<f64> {
        self.last_pass
    }

    pub fn first_fail(&self) -> Option<f64> {
        self.first_fail
    }
}

/// A level's load as text: `40`, `12.5`.
pub fn fmt_load(x: f64) -> String {
    crate::metric::format::trim(x, 3)
}

/// Run the search. `progress` hears of each level as it starts and ends.
pub async fn execute(
    plan: Plan,
    opts: CapacityOptions,
    mut progress: impl FnMut(Progress<'_>) + Send,
) -> Result<CapacityOutcome, CapacityError> {
    let cap = plan
        .capacity
        .clone()
        .ok_or_else(|| CapacityError::NoCapacity(plan.file.display().to_string()))?;
    crate::run::check_allowed(&plan)?;
    let open = plan.load.as_ref().is_some_and(|l| l.is_open());
    let id = match &opts.id {
        Some(id) => crate::run::check_run_id(id).map(|()| id.clone())?,
        None => format!("{}-capacity", crate::run::new_run_id(&plan)),
    };
    let dir = claim_dir(&opts.reports_root, &id)?;
    let started_at = now();
    let mut search = Searcher::new(&cap, !open);
    let mut levels: Vec<Level> = Vec::new();
    let mut ended_by = "completed";
    let mut reason = None;
    let mut worst_exit = exit::PASSED;
    while let Some((load, phase)) = search.next() {
        if opts.cancel.is_cancelled() {
            ended_by = "interrupted";
            break;
        }
        let index = levels.len() + 1;
        progress(Progress::LevelStarted { index, load });
        let run_id = format!(
            "level-{index:02}-{}{}",
            fmt_load(load),
            if open { "rps" } else { "users" }
        );
        let level = run_level(&plan, &cap, load, &dir, &run_id, &opts.cancel).await;
        let level = match level {
            Ok(l) => l,
            Err(e) => {
                ended_by = "error";
                reason = Some(format!("level {index} ({}): {e}", fmt_load(load)));
                worst_exit = e.exit_code();
                break;
            }
        };
        let mut level = level;
        level.index = index;
        level.phase = phase;
        progress(Progress::LevelDone(&level));
        let verdict = level.verdict;
        let passed = level.passed;
        let code = level.exit_code;
        levels.push(level);
        match verdict {
            "interrupted" => {
                ended_by = "interrupted";
                break;
            }
            "error" => {
                ended_by = "error";
                reason = Some(format!(
                    "level {index} ({}) did not run to its end; see {}",
                    fmt_load(load),
                    dir.join(&run_id).display()
                ));
                worst_exit = code;
                break;
            }
            _ => search.record(load, passed),
        }
    }
    let knee = search.knee();
    let first_fail = search.first_fail();
    let limited_by = first_fail.and_then(|f| {
        levels
            .iter()
            .find(|l| l.load == f && !l.passed)
            .and_then(|l| l.failed_first.clone())
    });
    let reached = knee.is_some_and(|k| k >= cap.require);
    let exit_code = match ended_by {
        "interrupted" => exit::INTERRUPTED,
        "error" => worst_exit.max(exit::ENVIRONMENT),
        _ if reached => exit::PASSED,
        _ => exit::FAILED,
    };
    let mut report = CapacityReport {
        schema_version: SCHEMA_VERSION,
        id,
        scenario: plan.name.clone(),
        file: plan.file.display().to_string(),
        model: if open { "open" } else { "closed" },
        unit: if open { "iterations/s" } else { "users" },
        search: Search {
            from: cap.from,
            to: cap.to,
            step: cap.step,
            strategy: cap.strategy,
            resolution: cap.resolution,
            hold_s: cap.hold.as_secs_f64(),
            warmup_s: cap.warmup.as_secs_f64(),
            require: cap.require,
            stop_error_rate: cap.stop_error_rate,
        },
        levels,
        knee,
        first_fail,
        limited_by,
        passed: ended_by == "completed" && reached,
        ended_by,
        reason,
        started_at,
        ended_at: now(),
        exit_code,
    };
    let write_errors = write(&dir, &report);
    if !write_errors.is_empty() {
        report.exit_code = exit::ENVIRONMENT;
    }
    Ok(CapacityOutcome {
        report,
        dir,
        write_errors,
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The capacity folder: new, so two searches never mix their levels.
fn claim_dir(root: &Path, id: &str) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(root)
        .map_err(|e| Error::Environment(format!("cannot create {}: {e}", root.display())))?;
    let dir = root.join(id);
    match std::fs::create_dir(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::RunId(format!(
            "capacity id `{id}` is already used: {} exists; pick another --run-id",
            dir.display()
        ))),
        Err(e) => Err(Error::Environment(format!(
            "cannot create {}: {e}",
            dir.display()
        ))),
    }
}

/// One level: a whole run in `dir/run_id`, stopped early when its error rate goes above
/// `stop_error_rate` after the warmup.
async fn run_level(
    base: &Plan,
    cap: &CapacityPlan,
    load: f64,
    dir: &Path,
    run_id: &str,
    cancel: &CancellationToken,
) -> Result<Level, Error> {
    let plan = level_plan(base, cap, load);
    // A child: cancelling it stops this level only; an interrupt cancels it too.
    let level_cancel = cancel.child_token();
    let mut stopped: Option<String> = None;
    let watch = level_cancel.clone();
    let (warmup, limit) = (cap.warmup, cap.stop_error_rate);
    let stop_note = &mut stopped;
    let opts = crate::run::RunOptions {
        reports_root: dir.to_path_buf(),
        run_id: Some(run_id.to_string()),
        cancel: level_cancel.clone(),
        baseline: None,
        tolerances: Vec::new(),
        tolerance_args: Vec::new(),
        // A level's plan is not its file's (the stages are replaced), so the folder keeps
        // no scenario.toml: `gauntlet report` cannot rebuild a level, and says so.
        scenario_text: None,
        metrics_listen: None,
    };
    let outcome = crate::run::execute(plan, opts, move |s: LiveStats| {
        if let Some(note) = too_many_errors(&s, warmup, limit) {
            if stop_note.is_none() && !watch.is_cancelled() {
                *stop_note = Some(note);
                watch.cancel();
            }
        }
    })
    .await?;
    let interrupted = cancel.is_cancelled();
    let r = &outcome.record;
    let total = &r.total;
    let hist = total.graded(r.latency_basis);
    let q = |p: f64| (!hist.is_empty()).then(|| hist.value_at_quantile(p) as f64 / 1000.0);
    let secs = r.measured_duration().as_secs_f64();
    let mut failed: Vec<String> = outcome
        .verdict
        .criteria
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.source.clone())
        .collect();
    let stopped = stopped.filter(|_| !interrupted);
    if let Some(s) = &stopped {
        failed.insert(0, s.clone());
    }
    // The interrupt's own problem says nothing about the level.
    failed.extend(
        outcome
            .verdict
            .problems
            .iter()
            .filter(|p| !p.contains("interrupted"))
            .cloned(),
    );
    let verdict = if interrupted {
        "interrupted"
    } else if stopped.is_some() {
        "stopped"
    } else if matches!(outcome.info.ended_by, EndedBy::Error(_)) || outcome.report_errors.is_some()
    {
        "error"
    } else if outcome.verdict.passed {
        "pass"
    } else {
        "fail"
    };
    if let EndedBy::Error(e) = &outcome.info.ended_by {
        failed.push(format!("the run ended with an error: {e}"));
    }
    Ok(Level {
        index: 0,
        load,
        phase: "step",
        run: run_id.to_string(),
        verdict,
        passed: verdict == "pass",
        requests: total.count,
        errors: total.errors,
        error_rate_pct: (total.count > 0).then(|| total.errors as f64 * 100.0 / total.count as f64),
        rps: (secs > 0.0).then(|| total.count as f64 / secs),
        p50_ms: q(0.50),
        p95_ms: q(0.95),
        p99_ms: q(0.99),
        resources: r
            .resources
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    ResourcePeak {
                        cpu_peak_pct: s.cpu_peak_pct,
                        mem_peak_bytes: s.mem_peak_bytes,
                    },
                )
            })
            .collect(),
        failed_first: failed.first().cloned(),
        failed,
        exit_code: outcome.exit_code,
    })
}

/// The early stop: after the warmup, with enough requests, an error rate above `limit` %.
fn too_many_errors(s: &LiveStats, warmup: Duration, limit: Option<f64>) -> Option<String> {
    let limit = limit?;
    if s.elapsed < warmup || s.requests < MIN_REQUESTS_TO_STOP {
        return None;
    }
    let rate = s.errors as f64 * 100.0 / s.requests as f64;
    (rate > limit).then(|| {
        format!(
            "stopped early: error rate {}% above stop_error_rate {}%",
            crate::metric::format::trim(rate, 1),
            crate::metric::format::trim(limit, 2)
        )
    })
}

/// `capacity.json` and `capacity.html`, each on its own; returns what failed.
fn write(dir: &Path, report: &CapacityReport) -> Vec<String> {
    let mut errors = Vec::new();
    let mut json = serde_json::to_string_pretty(report).expect("a capacity report serializes");
    json.push('\n');
    for (name, bytes) in [
        ("capacity.json", json.into_bytes()),
        ("capacity.html", html::render(report).into_bytes()),
    ] {
        if let Err(e) = crate::report::write_atomic(&dir.join(name), &bytes) {
            errors.push(e.to_string());
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(
        from: f64,
        to: f64,
        step: f64,
        resolution: f64,
        strategy: CapacityStrategy,
    ) -> CapacityPlan {
        CapacityPlan {
            from,
            to,
            step,
            strategy,
            resolution,
            hold: Duration::from_secs(1),
            warmup: Duration::ZERO,
            require: from,
            stop_error_rate: None,
        }
    }

    /// Runs the search against a system that passes up to `limit`.
    fn search(c: &CapacityPlan, whole: bool, limit: f64) -> (Option<f64>, Vec<f64>) {
        let mut s = Searcher::new(c, whole);
        let mut tried = Vec::new();
        while let Some((x, _)) = s.next() {
            tried.push(x);
            s.record(x, x <= limit);
            assert!(tried.len() < 100, "endless search: {tried:?}");
        }
        (s.knee(), tried)
    }

    #[test]
    fn bisect_finds_the_knee_within_the_resolution() {
        let c = cap(10.0, 100.0, 10.0, 2.0, CapacityStrategy::Bisect);
        let (knee, tried) = search(&c, true, 52.0);
        assert_eq!(&tried[..6], &[10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
        let knee = knee.unwrap();
        assert!(
            (50.0..=52.0).contains(&knee) && 52.0 - knee <= 2.0,
            "{knee} {tried:?}"
        );
        for lim in [10.0, 11.0, 37.0, 99.0] {
            let k = search(&c, true, lim).0.unwrap();
            assert!(k <= lim && lim - k <= 2.0, "limit {lim}: knee {k}");
        }
    }

    #[test]
    fn step_stops_at_the_first_fail_and_the_bounds_hold() {
        let c = cap(10.0, 45.0, 10.0, 1.0, CapacityStrategy::Step);
        assert_eq!(
            search(&c, true, 33.0),
            (Some(30.0), vec![10.0, 20.0, 30.0, 40.0])
        );
        // `to` is the last level even off the step grid; all pass: the knee is `to`.
        assert_eq!(
            search(&c, true, 1000.0),
            (Some(45.0), vec![10.0, 20.0, 30.0, 40.0, 45.0])
        );
        // `from` fails: no knee, no bisecting below the range.
        let b = cap(10.0, 45.0, 10.0, 1.0, CapacityStrategy::Bisect);
        assert_eq!(search(&b, true, 5.0), (None, vec![10.0]));
    }

    #[test]
    fn a_rate_is_bisected_without_rounding() {
        let c = cap(100.0, 400.0, 100.0, 10.0, CapacityStrategy::Bisect);
        let (knee, tried) = search(&c, false, 333.0);
        let knee = knee.unwrap();
        assert!(knee <= 333.0 && 333.0 - knee <= 10.0, "{knee} {tried:?}");
        assert!(tried.iter().any(|x| x.fract() != 0.0), "{tried:?}");
    }
}
