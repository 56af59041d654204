//! Recovery: after which kinds the target is watched until healthy again (the grader
//! asks too), and the watch itself.

use std::time::{Duration, Instant};

use crate::chaos::health::{self, Health, RECOVERY_PROBE_EVERY, RECOVERY_STREAK};
use crate::chaos::{Service, ServicesInner};
use crate::scenario::model::FaultKind;

pub use crate::scenario::model::Recovery;

/// What recovery means after a fault of `kind` (see [`FaultKind::recovery`]).
pub fn recovery(kind: FaultKind) -> Recovery {
    kind.recovery()
}

/// Whether the scheduler watches the target for recovery after a fault of `kind`.
pub fn watches_recovery(kind: FaultKind) -> bool {
    kind.watches_recovery()
}

/// Wait until the service is healthy again and stays so for [`RECOVERY_STREAK`] probes.
/// After a crash (`must_see_down`) a healthy probe only counts once the service was seen
/// down (a failed probe) or its instance changed (new pid): a probe answered by the
/// dying process must not count. Returns the time from `from` to the answer of the first
/// probe of the healthy streak.
pub(super) async fn wait_recovered(
    health: &Health,
    from: Instant,
    must_see_down: bool,
    svc: &Service,
    inner: &ServicesInner,
    before: Option<&str>,
) -> Duration {
    let mut seen_down = !must_see_down;
    let mut streak_start: Option<Instant> = None;
    let mut streak = 0u32;
    let timeout = health.timeout.min(Duration::from_secs(2));
    loop {
        let ok = health::probe_service(svc, health, timeout).await.is_ok();
        let answered = Instant::now();
        if !ok {
            seen_down = true;
            streak = 0;
            streak_start = None;
        } else {
            if !seen_down {
                if let Some(before) = before {
                    if svc.instance(inner).await.as_deref() != Some(before) {
                        seen_down = true;
                    }
                }
            }
            if seen_down {
                if streak == 0 {
                    // When the healthy answer came (a probe may hang for a while).
                    streak_start = Some(answered);
                }
                streak += 1;
                if streak >= RECOVERY_STREAK {
                    return streak_start
                        .unwrap_or(answered)
                        .saturating_duration_since(from);
                }
            }
        }
        tokio::time::sleep(RECOVERY_PROBE_EVERY).await;
    }
}
