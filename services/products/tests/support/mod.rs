//! Starts the real products service on an ephemeral port for black-box tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use products::ProductsConfig;
use wharf_runtime::{Env, RunningService};
pub use wharf_testkit::{TempDir, unique};

/// A running service, its base URL and an HTTP client.
pub struct TestServer {
    pub service: Option<RunningService>,
    pub base: String,
    pub client: reqwest::Client,
    pub namespace: String,
    _dir: TempDir,
}

impl TestServer {
    /// Products over a fresh SQLite file.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Products with extra environment variables (on top of a fresh SQLite file and port 0).
    pub async fn start_with(vars: &[(&str, &str)]) -> Self {
        let namespace = unique("products");
        let dir = TempDir::new(&namespace);
        let mut env = Env::from_pairs(vars.iter().copied());
        env.set_default("PORT", "0");
        env.set_default("DATABASE_URL", dir.sqlite_url("products.db"));
        env.set_default("SHUTDOWN_GRACE_SECS", "2");
        let mut config = ProductsConfig::from_env(&mut env);
        env.finish().expect("test configuration is valid");
        config.actor_namespace = namespace.clone();
        let service = products::start(config).await.expect("products starts");
        let base = format!("http://{}", service.local_addr());
        let client = reqwest::Client::builder().build().expect("client");
        Self { service: Some(service), base, client, namespace, _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn service(&self) -> &RunningService {
        self.service.as_ref().expect("service running")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request sent")
    }

    pub async fn put_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client.put(self.url(path)).json(body).send().await.expect("request sent")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).send().await.expect("request sent")
    }

    /// Creates a product and returns its JSON.
    pub async fn create(&self, name: &str, price: f64, stock: i64) -> serde_json::Value {
        let response =
            self.post_json("/api/products", &serde_json::json!({"name": name, "price": price, "stock": stock})).await;
        assert_eq!(response.status(), 201);
        response.json().await.expect("json")
    }

    /// Stops the service (its files go when the server is dropped).
    pub async fn stop(mut self) {
        if let Some(service) = self.service.take() {
            service.shutdown().await;
        }
    }
}

/// Asserts a problem+json body with `status` and returns it.
pub async fn problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let correlation = response.headers()["x-correlation-id"].to_str().unwrap().to_owned();
    let body: serde_json::Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status);
    assert_eq!(body["correlationId"], correlation.as_str(), "problem carries the correlation id");
    for field in ["type", "title", "detail", "instance"] {
        assert!(body[field].is_string(), "problem has {field}: {body}");
    }
    body
}
