//! One run of a plan: start the services, run load, faults and observers side by side on
//! one timeline, fold their events, grade, and write the reports. Whatever happens after
//! the services start (error, interrupt), they are stopped, faults are undone and a
//! report is written.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::chaos::state::{LockError, RunLock};
use crate::chaos::Services;
use crate::error::{exit, Error};
use crate::event::{EventKind, EventSink, Phase};
use crate::grade::{self, Verdict};
use crate::record::{LiveStats, Record, Recorder};
use crate::report::{self, EndedBy, RunInfo};
use crate::scenario::Plan;

pub struct RunOptions {
    /// Where `<run-id>/` folders go (`reports/` by default).
    pub reports_root: PathBuf,
    /// Overrides the generated run id.
    pub run_id: Option<String>,
    /// Cancelled on the first SIGINT/SIGTERM: the run undoes its faults, stops its
    /// services and writes a partial report.
    pub cancel: CancellationToken,
    /// `--baseline`: the run is compared with it (the gate), read before the run starts.
    pub baseline: Option<crate::compare::Side>,
    /// `--tolerance KEY=VALUE`, over the scenario's `[gate]`.
    pub tolerances: Vec<(String, crate::metric::tolerance::Tolerance)>,
    /// `tolerances` as written, `KEY=VALUE` (saved for `gauntlet report`).
    pub tolerance_args: Vec<String>,
    /// The scenario text the plan was read from (`${VAR}` filled, `--set` applied),
    /// saved in the run folder as `scenario.toml` for `gauntlet report`.
    pub scenario_text: Option<String>,
    /// `--metrics-listen`: serve live metrics (Prometheus text) on this address while
    /// the run goes.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// What a finished run produced.
pub struct RunOutcome {
    /// 3 when a report file could not be written, whatever the verdict.
    pub exit_code: i32,
    /// The report files that could not be written (every other one was).
    pub report_errors: Option<report::ReportErrors>,
    pub report_dir: PathBuf,
    pub info: RunInfo,
    pub record: Record,
    pub verdict: Verdict,
    /// The plan that ran, for the binary's summary.
    pub plan: Arc<Plan>,
    /// The gate's comparison with `--baseline`, when one was given.
    pub comparison: Option<crate::compare::Comparison>,
}

/// Run id: UTC time plus the scenario's name, sortable and readable.
pub fn new_run_id(plan: &Plan) -> String {
    let slug: String = plan
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        slug.trim_matches('-')
    )
}

/// A run id names a folder under the reports folder: a safe charset, no path separators,
/// not `latest` (the link to the newest run), so no run can write outside its folder.
pub fn check_run_id(id: &str) -> Result<(), Error> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let problem = if id.is_empty() || id.len() > 128 {
        Some("it must be 1 to 128 characters")
    } else if !id.chars().all(ok_char) {
        Some("it may hold only letters, digits, '-', '_' and '.'")
    } else if id.starts_with('.') {
        Some("it must not start with '.'")
    } else if id == "latest" {
        Some("`latest` is the link to the newest run")
    } else {
        None
    };
    match problem {
        Some(why) => Err(Error::RunId(format!("run id `{id}`: {why}"))),
        None => Ok(()),
    }
}

/// Create the run's folder and lock it for the run's life; it must not exist yet, so two
/// runs never share (and overwrite) one folder and its state file, and `gauntlet cleanup`
/// leaves a locked folder alone.
fn claim_run_dir(root: &Path, run_id: &str) -> Result<(PathBuf, RunLock), Error> {
    std::fs::create_dir_all(root)
        .map_err(|e| Error::Environment(format!("cannot create {}: {e}", root.display())))?;
    let dir = root.join(run_id);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let why = match RunLock::acquire(&dir) {
                Err(LockError::Busy(_)) => "a live gauntlet run holds it",
                _ => "it exists",
            };
            return Err(Error::RunId(format!(
                "run id `{run_id}` is already used: {} ({why}); pick another --run-id",
                dir.display()
            )));
        }
        Err(e) => {
            return Err(Error::Environment(format!(
                "cannot create {}: {e}",
                dir.display()
            )))
        }
    }
    match RunLock::acquire(&dir) {
        Ok(lock) => Ok((dir, lock)),
        Err(e @ LockError::Busy(_)) => Err(Error::RunId(format!("run id `{run_id}`: {e}"))),
        Err(e) => Err(Error::Environment(e.to_string())),
    }
}

