//! One order, one trace — the three services in one process on the memory bus, every span
//! ended into one in-memory exporter (the wiring `wharf up` uses, with a test exporter).
//!
//! One `POST /api/orders` must yield: the orders SERVER span; under it the products lookup
//! (CLIENT), whose child is products' SERVER span; the order store's write; the outbox relay's
//! PRODUCER span; under that the notifications CONSUMER span, and under that the send — all
//! with one trace id. An order whose caller sent `traceparent` and `tracestate` continues the
//! caller's trace, and its vendor entries reach the consumer through the outbox and the bus.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanId, SpanKind, TraceId, TraceState};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use serde_json::{Value, json};
use wharf_bus::{Bus, BusConfig, MemoryBus};
use wharf_runtime::{Env, LogFormat, RunningService, TraceConfig, init_telemetry_exporting_to};
use wharf_testkit::TempDir;

fn config_env(dir: &TempDir, db: &str, vars: &[(&str, String)]) -> Env {
    let mut env = Env::from_pairs(vars.iter().map(|(k, v)| (*k, v.clone())));
    env.set_default("PORT", "0");
    env.set_default("DATABASE_URL", dir.sqlite_url(db));
    env.set_default("SHUTDOWN_GRACE_SECS", "1");
    env
}

async fn start_platform(dir: &TempDir) -> (RunningService, RunningService, RunningService) {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new(&BusConfig::memory()));
    let mut env = config_env(dir, "products.db", &[]);
    let mut config = products::ProductsConfig::from_env(&mut env);
    env.finish().unwrap();
    config.actor_namespace = format!("trace-products-{}", std::process::id());
    let products = products::start(config).await.unwrap();

    let mut env = config_env(dir, "notifications.db", &[("SEND_DELAY_EMAIL_MS", "0".into())]);
    let mut config = notifications::NotificationsConfig::from_env(&mut env);
    env.finish().unwrap();
    config.actor_namespace = format!("trace-notifications-{}", std::process::id());
    let notifications = notifications::start_with_bus(config, bus.clone()).await.unwrap();

    let products_url = format!("http://{}", products.local_addr());
    let mut env = config_env(dir, "orders.db", &[("PRODUCTS_URL", products_url), ("OUTBOX_POLL_MS", "100".into())]);
    let mut config = orders::OrdersConfig::from_env(&mut env);
    env.finish().unwrap();
    config.actor_namespace = format!("trace-orders-{}", std::process::id());
    let orders = orders::start_with_bus(config, bus).await.unwrap();
    (products, orders, notifications)
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

/// The one span in `trace` that `matches`, or a failure listing what the trace holds.
fn only<'a>(spans: &'a [SpanData], trace: TraceId, what: &str, matches: impl Fn(&SpanData) -> bool) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|s| s.span_context.trace_id() == trace && matches(s)).collect();
    assert_eq!(found.len(), 1, "expected one {what} span in trace {trace}; the trace has: {:#?}", names(spans, trace));
    found[0]
}

fn names(spans: &[SpanData], trace: TraceId) -> Vec<(String, SpanKind, SpanId, SpanId)> {
    spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .map(|s| (s.name.to_string(), s.span_kind.clone(), s.span_context.span_id(), s.parent_span_id))
        .collect()
}

