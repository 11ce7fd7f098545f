//! `wharf smoke` against a real `wharf up`: directly, through a path-routing ingress
//! (`--base-url`), and with a service missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use support::{Platform, run};
use warp::Filter;
use warp::http::{Method, Response};

#[test]
fn smoke_passes_against_wharf_up() {
    let platform = Platform::start(&[]);
    let mut args = vec!["smoke".to_owned(), "--wait".into(), "20".into()];
    args.extend(platform.target_args());
    let output = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    for step in ["products is healthy", "place an order", "confirmation email is sent", "tidy up", "smoke passed"] {
        assert!(stdout.contains(step), "{step:?} missing from:\n{stdout}");
    }
}

/// An ALB-like front door: `/api/<service>…` goes to that service, anything else is 404.
fn ingress(platform: &Platform) -> (SocketAddr, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let routes = [
        ("/api/products", platform.products.clone()),
        ("/api/orders", platform.orders.clone()),
        ("/api/notifications", platform.notifications.clone()),
    ];
    let client = reqwest::Client::new();
    let proxy = warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .then(
            move |method: Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: warp::http::HeaderMap,
                  body: bytes::Bytes| {
                let (client, routes) = (client.clone(), routes.clone());
                async move {
                    let Some((_, backend)) = routes.iter().find(|(prefix, _)| path.as_str().starts_with(prefix)) else {
                        return Response::builder().status(404).body(Vec::new()).unwrap();
                    };
                    let query = if query.is_empty() { String::new() } else { format!("?{query}") };
                    let mut request = client.request(method, format!("{backend}{}{query}", path.as_str())).body(body);
                    for name in ["content-type", "x-correlation-id", "idempotency-key"] {
                        if let Some(value) = headers.get(name) {
                            request = request.header(name, value);
                        }
                    }
                    let answer = request.send().await.unwrap();
                    let mut response = Response::builder().status(answer.status());
                    for (name, value) in answer.headers() {
                        response = response.header(name, value);
                    }
                    response.body(answer.bytes().await.unwrap().to_vec()).unwrap()
                }
            },
        );
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(warp::serve(proxy).incoming(listener).run());
    (addr, runtime)
}

#[test]
fn smoke_passes_through_a_path_routing_ingress() {
    let platform = Platform::start(&[]);
    let (addr, _runtime) = ingress(&platform);
    let output = run(&["smoke", "--wait", "20", "--base-url", &format!("http://{addr}/")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("GET /api/orders answers"), "health goes through the routed API:\n{stdout}");
    assert!(stdout.contains("smoke passed"), "{stdout}");
}

#[test]
fn smoke_fails_and_says_which_step_when_a_service_is_missing() {
    let platform = Platform::start(&[]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let notifications = format!("http://{closed}");
    let output = run(&[
        "smoke",
        "--wait",
        "2",
        "--products",
        &platform.products,
        "--orders",
        &platform.orders,
        "--notifications",
        &notifications,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("✗ notifications is healthy"), "{stdout}");
    assert!(stdout.contains("smoke FAILED"), "{stdout}");
}
