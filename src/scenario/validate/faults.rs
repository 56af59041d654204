//! Validation of [[faults]]: what the types cannot say (targets that exist and suit the
//! backend, timing within the run, values in range). Which keys a kind takes, and their
//! types, are the parser's.

use std::time::Duration;

use super::super::source::Ctx;
use super::super::suggest::closest;
use super::*;

pub(super) fn check_fault(
    ctx: &mut Ctx<'_>,
    i: usize,
    f: &FaultSpec,
    s: &Scenario,
    allow: &[String],
    deadline: Duration,
) {
    let p = format!("faults[{i}]");
    let targets = check_targets(ctx, &p, f, s);
    check_backend_support(ctx, f, s, &targets);
    check_duration(ctx, &p, f);
    check_values(ctx, &p, f, s, allow, &targets);
    check_timing(ctx, &p, f, s, deadline);
}

/// `target` or `targets` name declared services; returns their key paths and names.
fn check_targets<'s>(
    ctx: &mut Ctx<'_>,
    p: &str,
    f: &'s FaultSpec,
    s: &Scenario,
) -> Vec<(String, &'s str)> {
    let kind = f.kind().as_str();
    let c = f.common();
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
    match (c.target, c.targets.is_empty()) {
        (Some(_), false) => ctx.at_key(
            &format!("{p}.targets"),
            "give `target` or `targets`, not both",
            None,
        ),
        (None, true) => ctx.at_value(
            p,
            format!("this `{kind}` fault has no `target`"),
            Some(format!(
                "name the service it hits, e.g. target = \"{}\"",
                services.first().copied().unwrap_or("api")
            )),
        ),
        _ => {}
    }
    let mut targets: Vec<(String, &str)> = Vec::new();
    if let Some(t) = c.target {
        targets.push((format!("{p}.target"), t));
    }
    for (j, t) in c.targets.iter().enumerate() {
        targets.push((format!("{p}.targets[{j}]"), t));
    }
    for (path, t) in &targets {
        if !services.contains(t) {
            ctx.at_value(path, format!("no service is named `{t}`"), svc_hint(t));
        }
    }

    targets
}

