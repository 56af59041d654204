//! `scenario::load_str` as a library: what a valid file resolves to, and how problems
//! come back (all together, in file order, with places).

use std::path::Path;
use std::time::Duration;

use gauntlet::metric::{MetricId, Quantity, Stat};
use gauntlet::scenario::{load, load_str, ScenarioErrors};

const BASE: &str = r#"
name = "t"
[target]
base_url = "http://127.0.0.1:18080/"
allow_hosts = ["127.0.0.1"]
"#;

fn errors(src: &str) -> ScenarioErrors {
    match load_str(Path::new("dir/t.toml"), src) {
        Ok(_) => panic!("loaded:\n{src}"),
        Err(e) => e,
    }
}

#[test]
fn resolves_a_valid_scenario() {
    let src = r#"
name = "resolve"
seed = 99
criteria = ["latency.p95{name=\"get\"} < 200ms", "errors.rate < 1%"]

[target]
base_url = "http://127.0.0.1:18080"
allow_hosts = ["127.0.0.1"]

[[services]]
name = "api"
command = ["gauntlet", "demo", "api"]
cwd = "work"
pid_file = "/tmp/api.pid"

[load]
stages = [{ duration = "10s", users = 10 }, { duration = "1m", users = 10 }]

[[requests]]
name = "create"
method = "post"
path = "/items"
headers = { x-id = "{{fake.uuid}}" }
json = { n = "{{rand.int(1,5)}}" }
extract = [{ var = "id", json = "/id" }]

[[requests]]
name = "get"
weight = 3
path = "/items/{{id}}"
"#;
    let plan = load_str(Path::new("scenarios/x.toml"), src).unwrap();
    assert_eq!(plan.seed, 99);
    assert_eq!(plan.load_duration, Duration::from_secs(70));
    assert_eq!(plan.deadline, Duration::from_secs(100), "stages + 30s");
    assert_eq!(plan.base_url.as_str(), "http://127.0.0.1:18080/");
    assert_eq!(plan.requests.len(), 2);
    assert_eq!(plan.requests[0].method, http::Method::POST);
    assert_eq!(plan.requests[0].weight, 1);
    assert_eq!(plan.requests[0].headers.len(), 1);
    assert!(plan.requests[0].body.is_some());
    assert_eq!(plan.requests[0].needs, vec![]);
    assert_eq!(plan.requests[1].weight, 3);
    assert_eq!(plan.requests[1].needs, vec![("id".to_string(), 0)]);
    assert_eq!(plan.requests[1].path.vars(), vec!["id"]);
    assert_eq!(plan.criteria.len(), 2);
    let m = &plan.criteria[0].metric;
    assert_eq!(m.id, MetricId::Latency);
    assert_eq!(m.stat, Some(Stat::Percentile(95.0)));
    assert_eq!(m.request_name(), Some("get"));
    assert_eq!(plan.criteria[1].threshold, Quantity::Percent(1.0));
    // Relative paths are resolved against the scenario's folder.
    let svc = &plan.services[0].spec;
    let cwd = svc.cwd.as_ref().unwrap();
    assert!(
        cwd.is_absolute() && cwd.ends_with("scenarios/work"),
        "{cwd:?}"
    );
    assert_eq!(svc.pid_file.as_deref(), Some(Path::new("/tmp/api.pid")));
}

