//! Starts the real products service on an ephemeral port for black-box tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use products::ProductsConfig;
use wharf_runtime::{Env, RunningService};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A running service, its base URL and an HTTP client.
pub struct TestServer {
    pub service: Option<RunningService>,
    pub base: String,
    pub client: reqwest::Client,
    pub namespace: String,
    dir: PathBuf,
}

/// A unique name for this test process and call.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

impl TestServer {
    /// Products over a fresh SQLite file.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Products with extra environment variables (on top of a fresh SQLite file and port 0).
    pub async fn start_with(vars: &[(&str, &str)]) -> Self {
        let namespace = unique("products");
        let dir = std::env::temp_dir().join(format!("wharf-test-{namespace}"));
        let mut env = Env::from_pairs(vars.iter().copied());
        env.set_default("PORT", "0");
        env.set_default("DATABASE_URL", format!("sqlite://{}/products.db?mode=rwc", dir.display()));
        env.set_default("SHUTDOWN_GRACE_SECS", "2");
        let mut config = ProductsConfig::from_env(&mut env);
        env.finish().expect("test configuration is valid");
        config.actor_namespace = namespace.clone();
        let service = products::start(config).await.expect("products starts");
        let base = format!("http://{}", service.local_addr());
        let client = reqwest::Client::builder().build().expect("client");
        Self { service: Some(service), base, client, namespace, dir }
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

    /// Stops the service and removes its files.
    pub async fn stop(mut self) {
        if let Some(service) = self.service.take() {
            service.shutdown().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
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

/// A fresh, empty PostgreSQL database for one test, dropped by [`PgTestDb::drop_db`].
/// The server is `WHARF_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
/// when it cannot be reached the test fails: the integration tier never skips.
pub struct PgTestDb {
    pub url: String,
    admin_url: String,
    name: String,
}

impl PgTestDb {
    pub async fn create() -> Self {
        use sqlx::Connection;
        let admin_url = std::env::var("WHARF_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = unique("wharf_test").replace('-', "_");
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|err| panic!("PostgreSQL at {admin_url} is required by the integration tier: {err}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let base = admin_url.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin_url);
        Self { url: format!("{base}/{name}"), admin_url, name }
    }

    pub async fn drop_db(self) {
        use sqlx::Connection;
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
                .execute(&mut admin)
                .await;
        }
    }
}
