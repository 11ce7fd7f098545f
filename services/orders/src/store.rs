//! Where orders are kept, with their outbox and idempotency keys, on SQLite or PostgreSQL.
//!
//! Creating an order writes three rows in one transaction — the order, its OrderPlaced outbox
//! row and (when the client sent one) its idempotency key — so an order never exists without its
//! event, and a retried request never creates a second order. The outbox relay reads the outbox
//! through [`OrderStore::claim_outbox`], [`OrderStore::mark_published`] and
//! [`OrderStore::release`].

use std::sync::Arc;
use std::time::Duration;

use sqlx::FromRow;
use time::OffsetDateTime;
use tokio::sync::Notify;
use wharf_edge::Page;
use wharf_runtime::{Database, StoreError, on_database};

use crate::domain::{CustomerEmail, NewOrder, Order, OrderStatus, ProductId, Quantity, TransitionError};

/// The embedded migrations, one set per backend.
pub static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
/// The embedded migrations, one set per backend.
pub static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

macro_rules! order_columns {
    () => {
        "id, product_id, quantity, customer_email, status, created_at"
    };
}

macro_rules! outbox_columns {
    () => {
        "id, event_id, event_type, event_version, occurred_at, correlation_id, traceparent, envelope, attempts"
    };
}

#[derive(FromRow)]
struct OrderRow {
    id: i64,
    product_id: i64,
    quantity: i32,
    customer_email: String,
    status: String,
    created_at: OffsetDateTime,
}

impl OrderRow {
    fn into_order(self) -> Result<Order, StoreError> {
        let status =
            self.status.parse::<OrderStatus>().map_err(|e| StoreError::Database(sqlx::Error::Decode(e.into())))?;
        Ok(Order {
            id: self.id,
            product_id: ProductId::from_stored(self.product_id),
            quantity: Quantity::from_stored(self.quantity),
            customer_email: CustomerEmail::from_stored(self.customer_email),
            status,
            created_at: self.created_at,
        })
    }
}

/// An event to write to the outbox with its order, built once the order's id is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Unique per event; consumers deduplicate by it.
    pub event_id: String,
    /// e.g. `OrderPlaced`.
    pub event_type: String,
    /// Major version.
    pub event_version: i32,
    /// When the order was placed.
    pub occurred_at: OffsetDateTime,
    /// The request's correlation id, carried by the event.
    pub correlation_id: String,
    /// W3C trace context of the request, if any.
    pub traceparent: Option<String>,
    /// The whole envelope as JSON, exactly as it will travel.
    pub envelope: String,
}

/// An outbox row claimed for publishing.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct OutboxRow {
    /// Row id: publishing follows it.
    pub id: i64,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The event's major version.
    pub event_version: i32,
    /// When it happened.
    pub occurred_at: OffsetDateTime,
    /// Correlation id of the request that caused it.
    pub correlation_id: String,
    /// Trace context, if any.
    pub traceparent: Option<String>,
    /// The envelope as JSON, exactly as it travels.
    pub envelope: String,
    /// How many times a relay claimed it (1 on the first claim).
    pub attempts: i32,
}

/// What an idempotent create found.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// A new order (and its event) was written.
    New(Order),
    /// The key was used before with the same request: the original order.
    Replayed(Order),
    /// The key was used before with a different request.
    KeyConflict,
}

/// A client's `Idempotency-Key` and the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The header's value.
    pub key: String,
    /// The request in canonical form: equal for equal requests however the JSON was written.
    pub fingerprint: String,
}

impl IdempotencyKey {
    /// The key for a parsed order request.
    pub fn new(key: String, order: &NewOrder) -> Self {
        let fingerprint =
            format!("{}|{}|{}", order.product_id.get(), order.quantity.get(), order.customer_email.as_str());
        Self { key, fingerprint }
    }
}

/// How far the outbox is behind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutboxLag {
    /// Rows not yet published.
    pub pending: i64,
    /// Age of the oldest of them.
    pub oldest: Option<Duration>,
}

