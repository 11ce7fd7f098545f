//! `/admin/chaos/*`: fault injection for drills and tests, mounted only when `CHAOS_ENABLED`.
//!
//! - `GET /admin/chaos/actors` lists the supervised actors that can be killed;
//! - `POST /admin/chaos/kill` `{"actor": "<name>"}` kills one; its supervisor restarts it.
//!
//! Names contain `/` (`products/store/0`), hence a body rather than a path parameter.

use std::sync::Arc;

use http::StatusCode;
use warp::Filter;
use warp::reply::Response;

use crate::body::json_body;
use crate::problem::{FieldErrors, Problem};
use crate::reply::json;
use crate::request::route;
use crate::server::EdgeState;

fn actors(state: &EdgeState) -> Vec<String> {
    state.supervisor.as_ref().map(|s| s.children()).unwrap_or_default()
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

/// The chaos routes.
pub(crate) fn routes(
    state: Arc<EdgeState>,
    body_limit: u64,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let with_state = warp::any().map(move || state.clone());
    let list = warp::path!("admin" / "chaos" / "actors")
        .and(warp::get())
        .and(route("/admin/chaos/actors"))
        .and(with_state.clone())
        .and_then(list);
    let kill = warp::path!("admin" / "chaos" / "kill")
        .and(warp::post())
        .and(route("/admin/chaos/kill"))
        .and(with_state)
        .and(json_body(body_limit))
        .and_then(kill);
    list.or(kill).unify()
}
