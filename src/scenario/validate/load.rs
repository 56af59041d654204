//! Validation of [load]: stages, model, think time, connections; resolved into a
//! [`LoadPlan`].

use std::num::NonZeroU32;
use std::time::Duration;

use super::super::load_plan::{
    Connections, LoadPlan, Model, RateStage, Think, UserStage, DEFAULT_MAX_BODY,
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT, MAX_MAX_BODY,
};
use super::super::source::Ctx;
use super::*;

/// Check [load] and resolve it; also returns the sum of its stages. Problems are in
/// `ctx`; the plan is only used when there are none.
pub(super) fn check_load(ctx: &mut Ctx<'_>, l: &LoadSpec) -> (LoadPlan, Duration) {
    let total = stages_total(ctx, l);
    let model = match l.model {
        LoadModel::Closed => {
            open_only_keys(ctx, l);
            Model::Closed {
                stages: user_stages(ctx, l),
                connections: connections(ctx, l),
            }
        }
        LoadModel::Open => {
            // Checked for its own mistakes; an open-model load always shares a pool.
            connections(ctx, l);
            Model::Open {
                start_rate: start_rate(ctx, l),
                stages: rate_stages(ctx, l),
                max_in_flight: max_in_flight(ctx, l),
            }
        }
    };
    let plan = LoadPlan {
        model,
        think: think_time(ctx, l),
        timeout: timeout(ctx, l),
        max_body: max_body(ctx, l),
        truncate_body: l.truncate_body.unwrap_or(false),
    };
    (plan, total)
}

fn stage_example(l: &LoadSpec) -> &'static str {
    match l.model {
        LoadModel::Open => "stages = [{ duration = \"30s\", rate = 100 }]",
        LoadModel::Closed => "stages = [{ duration = \"30s\", users = 100 }]",
    }
}

/// The sum of the stages, which must not be empty nor add up to 0.
fn stages_total(ctx: &mut Ctx<'_>, l: &LoadSpec) -> Duration {
    if l.stages.is_empty() {
        ctx.at_value(
            "load.stages",
            "load.stages is empty: give at least one stage",
            Some(format!("e.g. {}", stage_example(l))),
        );
    }
    // Saturating: each stage is bounded, but not how many there are.
    let total = l
        .stages
        .iter()
        .fold(Duration::ZERO, |t, s| t.saturating_add(s.duration.0));
    if !l.stages.is_empty() && total.is_zero() {
        ctx.at_value(
            "load.stages",
            "the stages add up to 0s, so no load would run",
            None,
        );
    } else if total > MAX_LOAD {
        ctx.at_value(
            "load.stages",
            format!(
                "the stages add up to {}, more than {MAX_DURATION_TEXT}, the longest load a scenario may run",
                human(total)
            ),
            None,
        );
    }
    total.min(MAX_LOAD)
}

/// Closed-model stages: `users`, at most [`MAX_USERS`], no `rate`.
fn user_stages(ctx: &mut Ctx<'_>, l: &LoadSpec) -> Vec<UserStage> {
    let example = stage_example(l);
    let mut out = Vec::with_capacity(l.stages.len());
    for (i, st) in l.stages.iter().enumerate() {
        let p = format!("load.stages[{i}]");
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
        out.push(UserStage {
            duration: st.duration.0,
            users: st.users.unwrap_or(0),
        });
    }
    out
}

/// Open-model stages: a finite `rate` of 0 or more, no `users`.
fn rate_stages(ctx: &mut Ctx<'_>, l: &LoadSpec) -> Vec<RateStage> {
    let example = stage_example(l);
    let mut out = Vec::with_capacity(l.stages.len());
    for (i, st) in l.stages.iter().enumerate() {
        let p = format!("load.stages[{i}]");
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
            Some(r) if !(0.0..=MAX_RATE).contains(&r) => ctx.at_value(
                &format!("{p}.rate"),
                format!(
                    "the rate must be from 0 to {MAX_RATE} iterations per second; found {}",
                    num(r)
                ),
                None,
            ),
            _ => {}
        }
        out.push(RateStage {
            duration: st.duration.0,
            rate: st.rate.unwrap_or(0.0).clamp(0.0, MAX_RATE),
        });
    }
    out
}

fn start_rate(ctx: &mut Ctx<'_>, l: &LoadSpec) -> f64 {
    match l.start_rate {
        Some(r) if !(0.0..=MAX_RATE).contains(&r) => {
            ctx.at_value(
                "load.start_rate",
                format!(
                    "start_rate must be from 0 to {MAX_RATE} iterations per second; found {}",
                    num(r)
                ),
                None,
            );
            0.0
        }
        Some(r) => r,
        None => 0.0,
    }
}

