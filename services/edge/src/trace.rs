//! W3C trace context at the edge and wherever a request's work crosses a process or a task.
//!
//! Every request runs inside one SERVER span ([`server_span`]) named `METHOD /route/{template}`
//! once routing is done, with the status, the route template and the correlation id as
//! attributes; an incoming `traceparent`/`tracestate` makes it a child of the caller's span.
//! Outgoing, [`inject`] writes the current context into headers and [`traceparent`] and
//! [`tracestate`] render it for a message; [`continue_from`] makes a span the child of a context
//! that arrived in a message, vendor entries (`tracestate`) included.
//!
//! Everything goes through the global propagator, which telemetry sets to W3C trace context
//! only when traces are exported: with tracing off, extraction and injection do nothing.

use std::collections::HashMap;

use http::{HeaderMap, Method, StatusCode};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of spans that exist only for traces (store calls, the products call, publishing):
/// telemetry switches it off when nothing is exported.
pub const TRACE_TARGET: &str = "wharf::otel";

/// Paths probed by kubelets and scrapers every few seconds: their spans and access log lines
/// are `debug`, so they neither drown the logs nor fill the trace backend.
pub fn is_probe(path: &str) -> bool {
    path == "/metrics" || path.ends_with("/health") || path.ends_with("/health/live") || path.ends_with("/health/ready")
}

/// The SERVER span of one request. `service` is the short name (`orders`).
pub fn server_span(
    service: &'static str,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    correlation_id: &str,
) -> Span {
    macro_rules! request_span {
        ($level:expr) => {
            tracing::span!(
                $level,
                "request",
                otel.name = %method,
                otel.kind = "server",
                otel.status_code = Empty,
                http.request.method = %method,
                url.path = path,
                http.route = Empty,
                http.response.status_code = Empty,
                service,
                correlation_id,
                // The authenticated caller's `sub`, recorded once the token is verified.
                subject = Empty,
            )
        };
    }
    let span = if is_probe(path) { request_span!(tracing::Level::DEBUG) } else { request_span!(tracing::Level::INFO) };
    if !span.is_disabled() {
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
        set_parent(&span, parent);
    }
    span
}

/// Records how a request ended on its SERVER span.
pub fn finish(span: &Span, method: &Method, route: &'static str, status: StatusCode) {
    if span.is_disabled() {
        return;
    }
    use opentelemetry::trace::TraceContextExt;
    // The OTel span started when the request was first polled: rename it through its context
    // (a recorded `otel.name` only names a span that has not started yet).
    span.context().span().update_name(format!("{method} {route}"));
    span.record("http.route", route);
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
}

/// Writes `span`'s context into `headers` (`traceparent`, `tracestate`).
pub fn inject(span: &Span, headers: &mut HeaderMap) {
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut HeaderInjector(headers)));
}

/// `span`'s context as a `traceparent` value, to store with an event or send beside a message;
/// `None` when traces are off.
pub fn traceparent(span: &Span) -> Option<String> {
    rendered(span, "traceparent")
}

/// The current span's `traceparent` (see [`traceparent`]).
pub fn current_traceparent() -> Option<String> {
    traceparent(&Span::current())
}

/// `span`'s `tracestate` (the vendor entries of its trace, e.g. X-Ray's), to store and send with
/// its [`traceparent`]; `None` when traces are off or the trace has no entries.
pub fn tracestate(span: &Span) -> Option<String> {
    rendered(span, "tracestate")
}

/// The current span's `tracestate` (see [`tracestate`]).
pub fn current_tracestate() -> Option<String> {
    tracestate(&Span::current())
}

/// One header of `span`'s context as the propagator writes it; an empty value is none.
fn rendered(span: &Span, header: &str) -> Option<String> {
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let mut carrier = Carrier::default();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut carrier));
    carrier.0.remove(header).filter(|value| !value.is_empty())
}

/// Makes `span` a child of the context in `traceparent` (with the vendor entries in `tracestate`,
/// which belong to it), if there is a valid one. Call it before anything is logged inside `span`.
pub fn continue_from(span: &Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    let Some(traceparent) = traceparent else { return };
    if span.is_disabled() {
        return;
    }
    let mut carrier = Carrier(HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]));
    if let Some(tracestate) = tracestate {
        carrier.0.insert("tracestate".to_owned(), tracestate.to_owned());
    }
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    set_parent(span, parent);
}

fn set_parent(span: &Span, parent: opentelemetry::Context) {
    use opentelemetry::trace::TraceContextExt;
    if parent.span().span_context().is_valid() {
        // Fails only without the OpenTelemetry layer (traces off): nothing to link then.
        let _ = span.set_parent(parent);
    }
}

/// A text map for one message's trace headers.
#[derive(Debug, Default)]
struct Carrier(HashMap<String, String>);

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}
