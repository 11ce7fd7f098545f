//! `/admin/chaos/*`: fault injection for drills and tests, mounted only when `CHAOS_ENABLED`
//! (otherwise every path here is a plain 404). These are operator routes, deliberately left out
//! of the OpenAPI document; `docs/operations.md` ("Chaos drills") shows them in use.
//!
//! | method path | body | answer |
//! |---|---|---|
//! | `GET /admin/chaos` | — | 200 the chaos state (below) |
//! | `GET /admin/chaos/actors` | — | 200 `{"actors": [...]}` |
//! | `POST /admin/chaos/kill` | `{"actor": "products/store/0"}` | 202 `{"killed": ...}`; 404 unknown actor |
//! | `POST /admin/chaos/faults` | a fault plan (below) | 202 the chaos state |
//! | `DELETE /admin/chaos/faults` | — | 200 the chaos state |
//! | `POST /admin/chaos/readiness` | `{"ready": false, "durationSecs": 30}` or `{"ready": true}` | 202 the chaos state |
//!
//! **Kill.** Names contain `/` (`products/store/0`), hence a body rather than a path parameter.
//! The actor's supervisor restarts it; enough kills within the window escalate, as a crash would.
//!
//! **Faults.** `{"latencyMs": 0..=60000, "latencyJitterMs": 0..=latencyMs, "errorRate": 0..=1,
//! "errorStatus": 500..=599 (503), "durationSecs": 1..=3600 (required), "pathPrefix": "/api/"}`:
//! for `durationSecs`, each request whose path starts with `pathPrefix` first waits `latencyMs ±
//! latencyJitterMs` (a timer, not a blocked thread), then with probability `errorRate` gets a
//! problem+json error of status `errorStatus` (type `urn:wharf:problem:chaos`, `Retry-After: 1`
//! on 503) instead of running its route. `/health*`, `/metrics` and `/admin/*` are never
//! affected. A new plan replaces the previous one; the plan ends by itself. Unknown fields are
//! refused: a misspelt drill must not pass for a working one.
//!
//! **Readiness.** `{"ready": false, "durationSecs": n}` makes `/health/ready` (and `/health`)
//! answer 503 with a check named `chaos` for `n` seconds or until `{"ready": true}`. Liveness is
//! untouched.
//!
//! **State.** `{"actors": [...], "faults": {<plan>, "remainingSecs"} | null, "readinessOverride":
//! {"ready": false, "durationSecs", "remainingSecs"} | null, "injected": {"latency": n, "error": n}}`.
//!
//! Every order is logged at warn; injected faults are counted in
//! `wharf_chaos_injected_total{kind="latency"|"error"}`.

mod drill;
mod faults;
mod fields;
mod readiness;

use std::sync::Arc;

use http::StatusCode;
use warp::Filter;
use warp::reply::Response;

pub(crate) use drill::Drill;

use self::faults::FaultPlan;
use self::readiness::ReadinessOrder;
use crate::body::json_body;
use crate::problem::{FieldErrors, Problem};
use crate::reply::json;
use crate::request::route;
use crate::server::EdgeState;

fn actors(state: &EdgeState) -> Vec<String> {
    state.supervisor.as_ref().map(|s| s.children()).unwrap_or_default()
}

fn state_reply(state: &EdgeState, status: StatusCode) -> Response {
    json(status, &state.chaos.state(actors(state)))
}

async fn show(state: Arc<EdgeState>) -> Result<Response, std::convert::Infallible> {
    Ok(state_reply(&state, StatusCode::OK))
}

async fn list(state: Arc<EdgeState>) -> Result<Response, std::convert::Infallible> {
    Ok(json(StatusCode::OK, &serde_json::json!({ "actors": actors(&state) })))
}

