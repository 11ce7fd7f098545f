//! The outbox under failure: relay killed mid-flight, process stopped before publishing, bus
//! connections dropped, two replicas on one database. Events are counted at the consumer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::{OrdersServer, Products, TempDir, collect, memory_bus, start_orders};
use wharf_bus::Bus;

/// Places `count` orders, `parallel` at a time; returns the created order ids.
async fn place_many(orders: &OrdersServer, product: i64, count: usize, parallel: usize) -> BTreeSet<i64> {
    let mut ids = BTreeSet::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (client, url) = (orders.client.clone(), orders.url("/api/orders"));
        tasks.spawn(async move {
            let body =
                serde_json::json!({"productId": product, "quantity": 1, "customerEmail": format!("c{i}@example.com")});
            let response = client.post(url).json(&body).send().await.unwrap();
            assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
            response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
        });
        if tasks.len() >= parallel {
            ids.insert(tasks.join_next().await.unwrap().unwrap());
        }
    }
    while let Some(id) = tasks.join_next().await {
        ids.insert(id.unwrap());
    }
    ids
}

/// Kills the relay every `every` until `stop` is set and at least 3 kills landed (at most 20 s:
/// the supervisor's backoff grows with each restart); returns how many kills landed.
fn keep_killing(
    relay: String,
    every: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut kills = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while (!stop.load(std::sync::atomic::Ordering::Relaxed) || kills < 3) && tokio::time::Instant::now() < deadline
        {
            if wharf_actors::chaos::kill(&relay).is_ok() {
                kills += 1;
            }
            tokio::time::sleep(every).await;
        }
        kills
    })
}

/// Closes, from the broker's side, the RabbitMQ connections whose client-provided name is
/// `name` — only this test's, so tests running beside it keep theirs.
fn close_rabbitmq_connections(name: &str) -> usize {
    // Tab-separated lines: the pid as `close_connection` takes it, then the client properties.
    let listed = std::process::Command::new("rabbitmqctl")
        .args(["list_connections", "pid", "client_properties", "-q", "--no-table-headers"])
        .output()
        .expect("rabbitmqctl runs");
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let listed = String::from_utf8_lossy(&listed.stdout);
    let mut closed = 0;
    for pid in listed.lines().filter(|line| line.contains(name)).filter_map(|line| line.split('\t').next()) {
        let status = std::process::Command::new("rabbitmqctl")
            .args(["close_connection", pid.trim(), "wharf outbox test"])
            .output()
            .expect("rabbitmqctl runs");
        // A connection may be gone by the time it is closed (it was closing, or reconnecting).
        if status.status.success() {
            closed += 1;
        }
    }
    closed
}

