//! Response checks and value extraction on the typed checks of the plan. A failure is
//! an error with a reason a person can act on: `check failed: status 404, expected 201`,
//! `check failed: body lacks "abc"`, `check failed: /name == "x", found "y"`,
//! `extract item_id: /id not found`.

use std::collections::HashMap;

use http::{HeaderName, StatusCode};

use super::client::Reply;
use crate::scenario::load_plan::{Check, Extractor, JsonPointer, StatusSet};

/// Why a response is an error (its `Display` is the reason in the report).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum CheckFailure {
    /// No `status` check, and the status is not 2xx/3xx.
    #[error("status {} (expected 2xx/3xx)", .0.as_u16())]
    Unexpected(StatusCode),
    #[error("check failed: status {}, expected {expected}", .status.as_u16())]
    Status {
        status: StatusCode,
        expected: StatusSet,
    },
    #[error("check failed: body lacks {}", short_str(.0))]
    BodyLacks(String),
    #[error("check failed: body is not JSON")]
    NotJson,
    #[error("check failed: {0} missing")]
    Missing(JsonPointer),
    #[error("check failed: {0} present, expected absent")]
    Present(JsonPointer),
    #[error("check failed: {pointer} == {}, found {found}", short_json(.expected))]
    NotEqual {
        pointer: JsonPointer,
        expected: serde_json::Value,
        found: Found,
    },
    #[error("extract {0}: body is not JSON")]
    ExtractNotJson(String),
    #[error("extract {var}: {pointer} not found")]
    ExtractMissing { var: String, pointer: JsonPointer },
    #[error("extract {var}: header {name} not found")]
    ExtractHeader { var: String, name: HeaderName },
}

/// A value of the response as a reason shows it: itself with `[report] show_values`,
/// else only its JSON type (a response value may be a token or personal data).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Found {
    Value(serde_json::Value),
    Hidden(&'static str),
}

impl Found {
    fn new(v: &serde_json::Value, show: bool) -> Found {
        use serde_json::Value as V;
        match v {
            _ if show => Found::Value(v.clone()),
            // Nothing to hide in these.
            V::Null | V::Bool(_) => Found::Value(v.clone()),
            V::Number(_) => Found::Hidden("a number"),
            V::String(_) => Found::Hidden("a string"),
            V::Array(_) => Found::Hidden("an array"),
            V::Object(_) => Found::Hidden("an object"),
        }
    }
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Found::Value(v) => f.write_str(&short_json(v)),
            Found::Hidden(kind) => write!(f, "{kind} (value hidden)"),
        }
    }
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
/// `show_values`: a reason may quote a value of the response.
pub(crate) fn evaluate(
    checks: &[Check],
    has_status_check: bool,
    reply: &Reply,
    json: &mut JsonBody,
    show_values: bool,
) -> Result<(), CheckFailure> {
    if !has_status_check && !(200..=399).contains(&reply.status.as_u16()) {
        return Err(CheckFailure::Unexpected(reply.status));
    }
    checks
        .iter()
        .try_for_each(|c| check(c, reply, json, show_values))
}

fn check(
    c: &Check,
    reply: &Reply,
    json: &mut JsonBody,
    show_values: bool,
) -> Result<(), CheckFailure> {
    match c {
        Check::Status(set) if !set.contains(reply.status) => Err(CheckFailure::Status {
            status: reply.status,
            expected: set.clone(),
        }),
        Check::Status(_) => Ok(()),
        _ => check_body(c, &reply.body, json, show_values),
    }
}