/// Refuse load to any host that is not on the scenario's allow list. Validation checks
/// this too; it is checked again here because it is a safety rule, not a convenience.
pub fn check_allowed(plan: &Plan) -> Result<(), Error> {
    let host = plan.base_url.host_str().unwrap_or_default();
    if crate::units::host_allowed(&plan.allow_hosts, host) {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "target host `{host}` is not in target.allow_hosts {:?}",
            plan.allow_hosts
        )))
    }
}

/// Run the plan. `live` is called about 4 times a second with fresh figures (progress).
pub async fn execute(
    plan: Plan,
    opts: RunOptions,
    mut live: impl FnMut(LiveStats) + Send,
) -> Result<RunOutcome, Error> {
    check_allowed(&plan)?;
    let fds = crate::limits::ensure_open_files(&plan)?;
    let plan = Arc::new(plan);
    let run_id = match opts.run_id.clone() {
        Some(id) => check_run_id(&id).map(|()| id)?,
        None => new_run_id(&plan),
    };
    // Bound before anything starts: an address that cannot be had stops the run here.
    let metrics = match opts.metrics_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                Error::Environment(format!("cannot listen for metrics on {addr}: {e}"))
            })?;
            let text = Arc::new(std::sync::Mutex::new(String::new()));
            let stop = CancellationToken::new();
            tracing::info!(%addr, "serving live metrics");
            tokio::spawn(report::live::serve(listener, text.clone(), stop.clone()));
            Some((text, stop.drop_guard()))
        }
        None => None,
    };
    let metrics_text = metrics.as_ref().map(|(t, _)| t.clone());
    // Held until the reports are written: the folder is this run's alone.
    let (report_dir, _lock) = claim_run_dir(&opts.reports_root, &run_id)?;
    let logs_dir = report_dir.join("logs");
    std::fs::create_dir_all(&logs_dir)
        .map_err(|e| Error::Environment(format!("cannot create {}: {e}", logs_dir.display())))?;
    let started_at = chrono::Utc::now();
    tracing::info!(run_id = %run_id, scenario = %plan.name, dir = %report_dir.display(), "run starting");

    let clock = std::time::Instant::now();
    let (events, mut rx) = EventSink::new(clock);
    events.set_histogram_digits(crate::event::digits_for_names(plan.requests.len()));
    if let Some(from) = fds.raised_from {
        events.notice(
            crate::event::Level::Info,
            format!("open-files limit raised from {from} to {}", fds.limit),
        );
    }
    let (live_tx, mut live_rx) = watch::channel(LiveStats::default());

    // The recorder owns its state; it hands it back when every sender is gone.
    let mut recorder = Recorder::new(&plan);
    let labels = (plan.name.clone(), run_id.clone());
    let recorder_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => recorder.record(&ev),
                    None => break,
                },
                _ = tick.tick() => {
                    let _ = live_tx.send(recorder.live());
                    if let Some(t) = &metrics_text {
                        let text = report::live::prometheus(
                            recorder.so_far(),
                            recorder.users_now(),
                            &labels.0,
                            &labels.1,
                        );
                        if let Ok(mut t) = t.lock() {
                            *t = text;
                        }
                    }
                }
            }
        }
        recorder.finish()
    });

    let ended_by = drive(
        &plan,
        &crate::chaos::RunFolder {
            run_id: run_id.clone(),
            dir: report_dir.clone(),
        },
        &events,
        &opts.cancel,
        &mut live,
        &mut live_rx,
    )
    .await;
    drop(events);
    // The services' own output may quote a secret they were given; they have stopped.
    mask_logs(&logs_dir, &plan.secrets);
    let record = recorder_task
        .await
        .map_err(|e| Error::Environment(format!("recorder failed: {e}")))?;

    tracing::info!(ended_by = ?ended_by, requests = record.total.count, "run ended");
    let (verdict, exit_code) = settle(&plan, &record, &ended_by);
    tracing::debug!(passed = verdict.passed, exit_code, "graded");
    let mut info = RunInfo {
        run_id,
        scenario: plan.name.clone(),
        file: plan.file.clone(),
        seed: plan.seed,
        started_at,
        ended_at: chrono::Utc::now(),
        ended_by,
        exit_code,
        gauntlet_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let report_source = report_dir.display().to_string();
    let comparison = opts.baseline.as_ref().map(|base| {
        gate(
            &plan,
            &mut info,
            &record,
            &verdict,
            base,
            &opts.tolerances,
            &report_source,
        )
    });
    let mut extra = report::Extra::default();
    if let Some(c) = &comparison {
        extra_of_comparison(&mut extra, c);
    }
    // What `gauntlet report` rebuilds every report from (with events.jsonl and
    // histograms.hlog, which are written anyway).
    extra.files.push((
        report::saved::RUN_FILE.into(),
        report::saved::run_json(&info, &opts.tolerance_args, &report_source),
    ));
    if let Some(text) = &opts.scenario_text {
        // Header values (tokens, cookies) stay out of the run folder unless `show_values`.
        let text = if plan.show_values {
            text.clone()
        } else {
            report::saved::hide_header_values(text)
        };
        extra
            .files
            .push((report::saved::SCENARIO_FILE.into(), text.into_bytes()));
    }
    match report::saved::record_json(&record) {
        Ok(b) => extra.files.push((report::saved::RECORD_FILE.into(), b)),
        Err(e) => extra.failed.push((report::saved::RECORD_FILE.into(), e)),
    }
    if let Some(base) = &opts.baseline {
        match crate::compare::baseline::to_bytes(base) {
            Ok(b) => extra.files.push((report::saved::BASELINE_FILE.into(), b)),
            Err(e) => extra.failed.push((report::saved::BASELINE_FILE.into(), e)),
        }
    }
    let exit_code = info.exit_code;
    // Every report that can be written is; a failed one makes the exit 3 but hides
    // neither the others nor the outcome (the binary shows the verdict and each failure).
    let report_errors =
        report::write_all_with(&report_dir, &plan, &info, &record, &verdict, &extra).err();
    point_latest(&opts.reports_root, &report_dir);
    tracing::info!(dir = %report_dir.display(), failed = report_errors.is_some(), "reports written");
    Ok(RunOutcome {
        exit_code: if report_errors.is_some() {
            exit::ENVIRONMENT
        } else {
            exit_code
        },
        report_errors,
        report_dir,
        info,
        record,
        verdict,
        plan,
        comparison,
    })
}

