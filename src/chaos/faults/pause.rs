//! `pause`: freeze the service (SIGSTOP to its process group, docker pause) for
//! `duration`; the undo thaws it.

use crate::scenario::model::PauseFault;

use super::{Applied, Cx, Fault, FaultError};

impl Fault for PauseFault {
    async fn apply(&self, cx: &Cx<'_>) -> Result<Applied, FaultError> {
        let svc = cx.service()?;
        Ok(Applied::InForce(svc.backend().pause(cx.inner).await?))
    }
}
