//! Response checks and value extraction, compiled once from the plan. A failure is an
//! error with a reason a person can act on: `check failed: status 404, expected 201`,
//! `check failed: body lacks "abc"`, `check failed: /name == "x", found "y"`,
//! `extract item_id: /id not found`.

use std::collections::HashMap;

use http::HeaderName;

use super::client::Reply;
use crate::scenario::model::{CheckSpec, ExtractSpec, StatusCheck};

#[derive(Debug, Clone)]
pub(crate) enum Check {
    Status(StatusCheck),
    BodyContains(String),
    JsonEquals {
        ptr: String,
        expected: serde_json::Value,
    },
    JsonExists {
        ptr: String,
        exists: bool,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Extract {
    Json { var: String, ptr: String },
    Header { var: String, name: HeaderName },
}

pub(crate) fn compile_checks(specs: &[CheckSpec]) -> Result<Vec<Check>, String> {
    let mut out = Vec::with_capacity(specs.len());
    for c in specs {
        if let Some(s) = &c.status {
            out.push(Check::Status(s.clone()));
        }
        if let Some(b) = &c.body_contains {
            out.push(Check::BodyContains(b.clone()));
        }
        if let Some(ptr) = &c.json {
            match &c.equals {
                Some(v) => out.push(Check::JsonEquals {
                    ptr: ptr.clone(),
                    expected: serde_json::to_value(v)
                        .map_err(|e| format!("check {ptr}: cannot compare with {v}: {e}"))?,
                }),
                None => out.push(Check::JsonExists {
                    ptr: ptr.clone(),
                    exists: c.exists.unwrap_or(true),
                }),
            }
        }
    }
    Ok(out)
}

pub(crate) fn compile_extracts(specs: &[ExtractSpec]) -> Result<Vec<Extract>, String> {
    specs
        .iter()
        .map(|e| match (&e.json, &e.header) {
            (Some(ptr), _) => Ok(Extract::Json {
                var: e.var.clone(),
                ptr: ptr.clone(),
            }),
            (None, Some(h)) => Ok(Extract::Header {
                var: e.var.clone(),
                name: HeaderName::from_bytes(h.trim().as_bytes())
                    .map_err(|_| format!("extract {}: `{h}` is not a header name", e.var))?,
            }),
            (None, None) => Err(format!("extract {}: needs `json` or `header`", e.var)),
        })
        .collect()
}

/// The body parsed as JSON at most once, on first use.
#[derive(Default)]
pub(crate) struct JsonBody {
    parsed: Option<Option<serde_json::Value>>,
}

impl JsonBody {
    fn get(&mut self, body: &[u8]) -> Option<&serde_json::Value> {
        self.parsed
            .get_or_insert_with(|| serde_json::from_slice(body).ok())
            .as_ref()
    }
}

/// The first failed check, or the implicit status rule when no check names a status.
pub(crate) fn evaluate(
    checks: &[Check],
    has_status_check: bool,
    reply: &Reply,
    json: &mut JsonBody,
) -> Option<String> {
    let status = reply.status.as_u16();
    if !has_status_check && !(200..=399).contains(&status) {
        return Some(format!("status {status} (expected 2xx/3xx)"));
    }
    for c in checks {
        match c {
            Check::Status(s) => {
                let (ok, expected) = match s {
                    StatusCheck::One(code) => (status == *code, code.to_string()),
                    StatusCheck::Any(codes) => (
                        codes.contains(&status),
                        format!(
                            "one of {}",
                            codes
                                .iter()
                                .map(|c| c.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                    StatusCheck::Class(class) => {
                        let first = class.as_bytes().first().copied().unwrap_or(b'0');
                        (
                            (status / 100) as u8 + b'0' == first,
                            class.to_ascii_lowercase(),
                        )
                    }
                };
                if !ok {
                    return Some(format!(
                        "check failed: status {status}, expected {expected}"
                    ));
                }
            }
            Check::BodyContains(needle) => {
                if !contains(&reply.body, needle.as_bytes()) {
                    return Some(format!("check failed: body lacks {}", short_str(needle)));
                }
            }
            Check::JsonEquals { ptr, expected } => {
                let Some(v) = json.get(&reply.body) else {
                    return Some("check failed: body is not JSON".into());
                };
                match v.pointer(ptr) {
                    None => return Some(format!("check failed: {ptr} missing")),
                    Some(found) if !json_eq(found, expected) => {
                        return Some(format!(
                            "check failed: {ptr} == {}, found {}",
                            short_json(expected),
                            short_json(found)
                        ))
                    }
                    Some(_) => {}
                }
            }
            Check::JsonExists { ptr, exists } => {
                let Some(v) = json.get(&reply.body) else {
                    return Some("check failed: body is not JSON".into());
                };
                match (v.pointer(ptr).is_some(), exists) {
                    (false, true) => return Some(format!("check failed: {ptr} missing")),
                    (true, false) => {
                        return Some(format!("check failed: {ptr} present, expected absent"))
                    }
                    _ => {}
                }
            }
        }
    }
    None
}

/// Store every extracted value in `vars`; the first failure is returned as the reason.
pub(crate) fn extract(
    extracts: &[Extract],
    reply: &Reply,
    json: &mut JsonBody,
    vars: &mut HashMap<String, String>,
) -> Option<String> {
    for e in extracts {
        match e {
            Extract::Json { var, ptr } => {
                let Some(v) = json.get(&reply.body) else {
                    return Some(format!("extract {var}: body is not JSON"));
                };
                let value = match v.pointer(ptr) {
                    None | Some(serde_json::Value::Null) => {
                        return Some(format!("extract {var}: {ptr} not found"))
                    }
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                };
                set_var(vars, var, value);
            }
            Extract::Header { var, name } => {
                match reply.headers.get(name).and_then(|v| v.to_str().ok()) {
                    Some(v) => set_var(vars, var, v.to_string()),
                    None => return Some(format!("extract {var}: header {name} not found")),
                }
            }
        }
    }
    None
}

fn set_var(vars: &mut HashMap<String, String>, var: &str, value: String) {
    match vars.get_mut(var) {
        Some(slot) => *slot = value,
        None => {
            vars.insert(var.to_string(), value);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    if needle.len() > hay.len() {
        return false;
    }
    let first = needle[0];
    hay.windows(needle.len())
        .any(|w| w[0] == first && w == needle)
}

/// Numbers compare by value (1 == 1.0); everything else structurally.
fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(p), Some(q), _, _) => p == q,
            (_, _, Some(p), Some(q)) => p == q,
            _ => x.as_f64() == y.as_f64(),
        },
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

const SHORT: usize = 60;

fn short_json(v: &serde_json::Value) -> String {
    truncate(v.to_string())
}

fn short_str(s: &str) -> String {
    truncate(serde_json::Value::String(s.to_string()).to_string())
}

fn truncate(mut s: String) -> String {
    if s.chars().count() > SHORT {
        let cut = s
            .char_indices()
            .nth(SHORT)
            .map(|(i, _)| i)
            .unwrap_or(s.len());
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, StatusCode};

    fn reply(status: u16, body: &str) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert("location", HeaderValue::from_static("/api/items/7"));
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: Bytes::from(body.to_string()),
            close: false,
        }
    }

    fn spec(toml_text: &str) -> CheckSpec {
        toml::from_str(toml_text).unwrap()
    }

    fn run(checks: &[&str], r: &Reply) -> Option<String> {
        let specs: Vec<CheckSpec> = checks.iter().map(|c| spec(c)).collect();
        let has = specs.iter().any(|s| s.status.is_some());
        let compiled = compile_checks(&specs).unwrap();
        evaluate(&compiled, has, r, &mut JsonBody::default())
    }

    #[test]
    fn implicit_status_rule() {
        assert_eq!(run(&[], &reply(200, "")), None);
        assert_eq!(run(&[], &reply(302, "")), None);
        assert_eq!(
            run(&[], &reply(500, "")).as_deref(),
            Some("status 500 (expected 2xx/3xx)")
        );
        // An explicit status check replaces the rule.
        assert_eq!(run(&["status = 404"], &reply(404, "")), None);
    }

    #[test]
    fn status_checks() {
        assert_eq!(
            run(&["status = 201"], &reply(404, "")).as_deref(),
            Some("check failed: status 404, expected 201")
        );
        assert_eq!(
            run(&["status = [200, 201]"], &reply(404, "")).as_deref(),
            Some("check failed: status 404, expected one of 200, 201")
        );
        assert_eq!(run(&["status = \"2xx\""], &reply(204, "")), None);
        assert_eq!(
            run(&["status = \"2XX\""], &reply(500, "")).as_deref(),
            Some("check failed: status 500, expected 2xx")
        );
    }

    #[test]
    fn body_and_json_checks() {
        let r = reply(200, r#"{"id": 7, "name": "y", "n": 1.0}"#);
        assert_eq!(run(&["body_contains = \"name\""], &r), None);
        assert_eq!(
            run(&["body_contains = \"abc\""], &r).as_deref(),
            Some("check failed: body lacks \"abc\"")
        );
        assert_eq!(
            run(&["json = \"/name\"\nequals = \"x\""], &r).as_deref(),
            Some("check failed: /name == \"x\", found \"y\"")
        );
        assert_eq!(run(&["json = \"/n\"\nequals = 1"], &r), None);
        assert_eq!(run(&["json = \"/id\"\nequals = 7"], &r), None);
        assert_eq!(
            run(&["json = \"/missing\"\nexists = true"], &r).as_deref(),
            Some("check failed: /missing missing")
        );
        assert_eq!(
            run(&["json = \"/id\"\nexists = false"], &r).as_deref(),
            Some("check failed: /id present, expected absent")
        );
        assert_eq!(
            run(&["json = \"/id\""], &reply(200, "not json")).as_deref(),
            Some("check failed: body is not JSON")
        );
    }

    #[test]
    fn extraction() {
        let specs: Vec<ExtractSpec> = vec![
            toml::from_str("var = \"item_id\"\njson = \"/id\"").unwrap(),
            toml::from_str("var = \"loc\"\nheader = \"Location\"").unwrap(),
        ];
        let ex = compile_extracts(&specs).unwrap();
        let mut vars = HashMap::new();
        let r = reply(201, r#"{"id": "abc"}"#);
        assert_eq!(extract(&ex, &r, &mut JsonBody::default(), &mut vars), None);
        assert_eq!(vars["item_id"], "abc");
        assert_eq!(vars["loc"], "/api/items/7");
        let r = reply(201, r#"{"id": 42}"#);
        assert_eq!(
            extract(&ex[..1], &r, &mut JsonBody::default(), &mut vars),
            None
        );
        assert_eq!(vars["item_id"], "42");
        let r = reply(201, r#"{"other": 1}"#);
        assert_eq!(
            extract(&ex, &r, &mut JsonBody::default(), &mut vars).as_deref(),
            Some("extract item_id: /id not found")
        );
    }
}