/// `gauntlet report RUN_DIR`: every report of a finished run written again from what its
/// folder saved (`run.json`, `scenario.toml`, `record.json`, `histograms.hlog`,
/// `baseline.json`), graded again with the same rules; `histograms.hlog` and the saved
/// files are read, not rewritten.
pub fn rebuild(dir: &Path) -> Result<RunOutcome, Error> {
    use report::saved;
    let run = saved::read_run(dir)?;
    let text = saved::read_scenario(dir)?;
    // The file's own path: messages name it, and its relative paths resolve as in the run.
    let mut plan = crate::scenario::load_str(&run.info.file, &text)?;
    plan.seed = run.info.seed;
    let plan = Arc::new(plan);
    let record = saved::read_record(dir)?;
    let (verdict, exit_code) = settle(&plan, &record, &run.info.ended_by);
    let mut info = run.info;
    info.exit_code = exit_code;
    let mut tolerances = Vec::new();
    for t in &run.tolerances {
        let parsed =
            crate::compare::parse_tolerance_arg(t).map_err(|why| saved::SavedError::Format {
                path: dir.join(saved::RUN_FILE),
                why: format!("tolerance `{t}`: {why}"),
            })?;
        tolerances.push(parsed);
    }
    let base_path = dir.join(saved::BASELINE_FILE);
    let baseline = if base_path.is_file() {
        let side =
            crate::compare::Side::load(&base_path).map_err(|e| saved::SavedError::Format {
                path: base_path.clone(),
                why: e.to_string(),
            })?;
        Some(side)
    } else {
        None
    };
    let comparison = baseline.as_ref().map(|base| {
        gate(
            &plan,
            &mut info,
            &record,
            &verdict,
            base,
            &tolerances,
            &run.report_dir,
        )
    });
    let mut extra = report::Extra {
        skip: vec!["histograms.hlog"],
        ..Default::default()
    };
    if let Some(c) = &comparison {
        extra_of_comparison(&mut extra, c);
    }
    let report_errors = report::write_all_with(dir, &plan, &info, &record, &verdict, &extra).err();
    Ok(RunOutcome {
        exit_code: if report_errors.is_some() {
            exit::ENVIRONMENT
        } else {
            info.exit_code
        },
        report_errors,
        report_dir: dir.to_path_buf(),
        info,
        record,
        verdict,
        plan,
        comparison,
    })
}

