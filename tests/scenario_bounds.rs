//! Extreme numbers in every numeric field (property tests, proptest): validation returns
//! a plan or positioned errors, never panics, and a plan's schedule is finite and bounded.
//! Plus the bound on `[[requests]]` and the cost of validating a large file.

use std::path::Path;
use std::time::{Duration, Instant};

use gauntlet::scenario::bounds::{MAX_DURATION, MAX_REQUESTS};
use gauntlet::scenario::{load_bytes, load_str, Plan, ScenarioErrors};
use proptest::prelude::*;

/// A duration as text: from nothing to far past any bound, in any unit.
fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0s".to_string()),
        Just("1ns".to_string()),
        Just("7d".to_string()),
        Just("604801s".to_string()),
        Just("18446744073709551615s".to_string()),
        Just("18446744073709551615d".to_string()),
        (0u64..=120, prop::sample::select(vec!["ms", "s", "m"]))
            .prop_map(|(n, u)| format!("{n}{u}")),
        (
            any::<u64>(),
            prop::sample::select(vec!["ns", "us", "ms", "s", "m", "h", "d"])
        )
            .prop_map(|(n, u)| format!("{n}{u}")),
    ]
}

/// A whole number as TOML: small, at the edges of u32/u64, or negative.
fn count() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..=10).prop_map(|n| n.to_string()),
        Just("4294967295".to_string()),
        Just("4294967296".to_string()),
        Just("9223372036854775807".to_string()),
        Just("-1".to_string()),
        any::<u32>().prop_map(|n| n.to_string()),
    ]
}

/// A float as TOML, special values included.
fn float() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..=1000).prop_map(|n| n.to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("1e308".to_string()),
        Just("5e-324".to_string()),
        Just("-0.0".to_string()),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| format!("{x:e}")),
    ]
}

/// A size: bytes, or a float of a unit.
fn size() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| format!("\"{n}B\"")),
        (float(), prop::sample::select(vec!["KiB", "GiB", "TB"]))
            .prop_map(|(f, u)| format!("\"{f}{u}\"")),
        Just("\"0B\"".to_string()),
    ]
}

/// A criterion threshold: digits, possibly hundreds of them.
fn threshold() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..=1000).prop_map(|n| n.to_string()),
        "[1-9][0-9]{15,400}",
        "[0-9]{1,20}\\.[0-9]{1,20}",
    ]
}

#[derive(Debug, Clone)]
struct Numbers {
    d: Vec<String>,
    c: Vec<String>,
    f: Vec<String>,
    sizes: Vec<String>,
    thresholds: Vec<String>,
    ints: (i64, i64),
    open: bool,
    capacity: bool,
}

