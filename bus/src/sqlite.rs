//! The SQLite backend: the durable bus of the embedded mode (`wharf up`, or services run side by
//! side without a broker), its queues kept in one SQLite file (`BUS_SQLITE_URL`, by default
//! `data/bus.db` beside the services' own databases).
//!
//! - **Storage**: one table, `bus_messages`, a row per message; a queue is the rows with its name,
//!   and its dead-letter queue the rows named `<queue>-dlq`. WAL journal and a busy timeout, so
//!   several processes can share the file; `synchronous = NORMAL`, like the services' databases:
//!   a committed message survives the process being killed (only an OS crash may lose the last
//!   commits).
//! - **Publishing** returns once the row is committed: after that, nothing but deleting the file
//!   loses it. The outbox marks an event published only then.
//! - **Receiving** claims due rows in one statement: it leases them to the subscription (a token
//!   and an expiry, `visible_at`) and counts the attempt. The lease is renewed every third of
//!   `BUS_SQLITE_LEASE_MS` while the subscription lives, so a slow handler keeps its message; a
//!   killed process stops renewing, and its messages are claimed again once their leases expire.
//!   Subscribers in the process that published are woken at once; others poll the file.
//! - **Ack** deletes the row; **retry later** clears the lease and sets `visible_at` to the due
//!   time; **dead-letter** moves the row to `<queue>-dlq` with the reason, attempts and time; a
//!   delivery dropped unsettled is made visible again at once, in its original place in line, or
//!   dead-lettered if it used its last attempt (as the memory bus does). Every settle names the
//!   lease and the attempt it was given, so a delivery whose lease expired and was claimed again
//!   cannot settle the newer one.
//! - **Dead-letter queue operations** are plain statements on the `<queue>-dlq` rows; replaying
//!   moves rows back with a fresh attempt count.

mod consume;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::BoxFuture;
use crate::bus::{Bus, CHECK_TIMEOUT, DeadLetter, Replay, SubscribeOptions, within_check_timeout};
use crate::config::{BackendKind, BusConfig};
use crate::depth::Depth;
use crate::error::BusError;
use crate::message::{Message, Metadata};
use crate::queue::QueueName;
use crate::subscription::Subscription;

const BACKEND: BackendKind = BackendKind::Sqlite;

/// Connections to the file, per bus.
const CONNECTIONS: u32 = 4;

/// How long a statement waits for another connection's (or process's) write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an open waits before trying again when another process is switching the file to WAL.
const SWITCH_RETRY: Duration = Duration::from_millis(20);

/// The schema as first released: created by provisioning, idempotently. Later columns are added
/// by [`ADDED_COLUMNS`], so a bus file made by an older release gains them too.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS bus_messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue          TEXT    NOT NULL,
    message_id     TEXT    NOT NULL,
    body           BLOB    NOT NULL,
    event_type     TEXT,
    event_version  INTEGER,
    correlation_id TEXT,
    traceparent    TEXT,
    -- Unix milliseconds. A released message goes back to this place in line.
    published_at   INTEGER NOT NULL,
    -- When the message may be claimed: publish time, a retry's due time, or a lease's expiry.
    visible_at     INTEGER NOT NULL,
    -- Deliveries so far; reset by a replay.
    attempts       INTEGER NOT NULL DEFAULT 0,
    -- The token of the subscription holding the message, while it is delivered.
    lease          TEXT,
    dead_reason    TEXT,
    dead_attempts  INTEGER,
    dead_at        INTEGER
);
CREATE INDEX IF NOT EXISTS bus_messages_due ON bus_messages (queue, visible_at, seq);
";

/// Columns added to `bus_messages` after [`SCHEMA`] was released, in order, as (name, the
/// statement that adds it). Never edit an entry: append one.
const ADDED_COLUMNS: [(&str, &str); 1] = [
    // The W3C `tracestate` beside `traceparent`.
    ("tracestate", "ALTER TABLE bus_messages ADD COLUMN tracestate TEXT"),
];

