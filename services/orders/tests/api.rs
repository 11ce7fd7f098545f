//! Black-box tests of orders: the real service and a real products service in-process, over
//! HTTP, with the memory bus counted at the consumer side.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Products, TempDir, collect, memory_bus, problem, start_orders};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placing_an_order_writes_it_and_publishes_order_placed() {
    let products = Products::start().await;
    let product = products.create("Kettle", 59.0, 5).await;
    let dir = TempDir::new("orders");
    let orders = start_orders(&products.url(), &dir.sqlite_url("orders.db"), memory_bus(), &[]).await;

    let response = orders
        .client
        .post(orders.url("/api/orders"))
        .header("x-correlation-id", "order-flow-1")
        .json(&json!({"productId": product, "quantity": 2, "customerEmail": " Ada@Example.COM "}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(response.headers().get("x-product-source").is_none(), "validated live");
    let order: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/api/orders/{}", order["id"]));
    assert_eq!(order["status"], "Pending");
    assert_eq!(order["customerEmail"], "Ada@example.com");
    assert_eq!(order["quantity"], 2);
    assert_eq!(orders.get(&location).await.json::<Value>().await.unwrap(), order);

    let received = collect(&orders.bus, &orders.queue, 1, Duration::from_secs(5)).await;
    assert_eq!(received.distinct(), 1);
    let (event, correlation) = &received.events[0];
    assert_eq!(event.order_id, order["id"].as_i64().unwrap());
    assert_eq!((event.product_id, event.quantity, event.customer_email.as_str()), (product, 2, "Ada@example.com"));
    assert_eq!(correlation, "order-flow-1", "the event carries the request's correlation id");

    let health: Value = orders.get("/health").await.json().await.unwrap();
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(health["service"], "OrderService");
    assert_eq!(health["checks"]["products"]["status"], "up");
    assert_eq!(health["checks"]["outbox"]["status"], "up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_unknown_products_and_stock() {
    let products = Products::start().await;
    let product = products.create("Cup", 2.5, 3).await;
    let dir = TempDir::new("orders");
    let orders = start_orders(&products.url(), &dir.sqlite_url("orders.db"), memory_bus(), &[]).await;

    for (body, field) in [
        (json!({"productId": product, "quantity": 0, "customerEmail": "a@b.co"}), "quantity"),
        (json!({"productId": product, "quantity": -2, "customerEmail": "a@b.co"}), "quantity"),
        (json!({"productId": product, "quantity": 1.5, "customerEmail": "a@b.co"}), "quantity"),
        (json!({"productId": product, "quantity": 1, "customerEmail": "not-an-email"}), "customerEmail"),
        (json!({"productId": product, "quantity": 1, "customerEmail": "a@b"}), "customerEmail"),
        (json!({"productId": "x", "quantity": 1, "customerEmail": "a@b.co"}), "productId"),
        (json!({"quantity": 1, "customerEmail": "a@b.co"}), "productId"),
    ] {
        let response = orders.client.post(orders.url("/api/orders")).json(&body).send().await.unwrap();
        let body = problem(response, 400).await;
        assert!(body["errors"][field].is_array(), "{field}: {body}");
    }
    let unknown = problem(orders.place(product + 1000, 1, "a@b.co").await, 422).await;
    assert_eq!(unknown["type"], "urn:wharf:problem:unknown-product");
    let stock = problem(orders.place(product, 4, "a@b.co").await, 422).await;
    assert_eq!(stock["type"], "urn:wharf:problem:insufficient-stock");
    assert_eq!(orders.place(product, 3, "a@b.co").await.status(), 201, "exactly the stock is fine");

    problem(orders.get("/api/orders/abc").await, 400).await;
    problem(orders.get("/api/orders/999").await, 404).await;
    let list: Vec<Value> = orders.get("/api/orders?limit=10").await.json().await.unwrap();
    assert_eq!(list.len(), 1, "no invalid order was stored");
    problem(orders.get("/api/orders?limit=5000").await, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_replays_the_original_and_refuses_another_body() {
    let products = Products::start().await;
    let product = products.create("Grinder", 129.0, 10).await;
    let dir = TempDir::new("orders");
    let orders = start_orders(&products.url(), &dir.sqlite_url("orders.db"), memory_bus(), &[]).await;
    let send = |quantity: i64| {
        orders
            .client
            .post(orders.url("/api/orders"))
            .header("idempotency-key", "checkout-42")
            .json(&json!({"productId": product, "quantity": quantity, "customerEmail": "k@example.com"}))
            .send()
    };

    let first = send(2).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send(2).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let other = problem(send(3).await.unwrap(), 422).await;
    assert_eq!(other["type"], "urn:wharf:problem:idempotency-key-reused");

    let bad_key = orders
        .client
        .post(orders.url("/api/orders"))
        .header("idempotency-key", "")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    problem(bad_key, 400).await;

    let received = collect(&orders.bus, &orders.queue, 2, Duration::from_secs(2)).await;
    assert_eq!((received.distinct(), received.deliveries), (1, 1), "one order, one event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_follow_the_lifecycle() {
    let products = Products::start().await;
    let product = products.create("Filter papers", 6.99, 100).await;
    let dir = TempDir::new("orders");
    let orders = start_orders(&products.url(), &dir.sqlite_url("orders.db"), memory_bus(), &[]).await;
    let order: Value = orders.place(product, 1, "s@example.com").await.json().await.unwrap();
    let status_url = orders.url(&format!("/api/orders/{}/status", order["id"]));
    let put = |status: Value| orders.client.put(&status_url).json(&json!({ "status": status })).send();

    let confirmed = put(json!("Confirmed")).await.unwrap();
    assert_eq!(confirmed.status(), 200);
    assert_eq!(confirmed.json::<Value>().await.unwrap()["status"], "Confirmed");
    let conflict = problem(put(json!("Delivered")).await.unwrap(), 409).await;
    assert_eq!(conflict["type"], "urn:wharf:problem:transition-not-allowed");
    assert_eq!(put(json!("shipped")).await.unwrap().json::<Value>().await.unwrap()["status"], "Shipped");
    problem(put(json!("Cancelled")).await.unwrap(), 409).await;
    problem(put(json!("Lost")).await.unwrap(), 400).await;
    problem(put(json!(3)).await.unwrap(), 400).await;
    let missing = orders
        .client
        .put(orders.url("/api/orders/424242/status"))
        .json(&json!({"status": "Confirmed"}))
        .send()
        .await
        .unwrap();
    problem(missing, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_down_opens_the_breaker_serves_cached_products_and_recovers() {
    let mut products = Products::start().await;
    let cached = products.create("Cached mug", 9.0, 50).await;
    let uncached = products.create("Never looked up", 9.0, 50).await;
    let dir = TempDir::new("orders");
    let orders =
        start_orders(&products.url(), &dir.sqlite_url("orders.db"), memory_bus(), &[("BREAKER_FAILURES", "5")]).await;
    assert_eq!(orders.place(cached, 1, "c@example.com").await.status(), 201, "warms the cache");

    products.stop().await;
    // Failures accumulate; meanwhile the cached product is still orderable.
    for _ in 0..4 {
        let response = orders.place(cached, 1, "c@example.com").await;
        assert_eq!(response.status(), 201);
        assert!(response.headers()["x-product-source"].to_str().unwrap().starts_with("fallback-cache"));
    }
    let metrics = orders.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("wharf_products_breaker_state 2"), "breaker open: {metrics}");
    let health = orders.get("/health").await;
    assert_eq!(health.status(), 200, "degraded is still 200");
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["checks"]["products"]["status"], "degraded");
    assert_eq!(orders.get("/health/ready").await.status(), 200, "readiness stays 200 on purpose");

    let started = std::time::Instant::now();
    let unavailable = orders.place(uncached, 1, "c@example.com").await;
    assert!(started.elapsed() < Duration::from_secs(1), "an open breaker answers fast");
    assert!(unavailable.headers().contains_key("retry-after"));
    problem(unavailable, 503).await;

    products.restart().await;
    let mut healthy = false;
    for _ in 0..60 {
        let health: Value = orders.get("/health").await.json().await.unwrap();
        if health["status"] == "healthy" {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "the breaker closes by itself once products is back");
    let live = orders.place(uncached, 1, "c@example.com").await;
    assert_eq!(live.status(), 201);
    assert!(live.headers().get("x-product-source").is_none());
    let metrics = orders.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("wharf_products_breaker_state 0"), "{metrics}");
    assert!(metrics.contains(r#"wharf_products_lookups_total{outcome="fallback"}"#), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_products_fail_over_within_the_timeout_budget() {
    // A server that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let dir = TempDir::new("orders");
    let orders =
        start_orders(&url, &dir.sqlite_url("orders.db"), memory_bus(), &[("PRODUCTS_TIMEOUT_MS", "200")]).await;
    let started = std::time::Instant::now();
    let response = orders.place(1, 1, "slow@example.com").await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "answered in {took:?}");
    problem(response, 503).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_orders_and_the_shared_endpoints() {
    let dir = TempDir::new("orders");
    let orders = start_orders("http://127.0.0.1:9", &dir.sqlite_url("orders.db"), memory_bus(), &[]).await;
    let doc: Value = orders.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in ["/api/orders", "/api/orders/{id}", "/api/orders/{id}/status", "/health", "/metrics"] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["paths"]["/api/orders"]["post"]["responses"]["503"].is_object());
    assert_eq!(orders.get("/swagger/").await.status(), 200);
    let metrics = orders.get("/metrics").await.text().await.unwrap();
    for name in ["wharf_outbox_pending", "wharf_products_breaker_state", "wharf_http_requests_total"] {
        assert!(metrics.contains(name), "{name} exported");
    }
}
