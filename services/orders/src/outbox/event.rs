//! What goes into the outbox with an order: OrderPlaced v1, wrapped in its envelope at the moment
//! the order is written, so the outbox holds exactly what will travel.

use time::OffsetDateTime;
use wharf_bus::Envelope;
use wharf_events::OrderPlaced;

use crate::domain::Order;

/// An event to write to the outbox with its order, built once the order's id is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Unique per event; consumers deduplicate by it.
    pub event_id: String,
    /// e.g. `OrderPlaced`.
    pub event_type: String,
    pub event_version: i32,
    /// When the order was placed.
    pub occurred_at: OffsetDateTime,
    /// The request's correlation id, carried by the event.
    pub correlation_id: String,
    /// W3C trace context of the request, if any.
    pub traceparent: Option<String>,
    /// The request's W3C `tracestate` (vendor entries) that goes with `traceparent`, if any.
    pub tracestate: Option<String>,
    /// The whole envelope as JSON, exactly as it will travel.
    pub envelope: String,
}

/// The OrderPlaced event for a just-written order.
pub fn order_placed(
    order: &Order,
    correlation_id: &str,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) -> OutboxEvent {
    let event = OrderPlaced {
        order_id: order.id,
        customer_email: order.customer_email.as_str().to_owned(),
        product_id: order.product_id.get(),
        // Quantity is 1..=10,000 by construction.
        quantity: u32::try_from(order.quantity.get()).unwrap_or(1),
    };
    let envelope = Envelope::new(&event, correlation_id, traceparent.map(str::to_owned))
        .unwrap_or_else(|err| unreachable_encode(&err))
        .with_tracestate(tracestate.map(str::to_owned));
    OutboxEvent {
        event_id: envelope.id().to_string(),
        event_type: envelope.event_type().to_owned(),
        event_version: i32::try_from(envelope.version()).unwrap_or(i32::MAX),
        occurred_at: envelope.occurred_at(),
        correlation_id: correlation_id.to_owned(),
        traceparent: traceparent.map(str::to_owned),
        tracestate: envelope.tracestate().map(str::to_owned),
        envelope: String::from_utf8(envelope.to_json()).unwrap_or_default(),
    }
}

/// OrderPlaced is plain strings and numbers: serde cannot fail on it. Should that ever change,
/// fail loudly rather than write an empty event.
#[allow(clippy::panic)]
fn unreachable_encode(err: &wharf_bus::EncodeError) -> ! {
    panic!("OrderPlaced must always encode: {err}")
}