/// Brings the table up to date: creates it, then adds whatever [`ADDED_COLUMNS`] it lacks.
/// Idempotent, and safe when several processes provision one file at once: a column another
/// process added first counts as added.
async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(SCHEMA).execute(pool).await?;
    for (name, add) in ADDED_COLUMNS {
        let (present,): (bool,) =
            sqlx::query_as("SELECT EXISTS (SELECT 1 FROM pragma_table_info('bus_messages') WHERE name = ?1)")
                .bind(name)
                .fetch_one(pool)
                .await?;
        if present {
            continue;
        }
        match sqlx::raw_sql(add).execute(pool).await {
            Err(sqlx::Error::Database(db)) if db.message().contains("duplicate column name") => {}
            other => other.map(drop)?,
        }
    }
    Ok(())
}

/// The SQLite bus; cheap to clone, clones share the pool.
#[derive(Debug, Clone)]
pub struct SqliteBus {
    inner: Arc<Store>,
}

/// What the bus, its subscriptions and their deliveries share.
#[derive(Debug)]
pub(crate) struct Store {
    /// A few connections: each statement costs a round trip to its connection's thread, and
    /// while one connection waits for that, another can run (readers never block in WAL mode;
    /// writers take turns through the busy timeout).
    pool: SqlitePool,
    max_attempts: u32,
    publish_timeout: Duration,
    lease: Duration,
    /// Woken whenever a message may have become claimable in this process (publish, retry,
    /// release, replay); subscribers fed by other processes find out by polling.
    wake: Notify,
}

impl SqliteBus {
    /// Opens (with `config.provision`, creates) the file `config.sqlite_url` names. Nothing is
    /// read yet: [`Bus::provision`] creates the table, [`Bus::check`] finds out whether it exists.
    pub async fn open(config: &BusConfig) -> Result<Self, BusError> {
        let url = &config.sqlite_url;
        let invalid =
            |detail: String| BusError::Rejected { backend: BACKEND, operation: "open", target: url.clone(), detail };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|err| invalid(format!("not a usable SQLite URL: {err}")))?
            // An operator's command (`wharf dlq`, provisioning off) must not create a bus file.
            .create_if_missing(config.provision)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if config.provision
            && !in_memory
            && let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|err| invalid(format!("cannot create the directory {}: {err}", dir.display())))?;
        }
        let started = Instant::now();
        let pool_options = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { CONNECTIONS })
            // An in-memory database lives as long as its one connection.
            .min_connections(u32::from(in_memory))
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(config.publish_timeout);
        // The first connection switches the file to WAL. That switch needs an exclusive lock
        // SQLite's busy timeout does not wait for, so when several processes open a file that is
        // not in WAL yet (a new file, or one made without it), all but one are told "database is
        // locked" at once. The winner's switch takes milliseconds: try again until the busy
        // timeout has passed, as a statement would have waited.
        let pool = loop {
            match pool_options.clone().connect_with(options.clone()).await {
                Err(err) if is_busy(&err) && started.elapsed() < BUSY_TIMEOUT => {
                    tokio::time::sleep(SWITCH_RETRY).await;
                }
                other => break other.map_err(|err| sqlite_error("open", url, started, &err))?,
            }
        };
        Ok(Self {
            inner: Arc::new(Store {
                pool,
                max_attempts: config.max_attempts.max(1),
                publish_timeout: config.publish_timeout,
                lease: config.sqlite_lease,
                wake: Notify::new(),
            }),
        })
    }

    /// Counts of `queue`'s messages, for tests and tools.
    pub async fn depth(&self, queue: &QueueName) -> Result<QueueDepth, BusError> {
        const SQL: &str = "SELECT
                COALESCE(SUM(lease IS NULL AND visible_at <= ?2), 0),
                COALESCE(SUM(lease IS NULL AND visible_at > ?2), 0),
                COALESCE(SUM(lease IS NOT NULL), 0)
            FROM bus_messages WHERE queue = ?1";
        let started = Instant::now();
        let (ready, delayed, leased): (i64, i64, i64) = sqlx::query_as(SQL)
            .bind(queue.as_str())
            .bind(now_ms())
            .fetch_one(&self.inner.pool)
            .await
            .map_err(|err| sqlite_error("count", queue.as_str(), started, &err))?;
        let (dead,): (i64,) = sqlx::query_as("SELECT count(*) FROM bus_messages WHERE queue = ?1")
            .bind(queue.dead_letter())
            .fetch_one(&self.inner.pool)
            .await
            .map_err(|err| sqlite_error("count", queue.as_str(), started, &err))?;
        let count = |n: i64| usize::try_from(n).unwrap_or(0);
        Ok(QueueDepth { ready: count(ready), delayed: count(delayed), leased: count(leased), dead: count(dead) })
    }
}

