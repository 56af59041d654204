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
    /// Diagnostics on stderr: -v what gauntlet does, -vv in detail (RUST_LOG, e.g.
    /// RUST_LOG=gauntlet=trace, overrides both).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
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
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Print the JSON Schema of scenario files (for editors: `#:schema` in a TOML file).
    Schema,
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
    /// Write every report of a finished run again (summary.json, timeseries.csv,
    /// junit.xml, events.jsonl, report.html, comparison.json, the terminal summary) from
    /// the data its folder saved; graded again. Exit code as the run's.
    Report {
        /// The run folder (e.g. reports/latest).
        run: PathBuf,
        /// No summary table; errors are still shown.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print a shell completion script for SHELL (e.g. `gauntlet completions bash >
    /// /etc/bash_completion.d/gauntlet`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; e.g. `gauntlet man > gauntlet.1`).
    Man,
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
    #[command(flatten)]
    env: EnvArgs,
    /// No progress bar and no summary table; errors are still shown.
    #[arg(long, short)]
    quiet: bool,
    /// Compare the run with this baseline (a run folder, its summary.json or a baseline
    /// file): a regression beyond tolerance and noise makes the exit 1.
    #[arg(long, value_name = "DIR|FILE")]
    baseline: Option<PathBuf>,
    /// A tolerance over the scenario's [gate] table, e.g. latency.p99=20% or
    /// errors.rate=0.1pp (repeatable).
    #[arg(long = "tolerance", value_name = "KEY=VALUE", value_parser = tolerance_arg_kept)]
    tolerances: Vec<(String, Tolerance, String)>,
    /// Serve live metrics (Prometheus text: requests, latency histogram, users, faults in
    /// force) on this address while the run goes, e.g. 127.0.0.1:9464. Any address given
    /// is used: a non-loopback one exposes the metrics to the network.
    #[arg(long, value_name = "IP:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,
}

/// What makes one scenario file fit one environment.
#[derive(clap::Args, Debug)]
struct EnvArgs {
    /// Set a scenario value, e.g. target.base_url=https://staging.example.com or
    /// load.stages[1].users=5000 (repeatable; the value is read as TOML, else as text);
    /// vars.NAME=VALUE sets a variable. Wins over everything else.
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = set_arg)]
    sets: Vec<(String, String)>,
    /// One environment's overrides: a TOML file of key paths = values and a [vars]
    /// table. `${VAR}` comes from --set vars.VAR, the environment, this file's [vars],
    /// the scenario's [vars], then `${VAR:-default}`.
    #[arg(long = "vars", value_name = "FILE")]
    vars: Option<PathBuf>,
    /// Multiply the timeline by F (0 < F <= 1000): the scenario's duration and cooldown,
    /// every stage's duration, every fault's at, duration, every and restart_after. Think
    /// times, timeouts and probe intervals keep their values.
    #[arg(long = "scale-time", value_name = "F", value_parser = scale_arg)]
    scale_time: Option<f64>,
}

impl EnvArgs {
    fn overrides(&self) -> gauntlet::scenario::Overrides {
        gauntlet::scenario::Overrides {
            sets: self.sets.clone(),
            vars_file: self.vars.clone(),
            scale_time: self.scale_time,
        }
    }
}

fn scale_arg(s: &str) -> Result<f64, String> {
    gauntlet::scenario::parse_scale_time(s)
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
    /// `--set` (e.g. capacity.to=400), `--vars`, `--scale-time`, as for `run`.
    #[command(flatten)]
    env: EnvArgs,
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

/// A tolerance and its text as given (saved with the run).
fn tolerance_arg_kept(s: &str) -> Result<(String, Tolerance, String), String> {
    gauntlet::compare::parse_tolerance_arg(s).map(|(k, t)| (k, t, s.to_string()))
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
    diagnostics(cli.verbose);
    let code = match cli.command {
        Command::Validate { files, env } => validate(&files, &env.overrides()),
        Command::Schema => {
            print!("{}", gauntlet::scenario::schema::json());
            exit::PASSED
        }
        Command::Run(args) => run(args),
        Command::Capacity(args) => capacity(args),
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo(args),
        Command::Cleanup { reports } => cleanup(&reports),
        Command::Compare(args) => compare(args),
        Command::Baseline(BaselineCommand::Save { run, to }) => baseline_save(&run, &to),
        Command::Report { run, quiet } => report(&run, quiet),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "gauntlet", &mut std::io::stdout());
            exit::PASSED
        }
        Command::Man => man(),
    };
    ExitCode::from(code as u8)
}

