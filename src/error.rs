//! The library's error type. Shown once, by the binary; each maps to an exit code.

use crate::chaos::ChaosError;
use crate::load::LoadError;
use crate::report::ReportErrors;
use crate::scenario::ScenarioErrors;

/// Exit codes, stable and documented in the README.
pub mod exit {
    /// Every criterion passed.
    pub const PASSED: i32 = 0;
    /// The run completed and at least one criterion failed.
    pub const FAILED: i32 = 1;
    /// The scenario file or the command line is invalid; nothing was started.
    pub const INVALID: i32 = 2;
    /// The environment failed (Docker unreachable, a service did not start, a fault that
    /// must apply could not be applied).
    pub const ENVIRONMENT: i32 = 3;
    /// Interrupted (SIGINT/SIGTERM); faults were undone and a partial report written.
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Scenario(#[from] ScenarioErrors),
    /// Load would go somewhere the scenario does not allow.
    #[error("refused: {0}")]
    Refused(String),
    /// `--run-id` is unsafe or already used.
    #[error("{0}")]
    RunId(String),
    #[error(transparent)]
    Service(#[from] ChaosError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Report(#[from] ReportErrors),
    /// A resource limit (open files) is too low for the scenario; nothing was started.
    #[error(transparent)]
    Limit(#[from] crate::limits::LimitError),
    #[error("{0}")]
    Environment(String),
    /// `gauntlet report`: the run folder's saved data cannot be read.
    #[error(transparent)]
    Saved(#[from] crate::report::saved::SavedError),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Scenario(_) | Error::Refused(_) | Error::RunId(_) | Error::Saved(_) => {
                exit::INVALID
            }
            Error::Service(_)
            | Error::Load(_)
            | Error::Report(_)
            | Error::Limit(_)
            | Error::Environment(_) => exit::ENVIRONMENT,
        }
    }
}