/// `[load]` and the requests' checks and extractors resolve to typed values.
#[test]
fn load_checks_and_extractors_are_typed() {
    use gauntlet::scenario::load_plan::*;
    use std::num::NonZeroU32;

    let ms = Duration::from_millis;
    let with = |load: &str, request: &str| {
        let src = format!(
            "{BASE}\n[load]\n{load}\n[[requests]]\nname = \"a\"\npath = \"/\"\n{request}\n"
        );
        match load_str(Path::new("t.toml"), &src) {
            Ok(p) => p,
            Err(e) => panic!("{e}\n{src}"),
        }
    };
    // (load table, model, think, timeout)
    let cases: Vec<(&str, Model, Think, Duration)> = vec![
        (
            r#"stages = [{ duration = "250ms", users = 3 }, { duration = "1s", users = 0 }]"#,
            Model::Closed {
                stages: vec![
                    UserStage {
                        duration: ms(250),
                        users: 3,
                    },
                    UserStage {
                        duration: ms(1000),
                        users: 0,
                    },
                ],
                connections: Connections::PerUser,
            },
            Think::None,
            DEFAULT_TIMEOUT,
        ),
        (
            r#"connections = "shared"
pool_size = 4
think_time = { min = "50ms", max = "150ms" }
timeout = "2s"
stages = [{ duration = "1s", users = 2 }]"#,
            Model::Closed {
                stages: vec![UserStage {
                    duration: ms(1000),
                    users: 2,
                }],
                connections: Connections::Shared {
                    pool_size: NonZeroU32::new(4).unwrap(),
                },
            },
            Think::Range(ms(50), ms(150)),
            Duration::from_secs(2),
        ),
        (
            r#"model = "open"
start_rate = 5
max_in_flight = 7
think_time = "20ms"
stages = [{ duration = "500ms", rate = 10.5 }]"#,
            Model::Open {
                start_rate: 5.0,
                stages: vec![RateStage {
                    duration: ms(500),
                    rate: 10.5,
                }],
                max_in_flight: NonZeroU32::new(7).unwrap(),
            },
            Think::Fixed(ms(20)),
            DEFAULT_TIMEOUT,
        ),
    ];
    for (load, model, think, timeout) in cases {
        let plan = with(load, "");
        let l = plan.load.expect("a load plan");
        assert_eq!(
            (l.model, l.think, l.timeout),
            (model, think, timeout),
            "{load}"
        );
    }

    let code = |c| http::StatusCode::from_u16(c).unwrap();
    let ptr = |p| JsonPointer::new(p).unwrap();
    let plan = with(
        r#"stages = [{ duration = "1s", users = 1 }]"#,
        r#"checks = [{ status = 201 }, { status = [200, 204] }, { status = "4XX" }, { body_contains = "ok" }, { json = "/id", equals = 7 }, { json = "/gone", exists = false }, { json = "/here" }]
extract = [{ var = "id", json = "/id" }, { var = "loc", header = "Location" }]"#,
    );
    let r = &plan.requests[0];
    assert_eq!(
        r.checks,
        vec![
            Check::Status(StatusSet::One(code(201))),
            Check::Status(StatusSet::Any(vec![code(200), code(204)])),
            Check::Status(StatusSet::Class(4)),
            Check::BodyContains("ok".into()),
            Check::JsonEquals {
                pointer: ptr("/id"),
                expected: serde_json::json!(7)
            },
            Check::JsonExists {
                pointer: ptr("/gone"),
                exists: false
            },
            Check::JsonExists {
                pointer: ptr("/here"),
                exists: true
            },
        ]
    );
    assert_eq!(
        r.extract,
        vec![
            Extractor::Json {
                var: "id".into(),
                pointer: ptr("/id")
            },
            Extractor::Header {
                var: "loc".into(),
                name: http::HeaderName::from_static("location"),
            },
        ]
    );
}

#[test]
fn the_duration_caps_the_run_and_a_seed_is_drawn_when_absent() {
    let src = format!(
        "duration = \"2m\"\n{BASE}\n[load]\nstages = [{{ duration = \"1m\", users = 1 }}]\n[[requests]]\nname = \"a\"\npath = \"/\"\n"
    );
    let a = load_str(Path::new("t.toml"), &src).unwrap();
    assert_eq!(a.deadline, Duration::from_secs(120));
    let b = load_str(Path::new("t.toml"), &src).unwrap();
    assert_ne!(a.seed, b.seed, "a fresh seed each time the file gives none");
}

