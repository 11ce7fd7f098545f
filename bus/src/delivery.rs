//! One message handed to a subscriber, and the three ways to settle it.
//!
//! A [`Delivery`] owns its message until it is settled:
//! - [`Delivery::ack`]: done, remove it;
//! - [`Delivery::retry`]: deliver it again after a delay; past the bus's max attempts this
//!   dead-letters instead, with the reason `"exhausted N attempts: <reason>"`;
//! - [`Delivery::dead_letter`]: move it to the dead-letter queue with a reason.
//!
//! A delivery dropped without being settled (its handler task was aborted because the consumer
//! actor died, or the code simply forgot) is *released*: the backend makes it available again and
//! the next delivery counts as a new attempt. Nothing is lost by dropping, only delayed.

use std::fmt;
use std::time::Duration;

use uuid::Uuid;

use crate::BoxFuture;
use crate::envelope::Envelope;
use crate::error::{SettleError, SettleFailure};
use crate::message::Metadata;
use crate::queue::QueueName;

/// A body that is not a valid envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    pub error: String,
}

/// How a delivery was settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Removed from the queue.
    Acked,
    /// Scheduled for another delivery after `delay`.
    Retried {
        /// The delay asked for (a backend may round it up, never down).
        delay: Duration,
    },
    /// Moved to the dead-letter queue.
    DeadLettered {
        /// The reason recorded on the dead letter.
        reason: String,
    },
}

/// What a backend must do to settle one of its deliveries. Each method consumes the settler, so
/// a delivery is settled at most once.
pub(crate) trait Settler: Send + Sync + 'static {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), SettleFailure>>;
    /// Make the message available again after `delay`; `attempts` deliveries happened so far.
    fn retry(self: Box<Self>, delay: Duration, attempts: u32) -> BoxFuture<'static, Result<(), SettleFailure>>;
    /// Move the message to the dead-letter queue.
    fn dead_letter(self: Box<Self>, letter: DeadLetterNote) -> BoxFuture<'static, Result<(), SettleFailure>>;
    /// The delivery was dropped unsettled: make it available again now. Must not block; called
    /// from `Drop`, possibly while a runtime is shutting down.
    fn release(self: Box<Self>);
}

/// What a backend records on a message it dead-letters.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetterNote {
    pub reason: String,
    /// Deliveries the message had.
    pub attempts: u32,
}

/// One message received from a queue; settle it with [`Delivery::ack`], [`Delivery::retry`] or
/// [`Delivery::dead_letter`].
pub struct Delivery {
    queue: QueueName,
    /// Transport message id (the event id for envelopes published by the bus).
    message_id: String,
    body: Vec<u8>,
    decoded: Result<Envelope, Undecodable>,
    metadata: Metadata,
    attempt: u32,
    max_attempts: u32,
    /// Taken by the first settlement: a message is acked, retried or dead-lettered once.
    settler: Option<Box<dyn Settler>>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("queue", &self.queue)
            .field("message_id", &self.message_id)
            .field("attempt", &self.attempt)
            .field("max_attempts", &self.max_attempts)
            .field("metadata", &self.metadata)
            .field("decoded", &self.decoded.as_ref().map(Envelope::kind))
            .finish_non_exhaustive()
    }
}

/// What a backend knows about a received message.
pub(crate) struct Received {
    pub queue: QueueName,
    /// Transport id, used when the body is not an envelope (whose event id is used otherwise).
    pub message_id: Option<String>,
    pub body: Vec<u8>,
    pub metadata: Metadata,
    /// Counts from 1: the first delivery is attempt 1.
    pub attempt: u32,
    pub max_attempts: u32,
}

