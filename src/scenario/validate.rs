//! Semantic checks on a parsed [`Scenario`] (every problem is collected), then the
//! resolution into a [`Plan`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::model::*;
use super::source::{parse_path, show_path, Ctx, Seg};
use super::suggest::closest;
use super::template::{self, BodyTemplate, JsonPathElem, JsonTemplate, Template};
use super::{Plan, RequestPlan};
use crate::grade::criteria;

/// At most this many virtual users in one stage.
const MAX_USERS: u32 = 100_000;
/// Added to the load's duration when the scenario gives no hard cap.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// `base` followed by one key, quoted when needed: `requests[0].headers."x y"`.
fn sub(base: &str, key: &str) -> String {
    let mut p = parse_path(base);
    p.push(Seg::Key(key.to_string()));
    show_path(&p)
}

fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn quoted_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut v: Vec<String> = Vec::new();
    for s in items {
        let q = format!("\"{s}\"");
        if !v.contains(&q) {
            v.push(q);
        }
    }
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn norm_host(h: &str) -> String {
    h.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

fn url_host(u: &url::Url) -> Option<String> {
    u.host_str().map(norm_host)
}

fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// "host:port" with a numeric port.
fn host_port_ok(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((h, p)) => !h.is_empty() && p.parse::<u16>().is_ok(),
        None => false,
    }
}

/// "64KiB", "512MiB", "1GB", "100B", "64KiB/s" (units as the chaos proxy reads them).
fn size_ok(s: &str) -> bool {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    num.parse::<f64>().is_ok()
        && matches!(
            unit.trim_end_matches("/s"),
            "" | "b" | "k" | "kb" | "kib" | "m" | "mb" | "mib" | "g" | "gb" | "gib"
        )
}

/// Where the `{{var}}` placeholders of one template string are.
struct VarPlace {
    var: String,
    path: String,
    column: usize,
    width: usize,
}

