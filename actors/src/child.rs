//! How a supervisor (re)spawns and stops one named child.
//!
//! A [`ChildSpec`] is a recipe, not an actor: the supervisor runs it once at start
//! and again on every restart, and it publishes each new incarnation into the
//! [`ActorHandle`] returned alongside it. Plain actors get their spec from
//! [`child()`]; worker pools from [`crate::pool()`].

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use ractor::{Actor, ActorCell, RactorErr, SpawnErr};

use crate::handle::ActorHandle;
use crate::liveness::Liveness;

/// A boxed future borrowing the runner; the supervisor awaits it in its own handler.
pub(crate) type RunnerFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The type-erased part of a [`ChildSpec`]: everything the supervisor needs to do
/// to a child without knowing its message type.
pub(crate) trait ChildRunner: Send + Sync + 'static {
    /// Tells the child (and its handle) the registry name it will run under and
    /// the liveness of its supervisor.
    fn bind(&self, registry_name: &str, liveness: &Liveness);

    /// Spawns a new incarnation linked to `supervisor` and publishes it in the handle.
    fn spawn(&self, registry_name: String, supervisor: ActorCell) -> RunnerFuture<'_, Result<ActorCell, SpawnErr>>;

    /// Withdraws the incarnation that died from the handle.
    fn mark_down(&self);

    /// Stops `cell` gracefully, giving up and killing it after `timeout`.
    fn stop(&self, cell: ActorCell, timeout: Duration) -> RunnerFuture<'_, ()> {
        Box::pin(async move { stop_gracefully(&cell, "supervisor stopping its children", timeout).await })
    }

    /// Registry-name suffixes of actors this child owns itself (a pool's workers),
    /// listed by [`crate::SupervisorHandle::children`] as `"{child}/{suffix}"`.
    fn subordinates(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A recipe for one named child of a [`crate::Supervisor`]. Opaque; build it with
/// [`child()`] or [`crate::pool()`].
pub struct ChildSpec {
    /// The child's name under its supervisor (registry name `"{supervisor}/{name}"`).
    name: String,
    runner: Box<dyn ChildRunner>,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec").field("name", &self.name).finish_non_exhaustive()
    }
}

impl ChildSpec {
    pub(crate) fn new(name: String, runner: Box<dyn ChildRunner>) -> Self {
        Self { name, runner }
    }

    /// The child's name under its supervisor.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn runner(&self) -> &dyn ChildRunner {
        self.runner.as_ref()
    }
}

/// A spec for a child actor built by `make` on every (re)spawn, and the handle
/// through which the rest of the service reaches its current incarnation.
///
/// `make` runs again for each restart, so the child starts from fresh arguments
/// rather than from state left behind by the incarnation that failed.
pub fn child<A, F>(name: impl Into<String>, make: F) -> (ChildSpec, ActorHandle<A::Msg>)
where
    A: Actor,
    F: Fn() -> (A, A::Arguments) + Send + Sync + 'static,
{
    let name = name.into();
    let handle = ActorHandle::new(name.clone());
    let runner = ActorRunner::<A, F>::new(make, handle.clone());
    (ChildSpec::new(name, Box::new(runner)), handle)
}

/// Spawns an `A` from `make` and keeps its handle current.
pub(crate) struct ActorRunner<A: Actor, F> {
    make: F,
    handle: ActorHandle<A::Msg>,
    /// `fn() -> A` keeps the runner `Send + Sync` whatever `A` holds.
    actor: PhantomData<fn() -> A>,
}

impl<A, F> ActorRunner<A, F>
where
    A: Actor,
    F: Fn() -> (A, A::Arguments) + Send + Sync + 'static,
{
    pub(crate) fn new(make: F, handle: ActorHandle<A::Msg>) -> Self {
        Self { make, handle, actor: PhantomData }
    }
}

impl<A, F> ChildRunner for ActorRunner<A, F>
where
    A: Actor,
    F: Fn() -> (A, A::Arguments) + Send + Sync + 'static,
{
    fn bind(&self, registry_name: &str, _liveness: &Liveness) {
        self.handle.bind(registry_name);
    }

    fn spawn(&self, registry_name: String, supervisor: ActorCell) -> RunnerFuture<'_, Result<ActorCell, SpawnErr>> {
        Box::pin(async move {
            let (actor, arguments) = (self.make)();
            // The join handle is not needed: the supervisor learns of the exit
            // through its supervision port, which is what drives restarts.
            let (actor_ref, _join) = A::spawn_linked(Some(registry_name), actor, arguments, supervisor).await?;
            let cell = actor_ref.get_cell();
            self.handle.set(actor_ref);
            Ok(cell)
        })
    }

    fn mark_down(&self) {
        self.handle.clear();
    }
}

/// Asks `cell` to stop and waits; kills it if it has not stopped within `timeout`
/// (a handler stuck on I/O must not hold a shutdown hostage).
pub(crate) async fn stop_gracefully(cell: &ActorCell, reason: &str, timeout: Duration) {
    match cell.stop_and_wait(Some(reason.to_owned()), Some(timeout)).await {
        Ok(()) => {}
        Err(RactorErr::Timeout) => {
            tracing::warn!(actor = ?cell.get_name(), ?timeout, "actor did not stop in time; killing it");
            let _ = cell.kill_and_wait(Some(timeout)).await;
        }
        // Its mailbox is already closed: it is stopping on its own; just wait for it.
        Err(_) => {
            let _ = cell.wait(Some(timeout)).await;
        }
    }
}
