//! Semantic checks on a parsed [`Scenario`] (every problem is collected), then the
//! resolution into a [`Plan`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::bounds::*;
use super::model::*;
use super::source::{parse_path, show_path, Ctx, Seg};
use super::Plan;

/// Added to the load's duration when the scenario gives no hard cap.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

mod capacity;
mod criteria;
mod faults;
mod flows;
mod load;
mod observers;
mod requests;
mod services;
mod target;
mod ws;

use capacity::*;
use criteria::*;
use faults::*;
use flows::*;
use load::*;
use observers::*;
use requests::*;
use services::*;
use target::*;
use ws::*;

/// `base` followed by one key, quoted when needed: `requests[0].headers."x y"`.
pub(super) fn sub(base: &str, key: &str) -> String {
    let mut p = parse_path(base);
    p.push(Seg::Key(key.to_string()));
    show_path(&p)
}

pub(super) fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A number as written in messages: plain when short, `1e300` when huge.
pub(super) fn num(x: f64) -> String {
    if x.is_finite() && x.abs() < 1e15 {
        x.to_string()
    } else {
        format!("{x:e}")
    }
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
    let (allow, base_url, tls) = check_target(ctx, &s);
    let targets = check_named_targets(ctx, &s, &allow);
    // --- load -----------------------------------------------------------------------
    match (&s.load, s.requests.is_empty() && s.ws.is_empty()) {
        (Some(_), true) => ctx.at_key(
            "load",
            "[load] is given but there are no [[requests]] (or [[ws]] users) to send",
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
    let ws = check_ws(ctx, &s, &allow, load.as_ref());

    let service_names: Vec<String> = s.services.iter().map(|sv| sv.name.clone()).collect();
    let services = check_services(ctx, &mut s, &service_names, tls.as_ref());
    let request_names: Vec<&str> = s.requests.iter().map(|r| r.name.as_str()).collect();
    let mut requests = check_requests(ctx, &s.requests, &request_names, &s.flows);
    let flows = check_flows(ctx, &s.flows, &s.requests, &mut requests);
    resolve_request_targets(ctx, &s.requests, &targets, &mut requests);
    let flow_names: Vec<&str> = s.flows.iter().map(|f| f.name.as_str()).collect();
    let fault_names = fault_selectors(&s.faults);
    let parsed = check_criteria(
        ctx,
        &s.criteria,
        &request_names,
        &flow_names,
        &service_names,
        &fault_names,
    );
    let deadline = check_duration(ctx, s.duration, load_duration);
    let cooldown = check_cooldown(ctx, s.cooldown, &parsed);

    // --- faults ---------------------------------------------------------------------
    for (i, f) in s.faults.iter().enumerate() {
        check_fault(ctx, i, f, &s, &allow, deadline);
    }

    // --- observers (metrics scrapes, data canary) ------------------------------------
    let observers = check_observers(ctx, &s, &allow);
    let gate = check_gate(ctx, &s.gate);
    for name in s.vars.keys().filter(|n| !is_ident(n)) {
        ctx.at_key(
            &sub("vars", name),
            format!("`{name}` is not a variable name"),
            Some("letters, digits and _, not starting with a digit: ${NAME} must name it".into()),
        );
    }
    let capacity = check_capacity(ctx, &s);

    let base_url = base_url?;
    Some(Plan {
        file: ctx.file.to_path_buf(),
        name: s.name.clone(),
        allow_hosts: allow,
        latency_basis: s.latency_basis,
        backend: s.backend,
        on_fault_error: s.on_fault_error,
        services,
        faults: s.faults.clone(),
        seed: s.seed.unwrap_or_else(rand::random),
        deadline,
        cooldown,
        load_duration,
        load,
        criteria: parsed,
        base_url,
        http: s.target.http,
        tls,
        targets,
        show_values: s
            .report
            .as_ref()
            .and_then(|r| r.show_values)
            .unwrap_or(false),
        requests,
        flows,
        ws,
        observers,
        gate,
        secrets: Default::default(),
        capacity,
        warmup: Duration::ZERO,
    })
}

/// Each request's `target` names a `[targets.<name>]` table.
fn resolve_request_targets(
    ctx: &mut Ctx<'_>,
    specs: &[RequestSpec],
    targets: &[super::NamedTargetPlan],
    plans: &mut [super::RequestPlan],
) {
    for (i, (spec, plan)) in specs.iter().zip(plans.iter_mut()).enumerate() {
        let Some(name) = &spec.target else { continue };
        match targets.iter().position(|t| &t.name == name) {
            Some(k) => plan.target = k + 1,
            None => {
                let names = targets.iter().map(|t| t.name.as_str());
                let hint = match super::suggest::closest(name, names.clone()) {
                    Some(m) => format!("did you mean \"{m}\"? targets: {}", quoted_list(names)),
                    None if targets.is_empty() => format!(
                        "declare it as a [targets.{name}] table with its base_url, or remove `target` to use [target]"
                    ),
                    None => format!("targets: {}", quoted_list(names)),
                };
                ctx.at_value(
                    &format!("requests[{i}].target"),
                    format!("no target is named \"{name}\""),
                    Some(hint),
                );
            }
        }
    }
}

/// `[gate]`: every key names a figure family and every value is a tolerance that fits it.
fn check_gate(
    ctx: &mut Ctx<'_>,
    gate: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, crate::metric::tolerance::Tolerance)> {
    use crate::metric::tolerance::{check, parse_tolerance};
    let mut out = Vec::new();
    for (key, value) in gate {
        let path = sub("gate", key);
        match parse_tolerance(value) {
            Err(e) => ctx.at_value(&path, e, None),
            Ok(t) => match check(key, t) {
                Err((m, h)) => ctx.at_key(&path, m, h),
                Ok(()) => out.push((key.clone(), t)),
            },
        }
    }
    out
}

/// Check `[[services]]` (relative paths become absolute, against the scenario's folder)
/// and resolve each into its plan.
fn check_services(
    ctx: &mut Ctx<'_>,
    s: &mut Scenario,
    service_names: &[String],
    target_tls: Option<&super::TlsPlan>,
) -> Vec<ServicePlan> {
    let base_dir = scenario_dir(ctx.file);
    let mut services = Vec::with_capacity(s.services.len());
    for (i, sv) in s.services.iter_mut().enumerate() {
        let (health, ports, proxy) =
            check_service(ctx, i, sv, s.backend, &service_names[..i], target_tls);
        for p in [&mut sv.cwd, &mut sv.pid_file].into_iter().flatten() {
            if p.is_relative() {
                *p = base_dir.join(&*p);
            }
        }
        services.push(ServicePlan {
            spec: sv.clone(),
            health,
            ports,
            proxy,
        });
    }
    services
}

/// Check `[[requests]]` and resolve each into its plan, with the requests it needs first.
fn check_requests(
    ctx: &mut Ctx<'_>,
    specs: &[RequestSpec],
    request_names: &[&str],
    flows: &[FlowSpec],
) -> Vec<super::RequestPlan> {
    if specs.len() > MAX_REQUESTS {
        ctx.at_key(
            &format!("requests[{MAX_REQUESTS}]"),
            format!(
                "at most {MAX_REQUESTS} [[requests]] per scenario; this file has {}",
                specs.len()
            ),
            Some("each request name keeps its own latency histograms during the run".into()),
        );
    }
    // Past the bound nothing is checked, so validation stays cheap whatever the file.
    let specs = &specs[..specs.len().min(MAX_REQUESTS)];
    let mut requests = Vec::with_capacity(specs.len());
    let mut places: Vec<Vec<VarPlace>> = Vec::new();
    for (i, r) in specs.iter().enumerate() {
        let (plan, p) = check_request(ctx, i, r, &request_names[..i]);
        requests.push(plan);
        places.push(p);
    }
    if !specs.is_empty()
        && specs.iter().all(|r| r.weight == Some(0))
        && flows.iter().all(|f| f.weight == Some(0))
    {
        ctx.at_key(
            "requests",
            "every request has weight 0, so none would ever be picked",
            Some("give at least one request a weight above 0".into()),
        );
    }
    resolve_needs(ctx, specs, &places, &mut requests);
    requests
}

/// Check the hard cap `duration`; returns the run's deadline.
fn check_duration(
    ctx: &mut Ctx<'_>,
    duration: Option<HumanDuration>,
    load_duration: Duration,
) -> Duration {
    if let Some(d) = duration {
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
    duration
        .map(|d| d.0)
        .unwrap_or(load_duration.saturating_add(DEFAULT_GRACE))
}

/// Longest `cooldown`: it is watched time, not load, but still a bound on the run.
const MAX_COOLDOWN: Duration = Duration::from_secs(3600);
/// `cooldown` when a `retained` criterion needs samples after the load and faults.
const DEFAULT_RETAINED_COOLDOWN: Duration = Duration::from_secs(5);

fn check_cooldown(
    ctx: &mut Ctx<'_>,
    cooldown: Option<HumanDuration>,
    criteria: &[crate::metric::Criterion],
) -> Duration {
    if let Some(d) = cooldown {
        if d.0 > MAX_COOLDOWN {
            ctx.at_value(
                "cooldown",
                format!("cooldown ({}) is longer than 1h", human(d.0)),
                None,
            );
            return MAX_COOLDOWN;
        }
        return d.0;
    }
    let retained = criteria
        .iter()
        .any(|c| c.metric.id == crate::metric::MetricId::MemoryRetained);
    if retained {
        DEFAULT_RETAINED_COOLDOWN
    } else {
        Duration::ZERO
    }
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
