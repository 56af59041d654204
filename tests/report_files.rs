//! `report::write_all` writes every file atomically; `summary.json` matches the checked-in
//! JSON Schema (schemas/summary.schema.json) and reads back into `Summary`; `junit.xml`
//! parses as JUnit; `report.html` is self-contained. Also checked on a real run of the
//! binary against the demo API.

mod report_fixture;

use std::path::Path;

use gauntlet::report::{self, summary::Summary, FILES};
use serde_json::Value;

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/summary.schema.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn validator() -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema())
        .expect("the schema compiles")
}

fn assert_valid(v: &Value) {
    let validator = validator();
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "summary.json does not match the schema:\n{}\n{}",
        errors.join("\n"),
        serde_json::to_string_pretty(v).unwrap()
    );
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn the_schema_is_a_valid_2020_12_schema() {
    let s = schema();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    jsonschema::meta::validate(&s).expect("valid against the 2020-12 meta-schema");
}

/// The committed schema is the one generated from the summary types; regenerate it with
/// `UPDATE_SCHEMA=1 cargo test --test report_files`.
#[test]
fn the_committed_schema_is_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/summary.schema.json");
    let generated = report::summary::json_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == generated,
        "schemas/summary.schema.json is stale; regenerate it with \
         `UPDATE_SCHEMA=1 cargo test --test report_files`"
    );
}

fn write(
    run: (
        gauntlet::scenario::Plan,
        report::RunInfo,
        gauntlet::record::Record,
        gauntlet::grade::Verdict,
    ),
) -> tempfile::TempDir {
    let (plan, info, record, verdict) = run;
    let dir = tempfile::tempdir().unwrap();
    report::write_all(&dir.path().join("run"), &plan, &info, &record, &verdict).unwrap();
    dir
}

#[test]
fn write_all_writes_every_file_and_no_temp_files() {
    let dir = write(report_fixture::run());
    let run = dir.path().join("run");
    let mut names: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = FILES.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names, want, "exactly the report files, no leftovers");
    for f in FILES {
        assert!(
            std::fs::metadata(run.join(f)).unwrap().len() > 0,
            "{f} is empty"
        );
    }
}

#[test]
fn summary_json_matches_the_schema_and_reads_back() {
    for (name, run) in [
        ("completed", report_fixture::run()),
        ("interrupted, no requests", report_fixture::empty_run()),
    ] {
        let (plan, info, record, verdict) = run.clone();
        let built = report::summary::build(&plan, &info, &record, &verdict);
        let dir = write(run);
        let path = dir.path().join("run/summary.json");
        let v = read_json(&path);
        assert_valid(&v);
        let back: Summary =
            serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_same(&serde_json::to_value(&back).unwrap(), &v, name);
        assert_same(&serde_json::to_value(&built).unwrap(), &v, name);
    }
}

