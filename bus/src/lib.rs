//! The wharf message bus.
//!
//! - [`Envelope`] and [`Event`]: what travels, and the typed way in and out of it;
//! - [`Bus`]: publish with confirmation, subscribe with ack / retry-later / dead-letter, and the
//!   dead-letter queue operations operators need; picked at run time by [`connect`] from
//!   [`BusConfig`] (`BUS=sqlite|memory|rabbitmq|sqs`);
//! - backends: [`SqliteBus`] (a SQLite file, the embedded default), [`MemoryBus`] (in-process),
//!   [`RabbitBus`] (lapin), [`SqsBus`] (aws-sdk-sqs);
//! - [`consumer()`]: a supervisable actor that runs a [`Handler`] on a queue's deliveries.
//!
//! This crate knows no service's domain: event types live with the services (`wharf-events`).

use std::future::Future;
use std::pin::Pin;

mod bus;
pub mod config;
pub mod consumer;
mod delivery;
mod depth;
pub mod envelope;
mod error;
pub mod memory;
pub mod message;
mod queue;
pub mod rabbitmq;
pub mod sqlite;
pub mod sqs;
mod subscription;

pub use bus::{Bus, CHECK_TIMEOUT, DeadLetter, Replay, SubscribeOptions, connect, dead_letter_listing};
pub use config::{BackendKind, BusConfig};
pub use consumer::{
    ConsumerHandle, ConsumerMsg, ConsumerOptions, ConsumerStats, DeliveryContext, EventConsumer, Handler, Outcome,
    consumer,
};
pub use delivery::{Delivery, Settled, Undecodable};
pub use depth::Depth;
pub use envelope::{DecodeError, EncodeError, Envelope, Event, EventKind};
pub use error::{BusError, SettleError, SettleFailure};
pub use memory::MemoryBus;
pub use message::{Message, Metadata};
pub use queue::{QueueName, QueueNameError};
pub use rabbitmq::RabbitBus;
pub use sqlite::SqliteBus;
pub use sqs::SqsBus;
pub use subscription::Subscription;

/// A boxed, sendable future: what the object-safe [`Bus`] trait returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `start + after`, saturating at a century away instead of overflowing (durations come from
/// configuration and handlers, and may be `Duration::MAX`).
pub(crate) fn later(start: tokio::time::Instant, after: std::time::Duration) -> tokio::time::Instant {
    const CENTURY: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 3600);
    start.checked_add(after.min(CENTURY)).unwrap_or(start)
}
