//! The order → email backlog: slow deliveries are timers, not workers; a growing backlog shows in
//! `/metrics` and turns `/health` degraded, and both recover when it drains.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{default_queue, memory_bus, order_placed, start};

/// A `wharf_…` gauge's value from the Prometheus text of `/metrics`.
async fn gauge(server: &support::Server, name: &str) -> f64 {
    let text = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} is not on /metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap()
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
    assert_eq!(gauge(&server, "wharf_sender_in_flight").await, 0.0);
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
