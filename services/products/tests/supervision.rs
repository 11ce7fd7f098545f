//! The products service under actor failure: killed store actors are restarted, callers get
//! answers (success or 503, never a hang or a 500), and a restart storm escalates to liveness.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_store_actors_under_load_gives_only_success_or_503_and_recovers() {
    let server =
        TestServer::start_with(&[("DATABASE_MAX_CONNECTIONS", "4"), ("SUPERVISOR_MAX_RESTARTS", "1000")]).await;
    let seeded = server.create("seed", 3.0, 10).await;
    let id = seeded["id"].as_i64().unwrap();
    let store = format!("{}/store", server.namespace);
    // Before any restart, every actor already has its restart series, at zero.
    let metrics = server.get("/metrics").await.text().await.unwrap();
    for actor in [store.clone(), format!("{store}/0")] {
        let series = format!("wharf_actor_restarts_total{{child=\"{actor}\"}} 0\n");
        assert!(metrics.contains(&series), "{series} is not on /metrics: {metrics}");
    }

    let mut load = tokio::task::JoinSet::new();
    for i in 0..300 {
        let (client, base) = (server.client.clone(), server.base.clone());
        load.spawn(async move {
            let request = match i % 3 {
                0 => client.get(format!("{base}/api/products")),
                1 => client.get(format!("{base}/api/products/{id}")),
                _ => client
                    .post(format!("{base}/api/products"))
                    .json(&json!({"name": format!("n{i}"), "price": 1, "stock": 1})),
            };
            let response =
                tokio::time::timeout(Duration::from_secs(20), request.send()).await.expect("no request hangs");
            let response = response.expect("the server answers");
            let status = response.status().as_u16();
            if status == 503 {
                assert!(response.headers().contains_key("retry-after"), "503 says when to retry");
            }
            status
        });
    }
    // Kill workers and the pool itself while the requests run.
    for round in 0..10 {
        let victim = if round % 4 == 3 { store.clone() } else { format!("{store}/{}", round % 4) };
        let _ = wharf_actors::chaos::kill(&victim);
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    while let Some(status) = load.join_next().await {
        *statuses.entry(status.unwrap()).or_default() += 1;
    }
    assert!(statuses.keys().all(|s| [200, 201, 503].contains(s)), "only success or 503: {statuses:?}");
    assert!(statuses.get(&200).copied().unwrap_or(0) + statuses.get(&201).copied().unwrap_or(0) > 0, "{statuses:?}");

    // Recovered by itself: every request succeeds again once the restarts are done.
    let mut recovered = false;
    for _ in 0..50 {
        if server.get("/api/products").await.status() == 200
            && server.get(&format!("/api/products/{id}")).await.status() == 200
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the store came back");
    let health: Value = server.get("/health").await.json().await.unwrap();
    assert_eq!(health["status"], "healthy");
    assert_eq!(server.get("/health/live").await.status(), 200);
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("wharf_actor_restarts_total{child="), "restarts are exported: {metrics}");
    eprintln!("statuses under chaos: {statuses:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_restart_storm_escalates_to_liveness_and_health() {
    let server = TestServer::start_with(&[("SUPERVISOR_MAX_RESTARTS", "2"), ("SUPERVISOR_WINDOW_SECS", "60")]).await;
    let store = format!("{}/store", server.namespace);
    let liveness = server.service().liveness().clone();
    for _ in 0..10 {
        if !liveness.is_alive() {
            break;
        }
        let _ = wharf_actors::chaos::kill(&store);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let reason = tokio::time::timeout(Duration::from_secs(10), liveness.failed()).await.expect("escalated");
    assert!(reason.contains("store"), "the reason names the child: {reason}");

    let live = server.get("/health/live").await;
    assert_eq!(live.status(), 503);
    let body: Value = live.json().await.unwrap();
    assert_eq!(body["status"], "dead");
    let health = server.get("/health").await;
    assert_eq!(health.status(), 503);
    let body: Value = health.json().await.unwrap();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(server.get("/health/ready").await.status(), 503);
    // With the actors gone, API calls fail fast with 503 rather than hang.
    let response = tokio::time::timeout(Duration::from_secs(5), server.client.get(server.url("/api/products")).send())
        .await
        .expect("no hang")
        .unwrap();
    assert_eq!(response.status(), 503);
    server.stop().await;
}
