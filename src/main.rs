//! The `gauntlet` command: a thin shell over the library. It parses arguments, calls the
//! library, shows errors once, and maps the outcome to an exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use gauntlet::error::exit;
use gauntlet::metric::tolerance::Tolerance;

/// Load and chaos testing harness: drive load, inject faults, observe, grade, report.
///
/// Exit codes: 0 every criterion passed; 1 a criterion failed; 2 invalid scenario or
/// command line (nothing started); 3 the environment failed; 130 interrupted.
#[derive(Parser, Debug)]
#[command(name = "gauntlet", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario: start its services, drive load, inject faults, grade, write reports.
    Run(RunArgs),
    /// Find the largest load at which every criterion still passes: the scenario's
    /// [capacity] levels, each a whole graded run. Exit 0 when the knee reaches
    /// `require`, 1 when it does not.
    Capacity(CapacityArgs),
    /// Check scenario files without running anything; every problem is listed.
    Validate {
        /// Scenario files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Find and remove leftovers of earlier runs: containers labelled with a run id, stray
    /// processes, paused processes and containers recorded in the state.json files under
    /// --reports (up to 8 folders deep). Run folders still locked by a live run are left alone.
    Cleanup {
        /// Folder holding the runs' report folders.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
    },
    /// Compare a run with a baseline, figure by figure (the CI regression gate). Exit 1
    /// when a figure regressed beyond its tolerance and beyond noise.
    Compare(CompareArgs),
    /// Baseline files: a run's summary and latency histograms in one JSON file to commit.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// The demo stack: the system under test used by the examples and tests.
    #[cfg(feature = "demo")]
    Demo(gauntlet_demo::DemoArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Scenario file (TOML).
    file: PathBuf,
    /// Folder the run's report folder is written into.
    #[arg(long, default_value = "reports")]
    reports: PathBuf,
    /// Name of the report folder (default: UTC time and scenario name).
    #[arg(long)]
    run_id: Option<String>,
    /// Override the scenario's seed (replay a run).
    #[arg(long)]
    seed: Option<u64>,
    /// Set a scenario value, e.g. target.base_url=https://staging.example.com or
    /// load.stages[1].users=5000 (repeatable; the value is read as TOML, else as text).
    /// `${VAR}` and `${VAR:-default}` in the file come from the environment.
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = set_arg)]
    sets: Vec<(String, String)>,
    /// No progress bar and no summary table; errors are still shown.
    #[arg(long, short)]
    quiet: bool,
    /// Compare the run with this baseline (a run folder, its summary.json or a baseline
    /// file): a regression beyond tolerance and noise makes the exit 1.
    #[arg(long, value_name = "DIR|FILE")]
    baseline: Option<PathBuf>,
    /// A tolerance over the scenario's [gate] table, e.g. latency.p99=20% or
    /// errors.rate=0.1pp (repeatable).
    #[arg(long = "tolerance", value_name = "KEY=VALUE", value_parser = tolerance_arg)]
    tolerances: Vec<(String, Tolerance)>,
}

#[derive(clap::Args, Debug)]
struct CapacityArgs {
    /// Scenario file (TOML) with a [capacity] table.
    file: PathBuf,
    /// Folder the capacity folder (with one run folder per level) is written into.
    #[arg(long, default_value = "reports")]
    reports: PathBuf,
    /// Name of the capacity folder (default: UTC time, scenario name, `-capacity`).
    #[arg(long)]
    run_id: Option<String>,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Set a scenario value, as for `run` (repeatable), e.g. capacity.to=400.
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = set_arg)]
    sets: Vec<(String, String)>,
    /// No line per level and no table; errors are still shown.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct CompareArgs {
    /// The baseline: a run folder, a summary.json or a baseline file.
    baseline: PathBuf,
    /// The run to judge: a run folder, a summary.json or a baseline file.
    current: PathBuf,
    /// A tolerance, e.g. latency=10%, latency.p99=20%, errors.rate=0.1pp (repeatable;
    /// over --scenario's [gate] table).
    #[arg(long = "tolerance", value_name = "KEY=VALUE", value_parser = tolerance_arg)]
    tolerances: Vec<(String, Tolerance)>,
    /// Read the [gate] table of this scenario file.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Also write the comparison as JUnit XML (one test case per figure).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum BaselineCommand {
    /// Save a run as a baseline file (summary + histograms, base64 V2 deflate).
    Save {
        /// The run folder (e.g. reports/latest).
        run: PathBuf,
        /// The baseline file to write.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
}

