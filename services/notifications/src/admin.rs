//! `/admin/dlq`: the order-events dead-letter queue, for operators and `wharf dlq`.
//!
//! Mounted only when `ADMIN_ENABLED=true` (`wharf up` turns it on; deployments leave it off or
//! keep `/admin` out of their ingress). It is the only way to reach the memory bus's
//! dead letters, which live inside this process; for the SQLite bus (its file), RabbitMQ and SQS,
//! `wharf dlq` can also go to the bus directly.
//!
//! - `GET /admin/dlq?limit=N` (default 100, at most 1000) → the queue, its backend and messages;
//! - `POST /admin/dlq/replay` `{"ids": [...]}` or `{"all": true}` → `{"replayed": n}`: the
//!   messages go back to the main queue with a fresh attempt count and are handled normally
//!   (idempotently: an event already handled is not handled twice);
//! - `DELETE /admin/dlq` → `{"purged": n}`.

use std::convert::Infallible;
use std::sync::Arc;

use serde_json::{Value, json};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use wharf_bus::{Bus, BusError, QueueName, Replay, dead_letter_listing};
use wharf_edge::reply::{answer, json as reply_json};
use wharf_edge::{FieldErrors, Problem, json_body, route};

/// The largest `limit` a listing takes.
const MAX_LIMIT: usize = 1000;

/// What the admin routes work on.
#[derive(Debug, Clone)]
pub struct DlqAdmin {
    /// The bus the service consumes from.
    pub bus: Arc<dyn Bus>,
    /// The order-events queue (its DLQ is `<queue>-dlq`).
    pub queue: QueueName,
}

fn unavailable(err: &BusError) -> Problem {
    Problem::unavailable(format!("The bus did not answer: {err}."), 5)
}

async fn list(query: Vec<(String, String)>, admin: DlqAdmin) -> Result<Response, Infallible> {
    answer(
        async {
            let mut limit = 100;
            let mut errors = FieldErrors::new();
            for (key, value) in &query {
                if key == "limit" {
                    match value.parse::<usize>() {
                        Ok(n) if (1..=MAX_LIMIT).contains(&n) => limit = n,
                        _ => errors.add("limit", format!("must be an integer from 1 to {MAX_LIMIT}")),
                    }
                }
            }
            if !errors.is_empty() {
                return Err(Problem::validation(errors));
            }
            let letters = admin.bus.dead_letters(&admin.queue, limit).await.map_err(|e| unavailable(&e))?;
            let listing =
                dead_letter_listing(&admin.queue, admin.bus.backend(), Some(admin.bus.max_attempts()), &letters);
            Ok(reply_json(StatusCode::OK, &listing))
        }
        .await,
    )
}

/// Reads `{"ids": ["…"]}` or `{"all": true}`.
fn selection(body: &Value) -> Result<Replay, Problem> {
    let mut errors = FieldErrors::new();
    let all = body.get("all").map(Value::as_bool);
    let ids = body.get("ids").map(|ids| {
        ids.as_array().and_then(|ids| ids.iter().map(|id| id.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
    });
    let replay = match (all, ids) {
        (Some(Some(true)), None) => Some(Replay::All),
        (None, Some(Some(ids))) if !ids.is_empty() => Some(Replay::Ids(ids)),
        (None, Some(Some(_))) => {
            errors.add("ids", "must name at least one message");
            None
        }
        (None, Some(None)) => {
            errors.add("ids", "must be an array of message ids (strings)");
            None
        }
        (Some(_), Some(_)) => {
            errors.add("all", "give either `all` or `ids`, not both");
            None
        }
        (Some(_), None) => {
            errors.add("all", "must be true (or give `ids` instead)");
            None
        }
        (None, None) => {
            errors.add("ids", "give the message ids to replay, or `\"all\": true`");
            None
        }
    };
    match replay {
        Some(replay) if errors.is_empty() => Ok(replay),
        _ => Err(Problem::validation(errors)),
    }
}

async fn replay(admin: DlqAdmin, body: Value) -> Result<Response, Infallible> {
    answer(
        async {
            let which = selection(&body)?;
            let replayed = admin.bus.replay(&admin.queue, &which).await.map_err(|e| unavailable(&e))?;
            tracing::warn!(queue = %admin.queue, replayed, selection = ?which, "dead letters replayed on request");
            Ok(reply_json(StatusCode::OK, &json!({ "replayed": replayed })))
        }
        .await,
    )
}

async fn purge(admin: DlqAdmin) -> Result<Response, Infallible> {
    answer(
        async {
            let purged = admin.bus.purge_dead_letters(&admin.queue).await.map_err(|e| unavailable(&e))?;
            tracing::warn!(queue = %admin.queue, purged, "dead-letter queue purged on request");
            Ok(reply_json(StatusCode::OK, &json!({ "purged": purged })))
        }
        .await,
    )
}

pub fn routes(admin: DlqAdmin, body_limit: u64) -> BoxedFilter<(Response,)> {
    let admin = warp::any().map(move || admin.clone());
    let list = warp::path!("admin" / "dlq")
        .and(warp::get())
        .and(route("/admin/dlq"))
        .and(warp::query::<Vec<(String, String)>>())
        .and(admin.clone())
        .and_then(list);
    let purge =
        warp::path!("admin" / "dlq").and(warp::delete()).and(route("/admin/dlq")).and(admin.clone()).and_then(purge);
    let replay = warp::path!("admin" / "dlq" / "replay")
        .and(warp::post())
        .and(route("/admin/dlq/replay"))
        .and(admin)
        .and(json_body(body_limit))
        .and_then(replay);
    list.or(purge).unify().or(replay).unify().boxed()
}
