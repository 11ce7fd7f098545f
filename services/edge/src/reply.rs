//! Building successful responses the same way in every service.

use http::StatusCode;
use serde::Serialize;
use warp::Reply as _;
use warp::reply::Response;

/// `body` as `application/json` with `status`.
pub fn json(status: StatusCode, body: &impl Serialize) -> Response {
    let mut response = warp::reply::json(body).into_response();
    *response.status_mut() = status;
    response
}

/// An empty response with `status` (e.g. 204).
pub fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Default::default());
    *response.status_mut() = status;
    response
}

/// A handler's result as warp wants it: the response, or the problem as a response.
pub fn answer(result: Result<Response, crate::Problem>) -> Result<Response, std::convert::Infallible> {
    Ok(result.unwrap_or_else(crate::Problem::into_response))
}

/// An `{id}` path segment. Parsed here rather than by warp so that a non-number is a 400 that
/// says so, not a confusing 404.
pub fn path_id(raw: &str) -> Result<i64, crate::Problem> {
    raw.parse::<i64>().map_err(|_| {
        let mut errors = crate::FieldErrors::new();
        errors.add("id", "must be an integer");
        crate::Problem::validation(errors)
    })
}