fn tolerance_arg(s: &str) -> Result<(String, Tolerance), String> {
    gauntlet::compare::parse_tolerance_arg(s)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::INVALID } else { 0 };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    let code = match cli.command {
        Command::Validate { files } => validate(&files),
        Command::Run(args) => run(args),
        Command::Capacity(args) => capacity(args),
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo(args),
        Command::Cleanup { reports } => cleanup(&reports),
        Command::Compare(args) => compare(args),
        Command::Baseline(BaselineCommand::Save { run, to }) => baseline_save(&run, &to),
    };
    ExitCode::from(code as u8)
}

/// `PATH=VALUE` of `--set`.
fn set_arg(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(p, v)| (p.trim().to_string(), v.to_string()))
        .filter(|(p, _)| !p.is_empty())
        .ok_or_else(|| format!("`{s}`: write --set PATH=VALUE, e.g. load.stages[1].users=5000"))
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn validate(files: &[PathBuf]) -> i32 {
    let mut code = exit::PASSED;
    for f in files {
        match gauntlet::scenario::load_with(f, &Default::default()) {
            Ok(plan) => println!(
                "{}: ok ({}, {}, {})",
                f.display(),
                count(plan.requests.len(), "request", "requests"),
                count(plan.criteria.len(), "criterion", "criteria"),
                count(plan.faults.len(), "fault", "faults")
            ),
            Err(e) => {
                eprintln!("{e}");
                code = exit::INVALID;
            }
        }
    }
    code
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    // One thread: even latency spread across users (a multi-thread runtime split them
    // into fast and starved ones, measured), and the other core stays for the target.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e} (check `ulimit -n`)"))
}