fn numbers() -> impl Strategy<Value = Numbers> {
    (
        prop::collection::vec(duration(), 27),
        prop::collection::vec(count(), 12),
        prop::collection::vec(float(), 8),
        prop::collection::vec(size(), 2),
        prop::collection::vec(threshold(), 4),
        (any::<i64>(), any::<i64>()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(d, c, f, sizes, thresholds, ints, open, capacity)| Numbers {
                d,
                c,
                f,
                sizes,
                thresholds,
                ints,
                open,
                capacity,
            },
        )
}

/// A scenario using every numeric field, with `n`'s values.
fn scenario(n: &Numbers) -> String {
    let (d, c, f, t) = (&n.d, &n.c, &n.f, &n.thresholds);
    let load = if n.open {
        format!(
            "model = \"open\"\nstart_rate = {}\nmax_in_flight = {}\nstages = [{{ duration = \"{}\", rate = {} }}, {{ duration = \"{}\", rate = {} }}]",
            f[0], c[0], d[0], f[1], d[1], f[2]
        )
    } else {
        format!(
            "think_time = {{ min = \"{}\", max = \"{}\" }}\nconnections = \"shared\"\npool_size = {}\nstages = [{{ duration = \"{}\", users = {} }}, {{ duration = \"{}\", users = {} }}]",
            d[2], d[3], c[0], d[0], c[1], d[1], c[2]
        )
    };
    // WebSocket users exist in the closed model only.
    let ws = if n.open {
        String::new()
    } else {
        format!(
            "[[ws]]\nname = \"chat\"\nurl = \"ws://127.0.0.1:18080/ws\"\nweight = {}\nhold = \"{}\"\nping_interval = \"{}\"\nmessages = [{{ send = \"hi\", expect = {{ contains = \"hi\" }}, timeout = \"{}\" }}]\n",
            c[9], d[24], d[25], d[26]
        )
    };
    let (lo, hi) = (n.ints.0.min(n.ints.1), n.ints.0.max(n.ints.1));
    let capacity = if n.capacity {
        format!(
            "\n[capacity]\nfrom = {}\nto = {}\nstep = {}\nresolution = {}\nrequire = {}\nstop_error_rate = {}\nhold = \"{}\"\nwarmup = \"{}\"\n",
            f[7], f[0], f[1], f[2], f[3], f[4], d[2], d[3]
        )
    } else {
        String::new()
    };
    let text = format!(
        r#"name = "extreme"
duration = "{d4}"
criteria = ["latency.p95 < {t0}ms", "requests.count > {t1}", "memory.api.peak < {t2}GiB", "throughput.rps >= {t3}"]

[target]
base_url = "http://127.0.0.1:18080"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
command = ["gauntlet", "demo", "api"]
health = {{ http = "http://127.0.0.1:18080/health", interval = "{d5}", timeout = "{d6}", startup = "{d7}" }}
restart = {{ policy = "always", max = {c3}, delay = "{d8}" }}
proxy = {{ listen = "127.0.0.1:18081", upstream = "127.0.0.1:18080" }}
metrics = {{ url = "http://127.0.0.1:18080/metrics", interval = "{d9}", timeout = "{d10}" }}

[load]
timeout = "{d11}"
{load}

[[requests]]
name = "get"
weight = {c4}
follow_redirects = {c9}
path = "/{{{{rand.int({lo},{hi})}}}}/{{{{rand.float({f3},{f4})}}}}"

[[flows]]
name = "flow"
weight = {c10}
steps = ["get", "get"]
{ws}

[[faults]]
kind = "cpu"
target = "api"
at = "{d12}"
duration = "{d13}"
every = "{d14}"
times = {c5}
workers = {c6}

[[faults]]
kind = "network"
target = "api"
at = "{d15}"
duration = "{d16}"
latency = "{d17}"
jitter = "{d18}"
drop = {f5}
bandwidth = {s0}

[[faults]]
kind = "leak_websockets"
target = "api"
at = "{d19}"
duration = "{d20}"
url = "ws://127.0.0.1:18080/ws"
connections = {c7}
rate = {f6}

[[faults]]
kind = "memory"
target = "api"
at = "{d21}"
duration = "{d22}"
size = {s1}

[[faults]]
kind = "stop"
target = "api"
at = "{d23}"
restart_after = "{d0}"

[canary]
redis = "redis://127.0.0.1:6379"
keys = {c8}
timeout = "{d1}"
"#,
        d4 = d[4],
        d5 = d[5],
        d6 = d[6],
        d7 = d[7],
        d8 = d[8],
        d9 = d[9],
        d10 = d[10],
        d11 = d[11],
        d12 = d[12],
        d13 = d[13],
        d14 = d[14],
        d15 = d[15],
        d16 = d[16],
        d17 = d[17],
        d18 = d[18],
        d19 = d[19],
        d20 = d[20],
        d21 = d[21],
        d22 = d[22],
        d23 = d[23],
        d0 = d[0],
        d1 = d[1],
        t0 = t[0],
        t1 = t[1],
        t2 = t[2],
        t3 = t[3],
        c3 = c[3],
        c4 = c[4],
        c5 = c[5],
        c6 = c[6],
        c7 = c[7],
        c8 = c[8],
        c9 = c[9],
        c10 = c[10],
        f3 = f[3],
        f4 = f[4],
        f5 = f[5],
        f6 = f[6],
        s0 = n.sizes[0],
        s1 = n.sizes[1],
    );
    text + &capacity
}

/// The plan's schedule is finite and within the documented bounds.
fn assert_bounded(plan: &Plan) {
    if let Some(c) = &plan.capacity {
        // Every level's run, faults included, fits its own cap; the search is finite.
        for f in &plan.faults {
            let every = f.common().every.map_or(Duration::ZERO, |e| e.as_duration());
            let end = f.common().at.as_duration()
                + every * (f.common().times.unwrap_or(1).max(1) - 1)
                + f.duration().map_or(Duration::ZERO, |d| d.as_duration());
            assert!(end <= c.level_deadline(), "{f:?}");
        }
        assert!(c.from > 0.0 && c.to > c.from && c.step > 0.0 && c.resolution > 0.0);
        let steps = ((c.to - c.from) / c.step).ceil() + (c.step / c.resolution).log2().ceil();
        assert!(steps <= 1000.0, "{c:?}");
    }
    let cap = MAX_DURATION + Duration::from_secs(30);
    assert!(
        plan.load_duration <= MAX_DURATION,
        "{:?}",
        plan.load_duration
    );
    assert!(plan.deadline <= cap, "{:?}", plan.deadline);
    for f in &plan.faults {
        let c = f.common();
        let every = c.every.map_or(Duration::ZERO, |e| e.as_duration());
        let end = c.at.as_duration()
            + every * (c.times.unwrap_or(1).max(1) - 1)
            + f.duration().map_or(Duration::ZERO, |d| d.as_duration());
        assert!(end <= plan.deadline, "{f:?}");
    }
}

fn assert_positioned(e: &ScenarioErrors) {
    assert!(!e.0.is_empty());
    for d in &e.0 {
        assert!(d.line > 0 && d.column > 0, "{d:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn extreme_numbers_are_refused_with_a_place_or_bounded(n in numbers()) {
        let src = scenario(&n);
        match load_str(Path::new("extreme.toml"), &src) {
            Ok(plan) => assert_bounded(&plan),
            Err(e) => assert_positioned(&e),
        }
    }

    #[test]
    fn any_bytes_give_a_plan_or_positioned_errors(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        match load_bytes(Path::new("bytes.toml"), &bytes) {
            Ok(plan) => assert_bounded(&plan),
            Err(e) => assert_positioned(&e),
        }
    }
}

/// Values every field accepts.
fn sane() -> Numbers {
    Numbers {
        d: (0..27)
            .map(|i| match i {
                0 | 1 => "10s",
                2 => "10ms",
                3 => "20ms",
                4 => "1m",
                12 | 15 | 19 | 21 | 23 => "1s",
                14 => "5s",
                _ => "2s",
            })
            .map(String::from)
            .collect(),
        c: vec!["3".to_string(); 12],
        f: ["5", "10", "0", "0", "1", "10", "50", "1"]
            .map(String::from)
            .to_vec(),
        sizes: vec!["\"64KiB\"".into(), "\"1MiB\"".into()],
        thresholds: vec!["200".into(), "0".into(), "2".into(), "1".into()],
        ints: (1, 9),
        open: false,
        capacity: false,
    }
}

/// One field at a time takes an extreme value, the others stay sane: each field's bound
/// is met from both sides, and many cases reach a plan (counted: some must).
#[test]
fn each_field_alone_at_its_extremes() {
    use proptest::test_runner::{Config, TestRunner};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let one = prop_oneof![
        (0usize..27, duration()).prop_map(|(k, v)| (0, k, v)),
        (0usize..12, count()).prop_map(|(k, v)| (1, k, v)),
        (0usize..8, float()).prop_map(|(k, v)| (2, k, v)),
        (0usize..2, size()).prop_map(|(k, v)| (3, k, v)),
        (0usize..4, threshold()).prop_map(|(k, v)| (4, k, v)),
    ];
    let strategy = (one, any::<bool>(), any::<(i64, i64)>(), any::<bool>());
    let oks = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 600,
        ..Config::default()
    });
    runner
        .run(&strategy, |((field, k, v), open, ints, use_ints)| {
            let mut n = sane();
            n.open = open;
            if use_ints {
                n.ints = ints;
            }
            match field {
                0 => n.d[k] = v,
                1 => n.c[k] = v,
                2 => n.f[k] = v,
                3 => n.sizes[k] = v,
                _ => n.thresholds[k] = v,
            }
            match load_str(Path::new("one.toml"), &scenario(&n)) {
                Ok(plan) => {
                    oks.fetch_add(1, Ordering::Relaxed);
                    assert_bounded(&plan);
                }
                Err(e) => assert_positioned(&e),
            }
            Ok(())
        })
        .unwrap();
    assert!(oks.load(Ordering::Relaxed) > 50, "{oks:?} plans");
}

