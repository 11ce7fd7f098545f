//! Real products and orders services in-process for black-box tests, plus an event counter on
//! the bus.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use orders::OrdersConfig;
use serde_json::{Value, json};
use wharf_bus::{Bus, BusConfig, MemoryBus, QueueName, SubscribeOptions};
use wharf_events::OrderPlaced;
use wharf_runtime::{Env, RunningService};
pub use wharf_testkit::{TempDir, unique};

/// A products service on a SQLite file; restartable on the same port and data.
pub struct Products {
    pub service: Option<RunningService>,
    pub port: u16,
    pub dir: TempDir,
}

impl Products {
    pub async fn start() -> Self {
        let dir = TempDir::new("products");
        let service = start_products(&dir, 0).await;
        let port = service.local_addr().port();
        Self { service: Some(service), port, dir }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn stop(&mut self) {
        if let Some(service) = self.service.take() {
            service.shutdown().await;
        }
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        self.service = Some(start_products(&self.dir, self.port).await);
    }

    /// Creates a product; returns its id.
    pub async fn create(&self, name: &str, price: f64, stock: i64) -> i64 {
        let response = reqwest::Client::new()
            .post(format!("{}/api/products", self.url()))
            .json(&json!({ "name": name, "price": price, "stock": stock }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }
}

async fn start_products(dir: &TempDir, port: u16) -> RunningService {
    let mut env = Env::from_pairs([
        ("PORT", port.to_string()),
        ("DATABASE_URL", dir.sqlite_url("products.db")),
        ("SHUTDOWN_GRACE_SECS", "1".to_owned()),
    ]);
    let mut config = products::ProductsConfig::from_env(&mut env);
    env.finish().expect("valid products configuration");
    config.actor_namespace = unique("products");
    products::start(config).await.expect("products starts")
}

/// An orders service and what a test needs around it.
pub struct OrdersServer {
    pub service: Option<RunningService>,
    pub base: String,
    pub client: reqwest::Client,
    pub namespace: String,
    pub bus: Arc<dyn Bus>,
    pub queue: QueueName,
}

/// Orders over `database_url` (a fresh SQLite file when `None`), pointed at `products_url`,
/// publishing to `bus`, with extra variables.
pub async fn start_orders(
    products_url: &str,
    database_url: &str,
    bus: Arc<dyn Bus>,
    vars: &[(&str, &str)],
) -> OrdersServer {
    let mut env = Env::from_pairs(vars.iter().copied());
    env.set_default("PORT", "0");
    env.set_default("DATABASE_URL", database_url);
    env.set_default("PRODUCTS_URL", products_url);
    env.set_default("PRODUCTS_TIMEOUT_MS", "300");
    env.set_default("PRODUCTS_RETRIES", "1");
    env.set_default("BREAKER_OPEN_SECS", "1");
    env.set_default("OUTBOX_POLL_MS", "100");
    env.set_default("SHUTDOWN_GRACE_SECS", "2");
    let mut config = OrdersConfig::from_env(&mut env);
    env.finish().expect("valid orders configuration");
    let namespace = unique("orders");
    config.actor_namespace = namespace.clone();
    let queue = config.bus.queue.clone();
    let service = orders::start_with_bus(config, bus.clone()).await.expect("orders starts");
    let base = format!("http://{}", service.local_addr());
    OrdersServer { service: Some(service), base, client: reqwest::Client::new(), namespace, bus, queue }
}

/// A fresh memory bus (the embedded mode's), as a trait object.
pub fn memory_bus() -> Arc<dyn Bus> {
    Arc::new(MemoryBus::new(&BusConfig::memory()))
}

impl OrdersServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn place(&self, product_id: i64, quantity: i64, email: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/orders"))
            .json(&json!({"productId": product_id, "quantity": quantity, "customerEmail": email}))
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn stop(&mut self) {
        if let Some(service) = self.service.take() {
            service.shutdown().await;
        }
    }
}

/// Events received from the bus: by event id, how many times; and the decoded events.
#[derive(Debug, Default)]
pub struct Received {
    pub deliveries: usize,
    pub by_event_id: BTreeMap<String, usize>,
    pub events: Vec<(OrderPlaced, String)>,
}

impl Received {
    pub fn distinct(&self) -> usize {
        self.by_event_id.len()
    }

    pub fn order_ids(&self) -> std::collections::BTreeSet<i64> {
        self.events.iter().map(|(e, _)| e.order_id).collect()
    }
}

/// Consumes (and acks) OrderPlaced events from `queue` until `expected` distinct events arrived
/// or `within` passed.
pub async fn collect(bus: &Arc<dyn Bus>, queue: &QueueName, expected: usize, within: Duration) -> Received {
    let options = SubscribeOptions { prefetch: 50, poll_wait: Duration::from_millis(200), ..Default::default() };
    let mut subscription = bus.subscribe(queue, &options).await.expect("subscribe");
    let mut received = Received::default();
    let deadline = tokio::time::Instant::now() + within;
    while received.distinct() < expected {
        let Ok(next) = tokio::time::timeout_at(deadline, subscription.next()).await else { break };
        let delivery = next.expect("delivery");
        let envelope = delivery.envelope().expect("an envelope").clone();
        received.deliveries += 1;
        let count = received.by_event_id.entry(envelope.id().to_string()).or_default();
        *count += 1;
        if *count == 1 {
            received.events.push((
                envelope.decode::<OrderPlaced>().expect("OrderPlaced v1"),
                envelope.correlation_id().to_owned(),
            ));
        }
        delivery.ack().await.expect("ack");
    }
    // Anything more (duplicates) within a short grace is counted too.
    while let Ok(Ok(delivery)) = tokio::time::timeout(Duration::from_millis(300), subscription.next()).await {
        if let Ok(envelope) = delivery.envelope() {
            received.deliveries += 1;
            *received.by_event_id.entry(envelope.id().to_string()).or_default() += 1;
        }
        delivery.ack().await.expect("ack");
    }
    received
}

/// Asserts a problem+json answer with `status`.
pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    body
}
