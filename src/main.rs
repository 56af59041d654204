//! The `gauntlet` command: a thin shell over the library. It parses arguments, calls the
//! library, shows errors once, and maps the outcome to an exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use gauntlet::error::exit;

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
    /// No progress bar and no summary table; errors are still shown.
    #[arg(long, short)]
    quiet: bool,
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
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo(args),
        Command::Cleanup { reports } => cleanup(&reports),
    };
    ExitCode::from(code as u8)
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn validate(files: &[PathBuf]) -> i32 {
    let mut code = exit::PASSED;
    for f in files {
        match gauntlet::scenario::load(f) {
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
    let mut plan = match gauntlet::scenario::load(&args.file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return exit::INVALID;
        }
    };
    if let Some(seed) = args.seed {
        plan.seed = seed;
    }
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
            println!("report: {}", o.report_dir.display());
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
