//! A hand-built run for the report tests: a plan from a scenario text, a `Record` filled by
//! hand (requests, per-second windows with a gap, a fault that recovered and one that did
//! not, service events, probes, resources, metrics, notices), the grader's verdict, and
//! fixed run facts, so every output is deterministic.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::TimeZone;
use gauntlet::event::{FaultEvent, FaultState, Level, ServiceEvent, ServiceEventKind, Timed};
use gauntlet::grade::{self, Verdict};
use gauntlet::record::{MetricStats, ProbeStats, Record, RequestStats, ResourceStats, Window};
use gauntlet::report::{EndedBy, RunInfo};
use gauntlet::scenario::model::{FaultKind, LatencyBasis};
use gauntlet::scenario::{self, Plan};

pub const SCENARIO: &str = r#"
name = "checkout"
seed = 42
criteria = [
  "latency.p95 < 200ms",
  "latency.p99{name=\"create item\"} < 5ms",
  "errors.rate < 1%",
  "throughput.rps >= 10",
  "availability{service=\"api\"} >= 99%",
  "recovery.max < 5s",
  "memory.api.peak < 1GiB",
  "pipeline.freshness.max < 5m",
  "metric.rate{service=\"api\", name=\"http_requests_total\"} >= 100/s",
]

[target]
base_url = "http://127.0.0.1:18080"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
command = ["gauntlet", "demo", "api", "--port", "18080"]
health = { http = "http://127.0.0.1:18080/health" }

[load]
think_time = "100ms"
stages = [{ duration = "2s", users = 20 }, { duration = "4s", users = 20 }]

[[requests]]
name = "list items"
weight = 3
path = "/api/items"

[[requests]]
name = "create item"
method = "POST"
path = "/api/items"
"#;

pub fn plan() -> Plan {
    scenario::load_str(Path::new("scenarios/checkout.toml"), SCENARIO)
        .unwrap_or_else(|e| panic!("fixture scenario is invalid:\n{e}"))
}

