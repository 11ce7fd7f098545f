//! A supervised worker pool that does not lose accepted work when a worker dies.
//!
//! ractor's factory abandons a job whose worker dies; wharf's senders and
//! consumers cannot afford that, so this pool keeps every accepted job until its
//! caller has been answered:
//!
//! - jobs wait in a bounded queue inside the pool actor (a full pool answers
//!   [`PoolError::Overloaded`] at once, it never grows without bound) and are
//!   handed to idle workers one at a time; the pool keeps an `Arc` of each job in
//!   flight;
//! - workers report completion to the pool, which answers the caller, so a dying
//!   worker cannot drop a caller's reply;
//! - when a worker dies mid-job, the job goes back to the front of the queue if
//!   [`Worker::redeliver_on_death`] allows it (at most [`MAX_ATTEMPTS`] tries in
//!   all), otherwise its caller gets [`PoolError::WorkerDied`];
//! - workers are children of the pool actor (`"{pool}/{index}"`), restarted with
//!   the pool's [`RestartPolicy`] and counted in the supervisor's
//!   [`crate::Liveness::restarts`]; a restart storm fails the pool itself, so the
//!   pool's own supervisor decides what happens next. If the pool actor dies, its
//!   waiting callers get [`PoolError::Unavailable`], never a hang;
//! - on supervisor shutdown the pool drains: it refuses new jobs with
//!   [`PoolError::ShuttingDown`] and finishes the accepted ones within
//!   [`crate::supervisor::CHILD_STOP_TIMEOUT`]; whatever is left is answered
//!   `ShuttingDown`.

mod dispatcher;
mod worker;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ractor::{ActorCell, ActorProcessingErr, ActorRef, SpawnErr};
use tokio::sync::oneshot;

use crate::child::{ActorRunner, ChildRunner, ChildSpec, RunnerFuture, stop_gracefully};
use crate::handle::ActorHandle;
use crate::liveness::Liveness;
use crate::policy::RestartPolicy;
use dispatcher::{PoolActor, PoolMsg};

/// How many times one job may be started before a death of its worker is
/// reported as [`PoolError::WorkerDied`] instead of redelivering it. Bounds the
/// damage of a job that kills every worker it touches.
pub const MAX_ATTEMPTS: u32 = 3;

/// The work a pool does. One value is shared by all workers; per-worker
/// resources (connections, clients) live in [`Worker::State`].
pub trait Worker: Send + Sync + 'static {
    /// One unit of work.
    type Job: Send + Sync + 'static;
    /// What a job produces for its caller.
    type Output: Send + 'static;
    type State: Send + 'static;

    /// Per-worker state, built when the worker (re)starts.
    fn init(&self) -> impl Future<Output = Result<Self::State, ActorProcessingErr>> + Send;

    /// Performs one job. A panic here kills the worker (and is handled as its death).
    fn perform(&self, state: &mut Self::State, job: &Self::Job) -> impl Future<Output = Self::Output> + Send;

    /// Whether a job whose worker died mid-way may be given to another worker
    /// (true for idempotent work; false makes the caller get [`PoolError::WorkerDied`]).
    fn redeliver_on_death(&self, job: &Self::Job) -> bool;
}

/// Why a pool did not produce a job's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The pool is not running (it is restarting or its supervisor stopped), or it
    /// died while the job was waiting or in flight.
    #[error("the worker pool is not available")]
    Unavailable,
    /// The pool's queue is full; retry later or shed the request.
    #[error("the worker pool is overloaded: its queue is full")]
    Overloaded,
    /// The worker died while performing the job, and the job was not redelivered
    /// (not redeliverable, or it had already been tried too often).
    #[error("the worker died while performing the job")]
    WorkerDied,
    /// The pool is draining for shutdown and takes no new work.
    #[error("the worker pool is shutting down")]
    ShuttingDown,
}

/// A pool to be run by a [`crate::Supervisor`], and the handle to submit work to it.
///
/// `size` workers (at least 1) run `worker`'s jobs; at most `capacity` (at least 1)
/// jobs wait for a worker at any time, counting those still in the pool's mailbox.
/// The pool registers as `"{supervisor}/{name}"`, its workers as
/// `"{supervisor}/{name}/{index}"`.
pub fn pool<W: Worker>(
    name: impl Into<String>,
    worker: Arc<W>,
    size: usize,
    capacity: usize,
    policy: RestartPolicy,
) -> (ChildSpec, PoolHandle<W>) {
    let name = name.into();
    let size = size.max(1);
    let capacity = capacity.max(1);
    let handle = ActorHandle::new(name.clone());
    // Shared by all incarnations of the pool: every admitted job holds one unit
    // until it is handed to a worker or dropped, so the count cannot drift when a
    // pool dies with jobs in its mailbox.
    let waiting = Arc::new(AtomicUsize::new(0));
    // Known only once a supervisor adopts the pool, which happens before any spawn.
    let liveness = Arc::new(OnceLock::new());
    let make = {
        let (waiting, liveness) = (Arc::clone(&waiting), Arc::clone(&liveness));
        move || {
            let actor =
                PoolActor::new(Arc::clone(&worker), size, policy, Arc::clone(&waiting), liveness.get().cloned());
            (actor, ())
        }
    };
    let runner = PoolRunner { actor: ActorRunner::<PoolActor<W>, _>::new(make, handle.clone()), size, liveness };
    let pool_handle = PoolHandle { actor: handle, waiting, capacity };
    (ChildSpec::new(name, Box::new(runner)), pool_handle)
}

