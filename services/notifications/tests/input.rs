//! The edge's input rules as notifications sees them (docs/contract.md, "Errors" and "HTTP
//! conformance"), on SQLite and, in the integration tier, on PostgreSQL (which cannot store NUL).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::{Server, default_queue, memory_bus, start};

async fn send_raw(server: &Server, content_type: &str, body: &str) -> reqwest::Response {
    let request = server.client.post(server.url("/api/notifications/send")).header("content-type", content_type);
    request.body(body.to_owned()).send().await.unwrap()
}

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    response.json().await.unwrap()
}

async fn input_rules(vars: &[(&str, &str)]) {
    let mut server = start(memory_bus(5), &default_queue(), vars).await;
    for (body, field) in [
        (r#"{"type":"Email","recipient":"ada@example.com","message":"hi\u0000there"}"#, "message"),
        (r#"{"type":"Email","recipient":"a\u0000@b.c","message":"hi"}"#, "recipient"),
        (r#"{"type":"Sms\u0000","recipient":"+447700900123","message":"hi"}"#, "type"),
    ] {
        let body = problem(send_raw(&server, "application/json", body).await, 400).await;
        assert!(body["errors"][field].is_array(), "{field}: {body}");
    }
    let duplicate = r#"{"type":"Email","recipient":"ada@example.com","recipient":"bob@example.com","message":"hi"}"#;
    problem(send_raw(&server, "application/json", duplicate).await, 400).await;
    let valid = r#"{"type":"Email","recipient":"ada@example.com","message":"line one\nline two"}"#;
    problem(send_raw(&server, "application/json; charset=utf-16", valid).await, 415).await;
    let sent = send_raw(&server, "application/json", valid).await;
    assert_eq!(sent.status(), 202);
    let id = sent.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    // `/send` is a POST-only path, not the id "send".
    let wrong = server.client.get(server.url("/api/notifications/send")).send().await.unwrap();
    assert_eq!(wrong.headers()["allow"], "POST");
    problem(wrong, 405).await;
    let wrong = server.client.post(server.url("/api/notifications")).json(&json!({})).send().await.unwrap();
    assert_eq!(wrong.headers()["allow"], "GET, HEAD");
    problem(wrong, 405).await;
    for query in ["recipient=a%00@b.c", "status=Sent%00", "recipient=%1b"] {
        problem(server.client.get(server.url(&format!("/api/notifications?{query}"))).send().await.unwrap(), 400).await;
    }
    for path in [format!("/api/notifications/+{id}"), format!("/api/notifications/0{id}")] {
        problem(server.client.get(server.url(&path)).send().await.unwrap(), 400).await;
    }
    let head = server.client.head(server.url(&format!("/api/notifications/{id}"))).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.bytes().await.unwrap().is_empty());
    assert_eq!(server.all().await.len(), 1, "only the valid send was stored");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_rules_on_sqlite() {
    input_rules(&[]).await;
}

#[cfg(feature = "integration")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_rules_on_postgres() {
    let db = wharf_testkit::PgTestDb::create().await;
    input_rules(&[("DATABASE_URL", db.url.as_str())]).await;
    db.drop_db().await;
}

/// The contract's table for notifications, with real Cognito tokens from moto: reading and
/// sending need the admin group.
#[cfg(feature = "integration")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_need_the_admin_group() {
    let pool = wharf_testkit::cognito::CognitoPool::create().await;
    let admin = pool.sign_in("admin", &pool.client_id).await.access;
    let reader = pool.sign_in("reader", &pool.client_id).await.id;
    let vars = [
        ("AUTH_MODE", "jwt"),
        ("AUTH_ISSUER", pool.issuer.as_str()),
        ("AUTH_AUDIENCE", pool.client_id.as_str()),
        ("AUTH_JWKS_URL", pool.jwks_url.as_str()),
        ("ADMIN_ENABLED", "true"),
    ];
    let mut server = start(memory_bus(5), &default_queue(), &vars).await;
    let send = json!({"type": "Email", "recipient": "ada@example.com", "message": "hi"});
    let url = server.url("/api/notifications/send");
    problem(server.client.post(&url).json(&send).send().await.unwrap(), 401).await;
    problem(server.client.post(&url).bearer_auth(&reader).json(&send).send().await.unwrap(), 403).await;
    assert_eq!(server.client.post(&url).bearer_auth(&admin).json(&send).send().await.unwrap().status(), 202);
    for path in ["/api/notifications", "/api/notifications/1", "/admin/dlq"] {
        let url = server.url(path);
        problem(server.client.get(&url).send().await.unwrap(), 401).await;
        problem(server.client.get(&url).bearer_auth(&reader).send().await.unwrap(), 403).await;
        assert_eq!(server.client.get(&url).bearer_auth(&admin).send().await.unwrap().status(), 200, "{path}");
    }
    assert_eq!(server.client.get(server.url("/health")).send().await.unwrap().status(), 200);
    server.stop().await;
}