/// How many messages a SQLite queue holds, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Waiting to be delivered.
    pub ready: usize,
    /// Waiting for a retry delay to pass.
    pub delayed: usize,
    /// Delivered and not settled: leased to a subscription (or to a process that died, until
    /// the lease expires).
    pub leased: usize,
    /// In the dead-letter queue.
    pub dead: usize,
}

/// Unix time in milliseconds: leases and due times are compared across processes, so they are
/// wall-clock times.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `now + after` in milliseconds, rounded up (a delay is never shortened), saturating.
pub(crate) fn after_ms(now: i64, after: Duration) -> i64 {
    let ms = after.as_micros().div_ceil(1000);
    now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))
}

fn timestamp(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// Whether SQLite answered that another connection holds the lock it needs.
fn is_busy(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.message().contains("locked") || db.message().contains("busy"))
}

/// Maps a sqlx error to the bus's error kinds.
pub(crate) fn sqlite_error(operation: &'static str, target: &str, started: Instant, err: &sqlx::Error) -> BusError {
    let detail = err.to_string();
    let target = target.to_owned();
    match err {
        sqlx::Error::Database(db) if db.message().contains("no such table") => BusError::QueueNotFound {
            backend: BACKEND,
            queue: target,
            detail: format!("the bus table is missing: provision the bus (BUS_PROVISION=true) first ({detail})"),
        },
        sqlx::Error::Database(_) if is_busy(err) => {
            BusError::Unavailable { backend: BACKEND, waited: started.elapsed(), detail }
        }
        sqlx::Error::Database(_) => BusError::Rejected { backend: BACKEND, operation, target, detail },
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => {
            BusError::Unavailable { backend: BACKEND, waited: started.elapsed(), detail }
        }
        _ => BusError::Backend { backend: BACKEND, operation, target, detail },
    }
}

/// Moves the dead letters of `?2` back to queue `?1`: in line where they first were, with a fresh
/// attempt count.
macro_rules! replay_sql {
    () => {
        "UPDATE bus_messages
            SET queue = ?1, attempts = 0, lease = NULL, visible_at = published_at,
                dead_reason = NULL, dead_attempts = NULL, dead_at = NULL
            WHERE queue = ?2"
    };
}

#[derive(sqlx::FromRow)]
struct DeadRow {
    message_id: String,
    body: Vec<u8>,
    event_type: Option<String>,
    event_version: Option<i64>,
    correlation_id: Option<String>,
    traceparent: Option<String>,
    tracestate: Option<String>,
    dead_reason: Option<String>,
    dead_attempts: Option<i64>,
    dead_at: Option<i64>,
}

impl DeadRow {
    fn into_dead_letter(self) -> DeadLetter {
        DeadLetter {
            id: self.message_id,
            body: self.body,
            metadata: Metadata {
                event_type: self.event_type,
                event_version: self.event_version.and_then(|v| u32::try_from(v).ok()),
                correlation_id: self.correlation_id,
                traceparent: self.traceparent,
                tracestate: self.tracestate,
            },
            reason: self.dead_reason,
            attempts: self.dead_attempts.and_then(|n| u32::try_from(n).ok()),
            dead_lettered_at: self.dead_at.and_then(timestamp),
        }
    }
}