/// The sane values of the generators do validate: the properties reach the plan.
#[test]
fn the_generated_scenario_validates_with_sane_numbers() {
    let n = sane();
    if let Err(e) = load_str(Path::new("sane.toml"), &scenario(&n)) {
        panic!("{e}");
    }
    let open = Numbers { open: true, ..n };
    if let Err(e) = load_str(Path::new("sane.toml"), &scenario(&open)) {
        panic!("{e}");
    }
}

fn with_requests(n: usize, extra: &str) -> String {
    let mut s = String::from(
        "name = \"many\"\n[target]\nbase_url = \"http://127.0.0.1:1\"\nallow_hosts = [\"127.0.0.1\"]\n[load]\nstages = [{ duration = \"1s\", users = 1 }]\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            "[[requests]]\nname = \"r{i}\"\npath = \"/{i}\"{extra}\n"
        ));
    }
    s
}

#[test]
fn requests_are_bounded_and_the_bound_is_reported_at_its_line() {
    assert!(load_str(Path::new("t.toml"), &with_requests(MAX_REQUESTS, "")).is_ok());
    let e = load_str(Path::new("t.toml"), &with_requests(MAX_REQUESTS + 1, "")).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    let d = &e.0[0];
    assert_eq!(d.key, format!("requests[{MAX_REQUESTS}]"));
    assert!(d.message.contains("at most 1000 [[requests]]"), "{e}");
    // The header of the 1001st table: 6 lines of preamble, 3 lines per request.
    assert_eq!(d.line, 7 + 3 * MAX_REQUESTS, "{e}");
}

/// Validation time grows linearly with the file: 8x the entries (each with problems)
/// must not take more than ~8x the time (allowing generous noise).
#[test]
fn validation_cost_is_linear_in_the_file() {
    let time = |n: usize| {
        // Each request has a type error and an unknown key: the worst path.
        let src = with_requests(n, "\nweight = \"x\"\nwieght = 1");
        let t = Instant::now();
        let e = load_str(Path::new("t.toml"), &src).unwrap_err();
        assert!(e.0.len() >= n, "{}", e.0.len());
        t.elapsed()
    };
    let _ = time(200);
    let small = time(2_000);
    let large = time(16_000);
    assert!(
        large < small * 8 * 3,
        "2k entries: {small:?}, 16k entries: {large:?}"
    );
}
