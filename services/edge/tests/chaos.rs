//! `/admin/chaos/*` fault injection, black-box: a real edge on an ephemeral port serving a
//! trivial API, spoken to over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{Value, json};
use warp::Filter;
use wharf_actors::Liveness;
use wharf_edge::reply::json as reply_json;
use wharf_edge::{Edge, EdgeConfig, RunningEdge, ServiceName, route};

/// An edge serving `GET /api/things`, which counts how often its handler really ran.
struct TestEdge {
    running: Option<RunningEdge>,
    base: String,
    client: reqwest::Client,
    handled: Arc<AtomicUsize>,
}

impl TestEdge {
    async fn start(chaos_enabled: bool) -> Self {
        let config = EdgeConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            body_limit: 64 * 1024,
            shutdown_grace: Duration::from_secs(1),
            chaos_enabled,
            port_variable: "PORT",
            connections: Default::default(),
            auth: Default::default(),
            rate_limit: Default::default(),
        };
        let service = ServiceName { display: "TestService", short: "test" };
        let edge = Edge::new(service, config, Liveness::new());
        let handled = Arc::new(AtomicUsize::new(0));
        let counter = handled.clone();
        let api = warp::path!("api" / "things").and(warp::get()).and(route("/api/things")).map(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            reply_json(StatusCode::OK, &json!([]))
        });
        let running = edge.serve(api).await.expect("edge serves");
        let base = format!("http://{}", running.local_addr());
        Self { running: Some(running), base, client: reqwest::Client::new(), handled }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).send().await.expect("request sent")
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client.post(format!("{}{path}", self.base)).json(&body).send().await.expect("request sent")
    }

    async fn delete(&self, path: &str) -> reqwest::Response {
        self.client.delete(format!("{}{path}", self.base)).send().await.expect("request sent")
    }

    /// Arms a plan and returns the state the edge answered with.
    async fn faults(&self, plan: Value) -> Value {
        let response = self.post("/admin/chaos/faults", plan).await;
        assert_eq!(response.status(), 202);
        response.json().await.unwrap()
    }

    async fn status(&self, path: &str) -> u16 {
        self.get(path).await.status().as_u16()
    }

    async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    response.json().await.unwrap()
}

async fn timed(edge: &TestEdge, path: &str) -> (u16, Duration) {
    let started = Instant::now();
    let status = edge.status(path).await;
    (status, started.elapsed())
}

#[tokio::test]
async fn disabled_chaos_is_404_on_every_path() {
    let edge = TestEdge::start(false).await;
    problem(edge.get("/admin/chaos").await, 404).await;
    problem(edge.get("/admin/chaos/actors").await, 404).await;
    problem(edge.post("/admin/chaos/kill", json!({"actor": "x"})).await, 404).await;
    problem(edge.post("/admin/chaos/faults", json!({"errorRate": 1, "durationSecs": 5})).await, 404).await;
    problem(edge.delete("/admin/chaos/faults").await, 404).await;
    problem(edge.post("/admin/chaos/readiness", json!({"ready": false, "durationSecs": 5})).await, 404).await;
    assert_eq!(edge.status("/api/things").await, 200);
    assert_eq!(edge.status("/health/ready").await, 200);
    let metrics = edge.get("/metrics").await.text().await.unwrap();
    assert!(!metrics.contains("wharf_chaos_injected"), "no chaos series without chaos");
    edge.stop().await;
}