/// The tracing subscriber, on stderr: errors only by default (a run's warnings are in its
/// summary's notices; printed as they happen they would tear the progress bar), `-v`
/// warnings and gauntlet's info, `-vv` debug of gauntlet's own events; `RUST_LOG` wins.
fn diagnostics(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "error",
        1 => "warn,gauntlet=info",
        _ => "info,gauntlet=debug",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v).unwrap_or_else(|_| EnvFilter::new(default)),
        _ => EnvFilter::new(default),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .with_target(true)
        .try_init();
}

/// `gauntlet man`: the manual page on stdout.
fn man() -> i32 {
    let cmd = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
        eprintln!("error: cannot render the manual page: {e}");
        return exit::ENVIRONMENT;
    }
    use std::io::Write;
    if let Err(e) = std::io::stdout().write_all(&out) {
        eprintln!("error: cannot write the manual page: {e}");
        return exit::ENVIRONMENT;
    }
    exit::PASSED
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

fn validate(files: &[PathBuf], over: &gauntlet::scenario::Overrides) -> i32 {
    let mut code = exit::PASSED;
    for f in files {
        match gauntlet::scenario::load_with(f, over) {
            Ok(plan) => println!(
                "{}: ok ({}{}, {}, {})",
                f.display(),
                count(plan.requests.len(), "request", "requests"),
                if plan.ws.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", {}",
                        count(plan.ws.len(), "[[ws]] entry", "[[ws]] entries")
                    )
                },
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
    let over = args.env.overrides();
    let (mut plan, scenario_text) = match gauntlet::scenario::load_with_text(&args.file, &over) {
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
        tolerance_args: args.tolerances.iter().map(|t| t.2.clone()).collect(),
        tolerances: args
            .tolerances
            .into_iter()
            .map(|(k, t, _)| (k, t))
            .collect(),
        scenario_text: Some(scenario_text),
        metrics_listen: args.metrics_listen,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ENVIRONMENT;
        }
    };
    // Secret values are masked in everything shown from here on.
    let secrets = plan.secrets.clone();
    let outcome = rt.block_on(gauntlet::run::execute(plan, opts, |s| {
        if let Some(p) = &progress {
            p.update(&s);
        }
    }));
    if let Some(p) = &progress {
        p.finish();
    }
    match outcome {
        Ok(o) => show_outcome(&o, args.quiet),
        Err(e) => {
            eprintln!("error: {}", secrets.mask(&e.to_string()));
            e.exit_code()
        }
    }
}

/// The terminal summary, the gate, CI conventions and the errors of a run (or of a
/// rebuilt one); its exit code.
fn show_outcome(o: &gauntlet::run::RunOutcome, quiet: bool) -> i32 {
    // Secret values are masked in everything shown.
    let secrets = &o.plan.secrets;
    if !quiet {
        // Colour only for a person at a terminal, and never against NO_COLOR.
        let color = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let summary =
            gauntlet::report::terminal_summary(&o.plan, &o.info, &o.record, &o.verdict, color);
        println!("{}", secrets.mask(&summary));
    }
    if let Some(c) = &o.comparison {
        if !quiet {
            println!("{}", secrets.mask(&gauntlet::compare::render(c)));
        } else if !c.passed() {
            println!(
                "gate: {} regression(s) against {}",
                c.count(gauntlet::compare::Verdict::Regression),
                secrets.mask(&c.baseline)
            );
        }
    }
    println!("report: {}", o.report_dir.display());
    let summary = gauntlet::report::summary::build(&o.plan, &o.info, &o.record, &o.verdict);
    ci_conventions(
        &summary,
        o.comparison.as_ref(),
        Some(&o.report_dir.join("report.html")),
        secrets,
    );
    // The reason for an environment failure is shown even with --quiet.
    if let gauntlet::report::EndedBy::Error(reason) = &o.info.ended_by {
        eprintln!("error: {}", secrets.mask(reason));
    }
    if let Some(e) = &o.report_errors {
        eprintln!("error: {}", secrets.mask(&e.to_string()));
    }
    o.exit_code
}

/// `gauntlet report RUN_DIR`.
fn report(dir: &std::path::Path, quiet: bool) -> i32 {
    match gauntlet::run::rebuild(dir) {
        Ok(o) => show_outcome(&o, quiet),
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn capacity(args: CapacityArgs) -> i32 {
    let over = args.env.overrides();
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
    secrets: &gauntlet::secrets::Secrets,
) {
    use std::io::Write;
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let md = secrets.mask(&gauntlet::compare::github::step_summary(
            summary,
            comparison,
            report_html,
        ));
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
            println!("{}", secrets.mask(&line));
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
    ci_conventions(
        &cur.summary,
        Some(&cmp),
        html.as_deref(),
        &Default::default(),
    );
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
