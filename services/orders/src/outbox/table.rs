//! The outbox table as the relay sees it: claim a batch with a lease, mark rows published once
//! the bus confirmed them, give rows back, and measure the lag. Rows are written by
//! [`OrderStore::create`](crate::store::OrderStore::create), in the order's own transaction.

use std::time::Duration;

use sqlx::FromRow;
use time::OffsetDateTime;
use wharf_runtime::{Database, StoreError, on_database};

use crate::store::{now, unix_millis};

macro_rules! outbox_columns {
    () => {
        "id, event_id, event_type, event_version, occurred_at, correlation_id, traceparent, tracestate, envelope, attempts"
    };
}

/// An outbox row claimed for publishing.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct OutboxRow {
    /// Row id: publishing follows it.
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub event_version: i32,
    pub occurred_at: OffsetDateTime,
    /// Correlation id of the request that caused it.
    pub correlation_id: String,
    /// Trace context, if any.
    pub traceparent: Option<String>,
    /// The `tracestate` that goes with `traceparent`, if any.
    pub tracestate: Option<String>,
    /// The envelope as JSON, exactly as it travels.
    pub envelope: String,
    /// How many times a relay claimed it (1 on the first claim).
    pub attempts: i32,
}

/// How far the outbox is behind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutboxLag {
    /// Rows not yet published.
    pub pending: i64,
    /// Age of the oldest of them.
    pub oldest: Option<Duration>,
}

/// The outbox of one orders database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    db: Database,
}

impl Outbox {
    /// The outbox in `db` (already migrated).
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Claims up to `limit` unpublished rows, oldest first, for `lease`: no other relay takes
    /// them until the lease ends. On PostgreSQL the claim skips rows another relay is claiming
    /// at this moment (`FOR UPDATE SKIP LOCKED`), so replicas never block each other.
    pub async fn claim(&self, owner: &str, limit: i64, lease: Duration) -> Result<Vec<OutboxRow>, StoreError> {
        const SQLITE: &str = concat!(
            "UPDATE outbox SET claimed_until = $1, claimed_by = $4, attempts = attempts + 1 WHERE id IN (",
            "SELECT id FROM outbox WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until < $2) ",
            "ORDER BY id LIMIT $3) RETURNING ",
            outbox_columns!()
        );
        const POSTGRES: &str = concat!(
            "UPDATE outbox SET claimed_until = $1, claimed_by = $4, attempts = attempts + 1 WHERE id IN (",
            "SELECT id FROM outbox WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until < $2) ",
            "ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING ",
            outbox_columns!()
        );
        let now = now();
        let until = unix_millis(now) + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let sql = match self.db {
            Database::Sqlite(_) => SQLITE,
            Database::Postgres(_) => POSTGRES,
        };
        let mut rows = on_database!(&self.db, |pool| {
            sqlx::query_as::<_, OutboxRow>(sql)
                .bind(until)
                .bind(unix_millis(now))
                .bind(limit)
                .bind(owner)
                .fetch_all(pool)
                .await
        })?;
        // RETURNING does not promise an order.
        rows.sort_by_key(|row| row.id);
        Ok(rows)
    }

    /// Ends every claim held by `owner`: a relay restarting in the same process knows its previous
    /// incarnation is dead, so its rows need not wait for their leases to run out.
    pub async fn release_claims_of(&self, owner: &str) -> Result<u64, StoreError> {
        const SQL: &str = "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL \
            WHERE claimed_by = $1 AND published_at IS NULL";
        let done =
            on_database!(&self.db, |pool| sqlx::query(SQL).bind(owner).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(done)
    }

    /// Marks rows published (after the bus confirmed each of them), in one statement.
    pub async fn mark_published(&self, ids: &[i64]) -> Result<(), StoreError> {
        const SQLITE: &str = "UPDATE outbox SET published_at = $2, claimed_until = NULL, last_error = NULL \
            WHERE id IN (SELECT value FROM json_each($1))";
        const POSTGRES: &str =
            "UPDATE outbox SET published_at = $2, claimed_until = NULL, last_error = NULL WHERE id = ANY($1)";
        if ids.is_empty() {
            return Ok(());
        }
        match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query(SQLITE).bind(id_list(ids)).bind(now()).execute(pool).await?;
            }
            Database::Postgres(pool) => {
                sqlx::query(POSTGRES).bind(ids).bind(now()).execute(pool).await?;
            }
        }
        Ok(())
    }

    /// Gives claimed rows back (publishing failed), recording why, so the next round retries them.
    pub async fn release(&self, ids: &[i64], error: &str) -> Result<(), StoreError> {
        const SQLITE: &str = "UPDATE outbox SET claimed_until = NULL, last_error = $2 \
            WHERE id IN (SELECT value FROM json_each($1)) AND published_at IS NULL";
        const POSTGRES: &str =
            "UPDATE outbox SET claimed_until = NULL, last_error = $2 WHERE id = ANY($1) AND published_at IS NULL";
        if ids.is_empty() {
            return Ok(());
        }
        match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query(SQLITE).bind(id_list(ids)).bind(error).execute(pool).await?;
            }
            Database::Postgres(pool) => {
                sqlx::query(POSTGRES).bind(ids).bind(error).execute(pool).await?;
            }
        }
        Ok(())
    }

    /// Unpublished rows and the age of the oldest.
    pub async fn lag(&self) -> Result<OutboxLag, StoreError> {
        const SQL: &str = "SELECT count(*), min(occurred_at) FROM outbox WHERE published_at IS NULL";
        let (pending, oldest): (i64, Option<OffsetDateTime>) =
            on_database!(&self.db, |pool| sqlx::query_as(SQL).fetch_one(pool).await)?;
        let oldest = oldest.map(|at| Duration::try_from(OffsetDateTime::now_utc() - at).unwrap_or_default());
        Ok(OutboxLag { pending, oldest })
    }
}

/// Row ids as the JSON array SQLite's `json_each` reads (SQLite has no array parameters).
fn id_list(ids: &[i64]) -> String {
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    format!("[{}]", ids.join(","))
}