async fn relay_killed_during_creation_loses_nothing(bus: Arc<dyn Bus>, queue: &str, drop_connections: Option<String>) {
    let products = Products::start().await;
    let product = products.create("Busy product", 1.0, 1_000_000).await;
    let dir = TempDir::new("orders");
    let orders = start_orders(
        &products.url(),
        &dir.sqlite_url("orders.db"),
        bus,
        &[("SUPERVISOR_MAX_RESTARTS", "10000"), ("BUS_QUEUE", queue)],
    )
    .await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = keep_killing(format!("{}/outbox-relay", orders.namespace), Duration::from_millis(25), stop.clone());
    let dropper = drop_connections.map(|name| {
        tokio::spawn(async move {
            let mut closed = 0;
            for _ in 0..2 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let name = name.clone();
                closed += tokio::task::spawn_blocking(move || close_rabbitmq_connections(&name)).await.unwrap();
            }
            assert!(closed >= 1, "a broker connection was closed");
        })
    });
    let created = place_many(&orders, product, 150, 8).await;
    if let Some(dropper) = dropper {
        dropper.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let kills = killer.await.unwrap();
    assert!(kills >= 3, "the relay was killed repeatedly ({kills})");

    let received = collect(&orders.bus, &orders.queue, created.len(), Duration::from_secs(30)).await;
    assert_eq!(received.order_ids(), created, "every created order's event arrived");
    assert_eq!(received.distinct(), created.len(), "one event per order");
    eprintln!(
        "orders {} · relay kills {kills} · deliveries {} · distinct events {} (duplicates are re-sends of confirmed-but-unmarked rows)",
        created.len(),
        received.deliveries,
        received.distinct()
    );
    let metrics = orders.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("wharf_outbox_pending 0"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_relay_during_creation_loses_no_event_memory_bus() {
    relay_killed_during_creation_loses_nothing(memory_bus(), "notification-queue", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_written_before_a_crash_are_published_after_restart() {
    let products = Products::start().await;
    let product = products.create("Crash product", 1.0, 1000).await;
    let dir = TempDir::new("orders");
    let bus = memory_bus();
    let mut orders =
        start_orders(&products.url(), &dir.sqlite_url("orders.db"), bus.clone(), &[("OUTBOX_RELAY_ENABLED", "false")])
            .await;
    let created = place_many(&orders, product, 20, 4).await;
    let health: Value = orders.get("/health").await.json().await.unwrap();
    let detail = health["checks"]["outbox"]["detail"].as_str().unwrap();
    assert!(detail.starts_with("20 pending"), "the lag shows in /health: {detail}");
    orders.stop().await;
    assert!(
        collect(&bus, &orders.queue, 1, Duration::from_millis(300)).await.events.is_empty(),
        "nothing was published"
    );

    let restarted = start_orders(&products.url(), &dir.sqlite_url("orders.db"), bus, &[]).await;
    let received = collect(&restarted.bus, &restarted.queue, created.len(), Duration::from_secs(10)).await;
    assert_eq!(received.order_ids(), created);
}

#[cfg(feature = "integration")]
mod integration {
    use super::*;
    use wharf_bus::{BackendKind, BusConfig, QueueName};

    /// A RabbitMQ bus on a fresh queue with a connection named after it, and that name.
    async fn rabbitmq() -> (Arc<dyn Bus>, String) {
        let mut config = BusConfig::memory();
        config.backend = BackendKind::RabbitMq;
        config.amqp_url =
            std::env::var("WHARF_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
        let queue = support::unique("orders-outbox");
        config.queue = QueueName::parse(&queue).unwrap();
        let bus = wharf_bus::RabbitBus::with_connection_name(&config, queue.clone());
        bus.provision(&config.queue).await.expect("RabbitMQ is required by the integration tier");
        (Arc::new(bus), queue)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killing_the_relay_and_the_broker_connections_loses_no_event_rabbitmq() {
        let (bus, queue) = rabbitmq().await;
        relay_killed_during_creation_loses_nothing(bus, &queue, Some(queue.clone())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_replicas_on_one_postgres_database_publish_each_event_once() {
        let products = Products::start().await;
        let product = products.create("Shared product", 1.0, 1_000_000).await;
        let db = wharf_testkit::PgTestDb::create().await;
        let (bus, queue) = rabbitmq().await;
        let vars = [("OUTBOX_POLL_MS", "20"), ("BUS_QUEUE", queue.as_str())];
        let first = start_orders(&products.url(), &db.url, bus.clone(), &vars).await;
        let second = start_orders(&products.url(), &db.url, bus.clone(), &vars).await;
        let (a, b) = tokio::join!(place_many(&first, product, 100, 4), place_many(&second, product, 100, 4));
        let created: BTreeSet<i64> = a.union(&b).copied().collect();
        assert_eq!(created.len(), 200);
        let received = collect(&bus, &first.queue, created.len(), Duration::from_secs(30)).await;
        assert_eq!(received.order_ids(), created);
        assert_eq!(received.deliveries, 200, "no row was published by both replicas");
        drop((first, second));
        db.drop_db().await;
    }
}