#[test]
fn a_scenario_without_load_is_allowed() {
    let plan = load_str(Path::new("t.toml"), BASE).unwrap();
    assert!(plan.requests.is_empty());
    assert_eq!(plan.deadline, Duration::from_secs(30));
}

#[test]
fn every_problem_comes_back_in_file_order_with_places() {
    let src = r#"name = "x"
[target]
base_url = "http://127.0.0.1:1"
allow_hosts = ["127.0.0.1"]
bogus = 1
[load]
stages = [{ duration = "1s", users = "ten" }, { duration = 5, users = 1 }]
think_time = "soon"
[[requests]]
name = "a"
path = 7
[[requests]]
name = "b"
weight = -1
path = "/"
"#;
    let e = errors(src);
    let got: Vec<(usize, usize, &str)> =
        e.0.iter()
            .map(|d| (d.line, d.column, d.key.as_str()))
            .collect();
    assert_eq!(
        got,
        vec![
            (5, 1, "target.bogus"),
            (7, 38, "load.stages[0].users"),
            (7, 60, "load.stages[1].duration"),
            (8, 14, "load.think_time"),
            (11, 8, "requests[0].path"),
            (14, 10, "requests[1].weight"),
        ],
        "{e}"
    );
    assert!(e.0.iter().all(|d| d.file == Path::new("dir/t.toml")));
    let text = e.to_string();
    assert!(
        text.contains("error: dir/t.toml:7:60: `load.stages[1].duration`: expected a duration"),
        "{text}"
    );
    assert!(
        text.ends_with("\n\n6 problems in dir/t.toml; nothing was started"),
        "{text}"
    );
}

#[test]
fn display_shows_the_line_and_a_caret_under_the_column() {
    let e = errors(&format!("{BASE}\n[load]\nstages = [{{ duration = \"1s\", users = 1 }}]\nthinktime = \"1s\"\n[[requests]]\nname = \"a\"\npath = \"/\"\n"));
    assert_eq!(e.0.len(), 1, "{e}");
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "error: dir/t.toml:9:1: `load.thinktime`: unknown key",
        "{text}"
    );
    assert_eq!(lines[2], "9 | thinktime = \"1s\"", "{text}");
    assert_eq!(lines[3], "  | ^^^^^^^^^", "{text}");
    assert_eq!(lines[4], "  hint: did you mean `think_time`?", "{text}");
}

#[test]
fn a_missing_file_is_one_problem_without_a_place() {
    let e = load(Path::new("does/not/exist.toml")).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].line, 0);
    assert!(
        e.to_string()
            .starts_with("error: does/not/exist.toml: cannot read the file"),
        "{e}"
    );
}

#[test]
fn columns_inside_escaped_strings_point_at_the_source() {
    // The escaped quotes shift the criterion's columns in the file.
    let src = format!(
        "criteria = [\"latency.p95{{name=\\\"nope\\\"}} < 1s\"]\n{BASE}\n[load]\nstages = [{{ duration = \"1s\", users = 1 }}]\n[[requests]]\nname = \"a\"\npath = \"/\"\n"
    );
    let e = errors(&src);
    assert_eq!(e.0.len(), 1, "{e}");
    let d = &e.0[0];
    assert_eq!((d.line, d.column), (1, 33), "{e}");
    assert_eq!(&src.lines().next().unwrap()[32..36], "nope");
    assert_eq!(d.width, 4);
}

#[test]
fn the_allow_list_covers_websocket_urls_too() {
    let src = format!(
        "{BASE}\n[[services]]\nname = \"api\"\ncommand = [\"x\"]\n[[faults]]\nkind = \"leak_websockets\"\ntarget = \"api\"\nat = \"1s\"\nduration = \"5s\"\nurl = \"ws://10.0.0.1/ws\"\nconnections = 10\n"
    );
    let e = errors(&src);
    assert_eq!(e.0.len(), 1, "{e}");
    assert!(
        e.0[0]
            .message
            .contains("WebSocket host `10.0.0.1` is not in target.allow_hosts"),
        "{e}"
    );
}

