//! The one HTTP client of the platform's API that every command drives a deployment with.
//!
//! Sending a request, checking its status, reading a problem+json refusal and parsing the JSON
//! answer happen here and nowhere else, so `smoke`, `load`, `chaos` and `dlq` fail the same way
//! with the same [`ApiError`]. What the client may talk to is split by audience:
//! - [`Api`] (`api.rs`): the public `/api/*` of the three services, typed by `resources.rs`, with
//!   its URLs in `routes.rs` (the load's hot path builds on those and on [`Client::http`]);
//! - [`ChaosAdmin`] (`chaos.rs`) and [`DeadLetterAdmin`] (`dead_letters.rs`): one service's
//!   `/admin/chaos/*` and notifications' `/admin/dlq*`, operator routes that are mounted only on
//!   request (`admin.rs`).
//!
//! A bearer token, when given, is set once here as a default header, so every request any of them
//! sends — the load's included — carries it, and none can forget it.

mod admin;
mod api;
mod chaos;
mod dead_letters;
mod error;
mod resources;
mod routes;
mod token;

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

pub use api::Api;
pub use chaos::{ArmedFaults, ChaosAdmin, ChaosState, FaultPlan};
pub use dead_letters::DeadLetterAdmin;
pub use error::ApiError;
pub use resources::{Health, NewOrder, NewProduct, Notification, NotificationQuery, Order, Product};
pub use routes::Routes;
pub use token::BearerToken;

/// Names one request in every service's logs; the edge echoes it back.
pub const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
/// Makes a retried order placement harmless: orders answers a replay with the first order.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// How a command's client behaves, decided once from its options.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The most one request may take, answer included; connecting gets at most 5 s of it.
    pub timeout: Duration,
    /// Idle connections kept per host: the load keeps one per virtual user so none reconnects.
    pub connections: usize,
    /// Sent on every request when set.
    pub token: Option<BearerToken>,
}

/// An HTTP client for the commands: bounded time per request, HTTPS for ALB URLs, the token on
/// every request. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
}

/// What the caller accepts as an answer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expect {
    /// Exactly this status: the public API says precisely what each call answers.
    Status(StatusCode),
    /// Any 2xx: the admin routes answer 200 or 202 depending on whether work was queued.
    Success,
}

impl Expect {
    fn accepts(self, status: StatusCode) -> bool {
        match self {
            Self::Status(expected) => status == expected,
            Self::Success => status.is_success(),
        }
    }
}

/// An answer with the expected status, read to its end.
#[derive(Debug)]
pub(crate) struct Answer {
    method: Method,
    url: String,
    status: StatusCode,
    text: String,
}

impl Answer {
    /// The body as `T`; an empty body reads as JSON `null`.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let text = if self.text.trim().is_empty() { "null" } else { &self.text };
        serde_json::from_str(text).map_err(|source| ApiError::Unreadable {
            method: self.method.clone(),
            url: self.url.clone(),
            status: self.status,
            source,
        })
    }
}

