//! What faults do to a docker-backend service: its [`Backend`], and the undos it hands
//! back (start stopped containers, unpause paused ones, remove duplicates).

use bollard::query_parameters::RemoveContainerOptionsBuilder;
use bollard::Docker;
use futures::future::BoxFuture;
use futures::FutureExt;
use nix::sys::signal::Signal;

use super::{
    connect, on_own_runtime, remove_containers, start_containers, unpause_containers, DockerService,
};
use crate::chaos::backend::{Backend, BackendError, Undo};
use crate::chaos::state::Pending;
use crate::chaos::stress::CgroupTarget;
use crate::chaos::{Service, ServicesInner};

fn client(inner: &ServicesInner) -> Result<&Docker, BackendError> {
    inner.docker.as_ref().ok_or(BackendError::NoDocker)
}

impl Backend for DockerService {
    fn instance<'a>(&'a self, inner: &'a ServicesInner) -> BoxFuture<'a, Option<String>> {
        async move { DockerService::instance(self, inner.docker.as_ref()?).await }.boxed()
    }

    fn kill<'a>(
        &'a self,
        inner: &'a ServicesInner,
        sig: Signal,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            self.kill_main_process(client(inner)?, sig)
                .await
                .map_err(BackendError::Docker)
        }
        .boxed()
    }

    fn restart<'a>(&'a self, inner: &'a ServicesInner) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            DockerService::restart(self, client(inner)?)
                .await
                .map_err(BackendError::Docker)
        }
        .boxed()
    }

    fn stop<'a>(
        &'a self,
        inner: &'a ServicesInner,
        sig: Signal,
    ) -> BoxFuture<'a, Result<Box<dyn Undo>, BackendError>> {
        async move {
            let ids = DockerService::stop(self, client(inner)?, inner, sig)
                .await
                .map_err(BackendError::Docker)?;
            Ok(Box::new(StartContainers(ids)) as Box<dyn Undo>)
        }
        .boxed()
    }

    fn start<'a>(&'a self, inner: &'a ServicesInner) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            start_containers(client(inner)?, inner, &self.ids())
                .await
                .map_err(BackendError::Docker)
        }
        .boxed()
    }

    fn pause<'a>(
        &'a self,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<Box<dyn Undo>, BackendError>> {
        async move {
            let ids = DockerService::pause(self, client(inner)?, inner)
                .await
                .map_err(BackendError::Docker)?;
            Ok(Box::new(UnpauseContainers(ids)) as Box<dyn Undo>)
        }
        .boxed()
    }

    fn duplicate<'a>(
        &'a self,
        inner: &'a ServicesInner,
        _: &'a Service,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn Undo>, BackendError>> {
        async move {
            let ids = DockerService::duplicate(self, client(inner)?, inner, tag)
                .await
                .map_err(BackendError::Docker)?;
            Ok(Box::new(RemoveContainers(ids)) as Box<dyn Undo>)
        }
        .boxed()
    }

    fn cgroup<'a>(
        &'a self,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<Option<CgroupTarget>, BackendError>> {
        async move {
            DockerService::cgroup(self, client(inner)?)
                .await
                .map(Some)
                .map_err(BackendError::Docker)
        }
        .boxed()
    }
}

/// Undo of a `stop`: start the containers again.
struct StartContainers(Vec<String>);

impl Undo for StartContainers {
    fn undo<'a>(
        self: Box<Self>,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            start_containers(client(inner)?, inner, &self.0)
                .await
                .map_err(BackendError::Docker)
        }
        .boxed()
    }

    fn undo_blocking(self: Box<Self>, inner: &ServicesInner) {
        let state = inner.state.clone();
        on_own_runtime(move || async move {
            let Ok(docker) = connect().await else { return };
            for id in self.0 {
                if docker.start_container(&id, None).await.is_ok() {
                    state.remove_pending(&Pending::StoppedContainer { id });
                }
            }
        });
    }
}

/// Undo of a `pause`.
struct UnpauseContainers(Vec<String>);

impl Undo for UnpauseContainers {
    fn undo<'a>(
        self: Box<Self>,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            unpause_containers(client(inner)?, inner, &self.0)
                .await
                .map_err(BackendError::Docker)
        }
        .boxed()
    }

    fn undo_blocking(self: Box<Self>, inner: &ServicesInner) {
        let state = inner.state.clone();
        on_own_runtime(move || async move {
            let Ok(docker) = connect().await else { return };
            for id in self.0 {
                if docker.unpause_container(&id).await.is_ok() {
                    state.remove_pending(&Pending::PausedContainer { id });
                }
            }
        });
    }
}

/// Undo of a `duplicate`: remove the extra containers.
struct RemoveContainers(Vec<String>);

impl Undo for RemoveContainers {
    fn undo<'a>(
        self: Box<Self>,
        inner: &'a ServicesInner,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            remove_containers(client(inner)?, inner, &self.0)
                .await
                .map_err(BackendError::Docker)
        }
        .boxed()
    }

    fn undo_blocking(self: Box<Self>, inner: &ServicesInner) {
        let state = inner.state.clone();
        on_own_runtime(move || async move {
            let Ok(docker) = connect().await else { return };
            for id in self.0 {
                if docker
                    .remove_container(
                        &id,
                        Some(RemoveContainerOptionsBuilder::default().force(true).build()),
                    )
                    .await
                    .is_ok()
                {
                    state.remove_container(&id);
                }
            }
        });
    }
}
