//! Where notifications are kept (SQLite or PostgreSQL), and the inbox that makes OrderPlaced
//! handling idempotent: the inbox row (keyed by event id) and the notification it produced are
//! written in one transaction, so a redelivered event finds its notification instead of making
//! a second one.

use std::time::Duration;

use sqlx::FromRow;
use time::OffsetDateTime;
use wharf_edge::Page;
use wharf_runtime::{Database, StoreError, on_database};

use crate::domain::{Channel, DeliveryStatus, MessageText, NewNotification, Notification, Recipient};

/// The embedded migrations, one set per backend.
pub static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
/// The embedded migrations, one set per backend.
pub static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

macro_rules! columns {
    () => {
        "id, kind, recipient, message, status, order_id, correlation_id, created_at, sent_at"
    };
}

#[derive(FromRow)]
struct Row {
    id: i64,
    kind: String,
    recipient: String,
    message: String,
    status: String,
    order_id: Option<i64>,
    correlation_id: String,
    created_at: OffsetDateTime,
    sent_at: Option<OffsetDateTime>,
}

/// A notification with what the senders need besides the API view.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub notification: Notification,
    /// The correlation id of the request or event that caused it.
    pub correlation_id: String,
}

impl Row {
    fn into_stored(self) -> Result<Stored, StoreError> {
        let bad = |what: String| StoreError::Database(sqlx::Error::Decode(what.into()));
        let channel = self.kind.parse::<Channel>().map_err(bad)?;
        let status = self.status.parse::<DeliveryStatus>().map_err(bad)?;
        Ok(Stored {
            notification: Notification {
                id: self.id,
                channel,
                recipient: Recipient::from_stored(channel, self.recipient),
                message: MessageText::from_stored(self.message),
                status,
                created_at: self.created_at,
                sent_at: self.sent_at,
                order_id: self.order_id,
            },
            correlation_id: self.correlation_id,
        })
    }
}

/// Which notifications a list returns.
/// What is waiting to be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Notifications still Pending.
    pub unsent: i64,
    /// How long the oldest of them has waited (`None` when there is none).
    pub oldest: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this recipient (as stored: normalised).
    pub recipient: Option<String>,
    pub status: Option<DeliveryStatus>,
}

/// The notification store.
#[derive(Debug, Clone)]
pub struct NotificationStore {
    db: Database,
}

fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_microsecond(now.microsecond()).unwrap_or(now)
}

impl NotificationStore {
    /// A store over `db` (already migrated).
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// A page of notifications in ascending id order.
    pub async fn list(&self, filter: &Filter, page: Page) -> Result<Vec<Notification>, StoreError> {
        // NULL parameters switch a condition off, so one statement serves every filter.
        const SQL: &str = concat!(
            "SELECT ",
            columns!(),
            " FROM notifications WHERE ($1 IS NULL OR recipient = $1) AND ($2 IS NULL OR status = $2) ",
            "ORDER BY id LIMIT $3 OFFSET $4"
        );
        let status = filter.status.map(DeliveryStatus::as_str);
        let rows = on_database!(&self.db, |pool| {
            sqlx::query_as::<_, Row>(SQL)
                .bind(filter.recipient.as_deref())
                .bind(status)
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(|row| row.into_stored().map(|s| s.notification)).collect()
    }

    pub async fn get(&self, id: i64) -> Result<Option<Stored>, StoreError> {
        const SQL: &str = concat!("SELECT ", columns!(), " FROM notifications WHERE id = $1");
        let row = on_database!(&self.db, |pool| sqlx::query_as::<_, Row>(SQL).bind(id).fetch_optional(pool).await)?;
        row.map(Row::into_stored).transpose()
    }

    /// Stores a direct send request as Pending.
    pub async fn create(&self, new: &NewNotification, correlation_id: &str) -> Result<Stored, StoreError> {
        const SQL: &str = concat!(
            "INSERT INTO notifications (kind, recipient, message, status, correlation_id, created_at) ",
            "VALUES ($1, $2, $3, 'Pending', $4, $5) RETURNING ",
            columns!()
        );
        let row = on_database!(&self.db, |pool| {
            sqlx::query_as::<_, Row>(SQL)
                .bind(new.channel.as_str())
                .bind(new.recipient.as_str())
                .bind(new.message.as_str())
                .bind(correlation_id)
                .bind(now())
                .fetch_one(pool)
                .await
        })?;
        row.into_stored()
    }

    /// The notification for event `event_id`: created (Pending) with its inbox row in one
    /// transaction the first time, found the next times. `true` when it was created now.
    pub async fn for_event(
        &self,
        event_id: &str,
        order_id: i64,
        new: &NewNotification,
        correlation_id: &str,
    ) -> Result<(Stored, bool), StoreError> {
        const INBOX: &str =
            "INSERT INTO inbox (event_id, received_at) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING";
        const SEEN: &str = concat!(
            "SELECT n.id, n.kind, n.recipient, n.message, n.status, n.order_id, n.correlation_id, n.created_at, n.sent_at ",
            "FROM inbox i JOIN notifications n ON n.id = i.notification_id WHERE i.event_id = $1"
        );
        const NOTIFY: &str = concat!(
            "INSERT INTO notifications (kind, recipient, message, status, order_id, correlation_id, created_at) ",
            "VALUES ($1, $2, $3, 'Pending', $4, $5, $6) RETURNING ",
            columns!()
        );
        const LINK: &str = "UPDATE inbox SET notification_id = $2 WHERE event_id = $1";
        let now = now();
        let (row, fresh) = on_database!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(INBOX).bind(event_id).bind(now).execute(&mut *tx).await?.rows_affected();
            if inserted == 0 {
                let row = sqlx::query_as::<_, Row>(SEEN).bind(event_id).fetch_one(&mut *tx).await?;
                tx.commit().await?;
                (row, false)
            } else {
                let row = sqlx::query_as::<_, Row>(NOTIFY)
                    .bind(new.channel.as_str())
                    .bind(new.recipient.as_str())
                    .bind(new.message.as_str())
                    .bind(order_id)
                    .bind(correlation_id)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(LINK).bind(event_id).bind(row.id).execute(&mut *tx).await?;
                tx.commit().await?;
                (row, true)
            }
        });
        Ok((row.into_stored()?, fresh))
    }