fn add(s: &mut RequestStats, raw: u64, corrected: u64, status: u16, err: Option<&str>) {
    s.count += 1;
    s.raw.record(raw).unwrap();
    s.corrected.record(corrected).unwrap();
    *s.statuses.entry(status).or_default() += 1;
    if let Some(e) = err {
        s.errors += 1;
        match s.error_reasons.iter_mut().find(|(r, _)| r == e) {
            Some((_, n)) => *n += 1,
            None => s.error_reasons.push((e.to_string(), 1)),
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// 600 `list items` (1..=60ms raw, +2ms corrected) and 60 `create item` (4..6.95ms, 3 of
/// them failing with a 500) over 6s of load that started 2s into the run.
pub fn record() -> Record {
    let mut list = RequestStats::new("list items");
    let mut create = RequestStats::new("create item");
    let mut total = RequestStats::new("all");
    for i in 0..600u64 {
        let raw = 1_000 + (i % 60) * 1_000;
        add(&mut list, raw, raw + 2_000, 200, None);
        add(&mut total, raw, raw + 2_000, 200, None);
    }
    for i in 0..60u64 {
        let raw = 4_000 + i * 50;
        let err = (i % 20 == 0).then_some("status 500 (expected 2xx)");
        let status = if err.is_some() { 500 } else { 201 };
        add(&mut create, raw, raw, status, err);
        add(&mut total, raw, raw, status, err);
    }
    let windows = [
        (
            0u32, 10u32, 60u64, 0u64, 3_000u64, 9_000u64, 12_000u64, 15_000u64,
        ),
        (1, 20, 110, 1, 4_100, 11_500, 20_250, 31_000),
        (2, 20, 160, 1, 5_000, 40_000, 55_500, 61_000),
        // second 3: nothing recorded (the fault), filled in as a gap
        (4, 20, 170, 1, 4_000, 10_000, 14_000, 20_000),
        (5, 20, 160, 0, 3_900, 9_800, 13_000, 18_000),
    ]
    .map(
        |(second, users, requests, errors, p50_us, p95_us, p99_us, max_us)| Window {
            second,
            users,
            requests,
            errors,
            p50_us,
            p95_us,
            p99_us,
            max_us,
            raw_us: [p50_us, p95_us, p99_us, max_us],
            // The correction's added samples lift the tail.
            corrected_us: [p50_us, p95_us * 2, p99_us * 2, max_us],
        },
    )
    .to_vec();
    let ev = |at: f64, fault: usize, name: &str, kind, state| {
        Timed::new(
            secs(at),
            FaultEvent {
                fault,
                repetition: 0,
                name: name.into(),
                kind,
                target: "api".into(),
                state,
            },
        )
    };
    let mut faults = vec![
        ev(4.5, 0, "pause api", FaultKind::Pause, FaultState::Applied),
        ev(5.5, 0, "pause api", FaultKind::Pause, FaultState::Undone),
        ev(
            5.9,
            0,
            "pause api",
            FaultKind::Pause,
            FaultState::Recovered { recovery_s: 0.4 },
        ),
        ev(
            6.0,
            1,
            "leak sockets",
            FaultKind::LeakWebsockets,
            FaultState::Applied,
        ),
        ev(
            7.0,
            1,
            "leak sockets",
            FaultKind::LeakWebsockets,
            FaultState::Undone,
        ),
        ev(
            7.5,
            2,
            "kill worker",
            FaultKind::Kill,
            FaultState::Failed {
                reason: "service `worker` is not running".into(),
                fatal: false,
            },
        ),
    ];
    faults[5].event.target = "worker".into();
    let services = vec![
        Timed::new(
            secs(0.1),
            ServiceEvent {
                service: "api".into(),
                kind: ServiceEventKind::Started { pid: Some(4242) },
            },
        ),
        Timed::new(
            secs(1.2),
            ServiceEvent {
                service: "api".into(),
                kind: ServiceEventKind::Healthy,
            },
        ),
        Timed::new(
            secs(5.0),
            ServiceEvent {
                service: "api".into(),
                kind: ServiceEventKind::Unhealthy {
                    reason: "timeout after 2s".into(),
                },
            },
        ),
        Timed::new(
            secs(5.9),
            ServiceEvent {
                service: "api".into(),
                kind: ServiceEventKind::Healthy,
            },
        ),
        Timed::new(
            secs(8.3),
            ServiceEvent {
                service: "api".into(),
                kind: ServiceEventKind::Stopped,
            },
        ),
    ];
    let mut probes = BTreeMap::new();
    probes.insert(
        "api".into(),
        ProbeStats {
            ok: 398,
            total: 400,
            // Every 100 ms for 40 s, down for two probes (200 ms) at 5 s: 99.5 %.
            points: (0..400u32)
                .map(|i| (i * 100, !(50..52).contains(&i)))
                .collect(),
        },
    );
    let mut resources = BTreeMap::new();
    resources.insert(
        "api".into(),
        ResourceStats {
            samples: 12,
            cpu_avg_pct: 37.5,
            cpu_peak_pct: 88.25,
            mem_peak_bytes: 48 * 1024 * 1024,
            mem_last_bytes: 40 * 1024 * 1024,
            // 12 samples a second apart from 0.5 s: 36 MiB, +1 MiB each to 47 MiB.
            mem_series: (0..12u32)
                .map(|i| (500 + i * 1000, (36 + u64::from(i)) * 1024 * 1024))
                .collect(),
        },
    );
    let mut metrics = BTreeMap::new();
    metrics.insert(
        ("api".into(), "http_requests_total".into()),
        MetricStats {
            samples: 6,
            last: 660.0,
            min: 0.0,
            max: 660.0,
            sum: 1980.0,
            increase: 660.0,
            first_at: secs(2.0),
            last_at: secs(8.0),
        },
    );
    Record {
        load_started: Some(secs(2.0)),
        load_duration: secs(6.0),
        warmup: std::time::Duration::ZERO,
        latency_basis: LatencyBasis::Corrected,
        expected_interval_us: Some(100_000),
        requests: vec![list, create],
        total,
        windows,
        users_peak: 20,
        dropped: 0,
        faults,
        services,
        probes,
        resources,
        metrics,
        notices: vec![
            (
                secs(0.0),
                Level::Info,
                "open-files limit raised to 20000".into(),
            ),
            (
                secs(7.5),
                Level::Warn,
                "fault `kill worker` could not be applied; the run goes on".into(),
            ),
        ],
        interrupted: false,
        requests_folded: 0,
        events_shed: 0,
        users_died: 0,
        first_death: None,
        connections: {
            let mut handshake = gauntlet::record::new_histogram();
            for us in [90, 120, 150, 240, 800] {
                handshake.record(us).unwrap();
            }
            gauntlet::record::ConnectionStats {
                // The fixture's target is plain http: TCP connects only.
                count: 5,
                tls: 0,
                resumed: 0,
                h2: 0,
                handshake,
            }
        },
        flows: vec![],
        flow_total: gauntlet::record::RequestStats::new("all"),
        ws: Some({
            let mut t = gauntlet::event::WsTotals {
                connects: 40,
                connect_failures: 1,
                messages: 120,
                message_failures: 2,
                peak: 20,
                abnormal_closes: 1,
                ..Default::default()
            };
            for us in [1_200, 1_800, 2_500, 3_100, 9_000] {
                t.rtt.record(us).unwrap();
            }
            t.reason("connect: Connection refused".into());
            t.reason("no reply within 2s".into());
            t.reason("no reply within 2s".into());
            t
        }),
    }
}

pub fn info(ended_by: EndedBy, exit_code: i32) -> RunInfo {
    let started = chrono::Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 7).unwrap();
    RunInfo {
        run_id: "20250304T050607.000Z-checkout".into(),
        scenario: "checkout".into(),
        file: "scenarios/checkout.toml".into(),
        seed: 42,
        started_at: started,
        ended_at: started + chrono::Duration::milliseconds(9_250),
        ended_by,
        exit_code,
        gauntlet_version: "0.0.0-test".into(),
    }
}

/// The whole fixture: plan, record, verdict, run facts (completed; exit 1 since some
/// criteria fail).
pub fn run() -> (Plan, RunInfo, Record, Verdict) {
    let plan = plan();
    let record = record();
    let verdict = grade::grade(&plan, &record);
    (plan, info(EndedBy::Completed, 1), record, verdict)
}

/// A run that never got to load: no requests, no windows, interrupted.
pub fn empty_run() -> (Plan, RunInfo, Record, Verdict) {
    let plan = plan();
    let mut record = record();
    record.load_started = None;
    record.load_duration = Duration::ZERO;
    record.requests = vec![
        RequestStats::new("list items"),
        RequestStats::new("create item"),
    ];
    record.total = RequestStats::new("all");
    record.windows.clear();
    record.users_peak = 0;
    record.expected_interval_us = None;
    record.faults.clear();
    record.probes.clear();
    record.resources.clear();
    record.interrupted = true;
    let verdict = grade::grade(&plan, &record);
    (plan, info(EndedBy::Interrupted, 130), record, verdict)
}