async fn kill(state: Arc<EdgeState>, body: serde_json::Value) -> Result<Response, std::convert::Infallible> {
    let Some(name) = body.get("actor").and_then(|v| v.as_str()) else {
        let mut errors = FieldErrors::new();
        errors.add("actor", "must be the name of an actor, see GET /admin/chaos/actors");
        return Ok(Problem::validation(errors).into_response());
    };
    // Only this service's supervised actors: the registry is process-wide, and in `wharf up`
    // it holds the other services' actors too.
    if !actors(&state).iter().any(|a| a == name) {
        return Ok(Problem::not_found(format!("No killable actor is named {name:?}.")).into_response());
    }
    match wharf_actors::chaos::kill(name) {
        Ok(()) => {
            tracing::warn!(actor = name, "chaos: actor killed on request");
            Ok(json(StatusCode::ACCEPTED, &serde_json::json!({ "killed": name })))
        }
        Err(err) => Ok(Problem::not_found(err.to_string()).into_response()),
    }
}

async fn inject(state: Arc<EdgeState>, body: serde_json::Value) -> Result<Response, std::convert::Infallible> {
    Ok(match FaultPlan::parse(&body) {
        Ok(plan) => {
            state.chaos.arm(plan);
            state_reply(&state, StatusCode::ACCEPTED)
        }
        Err(problem) => problem.into_response(),
    })
}

async fn clear(state: Arc<EdgeState>) -> Result<Response, std::convert::Infallible> {
    state.chaos.clear();
    Ok(state_reply(&state, StatusCode::OK))
}

async fn readiness(state: Arc<EdgeState>, body: serde_json::Value) -> Result<Response, std::convert::Infallible> {
    Ok(match ReadinessOrder::parse(&body) {
        Ok(ReadinessOrder::ForceUnready { duration_secs }) => {
            state.chaos.force_unready(duration_secs);
            state_reply(&state, StatusCode::ACCEPTED)
        }
        Ok(ReadinessOrder::Restore) => {
            state.chaos.restore_ready();
            state_reply(&state, StatusCode::ACCEPTED)
        }
        Err(problem) => problem.into_response(),
    })
}

/// The chaos routes' paths and methods, for the edge's route table.
pub(crate) fn add_routes(table: &mut crate::route_table::RouteTable) {
    use http::Method;
    table.add("/admin/chaos", &[Method::GET]);
    table.add("/admin/chaos/actors", &[Method::GET]);
    table.add("/admin/chaos/kill", &[Method::POST]);
    table.add("/admin/chaos/faults", &[Method::POST, Method::DELETE]);
    table.add("/admin/chaos/readiness", &[Method::POST]);
}

pub(crate) fn routes(
    state: Arc<EdgeState>,
    body_limit: u64,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let with_state = warp::any().map(move || state.clone());
    let show = warp::path!("admin" / "chaos")
        .and(warp::get())
        .and(route("/admin/chaos"))
        .and(with_state.clone())
        .and_then(show);
    let list = warp::path!("admin" / "chaos" / "actors")
        .and(warp::get())
        .and(route("/admin/chaos/actors"))
        .and(with_state.clone())
        .and_then(list);
    let kill = warp::path!("admin" / "chaos" / "kill")
        .and(warp::post())
        .and(route("/admin/chaos/kill"))
        .and(with_state.clone())
        .and(json_body(body_limit))
        .and_then(kill);
    let inject = warp::path!("admin" / "chaos" / "faults")
        .and(warp::post())
        .and(route("/admin/chaos/faults"))
        .and(with_state.clone())
        .and(json_body(body_limit))
        .and_then(inject);
    let clear = warp::path!("admin" / "chaos" / "faults")
        .and(warp::delete())
        .and(route("/admin/chaos/faults"))
        .and(with_state.clone())
        .and_then(clear);
    let readiness = warp::path!("admin" / "chaos" / "readiness")
        .and(warp::post())
        .and(route("/admin/chaos/readiness"))
        .and(with_state)
        .and(json_body(body_limit))
        .and_then(readiness);
    show.or(list).unify().or(kill).unify().or(inject).unify().or(clear).unify().or(readiness).unify()
}
