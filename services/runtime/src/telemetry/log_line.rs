//! The JSON log line: one object per event with `timestamp`, `level`, `service`, `message`, and —
//! inside a request or a message handler — `correlationId`, `traceId` and `spanId`, then the
//! event's own fields.
//!
//! `service` and `correlationId` come from the nearest spans that carry them ([`SpanTags`]),
//! otherwise from the event's own `service` and `correlation_id` fields (which never appear a
//! second time under their own names); `service` last from the process (its
//! short name, `wharf` for `wharf up`), so every line of one service says the same name;
//! `traceId` and `spanId` from the current OpenTelemetry span, so they are the ids a trace
//! backend shows for the same request (present only while traces are exported: without an
//! OpenTelemetry layer there is no trace to point at).

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::span_tags::SpanTags;

/// Formats events as JSON lines; `service` is what lines outside any tagged span say when the
/// event does not name its service either.
#[derive(Debug, Clone)]
pub(crate) struct JsonLine {
    pub(crate) service: String,
}

/// The event's fields; `message` and `service` are kept apart.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    service: Option<String>,
    /// An event's own `correlation_id` (the access log line, a relay or sender event outside a
    /// request): the line's `correlationId` when no span carries one, never a second field.
    correlation_id: Option<String>,
    rest: Map<String, Value>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        match field.name() {
            "message" => self.message = value.as_str().map(str::to_owned).or_else(|| Some(value.to_string())),
            "service" => self.service = value.as_str().map(str::to_owned).or_else(|| Some(value.to_string())),
            "correlation_id" => {
                self.correlation_id = value.as_str().map(str::to_owned).or_else(|| Some(value.to_string()));
            }
            // `log` crate records arrive with these; the line has its own.
            name if name.starts_with("log.") => {}
            name => {
                self.rest.insert(name.to_owned(), value);
            }
        }
    }
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut tags = SpanTags::default();
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                if let Some(found) = span.extensions().get::<SpanTags>() {
                    if tags.service.is_none() {
                        tags.service.clone_from(&found.service);
                    }
                    if tags.correlation_id.is_none() {
                        tags.correlation_id.clone_from(&found.correlation_id);
                    }
                }
                if tags.service.is_some() && tags.correlation_id.is_some() {
                    break;
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);

        let mut line = Map::with_capacity(8 + fields.rest.len());
        let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
        line.insert("timestamp".into(), Value::from(now));
        line.insert("level".into(), Value::from(event.metadata().level().as_str()));
        let service = tags.service.or(fields.service).unwrap_or_else(|| self.service.clone());
        line.insert("service".into(), Value::from(service));
        line.insert("target".into(), Value::from(event.metadata().target()));
        line.insert("message".into(), Value::from(fields.message.unwrap_or_default()));
        if let Some(correlation_id) = tags.correlation_id.or(fields.correlation_id) {
            line.insert("correlationId".into(), Value::from(correlation_id));
        }
        // The current span's OTel context (an event naming another parent is rare here and
        // still inside the same request). Outside the OpenTelemetry layer this is empty.
        let context = tracing::Span::current().context();
        let otel = context.span();
        let span_context = otel.span_context();
        if span_context.is_valid() {
            line.insert("traceId".into(), Value::from(span_context.trace_id().to_string()));
            line.insert("spanId".into(), Value::from(span_context.span_id().to_string()));
        }
        for (key, value) in fields.rest {
            line.entry(key).or_insert(value);
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}
