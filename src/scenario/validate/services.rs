//! Validation of [[services]]: commands, containers, health, restart, proxy.

use super::super::source::Ctx;
use super::*;

pub(super) fn check_service(
    ctx: &mut Ctx<'_>,
    i: usize,
    sv: &ServiceSpec,
    backend: BackendKind,
    earlier: &[String],
    target_tls: Option<&super::super::TlsPlan>,
) -> (Option<HealthPlan>, Vec<PortMapping>, Option<ProxyPlan>) {
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
    } else if sv.name == crate::scenario::model::CANARY_SERVICE {
        ctx.at_value(
            &format!("{p}.name"),
            format!("`{}` is reserved for the data canary's figures", sv.name),
            Some("give the service another name".into()),
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
    if let Some(m) = sv.restart.max.filter(|m| *m > MAX_RESTARTS) {
        ctx.at_value(
            &format!("{p}.restart.max"),
            format!("restart.max is at most {MAX_RESTARTS}; found {m}"),
            None,
        );
    }
    let mut health = None;
    if let Some(h) = &sv.health {
        let hp = format!("{p}.health");
        match HealthPlan::resolve(h) {
            Ok(mut plan) => {
                // An https check trusts its own `ca`, else the target's TLS settings.
                if let ProbeTarget::Http { tls: Some(t), .. } = &mut plan.target {
                    if let Some(ca) = &h.ca {
                        let file = scenario_dir(ctx.file).join(ca);
                        t.ca = super::target::read_certs(ctx, &format!("{hp}.ca"), ca, &file)
                            .unwrap_or_default();
                    } else if let Some(tt) = target_tls {
                        t.ca = tt.ca.clone();
                    }
                    if h.insecure.is_none() {
                        t.insecure = target_tls.is_some_and(|tt| tt.insecure);
                    }
                }
                health = Some(plan)
            }
            Err((key, message)) => {
                let at = if key.is_empty() {
                    hp.clone()
                } else {
                    format!("{hp}.{key}")
                };
                let hint = key.is_empty().then(|| {
                    "e.g. health = { http = \"http://127.0.0.1:8080/health\" }".to_string()
                });
                ctx.at_value(&at, message, hint);
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
    let mut ports = Vec::with_capacity(sv.ports.len());
    for (j, text) in sv.ports.iter().enumerate() {
        match text.parse::<PortMapping>() {
            Ok(m) => ports.push(m),
            Err(message) => ctx.at_value(&format!("{p}.ports[{j}]"), message, None),
        }
    }
    let mut proxy = None;
    if let Some(px) = &sv.proxy {
        match ProxyPlan::resolve(px) {
            Ok(plan) => proxy = Some(plan),
            Err((key, message)) => ctx.at_value(&format!("{p}.proxy.{key}"), message, None),
        }
    }
    (health, ports, proxy)
}
