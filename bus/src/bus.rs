//! The bus trait every backend implements, and [`connect`], which picks the backend from
//! configuration at run time.
//!
//! Services hold an `Arc<dyn Bus>`; one binary serves every mode (`BUS=sqlite|memory|rabbitmq|sqs`).
//! The trait is object-safe (its futures are boxed), so tests and decorators can stand in for it.
//!
//! The promises every backend keeps — the conformance suite in `tests/conformance.rs` checks them:
//! - `publish` returns `Ok` only once the backend durably accepted the message (publisher confirm,
//!   SendMessage OK, the SQLite row committed, or the memory queue holding it); it never reports
//!   success for a message the backend did not confirm. It may deliver twice (at-least-once):
//!   consumers dedupe by event id.
//! - A delivery not acked is delivered again; every delivery counts as an attempt; after
//!   `max_attempts` the message goes to the dead-letter queue with its reason.
//! - Dead letters can be listed, replayed to the main queue (with a fresh attempt count) and purged.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::BoxFuture;
use crate::config::{BackendKind, BusConfig};
use crate::depth::Depth;
use crate::envelope::Envelope;
use crate::error::BusError;
use crate::memory::MemoryBus;
use crate::message::{Message, Metadata};
use crate::queue::QueueName;
use crate::rabbitmq::RabbitBus;
use crate::sqlite::SqliteBus;
use crate::sqs::SqsBus;
use crate::subscription::Subscription;

/// How long [`Bus::check`] waits for the backend.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `work`'s answer, or `Unavailable` with `silence` as the detail once [`CHECK_TIMEOUT`] has
/// passed without one: what keeps a probe or a scrape from hanging on a dead backend.
pub(crate) async fn within_check_timeout<T>(
    backend: BackendKind,
    silence: &str,
    work: impl Future<Output = Result<T, BusError>>,
) -> Result<T, BusError> {
    tokio::time::timeout(CHECK_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(BusError::Unavailable { backend, waited: CHECK_TIMEOUT, detail: silence.to_owned() }))
}

/// A message bus: queues with at-least-once delivery, delayed retry and a dead-letter queue.
pub trait Bus: Send + Sync + fmt::Debug + 'static {
    /// Which backend this is.
    fn backend(&self) -> BackendKind;

    /// Deliveries after which a message is dead-lettered (`BUS_MAX_ATTEMPTS`).
    fn max_attempts(&self) -> u32;

    /// Creates `queue`, its dead-letter queue and whatever routing they need, if missing.
    /// Idempotent. Local use: in AWS, Terraform owns the topology.
    fn provision<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<(), BusError>>;

    /// Publishes a message; returns once the backend durably accepted it (see the module docs).
    fn publish_message<'a>(&'a self, queue: &'a QueueName, message: &'a Message)
    -> BoxFuture<'a, Result<(), BusError>>;

    /// Publishes an envelope, with its metadata as headers / message attributes.
    fn publish<'a>(&'a self, queue: &'a QueueName, envelope: &'a Envelope) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move { self.publish_message(queue, &Message::from_envelope(envelope)).await })
    }

    /// Starts receiving from `queue`; at most `options.prefetch` deliveries are unsettled at once.
    fn subscribe<'a>(
        &'a self,
        queue: &'a QueueName,
        options: &'a SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription, BusError>>;

    /// Up to `limit` messages of `queue`'s dead-letter queue, without removing them; in queue
    /// order where the backend keeps one (SQS does not).
    fn dead_letters<'a>(
        &'a self,
        queue: &'a QueueName,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BusError>>;

    /// Moves the selected dead letters back to `queue`, each with a fresh attempt count.
    /// Returns how many were moved.
    fn replay<'a>(&'a self, queue: &'a QueueName, which: &'a Replay) -> BoxFuture<'a, Result<usize, BusError>>;

    /// Deletes every message in `queue`'s dead-letter queue; returns how many there were.
    fn purge_dead_letters<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<usize, BusError>>;

    /// How many messages wait in `queue` and in its dead-letter queue (see [`Depth`]); answers
    /// within [`CHECK_TIMEOUT`]. For metrics: one or two backend calls, not meant per message.
    fn queue_depth<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<Depth, BusError>>;

    /// Whether the backend answers and `queue` exists: the bus's readiness check. Answers within
    /// [`CHECK_TIMEOUT`] (a readiness probe must not hang on a dead broker).
    fn check<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<(), BusError>>;
}

