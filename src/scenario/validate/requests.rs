//! Validation of [[requests]]: methods, paths, templates, extraction, checks, and the order extractors run in.

use std::collections::HashMap;

use super::super::load_plan::{Check, Extractor, JsonPointer, StatusSet};
use super::super::source::{parse_path, show_path, Ctx, Seg};
use super::super::suggest::closest;
use super::super::template::{self, BodyTemplate, JsonPathElem, JsonTemplate, Template};
use super::super::RequestPlan;
use super::*;

/// Parse a template string, reporting a problem at its place inside the string.
pub(super) fn template(
    ctx: &mut Ctx<'_>,
    path: &str,
    text: &str,
    places: &mut Vec<VarPlace>,
) -> Option<Template> {
    match Template::parse(text) {
        Ok(t) => {
            for (var, column, width) in template::var_places(text) {
                places.push(VarPlace {
                    var,
                    path: path.to_string(),
                    column,
                    width,
                });
            }
            Some(t)
        }
        Err(e) => {
            ctx.in_string(path, e.column, e.width, e.message, e.hint);
            None
        }
    }
}

/// Check every string of a JSON body as a template (reporting each problem at its
/// place) and note where its variables are. False when some string does not parse.
pub(super) fn json_strings(
    ctx: &mut Ctx<'_>,
    v: &toml::Value,
    path: &mut Vec<Seg>,
    places: &mut Vec<VarPlace>,
) -> bool {
    match v {
        toml::Value::String(s) => template(ctx, &show_path(path), s, places).is_some(),
        toml::Value::Array(a) => {
            let mut ok = true;
            for (i, x) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                ok &= json_strings(ctx, x, path, places);
                path.pop();
            }
            ok
        }
        toml::Value::Table(t) => {
            let mut ok = true;
            for (k, x) in t {
                path.push(Seg::Key(k.clone()));
                ok &= json_strings(ctx, x, path, places);
                path.pop();
            }
            ok
        }
        _ => true,
    }
}

/// A JSON pointer, or a diagnostic at `path` with the likely fix.
pub(super) fn json_pointer(ctx: &mut Ctx<'_>, path: &str, ptr: &str) -> Option<JsonPointer> {
    let p = JsonPointer::new(ptr);
    if p.is_none() {
        ctx.at_value(
            path,
            format!("a JSON pointer starts with `/`; found \"{ptr}\""),
            Some(format!(
                "did you mean \"/{}\"?",
                ptr.trim_start_matches(['$', '.']).replace('.', "/")
            )),
        );
    }
    p
}

/// Check one `[[requests]]` table and resolve it. `earlier` are the names before it.
pub(super) fn check_request(
    ctx: &mut Ctx<'_>,
    i: usize,
    r: &RequestSpec,
    earlier: &[&str],
) -> (RequestPlan, Vec<VarPlace>) {
    let p = format!("requests[{i}]");
    let mut places = Vec::new();
    check_name(ctx, &p, r, earlier);
    if let Some(w) = r.weight.filter(|w| *w > MAX_WEIGHT) {
        ctx.at_value(
            &format!("{p}.weight"),
            format!("weight is at most {MAX_WEIGHT}; found {w}"),
            Some("weights are relative: divide them all by the same number".into()),
        );
    }
    let method = method(ctx, &p, r);
    let path = request_path(ctx, &p, r, &mut places);
    let headers = headers(ctx, &p, r, &mut places);
    let body = body(ctx, &p, r, &mut places);
    let extract = extractors(ctx, &p, r);
    let checks = checks(ctx, &p, r);
    let redirects = match r.follow_redirects {
        None | Some(FollowRedirects::On(false)) => 0,
        Some(FollowRedirects::On(true)) => DEFAULT_REDIRECTS,
        Some(FollowRedirects::Max(n)) if n > MAX_REDIRECTS => {
            ctx.at_value(
                &format!("{p}.follow_redirects"),
                format!("follow_redirects is at most {MAX_REDIRECTS}; found {n}"),
                Some(format!(
                    "a longer chain is a redirect loop; true follows up to {DEFAULT_REDIRECTS}"
                )),
            );
            0
        }
        Some(FollowRedirects::Max(n)) => n,
    };
    let plan = RequestPlan {
        name: r.name.clone(),
        weight: r.weight.unwrap_or(1),
        method,
        path: path.unwrap_or_default(),
        headers,
        body,
        extract,
        checks,
        needs: Vec::new(),
        redirects,
        target: 0,
    };
    (plan, places)
}

