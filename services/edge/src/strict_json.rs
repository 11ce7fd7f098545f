//! JSON as wharf accepts it: RFC 8259 syntax, plus two rules serde_json does not enforce.
//!
//! - **No duplicate object keys.** serde_json keeps the last value of a repeated key, so
//!   `{"price": 1, "price": 1000}` would be read differently by a proxy that keeps the first one;
//!   a request that two readers can understand differently is refused instead.
//! - **No C0 control characters in text** (U+0000–U+001F) other than tab, line feed and carriage
//!   return, in values and in keys. PostgreSQL cannot store U+0000 in `text` at all (a 500 before
//!   this rule), SQLite stores it and truncates it in C clients, and the other controls are never
//!   meant in a name, an e-mail address or a message. Tab and line breaks stay legal: descriptions
//!   and messages are multi-line text.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a body is not acceptable JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Not JSON at all, or an object with a repeated key (serde_json's message, with position).
    #[error("{0}")]
    Syntax(serde_json::Error),
    /// Well-formed JSON with a control character in the text at `field`.
    #[error("{field} contains the control character U+{code:04X}")]
    ControlCharacter {
        /// Where: `name`, `items.0.name`, or `body` for a top-level string.
        field: String,
        code: u32,
    },
}

/// Parses `bytes` as JSON under wharf's rules.
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = NoDuplicates.deserialize(&mut deserializer).map_err(JsonError::Syntax)?;
    deserializer.end().map_err(JsonError::Syntax)?;
    find_control(&value, &mut Vec::new())?;
    Ok(value)
}

/// Whether `c` is a control character wharf refuses in text.
pub fn is_forbidden_control(c: char) -> bool {
    c <= '\u{1f}' && !matches!(c, '\t' | '\n' | '\r')
}

fn find_control(value: &Value, path: &mut Vec<String>) -> Result<(), JsonError> {
    let reject = |path: &[String], c: char| JsonError::ControlCharacter {
        field: if path.is_empty() { "body".to_owned() } else { path.join(".") },
        code: u32::from(c),
    };
    match value {
        Value::String(text) => match text.chars().find(|c| is_forbidden_control(*c)) {
            Some(c) => Err(reject(path, c)),
            None => Ok(()),
        },
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push(index.to_string());
                find_control(item, path)?;
                path.pop();
            }
            Ok(())
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                if let Some(c) = key.chars().find(|c| is_forbidden_control(*c)) {
                    return Err(reject(path, c));
                }
                path.push(key.clone());
                find_control(item, path)?;
                path.pop();
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// Builds a [`Value`] like serde_json does, but fails on a repeated key.
struct NoDuplicates;

impl<'de> DeserializeSeed<'de> for NoDuplicates {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(NoDuplicates)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let value = map.next_value_seed(NoDuplicates)?;
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn well_formed_json_parses_as_serde_json_does() {
        let text = r#"{"a": [1, -2, 3.5, true, null, "x\ty\nz\r"], "b": {"c": "é 🍰"}, "n": 18446744073709551615}"#;
        assert_eq!(parse(text.as_bytes()).unwrap(), serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        for text in [r#"{"a": 1, "a": 2}"#, r#"{"x": [{"b": 1, "b": 1}]}"#, r#"{"a": {}, "a": {}}"#] {
            let err = parse(text.as_bytes()).unwrap_err();
            assert!(matches!(err, JsonError::Syntax(_)), "{text}");
            assert!(err.to_string().contains("duplicate key"), "{err}");
        }
        assert!(parse(br#"{"a": {"a": 1}}"#).is_ok(), "the same key at different levels is fine");
    }

    #[test]
    fn control_characters_are_refused_with_their_place() {
        let err = parse(br#"{"name": "a\u0000b"}"#).unwrap_err();
        assert_eq!(err.to_string(), "name contains the control character U+0000");
        let err = parse(br#"{"items": [{"note": "ok"}, {"note": "\u001b[31m"}]}"#).unwrap_err();
        assert!(matches!(err, JsonError::ControlCharacter { ref field, code: 0x1b } if field == "items.1.note"));
        let err = parse(br#"{"k\u0007": 1}"#).unwrap_err();
        assert!(matches!(err, JsonError::ControlCharacter { code: 7, .. }));
        assert!(
            matches!(parse(br#""\u0001""#).unwrap_err(), JsonError::ControlCharacter { ref field, .. } if field == "body")
        );
        assert!(parse(br#"{"d": "tab\tline\nreturn\r, DEL \u007f and U+0085 \u0085"}"#).is_ok());
    }

    #[test]
    fn trailing_garbage_is_a_syntax_error() {
        assert!(matches!(parse(b"{} {}").unwrap_err(), JsonError::Syntax(_)));
    }
}
