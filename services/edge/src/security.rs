//! Security headers added to every response.
//!
//! TLS ends at the ALB, but browsers still honour HSTS on the public name. The API serves only
//! JSON, so its Content-Security-Policy forbids everything; Swagger UI needs its own scripts,
//! styles and the inline styles it injects, so `/swagger` gets a policy that allows exactly those.

use http::header::{self, HeaderMap, HeaderValue};

const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
const SWAGGER_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
     script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// Adds the security headers for a response to a request for `path`, and removes `Server`.
pub fn apply(path: &str, headers: &mut HeaderMap) {
    headers.remove(header::SERVER);
    headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000; includeSubDomains"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    let csp = if path.starts_with("/swagger") { SWAGGER_CSP } else { API_CSP };
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
}
