//! The product catalogue's domain types.
//!
//! Each field type can only be obtained through its `parse` constructor, so a [`NewProduct`]
//! is valid by construction and the store never sees an unchecked value. Parsing collects every
//! field's problems at once so that a client fixes its request in one round trip.

use serde::{Serialize, Serializer};
use serde_json::Value;
use time::OffsetDateTime;
use wharf_edge::{FieldErrors, Problem};

/// A product name: 1–200 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    /// The longest name, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Trims and checks the length.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        match trimmed.chars().count() {
            0 => Err("must not be empty".into()),
            n if n > Self::MAX_CHARS => Err(format!("must be at most {} characters (got {n})", Self::MAX_CHARS)),
            _ => Ok(Self(trimmed.to_owned())),
        }
    }

    /// A name read back from the store, which only ever holds parsed names.
    pub(crate) fn from_stored(name: String) -> Self {
        Self(name)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A price in whole cents. Money is never held in a float: JSON numbers are converted once,
/// exactly, and stored as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price(i64);

impl Price {
    /// The highest price accepted, in cents (999,999,999.99).
    pub const MAX_CENTS: i64 = 99_999_999_999;

    /// A price from the number a client sent: ≥ 0, at most two decimals, at most
    /// 999,999,999.99. The check is on the number's shortest decimal form, which is what the
    /// client wrote for any price with up to 15 significant digits.
    pub fn parse(value: f64) -> Result<Self, String> {
        if !value.is_finite() {
            return Err("must be a number".into());
        }
        if value < 0.0 {
            return Err("must not be negative".into());
        }
        // `Display` for f64 prints the shortest digits that round-trip, never in exponent form.
        let text = value.to_string();
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        if fraction.len() > 2 {
            return Err("must have at most 2 decimal places".into());
        }
        let too_large = || format!("must be at most {}", Self::from_cents(Self::MAX_CENTS));
        let whole: i64 = whole.parse().map_err(|_| too_large())?;
        let fraction: i64 = format!("{fraction:0<2}").parse().unwrap_or(0);
        let cents = whole.checked_mul(100).and_then(|c| c.checked_add(fraction)).filter(|c| *c <= Self::MAX_CENTS);
        cents.map(Self).ok_or_else(too_large)
    }

    /// A price read back from storage.
    pub fn from_cents(cents: i64) -> Self {
        Self(cents)
    }

    /// Whole cents.
    pub fn cents(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for Price {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Price {
    /// A JSON number. `cents / 100` is correctly rounded, so it prints as exactly the two-decimal
    /// value (19.99, not 19.990000000000002).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0 as f64 / 100.0)
    }
}

/// Units in stock: a whole number from 0 to 2,147,483,647.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stock(i32);

impl Stock {
    /// Checks the range.
    pub fn parse(value: i64) -> Result<Self, String> {
        if value < 0 {
            return Err("must not be negative".into());
        }
        i32::try_from(value).map(Self).map_err(|_| format!("must be at most {}", i32::MAX))
    }

    /// Units read back from the store (the schema forbids negatives).
    pub(crate) fn from_stored(units: i32) -> Self {
        Self(units)
    }

    /// Units.
    pub fn get(self) -> i32 {
        self.0
    }
}

/// A free-text description, at most 2000 characters; empty when absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description(String);

impl Description {
    /// The longest description, in characters.
    pub const MAX_CHARS: usize = 2000;

    /// Checks the length; the text is kept as sent.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let n = raw.chars().count();
        if n > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters (got {n})", Self::MAX_CHARS));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A description read back from the store.
    pub(crate) fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated product body, for create and update.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProduct {
    /// Name.
    pub name: ProductName,
    /// Price.
    pub price: Price,
    /// Description.
    pub description: Description,
    /// Stock.
    pub stock: Stock,
}

impl NewProduct {
    /// Parses `{name, price, description?, stock}`; unknown fields are ignored so that clients
    /// may send more than this version knows.
    pub fn parse(body: &Value) -> Result<Self, Problem> {
        let mut errors = FieldErrors::new();
        let Some(object) = body.as_object() else {
            errors.add("body", "must be a JSON object");
            return Err(Problem::validation(errors));
        };
        let name = match object.get("name") {
            None | Some(Value::Null) => Err("is required".to_owned()),
            Some(Value::String(s)) => ProductName::parse(s),
            Some(_) => Err("must be a string".to_owned()),
        };
        let price = match object.get("price") {
            None | Some(Value::Null) => Err("is required".to_owned()),
            Some(Value::Number(n)) => n.as_f64().ok_or_else(|| "must be a number".to_owned()).and_then(Price::parse),
            Some(_) => Err("must be a number".to_owned()),
        };
        let description = match object.get("description") {
            None | Some(Value::Null) => Ok(Description::default()),
            Some(Value::String(s)) => Description::parse(s),
            Some(_) => Err("must be a string".to_owned()),
        };
        let stock = match object.get("stock") {
            None | Some(Value::Null) => Err("is required".to_owned()),
            Some(Value::Number(n)) => match wharf_edge::integer::whole(n) {
                Some(units) => Stock::parse(units),
                None if n.is_u64() => Err(format!("must be at most {}", i32::MAX)),
                None => Err("must be a whole number".to_owned()),
            },
            Some(_) => Err("must be a whole number".to_owned()),
        };
        let (name, price, description, stock) = (
            take(&mut errors, "name", name),
            take(&mut errors, "price", price),
            take(&mut errors, "description", description),
            take(&mut errors, "stock", stock),
        );
        match (name, price, description, stock) {
            (Some(name), Some(price), Some(description), Some(stock)) => Ok(Self { name, price, description, stock }),
            _ => Err(Problem::validation(errors)),
        }
    }
}

/// The field's value, or `None` with its message recorded.
fn take<T>(errors: &mut FieldErrors, field: &str, result: Result<T, String>) -> Option<T> {
    result.map_err(|message| errors.add(field, message)).ok()
}

/// A stored product, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// Assigned by the store; never reused.
    #[schema(example = 1)]
    pub id: i64,
    /// 1–200 characters.
    #[schema(value_type = String, example = "Espresso cup")]
    pub name: ProductName,
    /// ≥ 0, at most two decimals.
    #[schema(value_type = f64, example = 12.5)]
    pub price: Price,
    /// At most 2000 characters.
    #[schema(value_type = String)]
    pub description: Description,
    /// Units in stock.
    #[schema(value_type = i32, example = 40)]
    pub stock: Stock,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl Serialize for ProductName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl Serialize for Description {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The request body of create and update, for the OpenAPI document.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ProductInput {
    /// 1–200 characters after trimming.
    #[schema(example = "Espresso cup", min_length = 1, max_length = 200)]
    name: String,
    /// ≥ 0 with at most two decimals.
    #[schema(example = 12.5, minimum = 0, maximum = 999_999_999.99, multiple_of = 0.01)]
    price: f64,
    /// At most 2000 characters.
    #[schema(max_length = 2000)]
    description: Option<String>,
    /// ≥ 0.
    #[schema(example = 40, minimum = 0)]
    stock: i32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prices_are_exact_cents() {
        assert_eq!(Price::parse(19.99).unwrap().cents(), 1999);
        assert_eq!(Price::parse(0.0).unwrap().cents(), 0);
        assert_eq!(Price::parse(0.1).unwrap().cents(), 10);
        assert_eq!(Price::parse(1e9 - 0.01).unwrap().cents(), Price::MAX_CENTS);
        assert_eq!(Price::parse(42.0).unwrap().cents(), 4200);
        assert!(Price::parse(9.999).is_err());
        assert!(Price::parse(0.001).is_err());
        assert!(Price::parse(-0.01).is_err());
        assert!(Price::parse(1e9).is_err());
        assert!(Price::parse(1e300).is_err());
        assert_eq!(serde_json::to_string(&Price::from_cents(1999)).unwrap(), "19.99");
        assert_eq!(serde_json::to_string(&Price::from_cents(10)).unwrap(), "0.1");
        assert_eq!(Price::from_cents(1205).to_string(), "12.05");
    }

    #[test]
    fn every_cent_round_trips_through_json() {
        // A float round trip must never change a price: check a broad sweep of cent values.
        for cents in (0..200_000).chain((Price::MAX_CENTS - 100_000)..=Price::MAX_CENTS) {
            let json = serde_json::to_string(&Price::from_cents(cents)).unwrap();
            let back: f64 = serde_json::from_str(&json).unwrap();
            assert_eq!(Price::parse(back).unwrap().cents(), cents, "{json}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded_in_characters() {
        assert_eq!(ProductName::parse("  Tea  ").unwrap().as_str(), "Tea");
        assert!(ProductName::parse("   ").is_err());
        assert!(ProductName::parse(&"é".repeat(200)).is_ok());
        assert!(ProductName::parse(&"é".repeat(201)).is_err());
    }

    #[test]
    fn a_body_reports_every_bad_field() {
        let problem = NewProduct::parse(&json!({"name": 5, "price": "1", "stock": -1, "description": []})).unwrap_err();
        let errors = problem.errors.unwrap();
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["description", "name", "price", "stock"]);
        let problem = NewProduct::parse(&json!({})).unwrap_err();
        assert_eq!(problem.errors.unwrap().len(), 3, "name, price and stock are required");
        let problem = NewProduct::parse(&json!({"name": "a", "price": 1, "stock": 1.5})).unwrap_err();
        assert_eq!(problem.errors.unwrap()["stock"], ["must be a whole number"]);
        assert!(NewProduct::parse(&json!([1, 2])).is_err());
    }

    #[test]
    fn unknown_fields_are_ignored_and_description_is_optional() {
        let product = NewProduct::parse(&json!({"name": "a", "price": 1.5, "stock": 3, "colour": "red"})).unwrap();
        assert_eq!(product.description.as_str(), "");
        assert_eq!(product.price.cents(), 150);
    }
}