/// How a subscription fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Deliveries handed out and not yet settled, at most (AMQP prefetch; the consumer's concurrency).
    pub prefetch: u16,
    /// SQS: how long one ReceiveMessage waits for messages (long polling, at most 20 s). A
    /// consumer's graceful stop waits for the poll under way (SQS hides what it brings even if
    /// nobody reads the answer), so keep it below the consumer's `drain_timeout`.
    pub poll_wait: Duration,
    /// SQS: how long a received message stays invisible; extended while its handler runs. (The
    /// SQLite bus leases for `BUS_SQLITE_LEASE_MS` instead, renewed the same way.)
    pub visibility_timeout: Duration,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        // A 5 s long poll: an idle consumer makes 12 requests a minute (20 s would make 3), and
        // a graceful stop waits at most that long for the poll under way.
        Self { prefetch: 10, poll_wait: Duration::from_secs(5), visibility_timeout: Duration::from_secs(30) }
    }
}

/// A message in a dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// What [`Replay::Ids`] selects it by: the event id for envelopes, a transport id otherwise.
    pub id: String,
    /// The body as it was published.
    pub body: Vec<u8>,
    /// The transport metadata it carried.
    pub metadata: Metadata,
    /// Why it was dead-lettered, when known (the bus records it; a broker or redrive policy that
    /// moved it by itself may not).
    pub reason: Option<String>,
    /// Deliveries it had, when known.
    pub attempts: Option<u32>,
    /// When it was dead-lettered, when known.
    pub dead_lettered_at: Option<OffsetDateTime>,
}

impl DeadLetter {
    /// The body parsed as an envelope.
    pub fn envelope(&self) -> Result<Envelope, serde_json::Error> {
        Envelope::from_json(&self.body)
    }

    /// The dead letter as JSON for operators (`/admin/dlq`, `wharf dlq list --json`): `id`,
    /// `eventType`, `eventVersion`, `correlationId`, `reason`, `attempts`, `deadLetteredAt`
    /// (RFC 3339), and `body` — the JSON it carried, or the raw text when it is not JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let body = serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&self.body).into_owned()));
        let at = self.dead_lettered_at.and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok());
        serde_json::json!({
            "id": self.id,
            "eventType": self.metadata.event_type,
            "eventVersion": self.metadata.event_version,
            "correlationId": self.metadata.correlation_id,
            "reason": self.reason,
            "attempts": self.attempts,
            "deadLetteredAt": at,
            "body": body,
        })
    }
}

/// A dead-letter queue's contents as operators see them (`GET /admin/dlq`, `wharf dlq list
/// --json`): `queue`, `deadLetterQueue`, `backend`, `maxAttempts` (when the caller knows the
/// consumers' setting), `count` and `messages` ([`DeadLetter::to_json`] each).
pub fn dead_letter_listing(
    queue: &QueueName,
    backend: BackendKind,
    max_attempts: Option<u32>,
    letters: &[DeadLetter],
) -> serde_json::Value {
    let messages: Vec<serde_json::Value> = letters.iter().map(DeadLetter::to_json).collect();
    serde_json::json!({
        "queue": queue.as_str(),
        "deadLetterQueue": format!("{queue}-dlq"),
        "backend": backend.as_str(),
        "maxAttempts": max_attempts,
        "count": messages.len(),
        "messages": messages,
    })
}

/// Which dead letters [`Bus::replay`] moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// Every message in the dead-letter queue.
    All,
    /// The messages with these [`DeadLetter::id`]s.
    Ids(Vec<String>),
}

impl Replay {
    /// Whether the dead letter with `id` is selected.
    pub fn selects(&self, id: &str) -> bool {
        match self {
            Self::All => true,
            Self::Ids(ids) => ids.iter().any(|wanted| wanted == id),
        }
    }
}

/// Opens the bus `config` describes and, if `config.provision`, provisions `config.queue`;
/// otherwise checks that the queue exists, so a misconfigured service fails at start-up.
pub async fn connect(config: &BusConfig) -> Result<Arc<dyn Bus>, BusError> {
    let bus: Arc<dyn Bus> = match config.backend {
        BackendKind::Memory => Arc::new(MemoryBus::new(config)),
        BackendKind::Sqlite => Arc::new(SqliteBus::open(config).await?),
        BackendKind::RabbitMq => Arc::new(RabbitBus::new(config)),
        BackendKind::Sqs => Arc::new(SqsBus::connect(config).await),
    };
    if config.provision {
        bus.provision(&config.queue).await?;
    } else {
        bus.check(&config.queue).await?;
    }
    tracing::info!(backend = %config.backend, queue = %config.queue, provisioned = config.provision, "bus ready");
    Ok(bus)
}
