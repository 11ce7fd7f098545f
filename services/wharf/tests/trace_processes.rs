//! One order, one trace — across three real processes (the `products`, `orders` and
//! `notifications` binaries) over RabbitMQ and over SQS (one body of assertions, a case per
//! backend), each exporting over real OTLP/HTTP to a receiver this
//! test runs, which decodes the `ExportTraceServiceRequest`s with the `opentelemetry-proto` types.
//!
//! The order request comes with a caller's `traceparent` and `tracestate`: the trace is the
//! caller's, and the consumer's span carries the caller's `tracestate` — it crossed the outbox
//! and the real broker.
//!
//! It also proves the logs are joined to the trace: the orders lines for the request and the
//! notifications lines for the resulting send carry the request's `correlationId` and the
//! trace's `traceId`.
//!
//! Integration tier: needs RabbitMQ at `WHARF_TEST_AMQP_URL` (default guest@127.0.0.1:5672), an
//! SQS API at `WHARF_TEST_SQS_ENDPOINT` (moto; `eval "$(scripts/dev-services.sh up)"`) and the
//! three binaries next to `wharf` (`cargo test --workspace` builds them).
#![cfg(feature = "integration")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::{Value, json};
use warp::Filter;
use wharf_testkit::TempDir;

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    /// OTLP's SpanKind: 2 server, 3 client, 4 producer, 5 consumer.
    kind: i32,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    /// The W3C `tracestate` of the span's context ("" when none).
    trace_state: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/HTTP trace receiver on a free port; spans accumulate in `spans`.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Received>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let spans: Arc<Mutex<Vec<Received>>> = Arc::default();
        let store = spans.clone();
        let route =
            warp::post().and(warp::path!("v1" / "traces")).and(warp::body::bytes()).map(move |body: bytes::Bytes| {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
                let mut spans = store.lock().unwrap();
                for resource_spans in request.resource_spans {
                    let service = resource_spans
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|kv| kv.key == "service.name")
                        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                            AnyValue::StringValue(name) => Some(name.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                        spans.push(Received {
                            service: service.clone(),
                            name: span.name,
                            kind: span.kind,
                            trace_id: hex(&span.trace_id),
                            span_id: hex(&span.span_id),
                            parent_span_id: hex(&span.parent_span_id),
                            trace_state: span.trace_state,
                        });
                    }
                }
                // An empty ExportTraceServiceResponse: everything accepted.
                warp::http::Response::builder()
                    .header("content-type", "application/x-protobuf")
                    .body(Vec::new())
                    .unwrap()
            });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            warp::serve(route).incoming(listener).run().await;
        });
        Self { url: format!("http://{addr}"), spans, _runtime: runtime }
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A service binary, its stdout (JSON log lines) kept in a file; killed on drop.
struct Service {
    child: Child,
    log: PathBuf,
    base: String,
}

impl Service {
    fn start(binary: &str, dir: &TempDir, vars: &[(&str, String)]) -> Self {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_wharf")).with_file_name(binary);
        assert!(bin.is_file(), "{} missing: build with `cargo test --workspace`", bin.display());
        let port = free_port();
        let log = dir.path().join(format!("{binary}.log"));
        let mut command = Command::new(bin);
        command
            .env_clear()
            .env("PORT", port.to_string())
            .env("DATABASE_URL", dir.sqlite_url(&format!("{binary}.db")))
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join(format!("{binary}.stderr"))).unwrap());
        for (name, value) in vars {
            command.env(name, value);
        }
        let child = command.spawn().unwrap();
        let mut service = Self { child, log, base: format!("http://127.0.0.1:{port}") };
        service.wait_ready(binary);
        service
    }

    fn wait_ready(&mut self, binary: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = reqwest::blocking::Client::new();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "{binary} exited during start-up ({status}): {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if client.get(format!("{}/health/ready", self.base)).send().is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "{binary} not ready within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the service with SIGTERM-like grace: its telemetry guard flushes what is batched.
    fn stop(mut self) -> Vec<Value> {
        // std has no SIGTERM; `kill` from procps does, and every CI image has it.
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "service did not stop within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}")))
            .collect()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bus settings of orders and notifications over RabbitMQ, on a queue of their own.
