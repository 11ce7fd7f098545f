//! Black-box tests of the product gateway over real HTTP: against the real products service
//! started in-process, and against tiny scripted servers for what products would rarely do on
//! purpose (hang, fail, throttle, refuse).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orders::product_gateway::{
    BreakerState, GatewayConfig, GatewayError, Lookup, ProductGateway, ProductSnapshot, Source, product_gateway,
};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wharf_actors::{Liveness, RestartPolicy, Supervisor, SupervisorHandle};
use wharf_edge::{Check, CheckOutcome, CheckStatus};
use wharf_runtime::{Env, RunningService};

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

// ---- the gateway under test -----------------------------------------------------------------

/// Small timeouts and backoffs so failures play out in milliseconds.
fn config(url: &str) -> GatewayConfig {
    GatewayConfig {
        products_url: url.trim_end_matches('/').to_owned(),
        timeout: Duration::from_millis(500),
        retries: 3,
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(2),
        breaker_failures: 5,
        breaker_open: Duration::from_secs(30),
        cache_size: 100,
        concurrency: 4,
        queue: 16,
    }
}

/// A gateway running under its own supervisor, with its metrics registry.
struct TestGateway {
    gateway: ProductGateway,
    registry: Registry,
    supervisor: SupervisorHandle,
}

impl TestGateway {
    async fn start(config: GatewayConfig) -> Self {
        let mut registry = Registry::default();
        let (spec, gateway) = product_gateway(config, RestartPolicy::default(), &mut registry);
        let supervisor =
            Supervisor::start(unique("orders-test"), RestartPolicy::default(), Liveness::new(), vec![spec])
                .await
                .expect("gateway pool starts");
        Self { gateway, registry, supervisor }
    }

    async fn lookup(&self, id: i64) -> Result<Lookup, GatewayError> {
        self.gateway.lookup(id, "test-correlation").await
    }

    /// The value of one series, e.g. `products_lookups_total{outcome="live"}`.
    fn metric(&self, series: &str) -> f64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("series {series} not found in:\n{text}"))
    }

    /// Like [`Self::metric`], for a labelled series that may not exist yet.
    fn metric_or_zero(&self, series: &str) -> f64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
    }

    async fn health(&self) -> CheckOutcome {
        let check = self.gateway.health();
        assert_eq!(check.name(), "products");
        check.check().await
    }

    async fn stop(self) {
        self.supervisor.shutdown().await;
    }
}

fn live(result: Result<Lookup, GatewayError>) -> ProductSnapshot {
    match result {
        Ok(Lookup::Found { product, source: Source::Live }) => product,
        other => panic!("expected a live product, got {other:?}"),
    }
}

fn fallback(result: Result<Lookup, GatewayError>) -> (ProductSnapshot, Duration) {
    match result {
        Ok(Lookup::Found { product, source: Source::Fallback { age } }) => (product, age),
        other => panic!("expected a fallback product, got {other:?}"),
    }
}