/// Submits work to a pool; cheap to clone.
pub struct PoolHandle<W: Worker> {
    actor: ActorHandle<PoolMsg<W>>,
    /// Jobs admitted but not yet handed to a worker (mailbox + queue).
    waiting: Arc<AtomicUsize>,
    capacity: usize,
}

impl<W: Worker> Clone for PoolHandle<W> {
    fn clone(&self) -> Self {
        Self { actor: self.actor.clone(), waiting: Arc::clone(&self.waiting), capacity: self.capacity }
    }
}

impl<W: Worker> fmt::Debug for PoolHandle<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolHandle")
            .field("name", &self.actor.name())
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<W: Worker> PoolHandle<W> {
    /// The pool's registry name (once its supervisor started it).
    pub fn name(&self) -> &str {
        self.actor.name()
    }

    /// Runs `job` and waits for its output. Never hangs on a dead pool or worker;
    /// wrap it in `tokio::time::timeout` to bound slow work.
    pub async fn call(&self, job: W::Job) -> Result<W::Output, PoolError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(job, Some(reply))?;
        // The sender only drops unanswered when the pool actor itself died.
        answer.await.unwrap_or(Err(PoolError::Unavailable))
    }

    /// Queues `job` without waiting for it. It is redelivered on worker death
    /// like any other job; only its output is discarded.
    pub fn submit(&self, job: W::Job) -> Result<(), PoolError> {
        self.enqueue(job, None)
    }

    fn enqueue(&self, job: W::Job, reply: Option<Reply<W>>) -> Result<(), PoolError> {
        let actor = self.actor.get().ok_or(PoolError::Unavailable)?;
        let admission = Admission::try_acquire(&self.waiting, self.capacity).ok_or(PoolError::Overloaded)?;
        // On failure the message, and with it the admission, is dropped: the slot is freed.
        actor.send_message(PoolMsg::Submit { job, reply, admission }).map_err(|_| PoolError::Unavailable)
    }
}

/// Where a job's caller waits for its output (`None` for fire-and-forget jobs).
type Reply<W> = oneshot::Sender<Result<<W as Worker>::Output, PoolError>>;

/// One unit of the pool's capacity, held by a job from admission until it is
/// handed to a worker; released on drop, wherever the job is dropped.
struct Admission {
    waiting: Arc<AtomicUsize>,
}

impl Admission {
    /// Takes a unit if fewer than `capacity` jobs are waiting.
    fn try_acquire(waiting: &Arc<AtomicUsize>, capacity: usize) -> Option<Self> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < capacity).then_some(n + 1))
            .ok()
            .map(|_| Self { waiting: Arc::clone(waiting) })
    }

    /// Takes a unit regardless of capacity: a redelivered job was already
    /// accepted, and counting it makes new jobs wait behind it.
    fn force(waiting: &Arc<AtomicUsize>) -> Self {
        waiting.fetch_add(1, Ordering::AcqRel);
        Self { waiting: Arc::clone(waiting) }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The pool's [`ChildRunner`]: spawns like any actor, but drains before stopping
/// and reports its workers' names.
struct PoolRunner<W: Worker, F> {
    actor: ActorRunner<PoolActor<W>, F>,
    size: usize,
    /// The supervisor's liveness, where worker restarts are counted too.
    liveness: Arc<OnceLock<Liveness>>,
}

impl<W, F> ChildRunner for PoolRunner<W, F>
where
    W: Worker,
    F: Fn() -> (PoolActor<W>, ()) + Send + Sync + 'static,
{
    fn bind(&self, registry_name: &str, liveness: &Liveness) {
        let _ = self.liveness.set(liveness.clone());
        self.actor.bind(registry_name, liveness);
    }

    fn spawn(&self, registry_name: String, supervisor: ActorCell) -> RunnerFuture<'_, Result<ActorCell, SpawnErr>> {
        self.actor.spawn(registry_name, supervisor)
    }

    fn mark_down(&self) {
        self.actor.mark_down();
    }

    fn stop(&self, cell: ActorCell, timeout: Duration) -> RunnerFuture<'_, ()> {
        Box::pin(async move {
            let deadline = Instant::now() + timeout;
            let pool: ActorRef<PoolMsg<W>> = cell.clone().into();
            // Let accepted jobs finish; a pool that does not drain in time is stopped anyway.
            let _ = pool.call(PoolMsg::Drain, Some(timeout)).await;
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
            stop_gracefully(&cell, "pool shutting down", left).await;
        })
    }

    fn subordinates(&self) -> Vec<String> {
        (0..self.size).map(|index| index.to_string()).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn admission_is_bounded_and_released_on_drop() {
        let waiting = Arc::new(AtomicUsize::new(0));
        let a = Admission::try_acquire(&waiting, 2).unwrap();
        let b = Admission::try_acquire(&waiting, 2).unwrap();
        assert!(Admission::try_acquire(&waiting, 2).is_none());
        drop(a);
        let c = Admission::try_acquire(&waiting, 2).unwrap();
        let forced = Admission::force(&waiting);
        assert_eq!(waiting.load(Ordering::SeqCst), 3);
        drop((b, c, forced));
        assert_eq!(waiting.load(Ordering::SeqCst), 0);
    }
}