fn rabbitmq() -> Vec<(&'static str, String)> {
    let amqp = std::env::var("WHARF_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    vec![("BUS", "rabbitmq".to_owned()), ("AMQP_URL", amqp), ("BUS_QUEUE", unique_queue())]
}

/// The bus settings over the SQS API at `WHARF_TEST_SQS_ENDPOINT` (moto), on a queue of their own
/// that the services provision.
fn sqs() -> Vec<(&'static str, String)> {
    let endpoint = std::env::var("WHARF_TEST_SQS_ENDPOINT")
        .expect("WHARF_TEST_SQS_ENDPOINT (a moto server) is required: eval \"$(scripts/dev-services.sh up)\"");
    let credential = |name: &str| std::env::var(name).unwrap_or_else(|_| "test".to_owned());
    vec![
        ("BUS", "sqs".to_owned()),
        ("BUS_PROVISION", "true".to_owned()),
        ("BUS_QUEUE", unique_queue()),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned())),
        ("AWS_ACCESS_KEY_ID", credential("AWS_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY", credential("AWS_SECRET_ACCESS_KEY")),
    ]
}

fn unique_queue() -> String {
    format!("trace-test-{}", uuid::Uuid::new_v4().simple())
}

#[test]
fn one_order_is_one_trace_across_three_processes_over_rabbitmq() {
    one_order_is_one_trace_across_three_processes(&rabbitmq());
}

#[test]
fn one_order_is_one_trace_across_three_processes_over_sqs() {
    one_order_is_one_trace_across_three_processes(&sqs());
}

