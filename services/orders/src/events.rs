//! The events orders publishes: OrderPlaced v1, wrapped in its envelope at the moment the order
//! is written, so the outbox holds exactly what will travel.

use wharf_bus::Envelope;
use wharf_events::OrderPlaced;

use crate::domain::Order;
use crate::store::OutboxEvent;

/// The OrderPlaced event for a just-written order.
pub fn order_placed(order: &Order, correlation_id: &str, traceparent: Option<&str>) -> OutboxEvent {
    let event = OrderPlaced {
        order_id: order.id,
        customer_email: order.customer_email.as_str().to_owned(),
        product_id: order.product_id.get(),
        // Quantity is 1..=10,000 by construction.
        quantity: u32::try_from(order.quantity.get()).unwrap_or(1),
    };
    let envelope = Envelope::new(&event, correlation_id, traceparent.map(str::to_owned))
        .unwrap_or_else(|err| unreachable_encode(&err));
    OutboxEvent {
        event_id: envelope.id().to_string(),
        event_type: envelope.event_type().to_owned(),
        event_version: i32::try_from(envelope.version()).unwrap_or(i32::MAX),
        occurred_at: envelope.occurred_at(),
        correlation_id: correlation_id.to_owned(),
        traceparent: traceparent.map(str::to_owned),
        envelope: String::from_utf8(envelope.to_json()).unwrap_or_default(),
    }
}

/// OrderPlaced is plain strings and numbers: serde cannot fail on it. Should that ever change,
/// fail loudly rather than write an empty event.
#[allow(clippy::panic)]
fn unreachable_encode(err: &wharf_bus::EncodeError) -> ! {
    panic!("OrderPlaced must always encode: {err}")
}