#[test]
fn requests_that_need_each_other_are_refused() {
    let src = format!(
        "{BASE}\n[load]\nstages = [{{ duration = \"1s\", users = 1 }}]\n\
         [[requests]]\nname = \"a\"\npath = \"/a/{{{{y}}}}\"\nextract = [{{ var = \"x\", json = \"/x\" }}]\n\
         [[requests]]\nname = \"b\"\npath = \"/b/{{{{x}}}}\"\nextract = [{{ var = \"y\", json = \"/y\" }}]\n"
    );
    let e = errors(&src);
    assert!(e.to_string().contains("need values from each other"), "{e}");
}

/// One semantic rule each: the extra text appended to a valid base, the key the problem
/// is reported at, and a piece of its message.
#[test]
fn semantic_rules() {
    let load = "[load]\nstages = [{ duration = \"10s\", users = 1 }]\n[[requests]]\nname = \"a\"\npath = \"/\"\n";
    let api = "[[services]]\nname = \"api\"\ncommand = [\"x\"]\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (format!("{load}[[requests]]\nname = \"\"\npath = \"/\"\n"), "requests[1].name", "the request name is empty"),
        (format!("{load}headers = {{ \"a b\" = \"x\" }}\n"), "requests[0].headers.\"a b\"", "not a valid header name"),
        (format!("{load}extract = [{{ var = \"x\", json = \"/x\", header = \"h\" }}]\n"), "requests[0].extract[0]", "exactly one of `json`"),
        (format!("{load}extract = [{{ var = \"1x\", header = \"h\" }}]\n"), "requests[0].extract[0].var", "not a variable name"),
        (format!("{load}checks = [{{ status = 999 }}]\n"), "requests[0].checks[0].status", "not an HTTP status"),
        (format!("{load}checks = [{{ json = \"/a\", equals = 1, exists = true }}]\n"), "requests[0].checks[0].exists", "not both"),
        (format!("{load}weight = 0\n"), "requests", "weight 0"),
        ("[load]\nstages = [{ duration = \"10s\", users = 1 }]\n".into(), "load", "no [[requests]]"),
        ("[[requests]]\nname = \"a\"\npath = \"/\"\n".into(), "requests", "no [load]"),
        (load.replace("users = 1", "users = 100001"), "load.stages[0].users", "at most 100000 users"),
        (load.replace("users = 1 }", "users = 0 }").replace("10s", "0s"), "load.stages", "add up to 0s"),
        (load.replace("[load]\n", "[load]\nstart_rate = 5\n"), "load.start_rate", "open model only"),
        (load.replace("[load]\n", "[load]\npool_size = 5\n"), "load.pool_size", "connections = \"shared\""),
        (load.replace("[load]\n", "[load]\nmodel = \"open\"\n"), "load.stages[0]", "has no `rate`"),
        (format!("{api}health = {{ http = \"http://127.0.0.1:1/\", tcp = \"127.0.0.1:1\" }}\n"), "services[0].health", "exactly one of `http`"),
        (format!("{api}health = {{ tcp = \"nohost\" }}\n"), "services[0].health.tcp", "host:port"),
        (format!("{api}[[services]]\nname = \"api\"\ncommand = [\"y\"]\n"), "services[1].name", "used twice"),
        ("[[services]]\nname = \"api\"\n".into(), "services[0]", "has no `command`"),
        (format!("{api}container = \"c\"\n"), "services[0].container", "docker backend"),
        (
            "[[faults]]\nkind = \"kill\"\nat = \"1s\"\n".to_string() + api,
            "faults[0]",
            "has no `target`",
        ),
        (format!("{api}[[faults]]\nkind = \"network\"\ntarget = \"api\"\nat = \"1s\"\nduration = \"1s\"\nlatency = \"1ms\"\n"), "faults[0].target", "has none"),
        (format!("{api}proxy = {{ listen = \"127.0.0.1:2\", upstream = \"127.0.0.1:1\" }}\n[[faults]]\nkind = \"network\"\ntarget = \"api\"\nat = \"1s\"\nduration = \"1s\"\n"), "faults[0]", "needs an effect"),
        (format!("{api}[[faults]]\nkind = \"pause\"\ntarget = \"api\"\nat = \"1s\"\nduration = \"1s\"\nevery = \"5s\"\n"), "faults[0].every", "`times`"),
        (format!("{api}[[faults]]\nkind = \"pause\"\ntarget = \"api\"\nat = \"1s\"\nduration = \"1s\"\ntimes = 3\n"), "faults[0].times", "needs `every`"),
        (format!("{api}[[faults]]\nkind = \"pause\"\ntarget = \"api\"\nat = \"1s\"\nduration = \"5s\"\nevery = \"5s\"\ntimes = 2\n"), "faults[0].every", "overlap"),
        (format!("{api}[[faults]]\nkind = \"pause\"\ntarget = \"api\"\nat = \"29s\"\nduration = \"5s\"\n"), "faults[0].at", "hard cap"),
        (format!("{api}[[faults]]\nkind = \"leak_websockets\"\ntarget = \"api\"\nat = \"1s\"\nduration = \"5s\"\nconnections = 1\n"), "faults[0]", "needs a `url`"),
        (format!("{api}[[faults]]\nkind = \"memory\"\ntarget = \"api\"\nat = \"1s\"\nduration = \"5s\"\nsize = \"lots\"\n"), "faults[0].size", "is not a size"),
        (format!("{api}[[faults]]\nkind = \"cpu\"\ntarget = \"api\"\nat = \"1s\"\nduration = \"5s\"\nsignal = \"SIGTERM\"\n"), "faults[0].signal", "does not apply to a `cpu` fault"),
        (format!("{api}[[faults]]\nkind = \"kill\"\ntarget = \"api\"\nat = \"1s\"\nsignal = \"SIGNOPE\"\n"), "faults[0].signal", "unknown signal"),
        ("[[services]]\nname = \"w\"\nmanaged = false\n[[faults]]\nkind = \"restart\"\ntarget = \"w\"\nat = \"1s\"\n".into(), "faults[0].target", "managed = false"),
    ];
    for (extra, key, message) in cases {
        let src = format!("{BASE}{extra}");
        let e = errors(&src);
        assert!(
            e.0.iter()
                .any(|d| d.key == key && d.message.contains(message)),
            "expected `{key}`: …{message}… for\n{src}\ngot:\n{e}"
        );
    }
}