/// Not empty, and unique (criteria and reports refer to it).
fn check_name(ctx: &mut Ctx<'_>, p: &str, r: &RequestSpec, earlier: &[&str]) {
    if r.name.trim().is_empty() {
        ctx.at_value(
            &format!("{p}.name"),
            "the request name is empty",
            Some("criteria and reports refer to requests by name".into()),
        );
    } else if let Some(j) = earlier.iter().position(|n| *n == r.name) {
        let other = ctx.file_path(&format!("requests[{j}].name"));
        let line = {
            let f = ctx.find(&other);
            ctx.diagnostic(f.value, "", String::new(), None).line
        };
        let j = match other.get(1) {
            Some(Seg::Index(k)) => *k,
            _ => j,
        };
        ctx.at_value(
            &format!("{p}.name"),
            format!("request name \"{}\" is used twice", r.name),
            Some(format!(
                "also requests[{j}] (line {line}); criteria and reports need unique names"
            )),
        );
    }
}

/// One of [`METHODS`], any case; GET when absent.
fn method(ctx: &mut Ctx<'_>, p: &str, r: &RequestSpec) -> http::Method {
    let text = r.method.as_deref().unwrap_or("GET");
    let upper = text.to_ascii_uppercase();
    if METHODS.contains(&upper.as_str()) {
        return http::Method::from_bytes(upper.as_bytes()).unwrap_or(http::Method::GET);
    }
    let hint = match closest(&upper, METHODS.iter().copied()) {
        Some(m) => format!("did you mean {m}? valid: {}", METHODS.join(", ")),
        None => format!("valid: {}", METHODS.join(", ")),
    };
    ctx.at_value(
        &format!("{p}.method"),
        format!("unknown HTTP method `{text}`"),
        Some(hint),
    );
    http::Method::GET
}

/// Starts with `/` (or a placeholder), and parses as a template.
fn request_path(
    ctx: &mut Ctx<'_>,
    p: &str,
    r: &RequestSpec,
    places: &mut Vec<VarPlace>,
) -> Option<Template> {
    let path_path = format!("{p}.path");
    if !r.path.starts_with('/') && !r.path.starts_with("{{") {
        ctx.at_value(
            &path_path,
            format!("the path must start with `/`; found \"{}\"", r.path),
            Some("it is joined to target.base_url".into()),
        );
    }
    template(ctx, &path_path, &r.path, places)
}

/// Valid names, values without line breaks, each value a template.
fn headers(
    ctx: &mut Ctx<'_>,
    p: &str,
    r: &RequestSpec,
    places: &mut Vec<VarPlace>,
) -> Vec<(http::HeaderName, Template)> {
    header_templates(ctx, p, &r.headers, places)
}

/// `headers` of a request or a `[[ws]]` entry at `p`.
pub(super) fn header_templates(
    ctx: &mut Ctx<'_>,
    p: &str,
    headers: &std::collections::BTreeMap<String, String>,
    places: &mut Vec<VarPlace>,
) -> Vec<(http::HeaderName, Template)> {
    let mut out = Vec::new();
    for (k, v) in headers {
        let hp = sub(&format!("{p}.headers"), k);
        let name = match http::HeaderName::from_bytes(k.as_bytes()) {
            Ok(n) => Some(n),
            Err(_) => {
                ctx.at_key(&hp, format!("`{k}` is not a valid header name"), None);
                None
            }
        };
        if v.chars().any(|c| c.is_control() && c != '\t') {
            ctx.at_value(
                &hp,
                "header values cannot hold line breaks or control characters",
                None,
            );
        }
        if let (Some(n), Some(t)) = (name, template(ctx, &hp, v, places)) {
            out.push((n, t));
        }
    }
    out
}