pub(crate) fn validate(ctx: &mut Ctx<'_>, mut s: Scenario) -> Option<Plan> {
    if s.name.trim().is_empty() {
        ctx.at_value(
            "name",
            "the scenario name is empty",
            Some("give it a short name; it appears in reports and the run id".into()),
        );
    }

    // --- target -------------------------------------------------------------------
    let allow: Vec<String> = s.target.allow_hosts.iter().map(|h| norm_host(h)).collect();
    if allow.is_empty() {
        ctx.at_value(
            "target.allow_hosts",
            "target.allow_hosts is empty, so load may not be sent anywhere",
            Some("list the hosts load may be sent to, e.g. allow_hosts = [\"127.0.0.1\", \"localhost\"]".into()),
        );
    }
    for (i, h) in s.target.allow_hosts.iter().enumerate() {
        if h.trim().is_empty()
            || h.contains('/')
            || (h.contains(':') && !h.contains("::") && !h.starts_with('['))
        {
            ctx.at_value(
                &format!("target.allow_hosts[{i}]"),
                format!("`{h}` is not a host name"),
                Some("write the host alone, without scheme or port, like \"127.0.0.1\"".into()),
            );
        }
    }
    let allowed_hint = |host: &str| {
        Some(format!(
            "allowed: {}; add \"{host}\" to target.allow_hosts only if load may be sent there",
            quoted_list(s.target.allow_hosts.iter().map(String::as_str))
        ))
    };
    let base_url = match url::Url::parse(&s.target.base_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            let host = url_host(&u).unwrap_or_default();
            if !allow.is_empty() && !allow.contains(&host) {
                ctx.at_value(
                    "target.base_url",
                    format!("target host `{host}` is not in target.allow_hosts"),
                    allowed_hint(&host),
                );
            }
            Some(u)
        }
        Ok(u) => {
            ctx.at_value(
                "target.base_url",
                format!(
                    "target.base_url must be an http:// or https:// URL; found scheme `{}`",
                    u.scheme()
                ),
                Some("write it like \"http://127.0.0.1:8080\"".into()),
            );
            None
        }
        Err(e) => {
            ctx.at_value(
                "target.base_url",
                format!(
                    "target.base_url is not a valid URL ({e}): \"{}\"",
                    s.target.base_url
                ),
                Some("write it like \"http://127.0.0.1:8080\"".into()),
            );
            None
        }
    };

    // --- load -----------------------------------------------------------------------
    match (&s.load, s.requests.is_empty()) {
        (Some(_), true) => ctx.at_key(
            "load",
            "[load] is given but there are no [[requests]] to send",
            Some("add at least one [[requests]] table, or remove [load]".into()),
        ),
        (None, false) => ctx.at_key(
            "requests",
            "there are [[requests]] but no [load] section saying how many users send them",
            Some(
                "add [load] with stages, e.g. stages = [{ duration = \"30s\", users = 10 }]".into(),
            ),
        ),
        _ => {}
    }
    let load_duration = s
        .load
        .as_ref()
        .map(|l| check_load(ctx, l))
        .unwrap_or_default();

    // --- services -------------------------------------------------------------------
    let service_names: Vec<String> = s.services.iter().map(|sv| sv.name.clone()).collect();
    let base_dir = scenario_dir(ctx.file);
    for (i, sv) in s.services.iter_mut().enumerate() {
        check_service(ctx, i, sv, s.backend, &service_names[..i]);
        for p in [&mut sv.cwd, &mut sv.pid_file].into_iter().flatten() {
            if p.is_relative() {
                *p = base_dir.join(&*p);
            }
        }
    }

    // --- requests -------------------------------------------------------------------
    let request_names: Vec<&str> = s.requests.iter().map(|r| r.name.as_str()).collect();
    let mut requests = Vec::with_capacity(s.requests.len());
    let mut places: Vec<Vec<VarPlace>> = Vec::new();
    for (i, r) in s.requests.iter().enumerate() {
        let (plan, p) = check_request(ctx, i, r, &request_names[..i]);
        requests.push(plan);
        places.push(p);
    }
    if !s.requests.is_empty() && s.requests.iter().all(|r| r.weight == Some(0)) {
        ctx.at_key(
            "requests",
            "every request has weight 0, so none would ever be picked",
            Some("give at least one request a weight above 0".into()),
        );
    }
    resolve_needs(ctx, &s.requests, &places, &mut requests);

    // --- criteria -------------------------------------------------------------------
    let mut parsed = Vec::new();
    for (i, text) in s.criteria.iter().enumerate() {
        let path = format!("criteria[{i}]");
        match criteria::parse(text) {
            Err(e) => ctx.in_string(&path, e.column, e.width, e.message, e.hint),
            Ok(c) => {
                if let Some(n) = c.metric.request_name() {
                    if !request_names.contains(&n) {
                        let hint = match closest(n, request_names.iter().copied()) {
                            Some(m) => format!(
                                "did you mean \"{m}\"? requests: {}",
                                quoted_list(request_names.iter().copied())
                            ),
                            None => {
                                format!("requests: {}", quoted_list(request_names.iter().copied()))
                            }
                        };
                        ctx.in_string(
                            &path,
                            column_of(text, n),
                            n.chars().count(),
                            format!("no request is named \"{n}\""),
                            Some(hint),
                        );
                    }
                }
                if let Some(svc) = c.metric.service() {
                    if !service_names.iter().any(|n| n == svc) {
                        let hint = match closest(svc, service_names.iter().map(String::as_str)) {
                            Some(m) => format!(
                                "did you mean `{m}`? services: {}",
                                quoted_list(service_names.iter().map(String::as_str))
                            ),
                            None if service_names.is_empty() => {
                                "declare it in a [[services]] table".into()
                            }
                            None => format!(
                                "services: {}",
                                quoted_list(service_names.iter().map(String::as_str))
                            ),
                        };
                        ctx.in_string(
                            &path,
                            column_of(text, svc),
                            svc.chars().count(),
                            format!("no service is named `{svc}`"),
                            Some(hint),
                        );
                    }
                }
                parsed.push(c);
            }
        }
    }

    // --- duration -------------------------------------------------------------------
    if let Some(d) = s.duration {
        if d.0.is_zero() {
            ctx.at_value("duration", "the run's duration is 0", None);
        } else if d.0 < load_duration {
            ctx.at_value(
                "duration",
                format!(
                    "duration ({}) is shorter than the load stages ({})",
                    human(d.0),
                    human(load_duration)
                ),
                Some(
                    "duration is the hard cap on the whole run; raise it or shorten the stages"
                        .into(),
                ),
            );
        }
    }
    let deadline = s
        .duration
        .map(|d| d.0)
        .unwrap_or(load_duration + DEFAULT_GRACE);

    // --- faults ---------------------------------------------------------------------
    for (i, f) in s.faults.iter().enumerate() {
        check_fault(ctx, i, f, &s, &allow, deadline);
    }

    // --- observers (metrics scrapes, data canary) ------------------------------------
    check_observers(ctx, &s, &allow);

    let base_url = base_url?;
    Some(Plan {
        file: ctx.file.to_path_buf(),
        seed: s.seed.unwrap_or_else(rand::random),
        deadline,
        load_duration,
        criteria: parsed,
        base_url,
        requests,
        scenario: s,
    })
}

fn scenario_dir(file: &Path) -> PathBuf {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::path::absolute(&dir).unwrap_or(dir)
}

/// 0-based char column of `name` inside a criterion: the quoted selector value, or the
/// service segment of `memory.api.peak`.
fn column_of(text: &str, name: &str) -> usize {
    for pat in [
        format!("\"{name}\""),
        format!("'{name}'"),
        format!(".{name}."),
    ] {
        if let Some(b) = text.find(&pat) {
            return text[..b].chars().count() + 1;
        }
    }
    0
}