fn run(args: RunArgs) -> i32 {
    let over = gauntlet::scenario::Overrides {
        sets: args.sets.clone(),
    };
    let mut plan = match gauntlet::scenario::load_with(&args.file, &over) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return exit::INVALID;
        }
    };
    if let Some(seed) = args.seed {
        plan.seed = seed;
    }
    // Read before anything starts: a baseline that cannot be read is invalid input.
    let baseline = match args.baseline.as_deref().map(gauntlet::compare::Side::load) {
        None => None,
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => {
            eprintln!("error: baseline: {e}");
            return exit::INVALID;
        }
    };
    // Before the runtime, which needs descriptors of its own.
    if let Err(e) = gauntlet::limits::ensure_open_files(&plan) {
        eprintln!("error: {e}");
        return exit::ENVIRONMENT;
    }
    let cancel = CancellationToken::new();
    install_signal_handler(cancel.clone());
    let progress = (!args.quiet && std::io::stderr().is_terminal())
        .then(|| gauntlet::report::progress::Progress::new(plan.load_duration));
    let opts = gauntlet::run::RunOptions {
        reports_root: args.reports,
        run_id: args.run_id,
        cancel,
        baseline,
        tolerances: args.tolerances,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ENVIRONMENT;
        }
    };
    let outcome = rt.block_on(gauntlet::run::execute(plan, opts, |s| {
        if let Some(p) = &progress {
            p.update(&s);
        }
    }));
    if let Some(p) = &progress {
        p.finish();
    }
    match outcome {
        Ok(o) => {
            if !args.quiet {
                // Colour only for a person at a terminal, and never against NO_COLOR.
                let color = std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
                let summary = gauntlet::report::terminal_summary(
                    &o.plan, &o.info, &o.record, &o.verdict, color,
                );
                println!("{summary}");
            }
            if let Some(c) = &o.comparison {
                if !args.quiet {
                    println!("{}", gauntlet::compare::render(c));
                } else if !c.passed() {
                    println!(
                        "gate: {} regression(s) against {}",
                        c.count(gauntlet::compare::Verdict::Regression),
                        c.baseline
                    );
                }
            }
            println!("report: {}", o.report_dir.display());
            let summary = gauntlet::report::summary::build(&o.plan, &o.info, &o.record, &o.verdict);
            ci_conventions(
                &summary,
                o.comparison.as_ref(),
                Some(&o.report_dir.join("report.html")),
            );
            // The reason for an environment failure is shown even with --quiet.
            if let gauntlet::report::EndedBy::Error(reason) = &o.info.ended_by {
                eprintln!("error: {reason}");
            }
            if let Some(e) = &o.report_errors {
                eprintln!("error: {e}");
            }
            o.exit_code
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn capacity(args: CapacityArgs) -> i32 {
    let over = gauntlet::scenario::Overrides {
        sets: args.sets.clone(),
    };
    let mut plan = match gauntlet::scenario::load_with(&args.file, &over) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return exit::INVALID;
        }
    };
    if let Some(seed) = args.seed {
        plan.seed = seed;
    }
    let Some(peak) = gauntlet::capacity::peak_plan(&plan) else {
        eprintln!(
            "error: {}",
            gauntlet::capacity::CapacityError::NoCapacity(args.file.display().to_string())
        );
        return exit::INVALID;
    };
    // Before the runtime, for the highest level.
    if let Err(e) = gauntlet::limits::ensure_open_files(&peak) {
        eprintln!("error: {e}");
        return exit::ENVIRONMENT;
    }
    let cancel = CancellationToken::new();
    install_signal_handler(cancel.clone());
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ENVIRONMENT;
        }
    };
    let color = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let unit = if plan.load.as_ref().is_some_and(|l| l.is_open()) {
        "iterations/s"
    } else {
        "users"
    };
    let opts = gauntlet::capacity::CapacityOptions {
        reports_root: args.reports,
        id: args.run_id,
        cancel,
    };
    let quiet = args.quiet;
    let outcome = rt.block_on(gauntlet::capacity::execute(plan, opts, |p| {
        if quiet {
            return;
        }
        match p {
            gauntlet::capacity::Progress::LevelStarted { index, load } => eprintln!(
                "level {index:>2}  {} {unit} ...",
                gauntlet::capacity::fmt_load(load)
            ),
            gauntlet::capacity::Progress::LevelDone(l) => {
                eprintln!("{}", gauntlet::capacity::level_line(l, unit, color))
            }
        }
    }));
    match outcome {
        Ok(o) => {
            if !args.quiet {
                println!("{}", gauntlet::capacity::render(&o.report, color));
            }
            println!("report: {}", o.dir.display());
            for e in &o.write_errors {
                eprintln!("error: {e}");
            }
            o.report.exit_code
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// First SIGINT/SIGTERM: cancel the run (faults undone, partial report). Second: exit now.
/// Installed before goose starts, so goose's own Ctrl-C handler (which would exit the
/// process) is refused and ours stays in charge.
fn install_signal_handler(cancel: CancellationToken) {
    let result = ctrlc::set_handler(move || {
        if cancel.is_cancelled() {
            eprintln!("gauntlet: second interrupt, exiting now; faults may still be applied: run `gauntlet cleanup` (with the same --reports) to undo them");
            std::process::exit(exit::INTERRUPTED);
        }
        eprintln!("gauntlet: interrupted; undoing faults and writing a partial report (interrupt again to exit now)");
        cancel.cancel();
    });
    if let Err(e) = result {
        eprintln!("gauntlet: warning: cannot install the interrupt handler: {e}");
    }
}

#[cfg(feature = "demo")]
fn demo(args: gauntlet_demo::DemoArgs) -> i32 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e} (check `ulimit -n`)");
            return exit::ENVIRONMENT;
        }
    };
    match rt.block_on(gauntlet_demo::run(args)) {
        Ok(()) => exit::PASSED,
        Err(e) => {
            eprintln!("error: {e}");
            exit::ENVIRONMENT
        }
    }
}

