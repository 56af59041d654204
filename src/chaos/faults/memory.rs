//! `memory`: a process holding `size` of memory next to the service (in its container's
//! cgroup for docker), for `duration`; the undo kills it.

use crate::scenario::model::MemoryFault;

use super::cpu::under_stress;
use super::{Applied, Cx, Fault, FaultError};
use crate::chaos::stress;

/// When `size` is not given.
const DEFAULT_SIZE: u64 = 256 << 20;

impl Fault for MemoryFault {
    async fn apply(&self, cx: &Cx<'_>) -> Result<Applied, FaultError> {
        let bytes = self.size.map_or(DEFAULT_SIZE, |s| s.bytes());
        if let Some(available) = mem_available() {
            // Leave a tenth for gauntlet and the system.
            let limit = available / 10 * 9;
            if bytes > limit {
                return Err(FaultError::MemoryTooLarge {
                    asked: bytes,
                    available,
                    limit,
                });
            }
        }
        under_stress(cx, |cg| stress::memory(bytes, cg)).await
    }
}

/// `MemAvailable` of /proc/meminfo, in bytes (None when it cannot be read).
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}