/// `body` (raw text) or `json` (a document), not both; every string a template.
fn body(
    ctx: &mut Ctx<'_>,
    p: &str,
    r: &RequestSpec,
    places: &mut Vec<VarPlace>,
) -> Option<BodyTemplate> {
    if r.body.is_some() && r.json.is_some() {
        ctx.at_key(
            &format!("{p}.json"),
            "`json` and `body` are exclusive: give one",
            Some("`json` sends a JSON document, `body` sends raw text".into()),
        );
    }
    let raw = r
        .body
        .as_ref()
        .and_then(|b| template(ctx, &format!("{p}.body"), b, places));
    let json = r.json.as_ref().and_then(|j| json_body(ctx, p, j, places));
    match (raw, json) {
        _ if r.body.is_some() && r.json.is_some() => None,
        (Some(raw), _) => Some(BodyTemplate::Raw(raw)),
        (None, json) => json,
    }
}

fn json_body(
    ctx: &mut Ctx<'_>,
    p: &str,
    j: &toml::Value,
    places: &mut Vec<VarPlace>,
) -> Option<BodyTemplate> {
    let mut base = parse_path(&format!("{p}.json"));
    if !json_strings(ctx, j, &mut base, places) {
        return None;
    }
    match JsonTemplate::compile(j) {
        Ok(t) => Some(BodyTemplate::Json(t)),
        Err(e) => {
            let mut path = parse_path(&format!("{p}.json"));
            path.extend(e.path.iter().map(|el| match el {
                JsonPathElem::Key(k) => Seg::Key(k.clone()),
                JsonPathElem::Index(i) => Seg::Index(*i),
            }));
            ctx.in_string(
                &show_path(&path),
                e.error.column,
                e.error.width,
                e.error.message,
                e.error.hint,
            );
            None
        }
    }
}

fn extractors(ctx: &mut Ctx<'_>, p: &str, r: &RequestSpec) -> Vec<Extractor> {
    r.extract
        .iter()
        .enumerate()
        .filter_map(|(j, e)| extractor(ctx, &format!("{p}.extract[{j}]"), e))
        .collect()
}

/// A variable name (not a generator's), and exactly one of a JSON pointer or a header.
pub(super) fn extractor(ctx: &mut Ctx<'_>, ep: &str, e: &ExtractSpec) -> Option<Extractor> {
    if !is_ident(&e.var) {
        ctx.at_value(
            &format!("{ep}.var"),
            format!("`{}` is not a variable name", e.var),
            Some("use letters, digits and `_`, not starting with a digit, like item_id".into()),
        );
    } else if template::RESERVED.contains(&e.var.as_str()) {
        ctx.at_value(
            &format!("{ep}.var"),
            format!("`{}` is reserved for generators; pick another name", e.var),
            None,
        );
    }
    let var = e.var.clone();
    match (&e.json, &e.header) {
        (Some(_), Some(_)) | (None, None) => {
            ctx.at_value(
                ep,
                "an extract gives exactly one of `json` (a JSON pointer like \"/id\") or `header`",
                Some("e.g. extract = [{ var = \"item_id\", json = \"/id\" }]".into()),
            );
            None
        }
        (Some(ptr), None) => json_pointer(ctx, &format!("{ep}.json"), ptr)
            .map(|pointer| Extractor::Json { var, pointer }),
        (None, Some(h)) => match http::HeaderName::from_bytes(h.as_bytes()) {
            Ok(name) => Some(Extractor::Header { var, name }),
            Err(_) => {
                ctx.at_value(
                    &format!("{ep}.header"),
                    format!("`{h}` is not a valid header name"),
                    None,
                );
                None
            }
        },
    }
}

fn checks(ctx: &mut Ctx<'_>, p: &str, r: &RequestSpec) -> Vec<Check> {
    r.checks
        .iter()
        .enumerate()
        .filter_map(|(j, c)| check(ctx, &format!("{p}.checks[{j}]"), c))
        .collect()
}

