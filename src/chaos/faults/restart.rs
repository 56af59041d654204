//! `restart`: stop and start a managed service at once.

use crate::scenario::model::RestartFault;

use super::{Applied, Cx, Fault, FaultError};

impl Fault for RestartFault {
    async fn apply(&self, cx: &Cx<'_>) -> Result<Applied, FaultError> {
        let svc = cx.service()?;
        let instance_before = svc.backend().instance(cx.inner).await;
        svc.backend().restart(cx.inner).await?;
        Ok(Applied::Instant { instance_before })
    }
}
