//! Fixtures for wharf's tests (a dev-dependency only).
//!
//! - [`unique`]: names that do not collide between tests of one process or between processes
//!   (actor names are process-global; databases and queues are machine-global);
//! - [`TempDir`]: a directory removed on drop, for SQLite files;
//! - [`PgTestDb`]: a fresh PostgreSQL database per test. In the integration tier an
//!   unreachable server is a failure, never a skip.
//! - [`cognito`]: a user pool on moto's Cognito with app clients, an admin and a plain user, and
//!   their real tokens; [`cognito::TestIssuer`]: a signing key and JWKS of the test's own.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::Connection;

pub mod cognito;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// `prefix-<pid>-<n>`: unique within the machine for the life of this process.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A directory under the system temp dir, removed with everything in it on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory.
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(unique(&format!("wharf-{prefix}")));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A `DATABASE_URL` for a SQLite file `name` in this directory.
    pub fn sqlite_url(&self, name: &str) -> String {
        format!("sqlite://{}/{name}?mode=rwc", self.0.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh, empty PostgreSQL database for one test; drop it with [`PgTestDb::drop_db`].
/// The server is `WHARF_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).
#[derive(Debug)]
pub struct PgTestDb {
    /// The new database's URL.
    pub url: String,
    admin_url: String,
    name: String,
}

impl PgTestDb {
    /// Creates the database; panics (fails the test) when the server cannot be reached.
    pub async fn create() -> Self {
        let admin_url = std::env::var("WHARF_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = unique("wharf_test").replace('-', "_");
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|err| panic!("PostgreSQL at {admin_url} is required by the integration tier: {err}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let base = admin_url.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin_url);
        Self { url: format!("{base}/{name}"), admin_url, name }
    }

    /// Drops the database, closing whatever connections are left.
    pub async fn drop_db(self) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.admin_url).await {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await;
        }
    }
}

/// Where a store suite's database lives: a SQLite file in a temporary directory, or a fresh
/// PostgreSQL database. One type, so one suite body runs on either.
#[derive(Debug)]
pub enum TestDb {
    /// A SQLite file (created on connect) in a directory removed afterwards.
    Sqlite(TempDir),
    /// A database dropped afterwards.
    Postgres(PgTestDb),
}

impl TestDb {
    pub fn sqlite() -> Self {
        Self::Sqlite(TempDir::new("store"))
    }

    /// A PostgreSQL database (fails the test when the server is unreachable).
    pub async fn postgres() -> Self {
        Self::Postgres(PgTestDb::create().await)
    }

    pub fn url(&self) -> String {
        match self {
            Self::Sqlite(dir) => dir.sqlite_url("store.db"),
            Self::Postgres(db) => db.url.clone(),
        }
    }

    /// Removes it (close the pool first).
    pub async fn remove(self) {
        match self {
            Self::Sqlite(dir) => drop(dir),
            Self::Postgres(db) => db.drop_db().await,
        }
    }
}
