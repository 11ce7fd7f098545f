//! The supervisor every wharf service runs its actors under.
//!
//! A supervisor owns named children (plain actors from [`child()`], worker pools
//! from [`crate::pool()`]) and applies one [`RestartPolicy`] to each of them:
//!
//! - a child that panics, returns `Err` from a handler, is killed, or stops on its
//!   own while the supervisor is not shutting down is respawned under the same
//!   registry name after the policy's backoff. The backoff is a timer message,
//!   never a sleep, so the supervisor keeps serving its other children meanwhile;
//! - a child that fails more than `max_restarts` times within `window` escalates:
//!   the supervisor marks the shared [`Liveness`] as failed (naming the child),
//!   stops all its children and then itself. The service's `main` awaits
//!   [`Liveness::failed`] and exits non-zero, so the orchestrator restarts the pod;
//! - [`SupervisorHandle::shutdown`] stops the children in reverse start order,
//!   without restarting any of them, then the supervisor.
//!
//! What happens to in-flight work when a child dies: requests in its mailbox and
//! the one being handled are dropped with their reply ports, so callers using an
//! [`crate::ActorHandle`] get [`crate::CallError::Died`] rather than hanging. Pools
//! redeliver their in-flight jobs themselves (see [`mod@crate::pool`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, ActorStatus, RpcReplyPort, SpawnErr, SupervisionEvent};

pub use crate::child::{ChildSpec, child};
pub use crate::handle::{ActorHandle, CallError};
use crate::liveness::Liveness;
use crate::policy::{RestartDecision, RestartPolicy, RestartWindow};

/// How long one child may take to stop gracefully before it is killed.
pub const CHILD_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a supervisor could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The supervisor actor itself could not be spawned (e.g. its name is taken).
    #[error("supervisor {supervisor} could not be spawned")]
    Spawn {
        supervisor: String,
        /// What ractor reported.
        #[source]
        source: SpawnErr,
    },
    /// A child failed its initial spawn; the children started before it were stopped again.
    #[error("child {child} failed to start")]
    ChildStart {
        /// The child's registry name.
        child: String,
        /// What ractor reported (usually the child's `pre_start` error).
        #[source]
        source: SpawnErr,
    },
}

/// Starts supervisors; see the module documentation for what they do.
#[derive(Debug, Clone, Copy)]
pub struct Supervisor;

impl Supervisor {
    /// Spawns a supervisor registered as `name` and its `children`, in order.
    ///
    /// Each child runs under the registry name `"{name}/{child}"`. Names are
    /// process-global, so choosing unique supervisor names is the caller's job.
    /// If any child fails its initial spawn, the ones already started are
    /// stopped and the error is returned.
    pub async fn start(
        name: impl Into<String>,
        policy: RestartPolicy,
        liveness: Liveness,
        children: Vec<ChildSpec>,
    ) -> Result<SupervisorHandle, SupervisorError> {
        let name = name.into();
        let mut names = Vec::new();
        for spec in &children {
            let registry_name = child_registry_name(&name, spec.name());
            spec.runner().bind(&registry_name, &liveness);
            let owned: Vec<String> =
                spec.runner().subordinates().into_iter().map(|sub| format!("{registry_name}/{sub}")).collect();
            names.push(registry_name);
            names.extend(owned);
        }

        let stopping = Arc::new(AtomicBool::new(false));
        let args = SupervisorArgs {
            name: name.clone(),
            policy,
            liveness: liveness.clone(),
            children,
            stopping: Arc::clone(&stopping),
        };
        let (actor, join) =
            SupervisorActor::spawn(Some(name.clone()), SupervisorActor, args).await.map_err(|err| match err {
                SpawnErr::StartupFailed(inner) => match inner.downcast::<SupervisorError>() {
                    Ok(child_error) => *child_error,
                    Err(other) => {
                        SupervisorError::Spawn { supervisor: name.clone(), source: SpawnErr::StartupFailed(other) }
                    }
                },
                other => SupervisorError::Spawn { supervisor: name.clone(), source: other },
            })?;

        // A supervisor has no parent to notice its death, so a watcher does: if it
        // ends without having been asked to (a bug in a handler, or an operator
        // killing it), the process is no longer supervised and must fail.
        tokio::spawn({
            let (name, liveness, stopping) = (name.clone(), liveness.clone(), Arc::clone(&stopping));
            async move {
                let _ = join.await;
                if !stopping.load(Ordering::SeqCst) {
                    liveness.escalate(format!("supervisor {name} stopped unexpectedly"));
                }
            }
        });

        Ok(SupervisorHandle { inner: Arc::new(HandleInner { name, actor, children: names, liveness }) })
    }
}

