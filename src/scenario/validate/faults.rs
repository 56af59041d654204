//! Validation of [[faults]]: kinds, targets, timing and the keys each kind takes.

use std::str::FromStr;
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
