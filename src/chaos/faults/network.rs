//! `network`: latency, jitter, drops, resets, a bandwidth cap or a partition in the
//! service's chaos proxy, for `duration`; the undo takes the effect out of the proxy.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::scenario::model::NetworkFault;

use super::{Applied, Cx, Fault, FaultError};
use crate::chaos::backend::{BackendError, Undo};
use crate::chaos::proxy::{Proxy, Toxic};
use crate::chaos::ServicesInner;

impl Fault for NetworkFault {
    async fn apply(&self, cx: &Cx<'_>) -> Result<Applied, FaultError> {
        let svc = cx.service()?;
        let proxy = svc
            .proxy
            .clone()
            .ok_or_else(|| FaultError::NoProxy(svc.name.clone()))?;
        let toxic = self.toxic()?;
        let id = proxy.add(toxic);
        Ok(Applied::InForce(Box::new(RemoveToxic { proxy, id })))
    }
}

impl NetworkFault {
    fn toxic(&self) -> Result<Toxic, FaultError> {
        let t = Toxic {
            latency: self.latency.map(|d| d.as_duration()).unwrap_or_default(),
            jitter: self.jitter.map(|d| d.as_duration()).unwrap_or_default(),
            drop_pct: self.drop.unwrap_or(0.0).clamp(0.0, 100.0),
            reset: self.reset.unwrap_or(false),
            bandwidth: self.bandwidth.map(|b| b.bytes()),
            partition: self.partition.unwrap_or(false),
        };
        if t == Toxic::default() {
            return Err(FaultError::Incomplete(
                "a `network` fault needs one of latency, jitter, drop, reset, bandwidth, partition",
            ));
        }
        Ok(t)
    }
}

struct RemoveToxic {
    proxy: Arc<Proxy>,
    id: u64,
}

impl Undo for RemoveToxic {
    fn undo<'a>(self: Box<Self>, _: &'a ServicesInner) -> BoxFuture<'a, Result<(), BackendError>> {
        self.proxy.remove(self.id);
        async { Ok(()) }.boxed()
    }

    fn undo_blocking(self: Box<Self>, _: &ServicesInner) {
        self.proxy.remove(self.id);
    }
}
