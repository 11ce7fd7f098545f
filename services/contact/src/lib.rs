//! Contact points wharf services send to, parsed once at the edge.
//!
//! - [`EmailAddress`]: what orders stores as a customer's email and notifications sends to;
//! - [`PhoneNumber`]: an E.164 number for SMS.
//!
//! Both services must agree on what a valid address is — an order accepted by orders must be
//! deliverable by notifications — hence one definition here.

use std::fmt;

use serde::{Serialize, Serializer};

/// An email address.
///
/// The check is the practical subset of RFC 5321/5322 that mail systems accept: a dot-atom local
/// part of at most 64 characters, a domain of DNS labels with at least one dot and an alphabetic
/// top-level label, 254 characters in all. Quoted local parts and IP-literal domains are
/// refused: legal, but no customer uses them and many relays reject them. The domain is
/// lower-cased (it is case-insensitive); the local part is kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let Some((local, domain)) = raw.rsplit_once('@') else {
            return Err("must contain @".into());
        };
        if !is_dot_atom(local) || local.len() > 64 {
            return Err("has an invalid part before @".into());
        }
        if !is_domain(domain) {
            return Err("has an invalid domain".into());
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    /// An address read back from a service's own store, which only ever holds parsed ones.
    pub fn from_stored(address: String) -> Self {
        Self(address)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EmailAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// RFC 5322 atext, in dot-separated non-empty runs.
fn is_dot_atom(local: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";
    !local.is_empty()
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c)))
}

/// Dot-separated DNS labels (1–63 letters, digits, inner hyphens), at least two, the last one
/// alphabetic and at least two long.
fn is_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(label_ok)
        && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
}

/// A phone number in E.164 form: `+`, a country code not starting with 0, at most 15 digits.
/// Spaces, dashes, dots and parentheses that people type are removed first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Validates and normalises to `+<digits>`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let compact: String = raw.trim().chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
        let Some(digits) = compact.strip_prefix('+') else {
            return Err("must be an E.164 number starting with + and the country code".into());
        };
        if !digits.chars().all(|c| c.is_ascii_digit()) || !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err("must be an E.164 number: + then 8 to 15 digits, not starting with 0".into());
        }
        Ok(Self(compact))
    }

    /// A number read back from a service's own store.
    pub fn from_stored(number: String) -> Self {
        Self(number)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.co", "Ada.Lovelace+orders@Example.COM", "x_y-z@sub.domain.io", "o'brien@example.ie"] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(EmailAddress::parse(" Ada@Example.COM ").unwrap().as_str(), "Ada@example.com");
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@b.c",
            "a@-b.com",
            "a@b-.com",
            "a..b@example.com",
            ".a@example.com",
            "a@example..com",
            "a b@example.com",
            "a@exa mple.com",
            "a@123.456",
            "\"q\"@example.com",
            "a@[127.0.0.1]",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
        assert_eq!(serde_json::to_string(&EmailAddress::parse("a@b.co").unwrap()).unwrap(), "\"a@b.co\"");
    }

    #[test]
    fn phone_numbers() {
        assert_eq!(PhoneNumber::parse("+44 20 7946 0958").unwrap().as_str(), "+442079460958");
        assert_eq!(PhoneNumber::parse("+1 (415) 555-2671").unwrap().as_str(), "+14155552671");
        for bad in
            ["", "442079460958", "+0442079460958", "+44 20 79x6", "+1234567", "+1234567890123456", "++441234567890"]
        {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad}");
        }
    }
}
