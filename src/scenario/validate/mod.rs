//! Semantic checks on a parsed [`Scenario`] (every problem is collected), then the
//! resolution into a [`Plan`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::model::*;
use super::source::{parse_path, show_path, Ctx, Seg};
use super::suggest::closest;
use super::Plan;
use crate::metric;

/// At most this many virtual users in one stage.
const MAX_USERS: u32 = 100_000;
/// Added to the load's duration when the scenario gives no hard cap.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

mod faults;
mod load;
mod observers;
mod requests;
mod services;

use faults::*;
use load::*;
use observers::*;
use requests::*;
use services::*;

/// `base` followed by one key, quoted when needed: `requests[0].headers."x y"`.
pub(super) fn sub(base: &str, key: &str) -> String {
    let mut p = parse_path(base);
    p.push(Seg::Key(key.to_string()));
    show_path(&p)
}

pub(super) fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

pub(super) fn quoted_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
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

pub(super) fn url_host(u: &url::Url) -> Option<String> {
    u.host_str().map(crate::units::bare_host)
}

pub(super) fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// "host:port" with a numeric port.
pub(super) fn host_port_ok(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((h, p)) => !h.is_empty() && p.parse::<u16>().is_ok(),
        None => false,
    }
}

/// Where the `{{var}}` placeholders of one template string are.
pub(super) struct VarPlace {
    pub(super) var: String,
    pub(super) path: String,
    pub(super) column: usize,
    pub(super) width: usize,
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
    let allow: Vec<String> = s
        .target
        .allow_hosts
        .iter()
        .map(|h| crate::units::bare_host(h))
        .collect();
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
    let (load, load_duration) = match &s.load {
        Some(l) => {
            let (plan, total) = check_load(ctx, l);
            (Some(plan), total)
        }
        None => (None, Duration::ZERO),
    };

    // --- services -------------------------------------------------------------------
    let service_names: Vec<String> = s.services.iter().map(|sv| sv.name.clone()).collect();
    let base_dir = scenario_dir(ctx.file);
    let mut services = Vec::with_capacity(s.services.len());
    for (i, sv) in s.services.iter_mut().enumerate() {
        let health = check_service(ctx, i, sv, s.backend, &service_names[..i]);
        for p in [&mut sv.cwd, &mut sv.pid_file].into_iter().flatten() {
            if p.is_relative() {
                *p = base_dir.join(&*p);
            }
        }
        services.push(ServicePlan {
            spec: sv.clone(),
            health,
        });
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
        match metric::parse(text) {
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
    let observers = check_observers(ctx, &s, &allow);

    let base_url = base_url?;
    Some(Plan {
        file: ctx.file.to_path_buf(),
        name: s.name.clone(),
        allow_hosts: allow.clone(),
        latency_basis: s.latency_basis,
        backend: s.backend,
        on_fault_error: s.on_fault_error,
        services,
        faults: s.faults.clone(),
        seed: s.seed.unwrap_or_else(rand::random),
        deadline,
        load_duration,
        load,
        criteria: parsed,
        base_url,
        requests,
        observers,
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