impl Client {
    /// A client with these options.
    pub fn new(options: &ClientOptions) -> Result<Self, ApiError> {
        let mut headers = HeaderMap::new();
        if let Some(token) = &options.token {
            headers.insert(AUTHORIZATION, token.header());
        }
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(options.connections)
            .default_headers(headers)
            .user_agent(concat!("wharf/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ApiError::Setup)?;
        Ok(Self { http })
    }

    /// The underlying client, for a hot path that measures raw answers (the load): the requests
    /// it builds still carry the token.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends `request` and reads the answer to its end; an error unless its status is `expect`ed.
    pub(crate) async fn send(&self, request: RequestBuilder, expect: Expect) -> Result<Answer, ApiError> {
        let request = request.build().map_err(ApiError::Setup)?;
        let (method, url) = (request.method().clone(), request.url().to_string());
        let response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(source) => return Err(ApiError::Unreachable { method, url, source }),
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(text) => text,
            Err(source) => return Err(ApiError::BrokeOff { method, url, source }),
        };
        if !expect.accepts(status) {
            return Err(ApiError::refused(method, url, status, &text));
        }
        Ok(Answer { method, url, status, text })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Mutex};

    use serde_json::json;
    use warp::Filter;
    use warp::http::HeaderMap as WarpHeaders;

    use super::*;
    use crate::targets::{Service, Targets};
    use wharf_bus::Replay;

    /// A stand-in for a deployment: records the `Authorization` header of every request, and
    /// answers each route the way the real services do.
    async fn deployment() -> (String, Arc<Mutex<Vec<(String, Option<String>)>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let routes = warp::method().and(warp::path::full()).and(warp::header::headers_cloned()).map(
            move |method: warp::http::Method, path: warp::path::FullPath, headers: WarpHeaders| {
                let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                record.lock().unwrap().push((format!("{method} {}", path.as_str()), authorization));
                let (status, body) = match (method.as_str(), path.as_str()) {
                    ("GET", "/health") => (200, json!({"status": "UP", "service": "products"})),
                    ("POST", "/api/products") => (201, json!({"id": 7, "name": "x"})),
                    ("POST", "/api/orders") => {
                        (201, json!({"id": 3, "status": "Pending", "createdAt": "2026-01-02T03:04:05Z"}))
                    }
                    ("GET", "/api/notifications") => (200, json!([])),
                    ("DELETE", "/api/products/7") => (204, serde_json::Value::Null),
                    ("GET", "/admin/chaos") => (200, json!({"actors": ["a/0"], "faults": null})),
                    ("POST", "/admin/dlq/replay") => (200, json!({"replayed": 2})),
                    ("GET", "/api/products/404") => {
                        (404, json!({"type": "urn:wharf:problem:not-found", "detail": "no product 404", "status": 404}))
                    }
                    ("POST", "/api/products/invalid") => (
                        422,
                        json!({"type": "urn:wharf:problem:validation", "detail": "invalid product",
                               "errors": {"price": ["must be above 0"], "name": ["too long", "has a tab"]}}),
                    ),
                    _ => (404, json!({"type": "about:blank", "detail": "no such route"})),
                };
                let reply = if body.is_null() { String::new() } else { body.to_string() };
                warp::http::Response::builder().status(status).body(reply).unwrap()
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(warp::serve(routes).incoming(listener).run());
        (url, seen)
    }

    fn client(token: Option<&str>) -> Client {
        let token = token.map(|token| BearerToken::parse(token).unwrap());
        Client::new(&ClientOptions { timeout: Duration::from_secs(5), connections: 1, token }).unwrap()
    }

    fn targets(url: &str) -> Targets {
        Targets { products: url.into(), orders: url.into(), notifications: url.into(), path_routed: false }
    }

    #[tokio::test]
    async fn a_token_set_once_rides_on_every_request_of_every_audience() {
        let (url, seen) = deployment().await;
        let client = client(Some("eyJ.abc.def"));
        let api = Api::new(client.clone(), targets(&url)).unwrap();
        api.health(Service::Products).await.unwrap();
        let product = api.create_product(&NewProduct::new("lamp".into(), 1.0, 3, "test")).await.unwrap();
        api.place_order(&NewOrder { product_id: product.id, quantity: 1, customer_email: "a@b.test" }, "k-1")
            .await
            .unwrap();
        api.notifications(&NotificationQuery::of("a@b.test")).await.unwrap();
        api.delete_product(product.id).await.unwrap();
        ChaosAdmin::new(client.clone(), &url).state().await.unwrap();
        assert_eq!(DeadLetterAdmin::new(client.clone(), &url).replay(&Replay::All).await.unwrap(), 2);
        // The load's hot path builds its requests on the same client.
        client.http().get(api.routes().product(7).unwrap()).send().await.unwrap();

        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 8, "{seen:?}");
        for (request, authorization) in seen.iter() {
            assert_eq!(authorization.as_deref(), Some("Bearer eyJ.abc.def"), "{request}");
        }
    }

    #[tokio::test]
    async fn without_a_token_no_authorization_is_sent() {
        let (url, seen) = deployment().await;
        let api = Api::new(client(None), targets(&url)).unwrap();
        api.health(Service::Products).await.unwrap();
        assert_eq!(seen.lock().unwrap().as_slice(), [("GET /health".to_owned(), None)]);
    }

    #[tokio::test]
    async fn refusals_unreadable_answers_and_silence_are_one_error_type_saying_why() {
        let (url, _) = deployment().await;
        let client = client(None);
        let api = Api::new(client.clone(), targets(&url)).unwrap();

        let missing = api.product(404).await.unwrap_err();
        assert_eq!(missing.status(), Some(StatusCode::NOT_FOUND));
        assert_eq!(missing.to_string(), format!("GET {url}/api/products/404 answered 404 Not Found: no product 404"));

        let invalid = client.send(client.http().post(format!("{url}/api/products/invalid")), Expect::Success).await;
        assert_eq!(
            invalid.unwrap_err().to_string(),
            format!(
                "POST {url}/api/products/invalid answered 422 Unprocessable Entity: invalid product\n  \
                 name: too long; has a tab\n  price: must be above 0"
            )
        );

        // A product document where an order was expected: named as such, with the field missing.
        let wrong = client.send(client.http().post(format!("{url}/api/products")), Expect::Success).await.unwrap();
        let unreadable = wrong.json::<Order>().unwrap_err().to_string();
        assert!(unreadable.starts_with(&format!("POST {url}/api/products answered 201 Created with a body")));
        assert!(unreadable.contains("missing field"), "{unreadable}");

        // Routes that are not mounted: the switch that mounts them is named.
        let off = ChaosAdmin::new(client.clone(), &format!("{url}/nowhere")).state().await.unwrap_err();
        assert!(off.to_string().ends_with("start the service with CHAOS_ENABLED=true"), "{off}");

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let gone = Api::new(client, targets(&format!("http://{closed}"))).unwrap();
        let silence = gone.health(Service::Orders).await.unwrap_err();
        assert!(matches!(silence, ApiError::Unreachable { .. }), "{silence:?}");
        let text = silence.to_string();
        assert!(
            text.starts_with(&format!("cannot reach http://{closed}/health:")) && text.contains("refused"),
            "{text}"
        );
        assert!(silence.cause().contains("refused"), "{}", silence.cause());
    }
}