/// Check [load]; returns the sum of its stages.
fn check_load(ctx: &mut Ctx<'_>, l: &LoadSpec) -> Duration {
    let open = l.model == LoadModel::Open;
    let example = if open {
        "stages = [{ duration = \"30s\", rate = 100 }]"
    } else {
        "stages = [{ duration = \"30s\", users = 100 }]"
    };
    if l.stages.is_empty() {
        ctx.at_value(
            "load.stages",
            "load.stages is empty: give at least one stage",
            Some(format!("e.g. {example}")),
        );
    }
    let mut total = Duration::ZERO;
    for (i, st) in l.stages.iter().enumerate() {
        total += st.duration.0;
        let p = format!("load.stages[{i}]");
        if open {
            if st.users.is_some() {
                ctx.at_key(
                    &format!("{p}.users"),
                    "`users` is for the closed model; an open-model stage gives `rate` (iterations per second)",
                    Some(format!("e.g. {example}, or set model = \"closed\"")),
                );
            }
            match st.rate {
                None => ctx.at_value(
                    &p,
                    "this open-model stage has no `rate`",
                    Some(format!("e.g. {example}")),
                ),
                Some(r) if !r.is_finite() || r < 0.0 => ctx.at_value(
                    &format!("{p}.rate"),
                    format!("the rate must be 0 or more iterations per second; found {r}"),
                    None,
                ),
                _ => {}
            }
        } else {
            if st.rate.is_some() {
                ctx.at_key(
                    &format!("{p}.rate"),
                    "`rate` is for the open model; a closed-model stage gives `users`",
                    Some("set model = \"open\" in [load] to drive an arrival rate".into()),
                );
            }
            match st.users {
                None => ctx.at_value(
                    &p,
                    "this closed-model stage has no `users`",
                    Some(format!("e.g. {example}")),
                ),
                Some(u) if u > MAX_USERS => ctx.at_value(
                    &format!("{p}.users"),
                    format!("at most {MAX_USERS} users; found {u}"),
                    None,
                ),
                _ => {}
            }
        }
    }
    if !l.stages.is_empty() && total.is_zero() {
        ctx.at_value(
            "load.stages",
            "the stages add up to 0s, so no load would run",
            None,
        );
    }
    if open {
        if let Some(r) = l.start_rate {
            if !r.is_finite() || r < 0.0 {
                ctx.at_value(
                    "load.start_rate",
                    format!("start_rate must be 0 or more; found {r}"),
                    None,
                );
            }
        }
        if l.max_in_flight == Some(0) {
            ctx.at_value(
                "load.max_in_flight",
                "max_in_flight must be at least 1",
                None,
            );
        }
    } else {
        for key in ["start_rate", "max_in_flight"] {
            let present = match key {
                "start_rate" => l.start_rate.is_some(),
                _ => l.max_in_flight.is_some(),
            };
            if present {
                ctx.at_key(
                    &format!("load.{key}"),
                    format!("`{key}` applies to the open model only"),
                    Some("set model = \"open\" in [load], or remove it".into()),
                );
            }
        }
    }
    match (l.connections, l.pool_size) {
        (ConnectionMode::PerUser, Some(_)) => ctx.at_key(
            "load.pool_size",
            "`pool_size` applies only with connections = \"shared\"",
            None,
        ),
        (ConnectionMode::Shared, Some(0)) => {
            ctx.at_value("load.pool_size", "pool_size must be at least 1", None)
        }
        _ => {}
    }
    if l.timeout.is_some_and(|t| t.0.is_zero()) {
        ctx.at_value(
            "load.timeout",
            "the request timeout must be more than 0",
            None,
        );
    }
    if let Some(ThinkTime::Range { min, max }) = &l.think_time {
        if min > max {
            ctx.at_value(
                "load.think_time",
                format!("think_time min ({min}) is above max ({max})"),
                None,
            );
        }
    }
    total
}