/// Exactly one of `status`, `body_contains` or `json` (with `equals` or `exists`).
pub(super) fn check(ctx: &mut Ctx<'_>, cp: &str, c: &CheckSpec) -> Option<Check> {
    let given = [
        c.status.is_some(),
        c.body_contains.is_some(),
        c.json.is_some(),
    ];
    let n = given.iter().filter(|x| **x).count();
    if n != 1 {
        ctx.at_value(
            cp,
            format!("a check gives exactly one of `status`, `body_contains` or `json`; this one gives {n}"),
            Some("e.g. checks = [{ status = 201 }, { json = \"/id\", exists = true }]".into()),
        );
    }
    let json = json_check(ctx, cp, c);
    let status = c
        .status
        .as_ref()
        .and_then(|s| status_set(ctx, &format!("{cp}.status"), s));
    if n != 1 {
        return None;
    }
    if c.status.is_some() {
        return status.map(Check::Status);
    }
    if let Some(b) = &c.body_contains {
        return Some(Check::BodyContains(b.clone()));
    }
    json
}

/// `json` with `equals` or `exists` (not both); those two only with `json`.
fn json_check(ctx: &mut Ctx<'_>, cp: &str, c: &CheckSpec) -> Option<Check> {
    let Some(ptr) = &c.json else {
        for (key, present) in [
            ("equals", c.equals.is_some()),
            ("exists", c.exists.is_some()),
        ] {
            if present {
                ctx.at_key(
                    &format!("{cp}.{key}"),
                    format!("`{key}` goes with `json` (a JSON pointer)"),
                    Some(format!("e.g. {{ json = \"/id\", {key} = ... }}")),
                );
            }
        }
        return None;
    };
    if c.equals.is_some() && c.exists.is_some() {
        ctx.at_key(
            &format!("{cp}.exists"),
            "give `equals` or `exists`, not both",
            None,
        );
    }
    let pointer = json_pointer(ctx, &format!("{cp}.json"), ptr)?;
    match &c.equals {
        None => Some(Check::JsonExists {
            pointer,
            exists: c.exists.unwrap_or(true),
        }),
        Some(v) => match serde_json::to_value(v) {
            Ok(expected) => Some(Check::JsonEquals { pointer, expected }),
            Err(e) => {
                ctx.at_value(
                    &format!("{cp}.equals"),
                    format!("this value cannot be compared with JSON: {e}"),
                    None,
                );
                None
            }
        },
    }
}

/// A status (100 to 599), a non-empty list of them, or a class like "2xx".
pub(super) fn status_set(ctx: &mut Ctx<'_>, sp: &str, s: &StatusCheck) -> Option<StatusSet> {
    let code = |ctx: &mut Ctx<'_>, path: &str, c: u16| {
        let ok = (100..=599).contains(&c);
        if !ok {
            ctx.at_value(
                path,
                format!("{c} is not an HTTP status (100 to 599)"),
                None,
            );
        }
        ok.then(|| http::StatusCode::from_u16(c).ok()).flatten()
    };
    match s {
        StatusCheck::One(c) => code(ctx, sp, *c).map(StatusSet::One),
        StatusCheck::Any(codes) => {
            if codes.is_empty() {
                ctx.at_value(sp, "the status list is empty", None);
            }
            let all: Vec<_> = codes
                .iter()
                .enumerate()
                .map(|(k, c)| code(ctx, &format!("{sp}[{k}]"), *c))
                .collect();
            let all: Option<Vec<_>> = all.into_iter().collect();
            all.filter(|v| !v.is_empty()).map(StatusSet::Any)
        }
        StatusCheck::Class(class) => {
            let set = StatusSet::class(class);
            if set.is_none() {
                ctx.at_value(
                    sp,
                    format!("a status class looks like \"2xx\"; found \"{class}\""),
                    Some("or give a code (201) or a list ([200, 201])".into()),
                );
            }
            set
        }
    }
}

/// Every `{{var}}` must be extracted by some request; record which one runs first, and
/// refuse requests that need each other.
pub(super) fn resolve_needs(
    ctx: &mut Ctx<'_>,
    specs: &[RequestSpec],
    places: &[Vec<VarPlace>],
    plans: &mut [RequestPlan],
) {
    let mut extractors: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, r) in specs.iter().enumerate() {
        for e in &r.extract {
            extractors.entry(e.var.as_str()).or_default().push(i);
        }
    }
    let names = quoted_list(specs.iter().map(|r| r.name.as_str()));
    for (i, ps) in places.iter().enumerate() {
        plans[i].needs = needs_of(ctx, i, ps, &extractors, &names);
    }
    refuse_cycles(ctx, plans);
}

