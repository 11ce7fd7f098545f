//! HTTP conformance and input rules of the shared edge (docs/contract.md, "HTTP conformance" and
//! "Errors"), black-box against the real products service: each case on SQLite, and on
//! PostgreSQL in the integration tier — a NUL that SQLite would store is a PostgreSQL error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::{TestServer, problem};

async fn post_raw(server: &TestServer, path: &str, content_type: &str, body: &str) -> reqwest::Response {
    server
        .client
        .post(server.url(path))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn products(server: &TestServer) -> Vec<Value> {
    server.get("/api/products").await.json().await.unwrap()
}

async fn control_characters_in_text_are_400(server: TestServer) {
    for (body, field) in [
        (r#"{"name":"a\u0000b","price":1,"stock":1}"#, "name"),
        (r#"{"name":"ok","price":1,"stock":1,"description":"red \u001b[31m"}"#, "description"),
        (r#"{"name":"\u0007","price":1,"stock":1}"#, "name"),
        (r#"{"name":"ok","price":1,"stock":1,"x\u0000":1}"#, "body"),
    ] {
        let body = problem(post_raw(&server, "/api/products", "application/json", body).await, 400).await;
        assert_eq!(body["type"], "urn:wharf:problem:validation", "{body}");
        assert!(body["errors"][field].is_array(), "{field}: {body}");
    }
    let created = server.create("line\nbreak\tand tab\r", 1.0, 1).await;
    assert_eq!(created["name"], "line\nbreak\tand tab", "tab and line breaks are text (trimmed at the ends)");
    let item = format!("/api/products/{}", created["id"]);
    problem(server.put_json(&item, &json!({"name": "a\u{0}", "price": 1, "stock": 1})).await, 400).await;
    assert_eq!(products(&server).await.len(), 1, "nothing with a control character was stored");

    for query in ["limit=%00", "offset=1%1F", "colour=%00red"] {
        let body = problem(server.get(&format!("/api/products?{query}")).await, 400).await;
        assert_eq!(body["type"], "urn:wharf:problem:invalid-query", "{query}");
    }
    server.stop().await;
}

async fn duplicate_keys_are_400(server: TestServer) {
    for body in [
        r#"{"name":"a","price":1,"stock":1,"price":1000}"#,
        r#"{"name":"a","name":"a","price":1,"stock":1}"#,
        r#"{"name":"a","price":1,"stock":1,"extra":{"k":1,"k":2}}"#,
    ] {
        let body = problem(post_raw(&server, "/api/products", "application/json", body).await, 400).await;
        assert_eq!(body["type"], "urn:wharf:problem:malformed-json");
        assert!(body["detail"].as_str().unwrap().contains("duplicate key"), "{body}");
    }
    assert!(products(&server).await.is_empty());
    server.stop().await;
}

async fn only_utf8_json_is_accepted(server: TestServer) {
    let body = r#"{"name":"a","price":1,"stock":1}"#;
    for content_type in [
        "application/json; charset=utf-16",
        "application/json; charset=iso-8859-1",
        "application/json;charset=\"latin1\"",
    ] {
        problem(post_raw(&server, "/api/products", content_type, body).await, 415).await;
    }
    for content_type in ["application/json; charset=utf-8", "application/json;charset=\"UTF-8\"", "application/json"] {
        assert_eq!(post_raw(&server, "/api/products", content_type, body).await.status(), 201, "{content_type}");
    }
    server.stop().await;
}

async fn ids_are_canonical_decimal_only(server: TestServer) {
    let id = server.create("one", 1.0, 1).await["id"].as_i64().unwrap();
    assert_eq!(server.get(&format!("/api/products/{id}")).await.status(), 200);
    for spelling in [format!("+{id}"), format!("0{id}"), format!("{id}%20"), format!("%20{id}"), format!("{id}.0")] {
        let path = format!("/api/products/{spelling}");
        let body = problem(server.get(&path).await, 400).await;
        assert!(body["errors"]["id"].is_array(), "{path}: {body}");
        problem(server.delete(&path).await, 400).await;
    }
    problem(server.get("/api/products/-0").await, 400).await;
    assert_eq!(products(&server).await.len(), 1, "no other spelling deleted it");
    server.stop().await;
}

async fn wrong_methods_are_405_with_allow(server: TestServer) {
    let cases = [
        (reqwest::Method::PATCH, "/api/products", "GET, POST, HEAD"),
        (reqwest::Method::DELETE, "/api/products", "GET, POST, HEAD"),
        (reqwest::Method::POST, "/api/products/1", "GET, PUT, DELETE, HEAD"),
        (reqwest::Method::PATCH, "/api/products/abc", "GET, PUT, DELETE, HEAD"),
        (reqwest::Method::POST, "/health", "GET, HEAD"),
        (reqwest::Method::PUT, "/products/health/ready", "GET, HEAD"),
        (reqwest::Method::DELETE, "/metrics", "GET, HEAD"),
        (reqwest::Method::POST, "/openapi.json", "GET, HEAD"),
        (reqwest::Method::POST, "/swagger/index.html", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let response = server.client.request(method.clone(), server.url(path)).send().await.unwrap();
        assert_eq!(response.headers().get("allow").map(|v| v.to_str().unwrap()), Some(allow), "{method} {path}");
        problem(response, 405).await;
    }
    problem(server.client.patch(server.url("/nope")).send().await.unwrap(), 404).await;
    server.stop().await;
}

async fn head_is_get_without_a_body(server: TestServer) {
    let id = server.create("headed", 1.0, 1).await["id"].as_i64().unwrap();
    for (path, status) in [
        ("/api/products".to_owned(), 200),
        (format!("/api/products/{id}"), 200),
        ("/api/products/424242".to_owned(), 404),
        ("/health".to_owned(), 200),
        ("/products/health/live".to_owned(), 200),
        ("/metrics".to_owned(), 200),
        ("/openapi.json".to_owned(), 200),
    ] {
        let get = server.get(&path).await;
        let get_type = get.headers()["content-type"].clone();
        let get_length = get.bytes().await.unwrap().len();
        let head = server.client.head(server.url(&path)).send().await.unwrap();
        assert_eq!(head.status(), status, "HEAD {path}");
        assert_eq!(head.headers()["content-type"], get_type, "HEAD {path}");
        if path != "/metrics" {
            // The metrics body changes with every request; its length is not stable.
            let length: usize = head.headers()["content-length"].to_str().unwrap().parse().unwrap();
            assert_eq!(length, get_length, "HEAD {path} announces GET's length");
        }
        assert!(head.headers().contains_key("x-correlation-id"));
        assert!(head.bytes().await.unwrap().is_empty(), "HEAD {path} has no body");
    }
    server.stop().await;
}

async fn chunked_bodies_within_the_limit_are_accepted(server: TestServer) {
    let send_chunks = |chunks: Vec<Vec<u8>>| {
        let stream = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
        server
            .client
            .post(server.url("/api/products"))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stream))
            .send()
    };
    let response =
        send_chunks(vec![br#"{"name":"chun"#.to_vec(), br#"ked","price":2.5,"#.to_vec(), br#""stock":4}"#.to_vec()])
            .await
            .unwrap();
    assert_eq!(response.status(), 201);
    let product: Value = response.json().await.unwrap();
    assert_eq!(product["name"], "chunked");

    // Over the 64 KiB default, 1 KiB at a time: refused once the limit is passed.
    let chunks = std::iter::once(br#"{"name":"a","price":1,"stock":1,"pad":""#.to_vec())
        .chain(std::iter::repeat_n(vec![b'x'; 1024], 70))
        .chain(std::iter::once(br#""}"#.to_vec()))
        .collect();
    match send_chunks(chunks).await {
        Ok(response) => {
            problem(response, 413).await;
        }
        // The server may close the connection while the client is still sending.
        Err(err) => assert!(err.is_request() || err.is_body(), "{err}"),
    }
    assert_eq!(products(&server).await.len(), 1);
    server.stop().await;
}

async fn metrics_honour_accept(server: TestServer) {
    server.create("metered", 1.0, 1).await;
    let text = server.get("/metrics").await;
    assert_eq!(text.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = text.text().await.unwrap();
    assert!(text.contains("# TYPE wharf_http_requests_total counter\n"), "{text}");
    assert!(
        text.contains(r#"wharf_http_requests_total{method="POST",route="/api/products",status="201"} 1"#),
        "{text}"
    );
    assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");

    let openmetrics = server
        .client
        .get(server.url("/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(openmetrics.headers()["content-type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
    let openmetrics = openmetrics.text().await.unwrap();
    assert!(openmetrics.contains("# TYPE wharf_http_requests counter\n"), "{openmetrics}");
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    server.stop().await;
}

macro_rules! conformance_suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $case() { super::$case(super::TestServer::start().await).await })*
        }
        #[cfg(feature = "integration")]
        mod postgres {
            $(#[tokio::test] async fn $case() {
                let db = wharf_testkit::PgTestDb::create().await;
                let server = super::TestServer::start_with(&[("DATABASE_URL", db.url.as_str())]).await;
                super::$case(server).await;
                db.drop_db().await;
            })*
        }
    };
}

conformance_suite!(
    control_characters_in_text_are_400,
    duplicate_keys_are_400,
    only_utf8_json_is_accepted,
    ids_are_canonical_decimal_only,
    wrong_methods_are_405_with_allow,
    head_is_get_without_a_body,
    chunked_bodies_within_the_limit_are_accepted,
    metrics_honour_accept,
);
