//! What each telemetry layer sees.
//!
//! `RUST_LOG` decides which *events* become log lines, but not which spans exist: a request's
//! span must exist even under `RUST_LOG=warn`, or a warning inside it would lose its correlation
//! and trace ids, and the trace would lose the request. So the log layers see every span at
//! `info` and above ([`LogLines`]) and `RUST_LOG`'s verdict on events; the OpenTelemetry layer
//! sees wharf's own spans and events at `info` ([`trace_targets`]) whatever `RUST_LOG` says.

use tracing::subscriber::Interest;
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Filter};

use super::TRACE_TARGET;

/// The log layers' filter: spans at `info` and above (those only for traces when they are
/// exported), events as `RUST_LOG` says.
#[derive(Debug)]
pub(crate) struct LogLines {
    pub(crate) events: EnvFilter,
    pub(crate) exporting: bool,
}

impl LogLines {
    fn span_enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::INFO && (self.exporting || metadata.target() != TRACE_TARGET)
    }
}

impl<S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>> Filter<S> for LogLines {
    fn enabled(&self, metadata: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        if metadata.is_span() {
            self.span_enabled(metadata) || Filter::enabled(&self.events, metadata, cx)
        } else {
            Filter::enabled(&self.events, metadata, cx)
        }
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.is_span() && self.span_enabled(metadata) {
            Interest::always()
        } else {
            Filter::<S>::callsite_enabled(&self.events, metadata)
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(Filter::<S>::max_level_hint(&self.events).map_or(LevelFilter::INFO, |hint| hint.max(LevelFilter::INFO)))
    }

    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        Filter::on_new_span(&self.events, attrs, id, ctx);
    }

    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        Filter::on_record(&self.events, id, values, ctx);
    }

    fn on_enter(&self, id: &tracing::span::Id, ctx: Context<'_, S>) {
        Filter::on_enter(&self.events, id, ctx);
    }

    fn on_exit(&self, id: &tracing::span::Id, ctx: Context<'_, S>) {
        Filter::on_exit(&self.events, id, ctx);
    }

    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        Filter::on_close(&self.events, id, ctx);
    }
}

/// The OpenTelemetry layer's filter: wharf's crates at `info` (their request, message and
/// trace-only spans, and the events inside them), dependencies only at `warn`.
pub(crate) fn trace_targets() -> Targets {
    Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target("wharf", LevelFilter::INFO)
        .with_target("products", LevelFilter::INFO)
        .with_target("orders", LevelFilter::INFO)
        .with_target("notifications", LevelFilter::INFO)
}
