//! The progress bar while a run goes: users, rps, errors, elapsed/remaining. The binary
//! only creates it when stderr is a terminal, so CI logs stay quiet.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::record::LiveStats;

pub struct Progress {
    bar: ProgressBar,
    planned: Duration,
}

impl Progress {
    pub fn new(planned: Duration) -> Self {
        let bar = ProgressBar::new(planned.as_secs().max(1));
        bar.set_style(
            ProgressStyle::with_template("{bar:30.cyan/blue} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("█▉▊▋▌▍▎▏ "),
        );
        Progress { bar, planned }
    }

    pub fn update(&self, s: &LiveStats) {
        self.bar.set_position(s.elapsed.as_secs());
        let mut s = *s;
        if s.planned.is_zero() {
            s.planned = self.planned;
        }
        self.bar.set_message(message(&s));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn mmss(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

/// `0:12 / 0:23 (0:11 left)  users   200  rps    1234  requests    14800  errors      0`
pub fn message(s: &LiveStats) -> String {
    format!(
        "{} / {} ({} left)  users {:>5}  rps {:>7.0}  requests {:>8}  errors {:>6}",
        mmss(s.elapsed),
        mmss(s.planned),
        mmss(s.planned.saturating_sub(s.elapsed)),
        s.users,
        s.rps,
        s.requests,
        s.errors
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_shows_elapsed_and_remaining() {
        let s = LiveStats {
            elapsed: Duration::from_secs(72),
            planned: Duration::from_secs(150),
            users: 200,
            requests: 14_800,
            errors: 3,
            rps: 1234.4,
        };
        assert_eq!(
            message(&s),
            "1:12 / 2:30 (1:18 left)  users   200  rps    1234  requests    14800  errors      3"
        );
    }
}
