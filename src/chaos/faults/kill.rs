//! `kill`: a signal to the service's process; `restart_after` has gauntlet start it again.

use nix::sys::signal::Signal;

use crate::scenario::model::KillFault;

use super::{Applied, Cx, Fault, FaultError, FaultInfo};
use crate::chaos::ServicesInner;

impl Fault for KillFault {
    async fn apply(&self, cx: &Cx<'_>) -> Result<Applied, FaultError> {
        let svc = cx.service()?;
        let sig = self.signal.map_or(Signal::SIGKILL, |s| s.0);
        let instance_before = svc.backend().instance(cx.inner).await;
        svc.backend().kill(cx.inner, sig).await?;
        Ok(Applied::Instant { instance_before })
    }
}

/// `restart_after`: start the killed service again.
pub(super) async fn start_again(inner: &ServicesInner, info: &FaultInfo) -> Result<(), FaultError> {
    let svc = inner
        .service(&info.target)
        .ok_or_else(|| FaultError::UnknownService(info.target.clone()))?;
    Ok(svc.backend().start(inner).await?)
}