/// A check on a body alone (a WebSocket message's text); a status check passes.
pub(crate) fn check_body(
    c: &Check,
    body: &[u8],
    json: &mut JsonBody,
    show_values: bool,
) -> Result<(), CheckFailure> {
    match c {
        Check::Status(_) => Ok(()),
        Check::BodyContains(needle) if !contains(body, needle.as_bytes()) => {
            Err(CheckFailure::BodyLacks(needle.clone()))
        }
        Check::BodyContains(_) => Ok(()),
        Check::JsonEquals { pointer, expected } => {
            let v = json.get(body).ok_or(CheckFailure::NotJson)?;
            match v.pointer(pointer.as_str()) {
                None => Err(CheckFailure::Missing(pointer.clone())),
                Some(found) if !json_eq(found, expected) => Err(CheckFailure::NotEqual {
                    pointer: pointer.clone(),
                    expected: expected.clone(),
                    found: Found::new(found, show_values),
                }),
                Some(_) => Ok(()),
            }
        }
        Check::JsonExists { pointer, exists } => {
            let v = json.get(body).ok_or(CheckFailure::NotJson)?;
            match (v.pointer(pointer.as_str()).is_some(), exists) {
                (false, true) => Err(CheckFailure::Missing(pointer.clone())),
                (true, false) => Err(CheckFailure::Present(pointer.clone())),
                _ => Ok(()),
            }
        }
    }
}

/// Store every extracted value in `vars`; the first failure is returned.
pub(crate) fn extract(
    extractors: &[Extractor],
    reply: &Reply,
    json: &mut JsonBody,
    vars: &mut HashMap<String, String>,
) -> Result<(), CheckFailure> {
    for e in extractors {
        let value = match e {
            Extractor::Json { var, pointer } => json_value(var, pointer, &reply.body, json)?,
            Extractor::Header { var, name } => {
                match reply.headers.get(name).and_then(|v| v.to_str().ok()) {
                    Some(v) => v.to_string(),
                    None => {
                        return Err(CheckFailure::ExtractHeader {
                            var: var.clone(),
                            name: name.clone(),
                        })
                    }
                }
            }
        };
        set_var(vars, e.var(), value);
    }
    Ok(())
}

/// Store every JSON-extracted value of a body (a WebSocket message) in `vars`; header
/// extractors do not apply to a message and are skipped.
pub(crate) fn extract_body(
    extractors: &[Extractor],
    body: &[u8],
    json: &mut JsonBody,
    vars: &mut HashMap<String, String>,
) -> Result<(), CheckFailure> {
    for e in extractors {
        if let Extractor::Json { var, pointer } = e {
            let value = json_value(var, pointer, body, json)?;
            set_var(vars, var, value);
        }
    }
    Ok(())
}

