//! Notifications' `/admin/dlq*` routes (mounted with `ADMIN_ENABLED=true`): the order-events
//! dead-letter queue of whatever bus notifications runs on — the only way to a memory bus's, which
//! lives inside the notifications process.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use wharf_bus::Replay;

use super::admin::AdminRoutes;
use super::{ApiError, Client};

#[derive(Debug, Deserialize)]
struct Replayed {
    replayed: u64,
}

#[derive(Debug, Deserialize)]
struct Purged {
    purged: u64,
}

/// The dead-letter routes of the notifications service at one base URL.
#[derive(Debug, Clone)]
pub struct DeadLetterAdmin {
    routes: AdminRoutes,
}

impl DeadLetterAdmin {
    /// The routes under `base`.
    pub fn new(client: Client, base: &str) -> Self {
        Self { routes: AdminRoutes::new(client, base, "/admin/dlq", "notifications", "ADMIN_ENABLED") }
    }

    /// The base URL the routes are under, without a trailing slash.
    pub fn base(&self) -> &str {
        self.routes.base()
    }

    /// `GET /admin/dlq?limit=N`: the listing document (`wharf_bus::dead_letter_listing`), kept as
    /// JSON since `wharf dlq list --json` prints it as the service wrote it.
    pub async fn list(&self, limit: u16) -> Result<Value, ApiError> {
        self.routes.call(self.routes.at(Method::GET, &format!("/admin/dlq?limit={limit}"))).await
    }

    /// `POST /admin/dlq/replay`: how many went back to the main queue.
    pub async fn replay(&self, which: &Replay) -> Result<u64, ApiError> {
        let body = match which {
            Replay::All => json!({ "all": true }),
            Replay::Ids(ids) => json!({ "ids": ids }),
        };
        Ok(self.routes.call::<Replayed>(self.routes.at(Method::POST, "/admin/dlq/replay").json(&body)).await?.replayed)
    }

    /// `DELETE /admin/dlq`: how many were deleted.
    pub async fn purge(&self) -> Result<u64, ApiError> {
        Ok(self.routes.call::<Purged>(self.routes.at(Method::DELETE, "/admin/dlq")).await?.purged)
    }
}
