//! `/health`, `/health/live` and `/health/ready`.
//!
//! - **live** answers whether the process should be restarted: 503 once supervision escalated.
//! - **ready** answers whether this instance should get traffic: 503 while a required
//!   dependency (database, bus) does not answer, or while the server drains for shutdown.
//! - **health** is the summary for humans and dashboards: `healthy`, `degraded` (serving, but a
//!   dependency is impaired and a fallback is in use) or `unhealthy` (503).
//!
//! A degraded check keeps readiness at 200 on purpose: taking every replica out of service
//! because something *behind* it is impaired would turn a partial outage into a full one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::future::{BoxFuture, join_all};
use http::StatusCode;
use serde::Serialize;
use warp::Filter;
use warp::reply::Response;

use crate::request::route;
use crate::server::EdgeState;

/// How long one check may take before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A dependency's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Up,
    /// Impaired, but the service still serves (e.g. from a fallback cache).
    Degraded,
    /// Not answering: the service cannot do its work.
    Down,
}

/// What one check found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckOutcome {
    pub status: CheckStatus,
    /// Why, when not up (or a useful fact when up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl CheckOutcome {
    /// Up, with nothing to add.
    pub fn up() -> Self {
        Self { status: CheckStatus::Up, detail: None }
    }

    /// A verdict with a detail.
    pub fn with(status: CheckStatus, detail: impl Into<String>) -> Self {
        Self { status, detail: Some(detail.into()) }
    }
}

/// A dependency the service needs, checked on `/health` and `/health/ready`.
pub trait Check: Send + Sync + 'static {
    /// The key under `checks` in the health body, e.g. `database`.
    fn name(&self) -> &'static str;
    /// Looks at the dependency now.
    fn check(&self) -> BoxFuture<'_, CheckOutcome>;
}

/// The `/health` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthReport {
    /// `healthy`, `degraded` or `unhealthy`.
    #[schema(example = "healthy")]
    pub status: &'static str,
    /// The service's name, e.g. `ProductService`.
    #[schema(example = "ProductService")]
    pub service: &'static str,
    /// Each check by name.
    pub checks: BTreeMap<&'static str, CheckOutcome>,
}

async fn run_checks(state: &EdgeState) -> BTreeMap<&'static str, CheckOutcome> {
    let outcomes = join_all(state.checks.iter().map(|check| async move {
        let outcome = tokio::time::timeout(CHECK_TIMEOUT, check.check())
            .await
            .unwrap_or_else(|_| CheckOutcome::with(CheckStatus::Down, "no answer within 2 s"));
        (check.name(), outcome)
    }))
    .await;
    let mut checks: BTreeMap<_, _> = outcomes.into_iter().collect();
    let liveness = match state.liveness.failure() {
        None => CheckOutcome::up(),
        Some(reason) => CheckOutcome::with(CheckStatus::Down, reason),
    };
    checks.insert("actors", liveness);
    if let Some(forced) = state.chaos.readiness_check() {
        checks.insert("chaos", forced);
    }
    checks
}

/// Health answers must never be cached by a proxy: they describe this instant.
fn json(status: StatusCode, body: &impl Serialize) -> Response {
    let mut response = crate::reply::json(status, body);
    response.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    response
}

/// Summary health of the service.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "healthy or degraded", body = HealthReport),
              (status = 503, description = "unhealthy", body = HealthReport)))]
pub(crate) async fn health(state: Arc<EdgeState>) -> Result<Response, std::convert::Infallible> {
    let checks = run_checks(&state).await;
    let worst = checks.values().map(|c| c.status).max().unwrap_or(CheckStatus::Up);
    let (status, code) = match worst {
        CheckStatus::Up => ("healthy", StatusCode::OK),
        CheckStatus::Degraded => ("degraded", StatusCode::OK),
        CheckStatus::Down => ("unhealthy", StatusCode::SERVICE_UNAVAILABLE),
    };
    Ok(json(code, &HealthReport { status, service: state.service.display, checks }))
}

/// Liveness: whether the actor system is alive.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "alive"), (status = 503, description = "supervision escalated; restart me")))]
pub(crate) async fn live(state: Arc<EdgeState>) -> Result<Response, std::convert::Infallible> {
    Ok(match state.liveness.failure() {
        None => json(StatusCode::OK, &serde_json::json!({ "status": "alive" })),
        Some(reason) => {
            json(StatusCode::SERVICE_UNAVAILABLE, &serde_json::json!({ "status": "dead", "reason": reason }))
        }
    })
}

/// Readiness: whether this instance should receive traffic.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "ready"), (status = 503, description = "a dependency is down, or shutting down")))]
pub(crate) async fn ready(state: Arc<EdgeState>) -> Result<Response, std::convert::Infallible> {
    let checks = run_checks(&state).await;
    let draining = state.draining.load(Ordering::Acquire);
    let down = checks.values().any(|c| c.status == CheckStatus::Down);
    let (status, code) = if draining {
        ("draining", StatusCode::SERVICE_UNAVAILABLE)
    } else if down {
        ("unready", StatusCode::SERVICE_UNAVAILABLE)
    } else {
        ("ready", StatusCode::OK)
    };
    Ok(json(code, &serde_json::json!({ "status": status, "checks": checks })))
}

/// The three health routes.
pub(crate) fn routes(state: Arc<EdgeState>) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let with_state = warp::any().map(move || state.clone());
    let health = warp::path!("health").and(warp::get()).and(route("/health")).and(with_state.clone()).and_then(health);
    let live = warp::path!("health" / "live")
        .and(warp::get())
        .and(route("/health/live"))
        .and(with_state.clone())
        .and_then(live);
    let ready =
        warp::path!("health" / "ready").and(warp::get()).and(route("/health/ready")).and(with_state).and_then(ready);
    health.or(live).unify().or(ready).unify()
}
