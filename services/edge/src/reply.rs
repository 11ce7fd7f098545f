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
