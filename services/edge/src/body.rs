//! Request bodies: size limit, content type, the time allowed to send them, and JSON syntax,
//! checked before a handler runs.
//!
//! Handlers receive a parsed [`serde_json::Value`] and turn it into domain types themselves, so
//! that a wrong type in one field becomes a validation message for that field rather than a
//! single opaque "invalid body" error.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::{Filter, Rejection};

use crate::problem::Problem;
use crate::request::SCOPE;
use crate::strict_json::{self, JsonError};

/// How long a body may take to arrive when the edge has not said otherwise (unit tests).
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The request body as JSON, or a problem: 413 over `limit` bytes (refused from its
/// `Content-Length` before reading, or as soon as a chunked body passes the limit), 415 unless
/// the content type is UTF-8 JSON, 408 when the body does not arrive within the edge's body
/// timeout, 400 for bad syntax, a repeated key or a control character (see [`strict_json`]).
pub fn json_body(limit: u64) -> impl Filter<Extract = (serde_json::Value,), Error = Rejection> + Clone {
    warp::header::headers_cloned().and(warp::body::stream()).and_then(move |headers: HeaderMap, body| async move {
        check_declared_length(&headers, limit)?;
        check_content_type(headers.get(header::CONTENT_TYPE))?;
        let bytes = read(body, limit).await?;
        strict_json::parse(&bytes).map_err(|err| warp::reject::custom(json_problem(err)))
    })
}

fn check_declared_length(headers: &HeaderMap, limit: u64) -> Result<(), Rejection> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit => Err(warp::reject::custom(too_large(limit))),
        _ => Ok(()),
    }
}

fn check_content_type(content_type: Option<&HeaderValue>) -> Result<(), Rejection> {
    match content_type.and_then(|v| v.to_str().ok()) {
        Some(value) if is_utf8_json(value) => Ok(()),
        _ => Err(warp::reject::custom(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "",
            "Unsupported Media Type",
            "Send the body as application/json in UTF-8 (no charset, or charset=utf-8).",
        ))),
    }
}

/// Reads the whole body, whether it came with a `Content-Length` or chunked, stopping at `limit`
/// bytes and at the body timeout.
async fn read<S, B>(body: S, limit: u64) -> Result<BytesMut, Rejection>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let timeout = SCOPE.try_with(|scope| scope.body_timeout).unwrap_or(DEFAULT_BODY_TIMEOUT);
    let collect = async {
        let mut body = std::pin::pin!(body);
        let mut bytes = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let mut chunk = chunk.map_err(|err| {
                warp::reject::custom(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "unreadable-body",
                    "Unreadable body",
                    format!("The request body could not be read: {err}."),
                ))
            })?;
            if (bytes.len() + chunk.remaining()) as u64 > limit {
                return Err(warp::reject::custom(too_large(limit)));
            }
            while chunk.has_remaining() {
                let part = chunk.chunk();
                bytes.extend_from_slice(part);
                let read = part.len();
                chunk.advance(read);
            }
        }
        Ok(bytes)
    };
    match tokio::time::timeout(timeout, collect).await {
        Ok(read) => read,
        Err(_) => Err(warp::reject::custom(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            "Request Timeout",
            format!("The request body did not arrive within {} s.", timeout.as_secs_f64()),
        ))),
    }
}

fn too_large(limit: u64) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "",
        "Payload Too Large",
        format!("The request body is larger than the limit of {limit} bytes."),
    )
}

fn json_problem(err: JsonError) -> Problem {
    match err {
        JsonError::Syntax(err) => Problem::malformed_json(format!("The body is not valid JSON: {err}.")),
        JsonError::ControlCharacter { field, code } => {
            let mut errors = crate::FieldErrors::new();
            errors.add(
                &field,
                format!("must not contain the control character U+{code:04X} (only tab, line feed and carriage return are allowed)"),
            );
            Problem::validation(errors)
        }
    }
}

/// `application/json` or any `application/*+json`, with no `charset` or `charset=utf-8`: JSON
/// is UTF-8 (RFC 8259), and a body announced in another charset would be misread.
fn is_utf8_json(value: &str) -> bool {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let Some(subtype) = essence.get(..12).filter(|t| t.eq_ignore_ascii_case("application/")).map(|_| &essence[12..])
    else {
        return false;
    };
    let json = subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json");
    json && parts.all(|parameter| {
        let Some((name, charset)) = parameter.split_once('=') else { return parameter.trim().is_empty() };
        !name.trim().eq_ignore_ascii_case("charset") || {
            let charset = charset.trim().trim_matches('"');
            charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "Application/JSON",
            "application/merge-patch+json",
        ] {
            assert!(is_utf8_json(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/xml",
            "json",
            "application/jsonx",
            "",
            "application/json; charset=utf-16",
            "application/json; charset=iso-8859-1",
            "application/json; charset=",
        ] {
            assert!(!is_utf8_json(bad), "{bad}");
        }
    }
}
