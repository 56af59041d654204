//! `junit.xml`: one test suite (the scenario), one test case per criterion, named by its
//! text. A failed criterion is a `<failure>` whose message is "measured X, threshold OP Y"
//! and its detail. A run that was interrupted adds a failed test case `run completed`; a
//! run that ended with an environment error adds an errored one. Failures that are not a
//! criterion's (no requests ran) add a failed test case `run produced requests`. The run's
//! facts are the suite's properties.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::grade::Verdict;
use crate::record::Record;
use crate::report::text;
use crate::report::{EndedBy, RunInfo};

/// A test case that is not a criterion's (the gate adds one per compared figure).
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    /// The failure message; None when it passed.
    pub failed: Option<String>,
    pub out: String,
}

impl Case {
    /// As a JUnit test case: a failure is a regression.
    pub fn test_case(&self, classname: &str) -> TestCase {
        let status = match &self.failed {
            None => TestCaseStatus::success(),
            Some(m) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(m.as_str()).set_type("regression");
                s
            }
        };
        let mut tc = TestCase::new(self.name.as_str(), status);
        tc.set_classname(classname);
        tc.set_system_out(self.out.as_str());
        tc
    }
}

/// The JUnit XML text.
pub fn to_xml(info: &RunInfo, record: &Record, verdict: &Verdict) -> Result<String, String> {
    to_xml_with(info, record, verdict, &[])
}

/// The JUnit XML text with `extra` test cases after the criteria's.
pub fn to_xml_with(
    info: &RunInfo,
    record: &Record,
    verdict: &Verdict,
    extra: &[Case],
) -> Result<String, String> {
    let mut suite = TestSuite::new(info.scenario.as_str());
    let started: chrono::DateTime<chrono::FixedOffset> = info.started_at.into();
    let elapsed = (info.ended_at - info.started_at)
        .to_std()
        .unwrap_or_default();
    suite.set_timestamp(started).set_time(elapsed);
    let classname = format!("gauntlet.{}", info.scenario);
    for (k, v) in [
        ("run_id", info.run_id.clone()),
        ("scenario_file", info.file.display().to_string()),
        ("seed", info.seed.to_string()),
        ("started_at", info.started_at.to_rfc3339()),
        ("ended_at", info.ended_at.to_rfc3339()),
        ("ended_by", ended_by(&info.ended_by)),
        ("exit_code", info.exit_code.to_string()),
        (
            "latency_basis",
            text::basis_name(record.latency_basis).into(),
        ),
        ("requests", record.total.count.to_string()),
        ("errors", record.total.errors.to_string()),
        (
            "load_duration_s",
            format!("{:.3}", record.load_duration.as_secs_f64()),
        ),
        ("users_peak", record.users_peak.to_string()),
        ("gauntlet_version", info.gauntlet_version.clone()),
    ] {
        suite.add_property((k, v.as_str()));
    }

    for c in &verdict.criteria {
        let status = if c.passed {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(text::criterion_message(c))
                .set_type("criterion failed");
            s
        };
        let mut tc = TestCase::new(c.source.as_str(), status);
        tc.set_classname(classname.as_str());
        let measured = c
            .measured
            .map(|q| q.to_string())
            .unwrap_or_else(|| "nothing".into());
        let mut out = format!("measured {measured}, threshold {} {}", c.op, c.threshold);
        if let Some(d) = &c.detail {
            out.push_str(&format!("\n{d}"));
        }
        tc.set_system_out(out);
        suite.add_test_case(tc);
    }

    for c in extra {
        suite.add_test_case(c.test_case(&classname));
    }

    if !verdict.problems.is_empty() {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_message(verdict.problems.join("; "))
            .set_type("run failed");
        let mut tc = TestCase::new("run produced requests", s);
        tc.set_classname(classname.as_str());
        suite.add_test_case(tc);
    }

    match &info.ended_by {
        EndedBy::Completed => {}
        EndedBy::Interrupted => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message("the run was interrupted (SIGINT/SIGTERM); faults were undone and this report is partial")
                .set_type("interrupted");
            let mut tc = TestCase::new("run completed", s);
            tc.set_classname(classname.as_str());
            suite.add_test_case(tc);
        }
        EndedBy::Error(reason) => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(format!("the run ended with an error: {reason}"))
                .set_type("environment error");
            let mut tc = TestCase::new("run completed", s);
            tc.set_classname(classname.as_str());
            suite.add_test_case(tc);
        }
    }

    let mut report = Report::new("gauntlet");
    report.set_timestamp(started).set_time(elapsed);
    report.add_test_suite(suite);
    report.to_string().map_err(|e| e.to_string())
}

fn ended_by(e: &EndedBy) -> String {
    match e {
        EndedBy::Completed => "completed".into(),
        EndedBy::Interrupted => "interrupted".into(),
        EndedBy::Error(r) => format!("error: {r}"),
    }
}