fn max_in_flight(ctx: &mut Ctx<'_>, l: &LoadSpec) -> NonZeroU32 {
    match l.max_in_flight.map(NonZeroU32::new) {
        None => DEFAULT_MAX_IN_FLIGHT,
        Some(Some(n)) if n.get() > MAX_CONNECTIONS => {
            ctx.at_value(
                "load.max_in_flight",
                format!("max_in_flight is at most {MAX_CONNECTIONS}; found {n}"),
                None,
            );
            DEFAULT_MAX_IN_FLIGHT
        }
        Some(Some(n)) => n,
        Some(None) => {
            ctx.at_value(
                "load.max_in_flight",
                "max_in_flight must be at least 1",
                None,
            );
            DEFAULT_MAX_IN_FLIGHT
        }
    }
}

/// `start_rate` and `max_in_flight` in a closed-model load.
fn open_only_keys(ctx: &mut Ctx<'_>, l: &LoadSpec) {
    for (key, present) in [
        ("start_rate", l.start_rate.is_some()),
        ("max_in_flight", l.max_in_flight.is_some()),
    ] {
        if present {
            ctx.at_key(
                &format!("load.{key}"),
                format!("`{key}` applies to the open model only"),
                Some("set model = \"open\" in [load], or remove it".into()),
            );
        }
    }
}

fn connections(ctx: &mut Ctx<'_>, l: &LoadSpec) -> Connections {
    match (l.connections, l.pool_size.map(NonZeroU32::new)) {
        (ConnectionMode::PerUser, Some(_)) => {
            ctx.at_key(
                "load.pool_size",
                "`pool_size` applies only with connections = \"shared\"",
                None,
            );
            Connections::PerUser
        }
        (ConnectionMode::PerUser, None) => Connections::PerUser,
        (ConnectionMode::Shared, Some(None)) => {
            ctx.at_value("load.pool_size", "pool_size must be at least 1", None);
            Connections::Shared {
                pool_size: DEFAULT_POOL_SIZE,
            }
        }
        (ConnectionMode::Shared, Some(Some(n))) if n.get() > MAX_CONNECTIONS => {
            ctx.at_value(
                "load.pool_size",
                format!("pool_size is at most {MAX_CONNECTIONS}; found {n}"),
                None,
            );
            Connections::Shared {
                pool_size: DEFAULT_POOL_SIZE,
            }
        }
        (ConnectionMode::Shared, Some(Some(n))) => Connections::Shared { pool_size: n },
        (ConnectionMode::Shared, None) => Connections::Shared {
            pool_size: DEFAULT_POOL_SIZE,
        },
    }
}

fn timeout(ctx: &mut Ctx<'_>, l: &LoadSpec) -> Duration {
    match l.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) if t.0.is_zero() => {
            ctx.at_value(
                "load.timeout",
                "the request timeout must be more than 0",
                None,
            );
            DEFAULT_TIMEOUT
        }
        Some(t) => t.0,
    }
}

fn max_body(ctx: &mut Ctx<'_>, l: &LoadSpec) -> u64 {
    use crate::units::ByteSize;
    match l.max_body.map(ByteSize::bytes) {
        None => DEFAULT_MAX_BODY,
        Some(0) => {
            ctx.at_value(
                "load.max_body",
                "max_body must be at least 1 byte",
                Some("e.g. max_body = \"1MiB\" (the default)".into()),
            );
            DEFAULT_MAX_BODY
        }
        Some(n) if n > MAX_MAX_BODY => {
            ctx.at_value(
                "load.max_body",
                format!(
                    "max_body is at most {} (every request in flight may hold that much); found {}",
                    ByteSize(MAX_MAX_BODY),
                    ByteSize(n)
                ),
                Some("to accept larger bodies cut at max_body, set truncate_body = true".into()),
            );
            DEFAULT_MAX_BODY
        }
        Some(n) => n,
    }
}

