//! What can go wrong on the bus, in terms a caller can act on.
//!
//! [`BusError`] separates the outcomes that matter to a producer: `Unavailable` and `Backend` may
//! succeed if tried again later (the outbox relay does), `Rejected` and `QueueNotFound` will not
//! until someone changes the topology or the message, `Full` is the memory bus's back-pressure.
//! A publish that returns any error may still have reached the queue (e.g. the confirm was lost
//! with the connection); a publish that returns `Ok` has always been durably accepted.

use std::time::Duration;

use crate::config::BackendKind;

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker or endpoint could not be reached, or did not confirm, within the allowed time.
    #[error("{backend} is unavailable (gave up after {waited:?}): {detail}")]
    Unavailable {
        backend: BackendKind,
        /// How long the operation waited before giving up.
        waited: Duration,
        /// The last error seen.
        detail: String,
    },
    /// The queue (or its dead-letter queue) does not exist; provision it first.
    #[error("queue {queue} does not exist on {backend}: {detail}")]
    QueueNotFound {
        backend: BackendKind,
        queue: String,
        /// What the backend said.
        detail: String,
    },
    /// The memory queue stayed full for the whole publish timeout.
    #[error("memory queue {queue} is full ({capacity} messages, dead letters included) after waiting {waited:?}")]
    Full {
        queue: String,
        capacity: usize,
        /// How long the publish waited for room.
        waited: Duration,
    },
    /// The backend refused the operation for a reason retrying will not fix (message too large,
    /// unroutable, conflicting queue arguments, access denied).
    #[error("{backend} refused to {operation} {target}: {detail}")]
    Rejected {
        backend: BackendKind,
        /// What was attempted, e.g. `publish to`.
        operation: &'static str,
        /// The queue or exchange.
        target: String,
        /// What the backend said.
        detail: String,
    },
    /// The backend failed in a way that may be transient.
    #[error("{backend} failed to {operation} {target}: {detail}")]
    Backend {
        backend: BackendKind,
        operation: &'static str,
        /// The queue or exchange.
        target: String,
        /// What the backend said.
        detail: String,
    },
    /// The subscription ended: the consumer was cancelled and could not be re-established.
    #[error("subscription to {queue} on {backend} ended: {detail}")]
    SubscriptionEnded { backend: BackendKind, queue: String, detail: String },
}

impl BusError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Backend { .. } | Self::Full { .. })
    }
}

/// A delivery could not be settled (acked, retried or dead-lettered). The message was not
/// lost: the backend still holds it and will deliver it again.
#[derive(Debug, thiserror::Error)]
#[error("could not {operation} message {message_id} from {queue}: {failure} (it will be redelivered)")]
pub struct SettleError {
    /// `ack`, `retry` or `dead-letter`.
    pub operation: &'static str,
    /// The queue the delivery came from.
    pub queue: String,
    /// The transport message id.
    pub message_id: String,
    /// What the backend reported. Part of this error's message rather than its source, so a
    /// log line carries it whichever way it prints errors.
    pub failure: SettleFailure,
}

/// Why a backend could not settle one of its deliveries.
#[derive(Debug, thiserror::Error)]
pub enum SettleFailure {
    /// The delivery was settled before; the public API makes this unreachable.
    #[error("the delivery was already settled")]
    AlreadySettled,
    /// The subscription the delivery came from has closed.
    #[error("its subscription was closed")]
    SubscriptionClosed,
    /// The AMQP channel it came on has closed; the broker requeued it.
    #[error("its channel was closed and the broker requeued it")]
    ChannelClosed,
    /// The broker failed the acknowledgement.
    #[error("{0}")]
    Amqp(lapin::Error),
    /// The local bus's lease on the delivery ran out and another consumer claimed it: that
    /// consumer now owns the message.
    #[error("its lease expired and it was claimed again")]
    LeaseLost,
    /// SQS refused this one entry of a batch (its code and message).
    #[error("SQS refused it: {code}: {message}")]
    Refused { code: String, message: String },
    /// The operation behind the settlement (a publish of the copy, a queue lookup, an API call)
    /// failed.
    #[error(transparent)]
    Bus(#[from] BusError),
}