/// What request `i` needs from the others (the first other request extracting each of
/// its variables); a variable nobody extracts is a problem at its place.
fn needs_of(
    ctx: &mut Ctx<'_>,
    i: usize,
    places: &[VarPlace],
    extractors: &HashMap<&str, Vec<usize>>,
    names: &str,
) -> Vec<(String, usize)> {
    let mut needs: Vec<(String, usize)> = Vec::new();
    for pl in places {
        match extractors.get(pl.var.as_str()) {
            None => {
                let mut hint = match closest(&pl.var, extractors.keys().copied()) {
                    Some(m) => format!("did you mean `{{{{{m}}}}}`? "),
                    None => String::new(),
                };
                hint.push_str(&format!(
                    "add extract = [{{ var = \"{}\", json = \"/...\" }}] to the request whose response holds it (requests: {names})",
                    pl.var
                ));
                ctx.in_string(
                    &pl.path,
                    pl.column,
                    pl.width,
                    format!("`{{{{{}}}}}` is not extracted by any request", pl.var),
                    Some(hint),
                );
            }
            Some(from) => {
                if let Some(&j) = from.iter().find(|&&j| j != i) {
                    if !needs.iter().any(|(v, _)| *v == pl.var) {
                        needs.push((pl.var.clone(), j));
                    }
                }
            }
        }
    }
    needs
}

