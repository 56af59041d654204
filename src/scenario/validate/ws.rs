//! Validation of `[[ws]]`: the URL (scheme, allowed host), headers, subprotocol, each
//! message's template, expectation, timeout and extraction, and that every user does
//! something (messages or a hold).

use super::super::load_plan::{Check, Extractor, LoadPlan, Model, DEFAULT_TIMEOUT};
use super::super::{WsMessagePlan, WsPlan};
use super::requests::{extractor, header_templates, json_pointer, template};
use super::*;

/// Check every `[[ws]]` entry and resolve it.
pub(super) fn check_ws(
    ctx: &mut Ctx<'_>,
    s: &Scenario,
    allow: &[String],
    load: Option<&LoadPlan>,
) -> Vec<WsPlan> {
    if s.ws.is_empty() {
        return Vec::new();
    }
    match load.map(|l| &l.model) {
        None => ctx.at_key(
            "ws",
            "there are [[ws]] users but no [load] section saying how many users there are",
            Some(
                "add [load] with stages, e.g. stages = [{ duration = \"30s\", users = 10 }]".into(),
            ),
        ),
        Some(Model::Open { .. }) => ctx.at_key(
            "ws",
            "[[ws]] users need the closed model (a number of users); this [load] is open",
            Some("remove `model = \"open\"` from [load], and give stages with `users`".into()),
        ),
        Some(Model::Closed { .. }) => {}
    }
    if s.ws.len() > MAX_WS {
        ctx.at_key(
            &format!("ws[{MAX_WS}]"),
            format!(
                "at most {MAX_WS} [[ws]] entries per scenario; this file has {}",
                s.ws.len()
            ),
            None,
        );
    }
    let timeout = load.map_or(DEFAULT_TIMEOUT, |l| l.timeout);
    let specs = &s.ws[..s.ws.len().min(MAX_WS)];
    let mut out = Vec::with_capacity(specs.len());
    for (i, w) in specs.iter().enumerate() {
        let earlier: Vec<&str> = specs[..i].iter().map(|w| w.name.as_str()).collect();
        if let Some(plan) = check_one(ctx, i, w, &earlier, s, allow, timeout) {
            out.push(plan);
        }
    }
    if !s.requests.is_empty() || !specs.iter().all(|w| w.weight == Some(0)) {
        return out;
    }
    ctx.at_key(
        "ws",
        "every [[ws]] entry has weight 0 and there are no [[requests]]: no user would do anything",
        Some("give at least one [[ws]] entry a weight above 0".into()),
    );
    out
}