impl Store {
    async fn insert(&self, queue: &QueueName, message: &Message) -> Result<(), sqlx::Error> {
        const SQL: &str = "INSERT INTO bus_messages
                (queue, message_id, body, event_type, event_version, correlation_id, traceparent, tracestate,
                 published_at, visible_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)";
        let metadata = &message.metadata;
        sqlx::query(SQL)
            .bind(queue.as_str())
            .bind(&message.id)
            .bind(&message.body)
            .bind(&metadata.event_type)
            .bind(metadata.event_version.map(i64::from))
            .bind(&metadata.correlation_id)
            .bind(&metadata.traceparent)
            .bind(&metadata.tracestate)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map(drop)
    }

    /// Commits the message, retrying a busy database until the publish timeout.
    async fn publish(&self, queue: &QueueName, message: &Message) -> Result<(), BusError> {
        let started = Instant::now();
        let deadline = crate::later(started, self.publish_timeout);
        let mut pause = Duration::from_millis(20);
        loop {
            let error = match tokio::time::timeout_at(deadline, self.insert(queue, message)).await {
                Ok(Ok(())) => {
                    self.wake.notify_waiters();
                    return Ok(());
                }
                Ok(Err(err)) => sqlite_error("publish to", queue.as_str(), started, &err),
                Err(_) => BusError::Unavailable {
                    backend: BACKEND,
                    waited: started.elapsed(),
                    detail: "the database did not accept the message before the publish timeout".to_owned(),
                },
            };
            let now = Instant::now();
            if !error.is_transient() || now >= deadline {
                return Err(error);
            }
            tracing::debug!(%queue, %error, "SQLite bus publish failed; retrying");
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

impl Bus for SqliteBus {
    fn backend(&self) -> BackendKind {
        BACKEND
    }

    fn max_attempts(&self) -> u32 {
        self.inner.max_attempts
    }

    fn provision<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let started = Instant::now();
            migrate(&self.inner.pool).await.map_err(|err| sqlite_error("provision", queue.as_str(), started, &err))
        })
    }

