//! Where orders are kept, with their outbox and idempotency keys, on SQLite or PostgreSQL.
//!
//! Creating an order writes three rows in one transaction — the order, its OrderPlaced outbox
//! row and (when the client sent one) its idempotency key — so an order never exists without its
//! event, and a retried request never creates a second order. After each commit the store raises
//! the [`OutboxWritten`] signal it was built with, which wakes the relay; the relay reads the
//! outbox table through [`Outbox`].

use sqlx::FromRow;
use time::OffsetDateTime;
use wharf_edge::Page;
use wharf_runtime::{Database, StoreError, on_database};

use crate::domain::{CustomerEmail, NewOrder, Order, OrderStatus, ProductId, Quantity, TransitionError};
use crate::outbox::{Outbox, OutboxEvent, OutboxWritten};

/// The embedded migrations, one set per backend.
pub static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
/// The embedded migrations, one set per backend.
pub static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

macro_rules! order_columns {
    () => {
        "id, product_id, quantity, customer_email, status, created_at"
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

/// Orders and their idempotency keys in one database; cheap to clone (the pool is shared).
/// Request handlers reach it through the store pool ([`crate::order_store::Orders`]).
#[derive(Debug, Clone)]
pub struct OrderStore {
    db: Database,
    /// Raised after each committed order so the relay publishes at once instead of at its
    /// next poll.
    written: OutboxWritten,
}

/// Timestamps are kept to the microsecond, the precision both backends store.
pub(crate) fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_microsecond(now.microsecond()).unwrap_or(now)
}

pub(crate) fn unix_millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl OrderStore {
    /// A store over `db` (already migrated) that raises `written` after every committed order.
    pub fn new(db: Database, written: OutboxWritten) -> Self {
        Self { db, written }
    }

    /// The outbox these orders' events are written to.
    pub fn outbox(&self) -> Outbox {
        Outbox::new(self.db.clone())
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
                self.written.raise();
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
            (event_id, event_type, event_version, occurred_at, correlation_id, traceparent, tracestate, envelope) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
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
                .bind(event.tracestate.as_deref())
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
}