fn check_one(
    ctx: &mut Ctx<'_>,
    i: usize,
    w: &WsSpec,
    earlier: &[&str],
    s: &Scenario,
    allow: &[String],
    default_timeout: std::time::Duration,
) -> Option<WsPlan> {
    let p = format!("ws[{i}]");
    if w.name.trim().is_empty() {
        ctx.at_value(
            &format!("{p}.name"),
            "the [[ws]] name is empty",
            Some("reports refer to WebSocket users by name".into()),
        );
    } else if earlier.contains(&w.name.as_str()) {
        ctx.at_value(
            &format!("{p}.name"),
            format!("[[ws]] name \"{}\" is used twice", w.name),
            Some("give each [[ws]] entry its own name".into()),
        );
    }
    if let Some(n) = w.weight.filter(|n| *n > MAX_WEIGHT) {
        ctx.at_value(
            &format!("{p}.weight"),
            format!("weight is at most {MAX_WEIGHT}; found {n}"),
            Some("weights are relative: divide them all by the same number".into()),
        );
    }
    let url = ws_url(ctx, &p, &w.url, s, allow);
    let mut places = Vec::new();
    let headers = header_templates(ctx, &p, &w.headers, &mut places);
    for pl in &places {
        ctx.in_string(
            &pl.path,
            pl.column,
            pl.width,
            format!(
                "`{{{{{}}}}}`: handshake headers cannot use extracted values",
                pl.var
            ),
            Some("the handshake comes before any reply; use a generator like {{user.id}}".into()),
        );
    }
    for k in w.headers.keys() {
        let lower = k.to_ascii_lowercase();
        if lower.starts_with("sec-websocket-")
            || matches!(lower.as_str(), "host" | "upgrade" | "connection")
        {
            ctx.at_key(
                &sub(&format!("{p}.headers"), k),
                format!("`{k}` is set by the WebSocket handshake itself"),
                Some("offer a subprotocol with `subprotocol = \"...\"`".into()),
            );
        }
    }
    if let Some(sp) = &w.subprotocol {
        let token = !sp.is_empty()
            && sp
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !token {
            ctx.at_value(
                &format!("{p}.subprotocol"),
                format!("\"{sp}\" is not a subprotocol name (one token, no spaces or commas)"),
                Some("e.g. subprotocol = \"chat.v1\"".into()),
            );
        }
    }
    if w.messages.len() > MAX_WS_MESSAGES {
        ctx.at_key(
            &format!("{p}.messages[{MAX_WS_MESSAGES}]"),
            format!(
                "at most {MAX_WS_MESSAGES} messages per [[ws]] entry; this one has {}",
                w.messages.len()
            ),
            None,
        );
    }
    let hold = w.hold.map_or(std::time::Duration::ZERO, |h| h.0);
    if w.messages.is_empty() && hold.is_zero() {
        ctx.at_key(
            &p,
            format!(
                "[[ws]] \"{}\" has no messages and no hold: its users would connect and close at once",
                w.name
            ),
            Some(
                "add messages = [{ send = \"hello\", expect = { contains = \"hello\" } }], or hold = \"30s\" to keep the connection open"
                    .into(),
            ),
        );
    }
    let ping_interval = match w.ping_interval {
        Some(d) if d.0.is_zero() => {
            ctx.at_value(
                &format!("{p}.ping_interval"),
                "ping_interval is 0",
                Some("give a duration like \"5s\", or leave it out to send no pings".into()),
            );
            None
        }
        d => d.map(|d| d.0),
    };
    let mut extracted: Vec<String> = Vec::new();
    let mut messages = Vec::with_capacity(w.messages.len());
    for (j, m) in w.messages.iter().take(MAX_WS_MESSAGES).enumerate() {
        let mp = format!("{p}.messages[{j}]");
        messages.push(message(ctx, &mp, m, default_timeout, &mut extracted));
    }
    let messages: Option<Vec<WsMessagePlan>> = messages.into_iter().collect();
    Some(WsPlan {
        name: w.name.clone(),
        url: url?,
        weight: w.weight.unwrap_or(1),
        headers,
        subprotocol: w.subprotocol.clone(),
        messages: messages?,
        hold,
        ping_interval,
    })
}

/// `ws://` or `wss://`, with a host on the allow list.
fn ws_url(
    ctx: &mut Ctx<'_>,
    p: &str,
    text: &str,
    s: &Scenario,
    allow: &[String],
) -> Option<url::Url> {
    let up = format!("{p}.url");
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "ws" | "wss") && u.host_str().is_some() => {
            let host = url_host(&u).unwrap_or_default();
            if !allow.is_empty() && !allow.contains(&host) {
                ctx.at_value(
                    &up,
                    format!("WebSocket host `{host}` is not in target.allow_hosts"),
                    Some(format!(
                        "allowed: {}; add \"{host}\" to target.allow_hosts only if load may be sent there",
                        quoted_list(s.target.allow_hosts.iter().map(String::as_str))
                    )),
                );
            }
            Some(u)
        }
        Ok(u) => {
            ctx.at_value(
                &up,
                format!(
                    "unsupported scheme `{}`: a [[ws]] url is ws:// or wss://",
                    u.scheme()
                ),
                Some("write it like \"ws://127.0.0.1:8080/ws\" (wss:// uses target.tls)".into()),
            );
            None
        }
        Err(e) => {
            ctx.at_value(
                &up,
                format!("not a valid URL ({e}): \"{text}\""),
                Some("write it like \"ws://127.0.0.1:8080/ws\"".into()),
            );
            None
        }
    }
}

