//! The product promise, end to end: each demo scenario under `scenarios/` PASSES against
//! the fixed demo stack and FAILS, on the criterion meant to catch it, with the demo
//! defect switched on (`GAUNTLET_DEMO_DEFECTS`). Runs the real binary:
//! `gauntlet run FILE --reports TMP --run-id X --quiet`.
//!
//! Each scenario and way is its own test, so they run in parallel: the test runs a copy
//! of the scenario whose ports (the 184xx ones the demo scenarios use) are free ports
//! picked by the test, and whose data folder is the test's own.
//! Needs Debian's redis-server package.

#[path = "common/scenarios.rs"]
mod scenarios;

use scenarios::*;
use std::process::Command;
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
        fails: "memory.api.growth < 60MiB/min",
    },
    Case {
        file: "pipeline-validation.toml",
        defect: "corrupt-records",
        fails: "validation.rate > 95%",
    },
    Case {
        file: "websocket-chat.toml",
        defect: "ws-leak",
        fails: "memory.api.retained < 48MiB",
    },
];

/// One scenario, one way: without defects it must PASS; with its defect it must exit 1
/// and FAIL the criterion meant to catch it.
fn check(file: &str, with_defect: bool) {
    let case = CASES
        .iter()
        .find(|c| c.file == file)
        .expect("a case of CASES");
    let tmp = tempfile::tempdir().expect("tempdir");
    let reports = tmp.path().join("reports");
    let copy = with_own_ports(&scenario(case.file), tmp.path());
    let defect = with_defect.then_some(case.defect);
    let stem = case.file.trim_end_matches(".toml");
    let run_id = format!("{stem}-{}", defect.unwrap_or("fixed"));
    let t0 = Instant::now();
    let out = run(&copy, &reports, &run_id, defect);
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
        None => assert!(
            out.status.code() == Some(0) && !v.iter().any(|(_, f, _)| *f),
            "{}: must PASS without defects; {v:?}\n{}",
            case.file,
            show(&out)
        ),
        Some(d) => assert!(
            out.status.code() == Some(1) && v.iter().any(|(n, f, _)| n == case.fails && *f),
            "{}: with {d} must exit 1 and FAIL `{}`; {v:?}\n{}",
            case.file,
            case.fails,
            show(&out)
        ),
    }
}

#[test]
fn redis_crash_passes_when_fixed() {
    check("redis-crash.toml", false);
}

#[test]
fn redis_crash_fails_with_its_defect() {
    check("redis-crash.toml", true);
}

#[test]
fn pipeline_stall_passes_when_fixed() {
    check("pipeline-stall.toml", false);
}

#[test]
fn pipeline_stall_fails_with_its_defect() {
    check("pipeline-stall.toml", true);
}

#[test]
fn duplicate_pipeline_passes_when_fixed() {
    check("duplicate-pipeline.toml", false);
}

#[test]
fn duplicate_pipeline_fails_with_its_defect() {
    check("duplicate-pipeline.toml", true);
}

#[test]
fn ws_leak_passes_when_fixed() {
    check("ws-leak.toml", false);
}

#[test]
fn ws_leak_fails_with_its_defect() {
    check("ws-leak.toml", true);
}

#[test]
fn pipeline_validation_passes_when_fixed() {
    check("pipeline-validation.toml", false);
}

#[test]
fn pipeline_validation_fails_with_its_defect() {
    check("pipeline-validation.toml", true);
}

#[test]
fn websocket_chat_passes_when_fixed() {
    check("websocket-chat.toml", false);
}

#[test]
fn websocket_chat_fails_with_its_defect() {
    check("websocket-chat.toml", true);
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
        // Each provokes something: a fault, or users of its own kind (WebSocket).
        assert!(
            !plan.faults.is_empty() || !plan.ws.is_empty(),
            "{}",
            case.file
        );
    }
}

/// `capacity-5000.toml` holds 5000 users: its search, cut to two levels (2500 and 5000
/// users) to keep the test short, reaches its `require = 5000` and exits 0.
#[test]
fn capacity_5000_reaches_5000_users() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let reports = tmp.path().join("reports");
    let copy = with_own_ports(&scenario("capacity-5000.toml"), tmp.path());
    let plan = gauntlet::scenario::load(&copy).unwrap_or_else(|e| panic!("{e}"));
    let cap = plan.capacity.as_ref().expect("a [capacity] table");
    assert_eq!((cap.to, cap.require), (5000.0, 5000.0));
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .arg("capacity")
        .arg(&copy)
        .args(["--reports"])
        .arg(&reports)
        .args(["--run-id", "c5000", "--quiet"])
        .args(["--set", "capacity.from=2500", "--set", "capacity.step=2500"])
        .env_remove("GAUNTLET_DEMO_DEFECTS")
        .output()
        .expect("run gauntlet capacity");
    let took = t0.elapsed();
    let json =
        std::fs::read_to_string(reports.join("c5000").join("capacity.json")).unwrap_or_default();
    eprintln!(
        "capacity-5000.toml: exit {:?} in {:.1}s",
        out.status.code(),
        took.as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(0), "{json}\n{}", show(&out));
    assert!(json.contains("\"knee\": 5000.0"), "{json}");
    assert!(took < Duration::from_secs(120), "took {took:?}");
}
