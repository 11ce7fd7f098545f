//! How a service's routes reach its store: through a supervised worker pool, with the failure
//! modes of that path turned into the problems a client sees.
//!
//! A call names its operation as a closure over the store and gets that operation's own type
//! back (`store.read(move |s| async move { s.get(id).await })`): there is no job enum to keep in
//! step with an output enum, so a reply of the wrong kind cannot exist. Whether the call reads or
//! writes decides what happens when its worker dies:
//!
//! - the database is slow or gone → 503 with `Retry-After`;
//! - the pool is restarting, overloaded or shutting down → 503;
//! - a worker died under a write → 503: the write may have committed, so it is not repeated
//!   behind the client's back;
//! - a worker died under a read, or the pool is restarting → the read is redelivered or waits
//!   for the pool, up to [`READ_PATIENCE`], because reads are safe to repeat;
//! - any other database error → 500 (logged with its cause).
//!
//! Each call is a CLIENT span (`store read`, `store write`) in the caller's trace, from the
//! moment it queues for a worker until its answer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::{Instant, error::Elapsed};
use tracing::Instrument;
use wharf_actors::{ChildSpec, PoolError, PoolHandle, Worker, pool};
use wharf_edge::Problem;
use wharf_edge::trace::TRACE_TARGET;

use crate::ServiceConfig;

/// How long a request waits for the store before answering 503. Above the database pool's
/// acquire timeout, so a saturated database pool reports itself first.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read waits for a restarting store pool before answering 503.
pub const READ_PATIENCE: Duration = Duration::from_secs(1);

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database did not answer in time or the connection broke: worth retrying later.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else: a fault of ours.
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => {
                Self::Unavailable(err)
            }
            other => Self::Database(other),
        }
    }
}

/// A started operation; it reports its result through the slot its call left in the closure.
type Run = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One store operation as the pool sees it: type-erased, its reply slot captured inside.
pub struct StoreJob<S> {
    operation: Operation<S>,
}

/// A write, started at most once.
type WriteOnce<S> = Box<dyn FnOnce(S) -> Run + Send>;

enum Operation<S> {
    /// Safe to run again on another worker if this one dies.
    Read(Box<dyn Fn(S) -> Run + Send + Sync>),
    /// Runs at most once; taken out when it starts.
    Write(Mutex<Option<WriteOnce<S>>>),
}

impl<S> fmt::Debug for StoreJob<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let access = match self.operation {
            Operation::Read(_) => "read",
            Operation::Write(_) => "write",
        };
        f.debug_struct("StoreJob").field("access", &access).finish()
    }
}

/// The pool's work: hand each worker's copy of the store to the operation.
#[derive(Debug)]
pub struct StoreWorker<S> {
    store: S,
}

impl<S> Worker for StoreWorker<S>
where
    S: Clone + Send + Sync + 'static,
{
    type Job = StoreJob<S>;
    type Output = ();
    type State = S;

    async fn init(&self) -> Result<S, ractor::ActorProcessingErr> {
        Ok(self.store.clone())
    }

    async fn perform(&self, store: &mut S, job: &StoreJob<S>) {
        let run = match &job.operation {
            Operation::Read(read) => read(store.clone()),
            Operation::Write(write) => {
                // A write is never redelivered, so a second start cannot happen; if it did, the
                // empty slot makes the caller see a failed job rather than a repeated write.
                let Some(write) = write.lock().unwrap_or_else(PoisonError::into_inner).take() else { return };
                write(store.clone())
            }
        };
        run.await;
    }

    fn redeliver_on_death(&self, job: &StoreJob<S>) -> bool {
        matches!(job.operation, Operation::Read(_))
    }
}

/// The store pool of a service: `DATABASE_MAX_CONNECTIONS` workers (more would only queue inside
/// the database pool) and `STORE_QUEUE` waiting calls, registered as `store` under the service's
/// supervisor. `what` names the store in problems and logs (`product store`).
pub fn store_pool<S>(store: S, settings: &ServiceConfig, what: &'static str) -> (ChildSpec, StoreClient<S>)
where
    S: Clone + Send + Sync + 'static,
{
    let workers = usize::try_from(settings.database_max_connections).unwrap_or(1);
    let (spec, pool) =
        pool("store", Arc::new(StoreWorker { store }), workers, settings.store_queue, settings.restart_policy());
    (spec, StoreClient { pool, what })
}

/// Calls a store worker pool on behalf of the routes; cheap to clone.
pub struct StoreClient<S: Clone + Send + Sync + 'static> {
    pool: PoolHandle<StoreWorker<S>>,
    what: &'static str,
}