/// One message: its template (variables extracted by an earlier message only), its
/// expectation, timeout and extraction. `extracted` grows with what it extracts.
fn message(
    ctx: &mut Ctx<'_>,
    mp: &str,
    m: &WsMessageSpec,
    default_timeout: std::time::Duration,
    extracted: &mut Vec<String>,
) -> Option<WsMessagePlan> {
    let mut places = Vec::new();
    let send = template(ctx, &format!("{mp}.send"), &m.send, &mut places);
    for pl in &places {
        if !extracted.contains(&pl.var) {
            ctx.in_string(
                &pl.path,
                pl.column,
                pl.width,
                format!(
                    "`{{{{{}}}}}` is not extracted by an earlier message of this [[ws]] entry",
                    pl.var
                ),
                Some(format!(
                    "add extract = [{{ var = \"{}\", json = \"/...\" }}] to an earlier message, or use a generator like {{{{fake.word}}}}",
                    pl.var
                )),
            );
        }
    }
    let expect = m.expect.as_ref().and_then(|e| expect(ctx, mp, e));
    let timeout = match m.timeout {
        Some(t) if t.0.is_zero() => {
            ctx.at_value(&format!("{mp}.timeout"), "the timeout is 0", None);
            default_timeout
        }
        Some(t) => t.0,
        None => default_timeout,
    };
    if m.timeout.is_some() && m.expect.is_none() {
        ctx.at_key(
            &format!("{mp}.timeout"),
            "`timeout` is how long to wait for the `expect`ed reply, and this message expects none",
            Some("add expect = { contains = \"...\" }, or remove the timeout".into()),
        );
    }
    if !m.extract.is_empty() && m.expect.is_none() {
        ctx.at_key(
            &format!("{mp}.extract"),
            "`extract` reads the `expect`ed reply, and this message expects none",
            Some("add expect = { json = \"/id\" } to wait for the reply holding it".into()),
        );
    }
    let mut extract = Vec::new();
    for (k, e) in m.extract.iter().enumerate() {
        let spec = ExtractSpec {
            var: e.var.clone(),
            json: Some(e.json.clone()),
            header: None,
        };
        if let Some(x @ Extractor::Json { .. }) =
            extractor(ctx, &format!("{mp}.extract[{k}]"), &spec)
        {
            extracted.push(e.var.clone());
            extract.push(x);
        }
    }
    let expect = match (&m.expect, expect) {
        (Some(_), None) => return None,
        (_, e) => e,
    };
    Some(WsMessagePlan {
        send: send?,
        expect,
        timeout,
        extract,
    })
}

