//! Why a call to a wharf service failed, in the words every command prints.
//!
//! One type for every audience of the client: a command adds where it was and what it was doing,
//! never its own reading of a status line or a problem document.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use reqwest::{Method, StatusCode};
use serde::Deserialize;

/// How many characters of a body that is not a problem document an error quotes: enough to
/// recognise a proxy's error page, not enough to flood a terminal.
const QUOTED_BODY: usize = 300;

/// A call to a service that did not give what was asked for.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The client could not be set up or a request could not be built (no TLS backend, a header
    /// that is not one).
    #[error("cannot prepare the HTTP request: {}", wharf_runtime::error_chain(.0))]
    Setup(#[source] reqwest::Error),
    /// A service URL that does not parse.
    #[error("invalid URL {url}: {reason}")]
    Url {
        url: String,
        /// What the URL parser objected to.
        reason: String,
    },
    /// No answer: nothing listens, the name does not resolve, TLS failed, or the time ran out.
    #[error("cannot reach {url}: {} — it did not answer; is the service running there?", cause(.source))]
    Unreachable {
        method: Method,
        url: String,
        /// What the transport said.
        #[source]
        source: reqwest::Error,
    },
    /// The answer started but did not finish.
    #[error("{method} {url}: the answer broke off: {}", cause(.source))]
    BrokeOff {
        method: Method,
        url: String,
        /// What the transport said.
        #[source]
        source: reqwest::Error,
    },
    /// An answer with another status than the call expects; a problem+json body says why.
    #[error("{method} {url} answered {status}: {}", explain(.problem.as_ref(), .body))]
    Refused {
        method: Method,
        url: String,
        /// What came back.
        status: StatusCode,
        /// The body, when it is a problem document.
        problem: Option<Problem>,
        /// The body's start, when it is not.
        body: String,
    },
    /// The expected status, but not the document the call expects.
    #[error("{method} {url} answered {status} with a body that is not the expected JSON: {source}")]
    Unreadable {
        method: Method,
        url: String,
        /// What came back.
        status: StatusCode,
        /// Where the document differs.
        #[source]
        source: serde_json::Error,
    },
    /// Operator routes that the service does not mount (it answers the router's own 404).
    #[error("{base} has no {routes} routes (404): start {owner} with {switch}=true")]
    RoutesOff {
        /// The service's base URL.
        base: String,
        /// `/admin/chaos`, `/admin/dlq`.
        routes: &'static str,
        /// Who must be restarted: `the service`, `notifications`.
        owner: &'static str,
        /// The variable that mounts them.
        switch: &'static str,
    },
}

/// An RFC 9457 problem document, as far as a client needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct Problem {
    /// `urn:wharf:problem:<slug>`, or `about:blank` for a plain HTTP error; required, so that
    /// any other JSON body is quoted rather than read as a problem without a detail.
    #[serde(rename = "type")]
    pub kind: String,
    /// What went wrong this time, for a human.
    #[serde(default)]
    pub detail: Option<String>,
    /// For validation problems: each field with its messages.
    #[serde(default)]
    pub errors: BTreeMap<String, Vec<String>>,
}

impl ApiError {
    /// An answer with an unexpected status, quoting its problem document or the start of its body.
    pub(crate) fn refused(method: Method, url: String, status: StatusCode, text: &str) -> Self {
        let problem = serde_json::from_str::<Problem>(text).ok();
        let body = if problem.is_some() { String::new() } else { text.chars().take(QUOTED_BODY).collect() };
        Self::Refused { method, url, status, problem, body }
    }

    /// The status of a refusal: lets a caller accept one more answer (a delete that finds the
    /// product already gone).
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A 404 from the router itself — not a problem of kind `not-found`, which a mounted route
    /// answers about a missing thing — means the `routes` under `base` are not mounted.
    pub(crate) fn unless_mounted(
        self,
        base: &str,
        routes: &'static str,
        owner: &'static str,
        switch: &'static str,
    ) -> Self {
        match &self {
            Self::Refused { status, problem, .. }
                if *status == StatusCode::NOT_FOUND
                    && problem.as_ref().is_none_or(|p| p.kind != "urn:wharf:problem:not-found") =>
            {
                Self::RoutesOff { base: base.to_owned(), routes, owner, switch }
            }
            _ => self,
        }
    }

    /// The transport's own words for a request with no (complete) answer — "Connection refused
    /// (os error 111)", "operation timed out" — for a caller that names the service itself.
    pub fn cause(&self) -> String {
        match self {
            Self::Unreachable { source, .. } | Self::BrokeOff { source, .. } | Self::Setup(source) => cause(source),
            other => other.to_string(),
        }
    }
}

/// The innermost cause: reqwest's own message only says that sending failed.
fn cause(err: &reqwest::Error) -> String {
    let mut innermost: &dyn std::error::Error = err;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let text = innermost.to_string();
    if err.is_timeout() && !text.contains("timed out") { format!("timed out ({text})") } else { text }
}

/// A problem's detail with its field errors one a line, or the quoted body.
fn explain(problem: Option<&Problem>, body: &str) -> String {
    let Some(problem) = problem else {
        return if body.is_empty() { "(no body)".to_owned() } else { body.to_owned() };
    };
    let mut text = problem.detail.clone().unwrap_or_else(|| format!("a problem of type {}", problem.kind));
    for (field, messages) in &problem.errors {
        let _ = write!(text, "\n  {field}: {}", messages.join("; "));
    }
    text
}
