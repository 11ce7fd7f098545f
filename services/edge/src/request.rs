//! What the edge knows about the request being served: its correlation id and its route template.
//!
//! Both live in a task-local [`RequestScope`] that the server sets around each request's future,
//! so handlers and rejection handlers deep inside warp filters can reach them without threading
//! arguments through every filter. warp polls a filter's future inline, never on another task,
//! which is what makes the task-local visible there.

use std::sync::{Arc, OnceLock};

use http::HeaderValue;
use warp::Filter;

/// The header that carries the correlation id in and out.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Per-request facts shared between the server loop and the filters.
#[derive(Debug)]
pub struct RequestScope {
    /// Echoed in the response header, problem bodies and logs.
    pub correlation_id: HeaderValue,
    /// The request's URI; problem bodies name its path as their `instance`.
    pub uri: http::Uri,
    /// The matched route's template (`/api/products/{id}`), set by [`route`]; metrics and logs
    /// use it instead of the raw path so that ids do not explode label cardinality.
    pub route: OnceLock<&'static str>,
    /// How long the request's body may take to arrive ([`crate::json_body`] answers 408 after it).
    pub body_timeout: std::time::Duration,
    /// The authenticated caller's `sub`, for the access log (never the token).
    pub subject: OnceLock<String>,
}

tokio::task_local! {
    pub(crate) static SCOPE: Arc<RequestScope>;
}

impl RequestScope {
    /// The scope for a request that carried `incoming` as its correlation header, if any: a
    /// usable incoming id is kept, anything else is replaced by a fresh UUID.
    pub fn new(incoming: Option<&HeaderValue>, uri: http::Uri) -> Self {
        let correlation_id =
            incoming.filter(|v| is_usable_correlation_id(v.as_bytes())).cloned().unwrap_or_else(generate);
        Self {
            correlation_id,
            uri,
            route: OnceLock::new(),
            body_timeout: std::time::Duration::from_secs(30),
            subject: OnceLock::new(),
        }
    }

    /// The route template, or `unmatched` when no route accepted the request.
    pub fn route(&self) -> &'static str {
        self.route.get().copied().unwrap_or("unmatched")
    }
}

/// Ids are echoed into headers and logs: accept only short, printable ASCII so that a client can
/// neither inject log lines nor blow up header sizes.
fn is_usable_correlation_id(bytes: &[u8]) -> bool {
    (1..=128).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_graphic())
}

fn generate() -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// The current request's correlation id (empty outside a request, e.g. in unit tests).
pub fn correlation_id() -> String {
    SCOPE.try_with(|scope| scope.correlation_id.to_str().unwrap_or_default().to_owned()).unwrap_or_default()
}

/// A filter that records `template` as the current request's route. Place it after the path and
/// method filters of a route, so only the route that matched records itself.
pub fn route(template: &'static str) -> impl Filter<Extract = (), Error = std::convert::Infallible> + Copy {
    warp::any()
        .map(move || {
            // Outside a scope (warp::test) there is nothing to record into.
            let _ = SCOPE.try_with(|scope| scope.route.set(template));
        })
        .untuple_one()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_incoming_ids_are_kept_and_others_replaced() {
        let kept = HeaderValue::from_static("abc-123_XYZ:9");
        assert_eq!(RequestScope::new(Some(&kept), http::Uri::default()).correlation_id, kept);
        for bad in ["", "has space", &"x".repeat(129)] {
            let value = HeaderValue::from_str(bad).unwrap();
            let scope = RequestScope::new(Some(&value), http::Uri::default());
            assert_ne!(scope.correlation_id, value);
            assert_eq!(scope.correlation_id.len(), 36);
        }
        assert_eq!(RequestScope::new(None, http::Uri::default()).correlation_id.len(), 36);
    }
}
