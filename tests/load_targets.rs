//! `[targets.<name>]`: a request names the target it goes to; `[target]` stays the
//! default. Two real axum servers on loopback count what reached each, and the
//! connections: one per user per target.

mod load_support;

use load_support::*;

#[test]
fn requests_reach_the_target_they_name() {
    let _g = goose_lock();
    let main = start_server();
    let admin = start_server();
    let src = format!(
        r#"
name = "targets"
seed = 5
[target]
base_url = "{}"
allow_hosts = ["127.0.0.1", "localhost"]

[targets.admin]
base_url = "http://localhost:{}"

[load]
think_time = "20ms"
stages = [{{ duration = "0s", users = 3 }}, {{ duration = "1500ms", users = 3 }}]

[[requests]]
name = "main ok"
path = "/ok"

[[requests]]
name = "admin ok"
target = "admin"
path = "/ok"
"#,
        main.base(),
        admin.addr.port()
    );
    let plan = gauntlet::scenario::load_str(std::path::Path::new("t.toml"), &src)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.targets.len(), 1);
    assert_eq!(plan.requests[1].target, 1);
    let out = run_load(plan);
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.record.total.errors, 0, "{:?}", out.reasons());
    let (m, a) = (out.stats("main ok").count, out.stats("admin ok").count);
    assert!(m > 5 && a > 5, "{m} {a}");
    assert_eq!(main.hits(), m);
    assert_eq!(admin.hits(), a);
    // One keep-alive connection per user per target.
    assert_eq!(main.connections(), 3);
    assert_eq!(admin.connections(), 3);
}

#[test]
fn named_targets_are_validated() {
    let errs = |extra: &str, target: &str| {
        let src = format!(
            r#"
name = "t"
[target]
base_url = "http://127.0.0.1:9"
allow_hosts = ["127.0.0.1"]
{extra}
[load]
stages = [{{ duration = "1s", users = 1 }}]
[[requests]]
name = "a"
path = "/a"
{target}
"#
        );
        match gauntlet::scenario::load_str(std::path::Path::new("t.toml"), &src) {
            Ok(_) => Vec::new(),
            Err(e) => {
                e.0.iter()
                    .map(|d| {
                        format!(
                            "{}:{}: {} ({})",
                            d.line,
                            d.key,
                            d.message,
                            d.hint.clone().unwrap_or_default()
                        )
                    })
                    .collect()
            }
        }
    };
    let admin = "[targets.admin]\nbase_url = \"http://127.0.0.1:10\"";
    assert!(errs(admin, "target = \"admin\"").is_empty());
    assert_eq!(
        errs(admin, "target = \"admn\""),
        vec![
            r#"13:requests[0].target: no target is named "admn" (did you mean "admin"? targets: "admin")"#
        ]
    );
    let e = errs("", "target = \"admin\"");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].contains("declare it as a [targets.admin] table"),
        "{e:?}"
    );
    assert_eq!(
        errs("[targets.evil]\nbase_url = \"http://10.0.0.1:80\"", ""),
        vec![
            r#"7:targets.evil.base_url: target host `10.0.0.1` is not in target.allow_hosts (allowed: "127.0.0.1"; add "10.0.0.1" to target.allow_hosts only if load may be sent there)"#
        ]
    );
    let e = errs(
        "[targets.admin]\nbase_url = \"http://127.0.0.1:10\"\ntls = { insecure = true }",
        "",
    );
    assert_eq!(e.len(), 1);
    assert!(
        e[0].contains("targets.admin.tls applies only to an https:// target"),
        "{e:?}"
    );
    let e = errs(
        "[targets.admin]\nbase_url = \"http://127.0.0.1:10\"\nbase = 1",
        "",
    );
    assert!(e[0].contains("targets.admin.base: unknown key"), "{e:?}");
}