/// A request may not need itself through others: nothing could run first. Each cycle
/// is reported once, at its first request, and its needs are dropped.
fn refuse_cycles(ctx: &mut Ctx<'_>, plans: &mut [RequestPlan]) {
    let n = plans.len();
    let mut state = vec![Visit::New; n];
    for i in 0..n {
        if state[i] != Visit::New {
            continue;
        }
        let mut stack = Vec::new();
        if let Some(cycle) = find_cycle(i, plans, &mut state, &mut stack) {
            let names: Vec<String> = cycle
                .iter()
                .map(|&k| format!("\"{}\"", plans[k].name))
                .collect();
            ctx.at_value(
                &format!("requests[{}].name", cycle[0]),
                format!(
                    "requests {} need values from each other, so none can run first",
                    names.join(" and ")
                ),
                Some("let one of them extract its value without needing the others".into()),
            );
            for k in cycle {
                plans[k].needs.clear();
                state[k] = Visit::Done;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    OnStack,
    Done,
}

/// Depth-first from `i`: the first cycle met, as the requests on it.
fn find_cycle(
    i: usize,
    plans: &[RequestPlan],
    state: &mut [Visit],
    stack: &mut Vec<usize>,
) -> Option<Vec<usize>> {
    state[i] = Visit::OnStack;
    stack.push(i);
    for &(_, j) in &plans[i].needs {
        match state[j] {
            Visit::OnStack => {
                let at = stack.iter().position(|&k| k == j).unwrap_or(0);
                return Some(stack[at..].to_vec());
            }
            Visit::New => {
                if let Some(c) = find_cycle(j, plans, state, stack) {
                    return Some(c);
                }
            }
            Visit::Done => {}
        }
    }
    stack.pop();
    state[i] = Visit::Done;
    None
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde::de::DeserializeOwned;

    use super::*;

    /// Run `f` on an empty scenario text; its result and the problems, as "key: message".
    fn checked<T>(f: impl FnOnce(&mut Ctx<'_>) -> T) -> (T, Vec<String>) {
        let mut ctx = Ctx::new(Path::new("t.toml"), "");
        let out = f(&mut ctx);
        let diags = ctx
            .diags
            .iter()
            .map(|d| format!("{}: {}", d.key, d.message))
            .collect();
        (out, diags)
    }

    fn spec<T: DeserializeOwned>(toml_text: &str) -> T {
        toml::from_str(toml_text).unwrap()
    }

    fn code(c: u16) -> http::StatusCode {
        http::StatusCode::from_u16(c).unwrap()
    }

    fn ptr(p: &str) -> JsonPointer {
        JsonPointer::new(p).unwrap()
    }

    #[test]
    fn checks_resolve_or_say_why() {
        let cases: Vec<(&str, Option<Check>, &[&str])> = vec![
            ("status = 201", Some(Check::Status(StatusSet::One(code(201)))), &[]),
            (
                "status = [200, 201]",
                Some(Check::Status(StatusSet::Any(vec![code(200), code(201)]))),
                &[],
            ),
            ("status = \"2xx\"", Some(Check::Status(StatusSet::Class(2))), &[]),
            (
                "status = 99",
                None,
                &["c.status: 99 is not an HTTP status (100 to 599)"],
            ),
            ("status = []", None, &["c.status: the status list is empty"]),
            (
                "status = [200, 700]",
                None,
                &["c.status[1]: 700 is not an HTTP status (100 to 599)"],
            ),
            (
                "status = \"2xy\"",
                None,
                &["c.status: a status class looks like \"2xx\"; found \"2xy\""],
            ),
            (
                "body_contains = \"ok\"",
                Some(Check::BodyContains("ok".into())),
                &[],
            ),
            (
                "json = \"/id\"",
                Some(Check::JsonExists {
                    pointer: ptr("/id"),
                    exists: true,
                }),
                &[],
            ),
            (
                "json = \"/id\"\nequals = 7",
                Some(Check::JsonEquals {
                    pointer: ptr("/id"),
                    expected: serde_json::json!(7),
                }),
                &[],
            ),
            (
                "json = \"id\"",
                None,
                &["c.json: a JSON pointer starts with `/`; found \"id\""],
            ),
            (
                "equals = 1",
                None,
                &[
                    "c: a check gives exactly one of `status`, `body_contains` or `json`; this one gives 0",
                    "c.equals: `equals` goes with `json` (a JSON pointer)",
                ],
            ),
            (
                "status = 200\nbody_contains = \"x\"",
                None,
                &["c: a check gives exactly one of `status`, `body_contains` or `json`; this one gives 2"],
            ),
        ];
        for (text, want, problems) in cases {
            let (got, diags) = checked(|ctx| check(ctx, "c", &spec::<CheckSpec>(text)));
            assert_eq!(got, want, "{text}");
            assert_eq!(diags, problems.to_vec(), "{text}");
        }
        // Both `equals` and `exists`: a problem (so no plan comes out of it).
        let (_, diags) =
            checked(|ctx| check(ctx, "c", &spec("json = \"/a\"\nequals = 1\nexists = true")));
        assert_eq!(diags, ["c.exists: give `equals` or `exists`, not both"]);
    }

    #[test]
    fn extractors_resolve_or_say_why() {
        let cases: Vec<(&str, Option<Extractor>, &[&str])> = vec![
            (
                "var = \"id\"\njson = \"/id\"",
                Some(Extractor::Json {
                    var: "id".into(),
                    pointer: ptr("/id"),
                }),
                &[],
            ),
            (
                "var = \"loc\"\nheader = \"Location\"",
                Some(Extractor::Header {
                    var: "loc".into(),
                    name: http::HeaderName::from_static("location"),
                }),
                &[],
            ),
            (
                "var = \"a\"",
                None,
                &["e: an extract gives exactly one of `json` (a JSON pointer like \"/id\") or `header`"],
            ),
            (
                "var = \"a\"\nheader = \"x y\"",
                None,
                &["e.header: `x y` is not a valid header name"],
            ),
            (
                "var = \"fake\"\njson = \"/id\"",
                Some(Extractor::Json {
                    var: "fake".into(),
                    pointer: ptr("/id"),
                }),
                &["e.var: `fake` is reserved for generators; pick another name"],
            ),
            (
                "var = \"1x\"\njson = \"$.id\"",
                None,
                &[
                    "e.var: `1x` is not a variable name",
                    "e.json: a JSON pointer starts with `/`; found \"$.id\"",
                ],
            ),
        ];
        for (text, want, problems) in cases {
            let (got, diags) = checked(|ctx| extractor(ctx, "e", &spec::<ExtractSpec>(text)));
            assert_eq!(got, want, "{text}");
            assert_eq!(diags, problems.to_vec(), "{text}");
        }
    }
}