/// Under GitHub Actions: a Markdown job summary appended to `$GITHUB_STEP_SUMMARY`, and
/// `::error` / `::warning` workflow commands on stdout.
fn ci_conventions(
    summary: &gauntlet::report::summary::Summary,
    comparison: Option<&gauntlet::compare::Comparison>,
    report_html: Option<&std::path::Path>,
) {
    use std::io::Write;
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let md = gauntlet::compare::github::step_summary(summary, comparison, report_html);
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(md.as_bytes()));
        if let Err(e) = written {
            eprintln!(
                "warning: cannot append the job summary to {}: {e}",
                std::path::Path::new(&path).display()
            );
        }
    }
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        for line in gauntlet::compare::github::annotations(summary, comparison) {
            println!("{line}");
        }
    }
}

fn compare(args: CompareArgs) -> i32 {
    let mut tol = gauntlet::compare::Tolerances {
        scenario: Vec::new(),
        command_line: args.tolerances,
    };
    if let Some(f) = &args.scenario {
        match gauntlet::scenario::load(f) {
            Ok(plan) => tol.scenario = plan.gate,
            Err(e) => {
                eprintln!("{e}");
                return exit::INVALID;
            }
        }
    }
    let load =
        |p: &std::path::Path| gauntlet::compare::Side::load(p).map_err(|e| eprintln!("error: {e}"));
    let (Ok(base), Ok(cur)) = (load(&args.baseline), load(&args.current)) else {
        return exit::INVALID;
    };
    let cmp = gauntlet::compare::compare(&base, &cur, &tol);
    println!("{}", gauntlet::compare::render(&cmp));
    if let Some(path) = &args.junit {
        let cases = gauntlet::compare::junit_cases(&cmp);
        match gauntlet::compare::junit_xml(&cmp, &cases) {
            Ok(xml) => {
                if let Err(e) = gauntlet::report::write_atomic(path, xml.as_bytes()) {
                    eprintln!("error: {e}");
                    return exit::ENVIRONMENT;
                }
            }
            Err(e) => {
                eprintln!("error: cannot write JUnit: {e}");
                return exit::ENVIRONMENT;
            }
        }
    }
    let html = args
        .current
        .is_dir()
        .then(|| args.current.join("report.html"));
    ci_conventions(&cur.summary, Some(&cmp), html.as_deref());
    if cmp.passed() {
        exit::PASSED
    } else {
        exit::FAILED
    }
}

fn baseline_save(run: &std::path::Path, to: &std::path::Path) -> i32 {
    match gauntlet::compare::baseline::save(run, to) {
        Ok(n) => {
            println!(
                "baseline: {} ({n} histograms) from {}",
                to.display(),
                run.display()
            );
            exit::PASSED
        }
        Err(e @ gauntlet::compare::CompareError::Write(_)) => {
            eprintln!("error: {e}");
            exit::ENVIRONMENT
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::INVALID
        }
    }
}

fn cleanup(reports: &std::path::Path) -> i32 {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ENVIRONMENT;
        }
    };
    match rt.block_on(gauntlet::chaos::cleanup(reports)) {
        Ok(report) => {
            print!("{report}");
            if report.is_clean() {
                exit::PASSED
            } else {
                exit::ENVIRONMENT
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::ENVIRONMENT
        }
    }
}
