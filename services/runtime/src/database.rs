//! The database behind `DATABASE_URL`: SQLite (embedded mode) or PostgreSQL (every other mode).
//!
//! A service's store holds a [`Database`] and matches on it where the SQL differs; both pools are
//! cheap to clone. Migrations are embedded in each service's binary, one directory per backend,
//! and run at start-up.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The URL is not one sqlx understands.
    #[error("DATABASE_URL is not a usable database URL")]
    InvalidUrl(#[source] sqlx::Error),
    /// The directory for a SQLite file could not be created.
    #[error("cannot create the directory {path} for the SQLite database")]
    Directory { path: String, source: std::io::Error },
    /// The server did not answer or refused the connection.
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Runs the same code on whichever pool backs a [`Database`]: `on_database!(db, |pool| body)`.
///
/// SQLite and PostgreSQL both take `$1`-style parameters (sqlx numbers them the same way on
/// both), so a query written once compiles and runs against either pool; only statements that
/// need backend-specific SQL match on the [`Database`] themselves.
#[macro_export]
macro_rules! on_database {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::Database::Sqlite($pool) => $body,
            $crate::Database::Postgres($pool) => $body,
        }
    };
}

/// A connection pool to the service's own database.
#[derive(Debug, Clone)]
pub enum Database {
    /// Embedded mode: one file per service, WAL journal.
    Sqlite(SqlitePool),
    /// Local services, compose and production (RDS).
    Postgres(PgPool),
}

/// Rows a SQLite connection hands over without waiting for the reader: the API's largest page.
const ROW_BUFFER: usize = wharf_edge::paging::MAX_LIMIT as usize;

/// How long a request may wait for a pooled connection before it fails (and the edge answers 503).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl Database {
    /// Opens a pool of at most `max_connections` for `url` (`sqlite:` or `postgres:`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DatabaseError> {
        if url.starts_with("sqlite:") {
            Self::connect_sqlite(url, max_connections).await
        } else {
            Self::connect_postgres(url, max_connections).await
        }
    }

    async fn connect_sqlite(url: &str, max_connections: u32) -> Result<Self, DatabaseError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(DatabaseError::InvalidUrl)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across application crashes in WAL mode; only an OS crash may lose
            // the last transactions, an accepted trade-off for the embedded mode.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Each connection's rows reach the request through a bounded channel from its own
            // thread; with the default 50, the largest page (1,000 rows) stalls that thread
            // twenty times, each stall a pair of context switches.
            .row_buffer_size(ROW_BUFFER);
        // Each connection to an in-memory SQLite database gets its own empty database, so such a
        // pool must hold exactly one connection to behave as one database.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let max_connections = if in_memory { 1 } else { max_connections };
        if !in_memory {
            create_parent_dir(options.get_filename())?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // Keep the in-memory database alive for the pool's life.
            .min_connections(u32::from(in_memory))
            .idle_timeout(if in_memory { None } else { Some(Duration::from_secs(600)) })
            .max_lifetime(if in_memory { None } else { Some(Duration::from_secs(1800)) })
            .connect_with(options)
            .await
            .map_err(DatabaseError::Connect)?;
        Ok(Self::Sqlite(pool))
    }

    async fn connect_postgres(url: &str, max_connections: u32) -> Result<Self, DatabaseError> {
        let options = PgConnectOptions::from_str(url).map_err(DatabaseError::InvalidUrl)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(DatabaseError::Connect)?;
        Ok(Self::Postgres(pool))
    }

    /// Applies the embedded migrations for this backend.
    pub async fn migrate(&self, sqlite: &Migrator, postgres: &Migrator) -> Result<(), DatabaseError> {
        match self {
            Self::Sqlite(pool) => sqlite.run(pool).await,
            Self::Postgres(pool) => postgres.run(pool).await,
        }
        .map_err(DatabaseError::Migrate)
    }

    /// A round trip to the database, for readiness.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
    }

    /// `sqlite` or `postgres`, for logs and health details.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection; pending acquisitions fail.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// The database as a readiness check: down when a `SELECT 1` fails.
impl wharf_edge::Check for Database {
    fn name(&self) -> &'static str {
        "database"
    }

    fn check(&self) -> futures_util::future::BoxFuture<'_, wharf_edge::CheckOutcome> {
        Box::pin(async move {
            match self.ping().await {
                Ok(()) => wharf_edge::CheckOutcome::with(wharf_edge::CheckStatus::Up, self.backend()),
                Err(err) => wharf_edge::CheckOutcome::with(wharf_edge::CheckStatus::Down, err.to_string()),
            }
        })
    }
}

fn create_parent_dir(file: &Path) -> Result<(), DatabaseError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|source| DatabaseError::Directory { path: dir.display().to_string(), source }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_file_and_its_directory_are_created_in_wal_mode() {
        let dir = std::env::temp_dir().join(format!("wharf-runtime-{}", std::process::id()));
        let url = format!("sqlite://{}/nested/test.db?mode=rwc", dir.display());
        let db = Database::connect(&url, 2).await.unwrap();
        db.ping().await.unwrap();
        let Database::Sqlite(pool) = &db else { panic!("expected sqlite") };
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(pool).await.unwrap();
        assert_eq!(mode, "wal");
        db.close().await;
        assert!(dir.join("nested/test.db").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn in_memory_sqlite_is_one_database() {
        let db = Database::connect("sqlite::memory:", 8).await.unwrap();
        let Database::Sqlite(pool) = &db else { panic!("expected sqlite") };
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(pool).await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)").execute(pool).await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM t").fetch_one(pool).await.unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn unreachable_postgres_is_a_connect_error_not_a_hang() {
        let started = std::time::Instant::now();
        let err = Database::connect("postgres://postgres@127.0.0.1:1/none", 1).await.unwrap_err();
        assert!(matches!(err, DatabaseError::Connect(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