/// The process backend can only stop, restart, pause or duplicate what it can reach.
fn check_backend_support(
    ctx: &mut Ctx<'_>,
    f: &FaultSpec,
    s: &Scenario,
    targets: &[(String, &str)],
) {
    let kind = f.kind().as_str();
    use FaultKind as K;
    if s.backend == BackendKind::Process {
        for (path, t) in targets {
            let Some(sv) = s.services.iter().find(|sv| sv.name == *t) else {
                continue;
            };
            let problem = match f.kind() {
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
}

/// Timed kinds need a `duration` above 0.
fn check_duration(ctx: &mut Ctx<'_>, p: &str, f: &FaultSpec) {
    let kind = f.kind().as_str();
    if let Some(d) = f.duration() {
        if d.0.is_zero() {
            ctx.at_value(
                &format!("{p}.duration"),
                "the fault's duration must be more than 0",
                None,
            );
        }
    } else if f.kind().is_timed() {
        ctx.at_value(
            p,
            format!("a `{kind}` fault needs a `duration` (how long before it is undone)"),
            Some("e.g. duration = \"10s\"".into()),
        );
    }
}

/// Values of the kind's own keys that their types cannot check.
fn check_values(
    ctx: &mut Ctx<'_>,
    p: &str,
    f: &FaultSpec,
    s: &Scenario,
    allow: &[String],
    targets: &[(String, &str)],
) {
    match f {
        FaultSpec::LeakWebsockets(l) => {
            match &l.url {
                None => ctx.at_value(p, "a `leak_websockets` fault needs a `url` (ws://)", None),
                Some(u) => match url::Url::parse(u) {
                    Ok(parsed) if parsed.scheme() == "ws" && parsed.host_str().is_some() => {
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
                        format!(
                            "url must be a ws:// URL (wss:// is not supported yet); found \"{u}\""
                        ),
                        None,
                    ),
                },
            }
            match l.connections {
                Some(n) if n > MAX_WS_CONNECTIONS => ctx.at_value(
                    &format!("{p}.connections"),
                    format!("connections is at most {MAX_WS_CONNECTIONS}; found {n}"),
                    None,
                ),
                None => ctx.at_value(
                    p,
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
            if let Some(r) = l.rate.filter(|r| !(*r > 0.0 && *r <= MAX_RATE)) {
                ctx.at_value(
                    &format!("{p}.rate"),
                    format!(
                        "rate must be more than 0 and at most {MAX_RATE} connections per second; found {}",
                        num(r)
                    ),
                    None,
                );
            }
        }
        FaultSpec::Network(n) => {
            let effect = n.latency.is_some()
                || n.jitter.is_some()
                || n.drop.is_some()
                || n.reset == Some(true)
                || n.bandwidth.is_some()
                || n.partition == Some(true);
            if !effect {
                ctx.at_value(
                    p,
                    "a `network` fault needs an effect: latency, jitter, drop, reset, bandwidth or partition",
                    Some("e.g. latency = \"200ms\"".into()),
                );
            }
            if n.bandwidth.is_some_and(|b| b.bytes() == 0) {
                ctx.at_value(
                    &format!("{p}.bandwidth"),
                    "bandwidth must be more than 0 bytes per second",
                    Some("use partition = true to cut all traffic".into()),
                );
            }
            if let Some(d) = n.drop {
                if !(0.0..=100.0).contains(&d) {
                    ctx.at_value(
                        &format!("{p}.drop"),
                        format!("drop is a percentage from 0 to 100; found {d}"),
                        None,
                    );
                }
            }
            for (path, t) in targets {
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
        FaultSpec::Cpu(c) if c.workers == Some(0) => {
            ctx.at_value(&format!("{p}.workers"), "workers must be at least 1", None);
        }
        FaultSpec::Cpu(c) if c.workers.is_some_and(|w| w > MAX_WORKERS) => {
            ctx.at_value(
                &format!("{p}.workers"),
                format!(
                    "workers is at most {MAX_WORKERS}; found {}",
                    c.workers.unwrap_or(0)
                ),
                None,
            );
        }
        _ => {}
    }
}

/// Repeats, and the end of the fault within the run's hard cap.
fn check_timing(ctx: &mut Ctx<'_>, p: &str, f: &FaultSpec, s: &Scenario, deadline: Duration) {
    let c = f.common();
    // Repeats.
    match (c.every, c.times) {
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
    if let Some(t) = c.times.filter(|t| *t > MAX_TIMES) {
        ctx.at_value(
            &format!("{p}.times"),
            format!("times is at most {MAX_TIMES}; found {t}"),
            None,
        );
    }
    if let Some(every) = c.every {
        if every.0.is_zero() {
            ctx.at_value(&format!("{p}.every"), "every must be more than 0", None);
        } else if let Some(d) = f.duration() {
            if every.0 <= d.0 {
                ctx.at_value(
                    &format!("{p}.every"),
                    format!("every ({every}) must be longer than duration ({d}), or the fault would overlap itself"),
                    None,
                );
            }
        }
    }
    let end = fault_end(f);
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

/// When the fault's last repeat ends, from the start of the load (`Duration::MAX` when
/// that overflows).
pub(super) fn fault_end(f: &FaultSpec) -> Duration {
    let c = f.common();
    let repeats = c.times.unwrap_or(1).max(1) - 1;
    // Checked: `every` x `times` is the one product of user numbers here.
    c.every
        .map(|e| e.0)
        .unwrap_or_default()
        .checked_mul(repeats)
        .and_then(|r| r.checked_add(c.at.0))
        .and_then(|e| e.checked_add(f.duration().map(|d| d.0).unwrap_or_default()))
        .unwrap_or(Duration::MAX)
}
