//! `stop`: stop a managed service (SIGTERM or `signal`, SIGKILL after a grace) and keep
//! it down until `restart_after`, or the end of the run; the undo starts it again.

use nix::sys::signal::Signal;

use crate::scenario::model::StopFault;

use super::{Applied, Cx, Fault, FaultError};

impl Fault for StopFault {
    async fn apply(&self, cx: &Cx<'_>) -> Result<Applied, FaultError> {
        let svc = cx.service()?;
        let sig = self.signal.map_or(Signal::SIGTERM, |s| s.0);
        Ok(Applied::InForce(svc.backend().stop(cx.inner, sig).await?))
    }
}
