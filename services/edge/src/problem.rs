//! Errors as `application/problem+json` (RFC 9457).
//!
//! Every error a wharf service returns — a validation failure in a handler or a request warp
//! rejected before any handler ran — becomes a [`Problem`] that carries the request's correlation
//! id, so a client can quote one id and an operator finds every log line of that request.

use std::collections::BTreeMap;
use std::convert::Infallible;

use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use warp::reply::Response;

use crate::request::{SCOPE, correlation_id};

/// An RFC 9457 problem.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` for plain HTTP errors).
    #[serde(rename = "type")]
    #[schema(example = "urn:wharf:problem:validation")]
    pub kind: String,
    /// A short summary that is the same for every occurrence of this kind.
    #[schema(example = "Validation failed")]
    pub title: String,
    /// The HTTP status code.
    #[schema(example = 400)]
    pub status: u16,
    /// What went wrong this time, for a human.
    pub detail: String,
    /// The request path that produced the problem.
    #[schema(example = "/api/products")]
    pub instance: String,
    /// The request's correlation id, also in the `X-Correlation-ID` header.
    pub correlation_id: String,
    /// For validation problems: each field with its messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, Vec<String>>>,
    /// Seconds a client should wait before retrying (503, 429): sent as `Retry-After`.
    #[serde(skip)]
    pub retry_after: Option<u32>,
}

impl Problem {
    /// A problem of kind `urn:wharf:problem:<slug>` (or `about:blank` for an empty slug).
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        let kind = if slug.is_empty() { "about:blank".to_owned() } else { format!("urn:wharf:problem:{slug}") };
        let instance = SCOPE.try_with(|scope| scope.uri.path().to_owned()).unwrap_or_default();
        Self {
            kind,
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            instance,
            correlation_id: correlation_id(),
            errors: None,
            retry_after: None,
        }
    }

    /// 400 with the fields that failed validation.
    pub fn validation(errors: FieldErrors) -> Self {
        let fields = errors.0.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
        let mut problem = Self::new(
            StatusCode::BAD_REQUEST,
            "validation",
            "Validation failed",
            format!("The request has invalid fields: {fields}."),
        );
        problem.errors = Some(errors.0);
        problem
    }

    /// 400 for a body that is not JSON at all.
    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed-json", "Malformed JSON", detail)
    }

    /// 404 for a resource that does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 503 with `Retry-After`: a dependency (an actor, the database) is not answering right now.
    pub fn unavailable(detail: impl Into<String>, retry_after_secs: u32) -> Self {
        let mut problem = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable", detail);
        problem.retry_after = Some(retry_after_secs);
        problem
    }

    /// 500 for a fault of ours; the detail is generic on purpose (the log has the cause).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "The server failed to handle the request; quote the correlation id when reporting it.",
        )
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = Response::new(body.into());
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl warp::reject::Reject for Problem {}

impl warp::Reply for Problem {
    fn into_response(self) -> Response {
        Problem::into_response(self)
    }
}

/// Field → messages, collected while parsing a request body.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a message for `field`.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.to_owned()).or_default().push(message.into());
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, the validation problem otherwise.
    pub fn into_result<T>(self, value: T) -> Result<T, Problem> {
        if self.is_empty() { Ok(value) } else { Err(Problem::validation(self)) }
    }
}

/// Turns every warp rejection into a problem. Handlers return problems as replies; rejections
/// come from routing (404/405), body and header filters (411/413/415/400) and [`Problem`]s
/// raised inside filters.
pub async fn recover(rejection: warp::Rejection) -> Result<Response, Infallible> {
    use warp::reject;

    // A request is offered to every route, so its rejection combines each route's reason. The
    // most specific reason wins: that of the route whose path and method matched (a bad body,
    // query or header), then 405 (the path exists), and 404 only when nothing matched at all.
    let problem = if let Some(problem) = rejection.find::<Problem>() {
        problem.clone()
    } else if rejection.find::<reject::LengthRequired>().is_some() {
        Problem::new(StatusCode::LENGTH_REQUIRED, "", "Length Required", "Send the body with a Content-Length header.")
    } else if rejection.find::<reject::PayloadTooLarge>().is_some() {
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "", "Payload Too Large", "The request body is larger than allowed.")
    } else if rejection.find::<reject::UnsupportedMediaType>().is_some() {
        Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "", "Unsupported Media Type", "Send application/json.")
    } else if let Some(err) = rejection.find::<reject::InvalidQuery>() {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-query", "Invalid query string", err.to_string())
    } else if let Some(err) = rejection.find::<reject::InvalidHeader>() {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-header", "Invalid header", err.to_string())
    } else if let Some(err) = rejection.find::<reject::MissingHeader>() {
        Problem::new(StatusCode::BAD_REQUEST, "missing-header", "Missing header", err.to_string())
    } else if rejection.find::<reject::MethodNotAllowed>().is_some() {
        Problem::new(StatusCode::METHOD_NOT_ALLOWED, "", "Method Not Allowed", "This path does not accept this method.")
    } else if rejection.is_not_found() {
        Problem::new(StatusCode::NOT_FOUND, "", "Not Found", "No resource is served at this path.")
    } else {
        tracing::error!(?rejection, "unhandled rejection");
        Problem::internal()
    };
    Ok(problem.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problem_lists_fields() {
        let mut errors = FieldErrors::new();
        errors.add("price", "must not be negative");
        errors.add("name", "must not be empty");
        let problem = errors.into_result(()).unwrap_err();
        assert_eq!(problem.status, 400);
        assert_eq!(problem.detail, "The request has invalid fields: name, price.");
        let json = serde_json::to_value(&problem).unwrap();
        assert_eq!(json["type"], "urn:wharf:problem:validation");
        assert_eq!(json["errors"]["price"][0], "must not be negative");
        assert!(json.get("retryAfter").is_none());
    }

    #[test]
    fn unavailable_sets_retry_after() {
        let response = Problem::unavailable("store restarting", 1).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
    }
}
