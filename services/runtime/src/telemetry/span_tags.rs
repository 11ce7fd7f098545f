//! The request and message facts every log line repeats: which service, which correlation id.
//!
//! A span that carries a `service` or `correlation_id` field (the edge's request span, the
//! notifications consumer's message span, a send) keeps them as [`SpanTags`] in its extensions;
//! the JSON line format reads the nearest ones up the span scope, so a handler's own log lines
//! name neither and still say both.

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The fields of one span that log lines inherit.
#[derive(Debug, Default, Clone)]
pub(crate) struct SpanTags {
    pub(crate) service: Option<String>,
    pub(crate) correlation_id: Option<String>,
}

impl Visit for SpanTags {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "service" => self.service = Some(value.to_owned()),
            "correlation_id" => self.correlation_id = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if matches!(field.name(), "service" | "correlation_id") {
            // `%value` fields arrive here: their Debug is the Display text.
            self.record_str(field, &format!("{value:?}"));
        }
    }
}

/// Records [`SpanTags`] on spans that carry them.
#[derive(Debug, Default)]
pub(crate) struct SpanTagsLayer;

impl<S> Layer<S> for SpanTagsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let fields = attrs.metadata().fields();
        if fields.field("service").is_none() && fields.field("correlation_id").is_none() {
            return;
        }
        let mut tags = SpanTags::default();
        attrs.record(&mut tags);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(tags);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            if let Some(tags) = extensions.get_mut::<SpanTags>() {
                values.record(tags);
            }
        }
    }
}
