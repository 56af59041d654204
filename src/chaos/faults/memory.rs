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
        under_stress(cx, |cg| stress::memory(bytes, cg)).await
    }
}