fn check_service(
    ctx: &mut Ctx<'_>,
    i: usize,
    sv: &ServiceSpec,
    backend: BackendKind,
    earlier: &[String],
) {
    let p = format!("services[{i}]");
    if sv.name.trim().is_empty() {
        ctx.at_value(&format!("{p}.name"), "the service name is empty", None);
    } else if !sv
        .name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        ctx.at_value(
            &format!("{p}.name"),
            format!(
                "service name `{}` may hold only letters, digits, `_` and `-`",
                sv.name
            ),
            Some("criteria name services in metrics, like memory.api.peak".into()),
        );
    } else if let Some(j) = earlier.iter().position(|n| *n == sv.name) {
        ctx.at_value(
            &format!("{p}.name"),
            format!(
                "service name `{}` is used twice (also services[{j}])",
                sv.name
            ),
            None,
        );
    }
    let docker_keys = [
        ("container", sv.container.is_some()),
        ("label", sv.label.is_some()),
        ("image", sv.image.is_some()),
        ("cmd", sv.cmd.is_some()),
        ("ports", !sv.ports.is_empty()),
        ("network", sv.network.is_some()),
    ];
    match backend {
        BackendKind::Process => {
            if sv.managed && sv.command.as_ref().is_none_or(|c| c.is_empty()) {
                ctx.at_value(
                    &p,
                    format!("service `{}` has no `command`; the process backend starts managed services with it", sv.name),
                    Some(
                        "e.g. command = [\"gauntlet\", \"demo\", \"api\", \"--port\", \"18080\"], or managed = false \
                         with pid_file for a process that is already running"
                            .into(),
                    ),
                );
            }
            for (key, present) in docker_keys {
                if present {
                    ctx.at_key(
                        &format!("{p}.{key}"),
                        format!("`{key}` applies to the docker backend; this scenario uses the process backend"),
                        Some("set backend = \"docker\" at the top of the file, or remove it".into()),
                    );
                }
            }
        }
        BackendKind::Docker => {
            let n = docker_keys[..3]
                .iter()
                .filter(|(_, present)| *present)
                .count();
            if n != 1 {
                ctx.at_value(
                    &p,
                    format!(
                        "a docker service gives exactly one of `container`, `label` or `image`; service `{}` gives {n}",
                        sv.name
                    ),
                    None,
                );
            }
            for (key, present) in [
                ("command", sv.command.is_some()),
                ("cwd", sv.cwd.is_some()),
                ("pid_file", sv.pid_file.is_some()),
            ] {
                if present {
                    ctx.at_key(
                        &format!("{p}.{key}"),
                        format!("`{key}` applies to the process backend; this scenario uses backend = \"docker\""),
                        Some("with docker, use `image` and `cmd`".into()),
                    );
                }
            }
            if sv.image.is_none() {
                for (key, present) in &docker_keys[3..] {
                    if *present {
                        ctx.at_key(
                            &format!("{p}.{key}"),
                            format!("`{key}` applies only to a container created from `image`"),
                            None,
                        );
                    }
                }
            }
        }
    }
    if let Some(h) = &sv.health {
        let hp = format!("{p}.health");
        match (&h.http, &h.tcp) {
            (Some(_), Some(_)) | (None, None) => ctx.at_value(
                &hp,
                "a health check gives exactly one of `http` (a URL) or `tcp` (host:port)",
                Some("e.g. health = { http = \"http://127.0.0.1:8080/health\" }".into()),
            ),
            (Some(u), None) => match url::Url::parse(u) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                _ => ctx.at_value(
                    &format!("{hp}.http"),
                    format!("health.http must be an http:// URL; found \"{u}\""),
                    None,
                ),
            },
            (None, Some(t)) => {
                if !host_port_ok(t) {
                    ctx.at_value(
                        &format!("{hp}.tcp"),
                        format!("health.tcp must be host:port; found \"{t}\""),
                        None,
                    );
                }
            }
        }
        for (key, d) in [
            ("interval", h.interval),
            ("timeout", h.timeout),
            ("startup", h.startup),
        ] {
            if d.is_some_and(|d| d.0.is_zero()) {
                ctx.at_value(
                    &format!("{hp}.{key}"),
                    format!("health.{key} must be more than 0"),
                    None,
                );
            }
        }
    }
    if let Some(px) = &sv.proxy {
        for (key, v) in [("listen", &px.listen), ("upstream", &px.upstream)] {
            if !host_port_ok(v) {
                ctx.at_value(
                    &format!("{p}.proxy.{key}"),
                    format!("proxy.{key} must be host:port; found \"{v}\""),
                    None,
                );
            }
        }
    }
}