    fn publish_message<'a>(
        &'a self,
        queue: &'a QueueName,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(self.inner.publish(queue, message))
    }

    fn subscribe<'a>(
        &'a self,
        queue: &'a QueueName,
        options: &'a SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription, BusError>> {
        Box::pin(async move {
            // Fail now, not in the feeder, when the table is missing.
            self.check(queue).await?;
            Ok(consume::subscribe(Arc::clone(&self.inner), queue.clone(), usize::from(options.prefetch.max(1))))
        })
    }

    fn dead_letters<'a>(
        &'a self,
        queue: &'a QueueName,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BusError>> {
        Box::pin(async move {
            const SQL: &str = "SELECT message_id, body, event_type, event_version, correlation_id, traceparent,
                    tracestate, dead_reason, dead_attempts, dead_at
                FROM bus_messages WHERE queue = ?1 ORDER BY dead_at, seq LIMIT ?2";
            let started = Instant::now();
            let rows: Vec<DeadRow> = sqlx::query_as(SQL)
                .bind(queue.dead_letter())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.inner.pool)
                .await
                .map_err(|err| sqlite_error("list", &queue.dead_letter(), started, &err))?;
            Ok(rows.into_iter().map(DeadRow::into_dead_letter).collect())
        })
    }

    fn replay<'a>(&'a self, queue: &'a QueueName, which: &'a Replay) -> BoxFuture<'a, Result<usize, BusError>> {
        Box::pin(async move {
            let started = Instant::now();
            let query = match which {
                Replay::All => sqlx::query(replay_sql!()).bind(queue.as_str()).bind(queue.dead_letter()),
                Replay::Ids(ids) => {
                    let ids = serde_json::Value::from(ids.clone()).to_string();
                    sqlx::query(concat!(replay_sql!(), " AND message_id IN (SELECT value FROM json_each(?3))"))
                        .bind(queue.as_str())
                        .bind(queue.dead_letter())
                        .bind(ids)
                }
            };
            let moved = query
                .execute(&self.inner.pool)
                .await
                .map_err(|err| sqlite_error("replay", &queue.dead_letter(), started, &err))?
                .rows_affected();
            self.inner.wake.notify_waiters();
            Ok(usize::try_from(moved).unwrap_or(usize::MAX))
        })
    }

    fn purge_dead_letters<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<usize, BusError>> {
        Box::pin(async move {
            let started = Instant::now();
            let purged = sqlx::query("DELETE FROM bus_messages WHERE queue = ?1")
                .bind(queue.dead_letter())
                .execute(&self.inner.pool)
                .await
                .map_err(|err| sqlite_error("purge", &queue.dead_letter(), started, &err))?
                .rows_affected();
            Ok(usize::try_from(purged).unwrap_or(usize::MAX))
        })
    }

    fn queue_depth<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<Depth, BusError>> {
        Box::pin(within_check_timeout(BACKEND, "the SQLite bus did not answer", async move {
            let depth = self.depth(queue).await?;
            let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
            Ok(Depth { waiting: count(depth.ready), dead_letters: count(depth.dead) })
        }))
    }

    fn check<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let started = Instant::now();
            let probe = sqlx::query("SELECT 1 FROM bus_messages LIMIT 0").execute(&self.inner.pool);
            match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(err)) => Err(sqlite_error("check", queue.as_str(), started, &err)),
                Err(_) => Err(BusError::Unavailable {
                    backend: BACKEND,
                    waited: started.elapsed(),
                    detail: "the SQLite bus did not answer (another process holds a long write?)".to_owned(),
                }),
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_to_whole_milliseconds_and_saturate() {
        assert_eq!(after_ms(1000, Duration::ZERO), 1000);
        assert_eq!(after_ms(1000, Duration::from_micros(1)), 1001);
        assert_eq!(after_ms(1000, Duration::from_millis(250)), 1250);
        assert_eq!(after_ms(1000, Duration::MAX), i64::MAX);
    }

    #[tokio::test]
    async fn without_provisioning_a_missing_file_is_not_created() {
        let dir = std::env::temp_dir().join(format!("wharf-bus-sqlite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("absent.db");
        let config = BusConfig {
            provision: false,
            sqlite_url: format!("sqlite://{}?mode=rwc", file.display()),
            ..BusConfig::sqlite()
        };
        assert!(SqliteBus::open(&config).await.is_err());
        assert!(!file.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn the_file_is_in_wal_mode_with_normal_sync_for_several_processes() {
        let dir = std::env::temp_dir().join(format!("wharf-bus-sqlite-wal-{}", std::process::id()));
        let config = BusConfig {
            sqlite_url: format!("sqlite://{}/nested/bus.db?mode=rwc", dir.display()),
            ..BusConfig::sqlite()
        };
        let bus = SqliteBus::open(&config).await.unwrap();
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(&bus.inner.pool).await.unwrap();
        let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous").fetch_one(&bus.inner.pool).await.unwrap();
        let (busy,): (i64,) = sqlx::query_as("PRAGMA busy_timeout").fetch_one(&bus.inner.pool).await.unwrap();
        assert_eq!((mode.as_str(), sync, busy), ("wal", 1, 5000));
        bus.inner.pool.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn an_unprovisioned_database_is_a_missing_queue() {
        let config = BusConfig { sqlite_url: "sqlite::memory:".to_owned(), ..BusConfig::sqlite() };
        let bus = SqliteBus::open(&config).await.unwrap();
        let queue = QueueName::parse("q").unwrap();
        assert!(matches!(bus.check(&queue).await, Err(BusError::QueueNotFound { .. })));
        let err = bus.publish_message(&queue, &Message::raw("x", Metadata::default())).await.unwrap_err();
        assert!(matches!(err, BusError::QueueNotFound { .. }), "{err}");
        bus.provision(&queue).await.unwrap();
        bus.check(&queue).await.unwrap();
        bus.publish_message(&queue, &Message::raw("x", Metadata::default())).await.unwrap();
        assert_eq!(bus.depth(&queue).await.unwrap(), QueueDepth { ready: 1, ..QueueDepth::default() });
    }
}
