//! Validation of [load]: stages, model, think time, connections.

use std::time::Duration;

use super::super::source::Ctx;
use super::*;

/// Check [load]; returns the sum of its stages.
pub(super) fn check_load(ctx: &mut Ctx<'_>, l: &LoadSpec) -> Duration {
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
