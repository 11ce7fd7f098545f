//! Structured logging for wharf services.
//!
//! JSON lines by default (what log pipelines on EKS ingest), pretty output for a developer's
//! terminal. The edge adds the per-request fields (service, route, status, latency,
//! correlation id); this module only installs the subscriber.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable, coloured when writing to a terminal.
    Pretty,
}

/// Installs the global subscriber. Later calls are no-ops, so one process may start several
/// services (`wharf up`) and tests may start many servers.
pub fn init_telemetry(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    // `try_init` fails only when a subscriber is already installed, which is the case to ignore.
    let _ = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(tracing_subscriber::fmt::layer().compact()).try_init(),
    };
}
