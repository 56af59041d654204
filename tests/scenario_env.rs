//! One scenario for every environment: `[vars]` and `--vars FILE` with their order of
//! precedence, secrets masked everywhere, `--scale-time`, the scenario JSON Schema, and
//! every problem of a file reported in one pass.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use gauntlet::scenario::load_plan::Model;
use gauntlet::scenario::{load_with, Overrides, Plan};

const VARS: &str = r#"
name = "${GTE_NAME}"
duration = "${GTE_DURATION:-1m}"

[vars]
GTE_NAME = "from-vars"
GTE_PORT = 1000
GTE_USERS = 5
GTE_TOKEN = { default = "default-token", secret = true }
GTE_FROM_FILE = { secret = true }

[target]
base_url = "http://127.0.0.1:${GTE_PORT}"
allow_hosts = ["127.0.0.1"]

[load]
stages = [{ duration = "10s", users = ${GTE_USERS} }]

[[requests]]
name = "r"
path = "/"
headers = { authorization = "Bearer ${GTE_TOKEN}" }
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn users(plan: &Plan) -> Vec<u32> {
    match &plan.load.as_ref().unwrap().model {
        Model::Closed { stages, .. } => stages.iter().map(|s| s.users).collect(),
        Model::Open { .. } => panic!("closed model expected"),
    }
}

fn over(sets: &[&str], vars: Option<&Path>, scale: Option<f64>) -> Overrides {
    Overrides {
        sets: sets
            .iter()
            .map(|s| {
                let (p, v) = s.split_once('=').unwrap();
                (p.to_string(), v.to_string())
            })
            .collect(),
        vars_file: vars.map(Path::to_path_buf),
        scale_time: scale,
    }
}

/// file < [vars] < --vars < environment < --set, for variables and for key paths.
#[test]
fn variables_and_paths_follow_the_order_of_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", VARS);
    // Only this test sets GTE_* variables in this process.
    for v in [
        "GTE_PORT",
        "GTE_NAME",
        "GTE_USERS",
        "GTE_DURATION",
        "GTE_TOKEN",
        "GTE_FROM_FILE",
    ] {
        std::env::remove_var(v);
    }

    let plan = load_with(&file, &Overrides::default()).unwrap();
    assert_eq!(plan.name, "from-vars");
    assert_eq!(plan.base_url.port(), Some(1000));
    assert_eq!(users(&plan), [5]);
    assert_eq!(plan.deadline, Duration::from_secs(60), "the :-default");
    assert_eq!(
        plan.secrets,
        gauntlet::secrets::Secrets::new(["default-token".to_string()])
    );

    let vars = write(
        dir.path(),
        "staging.toml",
        r#"
"load.stages[0].users" = 7
[vars]
GTE_PORT = 2000
GTE_DURATION = "2m"
GTE_FROM_FILE = "file-secret"
"#,
    );
    let plan = load_with(&file, &over(&[], Some(&vars), None)).unwrap();
    assert_eq!(plan.base_url.port(), Some(2000), "--vars over [vars]");
    assert_eq!(users(&plan), [7], "a path of --vars over the file");
    assert_eq!(
        plan.deadline,
        Duration::from_secs(120),
        "--vars over :-default"
    );
    assert_eq!(
        plan.secrets,
        gauntlet::secrets::Secrets::new(["default-token".into(), "file-secret".into()]),
        "a secret declared in [vars] with its value from --vars"
    );

    std::env::set_var("GTE_PORT", "3000");
    let plan = load_with(&file, &over(&[], Some(&vars), None)).unwrap();
    assert_eq!(plan.base_url.port(), Some(3000), "environment over --vars");

    let plan = load_with(
        &file,
        &over(
            &["vars.GTE_PORT=4000", "load.stages[0].users=9"],
            Some(&vars),
            None,
        ),
    )
    .unwrap();
    std::env::remove_var("GTE_PORT");
    assert_eq!(
        plan.base_url.port(),
        Some(4000),
        "--set over the environment"
    );
    assert_eq!(users(&plan), [9], "--set over --vars");
}

