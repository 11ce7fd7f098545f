//! Black-box tests of the products HTTP API: the real service on an ephemeral port, spoken to
//! over HTTP, checked against docs/contract.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::{TestServer, problem};

#[tokio::test]
async fn health_endpoints_report_a_healthy_service() {
    let server = TestServer::start().await;
    let response = server.get("/health").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["service"], "ProductService");
    assert_eq!(body["checks"]["database"]["status"], "up");
    assert_eq!(body["checks"]["actors"]["status"], "up");

    let live = server.get("/health/live").await;
    assert_eq!(live.status(), 200);
    let ready = server.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"]["status"], "up");
    server.stop().await;
}

#[tokio::test]
async fn crud_round_trip_with_exact_statuses_and_location() {
    let server = TestServer::start().await;
    let created = server
        .post_json("/api/products", &json!({"name": "  Mug  ", "price": 12.5, "description": "Blue", "stock": 3}))
        .await;
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let product: Value = created.json().await.unwrap();
    let id = product["id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/products/{id}"));
    assert_eq!(product["name"], "Mug", "names are trimmed");
    assert_eq!(product["price"], 12.5);
    assert_eq!(product["description"], "Blue");
    assert_eq!(product["stock"], 3);
    assert_eq!(product["createdAt"], product["updatedAt"]);
    time::OffsetDateTime::parse(product["createdAt"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
        .expect("createdAt is RFC 3339");

    let fetched: Value = server.get(&location).await.json().await.unwrap();
    assert_eq!(fetched, product);

    let updated = server.put_json(&location, &json!({"name": "Mug XL", "price": 14.99, "stock": 0})).await;
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(updated["price"], 14.99);
    assert_eq!(updated["description"], "", "an absent description is empty");
    assert_eq!(updated["stock"], 0);
    assert_eq!(updated["createdAt"], product["createdAt"]);

    let deleted = server.delete(&location).await;
    assert_eq!(deleted.status(), 204);
    assert!(deleted.bytes().await.unwrap().is_empty());
    let body = problem(server.get(&location).await, 404).await;
    assert_eq!(body["instance"], location.as_str());
    problem(server.delete(&location).await, 404).await;
    problem(server.put_json(&location, &json!({"name": "x", "price": 1, "stock": 1})).await, 404).await;
    server.stop().await;
}

#[tokio::test]
async fn lists_are_ascending_and_paged() {
    let server = TestServer::start().await;
    for i in 0..5 {
        server.create(&format!("p{i}"), 1.0, 1).await;
    }
    let all: Vec<Value> = server.get("/api/products").await.json().await.unwrap();
    let ids: Vec<i64> = all.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending ids: {ids:?}");

    let page: Vec<Value> = server.get("/api/products?limit=2&offset=1").await.json().await.unwrap();
    assert_eq!(page.iter().map(|p| p["id"].as_i64().unwrap()).collect::<Vec<_>>(), ids[1..3]);
    let past_end: Vec<Value> = server.get("/api/products?offset=50").await.json().await.unwrap();
    assert!(past_end.is_empty());
    let max: Vec<Value> = server.get("/api/products?limit=1000").await.json().await.unwrap();
    assert_eq!(max.len(), 5);

    for query in ["limit=1001", "limit=0", "limit=-1", "limit=ten", "offset=-3", "offset=1.5"] {
        let body = problem(server.get(&format!("/api/products?{query}")).await, 400).await;
        let field = query.split('=').next().unwrap();
        assert!(body["errors"][field].is_array(), "{query}: {body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn validation_names_each_bad_field() {
    let server = TestServer::start().await;
    let cases = [
        (json!({"name": "a", "price": -1, "stock": 1}), "price"),
        (json!({"name": "a", "price": 1.999, "stock": 1}), "price"),
        (json!({"name": "a", "price": "1.99", "stock": 1}), "price"),
        (json!({"name": "a", "price": 1e12, "stock": 1}), "price"),
        (json!({"name": "", "price": 1, "stock": 1}), "name"),
        (json!({"name": "   ", "price": 1, "stock": 1}), "name"),
        (json!({"name": "x".repeat(201), "price": 1, "stock": 1}), "name"),
        (json!({"name": 42, "price": 1, "stock": 1}), "name"),
        (json!({"name": "a", "price": 1, "stock": -1}), "stock"),
        (json!({"name": "a", "price": 1, "stock": 2.5}), "stock"),
        (json!({"name": "a", "price": 1, "stock": 99_999_999_999i64}), "stock"),
        (json!({"name": "a", "price": 1, "stock": "3"}), "stock"),
        (json!({"name": "a", "price": 1, "stock": 1, "description": "d".repeat(2001)}), "description"),
        (json!({"name": "a", "price": 1}), "stock"),
        (json!({"price": 1, "stock": 1}), "name"),
        (json!([1, 2, 3]), "body"),
        (json!("just a string"), "body"),
    ];
    for (body, field) in cases {
        let response = server.post_json("/api/products", &body).await;
        let problem = problem(response, 400).await;
        assert_eq!(problem["type"], "urn:wharf:problem:validation");
        assert!(problem["errors"][field].is_array(), "{field} reported for {body}: {problem}");
    }
    // Nothing invalid was stored.
    let all: Vec<Value> = server.get("/api/products").await.json().await.unwrap();
    assert!(all.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn bad_bodies_get_the_right_status_never_500() {
    let server = TestServer::start().await;
    let url = server.url("/api/products");
    let send = |body: Vec<u8>, content_type: Option<&str>| {
        let mut request = server.client.post(&url).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };

    let malformed = problem(send(b"{\"name\": ".to_vec(), Some("application/json")).await.unwrap(), 400).await;
    assert_eq!(malformed["type"], "urn:wharf:problem:malformed-json");
    problem(send(b"not json".to_vec(), Some("application/json")).await.unwrap(), 400).await;
    problem(send(vec![0xff, 0xfe, 0x00], Some("application/json")).await.unwrap(), 400).await;
    problem(send(br#"{"name":"a","price":1,"stock":1}"#.to_vec(), Some("text/plain")).await.unwrap(), 415).await;
    problem(send(br#"{"name":"a","price":1,"stock":1}"#.to_vec(), None).await.unwrap(), 415).await;

    // 10 MB: refused from its Content-Length, before the body is read.
    let huge = vec![b' '; 10 * 1024 * 1024];
    let response = send(huge, Some("application/json")).await;
    match response {
        Ok(response) => {
            problem(response, 413).await;
        }
        // The server may close the connection while the client is still sending.
        Err(err) => assert!(err.is_request() || err.is_body(), "{err}"),
    }
    // Just over the 64 KiB default.
    let over = format!(r#"{{"name":"a","price":1,"stock":1,"pad":"{}"}}"#, "x".repeat(64 * 1024));
    problem(send(over.into_bytes(), Some("application/json")).await.unwrap(), 413).await;

    // A streamed body has no Content-Length: chunked within the limit is read like any other
    // body (docs/contract.md, "HTTP conformance"), so `{}` is a validation problem, not a 411.
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(b"{}".to_vec())]);
    let chunked = server
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    let body = problem(chunked, 400).await;
    assert_eq!(body["type"], "urn:wharf:problem:validation");

    // Unknown fields are ignored.
    let response =
        send(br#"{"name":"a","price":1,"stock":1,"colour":"red","id":999}"#.to_vec(), Some("application/json"))
            .await
            .unwrap();
    assert_eq!(response.status(), 201);
    let product: Value = response.json().await.unwrap();
    assert_ne!(product["id"], 999, "a client cannot choose the id");
    server.stop().await;
}

#[tokio::test]
async fn hostile_and_unicode_strings_are_stored_verbatim() {
    let server = TestServer::start().await;
    for name in [
        "Robert'); DROP TABLE products;--",
        "1 OR 1=1",
        "\" OR \"\"=\"",
        "Café crème — 咖啡 ☕ 🍰",
        "ملعقة",
        "<script>alert(1)</script>",
        "back\\slash\nnewline\ttab",
    ] {
        let created = server.create(name, 2.5, 1).await;
        assert_eq!(created["name"], name);
        let fetched: Value = server.get(&format!("/api/products/{}", created["id"])).await.json().await.unwrap();
        assert_eq!(fetched["name"], name);
    }
    // 200 characters of 4-byte unicode is within the limit (characters, not bytes).
    let long = "🍰".repeat(200);
    assert_eq!(server.create(&long, 1.0, 1).await["name"], long.as_str());
    let all: Vec<Value> = server.get("/api/products").await.json().await.unwrap();
    assert_eq!(all.len(), 8, "the table survived");
    server.stop().await;
}

#[tokio::test]
async fn ids_that_are_not_numbers_are_400_and_unknown_ids_404() {
    let server = TestServer::start().await;
    for path in [
        "/api/products/abc",
        "/api/products/1.5",
        "/api/products/99999999999999999999999",
        "/api/products/%27%20OR%201=1",
    ] {
        let body = problem(server.get(path).await, 400).await;
        assert!(body["errors"]["id"].is_array(), "{path}");
    }
    problem(server.get("/api/products/0").await, 404).await;
    problem(server.get("/api/products/-7").await, 404).await;
    problem(server.get("/api/products/9223372036854775807").await, 404).await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let server = TestServer::start().await;
    let body = problem(server.get("/nope").await, 404).await;
    assert_eq!(body["type"], "about:blank");
    problem(server.get("/api/products/1/extra").await, 404).await;
    problem(server.client.patch(server.url("/api/products")).send().await.unwrap(), 405).await;
    problem(server.client.delete(server.url("/api/products")).send().await.unwrap(), 405).await;
    problem(server.client.post(server.url("/api/products/1")).json(&json!({})).send().await.unwrap(), 405).await;
    problem(server.client.post(server.url("/health")).send().await.unwrap(), 405).await;
    server.stop().await;
}

#[tokio::test]
async fn every_response_carries_correlation_id_and_security_headers() {
    let server = TestServer::start().await;
    let requests = [
        server.client.get(server.url("/api/products")),
        server.client.get(server.url("/nope")),
        server.client.patch(server.url("/api/products")),
        server.client.post(server.url("/api/products")).header("content-type", "text/plain").body("x"),
        server.client.get(server.url("/health")),
        server.client.get(server.url("/metrics")),
        server.client.get(server.url("/swagger/")),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        let headers = response.headers();
        let id = headers["x-correlation-id"].to_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(id).map(|u| u.get_version_num()), Ok(4), "generated id is a UUID");
        assert_eq!(headers["strict-transport-security"], "max-age=63072000; includeSubDomains");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        assert!(headers.get("server").is_none(), "no Server header");
    }

    let echoed = server
        .client
        .get(server.url("/api/products/12345"))
        .header("x-correlation-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-correlation-id"], "trace-me-42");
    let body = problem(echoed, 404).await;
    assert_eq!(body["correlationId"], "trace-me-42");

    // An id that could forge log lines is replaced, not echoed.
    let forged = server.client.get(server.url("/health")).header("x-correlation-id", "a b").send().await.unwrap();
    assert_ne!(forged.headers()["x-correlation-id"], "a b");
    server.stop().await;
}

#[tokio::test]
async fn metrics_show_the_request_just_made() {
    let server = TestServer::start().await;
    server.create("metered", 1.0, 1).await;
    assert_eq!(server.get("/api/products/424242").await.status(), 404);
    server.get("/definitely/not/here").await;
    let response = server.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"wharf_http_requests_total{method="POST",route="/api/products",status="201"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"wharf_http_requests_total{method="GET",route="/api/products/{id}",status="404"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",status="404""#), "unknown paths share one series: {text}");
    assert!(!text.contains("definitely"), "raw paths never become labels");
    assert!(text.contains("wharf_http_request_duration_seconds_bucket"), "{text}");
    assert!(text.contains("wharf_http_requests_in_flight"), "{text}");
    assert!(text.contains("wharf_actor_system_up 1"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn openapi_and_swagger_are_served_offline() {
    let server = TestServer::start().await;
    let doc: Value = server.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    for path in ["/api/products", "/api/products/{id}", "/health", "/health/live", "/health/ready", "/metrics"] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["schemas"]["Product"].is_object());

    let redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = redirect.get(server.url("/swagger")).send().await.unwrap();
    assert_eq!(response.status(), 301);
    assert_eq!(response.headers()["location"], "/swagger/");

    let page = server.get("/swagger/").await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    let init = server.get("/swagger/swagger-initializer.js").await.text().await.unwrap();
    assert!(init.contains("/openapi.json"), "the UI loads this service's document");
    let plain = server.get("/swagger/swagger-ui-bundle.js").await;
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.headers().get("content-encoding"), None, "a client that did not ask for gzip gets the file");
    let plain = plain.bytes().await.unwrap();
    assert!(plain.len() > 1_000_000 && plain.starts_with(b"/*"), "{} bytes", plain.len());
    let bundle_with = |accept_encoding: &'static str| {
        let request =
            server.client.get(server.url("/swagger/swagger-ui-bundle.js")).header("accept-encoding", accept_encoding);
        async move { request.send().await.unwrap() }
    };
    // A browser asks for gzip and gets the file as it is compiled in.
    for accept in ["gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8, *;q=0.1", "*"] {
        let zipped = bundle_with(accept).await;
        assert_eq!(zipped.status(), 200);
        assert_eq!(zipped.headers()["content-encoding"], "gzip", "{accept}");
        assert_eq!(zipped.headers()["vary"], "accept-encoding");
        let zipped = zipped.bytes().await.unwrap();
        assert!(
            zipped.starts_with(&[0x1f, 0x8b]) && zipped.len() < plain.len() / 2,
            "{accept}: {} bytes",
            zipped.len()
        );
    }
    for refusal in ["identity", "gzip;q=0, br", "br, *;q=0"] {
        let response = bundle_with(refusal).await;
        assert_eq!(response.headers().get("content-encoding"), None, "{refusal}");
        assert_eq!(response.bytes().await.unwrap(), plain, "{refusal}");
    }
    problem(server.get("/swagger/no-such-file.js").await, 404).await;
    server.stop().await;
}

#[tokio::test]
async fn chaos_routes_exist_only_when_enabled() {
    let server = TestServer::start().await;
    problem(server.get("/admin/chaos/actors").await, 404).await;
    problem(server.post_json("/admin/chaos/kill", &json!({"actor": "x"})).await, 404).await;
    server.stop().await;

    let server = TestServer::start_with(&[("CHAOS_ENABLED", "true")]).await;
    let body: Value = server.get("/admin/chaos/actors").await.json().await.unwrap();
    let actors: Vec<&str> = body["actors"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let store = format!("{}/store", server.namespace);
    assert!(actors.contains(&store.as_str()), "{actors:?}");
    assert!(actors.contains(&format!("{store}/0").as_str()), "workers are listed: {actors:?}");
    problem(server.post_json("/admin/chaos/kill", &json!({"actor": "someone-else"})).await, 404).await;
    problem(server.post_json("/admin/chaos/kill", &json!({})).await, 400).await;
    let killed = server.post_json("/admin/chaos/kill", &json!({"actor": format!("{store}/0")})).await;
    assert_eq!(killed.status(), 202);
    server.stop().await;
}
