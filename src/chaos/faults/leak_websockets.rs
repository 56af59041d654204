//! `leak_websockets`: open WebSocket connections to `url` and never close them, for
//! `duration`; the undo closes them.

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::event::Level;
use crate::scenario::model::LeakWebsocketsFault;

use super::{Applied, Cx, Fault, FaultError};
use crate::chaos::backend::{BackendError, Undo};
use crate::chaos::wsleak::{self, WsLeak};
use crate::chaos::ServicesInner;

impl Fault for LeakWebsocketsFault {
    async fn apply(&self, cx: &Cx<'_>) -> Result<Applied, FaultError> {
        let url = self.url.as_deref().ok_or(FaultError::Incomplete(
            "`leak_websockets` needs a `url` (ws://127.0.0.1:PORT/PATH)",
        ))?;
        let n = self.connections.unwrap_or(100);
        let rate = self.rate.unwrap_or(50.0);
        let leak =
            wsleak::start(url, n, rate, cx.inner.events.clone(), cx.info.name.clone()).await?;
        Ok(Applied::InForce(Box::new(CloseLeak(leak))))
    }
}

struct CloseLeak(WsLeak);

impl Undo for CloseLeak {
    fn undo<'a>(
        self: Box<Self>,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let (opened, _) = self.0.close();
        inner.events.notice(
            Level::Info,
            format!("leak_websockets: closed {opened} leaked connections"),
        );
        async { Ok(()) }.boxed()
    }

    fn undo_blocking(self: Box<Self>, _: &ServicesInner) {
        self.0.close();
    }
}
