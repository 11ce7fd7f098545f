//! Logs and traces for wharf services.
//!
//! Logs: JSON lines by default (what log pipelines on EKS ingest; see [`log_line`] for the
//! fields), pretty output for a developer's terminal, coloured only when stdout is one. Lines are
//! written by a background thread, so a request never waits on stdout; when that thread falls
//! behind, writers wait rather than drop lines (an access log with holes is worse than a brief
//! slowdown).
//!
//! Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, `tracing` spans become OpenTelemetry spans
//! exported over OTLP/HTTP ([`traces`]) and W3C trace context is propagated; the spans the
//! services open only for traces use the [`TRACE_TARGET`] target, which is switched off when
//! tracing is, so they cost nothing then. [`TelemetryGuard`] flushes both on drop.

mod layer_filters;
mod log_line;
mod span_tags;
pub mod traces;

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use self::traces::{ExporterError, SamplerKind, TraceConfig};
pub use wharf_edge::trace::TRACE_TARGET;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable, coloured when writing to a terminal.
    Pretty,
}

/// Keeps the log writer thread and the span exporter alive; dropping it flushes both. Hold it
/// in `main` until the service has stopped.
#[derive(Debug)]
#[must_use = "dropping the guard stops the log writer and the span exporter"]
pub struct TelemetryGuard {
    writer: Option<WorkerGuard>,
    traces: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether spans are being exported.
    pub fn exporting(&self) -> bool {
        self.traces.is_some()
    }

    /// Exports the spans ended so far (tests, and the shutdown path).
    pub fn flush(&self) {
        if let Some(provider) = &self.traces
            && let Err(err) = provider.force_flush()
        {
            eprintln!("flushing traces failed: {err}");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        // Spans first: their export may still log, and the writer must be there to take it.
        if let Some(provider) = self.traces.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("exporting the last spans failed: {err}");
        }
        self.writer.take();
    }
}

/// Installs the global subscriber: logs in `format` filtered by `filter`, and traces as `traces`
/// says. `service` is the short name a JSON line says when neither a span nor the event names a
/// service (`orders`; `wharf` for `wharf up`): the log `service` never follows
/// `OTEL_SERVICE_NAME`, which names the trace resource. Later calls are no-ops (and return an
/// empty guard), so one process may start several services (`wharf up`) and tests may start many
/// servers.
pub fn init_telemetry(format: LogFormat, filter: &str, service: &str, traces: &TraceConfig) -> TelemetryGuard {
    let provider = match traces::otlp_provider(traces) {
        Ok(provider) => provider,
        Err(err) => {
            // The endpoint was a valid URL (config checks that); a client that cannot be built
            // must not stop the service: it serves without traces and says so.
            eprintln!("{err}; serving without trace export");
            None
        }
    };
    install(format, filter, service, provider)
}

/// Like [`init_telemetry`], but every ended span goes straight to `exporter` (an in-memory
/// exporter in tests), with `traces`' sampler and resource.
pub fn init_telemetry_exporting_to(
    format: LogFormat,
    filter: &str,
    service: &str,
    traces: &TraceConfig,
    exporter: impl SpanExporter + 'static,
) -> TelemetryGuard {
    install(format, filter, service, Some(traces::provider_exporting_to(traces, exporter)))
}

fn install(format: LogFormat, filter: &str, service: &str, provider: Option<SdkTracerProvider>) -> TelemetryGuard {
    let events = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = layer_filters::LogLines { events, exporting: provider.is_some() };
    let (writer, guard) = NonBlockingBuilder::default().lossy(false).finish(std::io::stdout());
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("wharf"))
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_location(false)
            .with_filter(layer_filters::trace_targets())
    });
    let (json, pretty) = match format {
        LogFormat::Json => (
            Some(
                tracing_subscriber::fmt::layer()
                    .event_format(log_line::JsonLine { service: service.to_owned() })
                    .with_writer(writer)
                    .with_filter(lines),
            ),
            None,
        ),
        LogFormat::Pretty => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_ansi(std::io::stdout().is_terminal())
                    .with_writer(writer)
                    .with_filter(lines),
            ),
        ),
    };
    let installed = tracing_subscriber::registry()
        .with(span_tags::SpanTagsLayer.with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
            metadata.is_span() && *metadata.level() <= tracing::Level::INFO
        })))
        .with(otel)
        .with(json)
        .with(pretty)
        .try_init();
    match installed {
        Ok(()) => {
            if provider.is_some() {
                opentelemetry::global::set_text_map_propagator(
                    opentelemetry_sdk::propagation::TraceContextPropagator::new(),
                );
            }
            TelemetryGuard { writer: Some(guard), traces: provider }
        }
        // `try_init` fails only when a subscriber is already installed: keep that one.
        Err(_) => {
            if let Some(provider) = provider {
                let _ = provider.shutdown();
            }
            TelemetryGuard { writer: None, traces: None }
        }
    }
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