/// The order store.
#[derive(Debug, Clone)]
pub struct OrderStore {
    db: Database,
    /// Signalled after each committed order so the relay publishes at once instead of at its
    /// next poll.
    outbox_written: Arc<Notify>,
}

/// Timestamps are kept to the microsecond, the precision both backends store.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_microsecond(now.microsecond()).unwrap_or(now)
}

fn unix_millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl OrderStore {
    /// A store over `db` (already migrated).
    pub fn new(db: Database) -> Self {
        Self { db, outbox_written: Arc::new(Notify::new()) }
    }

    /// Woken after every committed order.
    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox_written.clone()
    }

    /// The database (for readiness checks).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// A page of orders in ascending id order.
    pub async fn list(&self, page: Page) -> Result<Vec<Order>, StoreError> {
        const SQL: &str = concat!("SELECT ", order_columns!(), " FROM orders ORDER BY id LIMIT $1 OFFSET $2");
        let rows = on_database!(&self.db, |pool| {
            sqlx::query_as::<_, OrderRow>(SQL).bind(page.limit).bind(page.offset).fetch_all(pool).await
        })?;
        rows.into_iter().map(OrderRow::into_order).collect()
    }

    /// One order.
    pub async fn get(&self, id: i64) -> Result<Option<Order>, StoreError> {
        const SQL: &str = concat!("SELECT ", order_columns!(), " FROM orders WHERE id = $1");
        let row =
            on_database!(&self.db, |pool| sqlx::query_as::<_, OrderRow>(SQL).bind(id).fetch_optional(pool).await)?;
        row.map(OrderRow::into_order).transpose()
    }

    /// What an idempotency key was used for, if it was: the replayed order or a conflict.
    pub async fn find_idempotent(&self, key: &IdempotencyKey) -> Result<Option<Created>, StoreError> {
        const SQL: &str = concat!(
            "SELECT o.id, o.product_id, o.quantity, o.customer_email, o.status, o.created_at, k.fingerprint ",
            "FROM idempotency_keys k JOIN orders o ON o.id = k.order_id WHERE k.key = $1"
        );
        #[derive(FromRow)]
        struct Found {
            #[sqlx(flatten)]
            order: OrderRow,
            fingerprint: String,
        }
        let found = on_database!(&self.db, |pool| {
            sqlx::query_as::<_, Found>(SQL).bind(&key.key).fetch_optional(pool).await
        })?;
        match found {
            None => Ok(None),
            Some(found) if found.fingerprint == key.fingerprint => {
                Ok(Some(Created::Replayed(found.order.into_order()?)))
            }
            Some(_) => Ok(Some(Created::KeyConflict)),
        }
    }

    /// Writes the order, its event and its idempotency key in one transaction.
    pub async fn create(
        &self,
        order: &NewOrder,
        event: impl Fn(&Order) -> OutboxEvent,
        key: Option<&IdempotencyKey>,
    ) -> Result<Created, StoreError> {
        // A used key is caught by its unique constraint (then answered from what it was used
        // for), which also settles two requests racing with the same key. Callers that can avoid
        // work for a replay look the key up first (the order route does, before asking products).
        match self.insert(order, &event, key).await {
            Ok(order) => {
                self.outbox_written.notify_one();
                Ok(Created::New(order))
            }
            Err(StoreError::Database(err)) if key.is_some() && is_unique_violation(&err) => match key {
                Some(key) => self.find_idempotent(key).await?.ok_or(StoreError::Database(err)),
                None => Err(StoreError::Database(err)),
            },
            Err(err) => Err(err),
        }
    }

    async fn insert(
        &self,
        order: &NewOrder,
        event: &impl Fn(&Order) -> OutboxEvent,
        key: Option<&IdempotencyKey>,
    ) -> Result<Order, StoreError> {
        const ORDER: &str = concat!(
            "INSERT INTO orders (product_id, quantity, customer_email, status, created_at, updated_at) ",
            "VALUES ($1, $2, $3, $4, $5, $5) RETURNING ",
            order_columns!()
        );
        const OUTBOX: &str = "INSERT INTO outbox \
            (event_id, event_type, event_version, occurred_at, correlation_id, traceparent, envelope) \
            VALUES ($1, $2, $3, $4, $5, $6, $7)";
        const KEY: &str =
            "INSERT INTO idempotency_keys (key, fingerprint, order_id, created_at) VALUES ($1, $2, $3, $4)";
        let now = now();
        on_database!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let order = sqlx::query_as::<_, OrderRow>(ORDER)
                .bind(order.product_id.get())
                .bind(order.quantity.get())
                .bind(order.customer_email.as_str())
                .bind(OrderStatus::Pending.as_str())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
                .into_order()?;
            let event = event(&order);
            sqlx::query(OUTBOX)
                .bind(&event.event_id)
                .bind(&event.event_type)
                .bind(event.event_version)
                .bind(event.occurred_at)
                .bind(&event.correlation_id)
                .bind(event.traceparent.as_deref())
                .bind(&event.envelope)
                .execute(&mut *tx)
                .await?;
            if let Some(key) = key {
                sqlx::query(KEY)
                    .bind(&key.key)
                    .bind(&key.fingerprint)
                    .bind(order.id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(order)
        })
    }

    /// Moves an order to `to` if its lifecycle allows: `Ok(None)` when there is no such order,
    /// `Ok(Some(Err(_)))` for a forbidden transition. A compare-and-set on the current status
    /// keeps two concurrent changes from both succeeding from the same starting point.
    pub async fn change_status(
        &self,
        id: i64,
        to: OrderStatus,
    ) -> Result<Option<Result<Order, TransitionError>>, StoreError> {
        const SET: &str = concat!(
            "UPDATE orders SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2 RETURNING ",
            order_columns!()
        );
        loop {
            let Some(current) = self.get(id).await? else { return Ok(None) };
            let next = match current.status.transition(to) {
                Ok(next) if next == current.status => return Ok(Some(Ok(current))),
                Ok(next) => next,
                Err(err) => return Ok(Some(Err(err))),
            };
            let updated = on_database!(&self.db, |pool| {
                sqlx::query_as::<_, OrderRow>(SET)
                    .bind(id)
                    .bind(current.status.as_str())
                    .bind(next.as_str())
                    .bind(now())
                    .fetch_optional(pool)
                    .await
            })?;
            if let Some(row) = updated {
                return Ok(Some(Ok(row.into_order()?)));
            }
            // Someone else changed it in between: decide again from the new status.
        }
    }

    /// Claims up to `limit` unpublished rows, oldest first, for `lease`: no other relay takes
    /// them until the lease ends. On PostgreSQL the claim skips rows another relay is claiming
    /// at this moment (`FOR UPDATE SKIP LOCKED`), so replicas never block each other.
    pub async fn claim_outbox(&self, owner: &str, limit: i64, lease: Duration) -> Result<Vec<OutboxRow>, StoreError> {
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

    /// Marks a row published (after the bus confirmed it).
    pub async fn mark_published(&self, id: i64) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE outbox SET published_at = $2, claimed_until = NULL, last_error = NULL WHERE id = $1";
        on_database!(&self.db, |pool| sqlx::query(SQL).bind(id).bind(now()).execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Gives a claimed row back (publishing failed), recording why, so the next round retries it.
    pub async fn release(&self, id: i64, error: &str) -> Result<(), StoreError> {
        const SQL: &str =
            "UPDATE outbox SET claimed_until = NULL, last_error = $2 WHERE id = $1 AND published_at IS NULL";
        on_database!(&self.db, |pool| sqlx::query(SQL).bind(id).bind(error).execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Unpublished rows and the age of the oldest.
    pub async fn outbox_lag(&self) -> Result<OutboxLag, StoreError> {
        const SQL: &str = "SELECT count(*), min(occurred_at) FROM outbox WHERE published_at IS NULL";
        let (pending, oldest): (i64, Option<OffsetDateTime>) =
            on_database!(&self.db, |pool| sqlx::query_as(SQL).fetch_one(pool).await)?;
        let oldest = oldest.map(|at| Duration::try_from(OffsetDateTime::now_utc() - at).unwrap_or_default());
        Ok(OutboxLag { pending, oldest })
    }
}
