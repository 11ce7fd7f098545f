//! The order → email backlog: slow deliveries are timers, not workers; a growing backlog shows in
//! `/metrics` and turns `/health` degraded, and both recover when it drains; the queue behind the
//! consumer, its dead letters and the order → email delay are on `/metrics` too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{default_queue, memory_bus, order_placed, start};

/// A `wharf_…` sample's value from the Prometheus text of `/metrics` (`name` may carry labels:
/// `wharf_bus_queue_depth{queue="…"}`), `None` when the series is absent.
async fn sample(server: &support::Server, name: &str) -> Option<f64> {
    let text = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map(|value| value.trim().parse().unwrap())
}

/// A series that must be on `/metrics`.
async fn gauge(server: &support::Server, name: &str) -> f64 {
    sample(server, name).await.unwrap_or_else(|| panic!("{name} is not on /metrics"))
}

/// Waits until the series satisfies `wanted`, and returns its value.
async fn until(server: &support::Server, name: &str, wanted: impl Fn(f64) -> bool) -> f64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let value = sample(server, name).await;
        if let Some(value) = value.filter(|v| wanted(*v)) {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "{name} stayed {value:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sender_worker_keeps_hundreds_of_slow_deliveries_in_flight() {
    let queue = default_queue();
    let bus = memory_bus(5);
    let vars =
        [("SENDERS", "1"), ("SEND_CONCURRENCY", "300"), ("CONSUMER_PREFETCH", "300"), ("SEND_DELAY_EMAIL_MS", "1000")];
    let server = start(bus.clone(), &queue, &vars).await;
    for order in 1..=300 {
        bus.publish(&queue, &order_placed(order, &format!("buyer{order}@example.com"))).await.unwrap();
    }
    // One worker delivering one email at a time would need 300 s; started deliveries wait on
    // their own timers, so the whole batch is a few seconds.
    let all = server.wait_sent(300, Duration::from_secs(30)).await;
    let sent = all.iter().filter(|n| n["status"] == "Sent").count();
    assert_eq!(sent, 300, "every event delivered once");
    assert_eq!(all.len(), 300, "and no notification twice");
    // A delivery leaves the in-flight count just after its Sent is stored.
    until(&server, "wharf_sender_in_flight", |in_flight| in_flight == 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_degrades_health_and_shows_in_metrics_until_it_drains() {
    let queue = default_queue();
    let bus = memory_bus(5);
    let vars = [("SEND_DELAY_EMAIL_MS", "3000"), ("BACKLOG_MAX_AGE_SECS", "1")];
    let server = start(bus.clone(), &queue, &vars).await;
    let health = server.get_json("/health").await;
    assert_eq!(health["status"], "healthy", "{health}");

    for order in 1..=20 {
        bus.publish(&queue, &order_placed(order, &format!("slow{order}@example.com"))).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let health: Value = server.get_json("/health").await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["checks"]["backlog"]["status"], "degraded", "{health}");
    let ready = server.client.get(server.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "behind is not unready: the service still takes events");
    assert_eq!(gauge(&server, "wharf_notifications_unsent").await, 20.0);
    assert!(gauge(&server, "wharf_notifications_oldest_unsent_age_seconds").await >= 1.0);

    server.wait_sent(20, Duration::from_secs(20)).await;
    let health = server.get_json("/health").await;
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(gauge(&server, "wharf_notifications_unsent").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_its_dead_letters_and_the_order_to_email_delay_show_in_metrics() {
    let queue = default_queue();
    let depth = format!("wharf_bus_queue_depth{{queue=\"{queue}\"}}");
    let dead = format!("wharf_bus_dlq_depth{{queue=\"{queue}\"}}");
    // One attempt: the failing recipient's event is dead-lettered on its first delivery.
    let bus = memory_bus(1);
    let vars = [("CONSUMER_PREFETCH", "4"), ("SEND_DELAY_EMAIL_MS", "2000")];
    let server = start(bus.clone(), &queue, &vars).await;
    until(&server, &depth, |v| v == 0.0).await;
    assert_eq!(gauge(&server, &dead).await, 0.0);
    assert_eq!(gauge(&server, "wharf_consumer_in_flight").await, 0.0);

    bus.publish(&queue, &order_placed(100, "nobody@fail.test")).await.unwrap();
    for order in 1..=20 {
        bus.publish(&queue, &order_placed(order, &format!("queued{order}@example.com"))).await.unwrap();
    }
    // Four events in the consumer at a time, two seconds each: the rest wait in the queue.
    until(&server, "wharf_consumer_in_flight", |v| v == 4.0).await;
    let waiting = until(&server, &depth, |v| v > 0.0).await;
    assert!(waiting <= 17.0, "at most 21 - 4 wait: {waiting}");

    server.wait_sent(20, Duration::from_secs(30)).await;
    until(&server, &dead, |v| v == 1.0).await;
    until(&server, &depth, |v| v == 0.0).await;
    assert_eq!(gauge(&server, "wharf_consumer_in_flight").await, 0.0);
    assert_eq!(gauge(&server, "wharf_order_to_email_seconds_count").await, 20.0, "one per email Sent");
    let total = gauge(&server, "wharf_order_to_email_seconds_sum").await;
    assert!(total >= 20.0 * 2.0, "each email took at least its 2 s send: {total}");
}