/// The verdict of a run that ended as `ended_by`, and the exit code it makes. A run that
/// did not complete never passes, in any report: part of it was not tested.
pub fn settle(plan: &Plan, record: &Record, ended_by: &EndedBy) -> (Verdict, i32) {
    let mut verdict = grade::grade(plan, record);
    match ended_by {
        EndedBy::Completed => {}
        EndedBy::Interrupted => {
            verdict.passed = false;
            verdict
                .problems
                .push("the run was interrupted before it completed".into());
        }
        EndedBy::Error(e) => {
            verdict.passed = false;
            verdict
                .problems
                .push(format!("the run ended with an error: {e}"));
        }
    }
    let exit_code = match ended_by {
        EndedBy::Interrupted => exit::INTERRUPTED,
        EndedBy::Error(_) => exit::ENVIRONMENT,
        EndedBy::Completed if verdict.passed => exit::PASSED,
        EndedBy::Completed => exit::FAILED,
    };
    (verdict, exit_code)
}

/// The gate: the run compared with `base`; a regression beyond tolerance and noise
/// fails a run that passed (`info.exit_code`).
pub fn gate(
    plan: &Plan,
    info: &mut RunInfo,
    record: &Record,
    verdict: &Verdict,
    base: &crate::compare::Side,
    tolerances: &[(String, crate::metric::tolerance::Tolerance)],
    source: &str,
) -> crate::compare::Comparison {
    let tol = crate::compare::Tolerances {
        scenario: plan.gate.clone(),
        command_line: tolerances.to_vec(),
    };
    let current = crate::compare::side_of_run(
        report::summary::build(plan, info, record, verdict),
        record,
        source.to_string(),
    );
    let c = crate::compare::compare(base, &current, &tol);
    if !c.passed() && info.exit_code == exit::PASSED {
        info.exit_code = exit::FAILED;
    }
    c
}

/// The gate's JUnit cases and `comparison.json`.
pub fn extra_of_comparison(extra: &mut report::Extra, c: &crate::compare::Comparison) {
    extra.junit = crate::compare::junit_cases(c);
    extra.html.push(crate::compare::html(c));
    let mut json = serde_json::to_string_pretty(c).expect("a comparison always serializes");
    json.push('\n');
    extra
        .files
        .push(("comparison.json".into(), json.into_bytes()));
}