/// The finished spans once `trace` has its send span (the last to end), waiting up to 20 s.
async fn spans_until_sent(exporter: &InMemorySpanExporter, trace: Option<TraceId>) -> Vec<SpanData> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let spans = exporter.get_finished_spans().unwrap();
        let in_trace = |s: &SpanData| trace.is_none_or(|trace| s.span_context.trace_id() == trace);
        if spans.iter().any(|s| in_trace(s) && s.name.starts_with("send ")) {
            return spans;
        }
        assert!(
            Instant::now() < deadline,
            "no send span within 20 s; spans: {:#?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_one_trace_across_orders_products_and_notifications() {
    let exporter = InMemorySpanExporter::default();
    let telemetry =
        init_telemetry_exporting_to(LogFormat::Json, "warn", "wharf", &TraceConfig::off("wharf"), exporter.clone());
    assert!(telemetry.exporting(), "this test binary installs the only subscriber");
    let dir = TempDir::new("trace-in-process");
    let (products, orders, notifications) = start_platform(&dir).await;
    let client = reqwest::Client::new();

    let product: Value = client
        .post(format!("http://{}/api/products", products.local_addr()))
        .json(&json!({"name": "Traced lamp", "price": 12.5, "stock": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let placed = client
        .post(format!("http://{}/api/orders", orders.local_addr()))
        .header("x-correlation-id", "trace-test-order-1")
        .json(&json!({"productId": product["id"], "quantity": 1, "customerEmail": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);

    // The send is the last span to end: wait for it.
    let spans = spans_until_sent(&exporter, None).await;

    let order_server =
        spans.iter().find(|s| s.span_kind == SpanKind::Server && s.name == "POST /api/orders").unwrap_or_else(|| {
            let all: Vec<_> = spans.iter().map(|s| (s.name.to_string(), s.span_kind.clone())).collect();
            panic!("no SERVER span for POST /api/orders among {all:#?}")
        });
    let trace = order_server.span_context.trace_id();
    assert_eq!(attribute(order_server, "service").as_deref(), Some("orders"));
    assert_eq!(attribute(order_server, "http.route").as_deref(), Some("/api/orders"));
    assert_eq!(attribute(order_server, "http.response.status_code").as_deref(), Some("201"));
    assert_eq!(attribute(order_server, "correlation_id").as_deref(), Some("trace-test-order-1"));
    assert_eq!(order_server.parent_span_id, SpanId::INVALID, "the order request starts the trace");

    let lookup = only(&spans, trace, "products lookup", |s| {
        s.span_kind == SpanKind::Client && s.name == "GET /api/products/{id}"
    });
    assert_eq!(lookup.parent_span_id, order_server.span_context.span_id());
    let product_server = only(&spans, trace, "products SERVER", |s| {
        s.span_kind == SpanKind::Server && s.name == "GET /api/products/{id}"
    });
    assert_eq!(
        product_server.parent_span_id,
        lookup.span_context.span_id(),
        "products continues the lookup's traceparent"
    );
    assert_eq!(attribute(product_server, "service").as_deref(), Some("products"));

    let write = only(&spans, trace, "order store write", |s| {
        s.name == "store write" && attribute(s, "wharf.store").as_deref() == Some("order store")
    });
    assert_eq!(write.parent_span_id, order_server.span_context.span_id());

    let publish = only(&spans, trace, "outbox publish", |s| s.span_kind == SpanKind::Producer);
    assert_eq!(
        publish.parent_span_id,
        order_server.span_context.span_id(),
        "the outbox row carries the request's context"
    );
    assert_eq!(attribute(publish, "messaging.operation.type").as_deref(), Some("send"));
    assert_eq!(attribute(publish, "messaging.system").as_deref(), Some("memory"));

    let consume = only(&spans, trace, "notifications CONSUMER", |s| s.span_kind == SpanKind::Consumer);
    assert_eq!(consume.parent_span_id, publish.span_context.span_id(), "the message carries the producer's context");
    assert_eq!(attribute(consume, "service").as_deref(), Some("notifications"));
    assert_eq!(attribute(consume, "correlation_id").as_deref(), Some("trace-test-order-1"));

    let send = only(&spans, trace, "send", |s| s.name.starts_with("send "));
    assert_eq!(send.parent_span_id, consume.span_context.span_id(), "the send is a child of the consume");
    assert_eq!(consume.span_context.trace_state(), &TraceState::NONE, "no tracestate when the caller sent none");

    // A caller with its own trace and vendor entries (X-Ray puts its own there).
    let caller_trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let caller_span = SpanId::from_hex("00f067aa0ba902b7").unwrap();
    let tracestate = "wharf=1,congo=t61rcWkgMzE";
    let placed = client
        .post(format!("http://{}/api/orders", orders.local_addr()))
        .header("x-correlation-id", "trace-test-order-2")
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .header("tracestate", tracestate)
        .json(&json!({"productId": product["id"], "quantity": 1, "customerEmail": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);
    let spans = spans_until_sent(&exporter, Some(caller_trace)).await;
    let expected = TraceState::from_key_value([("wharf", "1"), ("congo", "t61rcWkgMzE")]).unwrap();
    let order_server = only(&spans, caller_trace, "orders SERVER", |s| {
        s.span_kind == SpanKind::Server && s.name == "POST /api/orders"
    });
    assert_eq!(order_server.parent_span_id, caller_span, "the order request continues the caller's trace");
    assert_eq!(order_server.span_context.trace_state(), &expected);
    let publish = only(&spans, caller_trace, "outbox publish", |s| s.span_kind == SpanKind::Producer);
    assert_eq!(publish.parent_span_id, order_server.span_context.span_id());
    assert_eq!(publish.span_context.trace_state(), &expected, "the outbox row keeps the tracestate");
    let consume = only(&spans, caller_trace, "notifications CONSUMER", |s| s.span_kind == SpanKind::Consumer);
    assert_eq!(consume.parent_span_id, publish.span_context.span_id());
    assert_eq!(attribute(consume, "correlation_id").as_deref(), Some("trace-test-order-2"));
    assert_eq!(
        consume.span_context.trace_state(),
        &expected,
        "the consumer's context carries the caller's tracestate, {tracestate}"
    );

    for service in [orders, notifications, products] {
        service.shutdown().await;
    }
    drop(telemetry);
}