#[tokio::test]
async fn latency_delays_the_api_but_not_health_metrics_or_admin() {
    let edge = TestEdge::start(true).await;
    let state = edge.faults(json!({"latencyMs": 700, "durationSecs": 30})).await;
    assert_eq!(state["faults"]["latencyMs"], 700);
    assert_eq!(state["faults"]["pathPrefix"], "/api/");

    let (status, took) = timed(&edge, "/api/things").await;
    assert_eq!(status, 200);
    assert!(took >= Duration::from_millis(700), "the API waited {took:?}");
    assert_eq!(edge.handled.load(Ordering::Relaxed), 1, "the route ran after the delay");
    for path in ["/health", "/health/ready", "/health/live", "/metrics", "/admin/chaos"] {
        let (status, took) = timed(&edge, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(took < Duration::from_millis(500), "{path} took {took:?}");
    }
    let metrics = edge.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"wharf_chaos_injected_total{kind="latency"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"wharf_chaos_injected_total{kind="error"} 0"#), "{metrics}");
    edge.stop().await;
}

#[tokio::test]
async fn jittered_latency_stays_within_its_bounds() {
    let edge = TestEdge::start(true).await;
    edge.faults(json!({"latencyMs": 300, "latencyJitterMs": 200, "durationSecs": 30})).await;
    for _ in 0..5 {
        let (status, took) = timed(&edge, "/api/things").await;
        assert_eq!(status, 200);
        assert!(took >= Duration::from_millis(100), "{took:?}");
    }
    edge.stop().await;
}

#[tokio::test]
async fn error_rate_one_fails_every_api_request_with_the_chosen_status_and_spares_health() {
    let edge = TestEdge::start(true).await;
    edge.faults(json!({"errorRate": 1.0, "durationSecs": 30})).await;
    let response = edge.get("/api/things").await;
    assert_eq!(response.headers()["retry-after"], "1");
    assert!(response.headers().contains_key("x-correlation-id"));
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body = problem(response, 503).await;
    assert_eq!(body["type"], "urn:wharf:problem:chaos");
    assert!(body["detail"].as_str().unwrap().contains("injected by chaos"), "{body}");
    assert_eq!(body["instance"], "/api/things");
    assert_eq!(edge.handled.load(Ordering::Relaxed), 0, "an injected error replaces the route");
    assert_eq!(edge.status("/health/ready").await, 200);
    assert_eq!(edge.status("/health").await, 200);
    assert_eq!(edge.status("/metrics").await, 200);

    // A new plan replaces the previous one.
    edge.faults(json!({"errorRate": 1, "errorStatus": 502, "durationSecs": 30})).await;
    let response = edge.get("/api/things").await;
    assert!(response.headers().get("retry-after").is_none(), "Retry-After only with 503");
    problem(response, 502).await;
    let metrics = edge.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"wharf_chaos_injected_total{kind="error"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"route="chaos",status="502""#), "injected errors are labelled: {metrics}");
    edge.stop().await;
}

#[tokio::test]
async fn error_rate_half_fails_about_half() {
    let edge = TestEdge::start(true).await;
    edge.faults(json!({"errorRate": 0.5, "durationSecs": 60})).await;
    let mut failed = 0;
    for _ in 0..200 {
        match edge.status("/api/things").await {
            503 => failed += 1,
            200 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert!((60..=140).contains(&failed), "{failed} of 200 failed");
    assert_eq!(edge.handled.load(Ordering::Relaxed), 200 - failed);
    let state: Value = edge.get("/admin/chaos").await.json().await.unwrap();
    assert_eq!(state["injected"]["error"], failed);
    edge.stop().await;
}

#[tokio::test]
async fn faults_and_forced_unreadiness_expire_by_themselves() {
    let edge = TestEdge::start(true).await;
    let state = edge.faults(json!({"errorRate": 1, "durationSecs": 1})).await;
    assert_eq!(state["faults"]["remainingSecs"], 1);
    let response = edge.post("/admin/chaos/readiness", json!({"ready": false, "durationSecs": 1})).await;
    assert_eq!(response.status(), 202);
    assert_eq!(edge.status("/api/things").await, 503);
    assert_eq!(edge.status("/health/ready").await, 503);

    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(edge.status("/api/things").await, 200);
    assert_eq!(edge.status("/health/ready").await, 200);
    let state: Value = edge.get("/admin/chaos").await.json().await.unwrap();
    assert_eq!(state["faults"], Value::Null, "{state}");
    assert_eq!(state["readinessOverride"], Value::Null, "{state}");
    edge.stop().await;
}

#[tokio::test]
async fn delete_clears_the_faults() {
    let edge = TestEdge::start(true).await;
    edge.faults(json!({"errorRate": 1, "latencyMs": 50, "durationSecs": 60})).await;
    assert_eq!(edge.status("/api/things").await, 503);
    let response = edge.delete("/admin/chaos/faults").await;
    assert_eq!(response.status(), 200);
    let state: Value = response.json().await.unwrap();
    assert_eq!(state["faults"], Value::Null);
    let (status, took) = timed(&edge, "/api/things").await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_millis(500), "{took:?}");
    edge.stop().await;
}

#[tokio::test]
async fn readiness_can_be_forced_down_and_restored_while_liveness_stays_up() {
    let edge = TestEdge::start(true).await;
    let response = edge.post("/admin/chaos/readiness", json!({"ready": false, "durationSecs": 60})).await;
    assert_eq!(response.status(), 202);
    let state: Value = response.json().await.unwrap();
    assert_eq!(state["readinessOverride"]["ready"], false);
    assert_eq!(state["readinessOverride"]["durationSecs"], 60);

    let ready = edge.get("/health/ready").await;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["chaos"]["status"], "down", "{body}");
    assert!(body["checks"]["chaos"]["detail"].as_str().unwrap().contains("forced"), "{body}");
    let health = edge.get("/health").await;
    assert_eq!(health.status(), 503);
    let body: Value = health.json().await.unwrap();
    assert_eq!(body["checks"]["chaos"]["status"], "down", "{body}");
    assert_eq!(edge.status("/health/live").await, 200, "liveness is untouched");
    assert_eq!(edge.status("/api/things").await, 200, "the API still serves");

    let response = edge.post("/admin/chaos/readiness", json!({"ready": true})).await;
    assert_eq!(response.status(), 202);
    let ready = edge.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert!(body["checks"].get("chaos").is_none(), "{body}");
    edge.stop().await;
}

#[tokio::test]
async fn bad_orders_are_400_naming_each_field_and_change_nothing() {
    let edge = TestEdge::start(true).await;
    let body = problem(
        edge.post("/admin/chaos/faults", json!({"errorRate": 1.5, "durationSecs": 0, "latency": 300})).await,
        400,
    )
    .await;
    assert_eq!(body["type"], "urn:wharf:problem:validation");
    for field in ["errorRate", "durationSecs", "latency"] {
        assert!(body["errors"][field].is_array(), "{field} named in {body}");
    }
    let body = problem(edge.post("/admin/chaos/faults", json!({"errorRate": 0.2})).await, 400).await;
    assert!(body["errors"]["durationSecs"].is_array(), "{body}");
    let body = problem(
        edge.post(
            "/admin/chaos/faults",
            json!({"errorRate": 1, "errorStatus": 404, "durationSecs": 5, "pathPrefix": "/health"}),
        )
        .await,
        400,
    )
    .await;
    assert!(body["errors"]["errorStatus"].is_array() && body["errors"]["pathPrefix"].is_array(), "{body}");
    let body = problem(edge.post("/admin/chaos/readiness", json!({"ready": false})).await, 400).await;
    assert!(body["errors"]["durationSecs"].is_array(), "{body}");
    let not_json = edge
        .client
        .post(format!("{}/admin/chaos/faults", edge.base))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    problem(not_json, 400).await;

    let state: Value = edge.get("/admin/chaos").await.json().await.unwrap();
    assert_eq!(state["faults"], Value::Null);
    assert_eq!(state["readinessOverride"], Value::Null);
    assert_eq!(state["actors"], json!([]));
    assert_eq!(edge.status("/api/things").await, 200);
    edge.stop().await;
}