fn think_time(ctx: &mut Ctx<'_>, l: &LoadSpec) -> Think {
    match &l.think_time {
        None => Think::None,
        Some(ThinkTime::Fixed(d)) => Think::new(d.0, d.0),
        Some(ThinkTime::Range { min, max }) => {
            if min > max {
                ctx.at_value(
                    "load.think_time",
                    format!("think_time min ({min}) is above max ({max})"),
                    None,
                );
            }
            Think::new(min.0, max.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The resolved plan, the sum of the stages and the problems ("key: message").
    fn check(toml_text: &str) -> (LoadPlan, Duration, Vec<String>) {
        let spec: LoadSpec = toml::from_str(toml_text).unwrap();
        let mut ctx = Ctx::new(Path::new("t.toml"), "");
        let (plan, total) = check_load(&mut ctx, &spec);
        let diags = ctx
            .diags
            .iter()
            .map(|d| format!("{}: {}", d.key, d.message))
            .collect();
        (plan, total, diags)
    }

    #[test]
    fn resolves_a_closed_load() {
        let ms = Duration::from_millis;
        let (plan, total, diags) = check(
            r#"think_time = { min = "10ms", max = "30ms" }
timeout = "1500ms"
stages = [{ duration = "500ms", users = 2 }, { duration = "1s", users = 0 }]"#,
        );
        assert_eq!(diags, Vec::<String>::new());
        assert_eq!(total, ms(1500));
        assert_eq!(plan.duration(), total);
        assert_eq!(
            plan,
            LoadPlan {
                model: Model::Closed {
                    stages: vec![
                        UserStage {
                            duration: ms(500),
                            users: 2
                        },
                        UserStage {
                            duration: ms(1000),
                            users: 0
                        },
                    ],
                    connections: Connections::PerUser,
                },
                think: Think::Range(ms(10), ms(30)),
                timeout: ms(1500),
                max_body: DEFAULT_MAX_BODY,
                truncate_body: false,
            }
        );
    }

    #[test]
    fn every_zero_or_misplaced_value_is_a_problem() {
        let st = "stages = [{ duration = \"1s\", users = 1 }]";
        let open = "model = \"open\"\nstages = [{ duration = \"1s\", rate = 1 }]";
        let cases: Vec<(String, &str)> = vec![
            (format!("{open}\nmax_in_flight = 0"), "load.max_in_flight: max_in_flight must be at least 1"),
            (format!("{open}\nstart_rate = -1"), "load.start_rate: start_rate must be from 0 to 1000000 iterations per second; found -1"),
            (format!("{st}\nmax_in_flight = 5"), "load.max_in_flight: `max_in_flight` applies to the open model only"),
            (format!("{st}\nconnections = \"shared\"\npool_size = 0"), "load.pool_size: pool_size must be at least 1"),
            (format!("{st}\npool_size = 3"), "load.pool_size: `pool_size` applies only with connections = \"shared\""),
            (format!("{st}\ntimeout = \"0s\""), "load.timeout: the request timeout must be more than 0"),
            (format!("{st}\nmax_body = \"0B\""), "load.max_body: max_body must be at least 1 byte"),
            (format!("{st}\nmax_body = \"2GiB\""), "load.max_body: max_body is at most 1GiB (every request in flight may hold that much); found 2GiB"),
            (format!("{st}\nthink_time = {{ min = \"2s\", max = \"1s\" }}"), "load.think_time: think_time min (2s) is above max (1s)"),
            ("stages = []".into(), "load.stages: load.stages is empty: give at least one stage"),
            ("stages = [{ duration = \"0s\", users = 1 }]".into(), "load.stages: the stages add up to 0s, so no load would run"),
            ("stages = [{ duration = \"1s\", rate = 1 }]".into(), "load.stages[0].rate: `rate` is for the open model; a closed-model stage gives `users`"),
            (format!("{open}\nstart_rate = inf"), "load.start_rate: start_rate must be from 0 to 1000000 iterations per second; found inf"),
            ("model = \"open\"\nstages = [{ duration = \"1s\", rate = 1e7 }]".into(), "load.stages[0].rate: the rate must be from 0 to 1000000 iterations per second; found 10000000"),
            ("model = \"open\"\nstages = [{ duration = \"1s\", rate = nan }]".into(), "load.stages[0].rate: the rate must be from 0 to 1000000 iterations per second; found NaN"),
            (format!("{open}\nmax_in_flight = 100001"), "load.max_in_flight: max_in_flight is at most 100000; found 100001"),
            (format!("{st}\nconnections = \"shared\"\npool_size = 4000000000"), "load.pool_size: pool_size is at most 100000; found 4000000000"),
            ("stages = [{ duration = \"7d\", users = 1 }, { duration = \"1s\", users = 1 }]".into(), "load.stages: the stages add up to 7days 1s, more than 7 days, the longest load a scenario may run"),
            ("stages = [{ duration = \"1s\", users = 100001 }]".into(), "load.stages[0].users: at most 100000 users; found 100001"),
        ];
        for (text, want) in cases {
            let (_, _, diags) = check(&text);
            assert!(diags.iter().any(|d| d == want), "{text}\n{diags:?}");
        }
    }
}
