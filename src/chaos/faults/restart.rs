//! `restart`: stop and start a managed service at once.

use crate::scenario::model::RestartFault;

use super::{Applied, Cx, Fault, FaultError, Recovery};

impl Fault for RestartFault {
    const RECOVERY: Recovery = Recovery::FromApply;

    async fn apply(&self, cx: &Cx<'_>) -> Result<Applied, FaultError> {
        let svc = cx.service()?;
        let instance_before = svc.backend().instance(cx.inner).await;
        svc.backend().restart(cx.inner).await?;
        Ok(Applied::Instant { instance_before })
    }
}
