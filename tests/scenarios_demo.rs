//! The product promise, end to end: each demo scenario under `scenarios/` PASSES against
//! the fixed demo stack and FAILS, on the criterion meant to catch it, with the demo
//! defect switched on (`GAUNTLET_DEMO_DEFECTS`). Runs the real binary:
//! `gauntlet run FILE --reports TMP --run-id X --quiet`.
//!
//! The scenarios use fixed ports, so they run one after the other, in one test.
//! Needs Debian's redis-server package.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct Case {
    file: &'static str,
    defect: &'static str,
    /// The criterion (as written in the scenario) the defect must fail.
    fails: &'static str,
}

const CASES: &[Case] = &[
    Case {
        file: "redis-crash.toml",
        defect: "redis-no-persistence",
        fails: "data_loss.keys == 0",
    },
    Case {
        file: "pipeline-stall.toml",
        defect: "no-failover",
        fails: "pipeline.freshness.max < 10s",
    },
    Case {
        file: "duplicate-pipeline.toml",
        defect: "no-single-instance",
        fails: "duplicates.records == 0",
    },
    Case {
        file: "ws-leak.toml",
        defect: "ws-leak",
        fails: "memory.api.peak < 128MiB",
    },
];

fn scenario(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(file)
}

fn run(file: &Path, reports: &Path, run_id: &str, defects: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
    c.arg("run")
        .arg(file)
        .arg("--reports")
        .arg(reports)
        .arg("--run-id")
        .arg(run_id)
        .arg("--quiet");
    match defects {
        Some(d) => c.env("GAUNTLET_DEMO_DEFECTS", d),
        None => c.env_remove("GAUNTLET_DEMO_DEFECTS"),
    };
    c.output().expect("run gauntlet")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// (criterion, failed, what junit says) for each test case of a run's junit.xml.
fn verdicts(report: &Path) -> Vec<(String, bool, String)> {
    let path = report.join("junit.xml");
    let xml =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    xml.split("<testcase ")
        .skip(1)
        .map(|case| {
            let name = case
                .split_once("name=\"")
                .and_then(|(_, r)| r.split_once('"'))
                .map(|(n, _)| unescape(n))
                .unwrap_or_default();
            let body = case.split("</testcase>").next().unwrap_or_default();
            let said = body
                .split_once("message=\"")
                .or_else(|| body.split_once("<system-out>"))
                .map(|(_, r)| {
                    unescape(r.split(['"', '<']).next().unwrap_or_default())
                        .trim()
                        .replace('\n', " / ")
                })
                .unwrap_or_default();
            (name, body.contains("<failure"), said)
        })
        .collect()
}

#[test]
fn demo_scenarios_pass_when_fixed_and_fail_with_their_defect() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let reports = tmp.path().join("reports");
    let mut problems = Vec::new();
    for case in CASES {
        let file = scenario(case.file);
        let stem = case.file.trim_end_matches(".toml");
        for defect in [None, Some(case.defect)] {
            let run_id = format!("{stem}-{}", defect.unwrap_or("fixed"));
            let t0 = Instant::now();
            let out = run(&file, &reports, &run_id, defect);
            let took = t0.elapsed();
            let v = verdicts(&reports.join(&run_id));
            eprintln!(
                "{} with {}: exit {:?} in {:.1}s; {}",
                case.file,
                defect.unwrap_or("no defect"),
                out.status.code(),
                took.as_secs_f64(),
                v.iter()
                    .map(|(n, f, s)| format!("[{}] {n}: {s}", if *f { "FAIL" } else { "pass" }))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            assert!(
                took < Duration::from_secs(120),
                "{run_id} took {took:?}\n{}",
                show(&out)
            );
            match defect {
                None => {
                    if out.status.code() != Some(0) || v.iter().any(|(_, f, _)| *f) {
                        problems.push(format!(
                            "{}: must PASS without defects; {v:?}\n{}",
                            case.file,
                            show(&out)
                        ));
                    }
                }
                Some(d) => {
                    let caught = v.iter().any(|(n, f, _)| n == case.fails && *f);
                    if out.status.code() != Some(1) || !caught {
                        problems.push(format!(
                            "{}: with {d} must exit 1 and FAIL `{}`; {v:?}\n{}",
                            case.file,
                            case.fails,
                            show(&out)
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn demo_scenarios_validate() {
    for case in CASES {
        let file = scenario(case.file);
        let plan = gauntlet::scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            plan.criteria.iter().any(|c| c.source == case.fails),
            "{}: no criterion `{}`",
            case.file,
            case.fails
        );
        assert!(!plan.scenario.faults.is_empty(), "{}", case.file);
    }
}
