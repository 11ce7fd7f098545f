//! The delay a customer notices: from an order's placement (its OrderPlaced event's
//! `occurredAt`) to its confirmation email Sent, as `wharf_order_to_email_seconds`. It spans the
//! outbox, the bus, any redeliveries and the send itself.

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use time::OffsetDateTime;

/// The histogram; cheap to clone.
#[derive(Debug, Clone)]
pub struct OrderToEmail {
    seconds: Histogram,
}

impl OrderToEmail {
    pub fn register(registry: &mut Registry) -> Self {
        // 0.1 s … ~55 min: an instant mock send up to a backlog an operator must hear about.
        let seconds = Histogram::new(exponential_buckets(0.1, 2.0, 16));
        registry.register(
            "order_to_email_seconds",
            "From an order's placement (the event's occurredAt) to its confirmation email Sent",
            seconds.clone(),
        );
        Self { seconds }
    }

    /// Records an email Sent now for an order placed at `placed` (a clock behind the producer's
    /// counts as no delay).
    pub fn sent(&self, placed: OffsetDateTime) {
        let delay = (OffsetDateTime::now_utc() - placed).as_seconds_f64().max(0.0);
        self.seconds.observe(delay);
    }
}
