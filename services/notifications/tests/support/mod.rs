//! A real notifications service in-process, and OrderPlaced events to feed it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use notifications::NotificationsConfig;
use serde_json::Value;
use wharf_bus::{Bus, BusConfig, Envelope, MemoryBus, QueueName};
use wharf_events::OrderPlaced;
use wharf_runtime::{Env, RunningService};
pub use wharf_testkit::{TempDir, unique};

pub struct Server {
    pub service: Option<RunningService>,
    pub base: String,
    pub client: reqwest::Client,
    pub namespace: String,
    pub bus: Arc<dyn Bus>,
    pub queue: QueueName,
    pub dir: TempDir,
}

/// Notifications on a fresh SQLite file (or `DATABASE_URL` in `vars`), consuming `queue` on `bus`.
pub async fn start(bus: Arc<dyn Bus>, queue: &QueueName, vars: &[(&str, &str)]) -> Server {
    let dir = TempDir::new("notifications");
    start_in(dir, bus, queue, vars).await
}

pub async fn start_in(dir: TempDir, bus: Arc<dyn Bus>, queue: &QueueName, vars: &[(&str, &str)]) -> Server {
    let mut env = Env::from_pairs(vars.iter().copied());
    env.set_default("PORT", "0");
    env.set_default("DATABASE_URL", dir.sqlite_url("notifications.db"));
    env.set_default("SEND_DELAY_EMAIL_MS", "0");
    env.set_default("SEND_DELAY_SMS_MS", "0");
    env.set_default("EVENT_RETRY_DELAY_MS", "50");
    env.set_default("SHUTDOWN_GRACE_SECS", "2");
    env.set_default("BUS_QUEUE", queue.as_str());
    let mut config = NotificationsConfig::from_env(&mut env);
    env.finish().expect("valid notifications configuration");
    let namespace = unique("notifications");
    config.actor_namespace = namespace.clone();
    let service = notifications::start_with_bus(config, bus.clone()).await.expect("notifications starts");
    let base = format!("http://{}", service.local_addr());
    Server { service: Some(service), base, client: reqwest::Client::new(), namespace, bus, queue: queue.clone(), dir }
}

pub fn memory_bus(max_attempts: u32) -> Arc<dyn Bus> {
    Arc::new(MemoryBus::with_limits(100_000, max_attempts, Duration::from_secs(5)))
}

pub fn default_queue() -> QueueName {
    BusConfig::memory().queue
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.client.get(self.url(path)).send().await.unwrap().json().await.unwrap()
    }

    /// All notifications (pages through the list).
    pub async fn all(&self) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let page: Vec<Value> = self
                .get_json(&format!("/api/notifications?limit=1000&offset={}", all.len()))
                .await
                .as_array()
                .cloned()
                .unwrap();
            let done = page.len() < 1000;
            all.extend(page);
            if done {
                return all;
            }
        }
    }

    /// Waits until `count` notifications are Sent (or `within` passes); returns every notification.
    pub async fn wait_sent(&self, count: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let all = self.all().await;
            let sent = all.iter().filter(|n| n["status"] == "Sent").count();
            if sent >= count || tokio::time::Instant::now() > deadline {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(&mut self) {
        if let Some(service) = self.service.take() {
            service.shutdown().await;
        }
    }
}

/// An OrderPlaced envelope for order `order_id`.
pub fn order_placed(order_id: i64, email: &str) -> Envelope {
    let event = OrderPlaced { order_id, customer_email: email.to_owned(), product_id: 7, quantity: 2 };
    Envelope::new(&event, format!("corr-{order_id}"), None).unwrap()
}
