//! A pool worker: performs one job at a time for its pool.
//!
//! Supervised by the pool actor, which restarts it with the pool's policy.
//! [`Worker::init`] runs on every (re)start, so a worker never inherits the state
//! of an incarnation that crashed. The worker does not answer callers: it leaves
//! the output in the job's [`Outcome`] and reports `Done` to the pool, so when it
//! dies mid-job the pool still owns the caller's reply and decides what to do.

use std::sync::{Arc, Mutex};

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::Worker;
use super::dispatcher::PoolMsg;

/// Where a worker leaves a job's output before reporting `Done`.
///
/// If the worker dies between storing and the pool reading its report, the pool
/// finds the output here when it handles the death, instead of redelivering a
/// job that already ran.
pub(crate) struct Outcome<T>(Arc<Mutex<Option<T>>>);

impl<T> Default for Outcome<T> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(None)))
    }
}

impl<T> Clone for Outcome<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Outcome<T> {
    fn store(&self, output: T) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(output);
    }

    /// The output, if the job finished and it was not taken yet.
    pub(crate) fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

/// Messages of a worker.
pub(crate) enum WorkerMsg<W: Worker> {
    /// Perform `job` and leave its output in `outcome`.
    Perform { ticket: u64, job: Arc<W::Job>, outcome: Outcome<W::Output> },
}

pub(crate) struct WorkerActor<W: Worker> {
    worker: Arc<W>,
    pool: ActorRef<PoolMsg<W>>,
}

impl<W: Worker> WorkerActor<W> {
    pub(crate) fn new(worker: Arc<W>, pool: ActorRef<PoolMsg<W>>) -> Self {
        Self { worker, pool }
    }
}

impl<W: Worker> Actor for WorkerActor<W> {
    type Msg = WorkerMsg<W>;
    type State = W::State;
    type Arguments = ();

    async fn pre_start(&self, _myself: ActorRef<Self::Msg>, _: ()) -> Result<Self::State, ActorProcessingErr> {
        self.worker.init().await
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let WorkerMsg::Perform { ticket, job, outcome } = message;
        let output = self.worker.perform(state, &job).await;
        // No await between storing and reporting: a kill cannot separate them.
        outcome.store(output);
        // The pool being gone is not this worker's problem: it is about to be stopped.
        let _ = self.pool.send_message(PoolMsg::Done { worker: myself.get_id(), ticket });
        Ok(())
    }
}
