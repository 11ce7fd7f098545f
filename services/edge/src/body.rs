//! Request bodies: size limit, content type and JSON syntax, checked before a handler runs.
//!
//! Handlers receive a parsed [`serde_json::Value`] and turn it into domain types themselves, so
//! that a wrong type in one field becomes a validation message for that field rather than a
//! single opaque "invalid body" error.

use bytes::Bytes;
use http::HeaderValue;
use warp::{Filter, Rejection};

use crate::problem::Problem;

/// The request body as JSON, or a rejection: 411 without `Content-Length`, 413 over `limit`
/// bytes (refused before reading it), 415 unless the content type is JSON, 400 for bad syntax.
pub fn json_body(limit: u64) -> impl Filter<Extract = (serde_json::Value,), Error = Rejection> + Clone {
    warp::body::content_length_limit(limit)
        .and(warp::header::value("content-type").or_else(|_| async { Err(unsupported_media_type()) }))
        .and_then(|content_type: HeaderValue| async move {
            if is_json(&content_type) { Ok(()) } else { Err(unsupported_media_type()) }
        })
        .untuple_one()
        .and(warp::body::bytes())
        .and_then(|bytes: Bytes| async move {
            serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|err| {
                warp::reject::custom(Problem::malformed_json(format!("The body is not valid JSON: {err}.")))
            })
        })
}

fn unsupported_media_type() -> Rejection {
    warp::reject::custom(Problem::new(
        http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "",
        "Unsupported Media Type",
        "Send the body as application/json.",
    ))
}

/// `application/json`, optionally with parameters, or any `application/*+json`.
fn is_json(content_type: &HeaderValue) -> bool {
    let Ok(value) = content_type.to_str() else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some(subtype) = essence.get(..12).filter(|t| t.eq_ignore_ascii_case("application/")).map(|_| &essence[12..])
    else {
        return false;
    };
    subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        for ok in
            ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"]
        {
            assert!(is_json(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in ["text/plain", "application/xml", "json", "application/jsonx", ""] {
            assert!(!is_json(&HeaderValue::from_static(bad)), "{bad}");
        }
    }
}