/// A wrong path or a wrong type in --vars is exit 2, naming the path and the file.
#[test]
fn vars_file_problems_name_the_path_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", VARS);
    let bad_path = write(dir.path(), "bad-path.toml", "[laod]\nmax_in_flight = 5\n");
    let e = load_with(&file, &over(&[], Some(&bad_path), None)).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!(e.0[0].file, bad_path);
    assert!(
        e.0[0].key == "laod.max_in_flight" && e.0[0].message.contains("no `laod`"),
        "{e}"
    );

    let bad_type = write(
        dir.path(),
        "bad-type.toml",
        "\"load.stages[0].users\" = \"many\"\n",
    );
    let e = load_with(&file, &over(&[], Some(&bad_type), None)).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("`load.stages[0].users`"), "{text}");
    assert!(
        text.contains(&format!("--vars {}", bad_type.display())),
        "{text}"
    );

    let not_toml = write(dir.path(), "not-toml.toml", "a = 1\nb = = 2\n");
    let e = load_with(&file, &over(&[], Some(&not_toml), None)).unwrap_err();
    assert_eq!(
        (e.0[0].file.as_path(), e.0[0].line),
        (not_toml.as_path(), 2)
    );

    let bad_var = write(dir.path(), "bad-var.toml", "[vars]\nX = [1, 2]\n");
    let e = load_with(&file, &over(&[], Some(&bad_var), None)).unwrap_err();
    assert_eq!(e.0[0].key, "vars.X", "{e}");

    // The binary: exit 2, the file and the path on stderr; also for `validate`.
    for cmd in ["run", "validate"] {
        let out = std::process::Command::new(gauntlet_bin())
            .arg(cmd)
            .arg(&file)
            .arg("--vars")
            .arg(&bad_path)
            .arg("--set")
            .arg("vars.GTE_PORT=1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("bad-path.toml") && err.contains("laod.max_in_flight"),
            "{}",
            show(&out)
        );
    }
}

const TIMELINE: &str = r#"
name = "timeline"
duration = "60s"
cooldown = "10s"

[target]
base_url = "http://127.0.0.1:1"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
command = ["sleep", "100"]
health = { tcp = "127.0.0.1:1", interval = "300ms", timeout = "1s" }

[load]
think_time = "100ms"
timeout = "2s"
stages = [{ duration = "10s", users = 1 }, { duration = "20s", users = 1 }]

[[requests]]
name = "r"
path = "/"

[[faults]]
kind = "pause"
target = "api"
at = "5s"
duration = "4s"

[[faults]]
kind = "stop"
target = "api"
at = "20s"
restart_after = "3s"
"#;