pub async fn start(
    name: impl Into<String>,
    policy: RestartPolicy,
    liveness: Liveness,
    children: Vec<ChildSpec>,
) -> Result<SupervisorHandle, SupervisorError> {
    Supervisor::start(name, policy, liveness, children).await
}

/// Control of a running supervisor; cheap to clone.
#[derive(Clone, Debug)]
pub struct SupervisorHandle {
    inner: Arc<HandleInner>,
}

#[derive(Debug)]
struct HandleInner {
    name: String,
    actor: ActorRef<SupervisorMsg>,
    /// Registry names of the children and of the actors they own, in start order.
    children: Vec<String>,
    liveness: Liveness,
}

impl SupervisorHandle {
    /// The supervisor's registry name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Registry names of all supervised actors, in start order, a pool followed by
    /// its workers (`"{supervisor}/{pool}/{index}"`). Any of them can be given to
    /// [`crate::chaos::kill`].
    pub fn children(&self) -> Vec<String> {
        self.inner.children.clone()
    }

    /// The liveness this supervisor escalates to.
    pub fn liveness(&self) -> &Liveness {
        &self.inner.liveness
    }

    /// Whether the supervisor has stopped (after shutdown or escalation).
    pub fn is_stopped(&self) -> bool {
        self.inner.actor.get_status() == ActorStatus::Stopped
    }

    /// Resolves once the supervisor has stopped.
    pub async fn stopped(&self) {
        let _ = self.inner.actor.wait(None).await;
    }

    /// Stops every child in reverse start order (each gets [`CHILD_STOP_TIMEOUT`]
    /// to finish its current message, then is killed), without restarting any,
    /// then stops the supervisor. Idempotent; safe to call concurrently.
    pub async fn shutdown(&self) {
        // Fails when the supervisor is already gone or going, which is fine: there
        // is nothing left to ask, only to wait for.
        let _ = self.inner.actor.call(SupervisorMsg::Shutdown, None).await;
        self.stopped().await;
    }
}

fn child_registry_name(supervisor: &str, child: &str) -> String {
    format!("{supervisor}/{child}")
}

/// The actor behind a [`SupervisorHandle`].
struct SupervisorActor;

struct SupervisorArgs {
    name: String,
    policy: RestartPolicy,
    liveness: Liveness,
    children: Vec<ChildSpec>,
    stopping: Arc<AtomicBool>,
}

/// Messages the supervisor sends itself or receives from its handle.
enum SupervisorMsg {
    /// The backoff of child `index` elapsed: spawn it again.
    Respawn { index: usize },
    /// Stop everything, then reply.
    Shutdown(RpcReplyPort<()>),
}

struct SupervisorState {
    name: String,
    policy: RestartPolicy,
    liveness: Liveness,
    children: Vec<Slot>,
    /// Set once shutdown or escalation began; from then on nothing restarts.
    /// Shared with the watcher task so it can tell a requested stop from a crash.
    stopping: Arc<AtomicBool>,
}

/// One child and its failure history.
struct Slot {
    spec: ChildSpec,
    registry_name: String,
    /// The live incarnation; `None` while it waits for its backoff to elapse.
    current: Option<ActorCell>,
    window: RestartWindow,
}

