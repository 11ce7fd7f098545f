//! Per-client rate limits (docs/contract.md, "Rate limiting"), black-box against products.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{TestServer, problem};

async fn get_from(server: &TestServer, path: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = server.client.get(server.url(path));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> u64 {
    response.headers()[name].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn past_the_burst_a_client_gets_429_with_retry_after() {
    let server = TestServer::start_with(&[("RATE_LIMIT_PER_SECOND", "1"), ("RATE_LIMIT_BURST", "3")]).await;
    for remaining in [2, 1, 0] {
        let response = get_from(&server, "/api/products", None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "ratelimit-limit"), 3);
        assert_eq!(header(&response, "ratelimit-remaining"), remaining);
        assert!((1..=3).contains(&header(&response, "ratelimit-reset")));
    }
    let limited = get_from(&server, "/api/products", None).await;
    assert_eq!(header(&limited, "retry-after"), 1);
    assert_eq!(header(&limited, "ratelimit-remaining"), 0);
    let body = problem(limited, 429).await;
    assert_eq!(body["type"], "urn:wharf:problem:rate-limited");
    // Only /api/* is limited.
    for path in ["/health", "/metrics", "/openapi.json"] {
        let response = get_from(&server, path, None).await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.headers().get("ratelimit-limit").is_none(), "{path}");
    }
    // The forwarded address is not trusted by default: a new one does not buy a new bucket.
    problem(get_from(&server, "/api/products", Some("203.0.113.9")).await, 429).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(get_from(&server, "/api/products", None).await.status(), 200, "the bucket refills");
    server.stop().await;
}

#[tokio::test]
async fn behind_the_alb_clients_are_keyed_by_x_forwarded_for() {
    let server = TestServer::start_with(&[
        ("RATE_LIMIT_PER_SECOND", "1"),
        ("RATE_LIMIT_BURST", "2"),
        ("TRUST_FORWARDED_FOR", "true"),
    ])
    .await;
    for _ in 0..2 {
        assert_eq!(get_from(&server, "/api/products", Some("203.0.113.1, 10.0.0.2")).await.status(), 200);
    }
    problem(get_from(&server, "/api/products", Some("203.0.113.1")).await, 429).await;
    assert_eq!(get_from(&server, "/api/products", Some("203.0.113.2, 10.0.0.2")).await.status(), 200);
    assert_eq!(get_from(&server, "/api/products", Some("2001:db8::7")).await.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn a_spray_of_addresses_does_not_grow_the_key_set_past_its_bound() {
    let server = TestServer::start_with(&[
        ("RATE_LIMIT_PER_SECOND", "1000"),
        ("RATE_LIMIT_BURST", "1000"),
        ("RATE_LIMIT_MAX_CLIENTS", "200"),
        ("TRUST_FORWARDED_FOR", "true"),
    ])
    .await;
    for i in 0..1500u32 {
        let address = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        let status = get_from(&server, "/api/products", Some(&address)).await.status();
        assert!(status == 200 || status == 429, "{status}");
    }
    let metrics = server.get("/metrics").await.text().await.unwrap();
    let clients: i64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("wharf_rate_limit_clients "))
        .expect("the key-set gauge is exported")
        .parse()
        .unwrap();
    assert!(clients <= 201, "1,500 addresses held {clients} keys");
    server.stop().await;
}