/// Secret values in the captured service output masked; a log that cannot be rewritten
/// is removed rather than left holding a secret.
fn mask_logs(dir: &std::path::Path, secrets: &crate::secrets::Secrets) {
    if secrets.is_empty() {
        return;
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let masked = secrets.mask_bytes(bytes.clone());
        if masked != bytes && report::write_atomic(&path, &masked).is_err() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Services, load and faults on one timeline. Returns how the run ended; never returns
/// before every service it started is stopped.
async fn drive(
    plan: &Arc<Plan>,
    folder: &crate::chaos::RunFolder,
    events: &EventSink,
    cancel: &CancellationToken,
    live: &mut (impl FnMut(LiveStats) + Send),
    live_rx: &mut watch::Receiver<LiveStats>,
) -> EndedBy {
    events.send(EventKind::Phase(Phase::ServicesStarting));
    let mut services = tokio::select! {
        s = Services::start(plan, folder, events.clone()) => match s {
            Ok(s) => s,
            Err(e) => return EndedBy::Error(e.to_string()),
        },
        _ = cancel.cancelled() => return EndedBy::Interrupted,
    };
    events.send(EventKind::Phase(Phase::ServicesReady));

    // Canary keys are written and scrapes start before the load and the first fault.
    let observers = crate::observe::Observers::start(&plan.observers, events.clone()).await;

    // Faults run on the load's timeline; every fault applied is undone below, whatever
    // happens (the Drop guards of Chaos and Services cover a panic).
    let chaos = crate::chaos::Chaos::new(plan, &services, events.clone(), cancel.clone());
    let load_start = std::time::Instant::now();
    events.send(EventKind::Phase(Phase::LoadStarted));
    let timeline = chaos.run_timeline(load_start);
    tokio::pin!(timeline);
    let mut timeline_done = false;
    let mut fault_error: Option<String> = None;
    let load_cancel = cancel.child_token();
    let load = crate::load::run(plan.clone(), events.clone(), load_cancel.clone());
    tokio::pin!(load);
    let deadline = tokio::time::sleep(plan.deadline);
    tokio::pin!(deadline);
    let mut capped = false;
    // The run lasts until the load has ended AND every fault of the timeline was applied
    // and undone (a fault scheduled after the load, or a chaos-only scenario without load,
    // still happens), bounded by the hard cap; an interrupt or a fatal fault ends it early.
    let mut load_result: Option<Result<(), String>> = None;
    let ended_by = loop {
        if let Some(r) = &load_result {
            if timeline_done || cancel.is_cancelled() || capped || fault_error.is_some() {
                break match r {
                    Ok(()) if cancel.is_cancelled() => EndedBy::Interrupted,
                    Ok(()) => match fault_error.take() {
                        Some(e) => EndedBy::Error(e),
                        None => EndedBy::Completed,
                    },
                    Err(e) => EndedBy::Error(e.clone()),
                };
            }
        }
        tokio::select! {
            r = &mut load, if load_result.is_none() => {
                events.send(EventKind::Phase(Phase::LoadFinished));
                load_result = Some(r.map_err(|e| e.to_string()));
            }
            r = &mut timeline, if !timeline_done => {
                timeline_done = true;
                // A fault the scenario says must apply could not: end the run (exit 3).
                if let Err(e) = r {
                    fault_error = Some(e.to_string());
                    load_cancel.cancel();
                }
            }
            _ = &mut deadline, if !capped => {
                capped = true;
                // The hard cap: stop the load, let it drain, call it complete.
                load_cancel.cancel();
                events.notice(crate::event::Level::Warn, format!("run reached its duration cap of {:?}; load stopped", plan.deadline));
            }
            _ = cancel.cancelled(), if !load_cancel.is_cancelled() => {
                events.send(EventKind::Phase(Phase::Interrupted));
                load_cancel.cancel();
            }
            Ok(()) = live_rx.changed() => live(*live_rx.borrow()),
        }
    };
    tracing::debug!("undoing faults");
    chaos.undo_all().await;
    // The cooldown: services still watched (health, memory) after the load and faults,
    // for `memory.<svc>.retained`. An interrupt cuts it short and the run is interrupted.
    let ended_by = if matches!(ended_by, EndedBy::Completed) && !plan.cooldown.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(plan.cooldown) => ended_by,
            _ = cancel.cancelled() => {
                events.send(EventKind::Phase(Phase::Interrupted));
                EndedBy::Interrupted
            }
        }
    } else {
        ended_by
    };
    // Faults are undone and recoveries awaited: now the canary read-back tells what was lost.
    if matches!(ended_by, EndedBy::Interrupted) {
        observers.stop().await;
    } else {
        observers.finish().await;
    }
    events.send(EventKind::Phase(Phase::Stopping));
    services.shutdown().await;
    ended_by
}

/// `reports/latest` points at the newest run; best effort (a report is complete without).
fn point_latest(root: &Path, dir: &Path) {
    let latest = root.join("latest");
    let target = dir.file_name().map(PathBuf::from).unwrap_or_default();
    let tmp = root.join(".latest.tmp");
    let _ = std::fs::remove_file(&tmp);
    #[cfg(unix)]
    if std::os::unix::fs::symlink(&target, &tmp).is_ok() {
        let _ = std::fs::rename(&tmp, &latest);
    }
}