#[test]
fn scale_time_scales_the_timeline_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "t.toml", TIMELINE);
    let plan = load_with(&file, &over(&[], None, Some(0.1))).unwrap();
    let ms = Duration::from_millis;
    assert_eq!(plan.load_duration, ms(3000));
    assert_eq!(plan.deadline, ms(6000));
    assert_eq!(plan.cooldown, ms(1000));
    let c = plan.faults[0].common();
    assert_eq!(
        (c.at.0, plan.faults[0].duration().unwrap().0),
        (ms(500), ms(400))
    );
    assert_eq!(plan.faults[1].common().at.0, ms(2000));
    assert_eq!(plan.faults[1].in_force_for().unwrap().0, ms(300));
    // Not the timeline: what one request or one probe takes.
    let load = plan.load.as_ref().unwrap();
    assert_eq!((load.think.mean(), load.timeout), (ms(100), ms(2000)));
    let h = plan.services[0].health.as_ref().unwrap();
    assert_eq!((h.interval, h.timeout), (ms(300), ms(1000)));

    // Scaled up past a bound: the problem says it was scaled.
    let e = load_with(&file, &over(&[], None, Some(1000.0))).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("`cooldown`"), "{text}");
    assert!(text.contains("scaled by --scale-time 1000"), "{text}");

    for bad in ["0", "-1", "1000.5", "nan", "x"] {
        assert!(gauntlet::scenario::parse_scale_time(bad).is_err(), "{bad}");
    }
    let out = std::process::Command::new(gauntlet_bin())
        .args(["validate", "--scale-time", "0"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let out = std::process::Command::new(gauntlet_bin())
        .args(["validate", "--scale-time", "0.5"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

/// A local server that answers every request with the Authorization header it got.
fn echo_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().fallback(|h: axum::http::HeaderMap| async move {
                let auth = h
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                (
                    axum::http::StatusCode::OK,
                    axum::Json(serde_json::json!({ "auth": auth, "echo": auth })),
                )
            });
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    port
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// A secret header value, echoed back by the server and quoted by a failed check (with
/// `show_values`), is in no file of the run folder and not on stdout or stderr.
#[test]
fn a_secret_is_in_no_report_log_or_output() {
    const SECRET: &str = "s3cr3t-Tok\"en<x>";
    let dir = tempfile::tempdir().unwrap();
    let port = echo_server();
    let file = write(
        dir.path(),
        "secret.toml",
        &r#"
name = "secret"
duration = "20s"
criteria = ["errors.rate < 1%"]

[vars]
GTE_API_TOKEN = { secret = true }

[target]
base_url = "http://127.0.0.1:{PORT}/t/${GTE_API_TOKEN}"
allow_hosts = ["127.0.0.1"]

[report]
show_values = true

# A service that prints the secret it is given: its captured output is masked too.
[[services]]
name = "talker"
command = ["sh", "-c", "echo \"token=$GTE_T\"; exec sleep 60"]
env = { GTE_T = "${GTE_API_TOKEN}" }

[load]
think_time = "20ms"
stages = [{ duration = "1s", users = 2 }]

[[requests]]
name = "echo"
path = "/echo"
headers = { Authorization = "Bearer ${GTE_API_TOKEN}" }
checks = [{ status = 200 }, { json = "/auth", equals = "nope" }]
"#
        .replace("{PORT}", &port.to_string()),
    );
    let toml_secret = SECRET.replace('"', "\\\"");
    let out = std::process::Command::new(gauntlet_bin())
        .arg("run")
        .arg(&file)
        .arg("--reports")
        .arg(dir.path().join("reports"))
        .arg("--run-id")
        .arg("secret")
        .env("GTE_API_TOKEN", SECRET)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", dir.path().join("step-summary.md"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let rd = report_dir(dir.path(), "secret");
    let mut files = Vec::new();
    files_under(&rd, &mut files);
    files.push(dir.path().join("step-summary.md"));
    assert!(files.len() >= 6, "{files:?}");
    // The value and the forms the formats escape it to.
    let forms = [
        SECRET.to_string(),
        SECRET.replace('"', "\\\""),
        SECRET.replace('"', "&quot;").replace('<', "&lt;"),
        "s3cr3t-Tok".to_string(),
    ];
    let mut texts: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).unwrap_or_default();
            (
                f.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        })
        .collect();
    texts.push(("stdout".into(), String::from_utf8_lossy(&out.stdout).into()));
    texts.push(("stderr".into(), String::from_utf8_lossy(&out.stderr).into()));
    for (name, text) in &texts {
        for form in &forms {
            assert!(
                !text.contains(form.as_str()),
                "{name} holds the secret:\n{text}"
            );
        }
    }
    // It would have been there: the failed check quotes the echoed value, masked.
    let summary = std::fs::read_to_string(rd.join("summary.json")).unwrap();
    assert!(summary.contains("Bearer ***"), "{summary}");
    assert!(summary.contains("/t/***"), "{summary}");
    let log = std::fs::read_to_string(rd.join("logs/talker.log")).unwrap();
    assert!(log.contains("token=***"), "{log}");

    // A problem on the line of a secret shows the line masked.
    let bad = write(
        dir.path(),
        "bad.toml",
        &std::fs::read_to_string(&file)
            .unwrap()
            .replace("[report]", "unknown_key = \"${GTE_API_TOKEN}\"\n[report]"),
    );
    let out = std::process::Command::new(gauntlet_bin())
        .arg("validate")
        .arg(&bad)
        .env("GTE_API_TOKEN", SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown_key = \"***\""), "{}", show(&out));
    assert!(
        !err.contains(&toml_secret) && !err.contains("s3cr3t"),
        "{err}"
    );
}

fn scenario_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

/// The committed schema is the generated one; regenerate it with
/// `UPDATE_SCHEMA=1 cargo test --test scenario_env`.
#[test]
fn the_committed_scenario_schema_is_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/scenario.schema.json");
    let generated = gauntlet::scenario::schema::json();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == generated,
        "schemas/scenario.schema.json is stale; regenerate it with \
         `UPDATE_SCHEMA=1 cargo test --test scenario_env`"
    );
    let out = std::process::Command::new(gauntlet_bin())
        .arg("schema")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), generated);
}