/// The value at `pointer` as a variable holds it (a string as is, else its JSON).
fn json_value(
    var: &str,
    pointer: &JsonPointer,
    body: &[u8],
    json: &mut JsonBody,
) -> Result<String, CheckFailure> {
    let v = json
        .get(body)
        .ok_or_else(|| CheckFailure::ExtractNotJson(var.to_string()))?;
    match v.pointer(pointer.as_str()) {
        None | Some(serde_json::Value::Null) => Err(CheckFailure::ExtractMissing {
            var: var.to_string(),
            pointer: pointer.clone(),
        }),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
    }
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
    use http::{HeaderMap, HeaderValue};
    use serde_json::json;

    fn reply(status: u16, body: &str) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert("location", HeaderValue::from_static("/api/items/7"));
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: Bytes::from(body.to_string()),
            close: false,
            _held: Default::default(),
        }
    }

    fn code(c: u16) -> StatusCode {
        StatusCode::from_u16(c).unwrap()
    }

    fn ptr(p: &str) -> JsonPointer {
        JsonPointer::new(p).unwrap()
    }

    fn run(checks: &[Check], r: &Reply) -> Option<String> {
        run_showing(checks, r, true)
    }

    fn run_showing(checks: &[Check], r: &Reply, show: bool) -> Option<String> {
        let has = checks.iter().any(|c| matches!(c, Check::Status(_)));
        evaluate(checks, has, r, &mut JsonBody::default(), show)
            .err()
            .map(|e| e.to_string())
    }

    /// Without `show_values`, a reason names what was found, never its value.
    #[test]
    fn response_values_are_hidden_unless_shown() {
        let r = reply(200, r#"{"auth": "Bearer s3cret", "n": 5, "ok": false}"#);
        let eq = |p: &str, v: serde_json::Value| Check::JsonEquals {
            pointer: ptr(p),
            expected: v,
        };
        let cases = [
            (
                eq("/auth", json!("Bearer x")),
                "check failed: /auth == \"Bearer x\", found a string (value hidden)",
            ),
            (
                eq("/n", json!(4)),
                "check failed: /n == 4, found a number (value hidden)",
            ),
            (
                eq("/ok", json!(true)),
                "check failed: /ok == true, found false",
            ),
        ];
        for (c, want) in cases {
            let got = run_showing(std::slice::from_ref(&c), &r, false);
            assert_eq!(got.as_deref(), Some(want));
        }
        let shown = run_showing(&[eq("/auth", json!("Bearer x"))], &r, true).unwrap();
        assert!(shown.ends_with("found \"Bearer s3cret\""), "{shown}");
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
        let not_found = Check::Status(StatusSet::One(code(404)));
        assert_eq!(run(&[not_found], &reply(404, "")), None);
    }

    #[test]
    fn status_checks() {
        let cases: &[(StatusSet, u16, Option<&str>)] = &[
            (
                StatusSet::One(code(201)),
                404,
                Some("check failed: status 404, expected 201"),
            ),
            (
                StatusSet::Any(vec![code(200), code(201)]),
                404,
                Some("check failed: status 404, expected one of 200, 201"),
            ),
            (StatusSet::Class(2), 204, None),
            (
                StatusSet::Class(2),
                500,
                Some("check failed: status 500, expected 2xx"),
            ),
        ];
        for (set, status, want) in cases {
            let got = run(&[Check::Status(set.clone())], &reply(*status, ""));
            assert_eq!(got.as_deref(), *want, "{set:?} {status}");
        }
    }

    #[test]
    fn body_and_json_checks() {
        let r = reply(200, r#"{"id": 7, "name": "y", "n": 1.0}"#);
        let equals = |p: &str, v: serde_json::Value| Check::JsonEquals {
            pointer: ptr(p),
            expected: v,
        };
        let exists = |p: &str, e: bool| Check::JsonExists {
            pointer: ptr(p),
            exists: e,
        };
        let cases: Vec<(Check, Option<&str>)> = vec![
            (Check::BodyContains("name".into()), None),
            (
                Check::BodyContains("abc".into()),
                Some("check failed: body lacks \"abc\""),
            ),
            (
                equals("/name", json!("x")),
                Some("check failed: /name == \"x\", found \"y\""),
            ),
            (equals("/n", json!(1)), None),
            (equals("/id", json!(7)), None),
            (
                exists("/missing", true),
                Some("check failed: /missing missing"),
            ),
            (
                exists("/id", false),
                Some("check failed: /id present, expected absent"),
            ),
        ];
        for (c, want) in cases {
            assert_eq!(run(std::slice::from_ref(&c), &r).as_deref(), want, "{c:?}");
        }
        assert_eq!(
            run(&[exists("/id", true)], &reply(200, "not json")).as_deref(),
            Some("check failed: body is not JSON")
        );
    }

    #[test]
    fn extraction() {
        let ex = vec![
            Extractor::Json {
                var: "item_id".into(),
                pointer: ptr("/id"),
            },
            Extractor::Header {
                var: "loc".into(),
                name: HeaderName::from_static("location"),
            },
        ];
        let mut vars = HashMap::new();
        let r = reply(201, r#"{"id": "abc"}"#);
        assert_eq!(
            extract(&ex, &r, &mut JsonBody::default(), &mut vars),
            Ok(())
        );
        assert_eq!(vars["item_id"], "abc");
        assert_eq!(vars["loc"], "/api/items/7");
        let r = reply(201, r#"{"id": 42}"#);
        assert_eq!(
            extract(&ex[..1], &r, &mut JsonBody::default(), &mut vars),
            Ok(())
        );
        assert_eq!(vars["item_id"], "42");
        let r = reply(201, r#"{"other": 1}"#);
        assert_eq!(
            extract(&ex, &r, &mut JsonBody::default(), &mut vars)
                .unwrap_err()
                .to_string(),
            "extract item_id: /id not found"
        );
    }
}
