//! Black-box tests of `/admin/dlq`: off by default; with `ADMIN_ENABLED`, dead letters are listed
//! with their reason and attempts, replayed (and handled again), and purged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{default_queue, memory_bus, order_placed, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dlq_endpoints_are_not_mounted_unless_enabled() {
    let server = start(memory_bus(2), &default_queue(), &[]).await;
    for (method, path) in [("GET", "/admin/dlq"), ("DELETE", "/admin/dlq"), ("POST", "/admin/dlq/replay")] {
        let request = server.client.request(method.parse().unwrap(), server.url(path));
        let response = request.json(&json!({"all": true})).send().await.unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
    }
}

/// Waits until the DLQ listing holds `count` messages.
async fn listing(server: &support::Server, count: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let listing = server.get_json("/admin/dlq").await;
        if listing["count"] == count || tokio::time::Instant::now() > deadline {
            return listing;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_replayed_and_purged() {
    let queue = default_queue();
    let server = start(memory_bus(2), &queue, &[("ADMIN_ENABLED", "true"), ("SEND_ATTEMPTS", "1")]).await;
    assert_eq!(listing(&server, 0).await["count"], 0);
    for order in [41, 42] {
        server.bus.publish(&queue, &order_placed(order, &format!("o{order}@fail.test"))).await.unwrap();
    }

    let listed = listing(&server, 2).await;
    assert_eq!(listed["count"], 2, "{listed}");
    assert_eq!(listed["backend"], "memory");
    assert_eq!(listed["maxAttempts"], 2);
    assert_eq!(listed["deadLetterQueue"], format!("{}-dlq", queue.as_str()));
    // The two are handled concurrently: either may have been dead-lettered first.
    let first = listed["messages"].as_array().unwrap().iter().find(|m| m["body"]["data"]["orderId"] == 41).unwrap();
    assert_eq!(first["eventType"], "OrderPlaced");
    assert_eq!(first["attempts"], 2, "dead-lettered after BUS_MAX_ATTEMPTS");
    assert!(first["reason"].as_str().unwrap().contains("fail.test"), "{first}");
    assert!(first["deadLetteredAt"].is_string());
    assert_eq!(first["body"]["data"]["customerEmail"], "o41@fail.test", "the body is shown as JSON");
    assert_eq!(first["correlationId"], "corr-41");

    // Bad selections are 400s naming the field; nothing moves.
    for body in
        [json!({}), json!({"ids": []}), json!({"ids": [1]}), json!({"all": false}), json!({"all": true, "ids": ["x"]})]
    {
        let response = server.client.post(server.url("/admin/dlq/replay")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["errors"].is_object(), "{problem}");
    }
    let response = server.client.get(server.url("/admin/dlq?limit=0")).send().await.unwrap();
    assert_eq!(response.status(), 400);

    // Replaying one by id: it goes back, fails its attempts again, and returns to the DLQ.
    let id = first["id"].as_str().unwrap();
    let replayed: Value = server
        .client
        .post(server.url("/admin/dlq/replay"))
        .json(&json!({"ids": [id, "no-such-id"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replayed["replayed"], 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let listed = server.get_json("/admin/dlq").await;
        let again = listed["messages"].as_array().unwrap().iter().find(|m| m["id"] == id).cloned();
        if let Some(again) = again
            && again["deadLetteredAt"] != first["deadLetteredAt"]
        {
            assert_eq!(again["attempts"], 2, "a fresh attempt count after the replay");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the replayed event was not handled again: {listed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Still one Failed notification per order: the replay reopened it rather than adding one.
    let failed = server.get_json("/api/notifications?status=Failed").await;
    assert_eq!(failed.as_array().unwrap().len(), 2, "{failed}");

    let purged: Value = server.client.delete(server.url("/admin/dlq")).send().await.unwrap().json().await.unwrap();
    assert_eq!(purged["purged"], 2);
    assert_eq!(listing(&server, 0).await["count"], 0);
}
