//! Start-up for wharf services: everything a service needs before it can serve a request.
//!
//! - [`config`]: typed configuration read once from the environment; a bad value is a one-line
//!   error naming the variable and what it accepts, never a panic.
//! - [`telemetry`]: structured logging (JSON or pretty) with the `RUST_LOG` filter.
//! - [`database`]: the SQLite or PostgreSQL pool behind `DATABASE_URL`, with embedded migrations.
//! - [`store_pool`]: routes → store worker pool, with its failures mapped to problems.
//! - [`process`]: `main` for a service binary (exit codes 0 / 1 / 2).
//! - [`lifecycle`]: a started service (edge, supervisor, database) and its orderly stop.

pub mod config;
pub mod database;
pub mod lifecycle;
pub mod process;
pub mod store_pool;
pub mod telemetry;

pub use config::{ConfigError, ConfigErrors, Env, ServiceConfig};
pub use database::{Database, DatabaseError};
pub use lifecycle::{RunningService, StartError, Stopped};
pub use store_pool::{StoreClient, StoreError};
pub use telemetry::{LogFormat, TelemetryGuard, error_chain, init_telemetry};
