//! The bearer token of a deployment that checks a JWT at its edge.
//!
//! Given once (`--token` or `WHARF_TOKEN`), checked once here, set once on the
//! [`Client`](super::Client) as a default header, and never printed: its `Debug` is redacted and the header
//! value is marked sensitive, so neither a log line nor an error message can carry it.

use std::fmt;

use reqwest::header::HeaderValue;

/// A token fit for `Authorization: Bearer <token>` (RFC 6750's `b64token`, leniently: any
/// printable ASCII without spaces, since some issuers stray from the grammar).
#[derive(Clone)]
pub struct BearerToken(HeaderValue);

impl BearerToken {
    /// The token in `raw`: surrounding white space (a trailing newline from `$(cat token)`) and a
    /// pasted `Bearer ` prefix are dropped; an empty token or one with spaces or control
    /// characters is refused, naming the problem but never the token.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let token = match raw.split_once(char::is_whitespace) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim_start(),
            _ if raw.eq_ignore_ascii_case("bearer") => "",
            _ => raw,
        };
        if token.is_empty() {
            return Err("the token is empty".to_owned());
        }
        if let Some(position) = token.find(|c: char| !c.is_ascii_graphic()) {
            return Err(format!(
                "the token has a space or a character that is not printable ASCII at byte {position}; \
                 a bearer token is one word"
            ));
        }
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the token cannot be sent in an HTTP header".to_owned())?;
        value.set_sensitive(true);
        Ok(Self(value))
    }

    /// The `Authorization` header value.
    pub(super) fn header(&self) -> HeaderValue {
        self.0.clone()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn tokens_are_one_printable_word_and_never_shown() {
        let token = BearerToken::parse(" eyJhbGciOi.eyJzdWIi.sig_-+/= \n").unwrap();
        assert_eq!(token.header().to_str().unwrap(), "Bearer eyJhbGciOi.eyJzdWIi.sig_-+/=");
        assert!(token.header().is_sensitive());
        assert_eq!(BearerToken::parse("Bearer abc").unwrap().header().to_str().unwrap(), "Bearer abc");
        assert_eq!(BearerToken::parse("bearer  abc").unwrap().header().to_str().unwrap(), "Bearer abc");
        assert_eq!(format!("{token:?}"), "BearerToken(<redacted>)");
        assert!(BearerToken::parse("  ").unwrap_err().contains("empty"));
        assert!(BearerToken::parse("Bearer ").unwrap_err().contains("empty"));
        for bad in ["two words", "tab\there", "naïve", "line\nbreak"] {
            let err = BearerToken::parse(bad).unwrap_err();
            assert!(err.contains("one word") && !err.contains(bad), "{bad:?}: {err}");
        }
    }
}
