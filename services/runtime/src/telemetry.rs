//! Structured logging for wharf services.
//!
//! JSON lines by default (what log pipelines on EKS ingest), pretty output for a developer's
//! terminal. The edge adds the per-request fields (service, route, status, latency,
//! correlation id); this module only installs the subscriber.
//!
//! Lines are written by a background thread, so a request never waits on stdout; when that
//! thread falls behind, writers wait rather than drop lines (an access log with holes is worse
//! than a brief slowdown).

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
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

/// Keeps the log writer thread alive; dropping it flushes what is buffered. Hold it in `main`
/// until the service has stopped.
#[derive(Debug)]
#[must_use = "dropping the guard stops the log writer"]
pub struct TelemetryGuard {
    _writer: Option<WorkerGuard>,
}

/// Installs the global subscriber. Later calls are no-ops (and return an empty guard), so one
/// process may start several services (`wharf up`) and tests may start many servers.
pub fn init_telemetry(format: LogFormat, filter: &str) -> TelemetryGuard {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default().lossy(false).finish(std::io::stdout());
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(tracing_subscriber::fmt::layer().compact().with_writer(writer)).try_init(),
    };
    // `try_init` fails only when a subscriber is already installed: keep that one.
    TelemetryGuard { _writer: installed.ok().map(|()| guard) }
}

/// An error and its sources on one line, `outer: inner: …` — for logs and command output, where
/// the outer message alone often hides the cause (an HTTP client's "error sending request").
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
