//! One service's `/admin/chaos/*` routes (see `wharf_edge::chaos`), mounted only when it runs with
//! `CHAOS_ENABLED=true`: the fault plans and chaos state as typed documents, one call per order.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::admin::AdminRoutes;
use super::{ApiError, Client};

/// A fault plan as `POST /admin/chaos/faults` takes it: latency and errors on the requests
/// under a path prefix, for a while.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultPlan {
    /// Added before each request runs, in ms (0: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// The latency varies by up to this much either way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_jitter_ms: Option<u64>,
    /// The share of requests answered with `error_status` instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// The injected errors' status, 500–599.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_status: Option<u16>,
    /// How long the plan lasts; then it ends by itself.
    pub duration_secs: u64,
    /// Only requests whose path starts with this suffer.
    pub path_prefix: String,
}

impl FaultPlan {
    /// Every request under `path_prefix` waits `ms ± jitter_ms` for `duration_secs`.
    pub fn latency(ms: u64, jitter_ms: u64, duration_secs: u64, path_prefix: &str) -> Self {
        Self {
            latency_ms: Some(ms),
            latency_jitter_ms: Some(jitter_ms),
            error_rate: None,
            error_status: None,
            duration_secs,
            path_prefix: path_prefix.to_owned(),
        }
    }

    /// A share `rate` of the requests under `path_prefix` fail with `status` for `duration_secs`.
    pub fn errors(rate: f64, status: u16, duration_secs: u64, path_prefix: &str) -> Self {
        Self {
            latency_ms: None,
            latency_jitter_ms: None,
            error_rate: Some(rate),
            error_status: Some(status),
            duration_secs,
            path_prefix: path_prefix.to_owned(),
        }
    }
}

/// What `GET /admin/chaos` answers: what is armed and forced, what was injected, what can be
/// killed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChaosState {
    /// Supervised actors that a kill accepts.
    pub actors: Vec<String>,
    /// The armed plan, if any.
    pub faults: Option<ArmedFaults>,
    /// The forced unreadiness, if any.
    pub readiness_override: Option<ForcedReadiness>,
    /// Faults injected since the service started.
    pub injected: Injected,
}

/// The armed fault plan and the time it has left.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ArmedFaults {
    /// 0 when the plan injects no latency.
    pub latency_ms: u64,
    /// Absent from services older than jitter.
    pub latency_jitter_ms: Option<u64>,
    /// 0 when the plan injects no errors.
    pub error_rate: f64,
    /// Absent means the service's default, 503.
    pub error_status: Option<u16>,
    /// Absent means the default, `/api/`.
    pub path_prefix: Option<String>,
    /// Whole seconds until the plan ends.
    pub remaining_secs: Option<u64>,
}

/// A forced unreadiness and the time it has left.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ForcedReadiness {
    /// Whole seconds until readiness recovers by itself.
    pub remaining_secs: Option<u64>,
}

/// Requests delayed and failed by chaos so far.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Injected {
    /// Requests delayed.
    pub latency: u64,
    /// Requests answered with an injected error.
    pub error: u64,
}

#[derive(Debug, Deserialize)]
struct Actors {
    #[serde(default)]
    actors: Vec<String>,
}

/// The chaos routes of the service at one base URL (one pod's, when given one).
#[derive(Debug, Clone)]
pub struct ChaosAdmin {
    routes: AdminRoutes,
}

impl ChaosAdmin {
    /// The chaos routes under `base`.
    pub fn new(client: Client, base: &str) -> Self {
        Self { routes: AdminRoutes::new(client, base, "/admin/chaos", "the service", "CHAOS_ENABLED") }
    }

    /// The base URL the routes are under, without a trailing slash.
    pub fn base(&self) -> &str {
        self.routes.base()
    }

    /// `GET /admin/chaos`.
    pub async fn state(&self) -> Result<ChaosState, ApiError> {
        self.routes.call(self.routes.at(Method::GET, "/admin/chaos")).await
    }

    /// `GET /admin/chaos/actors`: the names a kill accepts.
    pub async fn actors(&self) -> Result<Vec<String>, ApiError> {
        Ok(self.routes.call::<Actors>(self.routes.at(Method::GET, "/admin/chaos/actors")).await?.actors)
    }

    /// `POST /admin/chaos/kill`: its supervisor restarts it.
    pub async fn kill(&self, actor: &str) -> Result<(), ApiError> {
        let request = self.routes.at(Method::POST, "/admin/chaos/kill").json(&json!({ "actor": actor }));
        self.routes.call::<serde_json::Value>(request).await.map(drop)
    }

    /// `POST /admin/chaos/faults`: replaces any plan armed before.
    pub async fn arm(&self, plan: &FaultPlan) -> Result<ChaosState, ApiError> {
        self.routes.call(self.routes.at(Method::POST, "/admin/chaos/faults").json(plan)).await
    }

    /// `DELETE /admin/chaos/faults`.
    pub async fn disarm(&self) -> Result<ChaosState, ApiError> {
        self.routes.call(self.routes.at(Method::DELETE, "/admin/chaos/faults")).await
    }

    /// `POST /admin/chaos/readiness` `{"ready": false, "durationSecs": …}`.
    pub async fn force_unready(&self, duration_secs: u64) -> Result<ChaosState, ApiError> {
        let order = json!({ "ready": false, "durationSecs": duration_secs });
        self.routes.call(self.routes.at(Method::POST, "/admin/chaos/readiness").json(&order)).await
    }

    /// `POST /admin/chaos/readiness` `{"ready": true}`.
    pub async fn restore_readiness(&self) -> Result<ChaosState, ApiError> {
        self.routes.call(self.routes.at(Method::POST, "/admin/chaos/readiness").json(&json!({ "ready": true }))).await
    }
}