fn unavailable(result: Result<Lookup, GatewayError>) -> (Duration, String) {
    match result {
        Err(GatewayError::Unavailable { retry_after, reason }) => (retry_after, reason),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

// ---- the real products service --------------------------------------------------------------

/// products over a SQLite file in `dir`, listening on `port` (0: any).
async fn start_products(dir: &std::path::Path, port: u16) -> RunningService {
    std::fs::create_dir_all(dir).unwrap();
    let mut env = Env::from_pairs([
        ("PORT", port.to_string()),
        ("DATABASE_URL", format!("sqlite://{}/products.db?mode=rwc", dir.display())),
        ("SHUTDOWN_GRACE_SECS", "1".to_owned()),
    ]);
    let mut config = products::ProductsConfig::from_env(&mut env);
    env.finish().expect("test configuration is valid");
    config.actor_namespace = unique("products");
    products::start(config).await.expect("products starts")
}

async fn create_product(base: &str, name: &str, price: f64, stock: i64) -> i64 {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/products"))
        .json(&serde_json::json!({ "name": name, "price": price, "stock": stock }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    body["id"].as_i64().unwrap()
}

// ---- scripted servers -----------------------------------------------------------------------

/// What a scripted server does with its n-th request (0-based).
#[derive(Clone)]
enum Reply {
    /// Answer with this status, extra headers and body, then close the connection.
    Respond { status: u16, headers: Vec<(&'static str, String)>, body: String },
    /// Read the request and never answer.
    Silent,
}

fn respond(status: u16, body: String) -> Reply {
    Reply::Respond { status, headers: Vec::new(), body }
}

fn product_json(id: i64) -> String {
    serde_json::json!({
        "id": id, "name": format!("stub product {id}"), "price": 12.5, "description": "",
        "stock": 4, "createdAt": "2025-01-01T00:00:00Z", "updatedAt": "2025-01-01T00:00:00Z"
    })
    .to_string()
}

/// A request as the scripted server saw it.
struct Seen {
    at: Instant,
    /// The request line and headers.
    head: String,
}

/// A one-request-per-connection HTTP server that answers from a script and records requests.
struct Stub {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Stub {
    async fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(script);
        let accept = tokio::spawn({
            let seen = Arc::clone(&seen);
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(serve(socket, Arc::clone(&seen), Arc::clone(&script)));
                }
            }
        });
        Self { url, seen, accept }
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(mut socket: TcpStream, seen: Arc<Mutex<Vec<Seen>>>, script: Arc<impl Fn(usize) -> Reply>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let index = {
        let mut seen = seen.lock().unwrap();
        seen.push(Seen { at: Instant::now(), head: String::from_utf8_lossy(&head).into_owned() });
        seen.len() - 1
    };
    match script(index) {
        Reply::Silent => std::future::pending::<()>().await,
        Reply::Respond { status, headers, body } => {
            let mut response = format!(
                "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                response.push_str(&format!("{name}: {value}\r\n"));
            }
            response.push_str("\r\n");
            response.push_str(&body);
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    }
}

// ---- live answers ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_lookups_return_exact_snapshots_and_not_found() {
    let dir = std::env::temp_dir().join(unique("wharf-gateway-live"));
    let products = start_products(&dir, 0).await;
    let base = format!("http://{}", products.local_addr());
    let lamp = create_product(&base, "Desk lamp", 19.99, 7).await;
    let safe = create_product(&base, "Vault", 1_234_567.89, 0).await;
    let gw = TestGateway::start(config(&base)).await;

    let product = live(gw.lookup(lamp).await);
    assert_eq!(product, ProductSnapshot { id: lamp, name: "Desk lamp".into(), price_cents: 1999, stock: 7 });
    assert_eq!(live(gw.lookup(safe).await).price_cents, 123_456_789);
    assert_eq!(gw.lookup(safe + 1000).await, Ok(Lookup::NotFound));
    assert_eq!(gw.metric("products_cache_entries"), 2.0);

    // A 404 for a product that used to exist evicts it: it must not come back as a fallback.
    let deleted = reqwest::Client::new().delete(format!("{base}/api/products/{safe}")).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(gw.lookup(safe).await, Ok(Lookup::NotFound));
    assert_eq!(gw.metric("products_cache_entries"), 1.0);

    assert_eq!(gw.metric(r#"products_lookups_total{outcome="live"}"#), 2.0);
    assert_eq!(gw.metric(r#"products_lookups_total{outcome="not_found"}"#), 2.0);
    assert_eq!(gw.metric("products_breaker_state"), 0.0);
    assert_eq!(gw.health().await.status, CheckStatus::Up);

    gw.stop().await;
    products.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attempt_carries_the_correlation_id() {
    let stub = Stub::start(|n| if n == 0 { respond(503, String::new()) } else { respond(200, product_json(5)) }).await;
    let gw = TestGateway::start(config(&stub.url)).await;

    let product = live(gw.gateway.lookup(5, "corr-4711").await);
    assert_eq!(product.price_cents, 1250);
    assert_eq!(stub.requests(), 2);
    for seen in stub.seen.lock().unwrap().iter() {
        let head = seen.head.to_ascii_lowercase();
        assert!(head.starts_with("get /api/products/5 http/1.1"), "{head}");
        assert!(head.contains("\r\nx-correlation-id: corr-4711\r\n"), "{head}");
    }
    gw.stop().await;
}

// ---- products down: breaker, cache, recovery ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_products_opens_the_circuit_serves_the_cache_and_recovers_by_itself() {
    let dir = std::env::temp_dir().join(unique("wharf-gateway-outage"));
    let products = start_products(&dir, 0).await;
    let port = products.local_addr().port();
    let base = format!("http://{}", products.local_addr());
    let lamp = create_product(&base, "Desk lamp", 19.99, 7).await;
    let open_for = Duration::from_millis(1500);
    let gw = TestGateway::start(GatewayConfig { breaker_open: open_for, ..config(&base) }).await;
    live(gw.lookup(lamp).await);

    products.shutdown().await;

    // 1 attempt + 3 retries = 4 failures: still closed, and the cached lamp is the answer.
    let (product, age) = fallback(gw.lookup(lamp).await);
    assert_eq!(product.price_cents, 1999);
    assert!(age > Duration::ZERO && age < Duration::from_secs(10), "{age:?}");
    assert_eq!(gw.gateway.breaker_state(), BreakerState::Closed);
    assert_eq!(connection_retries(&gw), 3.0);

    // The 5th failed attempt opens the circuit; an uncached product has no answer.
    let (retry_after, reason) = unavailable(gw.lookup(lamp + 1).await);
    assert!(retry_after >= Duration::from_secs(1), "{retry_after:?}");
    assert!(reason.contains("connect"), "{reason}");
    assert_eq!(gw.gateway.breaker_state(), BreakerState::Open);
    assert_eq!(gw.metric("products_breaker_state"), 2.0);
    assert_eq!(gw.metric(r#"products_breaker_transitions_total{to="open"}"#), 1.0);
    let health = gw.health().await;
    assert_eq!(health.status, CheckStatus::Degraded);
    let detail = health.detail.unwrap();
    assert!(detail.contains("circuit open since") && detail.contains("(1 products)"), "{detail}");

    // While open: answered at once, without an attempt.
    let started = Instant::now();
    fallback(gw.lookup(lamp).await);
    let (retry_after, _) = unavailable(gw.lookup(lamp + 1).await);
    // Bounds in these tests are relative to the configured timeouts, with room for a loaded CI
    // machine: what they prove is that no attempt was waited for (the counters prove the rest).
    assert!(started.elapsed() < Duration::from_millis(450), "{:?}", started.elapsed());
    assert!(retry_after >= Duration::from_secs(1));
    assert_eq!(gw.metric("products_breaker_rejections_total"), 2.0);
    assert_eq!(connection_retries(&gw), 3.0);
    assert_eq!(gw.metric(r#"products_lookups_total{outcome="fallback"}"#), 2.0);
    assert_eq!(gw.metric(r#"products_lookups_total{outcome="unavailable"}"#), 2.0);

    // products comes back on the same address; with no lookup at all, the gateway's own probe
    // half-opens and closes the circuit.
    let products = start_products(&dir, port).await;
    let deadline = Instant::now() + Duration::from_secs(8);
    while gw.health().await.status != CheckStatus::Up {
        assert!(Instant::now() < deadline, "the circuit did not close by itself");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gw.gateway.breaker_state(), BreakerState::Closed);
    assert_eq!(gw.metric("products_breaker_state"), 0.0);
    assert!(gw.metric(r#"products_breaker_transitions_total{to="half_open"}"#) >= 1.0);
    assert!(gw.metric(r#"products_breaker_transitions_total{to="closed"}"#) >= 1.0);
    assert_eq!(live(gw.lookup(lamp).await).price_cents, 1999);

    gw.stop().await;
    products.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Retries after connection failures: refused, or (for a kept-alive connection the stopped
/// server closed) broken.
fn connection_retries(gw: &TestGateway) -> f64 {
    gw.metric_or_zero(r#"products_retries_total{reason="connect"}"#)
        + gw.metric_or_zero(r#"products_retries_total{reason="transport"}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_circuit_rejects_without_calling_products() {
    let stub = Stub::start(|_| respond(500, String::new())).await;
    let gw = TestGateway::start(GatewayConfig { breaker_failures: 3, retries: 5, ..config(&stub.url) }).await;

    // The third failed attempt opens the circuit, which ends the retries.
    let (retry_after, _) = unavailable(gw.lookup(1).await);
    assert_eq!(stub.requests(), 3);
    assert_eq!(gw.gateway.breaker_state(), BreakerState::Open);
    assert!(retry_after >= Duration::from_secs(29), "until the probe: {retry_after:?}");

    let started = Instant::now();
    for id in 1..=20 {
        unavailable(gw.lookup(id).await);
    }
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(stub.requests(), 3, "no request reaches products while the circuit is open");
    assert_eq!(gw.metric("products_breaker_rejections_total"), 20.0);
    assert_eq!(gw.health().await.status, CheckStatus::Degraded);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_circuit_lets_a_single_probe_through() {
    // Product 9 is cached, then products fails once (opening the circuit) and hangs afterwards.
    let stub = Stub::start(|n| match n {
        0 => respond(200, product_json(9)),
        1 => respond(500, String::new()),
        _ => Reply::Silent,
    })
    .await;
    let open_for = Duration::from_millis(300);
    let gw = TestGateway::start(GatewayConfig {
        breaker_failures: 1,
        breaker_open: open_for,
        timeout: Duration::from_millis(1500),
        ..config(&stub.url)
    })
    .await;
    live(gw.lookup(9).await);
    fallback(gw.lookup(9).await);
    assert_eq!(gw.gateway.breaker_state(), BreakerState::Open);

    // The gateway probes by itself once the open period is over; the probe hangs.
    let deadline = Instant::now() + Duration::from_secs(3);
    while stub.requests() < 3 {
        assert!(Instant::now() < deadline, "no probe was sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gw.gateway.breaker_state(), BreakerState::HalfOpen);
    assert_eq!(gw.health().await.status, CheckStatus::Degraded);

    // Meanwhile concurrent lookups are served from the cache; none joins the probe.
    let started = Instant::now();
    let lookups: Vec<_> = (0..6).map(|_| gw.lookup(9)).collect();
    for result in futures_util::future::join_all(lookups).await {
        fallback(result);
    }
    assert!(started.elapsed() < Duration::from_millis(450), "{:?}", started.elapsed());
    assert_eq!(stub.requests(), 3);

    // The probe times out and the circuit opens again.
    let deadline = Instant::now() + Duration::from_secs(3);
    while gw.gateway.breaker_state() != BreakerState::Open {
        assert!(Instant::now() < deadline, "the failed probe did not reopen the circuit");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gw.metric(r#"products_breaker_transitions_total{to="open"}"#), 2.0);
    gw.stop().await;
}

// ---- slow products --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_products_fails_over_within_the_timeout_budget() {
    let stub = Stub::start(|n| if n == 0 { respond(200, product_json(3)) } else { Reply::Silent }).await;
    let config = GatewayConfig {
        timeout: Duration::from_millis(200),
        retries: 2,
        breaker_failures: 100,
        max_retry_after: Duration::from_millis(40),
        ..config(&stub.url)
    };
    let budget = config.lookup_budget();
    let gw = TestGateway::start(config).await;
    live(gw.lookup(3).await);

    let started = Instant::now();
    let result = tokio::time::timeout(budget + Duration::from_secs(1), gw.lookup(3)).await.expect("never hangs");
    let elapsed = started.elapsed();
    fallback(result);
    assert!(elapsed >= Duration::from_millis(600), "three attempts of 200 ms: {elapsed:?}");
    assert!(elapsed <= budget + Duration::from_millis(300), "{elapsed:?} over the {budget:?} budget");
    assert_eq!(stub.requests(), 4);
    assert_eq!(gw.metric(r#"products_retries_total{reason="timeout"}"#), 2.0);

    let started = Instant::now();
    let result = tokio::time::timeout(budget + Duration::from_secs(1), gw.lookup(4)).await.expect("never hangs");
    let (_, reason) = unavailable(result);
    assert!(reason.contains("did not answer in time"), "{reason}");
    assert!(started.elapsed() <= budget + Duration::from_millis(300));
    gw.stop().await;
}

// ---- what is retried ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_not_retried_and_does_not_trip_the_circuit() {
    let problem =
        r#"{"type":"urn:wharf:problem:validation","title":"Validation failed","status":400,"detail":"bad id"}"#;
    let stub = Stub::start(move |_| respond(400, problem.to_owned())).await;
    let gw = TestGateway::start(GatewayConfig { breaker_failures: 1, ..config(&stub.url) }).await;

    for attempt in 1..=3 {
        let result = gw.lookup(1).await;
        assert_eq!(result, Err(GatewayError::Refused { status: 400, detail: "bad id".into() }));
        assert_eq!(stub.requests(), attempt, "one request per lookup");
    }
    assert_eq!(gw.gateway.breaker_state(), BreakerState::Closed);
    assert_eq!(gw.metric(r#"products_lookups_total{outcome="refused"}"#), 3.0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_request_timeouts_and_throttling_are_retried() {
    let stub = Stub::start(|n| match n {
        0 => respond(500, String::new()),
        1 => respond(503, String::new()),
        2 => respond(408, String::new()),
        3 => respond(429, String::new()),
        _ => respond(200, product_json(2)),
    })
    .await;
    let gw = TestGateway::start(GatewayConfig { retries: 4, breaker_failures: 10, ..config(&stub.url) }).await;
    assert_eq!(live(gw.lookup(2).await).id, 2);
    assert_eq!(stub.requests(), 5);
    assert_eq!(gw.metric(r#"products_retries_total{reason="server_error"}"#), 2.0);
    assert_eq!(gw.metric(r#"products_retries_total{reason="request_timeout"}"#), 1.0);
    assert_eq!(gw.metric(r#"products_retries_total{reason="throttled"}"#), 1.0);
    gw.stop().await;

    // Retries are bounded.
    let always = Stub::start(|_| respond(502, String::new())).await;
    let gw = TestGateway::start(GatewayConfig { retries: 2, breaker_failures: 10, ..config(&always.url) }).await;
    let (_, reason) = unavailable(gw.lookup(2).await);
    assert!(reason.contains("HTTP 502"), "{reason}");
    assert_eq!(always.requests(), 3);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_up_to_a_bound() {
    let stub = Stub::start(|n| match n {
        0 => Reply::Respond { status: 429, headers: vec![("retry-after", "1".into())], body: String::new() },
        _ => respond(200, product_json(6)),
    })
    .await;
    let gw = TestGateway::start(config(&stub.url)).await;
    live(gw.lookup(6).await);
    let gap = {
        let seen = stub.seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        seen[1].at - seen[0].at
    };
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}, before the asked 1 s");
    gw.stop().await;

    // Asked to wait longer than a request can: no retry, an answer now.
    let stub = Stub::start(|_| Reply::Respond {
        status: 503,
        headers: vec![("retry-after", "3600".into())],
        body: String::new(),
    })
    .await;
    let gw = TestGateway::start(config(&stub.url)).await;
    let started = Instant::now();
    let (retry_after, _) = unavailable(gw.lookup(6).await);
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    assert_eq!(stub.requests(), 1);
    assert!(retry_after >= Duration::from_secs(1));
    gw.stop().await;
}

// ---- the bulkhead ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_sheds_lookups_at_once() {
    let stub = Stub::start(|_| Reply::Silent).await;
    let gw = Arc::new(
        TestGateway::start(GatewayConfig {
            concurrency: 1,
            queue: 1,
            retries: 0,
            timeout: Duration::from_millis(800),
            breaker_failures: 100,
            ..config(&stub.url)
        })
        .await,
    );
    // The first lookup holds the only worker.
    let first = {
        let gw = Arc::clone(&gw);
        tokio::spawn(async move { gw.lookup(1).await })
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while stub.requests() < 1 {
        assert!(Instant::now() < deadline, "the first lookup never reached the server");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Two more race for the one queue slot: whichever comes second must be shed at once, without
    // waiting for the busy worker (a queued lookup waits out its 800 ms timeout).
    let timed = |id| {
        let gw = Arc::clone(&gw);
        tokio::spawn(async move {
            let started = Instant::now();
            let result = gw.lookup(id).await;
            (started.elapsed(), unavailable(result))
        })
    };
    let (second, third) = (timed(2), timed(3));
    let outcomes = [second.await.unwrap(), third.await.unwrap()];
    let shed: Vec<_> = outcomes.iter().filter(|(_, (_, reason))| reason.contains("overloaded")).collect();
    assert_eq!(shed.len(), 1, "exactly one lookup found the queue full: {outcomes:?}");
    let (elapsed, (retry_after, _)) = shed[0];
    assert!(*elapsed < Duration::from_millis(600), "shed at once, not after the busy worker: {elapsed:?}");
    assert!(*retry_after >= Duration::from_secs(1));

    unavailable(first.await.unwrap());
    assert_eq!(stub.requests(), 2, "the shed lookup never reached products");
    Arc::into_inner(gw).expect("no other owner").stop().await;
}