impl<S: Clone + Send + Sync + 'static> Clone for StoreClient<S> {
    fn clone(&self) -> Self {
        Self { pool: self.pool.clone(), what: self.what }
    }
}

impl<S: Clone + Send + Sync + 'static> fmt::Debug for StoreClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreClient").field("store", &self.what).field("pool", &self.pool).finish()
    }
}

/// Where an operation leaves its result for the caller.
type Slot<T> = Arc<Mutex<Option<Result<T, StoreError>>>>;

fn deliver<T>(slot: &Slot<T>, result: Result<T, StoreError>) {
    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
}

impl<S: Clone + Send + Sync + 'static> StoreClient<S> {
    /// Runs a read, redelivered if its worker dies and waiting out a pool restart (see the
    /// module docs).
    pub async fn read<T, E, F, Fut>(&self, read: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        E: Into<StoreError>,
        F: Fn(S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let span =
            tracing::info_span!(target: TRACE_TARGET, "store read", otel.kind = "client", wharf.store = self.what);
        self.read_traced(read).instrument(span).await
    }

    async fn read_traced<T, E, F, Fut>(&self, read: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        E: Into<StoreError>,
        F: Fn(S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let slot: Slot<T> = Arc::default();
        let read = Arc::new(read);
        let deadline = Instant::now() + READ_PATIENCE;
        loop {
            let (slot_for_job, read) = (Arc::clone(&slot), Arc::clone(&read));
            let job = StoreJob {
                operation: Operation::Read(Box::new(move |store| {
                    let (slot, run) = (Arc::clone(&slot_for_job), read(store));
                    Box::pin(async move { deliver(&slot, run.await.map_err(Into::into)) })
                })),
            };
            match tokio::time::timeout(CALL_TIMEOUT, self.pool.call(job)).await {
                Ok(Err(PoolError::Unavailable | PoolError::WorkerDied)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                outcome => return self.answer(outcome, &slot),
            }
        }
    }

    /// Runs a write once: if its worker dies the caller gets a 503, never a silent second try.
    pub async fn write<T, E, F, Fut>(&self, write: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        E: Into<StoreError>,
        F: FnOnce(S) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let slot: Slot<T> = Arc::default();
        let slot_for_job = Arc::clone(&slot);
        let job = StoreJob {
            operation: Operation::Write(Mutex::new(Some(Box::new(move |store| {
                let run = write(store);
                Box::pin(async move { deliver(&slot_for_job, run.await.map_err(Into::into)) })
            })))),
        };
        let span =
            tracing::info_span!(target: TRACE_TARGET, "store write", otel.kind = "client", wharf.store = self.what);
        let outcome = tokio::time::timeout(CALL_TIMEOUT, self.pool.call(job)).instrument(span.clone()).await;
        let _inside = span.enter();
        self.answer(outcome, &slot)
    }

    fn answer<T>(&self, outcome: Result<Result<(), PoolError>, Elapsed>, slot: &Slot<T>) -> Result<T, Problem> {
        let what = self.what;
        let result = match outcome {
            Ok(Ok(())) => slot.lock().unwrap_or_else(PoisonError::into_inner).take(),
            Ok(Err(err)) => {
                let retry_after = if err == PoolError::Overloaded { 2 } else { 1 };
                tracing::warn!(error = %err, store = what, "store pool did not run the job");
                return Err(Problem::unavailable(
                    format!("The {what} is temporarily unavailable: {err}."),
                    retry_after,
                ));
            }
            Err(_) => {
                tracing::warn!(store = what, "store call timed out");
                return Err(Problem::unavailable(format!("The {what} did not answer in time."), 2));
            }
        };
        match result {
            Some(Ok(output)) => Ok(output),
            Some(Err(StoreError::Unavailable(err))) => {
                tracing::warn!(error = %err, store = what, "database unavailable");
                Err(Problem::unavailable(format!("The {what}'s database is not answering; retry shortly."), 2))
            }
            Some(Err(StoreError::Database(err))) => {
                tracing::error!(error = %err, store = what, "database error");
                Err(Problem::internal())
            }
            None => {
                // The job finished without running its operation: only a write started twice.
                tracing::error!(store = what, "a store job ended without a result");
                Err(Problem::unavailable(format!("The {what} is temporarily unavailable."), 1))
            }
        }
    }
}