/// Every shipped scenario names the schema on its first line and is valid against it;
/// the schema refuses an unknown key, a wrong type and a fault key of another kind.
#[test]
fn every_shipped_scenario_is_valid_against_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&gauntlet::scenario::schema::json()).unwrap();
    jsonschema::meta::validate(&schema).expect("valid against the 2020-12 meta-schema");
    let validator = jsonschema::validator_for(&schema).unwrap();
    for f in scenario_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(
            text.lines().next(),
            Some("#:schema ../schemas/scenario.schema.json"),
            "{}",
            f.display()
        );
        let doc: serde_json::Value = toml::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", f.display());
    }
    let quickstart: serde_json::Value = toml::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scenarios/quickstart.toml"
        ))
        .unwrap(),
    )
    .unwrap();
    let fault =
        serde_json::json!({ "kind": "pause", "target": "api", "at": "1s", "duration": "2s" });
    let mut ok = quickstart.clone();
    ok["faults"] = serde_json::json!([fault.clone()]);
    ok["vars"] = serde_json::json!({ "A": "x", "B": 2, "T": { "default": "", "secret": true } });
    assert!(
        validator.is_valid(&ok),
        "{:?}",
        validator.validate(&ok).err()
    );
    let mut bad = Vec::new();
    let mut v = quickstart.clone();
    v["load"]["thinktime"] = "1s".into();
    bad.push(v);
    let mut v = quickstart.clone();
    v["load"]["stages"][0]["duration"] = 5.into();
    bad.push(v);
    let mut v = quickstart.clone();
    let mut f = fault.clone();
    f["signal"] = "KILL".into();
    v["faults"] = serde_json::json!([f]);
    bad.push(v);
    for v in bad {
        assert!(!validator.is_valid(&v), "{v}");
    }
}

/// The shipped environment file fits quickstart, with a scaled timeline.
#[test]
fn quickstart_takes_the_smoke_environment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plan = load_with(
        &root.join("scenarios/quickstart.toml"),
        &over(
            &[],
            Some(&root.join("scenarios/envs/smoke.toml")),
            Some(0.5),
        ),
    )
    .unwrap();
    assert_eq!(users(&plan), [20, 20, 0]);
    assert_eq!(plan.criteria.len(), 3);
    assert_eq!(plan.load_duration, Duration::from_millis(11_500));
}

/// One file with one problem of each sort: every one is reported in one pass.
#[test]
fn every_problem_of_a_file_is_reported_in_one_pass() {
    let src = r#"
name = "all at once"
seeed = 1
criteria = ["latency.p95 < 200 parsecs"]

[target]
base_url = "http://example.com:8080"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
command = ["sleep", "100"]

[load]
stages = [{ duration = 5, users = 2 }, { duration = "5s", users = 2 }]

[[requests]]
name = "r"
path = "/items/{{nope}}"

[[faults]]
kind = "kill"
target = "ghost"
at = "1s"
"#;
    let e = gauntlet::scenario::load_str(Path::new("all.toml"), src).unwrap_err();
    let keys: Vec<(&str, &str)> =
        e.0.iter()
            .map(|d| (d.key.as_str(), d.message.as_str()))
            .collect();
    for (key, says) in [
        ("seeed", "unknown key"),
        ("load.stages[0].duration", "expected a duration"),
        ("criteria[0]", "parsecs"),
        ("target.base_url", "example.com"),
        ("requests[0].path", "nope"),
        ("faults[0].target", "ghost"),
    ] {
        assert!(
            keys.iter().any(|(k, m)| *k == key && m.contains(says)),
            "{key} ({says}) not reported; got:\n{e}"
        );
    }
}

/// `secrets = ["NAME"]` marks an environment variable secret, like `secret = true` in
/// `[vars]`: its value is masked in what the plan reports.
#[test]
fn a_secrets_list_names_environment_variables_to_mask() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "listed.toml",
        r#"
name = "listed"
secrets = ["GTE_LISTED_TOKEN"]

[target]
base_url = "http://127.0.0.1:1"
allow_hosts = ["127.0.0.1"]

[load]
stages = [{ duration = "1s", users = 1 }]

[[requests]]
name = "r"
path = "/"
headers = { Authorization = "Bearer ${GTE_LISTED_TOKEN}" }
"#,
    );
    std::env::set_var("GTE_LISTED_TOKEN", "listed-s3cret-value");
    let plan = gauntlet::scenario::load_with(&file, &Default::default()).unwrap();
    assert_eq!(
        plan.secrets.mask("sent Bearer listed-s3cret-value"),
        "sent Bearer ***"
    );
}
