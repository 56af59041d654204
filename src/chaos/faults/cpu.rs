//! `cpu`: busy processes next to the service (in its container's cgroup for docker),
//! for `duration`; the undo kills them. `memory` shares the stress part.

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::scenario::model::CpuFault;

use super::{Applied, Cx, Fault, FaultError};
use crate::chaos::backend::{BackendError, Undo};
use crate::chaos::state::ProcRole;
use crate::chaos::stress::{self, CgroupTarget, StressError, StressProcs};
use crate::chaos::ServicesInner;

impl Fault for CpuFault {
    async fn apply(&self, cx: &Cx<'_>) -> Result<Applied, FaultError> {
        let workers = self.workers.unwrap_or(1).max(1);
        under_stress(cx, |cg| stress::cpu(workers, cg)).await
    }
}

/// Start stress processes where they weigh on the target; record them for `cleanup`.
pub(super) async fn under_stress(
    cx: &Cx<'_>,
    start: impl FnOnce(Option<&CgroupTarget>) -> Result<StressProcs, StressError>,
) -> Result<Applied, FaultError> {
    let svc = cx.service()?;
    let cgroup = svc.backend().cgroup(cx.inner).await?;
    // Their pids are known only once they run: prove first that they can be recorded.
    cx.inner.state.check().map_err(BackendError::State)?;
    let procs = start(cgroup.as_ref()).map_err(BackendError::Stress)?;
    for p in procs.pids() {
        if let Err(e) = cx.inner.state.add_process(*p, ProcRole::Stress, &svc.name) {
            let undo = StopStress(procs);
            Box::new(undo).undo(cx.inner).await?;
            return Err(BackendError::State(e).into());
        }
    }
    Ok(Applied::InForce(Box::new(StopStress(procs))))
}

struct StopStress(StressProcs);

impl Undo for StopStress {
    fn undo<'a>(
        self: Box<Self>,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            let procs = self.0;
            let pids = procs.pids().to_vec();
            tokio::task::spawn_blocking(move || procs.stop()).await?;
            for p in pids {
                inner.state.remove_process(p);
            }
            Ok(())
        }
        .boxed()
    }

    fn undo_blocking(self: Box<Self>, inner: &ServicesInner) {
        for p in self.0.pids() {
            inner.state.remove_process(*p);
        }
        self.0.stop();
    }
}