impl Delivery {
    /// Decodes the body and wraps the backend's settler.
    pub(crate) fn new(received: Received, settler: Box<dyn Settler>) -> Self {
        let decoded = Envelope::from_json(&received.body).map_err(|err| Undecodable { error: err.to_string() });
        // The event id when there is one, so ids match `DeadLetter::id` on every backend.
        let message_id = match &decoded {
            Ok(envelope) => envelope.id().to_string(),
            Err(_) => received.message_id.filter(|id| !id.is_empty()).unwrap_or_else(|| Uuid::now_v7().to_string()),
        };
        Self {
            queue: received.queue,
            message_id,
            body: received.body,
            decoded,
            metadata: received.metadata,
            attempt: received.attempt.max(1),
            max_attempts: received.max_attempts,
            settler: Some(settler),
        }
    }

    /// The queue this came from.
    pub fn queue(&self) -> &QueueName {
        &self.queue
    }

    /// The event id for envelopes; a transport id for bodies that are not one.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The decoded envelope, or why the body is not one.
    pub fn envelope(&self) -> Result<&Envelope, &Undecodable> {
        self.decoded.as_ref()
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Transport metadata (headers / message attributes).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Which delivery of this message this is, 1-based. Counts redeliveries after a consumer died
    /// as well as retries.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Removes the message from the queue.
    pub async fn ack(mut self) -> Result<Settled, SettleError> {
        let settler = self.take_settler();
        settler.ack().await.map_err(|failure| self.error("ack", failure))?;
        Ok(Settled::Acked)
    }

    /// Delivers the message again after `delay`, or — if this was the last allowed attempt —
    /// dead-letters it with the reason `"exhausted N attempts: <reason>"`.
    pub async fn retry(self, delay: Duration, reason: &str) -> Result<Settled, SettleError> {
        if self.attempt >= self.max_attempts {
            let reason = format!("exhausted {} attempts: {reason}", self.attempt);
            return self.dead_letter(&reason).await;
        }
        let mut this = self;
        let settler = this.take_settler();
        let attempts = this.attempt;
        settler.retry(delay, attempts).await.map_err(|failure| this.error("retry", failure))?;
        Ok(Settled::Retried { delay })
    }

    /// Moves the message to the dead-letter queue, recording `reason` and the attempt count.
    pub async fn dead_letter(self, reason: &str) -> Result<Settled, SettleError> {
        let attempts = self.attempt;
        self.dead_letter_after(reason, attempts).await
    }

    /// Dead-letters recording `attempts` rather than this delivery's attempt number (a delivery
    /// refused before any handler saw it does not count as one).
    pub(crate) async fn dead_letter_after(mut self, reason: &str, attempts: u32) -> Result<Settled, SettleError> {
        let settler = self.take_settler();
        let note = DeadLetterNote { reason: reason.to_owned(), attempts };
        settler.dead_letter(note).await.map_err(|failure| self.error("dead-letter", failure))?;
        Ok(Settled::DeadLettered { reason: reason.to_owned() })
    }

    fn take_settler(&mut self) -> Box<dyn Settler> {
        // Every settle method consumes `self`, so the settler is always still present here;
        // `Drop` is the only other taker and runs after them.
        self.settler.take().unwrap_or_else(|| Box::new(AlreadySettled))
    }

    fn error(&self, operation: &'static str, failure: SettleFailure) -> SettleError {
        SettleError { operation, queue: self.queue.to_string(), message_id: self.message_id.clone(), failure }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(settler) = self.settler.take() {
            tracing::debug!(
                queue = %self.queue,
                message_id = %self.message_id,
                attempt = self.attempt,
                "delivery dropped without being settled; releasing it for redelivery"
            );
            settler.release();
        }
    }
}

/// Stands in for a settler that was already used; never reached through the public API.
struct AlreadySettled;

impl Settler for AlreadySettled {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), SettleFailure>> {
        Box::pin(async { Err(SettleFailure::AlreadySettled) })
    }
    fn retry(self: Box<Self>, _: Duration, _: u32) -> BoxFuture<'static, Result<(), SettleFailure>> {
        Box::pin(async { Err(SettleFailure::AlreadySettled) })
    }
    fn dead_letter(self: Box<Self>, _: DeadLetterNote) -> BoxFuture<'static, Result<(), SettleFailure>> {
        Box::pin(async { Err(SettleFailure::AlreadySettled) })
    }
    fn release(self: Box<Self>) {}
}
