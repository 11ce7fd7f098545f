//! OrderPlaced → notifications, on every bus backend: memory always; RabbitMQ and the SQS API
//! (moto) with `--features integration`. Counted through the real HTTP API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::{Server, order_placed, start, unique};
use wharf_bus::{Bus, QueueName};

/// OrderPlaced events in the volume test, on every backend.
const EVENTS: usize = 1000;

/// A bus on a fresh queue with the given max attempts.
struct Backend {
    bus: Arc<dyn Bus>,
    queue: QueueName,
}

async fn memory(max_attempts: u32) -> Backend {
    let queue = QueueName::parse(&unique("notify")).unwrap();
    let bus = support::memory_bus(max_attempts);
    bus.provision(&queue).await.unwrap();
    Backend { bus, queue }
}

#[cfg(feature = "integration")]
async fn rabbitmq(max_attempts: u32) -> Backend {
    let queue = QueueName::parse(&unique("notify")).unwrap();
    let config = wharf_bus::BusConfig {
        backend: wharf_bus::BackendKind::RabbitMq,
        amqp_url: std::env::var("WHARF_TEST_AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
        queue: queue.clone(),
        max_attempts,
        ..wharf_bus::BusConfig::memory()
    };
    let bus: Arc<dyn Bus> = Arc::new(wharf_bus::RabbitBus::with_connection_name(&config, queue.as_str()));
    bus.provision(&queue).await.expect("RabbitMQ is required by the integration tier");
    Backend { bus, queue }
}

#[cfg(feature = "integration")]
async fn sqs(max_attempts: u32) -> Backend {
    let queue = QueueName::parse(&unique("notify")).unwrap();
    let config = wharf_bus::BusConfig {
        backend: wharf_bus::BackendKind::Sqs,
        aws_endpoint_url: Some(
            std::env::var("WHARF_TEST_SQS_ENDPOINT").expect("WHARF_TEST_SQS_ENDPOINT: see scripts/dev-services.sh"),
        ),
        aws_region: Some("us-east-1".into()),
        queue: queue.clone(),
        max_attempts,
        provision: true,
        ..wharf_bus::BusConfig::memory()
    };
    let bus = wharf_bus::connect(&config).await.expect("the SQS API is required by the integration tier");
    Backend { bus, queue }
}

async fn serve(backend: &Backend, vars: &[(&str, &str)]) -> Server {
    start(backend.bus.clone(), &backend.queue, vars).await
}

async fn every_event_makes_exactly_one_sent_notification_even_delivered_twice(backend: Backend) {
    let server = serve(&backend, &[("CONSUMER_PREFETCH", "32"), ("SENDERS", "32")]).await;
    let n = EVENTS;
    for order in 0..n {
        let envelope = order_placed(i64::try_from(order).unwrap() + 1, &format!("c{order}@example.com"));
        // The same event twice, as a redelivering broker or a re-publishing relay would.
        backend.bus.publish(&backend.queue, &envelope).await.unwrap();
        backend.bus.publish(&backend.queue, &envelope).await.unwrap();
    }
    server.wait_sent(n, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = server.all().await;
    assert_eq!(all.len(), n, "exactly one notification per event");
    assert!(all.iter().all(|n| n["status"] == "Sent" && n["type"] == "Email"));
    let orders: BTreeSet<i64> = all.iter().map(|n| n["orderId"].as_i64().unwrap()).collect();
    assert_eq!(orders.len(), n);
    let first = all.iter().find(|n| n["orderId"] == 1).unwrap();
    assert_eq!(first["recipient"], "c0@example.com");
    assert!(first["message"].as_str().unwrap().contains("#1"));
}

async fn a_failing_recipient_is_dead_lettered_after_max_attempts(backend: Backend) {
    let server = serve(&backend, &[]).await;
    backend.bus.publish(&backend.queue, &order_placed(77, "x@fail.test")).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let dead = loop {
        let dead = backend.bus.dead_letters(&backend.queue, 10).await.unwrap();
        if !dead.is_empty() || tokio::time::Instant::now() > deadline {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(dead.len(), 1, "the event is in the DLQ");
    let letter = &dead[0];
    assert_eq!(letter.attempts, Some(backend.bus.max_attempts()), "after exactly BUS_MAX_ATTEMPTS attempts");
    let reason = letter.reason.clone().unwrap_or_default();
    assert!(reason.contains("fail.test"), "the reason is visible: {reason}");
    assert_eq!(letter.envelope().unwrap().decode::<wharf_events::OrderPlaced>().unwrap().order_id, 77);
    let failed: Vec<Value> = server.get_json("/api/notifications?status=Failed").await.as_array().cloned().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["recipient"], "x@fail.test");
}

async fn killing_the_consumer_and_senders_mid_processing_loses_nothing(backend: Backend) {
    // Every kill of the consumer releases the events it holds, and their next delivery counts as
    // another attempt (as on SQS and RabbitMQ). Six kills within one delivery window would charge
    // every held event six attempts, past BUS_MAX_ATTEMPTS, if the consumer held all 300 at once:
    // a small prefetch keeps most events queued, and so uncharged, while the consumer is killed.
    let vars = [
        ("SEND_DELAY_EMAIL_MS", "5-30"),
        ("SUPERVISOR_MAX_RESTARTS", "10000"),
        ("SENDERS", "8"),
        ("CONSUMER_PREFETCH", "16"),
    ];
    let server = serve(&backend, &vars).await;
    let n = 300;
    for order in 0..n {
        let envelope = order_placed(i64::try_from(order).unwrap() + 1, &format!("k{order}@example.com"));
        backend.bus.publish(&backend.queue, &envelope).await.unwrap();
    }
    let consumer = format!("{}/order-events", server.namespace);
    let senders = format!("{}/senders", server.namespace);
    for round in 0..12 {
        let victim = if round % 2 == 0 { consumer.clone() } else { format!("{senders}/{}", round % 8) };
        let _ = wharf_actors::chaos::kill(&victim);
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    server.wait_sent(n, Duration::from_secs(120)).await;
    // Give any duplicate a moment to show before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = server.all().await;
    assert_eq!(all.len(), n, "none lost, none duplicated");
    assert_eq!(all.iter().filter(|n| n["status"] == "Sent").count(), n);
    let health = server.client.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("wharf_actor_restarts_total"), "restarts exported");
}

macro_rules! suite {
    ($($case:ident: $attempts:expr),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $case() { super::$case(super::memory($attempts).await).await })*
        }
        #[cfg(feature = "integration")]
        mod rabbitmq {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $case() { super::$case(super::rabbitmq($attempts).await).await })*
        }
        #[cfg(feature = "integration")]
        mod sqs {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $case() { super::$case(super::sqs($attempts).await).await })*
        }
    };
}

suite!(
    every_event_makes_exactly_one_sent_notification_even_delivered_twice: 5,
    a_failing_recipient_is_dead_lettered_after_max_attempts: 3,
    killing_the_consumer_and_senders_mid_processing_loses_nothing: 5,
);