/// Equal JSON, numbers to 1e-12 (serde_json's parser may be off by one ULP).
fn assert_same(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-12 * x.abs().max(1.0),
                "{at}: {x} != {y}"
            );
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_same(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let kx: Vec<&String> = x.keys().collect();
            let ky: Vec<&String> = y.keys().collect();
            assert_eq!(kx, ky, "{at}");
            for (k, v) in x {
                assert_same(v, &y[k], &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

#[test]
fn the_schema_catches_drift() {
    let (plan, info, record, verdict) = report_fixture::run();
    let good =
        serde_json::to_value(report::summary::build(&plan, &info, &record, &verdict)).unwrap();
    assert_valid(&good);
    let validator = validator();
    let mut extra = good.clone();
    extra["total"]["latency_us"]["raw"]["p42"] = 1.into();
    assert!(
        !validator.is_valid(&extra),
        "an unknown key must be rejected"
    );
    let mut extra = good.clone();
    extra["surprise"] = true.into();
    assert!(!validator.is_valid(&extra));
    let mut missing = good.clone();
    missing["criteria"][0]
        .as_object_mut()
        .unwrap()
        .remove("measured");
    assert!(
        !validator.is_valid(&missing),
        "a missing key must be rejected"
    );
    let mut wrong = good.clone();
    wrong["criteria"][0]["threshold"]["unit"] = "ms".into();
    assert!(!validator.is_valid(&wrong), "units are an enum");
    let mut wrong = good;
    wrong["run"]["started_at"] = "yesterday".into();
    assert!(!validator.is_valid(&wrong), "timestamps are RFC 3339");
}

#[test]
fn summary_json_content() {
    let (plan, info, record, verdict) = report_fixture::run();
    let s = serde_json::to_value(report::summary::build(&plan, &info, &record, &verdict)).unwrap();
    assert_eq!(s["verdict"]["status"], "failed");
    assert_eq!(s["verdict"]["criteria_failed"], 2);
    assert_eq!(s["load"]["latency_basis"], "corrected");
    assert_eq!(s["total"]["count"], 660);
    assert_eq!(s["total"]["statuses"]["500"], 3);
    assert_eq!(
        s["requests"][1]["top_errors"][0]["reason"],
        "status 500 (expected 2xx)"
    );
    // µs, exact: raw list items are 1..=60 ms, corrected +2ms.
    assert_eq!(s["requests"][0]["latency_us"]["raw"]["min"], 1000);
    assert_eq!(s["requests"][0]["latency_us"]["corrected"]["min"], 3000);
    let c = &s["criteria"][1];
    assert_eq!(c["metric"], "latency.p99");
    assert_eq!(c["request"], "create item");
    assert_eq!(c["threshold"]["value"], 5000.0);
    assert_eq!(c["threshold"]["unit"], "us");
    assert_eq!(c["passed"], false);
    let fresh = &s["criteria"][7];
    assert_eq!(fresh["measured"], Value::Null);
    assert_eq!(s["faults"][0]["recovery_s"], 0.4);
    assert_eq!(s["faults"][2]["failed"], "service `worker` is not running");
}

#[test]
fn junit_parses_and_has_one_case_per_criterion() {
    let dir = write(report_fixture::run());
    let xml = std::fs::read_to_string(dir.path().join("run/junit.xml")).unwrap();
    let r = quick_junit::Report::deserialize_from_str(&xml).expect("valid JUnit XML");
    assert_eq!(r.test_suites.len(), 1);
    let suite = &r.test_suites[0];
    assert_eq!(suite.name.as_str(), "checkout");
    assert_eq!(suite.tests, 9);
    assert_eq!(suite.failures, 2);
    let failed: Vec<&str> = suite
        .test_cases
        .iter()
        .filter(|t| !matches!(t.status, quick_junit::TestCaseStatus::Success { .. }))
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "latency.p99{name=\"create item\"} < 5ms",
            "pipeline.freshness.max < 5m"
        ]
    );
    assert!(
        xml.contains("measured 6.951ms, threshold &lt; 5ms"),
        "{xml}"
    );
    assert!(suite
        .properties
        .iter()
        .any(|p| p.name.as_str() == "seed" && p.value.as_str() == "42"));

    let dir = write(report_fixture::empty_run());
    let xml = std::fs::read_to_string(dir.path().join("run/junit.xml")).unwrap();
    let r = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let names: Vec<&str> = r.test_suites[0]
        .test_cases
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert!(names.contains(&"run completed"), "{xml}");
}

#[test]
fn html_is_self_contained() {
    let dir = write(report_fixture::run());
    let html = std::fs::read_to_string(dir.path().join("run/report.html")).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    for bad in [
        "<script", "<link", "src=", "@import", "url(", "https://", "cdn",
    ] {
        assert!(
            !html.contains(bad),
            "report.html must not reference `{bad}`"
        );
    }
    // The only http:// is the SVG namespace.
    assert_eq!(
        html.matches("http://").count(),
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    for want in [
        ">FAIL<",
        "checkout",
        "latency.p95 &lt; 200ms",
        "pause api",
        "Service events",
        "unhealthy",
    ] {
        assert!(html.contains(want), "report.html lacks {want}");
    }
}

#[test]
fn write_atomic_replaces_whole_files_and_reports_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.txt");
    report::write_atomic(&p, b"first version, long").unwrap();
    report::write_atomic(&p, b"second").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"second");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let missing = dir.path().join("no/such/dir/b.txt");
    let e = report::write_atomic(&missing, b"x").unwrap_err();
    assert_eq!(e.path, missing);
    assert!(e.to_string().contains("b.txt"), "{e}");
}

/// The real thing: the binary runs a short scenario against the demo API; its
/// summary.json matches the schema and its CSV has the documented header.
#[test]
fn real_run_output_matches_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let file = dir.path().join("real.toml");
    std::fs::write(
        &file,
        format!(
            r#"
name = "schema check"
seed = 3
duration = "40s"
criteria = ["errors.rate < 50%", "latency.p99 < 10s", "throughput.rps > 1"]

[target]
base_url = "http://127.0.0.1:{port}"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
command = ["gauntlet", "demo", "api", "--port", "{port}"]
health = {{ http = "http://127.0.0.1:{port}/health", startup = "20s" }}

[load]
think_time = "20ms"
stages = [{{ duration = "1s", users = 5 }}, {{ duration = "2s", users = 5 }}]

[[requests]]
name = "list items"
path = "/api/items"
"#
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .arg("run")
        .arg(&file)
        .arg("--reports")
        .arg(dir.path().join("reports"))
        .arg("--run-id")
        .arg("real")
        .arg("--quiet")
        .output()
        .unwrap();
    let rd = dir.path().join("reports/real");
    let show = || {
        format!(
            "exit {:?}\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    assert!(rd.join("summary.json").is_file(), "{}", show());
    let v = read_json(&rd.join("summary.json"));
    assert_valid(&v);
    assert_eq!(v["run"]["id"], "real");
    let csv = std::fs::read_to_string(rd.join("timeseries.csv")).unwrap();
    assert_eq!(
        csv.lines().next(),
        Some("second,users,requests,rps,errors,p50_ms,p95_ms,p99_ms,max_ms")
    );
    for f in FILES {
        assert!(rd.join(f).is_file(), "{f} missing; {}", show());
    }
}