/// Places one order through the three binaries, orders and notifications talking over `bus`,
/// and checks the trace the receiver got and the logs joined to it.
fn one_order_is_one_trace_across_three_processes(bus: &[(&'static str, String)]) {
    let receiver = Receiver::start();
    let dir = TempDir::new("trace-processes");
    let otel = ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.clone());

    let products = Service::start("products", &dir, &[otel.clone(), ("SEED_DEMO_DATA", "false".into())]);
    let mut vars = vec![otel.clone(), ("SEND_DELAY_EMAIL_MS", "0".to_owned())];
    vars.extend(bus.iter().cloned());
    let notifications = Service::start("notifications", &dir, &vars);
    let mut vars = vec![otel, ("PRODUCTS_URL", products.base.clone()), ("OUTBOX_POLL_MS", "100".to_owned())];
    vars.extend(bus.iter().cloned());
    let orders = Service::start("orders", &dir, &vars);

    let client = reqwest::blocking::Client::new();
    let product: Value = client
        .post(format!("{}/api/products", products.base))
        .json(&json!({"name": "Traced lamp", "price": 12.5, "stock": 5}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let correlation = format!("trace-processes-{}", uuid::Uuid::new_v4());
    let caller_trace = uuid::Uuid::new_v4().simple().to_string();
    let tracestate = "wharf=1,congo=t61rcWkgMzE";
    let placed = client
        .post(format!("{}/api/orders", orders.base))
        .header("x-correlation-id", &correlation)
        .header("traceparent", format!("00-{caller_trace}-00f067aa0ba902b7-01"))
        .header("tracestate", tracestate)
        .json(&json!({"productId": product["id"], "quantity": 1, "customerEmail": "ada@example.com"}))
        .send()
        .unwrap();
    assert_eq!(placed.status(), 201);
    let order_id = placed.json::<Value>().unwrap()["id"].as_i64().unwrap();

    // Sent, then every process stopped: SIGTERM flushes each one's batch of spans.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list: Value =
            client.get(format!("{}/api/notifications", notifications.base)).send().unwrap().json().unwrap();
        let sent =
            list.as_array().unwrap().iter().any(|n| {
                n["status"] == "Sent" && n["message"].as_str().unwrap_or("").contains(&format!("#{order_id}"))
            });
        if sent {
            break;
        }
        assert!(Instant::now() < deadline, "order {order_id} not notified within 30 s: {list}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let orders_log = orders.stop();
    let notifications_log = notifications.stop();
    let products_log = products.stop();

    let spans = receiver.spans();
    let by_id: HashMap<&str, &Received> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let order_server = spans
        .iter()
        .find(|s| s.kind == 2 && s.name == "POST /api/orders" && s.service == "OrderService")
        .unwrap_or_else(|| panic!("no OrderService SERVER span for POST /api/orders among {spans:#?}"));
    let trace = order_server.trace_id.clone();
    assert_eq!(trace, caller_trace, "the order request continues the caller's trace");
    assert_eq!(order_server.parent_span_id, "00f067aa0ba902b7");
    let in_trace = |what: &str, matches: &dyn Fn(&Received) -> bool| -> &Received {
        let found: Vec<&Received> = spans.iter().filter(|s| s.trace_id == trace && matches(s)).collect();
        assert_eq!(found.len(), 1, "expected one {what} span in trace {trace}; received {spans:#?}");
        found[0]
    };
    let parent_of = |span: &Received| by_id.get(span.parent_span_id.as_str()).map(|p| p.name.clone());

    let lookup = in_trace("products lookup", &|s| {
        s.kind == 3 && s.service == "OrderService" && s.name == "GET /api/products/{id}"
    });
    assert_eq!(lookup.parent_span_id, order_server.span_id);
    let product_server = in_trace("products SERVER", &|s| s.kind == 2 && s.service == "ProductService");
    assert_eq!(product_server.parent_span_id, lookup.span_id, "products continues the traceparent it was sent");
    let publish = in_trace("publish", &|s| s.kind == 4 && s.service == "OrderService");
    assert_eq!(publish.parent_span_id, order_server.span_id, "the outbox row carried the request's context");
    let consume = in_trace("consume", &|s| s.kind == 5 && s.service == "NotificationService");
    assert_eq!(
        consume.parent_span_id,
        publish.span_id,
        "the AMQP headers carried the producer's context: {:?}",
        parent_of(consume)
    );
    let send = in_trace("send", &|s| s.service == "NotificationService" && s.name.starts_with("send "));
    assert_eq!(send.parent_span_id, consume.span_id, "the send is a child of the consume");
    assert_eq!(publish.trace_state, tracestate, "the outbox row kept the caller's tracestate");
    assert_eq!(consume.trace_state, tracestate, "the bus metadata carried the caller's tracestate");

    // The logs, joined to the trace.
    let lines_for = |log: &[Value]| -> Vec<Value> {
        log.iter().filter(|line| line["correlationId"] == correlation.as_str()).cloned().collect()
    };
    let order_lines = lines_for(&orders_log);
    assert!(
        order_lines.iter().any(|l| l["message"] == "request" && l["route"] == "/api/orders"),
        "the orders access log line for the request: {orders_log:#?}"
    );
    for line in &order_lines {
        assert_eq!(line["traceId"], trace.as_str(), "orders line without the trace id: {line}");
        assert_eq!(line["service"], "orders", "{line}");
        assert!(line["spanId"].is_string() && line["timestamp"].is_string() && line["level"].is_string(), "{line}");
    }
    let sent_lines = lines_for(&notifications_log);
    assert!(
        sent_lines.iter().any(|l| l["message"] == "notification sent"),
        "the notifications line for the send: {notifications_log:#?}"
    );
    for line in &sent_lines {
        assert_eq!(line["traceId"], trace.as_str(), "notifications line without the trace id: {line}");
        assert_eq!(line["service"], "notifications", "{line}");
    }
    // Every line, inside a request or a handler or not, names its service the same way.
    for (log, service) in [(&products_log, "products"), (&orders_log, "orders"), (&notifications_log, "notifications")]
    {
        for line in log {
            assert_eq!(line["service"], service, "{line}");
        }
    }
    // Probes are not logged at info.
    assert!(
        !orders_log.iter().any(|l| l["message"] == "request" && l["path"] == "/health/ready"),
        "readiness probes were logged at info"
    );
}
