//! Black-box tests of the direct send API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{default_queue, memory_bus, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_send_is_accepted_pending_then_sent() {
    let server = start(memory_bus(5), &default_queue(), &[]).await;
    let response = server
        .client
        .post(server.url("/api/notifications/send"))
        .json(&json!({"type": "Email", "recipient": "Ada@Example.COM", "message": "Hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["status"], "Pending");
    assert_eq!(accepted["type"], "Email");
    assert_eq!(accepted["recipient"], "Ada@example.com");
    assert!(accepted.get("sentAt").is_none() && accepted.get("orderId").is_none());

    let mut sent = Value::Null;
    for _ in 0..50 {
        sent = server.get_json(&location).await;
        if sent["status"] == "Sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent["status"], "Sent", "{sent}");
    assert!(sent["sentAt"].is_string());

    let sms = server
        .client
        .post(server.url("/api/notifications/send"))
        .json(&json!({"type": "Sms", "recipient": "+44 20 7946 0958", "message": "Your code is 1234"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sms.status(), 202);
    assert_eq!(sms.json::<Value>().await.unwrap()["recipient"], "+442079460958");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_recipient_ends_failed_after_its_attempts() {
    let server = start(memory_bus(5), &default_queue(), &[("SEND_ATTEMPTS", "2")]).await;
    let response = server
        .client
        .post(server.url("/api/notifications/send"))
        .json(&json!({"type": "Email", "recipient": "x@fail.test", "message": "never arrives"}))
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let mut last = Value::Null;
    for _ in 0..60 {
        last = server.get_json(&location).await;
        if last["status"] == "Failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last["status"], "Failed", "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_400_never_500() {
    let server = start(memory_bus(5), &default_queue(), &[]).await;
    let cases = [
        (json!({"type": "Fax", "recipient": "a@b.co", "message": "m"}), "type"),
        (json!({"type": "email", "recipient": "a@b.co", "message": "m"}), "type"),
        (json!({"type": "Email", "recipient": "+442079460958", "message": "m"}), "recipient"),
        (json!({"type": "Sms", "recipient": "a@b.co", "message": "m"}), "recipient"),
        (json!({"type": "Sms", "recipient": "0207 946 0958", "message": "m"}), "recipient"),
        (json!({"type": "Email", "recipient": "a@b.co", "message": ""}), "message"),
        (json!({"type": "Email", "recipient": "a@b.co", "message": "x".repeat(1001)}), "message"),
        (json!({"type": "Email", "recipient": "a@b.co"}), "message"),
        (json!({"type": 1, "recipient": [], "message": {}}), "type"),
        (json!([]), "body"),
    ];
    for (body, field) in cases {
        let response = server.client.post(server.url("/api/notifications/send")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["errors"][field].is_array(), "{field}: {problem}");
    }
    let raw = server
        .client
        .post(server.url("/api/notifications/send"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(server.client.get(server.url("/api/notifications/abc")).send().await.unwrap().status(), 400);
    assert_eq!(server.client.get(server.url("/api/notifications/999")).send().await.unwrap().status(), 404);
    assert_eq!(server.client.get(server.url("/api/notifications?status=Lost")).send().await.unwrap().status(), 400);
    assert_eq!(server.client.get(server.url("/api/notifications?limit=0")).send().await.unwrap().status(), 400);
    assert!(server.all().await.is_empty(), "nothing invalid was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_by_recipient_and_status() {
    let server = start(memory_bus(5), &default_queue(), &[("SEND_ATTEMPTS", "1")]).await;
    for (recipient, message) in
        [("a@example.com", "1"), ("b@example.com", "2"), ("a@example.com", "3"), ("z@fail.test", "4")]
    {
        let response = server
            .client
            .post(server.url("/api/notifications/send"))
            .json(&json!({"type": "Email", "recipient": recipient, "message": message}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    server.wait_sent(3, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let for_a = server.get_json("/api/notifications?recipient=a@EXAMPLE.com").await;
    assert_eq!(for_a.as_array().unwrap().len(), 2, "the filter normalises the domain like the API: {for_a}");
    let failed = server.get_json("/api/notifications?status=Failed").await;
    assert_eq!(failed.as_array().unwrap().len(), 1);
    let page = server.get_json("/api/notifications?limit=2&offset=1").await;
    let ids: Vec<i64> = page.as_array().unwrap().iter().map(|n| n["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_direct_sends_survive_a_restart() {
    let queue = default_queue();
    let bus = memory_bus(5);
    // Slow senders: the process stops before anything is delivered.
    let mut server =
        support::start(bus.clone(), &queue, &[("SEND_DELAY_EMAIL_MS", "5000"), ("SHUTDOWN_GRACE_SECS", "0")]).await;
    for i in 0..5 {
        let response = server
            .client
            .post(server.url("/api/notifications/send"))
            .json(&json!({"type": "Email", "recipient": format!("p{i}@example.com"), "message": "later"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    server.stop().await;
    let dir = std::mem::replace(&mut server.dir, support::TempDir::new("unused"));
    let restarted = support::start_in(dir, bus, &queue, &[]).await;
    let all = restarted.wait_sent(5, Duration::from_secs(10)).await;
    assert_eq!(all.iter().filter(|n| n["status"] == "Sent").count(), 5, "{all:?}");
}