/// Parse a template string, reporting a problem at its place inside the string.
fn template(
    ctx: &mut Ctx<'_>,
    path: &str,
    text: &str,
    places: &mut Vec<VarPlace>,
) -> Option<Template> {
    match Template::parse_detailed(text) {
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
fn json_strings(
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

fn json_pointer_ok(ctx: &mut Ctx<'_>, path: &str, ptr: &str) {
    if !ptr.starts_with('/') {
        ctx.at_value(
            path,
            format!("a JSON pointer starts with `/`; found \"{ptr}\""),
            Some(format!(
                "did you mean \"/{}\"?",
                ptr.trim_start_matches(['$', '.']).replace('.', "/")
            )),
        );
    }
}

fn check_request(
    ctx: &mut Ctx<'_>,
    i: usize,
    r: &RequestSpec,
    earlier: &[&str],
) -> (RequestPlan, Vec<VarPlace>) {
    let p = format!("requests[{i}]");
    let mut places = Vec::new();
    if r.name.trim().is_empty() {
        ctx.at_value(
            &format!("{p}.name"),
            "the request name is empty",
            Some("criteria and reports refer to requests by name".into()),
        );
    } else if let Some(j) = earlier.iter().position(|n| *n == r.name) {
        let line = {
            let f = ctx.find(&parse_path(&format!("requests[{j}].name")));
            ctx.diagnostic(f.value, "", String::new(), None).line
        };
        ctx.at_value(
            &format!("{p}.name"),
            format!("request name \"{}\" is used twice", r.name),
            Some(format!(
                "also requests[{j}] (line {line}); criteria and reports need unique names"
            )),
        );
    }
    let method_text = r.method.as_deref().unwrap_or("GET");
    let upper = method_text.to_ascii_uppercase();
    let method = if METHODS.contains(&upper.as_str()) {
        http::Method::from_bytes(upper.as_bytes()).unwrap_or(http::Method::GET)
    } else {
        let hint = match closest(&upper, METHODS.iter().copied()) {
            Some(m) => format!("did you mean {m}? valid: {}", METHODS.join(", ")),
            None => format!("valid: {}", METHODS.join(", ")),
        };
        ctx.at_value(
            &format!("{p}.method"),
            format!("unknown HTTP method `{method_text}`"),
            Some(hint),
        );
        http::Method::GET
    };
    let path_path = format!("{p}.path");
    if !r.path.starts_with('/') && !r.path.starts_with("{{") {
        ctx.at_value(
            &path_path,
            format!("the path must start with `/`; found \"{}\"", r.path),
            Some("it is joined to target.base_url".into()),
        );
    }
    let path = template(ctx, &path_path, &r.path, &mut places);

    let mut headers = Vec::new();
    for (k, v) in &r.headers {
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
        if let (Some(n), Some(t)) = (name, template(ctx, &hp, v, &mut places)) {
            headers.push((n, t));
        }
    }

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
        .and_then(|b| template(ctx, &format!("{p}.body"), b, &mut places));
    let body = match (raw, &r.json) {
        (Some(raw), None) => Some(BodyTemplate::Raw(raw)),
        (_, Some(j)) => {
            let mut base = parse_path(&format!("{p}.json"));
            match JsonTemplate::compile(j) {
                _ if !json_strings(ctx, j, &mut base, &mut places) => None,
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
        (None, None) => None,
    };
    let body = if r.body.is_some() && r.json.is_some() {
        None
    } else {
        body
    };

    for (j, e) in r.extract.iter().enumerate() {
        let ep = format!("{p}.extract[{j}]");
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
        match (&e.json, &e.header) {
            (Some(_), Some(_)) | (None, None) => ctx.at_value(
                &ep,
                "an extract gives exactly one of `json` (a JSON pointer like \"/id\") or `header`",
                Some("e.g. extract = [{ var = \"item_id\", json = \"/id\" }]".into()),
            ),
            (Some(ptr), None) => json_pointer_ok(ctx, &format!("{ep}.json"), ptr),
            (None, Some(h)) => {
                if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    ctx.at_value(
                        &format!("{ep}.header"),
                        format!("`{h}` is not a valid header name"),
                        None,
                    );
                }
            }
        }
    }

    for (j, c) in r.checks.iter().enumerate() {
        let cp = format!("{p}.checks[{j}]");
        let n = [
            c.status.is_some(),
            c.body_contains.is_some(),
            c.json.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if n != 1 {
            ctx.at_value(
                &cp,
                format!("a check gives exactly one of `status`, `body_contains` or `json`; this one gives {n}"),
                Some("e.g. checks = [{ status = 201 }, { json = \"/id\", exists = true }]".into()),
            );
        }
        if c.json.is_none() {
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
        } else if c.equals.is_some() && c.exists.is_some() {
            ctx.at_key(
                &format!("{cp}.exists"),
                "give `equals` or `exists`, not both",
                None,
            );
        }
        if let Some(ptr) = &c.json {
            json_pointer_ok(ctx, &format!("{cp}.json"), ptr);
        }
        let sp = format!("{cp}.status");
        match &c.status {
            Some(StatusCheck::One(code)) if !(100..=599).contains(code) => ctx.at_value(
                &sp,
                format!("{code} is not an HTTP status (100 to 599)"),
                None,
            ),
            Some(StatusCheck::Any(codes)) => {
                if codes.is_empty() {
                    ctx.at_value(&sp, "the status list is empty", None);
                }
                for (k, code) in codes.iter().enumerate() {
                    if !(100..=599).contains(code) {
                        ctx.at_value(
                            &format!("{sp}[{k}]"),
                            format!("{code} is not an HTTP status (100 to 599)"),
                            None,
                        );
                    }
                }
            }
            Some(StatusCheck::Class(class)) => {
                let b = class.as_bytes();
                let ok = b.len() == 3
                    && (b'1'..=b'5').contains(&b[0])
                    && b[1..].iter().all(|c| *c == b'x' || *c == b'X');
                if !ok {
                    ctx.at_value(
                        &sp,
                        format!("a status class looks like \"2xx\"; found \"{class}\""),
                        Some("or give a code (201) or a list ([200, 201])".into()),
                    );
                }
            }
            _ => {}
        }
    }

    let plan = RequestPlan {
        name: r.name.clone(),
        weight: r.weight.unwrap_or(1),
        method,
        path: path.unwrap_or_else(|| Template::parse("").unwrap_or_else(|_| unreachable!())),
        headers,
        body,
        extract: r.extract.clone(),
        checks: r.checks.clone(),
        needs: Vec::new(),
    };
    (plan, places)
}

/// Every `{{var}}` must be extracted by some request; record which one runs first.
fn resolve_needs(
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
        let mut needs: Vec<(String, usize)> = Vec::new();
        for pl in ps {
            match extractors.get(pl.var.as_str()) {
                None => {
                    let extracted: Vec<&str> = extractors.keys().copied().collect();
                    let mut hint = match closest(&pl.var, extracted.iter().copied()) {
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
        plans[i].needs = needs;
    }
    // A request may not need itself through others: nothing could run first.
    let n = plans.len();
    let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    fn visit(
        i: usize,
        plans: &[RequestPlan],
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[i] = 1;
        stack.push(i);
        for &(_, j) in &plans[i].needs {
            if state[j] == 1 {
                let at = stack.iter().position(|&k| k == j).unwrap_or(0);
                return Some(stack[at..].to_vec());
            }
            if state[j] == 0 {
                if let Some(c) = visit(j, plans, state, stack) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        state[i] = 2;
        None
    }
    for i in 0..n {
        if state[i] == 0 {
            let mut stack = Vec::new();
            if let Some(cycle) = visit(i, plans, &mut state, &mut stack) {
                let first = cycle[0];
                let names: Vec<String> = cycle
                    .iter()
                    .map(|&k| format!("\"{}\"", plans[k].name))
                    .collect();
                ctx.at_value(
                    &format!("requests[{first}].name"),
                    format!(
                        "requests {} need values from each other, so none can run first",
                        names.join(" and ")
                    ),
                    Some("let one of them extract its value without needing the others".into()),
                );
                for k in cycle {
                    plans[k].needs.clear();
                    state[k] = 2;
                }
            }
        }
    }
}

fn check_fault(
    ctx: &mut Ctx<'_>,
    i: usize,
    f: &FaultSpec,
    s: &Scenario,
    allow: &[String],
    deadline: Duration,
) {
    let p = format!("faults[{i}]");
    let kind = f.kind.as_str();
    let services: Vec<&str> = s.services.iter().map(|sv| sv.name.as_str()).collect();
    let svc_hint = |name: &str| {
        Some(match closest(name, services.iter().copied()) {
            Some(m) => format!(
                "did you mean `{m}`? services: {}",
                quoted_list(services.iter().copied())
            ),
            None if services.is_empty() => "declare the service in a [[services]] table".into(),
            None => format!("services: {}", quoted_list(services.iter().copied())),
        })
    };
    match (&f.target, f.targets.is_empty()) {
        (Some(_), false) => ctx.at_key(
            &format!("{p}.targets"),
            "give `target` or `targets`, not both",
            None,
        ),
        (None, true) => ctx.at_value(
            &p,
            format!("this `{kind}` fault has no `target`"),
            Some(format!(
                "name the service it hits, e.g. target = \"{}\"",
                services.first().copied().unwrap_or("api")
            )),
        ),
        _ => {}
    }
    let mut targets: Vec<(String, &str)> = Vec::new();
    if let Some(t) = &f.target {
        targets.push((format!("{p}.target"), t));
    }
    for (j, t) in f.targets.iter().enumerate() {
        targets.push((format!("{p}.targets[{j}]"), t));
    }
    for (path, t) in &targets {
        if !services.contains(t) {
            ctx.at_value(path, format!("no service is named `{t}`"), svc_hint(t));
        }
    }

    use FaultKind as K;
    if s.backend == BackendKind::Process {
        for (path, t) in &targets {
            let Some(sv) = s.services.iter().find(|sv| sv.name == *t) else {
                continue;
            };
            let problem = match f.kind {
                K::Restart | K::Stop if !sv.managed => Some(format!(
                    "`{kind}` needs a service gauntlet manages (it starts it again); `{t}` has managed = false"
                )),
                K::Kill | K::Pause if !sv.managed && sv.pid_file.is_none() => Some(format!(
                    "`{kind}` needs the process of `{t}`, which is not managed and has no `pid_file`"
                )),
                K::Duplicate if sv.command.is_none() => Some(format!(
                    "`duplicate` starts a second instance with the service's `command`; `{t}` has none"
                )),
                _ => None,
            };
            if let Some(msg) = problem {
                ctx.at_value(path, msg, None);
            }
        }
    }
    let timed = matches!(
        f.kind,
        K::Pause | K::Duplicate | K::Network | K::LeakWebsockets | K::Cpu | K::Memory
    );
    if timed && f.duration.is_none() {
        ctx.at_value(
            &p,
            format!("a `{kind}` fault needs a `duration` (how long before it is undone)"),
            Some("e.g. duration = \"10s\"".into()),
        );
    }
    if f.duration.is_some_and(|d| d.0.is_zero()) {
        ctx.at_value(
            &format!("{p}.duration"),
            "the fault's duration must be more than 0",
            None,
        );
    }
    let specific: [(&str, bool); 13] = [
        ("signal", f.signal.is_some()),
        ("restart_after", f.restart_after.is_some()),
        ("url", f.url.is_some()),
        ("connections", f.connections.is_some()),
        ("rate", f.rate.is_some()),
        ("latency", f.latency.is_some()),
        ("jitter", f.jitter.is_some()),
        ("drop", f.drop.is_some()),
        ("reset", f.reset.is_some()),
        ("bandwidth", f.bandwidth.is_some()),
        ("partition", f.partition.is_some()),
        ("workers", f.workers.is_some()),
        ("size", f.size.is_some()),
    ];
    let applies: &[&str] = match f.kind {
        K::Kill | K::Stop => &["signal", "restart_after"],
        K::Restart | K::Pause | K::Duplicate => &[],
        K::LeakWebsockets => &["url", "connections", "rate"],
        K::Network => &[
            "latency",
            "jitter",
            "drop",
            "reset",
            "bandwidth",
            "partition",
        ],
        K::Cpu => &["workers"],
        K::Memory => &["size"],
    };
    let takes = {
        let mut t: Vec<&str> = applies.to_vec();
        if timed {
            t.insert(0, "duration");
        }
        if t.is_empty() {
            format!("`{kind}` takes no keys of its own")
        } else {
            format!("`{kind}` takes: {}", t.join(", "))
        }
    };
    if !timed && f.duration.is_some() {
        ctx.at_key(
            &format!("{p}.duration"),
            format!("`duration` does not apply to a `{kind}` fault"),
            Some(takes.clone()),
        );
    }
    for (key, present) in specific {
        if present && !applies.contains(&key) {
            ctx.at_key(
                &format!("{p}.{key}"),
                format!("`{key}` does not apply to a `{kind}` fault"),
                Some(takes.clone()),
            );
        }
    }

    match f.kind {
        K::Kill | K::Stop => {
            if let Some(sig) = &f.signal {
                let up = sig.trim().to_ascii_uppercase();
                let name = if up.starts_with("SIG") {
                    up
                } else {
                    format!("SIG{up}")
                };
                if nix::sys::signal::Signal::from_str(&name).is_err() {
                    ctx.at_value(
                        &format!("{p}.signal"),
                        format!("unknown signal `{sig}`"),
                        Some("e.g. \"SIGKILL\", \"SIGTERM\", \"SIGINT\"".into()),
                    );
                }
            }
        }
        K::LeakWebsockets => {
            match &f.url {
                None => ctx.at_value(
                    &p,
                    "a `leak_websockets` fault needs a `url` (ws:// or wss://)",
                    None,
                ),
                Some(u) => match url::Url::parse(u) {
                    Ok(parsed)
                        if matches!(parsed.scheme(), "ws" | "wss")
                            && parsed.host_str().is_some() =>
                    {
                        let host = url_host(&parsed).unwrap_or_default();
                        if !allow.contains(&host) {
                            ctx.at_value(
                                &format!("{p}.url"),
                                format!("WebSocket host `{host}` is not in target.allow_hosts"),
                                Some(format!(
                                    "allowed: {}",
                                    quoted_list(s.target.allow_hosts.iter().map(String::as_str))
                                )),
                            );
                        }
                    }
                    _ => ctx.at_value(
                        &format!("{p}.url"),
                        format!("url must be a ws:// or wss:// URL; found \"{u}\""),
                        None,
                    ),
                },
            }
            match f.connections {
                None => ctx.at_value(
                    &p,
                    "a `leak_websockets` fault needs `connections` (how many to open)",
                    Some("e.g. connections = 500".into()),
                ),
                Some(0) => ctx.at_value(
                    &format!("{p}.connections"),
                    "connections must be at least 1",
                    None,
                ),
                _ => {}
            }
            if f.rate.is_some_and(|r| !r.is_finite() || r <= 0.0) {
                ctx.at_value(
                    &format!("{p}.rate"),
                    "rate must be more than 0 connections per second",
                    None,
                );
            }
        }
        K::Network => {
            let effect = f.latency.is_some()
                || f.jitter.is_some()
                || f.drop.is_some()
                || f.reset == Some(true)
                || f.bandwidth.is_some()
                || f.partition == Some(true);
            if !effect {
                ctx.at_value(
                    &p,
                    "a `network` fault needs an effect: latency, jitter, drop, reset, bandwidth or partition",
                    Some("e.g. latency = \"200ms\"".into()),
                );
            }
            if let Some(d) = f.drop {
                if !(0.0..=100.0).contains(&d) {
                    ctx.at_value(
                        &format!("{p}.drop"),
                        format!("drop is a percentage from 0 to 100; found {d}"),
                        None,
                    );
                }
            }
            if let Some(b) = &f.bandwidth {
                if !size_ok(b) {
                    ctx.at_value(
                        &format!("{p}.bandwidth"),
                        format!("bandwidth is bytes per second like \"64KiB\"; found \"{b}\""),
                        None,
                    );
                }
            }
            for (path, t) in &targets {
                if let Some(sv) = s.services.iter().find(|sv| sv.name == *t) {
                    if sv.proxy.is_none() {
                        ctx.at_value(
                            path,
                            format!("network faults go through the service's proxy, and service `{t}` has none"),
                            Some(
                                "add proxy = { listen = \"127.0.0.1:PORT\", upstream = \"127.0.0.1:SERVICE_PORT\" } \
                                 to the service and send load to `listen`"
                                    .into(),
                            ),
                        );
                    }
                }
            }
        }
        K::Cpu => {
            if f.workers == Some(0) {
                ctx.at_value(&format!("{p}.workers"), "workers must be at least 1", None);
            }
        }
        K::Memory => {
            if let Some(sz) = &f.size {
                if !size_ok(sz) {
                    ctx.at_value(
                        &format!("{p}.size"),
                        format!("size is an amount of memory like \"512MiB\"; found \"{sz}\""),
                        None,
                    );
                }
            }
        }
        K::Restart | K::Pause | K::Duplicate => {}
    }

    // Repeats.
    match (f.every, f.times) {
        (Some(_), None) | (Some(_), Some(0)) => ctx.at_key(
            &format!("{p}.every"),
            "`every` repeats the fault: say how many times in all with `times` (1 or more)",
            Some("e.g. every = \"30s\", times = 3".into()),
        ),
        (None, Some(t)) if t > 1 => ctx.at_key(
            &format!("{p}.times"),
            "`times` needs `every` (how long between two repeats)",
            None,
        ),
        (None, Some(0)) => ctx.at_value(&format!("{p}.times"), "times must be at least 1", None),
        _ => {}
    }
    if let Some(every) = f.every {
        if every.0.is_zero() {
            ctx.at_value(&format!("{p}.every"), "every must be more than 0", None);
        } else if let Some(d) = f.duration {
            if every.0 <= d.0 {
                ctx.at_value(
                    &format!("{p}.every"),
                    format!("every ({every}) must be longer than duration ({d}), or the fault would overlap itself"),
                    None,
                );
            }
        }
    }
    let repeats = f.times.unwrap_or(1).max(1) - 1;
    let end = f.at.0
        + f.every.map(|e| e.0).unwrap_or_default() * repeats
        + f.duration.map(|d| d.0).unwrap_or_default();
    if end > deadline {
        let cap = if s.duration.is_some() {
            format!("duration = {}", human(deadline))
        } else {
            format!("the load's stages plus 30s = {}", human(deadline))
        };
        ctx.at_value(
            &format!("{p}.at"),
            format!(
                "this fault would end at {} after the start, after the run's hard cap ({cap})",
                human(end)
            ),
            Some("move it earlier, or raise the scenario's top-level `duration`".into()),
        );
    }
}

/// A Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn metric_name_ok(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Most keys a canary may write.
const MAX_CANARY_KEYS: u32 = 100_000;

/// `services[i].metrics` and `[canary]`: URLs whose host is allowed, sane numbers, metric
/// names that can exist.
fn check_observers(ctx: &mut Ctx<'_>, s: &Scenario, allow: &[String]) {
    let allowed_hint = |host: &str| {
        Some(format!(
            "allowed: {}; gauntlet only talks to hosts listed in target.allow_hosts (add \"{host}\" only if it is this machine)",
            quoted_list(s.target.allow_hosts.iter().map(String::as_str))
        ))
    };
    for (i, sv) in s.services.iter().enumerate() {
        let Some(m) = &sv.metrics else { continue };
        let p = format!("services[{i}].metrics");
        match url::Url::parse(&m.url) {
            Ok(u) if u.scheme() == "http" && u.host_str().is_some() => {
                let host = url_host(&u).unwrap_or_default();
                if !allow.is_empty() && !allow.contains(&host) {
                    ctx.at_value(
                        &format!("{p}.url"),
                        format!("metrics host `{host}` is not in target.allow_hosts"),
                        allowed_hint(&host),
                    );
                }
            }
            _ => ctx.at_value(
                &format!("{p}.url"),
                format!("metrics.url must be an http:// URL; found \"{}\"", m.url),
                Some("e.g. url = \"http://127.0.0.1:9090/metrics\"".into()),
            ),
        }
        for (key, d) in [("interval", m.interval), ("timeout", m.timeout)] {
            if d.is_some_and(|d| d.0.is_zero()) {
                ctx.at_value(
                    &format!("{p}.{key}"),
                    format!("metrics.{key} must be more than 0"),
                    None,
                );
            }
        }
        if let Some(keep) = &m.keep {
            if keep.is_empty() && m.freshness.is_none() {
                ctx.at_value(
                    &format!("{p}.keep"),
                    "metrics.keep is empty, so nothing would be recorded",
                    Some(
                        "list the metric names to record, or remove `keep` to record them all"
                            .into(),
                    ),
                );
            }
            for (j, name) in keep.iter().enumerate() {
                if !metric_name_ok(name) {
                    ctx.at_value(
                        &format!("{p}.keep[{j}]"),
                        format!("`{name}` is not a Prometheus metric name"),
                        Some(
                            "write the name alone, without labels, like \"http_requests_total\""
                                .into(),
                        ),
                    );
                }
            }
        }
        if let Some(f) = &m.freshness {
            if !metric_name_ok(f) {
                ctx.at_value(
                    &format!("{p}.freshness"),
                    format!("`{f}` is not a Prometheus metric name"),
                    Some(
                        "name the gauge holding the Unix time of the last sync, e.g. \"pipeline_last_sync_timestamp_seconds\""
                            .into(),
                    ),
                );
            }
        }
    }
    if let Some(c) = &s.canary {
        match url::Url::parse(&c.redis) {
            Ok(u) if u.scheme() == "redis" && u.host_str().is_some() => {
                let host = url_host(&u).unwrap_or_default();
                if !allow.is_empty() && !allow.contains(&host) {
                    ctx.at_value(
                        "canary.redis",
                        format!("canary Redis host `{host}` is not in target.allow_hosts"),
                        allowed_hint(&host),
                    );
                }
            }
            _ => ctx.at_value(
                "canary.redis",
                format!("canary.redis must be a redis:// URL; found \"{}\"", c.redis),
                Some("e.g. redis = \"redis://127.0.0.1:6379\"".into()),
            ),
        }
        match c.keys {
            Some(0) => ctx.at_value("canary.keys", "canary.keys must be at least 1", None),
            Some(n) if n > MAX_CANARY_KEYS => ctx.at_value(
                "canary.keys",
                format!("canary.keys is at most {MAX_CANARY_KEYS}; found {n}"),
                None,
            ),
            _ => {}
        }
        if let Some(prefix) = &c.prefix {
            if prefix.is_empty()
                || prefix
                    .chars()
                    .any(|ch| ch.is_whitespace() || ch.is_control())
            {
                ctx.at_value(
                    "canary.prefix",
                    "canary.prefix must be non-empty, without spaces",
                    Some("e.g. prefix = \"gauntlet:canary:\"".into()),
                );
            }
        }
        if c.timeout.is_some_and(|d| d.0.is_zero()) {
            ctx.at_value("canary.timeout", "canary.timeout must be more than 0", None);
        }
    }
}
