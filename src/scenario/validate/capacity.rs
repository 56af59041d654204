//! Validation of `[capacity]`: bounds of the levels, the search's length, and faults that
//! fit in one level's run; resolved into a [`CapacityPlan`].

use std::time::Duration;

use super::super::load_plan::CapacityPlan;
use super::super::source::Ctx;
use super::*;

const DEFAULT_HOLD: Duration = Duration::from_secs(30);
const DEFAULT_WARMUP: Duration = Duration::from_secs(10);

pub(super) fn check_capacity(ctx: &mut Ctx<'_>, s: &Scenario) -> Option<CapacityPlan> {
    let c = s.capacity.as_ref()?;
    let Some(load) = &s.load else {
        ctx.at_key(
            "capacity",
            "[capacity] needs [load] and [[requests]]: each level replaces the load's stages",
            Some("add [load] (its model says whether levels are users or a rate)".into()),
        );
        return None;
    };
    let open = load.model == LoadModel::Open;
    let (max, what) = if open {
        (MAX_RATE, "iterations per second")
    } else {
        (f64::from(MAX_USERS), "users")
    };
    // A level: finite, above 0 (or 0 for `require`), within the load's bound; whole
    // users in the closed model.
    let level = |ctx: &mut Ctx<'_>, key: &str, v: f64, zero_ok: bool| -> bool {
        let path = format!("capacity.{key}");
        let low = if zero_ok { "from 0" } else { "above 0" };
        let problem = if !v.is_finite() || v < 0.0 || (v == 0.0 && !zero_ok) || v > max {
            Some(format!(
                "{key} must be {low} and at most {} {what}; found {}",
                num(max),
                num(v)
            ))
        } else if !open && v.fract() != 0.0 {
            Some(format!(
                "{key} is a number of users in the closed model: a whole number; found {}",
                num(v)
            ))
        } else {
            None
        };
        match problem {
            Some(m) => {
                ctx.at_value(&path, m, None);
                false
            }
            None => true,
        }
    };
    let mut ok = level(ctx, "from", c.from, false);
    ok &= level(ctx, "to", c.to, false);
    ok &= level(ctx, "step", c.step, false);
    if ok && c.to <= c.from {
        ctx.at_value(
            "capacity.to",
            format!("to ({}) must be above from ({})", num(c.to), num(c.from)),
            None,
        );
        ok = false;
    }
    let resolution = match c.resolution {
        Some(r) => {
            if level(ctx, "resolution", r, false) && r > c.step {
                ctx.at_value(
                    "capacity.resolution",
                    format!(
                        "resolution ({}) must be at most step ({})",
                        num(r),
                        num(c.step)
                    ),
                    Some("bisecting works inside one step".into()),
                );
            }
            r
        }
        None if open => c.step / 10.0,
        None => (c.step / 10.0).floor().max(1.0),
    };
    let require = match c.require {
        Some(r) => {
            if level(ctx, "require", r, true) && ok && r > c.to {
                ctx.at_value(
                    "capacity.require",
                    format!(
                        "require ({}) is above to ({}): no search could reach it",
                        num(r),
                        num(c.to)
                    ),
                    None,
                );
            }
            r
        }
        None => c.from,
    };
    if ok && resolution > 0.0 && resolution.is_finite() {
        // Steps up, plus the halvings of one step down to the resolution.
        let steps = ((c.to - c.from) / c.step).ceil() + 1.0;
        let halvings = (c.step / resolution).log2().ceil().max(0.0);
        if steps + halvings > f64::from(MAX_CAPACITY_LEVELS) {
            ctx.at_value(
                "capacity.step",
                format!(
                    "this search could run {} levels, more than {MAX_CAPACITY_LEVELS}",
                    num(steps + halvings)
                ),
                Some("raise step or resolution, or narrow from..to".into()),
            );
        }
    }
    let hold = c.hold.map_or(DEFAULT_HOLD, |h| h.0);
    if hold.is_zero() {
        ctx.at_value("capacity.hold", "hold must be more than 0", None);
    }
    let warmup = c.warmup.map_or(DEFAULT_WARMUP, |w| w.0);
    if let Some(r) = c.stop_error_rate {
        if !(r > 0.0 && r <= 100.0) {
            ctx.at_value(
                "capacity.stop_error_rate",
                format!(
                    "stop_error_rate is a percentage above 0, at most 100; found {}",
                    num(r)
                ),
                None,
            );
        }
    }
    let plan = CapacityPlan {
        from: c.from,
        to: c.to,
        step: c.step,
        strategy: c.strategy,
        resolution,
        hold,
        warmup,
        require,
        stop_error_rate: c.stop_error_rate,
    };
    // Each level runs the faults at their times from its own start.
    let cap = plan.level_deadline();
    for (i, f) in s.faults.iter().enumerate() {
        let end = faults::fault_end(f);
        if end > cap {
            ctx.at_value(
                &format!("faults[{i}].at"),
                format!(
                    "under [capacity] each level runs the faults from its start: this one would end at {}, after a level's cap (warmup + hold + 30s = {})",
                    human(end),
                    human(cap)
                ),
                Some("move it earlier, or raise capacity.hold".into()),
            );
        }
    }
    Some(plan)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::scenario::load_str;
    use crate::scenario::model::CapacityStrategy;

    fn scenario(model: &str, capacity: &str) -> String {
        format!(
            "name = \"c\"\n[target]\nbase_url = \"http://127.0.0.1:9\"\nallow_hosts = [\"127.0.0.1\"]\n\
             [load]\n{model}\n[[requests]]\nname = \"a\"\npath = \"/\"\n[capacity]\n{capacity}\n"
        )
    }

    #[test]
    fn defaults_and_models() {
        let closed = scenario(
            "stages = [{ duration = \"1s\", users = 1 }]",
            "from = 10\nto = 100\nstep = 25",
        );
        let p = load_str(Path::new("c.toml"), &closed).unwrap_or_else(|e| panic!("{e}"));
        let c = p.capacity.unwrap();
        assert_eq!((c.resolution, c.require), (2.0, 10.0));
        assert_eq!(
            (c.hold, c.warmup),
            (Duration::from_secs(30), Duration::from_secs(10))
        );
        assert_eq!(c.strategy, CapacityStrategy::Bisect);
        assert_eq!(c.level_deadline(), Duration::from_secs(70));
        // A rate: fractions allowed, resolution a tenth of the step.
        let open = scenario(
            "model = \"open\"\nstages = [{ duration = \"1s\", rate = 1 }]",
            "from = 0.5\nto = 20\nstep = 2.5\nstrategy = \"step\"",
        );
        let c = load_str(Path::new("o.toml"), &open)
            .unwrap()
            .capacity
            .unwrap();
        assert_eq!((c.from, c.resolution), (0.5, 0.25));
        // No [capacity]: none, and a plain run grades from the start.
        let plain = closed.replace("[capacity]\nfrom = 10\nto = 100\nstep = 25\n", "");
        let p = load_str(Path::new("p.toml"), &plain).unwrap();
        assert!(p.capacity.is_none() && p.warmup.is_zero());
    }

    #[test]
    fn problems_have_their_key() {
        let cases = [
            ("from = 0\nto = 10\nstep = 1", "capacity.from"),
            ("from = 1\nto = 10\nstep = 1.5", "capacity.step"),
            ("from = 10\nto = 10\nstep = 1", "capacity.to"),
            (
                "from = 1\nto = 10\nstep = 2\nresolution = 3",
                "capacity.resolution",
            ),
            (
                "from = 1\nto = 10\nstep = 2\nrequire = 11",
                "capacity.require",
            ),
            (
                "from = 1\nto = 10\nstep = 2\nstop_error_rate = 0",
                "capacity.stop_error_rate",
            ),
            ("from = 1\nto = 100000\nstep = 1", "capacity.step"),
        ];
        for (cap, key) in cases {
            let text = scenario("stages = [{ duration = \"1s\", users = 1 }]", cap);
            let e = load_str(Path::new("c.toml"), &text).expect_err(cap);
            assert!(e.0.iter().any(|d| d.key == key), "{cap}: {e}");
        }
    }
}
