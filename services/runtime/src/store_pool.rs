//! How a service's routes reach its store: through a supervised worker pool, with the failure
//! modes of that path turned into the problems a client sees.
//!
//! - the database is slow or gone → 503 with `Retry-After`;
//! - the pool is restarting, overloaded or shutting down → 503;
//! - a worker died under a write → 503: the write may have committed, so it is not repeated
//!   behind the client's back;
//! - a worker died under a read, or the pool is restarting → the read waits for it, up to
//!   [`READ_PATIENCE`], because reads are safe to repeat;
//! - any other database error → 500 (logged with its cause).

use std::time::Duration;

use tokio::time::{Instant, error::Elapsed};
use wharf_actors::{PoolError, PoolHandle, Worker};
use wharf_edge::Problem;

/// How long a request waits for the store before answering 503. Above the database pool's
/// acquire timeout, so a saturated database pool reports itself first.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read waits for a restarting store pool before answering 503.
pub const READ_PATIENCE: Duration = Duration::from_secs(1);

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database did not answer in time or the connection broke: worth retrying later.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else: a fault of ours.
    #[error("database error: {0}")]
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

/// Calls a store worker pool on behalf of the routes.
#[derive(Debug)]
pub struct StoreClient<W: Worker> {
    pool: PoolHandle<W>,
    /// Names the store in problems and logs, e.g. `product store`.
    what: &'static str,
}

impl<W: Worker> Clone for StoreClient<W> {
    fn clone(&self) -> Self {
        Self { pool: self.pool.clone(), what: self.what }
    }
}

impl<W, O> StoreClient<W>
where
    W: Worker<Output = Result<O, StoreError>>,
{
    /// A client of `pool`, called `what` in messages.
    pub fn new(pool: PoolHandle<W>, what: &'static str) -> Self {
        Self { pool, what }
    }

    /// Runs a read, waiting out a pool restart (see the module docs).
    pub async fn read(&self, job: impl Fn() -> W::Job) -> Result<O, Problem> {
        let deadline = Instant::now() + READ_PATIENCE;
        loop {
            match tokio::time::timeout(CALL_TIMEOUT, self.pool.call(job())).await {
                Ok(Err(PoolError::Unavailable | PoolError::WorkerDied)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                outcome => return self.answer(outcome),
            }
        }
    }

    /// Runs a write once.
    pub async fn write(&self, job: W::Job) -> Result<O, Problem> {
        self.answer(tokio::time::timeout(CALL_TIMEOUT, self.pool.call(job)).await)
    }

    fn answer(&self, outcome: Result<Result<Result<O, StoreError>, PoolError>, Elapsed>) -> Result<O, Problem> {
        let what = self.what;
        match outcome {
            Ok(Ok(Ok(output))) => Ok(output),
            Ok(Ok(Err(StoreError::Unavailable(err)))) => {
                tracing::warn!(error = %err, store = what, "database unavailable");
                Err(Problem::unavailable(format!("The {what}'s database is not answering; retry shortly."), 2))
            }
            Ok(Ok(Err(StoreError::Database(err)))) => {
                tracing::error!(error = %err, store = what, "database error");
                Err(Problem::internal())
            }
            Ok(Err(err)) => {
                let retry_after = if err == PoolError::Overloaded { 2 } else { 1 };
                tracing::warn!(error = %err, store = what, "store pool did not run the job");
                Err(Problem::unavailable(format!("The {what} is temporarily unavailable: {err}."), retry_after))
            }
            Err(_) => {
                tracing::warn!(store = what, "store call timed out");
                Err(Problem::unavailable(format!("The {what} did not answer in time."), 2))
            }
        }
    }
}