/// Exactly one of `json` (with `equals`, or alone: it exists) or `contains`.
fn expect(ctx: &mut Ctx<'_>, mp: &str, e: &WsExpectSpec) -> Option<Check> {
    let ep = format!("{mp}.expect");
    match (&e.json, &e.contains) {
        (Some(_), Some(_)) | (None, None) => {
            ctx.at_value(
                &ep,
                "an expect gives exactly one of `json` (a JSON pointer, with `equals` or alone) or `contains`",
                Some("e.g. expect = { json = \"/type\", equals = \"echo\" } or expect = { contains = \"pong\" }".into()),
            );
            None
        }
        (None, Some(c)) => {
            if e.equals.is_some() {
                ctx.at_key(
                    &format!("{ep}.equals"),
                    "`equals` goes with `json` (a JSON pointer)",
                    Some("e.g. expect = { json = \"/type\", equals = \"echo\" }".into()),
                );
                return None;
            }
            Some(Check::BodyContains(c.clone()))
        }
        (Some(ptr), None) => {
            let pointer = json_pointer(ctx, &format!("{ep}.json"), ptr)?;
            match &e.equals {
                None => Some(Check::JsonExists {
                    pointer,
                    exists: true,
                }),
                Some(v) => match serde_json::to_value(v) {
                    Ok(expected) => Some(Check::JsonEquals { pointer, expected }),
                    Err(err) => {
                        ctx.at_value(
                            &format!("{ep}.equals"),
                            format!("this value cannot be compared with JSON: {err}"),
                            None,
                        );
                        None
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Problems of a whole scenario with `ws` appended, as "key: message".
    fn problems(ws: &str) -> Vec<String> {
        let text = format!(
            "name = \"t\"\n[target]\nbase_url = \"http://127.0.0.1:1\"\nallow_hosts = [\"127.0.0.1\"]\n\
             [load]\nstages = [{{ duration = \"1s\", users = 1 }}]\n{ws}"
        );
        match crate::scenario::load_str(Path::new("t.toml"), &text) {
            Ok(_) => Vec::new(),
            Err(e) => {
                e.0.iter()
                    .map(|d| format!("{}: {}", d.key, d.message))
                    .collect()
            }
        }
    }

    #[test]
    fn ws_entries_resolve_or_say_why() {
        let ok = "[[ws]]\nname = \"chat\"\nurl = \"ws://127.0.0.1:1/ws\"\n\
                  messages = [{ send = \"hi {{user.id}}\", expect = { contains = \"hi\" }, timeout = \"2s\" }]\n";
        assert_eq!(problems(ok), Vec::<String>::new());
        let cases: &[(&str, &str)] = &[
            (
                "[[ws]]\nname = \"a\"\nurl = \"http://127.0.0.1:1/ws\"\nhold = \"1s\"\n",
                "ws[0].url: unsupported scheme `http`: a [[ws]] url is ws:// or wss://",
            ),
            (
                "[[ws]]\nname = \"a\"\nurl = \"ws://example.com/ws\"\nhold = \"1s\"\n",
                "ws[0].url: WebSocket host `example.com` is not in target.allow_hosts",
            ),
            (
                "[[ws]]\nname = \"a\"\nurl = \"ws://127.0.0.1:1/ws\"\n",
                "ws[0]: [[ws]] \"a\" has no messages and no hold: its users would connect and close at once",
            ),
            (
                "[[ws]]\nname = \"a\"\nurl = \"ws://127.0.0.1:1/ws\"\nmessages = [{ send = \"x\", expect = { contains = \"x\", json = \"/a\" } }]\n",
                "ws[0].messages[0].expect: an expect gives exactly one of `json` (a JSON pointer, with `equals` or alone) or `contains`",
            ),
            (
                "[[ws]]\nname = \"a\"\nurl = \"ws://127.0.0.1:1/ws\"\nmessages = [{ send = \"{{room}}\" }]\n",
                "ws[0].messages[0].send: `{{room}}` is not extracted by an earlier message of this [[ws]] entry",
            ),
            (
                "[[ws]]\nname = \"a\"\nurl = \"ws://127.0.0.1:1/ws\"\nhold = \"1s\"\nping_interval = \"0s\"\n",
                "ws[0].ping_interval: ping_interval is 0",
            ),
            (
                "[[ws]]\nname = \"a\"\nurl = \"ws://127.0.0.1:1/ws\"\nhold = \"1s\"\nsubprotocol = \"a b\"\n",
                "ws[0].subprotocol: \"a b\" is not a subprotocol name (one token, no spaces or commas)",
            ),
            (
                "[[ws]]\nname = \"a\"\nurl = \"ws://127.0.0.1:1/ws\"\nmessages = [{ send = \"x\", timeout = \"1s\" }]\n",
                "ws[0].messages[0].timeout: `timeout` is how long to wait for the `expect`ed reply, and this message expects none",
            ),
            (
                "[[ws]]\nname = \"a\"\nurl = \"ws://127.0.0.1:1/ws\"\nhold = \"1s\"\nheaders = { Sec-WebSocket-Protocol = \"x\" }\n",
                "ws[0].headers.Sec-WebSocket-Protocol: `Sec-WebSocket-Protocol` is set by the WebSocket handshake itself",
            ),
            (
                "[[ws]]\nname = \"a\"\nurl = \"ws://127.0.0.1:1/ws\"\nhold = \"1s\"\n[[ws]]\nname = \"a\"\nurl = \"ws://127.0.0.1:1/ws\"\nhold = \"1s\"\n",
                "ws[1].name: [[ws]] name \"a\" is used twice",
            ),
            (
                "[[ws]]\nname = \"a\"\nurl = \"ws://127.0.0.1:1/ws\"\nhold = \"1s\"\nbogus = 1\n",
                "ws[0].bogus: unknown key",
            ),
        ];
        for (ws, want) in cases {
            let got = problems(ws);
            assert!(
                got.iter().any(|g| g == want),
                "{ws}\nwant: {want}\ngot: {got:?}"
            );
        }
    }

    #[test]
    fn a_ws_check_on_an_http_request_is_refused_with_a_hint() {
        let text = "name = \"t\"\n[target]\nbase_url = \"http://127.0.0.1:1\"\nallow_hosts = [\"127.0.0.1\"]\n\
             [load]\nstages = [{ duration = \"1s\", users = 1 }]\n\
             [[requests]]\nname = \"r\"\npath = \"/\"\nexpect = { contains = \"x\" }\n";
        let e = crate::scenario::load_str(Path::new("t.toml"), text).unwrap_err();
        let d = &e.0[0];
        assert_eq!(d.key, "requests[0].expect");
        assert!(d.hint.as_deref().unwrap_or("").contains("[[ws]]"), "{d}");
    }
}
