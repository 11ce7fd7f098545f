//! A stable way to reach a supervised actor across its restarts.
//!
//! An [`ActorRef`] names one incarnation of an actor; once that incarnation
//! dies, every message sent to it fails. An [`ActorHandle`] is what the rest of a
//! service keeps instead: the supervisor swaps the current `ActorRef` into it on
//! every (re)spawn and clears it while the child is down, so callers always talk
//! to the live incarnation, or learn at once that there is none.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use ractor::rpc::CallResult;
use ractor::{ActorRef, Message, RpcReplyPort};

/// Why a [`ActorHandle::call`] did not produce a reply. The `String` is the actor's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No incarnation of the actor is running right now (it is restarting, or
    /// its supervisor stopped), or its mailbox is closed.
    #[error("actor {0} is unavailable")]
    Unavailable(String),
    /// The actor took the request but died before replying (its reply port was dropped).
    #[error("actor {0} died before replying")]
    Died(String),
    /// The actor did not reply within the caller's timeout.
    #[error("actor {0} did not reply in time")]
    Timeout(String),
}

/// The current incarnation of a supervised child; cheap to clone.
///
/// Reading it takes no lock and allocates nothing (an `ArcSwapOption` load), as
/// it sits on the request path of every HTTP handler.
pub struct ActorHandle<M: Message> {
    inner: Arc<Inner<M>>,
}

struct Inner<M> {
    /// The name given to [`crate::child()`].
    child_name: String,
    /// `"{supervisor}/{child}"`, known once a supervisor adopted the child.
    registry_name: OnceLock<String>,
    /// The live incarnation; `None` while the child is down or restarting.
    current: ArcSwapOption<ActorRef<M>>,
}

impl<M: Message> Clone for ActorHandle<M> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<M: Message> fmt::Debug for ActorHandle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorHandle").field("name", &self.name()).field("up", &self.get().is_some()).finish()
    }
}

impl<M: Message> ActorHandle<M> {
    pub(crate) fn new(child_name: String) -> Self {
        Self { inner: Arc::new(Inner { child_name, registry_name: OnceLock::new(), current: ArcSwapOption::empty() }) }
    }

    /// The actor's registry name (`"{supervisor}/{child}"`) once a supervisor
    /// started it; before that, the bare child name.
    pub fn name(&self) -> &str {
        self.inner.registry_name.get().map_or(self.inner.child_name.as_str(), String::as_str)
    }

    /// The live incarnation, or `None` while the child is down or restarting.
    pub fn get(&self) -> Option<ActorRef<M>> {
        self.inner.current.load().as_deref().cloned()
    }

    /// Sends a request built by `msg` and waits up to `timeout` for the reply.
    ///
    /// Never hangs on a dead actor: if the incarnation dies with the request in
    /// its mailbox or in flight, its reply port is dropped and this returns
    /// [`CallError::Died`].
    pub async fn call<R: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<R>) -> M,
        timeout: Duration,
    ) -> Result<R, CallError> {
        let actor = self.get().ok_or_else(|| CallError::Unavailable(self.name().to_owned()))?;
        match actor.call(msg, Some(timeout)).await {
            Ok(CallResult::Success(reply)) => Ok(reply),
            Ok(CallResult::SenderError) => Err(CallError::Died(self.name().to_owned())),
            Ok(CallResult::Timeout) => Err(CallError::Timeout(self.name().to_owned())),
            // The send itself failed: the incarnation we loaded has closed its mailbox.
            Err(_) => Err(CallError::Unavailable(self.name().to_owned())),
        }
    }

    /// Records the supervisor-given registry name; only the first call has an effect.
    pub(crate) fn bind(&self, registry_name: &str) {
        let _ = self.inner.registry_name.set(registry_name.to_owned());
    }

    /// Publishes a freshly spawned incarnation.
    pub(crate) fn set(&self, actor: ActorRef<M>) {
        self.inner.current.store(Some(Arc::new(actor)));
    }

    /// Withdraws the incarnation that just died, so callers fail fast.
    pub(crate) fn clear(&self) {
        self.inner.current.store(None);
    }
}
