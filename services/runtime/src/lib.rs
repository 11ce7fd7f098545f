//! Start-up for wharf services: everything a service needs before it can serve a request.
//!
//! - [`config`]: typed configuration read once from the environment; a bad value is a one-line
//!   error naming the variable and what it accepts, never a panic.
//! - [`telemetry`]: structured logging (JSON or pretty) with the `RUST_LOG` filter, and OpenTelemetry
//!   trace export over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! - [`database`]: the SQLite or PostgreSQL pool behind `DATABASE_URL`, with embedded migrations.
//! - [`store_pool`]: routes → store worker pool, typed per call, with its failures mapped to problems.
//! - [`secrets`]: settings read from AWS Secrets Manager (`DATABASE_URL_SECRET`, `SQS_QUEUE_URL_SECRET`).
//! - [`process`]: `main` for a service binary (exit codes 0 / 1 / 2) and its `healthcheck`.
//! - [`lifecycle`]: a started service (edge, supervisor, database) and its orderly stop.

pub mod config;
pub mod database;
pub mod lifecycle;
pub mod process;
pub mod secrets;
pub mod store_pool;
pub mod telemetry;

pub use config::ServiceConfig;
pub use database::{Database, DatabaseError};
pub use lifecycle::{RunningService, StartError, Stopped};
pub use store_pool::{StoreClient, StoreError, store_pool};
pub use telemetry::{LogFormat, TelemetryGuard, TraceConfig, error_chain, init_telemetry, init_telemetry_exporting_to};
pub use wharf_config::{ConfigError, ConfigErrors, Env};
