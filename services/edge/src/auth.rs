//! Authentication and authorisation at the edge (docs/contract.md, "Authentication and
//! authorisation"), once for every service.
//!
//! With `AUTH_MODE=jwt` every request to a protected operation must carry a bearer token that
//! [`token`] verifies against the issuer's keys ([`key_set`]). What an operation needs comes from
//! the service's OpenAPI document — the same `security` its readers see: no requirement is
//! public, `bearer` with no role needs a valid token, `bearer` with the role `admin` needs the
//! admin group (`AUTH_ADMIN_GROUP`). Anything under `/admin` needs the admin group whether
//! documented or not. No or a bad token → 401 with `WWW-Authenticate: Bearer …`; a valid token
//! without the group → 403; both problem+json.

pub mod key_set;
pub mod token;

use std::time::Duration;

use http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use key_set::KeySet;
pub use key_set::KeySetError;
pub use token::{Caller, TokenError};

use crate::problem::Problem;

/// The name of the bearer scheme in every OpenAPI document.
pub const BEARER_SCHEME: &str = "bearer";
/// The role an operation's `security` names when it needs the admin group.
pub const ADMIN_ROLE: &str = "admin";

/// How the edge authenticates callers.
#[derive(Debug, Clone, Default)]
pub enum AuthSettings {
    /// Everyone may do everything (local use).
    #[default]
    None,
    /// Bearer JWTs from one issuer.
    Jwt(JwtSettings),
}

/// `AUTH_MODE=jwt`.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// `AUTH_ISSUER`: the expected `iss`.
    pub issuer: String,
    /// `AUTH_JWKS_URL`: where the signing keys are.
    pub jwks_url: String,
    /// `AUTH_AUDIENCE`: accepted `aud` or Cognito `client_id` values.
    pub audiences: Vec<String>,
    /// `AUTH_ADMIN_GROUP`: the group that may administer.
    pub admin_group: String,
    /// `AUTH_JWKS_REFRESH_SECS`: the least time between two JWKS fetches for unknown `kid`s.
    pub min_refresh_interval: Duration,
}

/// What an operation needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Public,
    /// A valid token.
    User,
    /// A valid token of a member of the admin group.
    Admin,
}

/// The edge's gate: open, or checking JWTs.
#[derive(Debug)]
pub(crate) enum Gate {
    Open,
    Jwt { keys: Box<KeySet>, settings: JwtSettings },
}

impl Gate {
    /// The gate for `settings`; with `jwt` the JWKS must be fetchable now.
    pub(crate) async fn start(settings: &AuthSettings) -> Result<Self, KeySetError> {
        match settings {
            AuthSettings::None => Ok(Self::Open),
            AuthSettings::Jwt(settings) => {
                let keys = KeySet::load(&settings.jwks_url, settings.min_refresh_interval).await?;
                Ok(Self::Jwt { keys: Box::new(keys), settings: settings.clone() })
            }
        }
    }

    /// Lets the request through (with its caller, when it presented a token), or answers it.
    pub(crate) async fn admit(
        &self,
        access: Access,
        authorization: Option<&HeaderValue>,
    ) -> Result<Option<Caller>, Response> {
        let Self::Jwt { keys, settings } = self else { return Ok(None) };
        if access == Access::Public {
            return Ok(None);
        }
        let Some(token) = bearer_token(authorization) else {
            return Err(unauthorized(None, "This operation needs a bearer token."));
        };
        let caller = token::verify(token, keys, &settings.issuer, &settings.audiences)
            .await
            .map_err(|err| unauthorized(Some(&err), &format!("The bearer token was refused: {err}.")))?;
        if access == Access::Admin && !caller.groups.iter().any(|g| g == &settings.admin_group) {
            let mut response = Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Forbidden",
                format!("This operation needs membership of the {} group.", settings.admin_group),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer error="insufficient_scope""#));
            return Err(response);
        }
        Ok(Some(caller))
    }

    /// The JWKS fetch counter, for the metrics registry.
    pub(crate) fn fetches(&self) -> Option<prometheus_client::metrics::counter::Counter> {
        match self {
            Self::Open => None,
            Self::Jwt { keys, .. } => Some(keys.fetches.clone()),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(authorization: Option<&HeaderValue>) -> Option<&str> {
    let value = authorization?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// 401 with the RFC 6750 challenge: no `error` when no token was sent, `invalid_token` otherwise.
fn unauthorized(error: Option<&TokenError>, detail: &str) -> Response {
    let mut response = Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized", detail).into_response();
    let challenge = match error {
        None => r#"Bearer realm="wharf""#.to_owned(),
        Some(err) => format!(r#"Bearer realm="wharf", error="invalid_token", error_description="{err}""#),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let header = |v: &'static str| HeaderValue::from_static(v);
        assert_eq!(bearer_token(Some(&header("Bearer abc.def.ghi"))), Some("abc.def.ghi"));
        assert_eq!(bearer_token(Some(&header("bearer  abc"))), Some("abc"));
        for bad in ["Basic abc", "Bearer", "Bearer ", "abc"] {
            assert_eq!(bearer_token(Some(&header(bad))), None, "{bad}");
        }
        assert_eq!(bearer_token(None), None);
    }
}
