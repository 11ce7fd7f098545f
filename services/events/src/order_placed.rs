//! `OrderPlaced` v1: published by orders (through its outbox) when an order is created; consumed
//! by notifications, which sends the customer one confirmation email per event id.

use serde::{Deserialize, Serialize};
use wharf_bus::Event;

/// An order was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    /// The new order's id.
    pub order_id: i64,
    /// Where the confirmation goes.
    pub customer_email: String,
    /// The ordered product.
    pub product_id: i64,
    /// How many (at least 1).
    pub quantity: u32,
}

impl Event for OrderPlaced {
    const TYPE: &'static str = "OrderPlaced";
    const VERSION: u32 = 1;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use serde_json::json;
    use wharf_bus::{DecodeError, Envelope, EventKind};

    use super::*;

    fn order() -> OrderPlaced {
        OrderPlaced { order_id: 1, customer_email: "a@b.c".into(), product_id: 1, quantity: 2 }
    }

    #[test]
    fn envelope_matches_the_contract_example() {
        let envelope = Envelope::new(&order(), "corr-7", None).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        assert_eq!(json["type"], "OrderPlaced");
        assert_eq!(json["version"], 1);
        assert_eq!(json["correlationId"], "corr-7");
        assert_eq!(json["data"], json!({ "orderId": 1, "customerEmail": "a@b.c", "productId": 1, "quantity": 2 }));
        assert_eq!(OrderPlaced::kind(), EventKind::new("OrderPlaced", 1));
    }

    #[test]
    fn decodes_the_contract_example_ignoring_unknown_fields() {
        let body = br#"{ "id": "0190b7a2-7c7e-7d1a-9a8e-2f1c3b4d5e6f", "type": "OrderPlaced", "version": 1,
            "occurredAt": "2024-07-01T12:00:00Z", "correlationId": "abc",
            "data": { "orderId": 1, "customerEmail": "a@b.c", "productId": 1, "quantity": 2, "coupon": "X" } }"#;
        let envelope = Envelope::from_json(body).unwrap();
        assert_eq!(envelope.decode::<OrderPlaced>().unwrap(), order());
    }

    #[test]
    fn another_major_version_is_refused() {
        let body = br#"{ "id": "0190b7a2-7c7e-7d1a-9a8e-2f1c3b4d5e6f", "type": "OrderPlaced", "version": 2,
            "occurredAt": "2024-07-01T12:00:00Z", "correlationId": "abc", "data": { "order": {} } }"#;
        let envelope = Envelope::from_json(body).unwrap();
        assert!(matches!(
            envelope.decode::<OrderPlaced>(),
            Err(DecodeError::UnsupportedVersion { expected: 1, found: 2, .. })
        ));
    }

    #[test]
    fn a_payload_missing_fields_is_a_payload_error() {
        let body = br#"{ "id": "0190b7a2-7c7e-7d1a-9a8e-2f1c3b4d5e6f", "type": "OrderPlaced", "version": 1,
            "occurredAt": "2024-07-01T12:00:00Z", "correlationId": "abc", "data": { "orderId": 1 } }"#;
        let envelope = Envelope::from_json(body).unwrap();
        assert!(matches!(envelope.decode::<OrderPlaced>(), Err(DecodeError::Payload { .. })));
    }
}
