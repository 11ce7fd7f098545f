//! The HTTP edge every wharf service stands behind.
//!
//! A service hands the edge its API routes (warp filters), its OpenAPI document and its health
//! checks; the edge adds what every service must do the same way:
//!
//! - problem+json (RFC 9457) for every error, with the request's correlation id ([`problem`]);
//! - `X-Correlation-ID` accepted or generated, echoed, and on every log line ([`request`]);
//! - security headers on every response and no `Server` header ([`security`]);
//! - request body limits, chunked bodies, the body timeout and strict JSON parsing with clear
//!   errors ([`body`], [`strict_json`]), canonical path ids ([`reply`]), paging ([`paging`]);
//! - `405` with `Allow` and `HEAD` wherever `GET` is, from the service's OpenAPI paths
//!   ([`route_table`]);
//! - `/health`, `/health/live`, `/health/ready` ([`health`]), `/metrics` in Prometheus text or
//!   OpenMetrics as `Accept` asks ([`metrics`], [`exposition`]),
//!   `/openapi.json` and `/swagger` ([`docs`]), and when enabled `/admin/chaos/*` ([`chaos`]):
//!   kill actors, inject latency and errors, force unreadiness;
//! - one SERVER span per request, continuing an incoming W3C `traceparent` ([`trace`]);
//! - bearer JWT authentication and the admin group, per operation from the document's
//!   `security` ([`auth`]);
//! - per-client rate limits on `/api/*` with `RateLimit-*` headers and 429 ([`rate_limit`]);
//! - graceful shutdown: stop accepting, drain in-flight requests up to a deadline ([`server`]).

pub mod auth;
pub mod body;
pub mod chaos;
mod connection;
pub mod docs;
pub mod exposition;
pub mod health;
pub mod integer;
pub mod metrics;
pub mod paging;
pub mod problem;
mod process_metrics;
pub mod rate_limit;
pub mod reply;
pub mod request;
pub mod route_table;
pub mod security;
pub mod server;
pub mod strict_json;
mod text_rules;
pub mod trace;

pub use body::json_body;
pub use health::{Check, CheckOutcome, CheckStatus};
pub use paging::Page;
pub use problem::{FieldErrors, Problem};
pub use request::{correlation_id, route};
pub use server::{Edge, EdgeConfig, EdgeError, RunningEdge, ServiceName};
