//! The edge's input rules as orders sees them (docs/contract.md, "Errors" and "HTTP
//! conformance"): control characters, repeated keys, non-UTF-8 JSON, non-canonical ids and wrong
//! methods, each on SQLite and, in the integration tier, on PostgreSQL (which cannot store NUL).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::{OrdersServer, Products, TempDir, memory_bus, problem, start_orders};

async fn post_raw(orders: &OrdersServer, path: &str, content_type: &str, body: String) -> reqwest::Response {
    let request = orders.client.post(orders.url(path)).header("content-type", content_type).body(body);
    request.send().await.unwrap()
}

async fn input_rules(database_url: &str) {
    let products = Products::start().await;
    let product = products.create("Kettle", 59.0, 50).await;
    let mut orders = start_orders(&products.url(), database_url, memory_bus(), &[]).await;

    for (body, field) in [
        (format!(r#"{{"productId":{product},"quantity":1,"customerEmail":"ada\u0000@example.com"}}"#), "customerEmail"),
        (
            format!(r#"{{"productId":{product},"quantity":1,"customerEmail":"ada@example.com","note":"\u0001"}}"#),
            "note",
        ),
    ] {
        let problem = problem(post_raw(&orders, "/api/orders", "application/json", body).await, 400).await;
        assert!(problem["errors"][field].is_array(), "{field}: {problem}");
    }
    let duplicate =
        format!(r#"{{"productId":{product},"quantity":1,"quantity":40,"customerEmail":"ada@example.com"}}"#);
    let body = problem(post_raw(&orders, "/api/orders", "application/json", duplicate).await, 400).await;
    assert_eq!(body["type"], "urn:wharf:problem:malformed-json");
    let valid = format!(r#"{{"productId":{product},"quantity":1,"customerEmail":"ada@example.com"}}"#);
    problem(post_raw(&orders, "/api/orders", "application/json; charset=utf-16", valid.clone()).await, 415).await;
    let placed = post_raw(&orders, "/api/orders", "application/json; charset=utf-8", valid).await;
    assert_eq!(placed.status(), 201);
    let id = placed.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    let status = format!("/api/orders/{id}/status");
    let body = problem(
        orders.client.put(orders.url(&status)).json(&json!({"status": "Confirmed\u{0}"})).send().await.unwrap(),
        400,
    )
    .await;
    assert!(body["errors"]["status"].is_array(), "{body}");
    for path in [format!("/api/orders/+{id}"), format!("/api/orders/0{id}"), format!("/api/orders/0{id}/status")] {
        let request = if path.ends_with("status") {
            orders.client.put(orders.url(&path)).json(&json!({"status": "Confirmed"}))
        } else {
            orders.client.get(orders.url(&path))
        };
        problem(request.send().await.unwrap(), 400).await;
    }
    let wrong = orders.client.get(orders.url(&status)).send().await.unwrap();
    assert_eq!(wrong.headers()["allow"], "PUT");
    problem(wrong, 405).await;
    let wrong = orders.client.patch(orders.url("/api/orders")).send().await.unwrap();
    assert_eq!(wrong.headers()["allow"], "GET, POST, HEAD");
    problem(wrong, 405).await;
    problem(orders.get("/api/orders?offset=%00").await, 400).await;

    let head = orders.client.head(orders.url(&format!("/api/orders/{id}"))).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.bytes().await.unwrap().is_empty());

    let all: Vec<Value> = orders.get("/api/orders").await.json().await.unwrap();
    assert_eq!(all.len(), 1, "only the valid order was stored");
    orders.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_rules_on_sqlite() {
    let dir = TempDir::new("orders");
    input_rules(&dir.sqlite_url("orders.db")).await;
}

#[cfg(feature = "integration")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_rules_on_postgres() {
    let db = wharf_testkit::PgTestDb::create().await;
    input_rules(&db.url).await;
    db.drop_db().await;
}

/// The contract's table for orders, with real Cognito tokens from moto: placing and reading
/// orders needs a valid token, changing a status needs the admin group.
#[cfg(feature = "integration")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_need_a_user_and_status_changes_the_admin_group() {
    let pool = wharf_testkit::cognito::CognitoPool::create().await;
    let admin = pool.sign_in("admin", &pool.client_id).await.access;
    let reader = pool.sign_in("reader", &pool.client_id).await.access;
    let products = Products::start().await;
    let product = products.create("Kettle", 59.0, 50).await;
    let dir = TempDir::new("orders");
    let vars = [
        ("AUTH_MODE", "jwt"),
        ("AUTH_ISSUER", pool.issuer.as_str()),
        ("AUTH_AUDIENCE", pool.client_id.as_str()),
        ("AUTH_JWKS_URL", pool.jwks_url.as_str()),
    ];
    let mut orders = start_orders(&products.url(), &dir.sqlite_url("orders.db"), memory_bus(), &vars).await;
    let order = json!({"productId": product, "quantity": 1, "customerEmail": "ada@example.com"});
    let place = |token: Option<&str>| {
        let mut request = orders.client.post(orders.url("/api/orders")).json(&order);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let refused = place(None).await.unwrap();
    assert!(refused.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    problem(refused, 401).await;
    problem(orders.get("/api/orders").await, 401).await;
    let placed = place(Some(&reader)).await.unwrap();
    assert_eq!(placed.status(), 201, "any signed-in user may order");
    let id = placed.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let read = orders.client.get(orders.url(&format!("/api/orders/{id}"))).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let status = orders.url(&format!("/api/orders/{id}/status"));
    let change =
        |token: &str| orders.client.put(&status).bearer_auth(token).json(&json!({"status": "Confirmed"})).send();
    problem(change(&reader).await.unwrap(), 403).await;
    assert_eq!(change(&admin).await.unwrap().status(), 200);
    orders.stop().await;
}