    /// Records a delivery: Pending → Sent. `false` if it was not Pending (already sent).
    pub async fn mark_sent(&self, id: i64) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE notifications SET status = 'Sent', sent_at = $2, attempts = attempts + 1, \
            last_error = NULL WHERE id = $1 AND status = 'Pending'";
        let done = on_database!(&self.db, |pool| {
            sqlx::query(SQL).bind(id).bind(now()).execute(pool).await.map(|r| r.rows_affected())
        })?;
        Ok(done > 0)
    }

    /// Records a failed attempt; with `give_up` the notification becomes Failed.
    pub async fn record_failure(&self, id: i64, error: &str, give_up: bool) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE notifications SET attempts = attempts + 1, last_error = $2, \
            status = CASE WHEN $3 THEN 'Failed' ELSE status END WHERE id = $1 AND status = 'Pending'";
        on_database!(&self.db, |pool| sqlx::query(SQL)
            .bind(id)
            .bind(error)
            .bind(give_up)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Makes a Failed notification Pending again (its event was replayed from the DLQ).
    pub async fn reopen(&self, id: i64) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE notifications SET status = 'Pending' WHERE id = $1 AND status = 'Failed'";
        on_database!(&self.db, |pool| sqlx::query(SQL).bind(id).execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Direct sends still Pending (after a restart, they are handed to the senders again).
    /// Event notifications are not listed: their events, never acked, come back by themselves.
    pub async fn pending_direct(&self, limit: i64) -> Result<Vec<Stored>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            columns!(),
            " FROM notifications WHERE status = 'Pending' AND order_id IS NULL ORDER BY id LIMIT $1"
        );
        let rows = on_database!(&self.db, |pool| sqlx::query_as::<_, Row>(SQL).bind(limit).fetch_all(pool).await)?;
        rows.into_iter().map(Row::into_stored).collect()
    }

    /// Notifications not yet delivered, and how long the oldest of them has waited: the backlog
    /// between an accepted order (or send) and its email.
    pub async fn backlog(&self) -> Result<Backlog, StoreError> {
        const SQL: &str = "SELECT count(*), min(created_at) FROM notifications WHERE status = 'Pending'";
        let (unsent, oldest): (i64, Option<OffsetDateTime>) =
            on_database!(&self.db, |pool| sqlx::query_as(SQL).fetch_one(pool).await)?;
        let oldest = oldest.map(|at| Duration::try_from(OffsetDateTime::now_utc() - at).unwrap_or_default());
        Ok(Backlog { unsent, oldest })
    }

    /// Removes a notification that was never handed to a sender (the pool refused it).
    pub async fn delete(&self, id: i64) -> Result<(), StoreError> {
        on_database!(&self.db, |pool| sqlx::query("DELETE FROM notifications WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }
}
