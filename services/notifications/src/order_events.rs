//! The OrderPlaced handler run by the EventConsumer actor (`notifications/order-events`).
//!
//! For each event: exactly one Email notification to the order's customer. The notification row
//! and the event's inbox record commit together, so a redelivery finds the row instead of making
//! another; the message is acked only once the notification is Sent. A failed delivery is
//! retried by the bus (with its delay, attempts counted), and after `BUS_MAX_ATTEMPTS` the event
//! lands in the dead-letter queue with the reason and the notification is Failed. Undecodable
//! events and other major versions are dead-lettered by the consumer before this runs.

use std::time::Duration;

use tracing::Instrument;
use wharf_actors::PoolHandle;
use wharf_bus::{DeliveryContext, Envelope, EventKind, Handler, Outcome};
use wharf_contact::EmailAddress;
use wharf_edge::trace;
use wharf_events::OrderPlaced;

use crate::domain::{Channel, DeliveryStatus, MessageText, NewNotification, Recipient};
use crate::order_to_email::OrderToEmail;
use crate::sender::{Reply, SendJob, Sender};
use crate::store::NotificationStore;

/// Turns OrderPlaced events into delivered confirmation emails.
#[derive(Debug)]
pub struct OrderPlacedHandler {
    store: NotificationStore,
    senders: PoolHandle<Sender>,
    /// Wait before the bus delivers a failed event again.
    retry_delay: Duration,
    order_to_email: OrderToEmail,
}

impl OrderPlacedHandler {
    /// A handler writing to `store`, delivering through `senders` and timing each order's email
    /// in `order_to_email`.
    pub fn new(
        store: NotificationStore,
        senders: PoolHandle<Sender>,
        retry_delay: Duration,
        order_to_email: OrderToEmail,
    ) -> Self {
        Self { store, senders, retry_delay, order_to_email }
    }
}

fn confirmation(event: &OrderPlaced) -> String {
    format!(
        "Thank you for your order #{}: {} × product {}. We will let you know when it ships.",
        event.order_id, event.quantity, event.product_id
    )
}

impl Handler for OrderPlacedHandler {
    fn accepts(&self) -> Vec<EventKind> {
        vec![EventKind::of::<OrderPlaced>()]
    }

    /// Runs inside a CONSUMER span (`<queue> process`) that continues the trace the message
    /// carries (its `traceparent` and `tracestate` metadata, else the envelope's), so every line
    /// logged while handling it names the order's correlation and trace ids, and the send is its
    /// child.
    async fn handle(&self, envelope: &Envelope, context: &DeliveryContext) -> Outcome {
        let span = tracing::info_span!(
            "process",
            otel.name = %format_args!("{} process", context.queue.as_str()),
            otel.kind = "consumer",
            messaging.operation.type = "process",
            messaging.destination.name = context.queue.as_str(),
            messaging.message.id = context.message_id.as_str(),
            messaging.message.delivery_attempt = context.attempt,
            service = "notifications",
            correlation_id = envelope.correlation_id(),
        );
        // The tracestate belongs to the traceparent it came with: take the pair from one place.
        let metadata = &context.metadata;
        let (traceparent, tracestate) = match metadata.traceparent.as_deref() {
            Some(traceparent) => (Some(traceparent), metadata.tracestate.as_deref()),
            None => (envelope.traceparent(), envelope.tracestate()),
        };
        trace::continue_from(&span, traceparent, tracestate);
        self.handle_in(envelope, context).instrument(span).await
    }
}

impl OrderPlacedHandler {
    async fn handle_in(&self, envelope: &Envelope, context: &DeliveryContext) -> Outcome {
        let event = match envelope.decode::<OrderPlaced>() {
            Ok(event) => event,
            Err(err) => return Outcome::dead_letter(format!("OrderPlaced payload does not decode: {err}")),
        };
        let recipient = match EmailAddress::parse(&event.customer_email) {
            Ok(address) => Recipient::Email(address),
            Err(err) => return Outcome::dead_letter(format!("customerEmail {:?} {err}", event.customer_email)),
        };
        let message = match MessageText::parse(&confirmation(&event)) {
            Ok(message) => message,
            Err(err) => return Outcome::dead_letter(format!("confirmation text {err}")),
        };
        let new = NewNotification { channel: Channel::Email, recipient, message };
        let event_id = envelope.id().to_string();
        let (stored, fresh) =
            match self.store.for_event(&event_id, event.order_id, &new, envelope.correlation_id()).await {
                Ok(found) => found,
                Err(err) => return Outcome::retry(self.retry_delay, format!("notification store: {err}")),
            };
        let id = stored.notification.id;
        match stored.notification.status {
            DeliveryStatus::Sent => {
                tracing::info!(event_id, notification_id = id, "event seen before; its notification was sent");
                return Outcome::Ack;
            }
            // Replayed from the dead-letter queue: the operator wants another try.
            DeliveryStatus::Failed => {
                if let Err(err) = self.store.reopen(id).await {
                    return Outcome::retry(self.retry_delay, format!("notification store: {err}"));
                }
            }
            DeliveryStatus::Pending => {}
        }
        tracing::debug!(
            event_id,
            notification_id = id,
            fresh,
            attempt = context.attempt,
            "delivering order confirmation"
        );
        let (reply, delivered) = Reply::channel();
        let job = SendJob {
            notification: stored.notification,
            correlation_id: stored.correlation_id,
            // One attempt per delivery: the bus paces the retries and counts them.
            attempts: 1,
            // On the bus's last attempt a failure is final: the event goes to the DLQ.
            final_on_failure: context.is_last_attempt(),
            reply: Some(reply),
            parent: tracing::Span::current(),
        };
        // Started by a sender, then delivered on its own task: the event is acked only once the
        // notification is Sent.
        match self.senders.call(job).await {
            Ok(Ok(())) => match delivered.await {
                Ok(Ok(())) => {
                    self.order_to_email.sent(envelope.occurred_at());
                    Outcome::Ack
                }
                Ok(Err(err)) => Outcome::retry(self.retry_delay, err.to_string()),
                Err(_) => Outcome::retry(self.retry_delay, "the delivery ended without an outcome"),
            },
            Ok(Err(err)) => Outcome::retry(self.retry_delay, err.to_string()),
            Err(err) => Outcome::retry(self.retry_delay, format!("sender pool: {err}")),
        }
    }
}
