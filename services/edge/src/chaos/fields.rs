//! Reading a chaos request body field by field, strictly.
//!
//! Unlike the services' API bodies, admin bodies reject unknown fields: a drill that misspells
//! `latencyMs` must fail loudly, not "succeed" with no latency while the operator watches a
//! dashboard for an effect that never comes.

use std::ops::RangeInclusive;

use serde_json::{Map, Value};

use crate::problem::{FieldErrors, Problem};

/// One body's fields, with the errors found so far.
pub(super) struct Fields<'a> {
    object: &'a Map<String, Value>,
    errors: FieldErrors,
}

impl<'a> Fields<'a> {
    /// The fields of `body`, which must be an object holding only `known` fields.
    pub(super) fn of(body: &'a Value, known: &[&str]) -> Result<Self, Problem> {
        let Some(object) = body.as_object() else {
            let mut errors = FieldErrors::new();
            errors.add("body", "must be a JSON object");
            return Err(Problem::validation(errors));
        };
        let mut errors = FieldErrors::new();
        for name in object.keys().filter(|name| !known.contains(&name.as_str())) {
            errors.add(name, format!("is not a known field; expected one of: {}", known.join(", ")));
        }
        Ok(Self { object, errors })
    }

    /// The field's value; `None` and null are the same (absent).
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.object.get(field).filter(|value| !value.is_null())
    }

    /// Whether the field was sent (and is not null).
    pub(super) fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    /// Records a message for `field`.
    pub(super) fn reject(&mut self, field: &str, message: impl Into<String>) {
        self.errors.add(field, message);
    }

    /// A whole number in `range`; `default` when absent, or an error when there is none.
    pub(super) fn whole(&mut self, field: &str, range: RangeInclusive<u64>, default: Option<u64>) -> Option<u64> {
        let outcome = match self.get(field) {
            None => default.ok_or_else(|| "is required".to_owned()),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if range.contains(&v) => Ok(v),
                _ => Err(format!("must be a whole number from {} to {}", range.start(), range.end())),
            },
            Some(_) => Err(format!("must be a whole number from {} to {}", range.start(), range.end())),
        };
        self.take(field, outcome)
    }

    /// A number from 0 to 1; `default` when absent.
    pub(super) fn fraction(&mut self, field: &str, default: f64) -> Option<f64> {
        let outcome = match self.get(field) {
            None => Ok(default),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(v) if (0.0..=1.0).contains(&v) => Ok(v),
                _ => Err("must be a number from 0 to 1".to_owned()),
            },
            Some(_) => Err("must be a number from 0 to 1".to_owned()),
        };
        self.take(field, outcome)
    }

    /// A string; `default` when absent.
    pub(super) fn string(&mut self, field: &str, default: &str) -> Option<String> {
        let outcome = match self.get(field) {
            None => Ok(default.to_owned()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err("must be a string".to_owned()),
        };
        self.take(field, outcome)
    }

    pub(super) fn boolean(&mut self, field: &str) -> Option<bool> {
        let outcome = match self.get(field) {
            None => Err("is required".to_owned()),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err("must be true or false".to_owned()),
        };
        self.take(field, outcome)
    }

    fn take<T>(&mut self, field: &str, outcome: Result<T, String>) -> Option<T> {
        outcome.map_err(|message| self.errors.add(field, message)).ok()
    }

    /// `Ok(value)` when every field was valid, the validation problem naming each bad one
    /// otherwise. `value` is `None` only when some field was bad.
    pub(super) fn finish<T>(self, value: Option<T>) -> Result<T, Problem> {
        match value {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => Err(Problem::validation(self.errors)),
        }
    }
}
