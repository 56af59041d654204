//! When each closed-model user is active. The planned user count ramps linearly through
//! the stages (from 0 at the start); user `k` (1-based) is active while that count is
//! above `k - 1`. Kept in our code, to the microsecond: goose's own schedules count in
//! whole seconds and its test plans print to stdout.

use std::time::Duration;

use crate::scenario::load_plan::UserStage;

#[derive(Debug, Clone)]
pub(crate) struct Ramp {
    stages: Vec<UserStage>,
}

impl Ramp {
    pub(crate) fn new(stages: Vec<UserStage>) -> Ramp {
        Ramp { stages }
    }

    pub(crate) fn max_users(&self) -> u32 {
        self.stages.iter().map(|s| s.users).max().unwrap_or(0)
    }

    /// The sum of the stages.
    pub(crate) fn total(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// When user `k` (1-based) turns on, off, on... from the start (it starts off). An odd
    /// count means it stays on until the end.
    pub(crate) fn toggles(&self, k: u32) -> Vec<Duration> {
        let h = f64::from(k.saturating_sub(1));
        let mut out = Vec::new();
        let mut on = false;
        let mut start = Duration::ZERO;
        // The planned count at the start of the stage; continuous, so `on == (a > h)`.
        let mut a = 0.0;
        for st in &self.stages {
            let b = f64::from(st.users);
            if !on && b > h {
                out.push(start + st.duration.mul_f64((h - a) / (b - a)));
                on = true;
            } else if on && b <= h {
                out.push(start + st.duration.mul_f64((a - h) / (a - b)));
                on = false;
            }
            start += st.duration;
            a = b;
        }
        out
    }
}

/// The user numbers (1-based) of the HTTP users and of the WebSocket users (with the
/// index of their `[[ws]]` entry), split by [`crate::scenario::Plan::user_weights`].
pub(crate) struct Split {
    pub http: Vec<u32>,
    pub ws: Vec<(u32, usize)>,
}

pub(crate) fn split(plan: &crate::scenario::Plan, users: u32) -> Split {
    let mut out = Split {
        http: Vec::new(),
        ws: Vec::new(),
    };
    let picks = crate::scenario::load_plan::split_users(&plan.user_weights(), users);
    for (k, e) in picks.into_iter().enumerate() {
        let user = k as u32 + 1;
        match e {
            0 => out.http.push(user),
            e => out.ws.push((user, e - 1)),
        }
    }
    out
}

/// Where user `k` stands at `t`: active or not, and when that changes next.
pub(crate) fn state_at(toggles: &[Duration], t: Duration) -> (bool, Option<Duration>) {
    let passed = toggles.partition_point(|&x| x <= t);
    (passed % 2 == 1, toggles.get(passed).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(v: &[(u64, u32)]) -> Ramp {
        Ramp::new(
            v.iter()
                .map(|&(ms, users)| UserStage {
                    duration: Duration::from_millis(ms),
                    users,
                })
                .collect(),
        )
    }

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    /// (stages as (ms, users), user, its on/off times in ms)
    type Case<'a> = (&'a [(u64, u32)], u32, &'a [u64]);

    #[test]
    fn toggles_follow_the_stages() {
        let up_hold_down = &[(1000, 5), (2000, 5), (1000, 0)][..];
        let cases: &[Case] = &[
            // Ramp up 0 -> 5 over 1s: one user every 200ms, the first at once.
            (up_hold_down, 1, &[0, 4000]),
            (up_hold_down, 5, &[800, 3200]),
            // All at once, held: on from the start to the end.
            (&[(0, 4), (2000, 4)], 4, &[0]),
            // Sub-second stages are kept as they are.
            (&[(250, 2), (250, 2)], 2, &[125]),
            // Up to 6 then down to 3: users 4..6 stop, 1..3 stay.
            (
                &[(1000, 2), (1000, 6), (1000, 6), (1000, 3)],
                6,
                &[1750, 3333],
            ),
            (
                &[(1000, 2), (1000, 6), (1000, 6), (1000, 3)],
                4,
                &[1250, 4000],
            ),
            (&[(1000, 2), (1000, 6), (1000, 6), (1000, 3)], 3, &[1000]),
            // Down then up again: the user comes back.
            (
                &[(0, 2), (1000, 2), (0, 1), (1000, 1), (0, 2)],
                2,
                &[0, 1000, 2000],
            ),
            // Never reached.
            (&[(1000, 3)], 4, &[]),
        ];
        for (stages, k, want) in cases {
            let got: Vec<u64> = ramp(stages)
                .toggles(*k)
                .iter()
                .map(|d| d.as_millis() as u64)
                .collect();
            assert_eq!(got, want.to_vec(), "{stages:?} user {k}");
        }
    }

    #[test]
    fn state_at_a_time() {
        let t = ms(&[100, 300]);
        let cases = [
            (0, false, Some(100)),
            (100, true, Some(300)),
            (200, true, Some(300)),
            (300, false, None),
            (900, false, None),
        ];
        for (at, active, next) in cases {
            assert_eq!(
                state_at(&t, Duration::from_millis(at)),
                (active, next.map(Duration::from_millis)),
                "{at}ms"
            );
        }
        assert_eq!(state_at(&ms(&[0]), Duration::ZERO), (true, None));
    }

    #[test]
    fn totals() {
        let r = ramp(&[(1500, 3), (500, 7), (250, 0)]);
        assert_eq!(r.max_users(), 7);
        assert_eq!(r.total(), Duration::from_millis(2250));
    }
}