#[test]
fn the_base_url_must_be_http_or_https() {
    for (url, msg) in [
        ("ftp://127.0.0.1/", "must be an http:// or https:// URL"),
        ("wss://127.0.0.1/", "must be an http:// or https:// URL"),
        ("not a url", "not a valid URL"),
    ] {
        let src = BASE.replace("http://127.0.0.1:18080/", url);
        let e = errors(&src);
        assert!(
            e.0.iter()
                .any(|d| d.key == "target.base_url" && d.message.contains(msg)),
            "{e}"
        );
    }
    // https is a target like http, held to the same allow list.
    let plan = gauntlet::scenario::load_str(
        std::path::Path::new("t.toml"),
        &BASE.replace("http://127.0.0.1:18080/", "https://127.0.0.1:8443/"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(plan.tls.is_some());
    let e = errors(&BASE.replace("http://127.0.0.1:18080/", "https://10.1.2.3/"));
    assert!(
        e.0.iter()
            .any(|d| d.key == "target.base_url" && d.message.contains("not in target.allow_hosts")),
        "{e}"
    );
    let e = errors(&BASE.replace("[\"127.0.0.1\"]", "[]"));
    assert!(
        e.0.iter()
            .any(|d| d.key == "target.allow_hosts" && d.message.contains("is empty")),
        "{e}"
    );
}
