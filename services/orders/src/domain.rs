//! The order domain.
//!
//! As in products, every field type has a `parse` constructor and is the only way to hold such a
//! value; [`OrderStatus`] carries its own transition rule, so no handler can move an order along
//! an edge the lifecycle does not have.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use wharf_edge::{FieldErrors, Problem};

/// Units ordered: 1 to 10,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quantity(i32);

impl Quantity {
    /// The most units one order may ask for.
    pub const MAX: i32 = 10_000;

    /// Checks the range.
    pub fn parse(value: i64) -> Result<Self, String> {
        match i32::try_from(value) {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            _ if value < 1 => Err("must be at least 1".into()),
            _ => Err(format!("must be at most {}", Self::MAX)),
        }
    }

    pub(crate) fn from_stored(units: i32) -> Self {
        Self(units)
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// A product id as the order refers to it (positive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProductId(i64);

impl ProductId {
    /// Checks that it can name a product.
    pub fn parse(value: i64) -> Result<Self, String> {
        if value >= 1 { Ok(Self(value)) } else { Err("must be a positive product id".into()) }
    }

    pub(crate) fn from_stored(id: i64) -> Self {
        Self(id)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// The customer's email address: where the order confirmation goes. The rule is shared with
/// notifications, which must be able to deliver to every address orders accepts.
pub type CustomerEmail = wharf_contact::EmailAddress;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum OrderStatus {
    /// Accepted, not yet confirmed.
    Pending,
    /// Confirmed for fulfilment.
    Confirmed,
    /// Handed to the carrier.
    Shipped,
    /// Received by the customer.
    Delivered,
    /// Cancelled before shipping.
    Cancelled,
}

/// A status change the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order cannot go from {from} to {to}")]
pub struct TransitionError {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl OrderStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 5] = [Self::Pending, Self::Confirmed, Self::Shipped, Self::Delivered, Self::Cancelled];

    /// The canonical name (`Pending`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Confirmed => "Confirmed",
            Self::Shipped => "Shipped",
            Self::Delivered => "Delivered",
            Self::Cancelled => "Cancelled",
        }
    }

    /// The status after a requested change: `Pending → Confirmed → Shipped → Delivered`, and
    /// `Pending`/`Confirmed → Cancelled`. Asking for the current status is allowed and changes
    /// nothing, so a retried PUT is harmless.
    pub fn transition(self, to: Self) -> Result<Self, TransitionError> {
        use OrderStatus::*;
        match (self, to) {
            (from, to) if from == to => Ok(to),
            (Pending, Confirmed) | (Confirmed, Shipped) | (Shipped, Delivered) | (Pending | Confirmed, Cancelled) => {
                Ok(to)
            }
            (from, to) => Err(TransitionError { from, to }),
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderStatus {
    type Err = String;

    /// Case-insensitive, so `shipped` works; answers use the canonical spelling.
    fn from_str(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| format!("must be one of {}", Self::ALL.map(Self::as_str).join(", ")))
    }
}

/// A validated order request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    pub product_id: ProductId,
    pub quantity: Quantity,
    /// Who is notified.
    pub customer_email: CustomerEmail,
}

impl NewOrder {
    /// Parses `{productId, quantity, customerEmail}`; unknown fields are ignored.
    pub fn parse(body: &Value) -> Result<Self, Problem> {
        let mut errors = FieldErrors::new();
        let Some(object) = body.as_object() else {
            errors.add("body", "must be a JSON object");
            return Err(Problem::validation(errors));
        };
        let product_id = whole_number(object.get("productId")).and_then(ProductId::parse);
        let quantity = whole_number(object.get("quantity")).and_then(Quantity::parse);
        let customer_email = match object.get("customerEmail") {
            None | Some(Value::Null) => Err("is required".to_owned()),
            Some(Value::String(s)) => CustomerEmail::parse(s),
            Some(_) => Err("must be a string".to_owned()),
        };
        let (product_id, quantity, customer_email) = (
            take(&mut errors, "productId", product_id),
            take(&mut errors, "quantity", quantity),
            take(&mut errors, "customerEmail", customer_email),
        );
        match (product_id, quantity, customer_email) {
            (Some(product_id), Some(quantity), Some(customer_email)) => {
                Ok(Self { product_id, quantity, customer_email })
            }
            _ => Err(Problem::validation(errors)),
        }
    }
}

/// A status change request: `{status}`.
pub fn parse_status_change(body: &Value) -> Result<OrderStatus, Problem> {
    let mut errors = FieldErrors::new();
    let status = match body.get("status") {
        None | Some(Value::Null) => Err("is required".to_owned()),
        Some(Value::String(s)) => s.parse::<OrderStatus>(),
        Some(_) => Err("must be a string".to_owned()),
    };
    match take(&mut errors, "status", status) {
        Some(status) => Ok(status),
        None => Err(Problem::validation(errors)),
    }
}

fn whole_number(value: Option<&Value>) -> Result<i64, String> {
    match value {
        None | Some(Value::Null) => Err("is required".to_owned()),
        Some(Value::Number(n)) => {
            wharf_edge::integer::whole(n).ok_or_else(|| "must be a whole number in range".to_owned())
        }
        Some(_) => Err("must be a whole number".to_owned()),
    }
}

fn take<T>(errors: &mut FieldErrors, field: &str, result: Result<T, String>) -> Option<T> {
    result.map_err(|message| errors.add(field, message)).ok()
}

/// A stored order, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Assigned by the store.
    #[schema(example = 1)]
    pub id: i64,
    #[schema(value_type = i64, example = 1)]
    pub product_id: ProductId,
    #[schema(value_type = i32, example = 2)]
    pub quantity: Quantity,
    /// Who is notified.
    #[schema(value_type = String, example = "ada@example.com")]
    pub customer_email: CustomerEmail,
    pub status: OrderStatus,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// The create body, for the OpenAPI document.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct OrderInput {
    #[schema(example = 1, minimum = 1)]
    product_id: i64,
    #[schema(example = 2, minimum = 1, maximum = 10000)]
    quantity: i32,
    #[schema(example = "ada@example.com", format = Email)]
    customer_email: String,
}

/// The status-change body, for the OpenAPI document.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StatusInput {
    status: OrderStatus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lifecycle() {
        use OrderStatus::*;
        let allowed = [
            (Pending, Confirmed),
            (Confirmed, Shipped),
            (Shipped, Delivered),
            (Pending, Cancelled),
            (Confirmed, Cancelled),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                let ok = from == to || allowed.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), ok, "{from} -> {to}");
            }
        }
        assert_eq!("shipped".parse::<OrderStatus>(), Ok(Shipped));
        assert!("Lost".parse::<OrderStatus>().is_err());
    }

    #[test]
    fn order_bodies() {
        let order =
            NewOrder::parse(&json!({"productId": 3, "quantity": 2, "customerEmail": "a@b.co", "x": 1})).unwrap();
        assert_eq!((order.product_id.get(), order.quantity.get()), (3, 2));
        let problem = NewOrder::parse(&json!({"productId": 0, "quantity": 0, "customerEmail": "nope"})).unwrap_err();
        assert_eq!(problem.errors.unwrap().len(), 3);
        let problem = NewOrder::parse(&json!({"productId": "1", "quantity": 1.5})).unwrap_err();
        assert_eq!(problem.errors.unwrap().len(), 3);
        assert!(Quantity::parse(10_001).is_err());
        assert!(Quantity::parse(i64::MAX).is_err());
    }
}
