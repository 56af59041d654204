//! `duplicate`: a second instance of the service for `duration` (same command, or a
//! container from the same image); the undo removes it.

use crate::scenario::model::DuplicateFault;

use super::{Applied, Cx, Fault, FaultError};

impl Fault for DuplicateFault {
    async fn apply(&self, cx: &Cx<'_>) -> Result<Applied, FaultError> {
        let svc = cx.service()?;
        let tag = format!("{}-{}", cx.info.fault, cx.info.rep);
        Ok(Applied::InForce(
            svc.backend().duplicate(cx.inner, &svc, &tag).await?,
        ))
    }
}