impl SupervisorState {
    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Records a failure of child `index` and either schedules its respawn or escalates.
    async fn child_failed(&mut self, myself: &ActorRef<SupervisorMsg>, index: usize, reason: String) {
        let Some(slot) = self.children.get_mut(index) else { return };
        match slot.window.record_failure(Instant::now(), &self.policy) {
            RestartDecision::Restart { attempt, delay } => {
                tracing::warn!(
                    supervisor = %self.name,
                    child = %slot.registry_name,
                    %reason,
                    attempt,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "child failed; restarting after backoff"
                );
                self.liveness.record_restart(&slot.registry_name);
                // A timer message rather than a sleep: the supervisor must keep
                // handling its other children's events during the backoff.
                let _timer = myself.send_after(delay, move || SupervisorMsg::Respawn { index });
            }
            RestartDecision::Escalate { failures } => {
                let escalation = format!(
                    "child {} of supervisor {} failed {failures} times within {:?} (at most {} restarts allowed); last failure: {reason}",
                    slot.registry_name, self.name, self.policy.window, self.policy.max_restarts
                );
                tracing::error!(supervisor = %self.name, child = %slot.registry_name, %reason, failures, "restart limit exceeded; escalating");
                self.stopping.store(true, Ordering::SeqCst);
                self.liveness.escalate(escalation.clone());
                self.stop_children().await;
                myself.stop(Some(escalation));
            }
        }
    }

    /// Stops the live children in reverse start order, so later children (which
    /// may depend on earlier ones) go first.
    async fn stop_children(&mut self) {
        for slot in self.children.iter_mut().rev() {
            if let Some(cell) = slot.current.take() {
                // Withdrawn only once stopped: a draining pool answers `ShuttingDown`,
                // which tells callers more than `Unavailable` would.
                slot.spec.runner().stop(cell, CHILD_STOP_TIMEOUT).await;
                slot.spec.runner().mark_down();
            }
        }
    }
}

impl Actor for SupervisorActor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = SupervisorState {
            name: args.name,
            policy: args.policy,
            liveness: args.liveness,
            children: Vec::with_capacity(args.children.len()),
            stopping: args.stopping,
        };
        for spec in args.children {
            let registry_name = child_registry_name(&state.name, spec.name());
            match spec.runner().spawn(registry_name.clone(), myself.get_cell()).await {
                Ok(cell) => {
                    tracing::debug!(supervisor = %state.name, child = %registry_name, "child started");
                    state.children.push(Slot {
                        spec,
                        registry_name,
                        current: Some(cell),
                        window: RestartWindow::new(),
                    });
                }
                Err(source) => {
                    state.stopping.store(true, Ordering::SeqCst);
                    state.stop_children().await;
                    return Err(Box::new(SupervisorError::ChildStart { child: registry_name, source }));
                }
            }
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Respawn { index } => {
                if state.is_stopping() {
                    return Ok(());
                }
                let Some(slot) = state.children.get_mut(index) else { return Ok(()) };
                if slot.current.is_some() {
                    return Ok(());
                }
                match slot.spec.runner().spawn(slot.registry_name.clone(), myself.get_cell()).await {
                    Ok(cell) => {
                        tracing::info!(supervisor = %state.name, child = %slot.registry_name, "child restarted");
                        slot.current = Some(cell);
                    }
                    // A failed respawn (usually `pre_start` erring) is one more failure,
                    // so a child that can never start escalates instead of looping.
                    Err(err) => state.child_failed(&myself, index, format!("restart failed: {err}")).await,
                }
            }
            SupervisorMsg::Shutdown(reply) => {
                if !state.stopping.swap(true, Ordering::SeqCst) {
                    tracing::info!(supervisor = %state.name, "shutting down");
                }
                state.stop_children().await;
                myself.stop(Some("shutdown".to_owned()));
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Overriding this is the whole point: ractor's default stops the supervisor
        // whenever any child exits.
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}")),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.map_or_else(|| "stopped".to_owned(), |r| format!("terminated: {r}")))
            }
            _ => return Ok(()),
        };
        // Events about an incarnation already replaced (or stopped by us) are stale.
        let id = cell.get_id();
        let Some(index) =
            state.children.iter().position(|slot| slot.current.as_ref().is_some_and(|c| c.get_id() == id))
        else {
            return Ok(());
        };
        if let Some(slot) = state.children.get_mut(index) {
            slot.current = None;
            slot.spec.runner().mark_down();
        }
        if state.is_stopping() {
            return Ok(());
        }
        state.child_failed(&myself, index, reason).await;
        Ok(())
    }
}
