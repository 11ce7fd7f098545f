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
/// says so, not a confusing 404. Only the canonical decimal form names a resource: `+1`, `01`,
/// `-0` or `1 ` are not another spelling of an id but not an id at all, so that one resource has
/// exactly one URL (caches, logs and authorisation rules keyed by path cannot be sidestepped).
pub fn path_id(raw: &str) -> Result<i64, crate::Problem> {
    canonical_id(raw).ok_or_else(|| {
        let mut errors = crate::FieldErrors::new();
        errors.add("id", "must be an integer in canonical decimal form (no sign other than -, no leading zeros)");
        crate::Problem::validation(errors)
    })
}

fn canonical_id(raw: &str) -> Option<i64> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && raw != "-0";
    if canonical { raw.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_decimal_ids_are_ids() {
        for (raw, id) in
            [("1", 1), ("0", 0), ("-7", -7), ("9223372036854775807", i64::MAX), ("-9223372036854775808", i64::MIN)]
        {
            assert_eq!(canonical_id(raw), Some(id), "{raw}");
        }
        for raw in ["+1", "01", "00", "-0", "-01", "1 ", " 1", "1.0", "1e3", "", "-", "0x1", "٣", "9223372036854775808"]
        {
            assert_eq!(canonical_id(raw), None, "{raw:?}");
        }
    }
}
