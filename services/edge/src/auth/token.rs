//! Verifying a bearer token: signature against the issuer's keys, `alg` RS256/ES256 only,
//! `iss`, `exp`/`nbf` with a small leeway, and the audience — `aud` for ID tokens, Cognito's
//! `client_id` for access tokens — and `token_use` when present.

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::key_set::KeySet;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 30;

/// Who is calling, as the token says.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `sub`: logged and put on the request span (the token itself never is).
    pub subject: String,
    /// `cognito:groups`, or a `groups`/`roles` claim.
    pub groups: Vec<String>,
}

/// Why a token is not accepted; each becomes a 401 with its reason in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not RS256 or ES256")]
    Algorithm,
    #[error("the token names no signing key the issuer publishes")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone else")]
    Issuer,
    #[error("the token was issued for another client")]
    Audience,
    #[error("the token is neither an access nor an ID token")]
    TokenUse,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    #[serde(default)]
    aud: Audience,
    client_id: Option<String>,
    token_use: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    cognito_groups: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// `aud` is a string or an array of strings.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Audience {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains_any(&self, accepted: &[String]) -> bool {
        match self {
            Self::None => false,
            Self::One(aud) => accepted.contains(aud),
            Self::Many(auds) => auds.iter().any(|aud| accepted.contains(aud)),
        }
    }
}

/// Verifies `token` for `issuer` and `audiences` with the keys of `keys`.
pub(crate) async fn verify(
    token: &str,
    keys: &KeySet,
    issuer: &str,
    audiences: &[String],
) -> Result<Caller, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(TokenError::Algorithm);
    }
    let kid = header.kid.ok_or(TokenError::UnknownKey)?;
    let key = keys.get(&kid).await.ok_or(TokenError::UnknownKey)?;
    if key.algorithm != header.alg {
        return Err(TokenError::Algorithm);
    }
    let mut validation = Validation::new(key.algorithm);
    validation.leeway = LEEWAY_SECS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss"]);
    // Cognito access tokens carry `client_id`, not `aud`: the audience is checked below.
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|err| {
        use jsonwebtoken::errors::ErrorKind;
        match err.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidIssuer => TokenError::Issuer,
            ErrorKind::InvalidSignature => TokenError::Signature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::Algorithm,
            _ => TokenError::Malformed,
        }
    })?;
    let claims = data.claims;
    let audience_ok = claims.aud.contains_any(audiences)
        || claims.client_id.as_ref().is_some_and(|client| audiences.contains(client));
    if !audience_ok {
        return Err(TokenError::Audience);
    }
    match claims.token_use.as_deref() {
        None | Some("access") | Some("id") => {}
        Some(_) => return Err(TokenError::TokenUse),
    }
    let mut groups = claims.cognito_groups;
    groups.extend(claims.groups);
    groups.extend(claims.roles);
    Ok(Caller { subject: claims.sub.unwrap_or_default(), groups })
}
