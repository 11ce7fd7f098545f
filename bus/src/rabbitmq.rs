//! The RabbitMQ backend (AMQP 0-9-1 via lapin): the bus of the local-services mode.
//!
//! Topology for a queue `Q` (declared by [`crate::Bus::provision`], idempotently):
//!
//! | exchange (direct, durable) | routing key | queue (quorum, durable) | purpose |
//! |---|---|---|---|
//! | `wharf.events` | `Q` | `Q` | the queue itself; dead-letters to `wharf.dead-letter`/`Q-dlq` |
//! | `wharf.dead-letter` | `Q-dlq` | `Q-dlq` | dead letters |
//! | `wharf.retry` | `Q-retry-<ms>` | `Q-retry-<ms>` | delayed retries (declared on first use) |
//!
//! - **Publishing** is persistent, `mandatory` and confirmed: `publish` returns after the
//!   broker's ack; an unroutable message (queue missing) or a nack is an error, never a success.
//! - **Retry later** republishes the message to a retry queue whose queue-wide TTL is the delay
//!   and whose dead-letter target is `wharf.events`/`Q`, then acks the original: the broker
//!   holds it without anyone polling and puts it back when the TTL expires. One retry queue per
//!   delay (rounded *up* to two significant digits, so at most ~90 per decade of delays): with a
//!   single queue and per-message TTLs a long delay at the head would hold back shorter ones.
//! - **Attempts**: the bus keeps an `attempts` header (deliveries before this copy) on every
//!   republished copy, and quorum queues add `x-delivery-count` when they redeliver a message
//!   that was not acked (consumer crashed, channel closed). attempt = `attempts` +
//!   `x-delivery-count` + 1. The queue's `x-delivery-limit` (= max attempts) makes the broker
//!   dead-letter a message that keeps killing its consumer even if no consumer gets to it.
//! - **Dead-lettering** by the bus republishes to `wharf.dead-letter` with `dead-letter-reason`,
//!   `dead-letter-attempts` and `dead-lettered-at` headers, then acks the original.
//! - **Reconnection**: see `rabbitmq/link.rs`. A publish during an outage waits (retrying) up to the
//!   publish timeout, then fails with [`BusError::Unavailable`]; a subscription reconnects and
//!   resubscribes by itself, with backoff.
//!
//! Changing `BUS_MAX_ATTEMPTS` changes the queue's `x-delivery-limit`; RabbitMQ refuses to
//! redeclare a queue with other arguments, so provisioning then fails with a clear error: delete
//! the (drained) queue, or apply the new limit with a policy.

mod consume;
mod fields;
mod link;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::{
    BasicGetOptions, BasicNackOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, ErrorKind, ExchangeKind};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

use crate::BoxFuture;
use crate::bus::{Bus, DeadLetter, Replay, SubscribeOptions, within_check_timeout};
use crate::config::{BackendKind, BusConfig};
use crate::depth::Depth;
use crate::error::BusError;
use crate::message::{Message, headers};
use crate::queue::QueueName;
use crate::subscription::Subscription;
use link::Link;

/// The exchange every queue is bound to under its own name.
pub const EVENTS_EXCHANGE: &str = "wharf.events";
/// The exchange retry queues are bound to.
pub const RETRY_EXCHANGE: &str = "wharf.retry";
/// The exchange dead-letter queues are bound to.
pub const DEAD_LETTER_EXCHANGE: &str = "wharf.dead-letter";

/// What a check or a count says when the backend stays silent past [`crate::CHECK_TIMEOUT`].
const NO_ANSWER: &str = "no answer from the broker";
const BACKEND: BackendKind = BackendKind::RabbitMq;

/// The RabbitMQ bus; cheap to clone. Connects lazily, on first use.
#[derive(Debug, Clone)]
pub struct RabbitBus {
    inner: Arc<Rabbit>,
}

#[derive(Debug)]
pub(crate) struct Rabbit {
    link: Link,
    max_attempts: u32,
    publish_timeout: Duration,
    /// Retry queues known to exist (declared by this process).
    retry_queues: Mutex<HashSet<String>>,
}

impl RabbitBus {
    /// A bus on `config.amqp_url`; its connection is named `wharf-bus` in the management UI.
    pub fn new(config: &BusConfig) -> Self {
        Self::with_connection_name(config, "wharf-bus")
    }

    /// Like [`RabbitBus::new`], with the connection shown (and closable) under `name`.
    pub fn with_connection_name(config: &BusConfig, name: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Rabbit {
                link: Link::new(config.amqp_url.clone(), name.into()),
                max_attempts: config.max_attempts,
                publish_timeout: config.publish_timeout,
                retry_queues: Mutex::new(HashSet::new()),
            }),
        }
    }
}

/// Errors lapin reports for a missing queue or exchange.
fn is_not_found(err: &lapin::Error) -> bool {
    soft_error(err) == Some(AMQPSoftError::NOTFOUND)
}

fn soft_error(err: &lapin::Error) -> Option<AMQPSoftError> {
    match err.kind() {
        ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(soft) => Some(soft.clone()),
            AMQPErrorKind::Hard(_) => None,
        },
        _ => None,
    }
}

/// Errors that will not go away by retrying the same operation.
fn is_permanent(err: &lapin::Error) -> bool {
    matches!(
        soft_error(err),
        Some(
            AMQPSoftError::NOTFOUND
                | AMQPSoftError::ACCESSREFUSED
                | AMQPSoftError::PRECONDITIONFAILED
                | AMQPSoftError::CONTENTTOOLARGE
        )
    )
}

fn backend_error(operation: &'static str, target: &str, err: &lapin::Error) -> BusError {
    if is_not_found(err) {
        BusError::QueueNotFound { backend: BACKEND, queue: target.to_owned(), detail: err.to_string() }
    } else if is_permanent(err) {
        BusError::Rejected { backend: BACKEND, operation, target: target.to_owned(), detail: err.to_string() }
    } else {
        BusError::Backend { backend: BACKEND, operation, target: target.to_owned(), detail: err.to_string() }
    }
}

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in entries {
        table.insert(ShortString::from(*key), value.clone());
    }
    table
}

fn text_value(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

/// The name of the retry queue that delays `queue`'s messages by `delay` (rounded up, see
/// [`retry_bucket`]): `<queue>-retry-<ms>`.
pub fn retry_queue_name(queue: &QueueName, delay: Duration) -> String {
    format!("{queue}-retry-{}", retry_bucket(delay))
}

/// The delay in milliseconds a retry of `delay` actually waits: rounded up to two significant
/// digits (exact below 100 ms), so a handful of retry queues serve any backoff schedule.
pub fn retry_bucket(delay: Duration) -> u64 {
    let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX).max(1);
    if ms < 100 {
        return ms;
    }
    let mut unit = 1u64;
    while ms / unit >= 100 {
        unit = unit.saturating_mul(10);
    }
    ms.div_ceil(unit).saturating_mul(unit)
}

impl Rabbit {
    /// Publishes and waits for the broker's confirm, reconnecting and retrying transient
    /// failures until the publish timeout. Never returns `Ok` for an unconfirmed message.
    pub(crate) async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), BusError> {
        let started = Instant::now();
        let deadline = crate::later(started, self.publish_timeout);
        let mut pause = Duration::from_millis(50);
        let target = format!("{exchange}/{routing_key}");
        loop {
            let attempt = async {
                let channel = self.link.publisher().await?;
                let options = BasicPublishOptions { mandatory: true, immediate: false };
                channel
                    .basic_publish(exchange.into(), routing_key.into(), options, body, properties.clone())
                    .await?
                    .await
            };
            let last_error = match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(Confirmation::Ack(None))) => return Ok(()),
                Ok(Ok(Confirmation::Ack(Some(_)))) => {
                    return Err(BusError::QueueNotFound {
                        backend: BACKEND,
                        queue: routing_key.to_owned(),
                        detail: format!("no queue is bound to {target}: provision the topology"),
                    });
                }
                Ok(Ok(Confirmation::Nack(_))) => "the broker nacked the message".to_owned(),
                Ok(Ok(Confirmation::NotRequested)) => "the channel is not in confirm mode".to_owned(),
                Ok(Err(err)) if is_permanent(&err) => return Err(backend_error("publish to", &target, &err)),
                Ok(Err(err)) => err.to_string(),
                Err(_) => "no confirm before the deadline".to_owned(),
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(BusError::Unavailable { backend: BACKEND, waited: started.elapsed(), detail: last_error });
            }
            tracing::debug!(%target, error = %last_error, "publish not confirmed; retrying");
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Runs `operation` on a fresh channel, closing it afterwards.
    async fn on_channel<T>(
        &self,
        operation: &'static str,
        target: &str,
        work: impl AsyncFnOnce(&Channel) -> Result<T, lapin::Error>,
    ) -> Result<T, BusError> {
        let started = Instant::now();
        let channel = tokio::time::timeout(self.publish_timeout, self.link.channel())
            .await
            .map_err(|_| BusError::Unavailable {
                backend: BACKEND,
                waited: started.elapsed(),
                detail: "could not connect in time".to_owned(),
            })?
            .map_err(|err| BusError::Unavailable {
                backend: BACKEND,
                waited: started.elapsed(),
                detail: err.to_string(),
            })?;
        let result = work(&channel).await.map_err(|err| backend_error(operation, target, &err));
        // Closing requeues whatever the work left unacked (listing dead letters relies on it).
        if channel.status().connected() {
            let _ = channel.close(200, "done".into()).await;
        }
        result
    }

    async fn declare_exchanges(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let durable = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
        for exchange in [EVENTS_EXCHANGE, RETRY_EXCHANGE, DEAD_LETTER_EXCHANGE] {
            channel.exchange_declare(exchange.into(), ExchangeKind::Direct, durable, FieldTable::default()).await?;
        }
        Ok(())
    }

    async fn provision(&self, queue: &QueueName) -> Result<(), BusError> {
        let dlq = queue.dead_letter();
        let max_attempts = i64::from(self.max_attempts);
        self.on_channel("provision", queue.as_str(), async |channel| {
            self.declare_exchanges(channel).await?;
            let durable = QueueDeclareOptions::durable();
            channel
                .queue_declare(dlq.as_str().into(), durable, table(&[("x-queue-type", text_value("quorum"))]))
                .await?;
            channel
                .queue_bind(
                    dlq.as_str().into(),
                    DEAD_LETTER_EXCHANGE.into(),
                    dlq.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            let arguments = table(&[
                ("x-queue-type", text_value("quorum")),
                ("x-dead-letter-exchange", text_value(DEAD_LETTER_EXCHANGE)),
                ("x-dead-letter-routing-key", text_value(&dlq)),
                ("x-dead-letter-strategy", text_value("at-least-once")),
                ("x-overflow", text_value("reject-publish")),
                ("x-delivery-limit", AMQPValue::LongLongInt(max_attempts)),
            ]);
            channel.queue_declare(queue.as_str().into(), durable, arguments).await?;
            channel
                .queue_bind(
                    queue.as_str().into(),
                    EVENTS_EXCHANGE.into(),
                    queue.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            Ok(())
        })
        .await
        .map_err(|err| match err {
            BusError::Rejected { detail, .. } if detail.contains("PRECONDITION") => BusError::Rejected {
                backend: BACKEND,
                operation: "provision",
                target: queue.to_string(),
                detail: format!(
                    "{detail} — the queue exists with other arguments (e.g. another BUS_MAX_ATTEMPTS); delete the \
                     drained queue or set the limit with a policy"
                ),
            },
            other => other,
        })
    }

    /// Makes sure the retry queue for `delay` on `queue` exists; returns its name.
    async fn retry_queue(&self, queue: &QueueName, delay: Duration) -> Result<String, BusError> {
        let ms = retry_bucket(delay);
        let name = retry_queue_name(queue, delay);
        let known = self.retry_queues.lock().unwrap_or_else(|p| p.into_inner()).contains(&name);
        if known {
            return Ok(name);
        }
        let ttl = i64::try_from(ms).unwrap_or(i64::MAX);
        self.on_channel("declare retry queue", &name, async |channel| {
            self.declare_exchanges(channel).await?;
            let arguments = table(&[
                ("x-queue-type", text_value("quorum")),
                ("x-message-ttl", AMQPValue::LongLongInt(ttl)),
                ("x-dead-letter-exchange", text_value(EVENTS_EXCHANGE)),
                ("x-dead-letter-routing-key", text_value(queue.as_str())),
                ("x-dead-letter-strategy", text_value("at-least-once")),
                ("x-overflow", text_value("reject-publish")),
            ]);
            channel.queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), arguments).await?;
            channel
                .queue_bind(
                    name.as_str().into(),
                    RETRY_EXCHANGE.into(),
                    name.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
        })
        .await?;
        self.retry_queues.lock().unwrap_or_else(|p| p.into_inner()).insert(name.clone());
        Ok(name)
    }

    /// Returns every message fetched on `channel` up to `last_tag` that is still unacked to
    /// `queue`, and waits (briefly) until `queue` holds `expected` ready messages again: quorum
    /// queues requeue asynchronously, and the next operation must see them.
    async fn restore(
        &self,
        channel: &Channel,
        queue: &str,
        last_tag: Option<u64>,
        expected: u32,
    ) -> Result<(), lapin::Error> {
        let Some(last_tag) = last_tag else { return Ok(()) };
        channel.basic_nack(last_tag, BasicNackOptions { multiple: true, requeue: true }).await?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.message_count(channel, queue).await? < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Number of messages in `queue`, or `QueueNotFound`.
    async fn message_count(&self, channel: &Channel, queue: &str) -> Result<u32, lapin::Error> {
        let passive = QueueDeclareOptions::default().passive();
        Ok(channel.queue_declare(queue.into(), passive, FieldTable::default()).await?.message_count())
    }
}

/// Properties of a message the bus publishes: persistent, with its id and metadata headers.
fn properties_for(message: &Message) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (key, value) in message.metadata.pairs() {
        fields::put_text(&mut headers, key, &value);
    }
    let mut properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(headers)
        .with_timestamp(u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or_default());
    if let Ok(id) = ShortString::try_new(message.id.clone()) {
        properties = properties.with_message_id(id);
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(&message.body).is_ok() {
        properties = properties.with_content_type("application/json".into());
    }
    properties
}

impl Bus for RabbitBus {
    fn backend(&self) -> BackendKind {
        BACKEND
    }

    fn max_attempts(&self) -> u32 {
        self.inner.max_attempts
    }

    fn provision<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(self.inner.provision(queue))
    }

    fn publish_message<'a>(
        &'a self,
        queue: &'a QueueName,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(self.inner.publish(EVENTS_EXCHANGE, queue.as_str(), &message.body, properties_for(message)))
    }

    fn subscribe<'a>(
        &'a self,
        queue: &'a QueueName,
        options: &'a SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription, BusError>> {
        Box::pin(consume::subscribe(Arc::clone(&self.inner), queue.clone(), options.prefetch.max(1)))
    }

    fn dead_letters<'a>(
        &'a self,
        queue: &'a QueueName,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BusError>> {
        let dlq = queue.dead_letter();
        Box::pin(async move {
            self.inner
                .on_channel("list", &dlq, async |channel| {
                    let count = self.inner.message_count(channel, &dlq).await?;
                    let mut letters = Vec::new();
                    let mut last_tag = None;
                    // Each message is fetched unacked, so it is not handed out twice; they all go
                    // back afterwards.
                    for _ in 0..usize::try_from(count).unwrap_or(usize::MAX).min(limit) {
                        let Some(got) = channel.basic_get(dlq.as_str().into(), BasicGetOptions::default()).await?
                        else {
                            break;
                        };
                        last_tag = Some(got.delivery.delivery_tag);
                        letters.push(dead_letter_of(&got.delivery));
                    }
                    self.inner.restore(channel, &dlq, last_tag, count).await?;
                    Ok(letters)
                })
                .await
        })
    }

    fn replay<'a>(&'a self, queue: &'a QueueName, which: &'a Replay) -> BoxFuture<'a, Result<usize, BusError>> {
        let dlq = queue.dead_letter();
        Box::pin(async move {
            let mut failure = None;
            let moved: u32 = self
                .inner
                .on_channel("replay", &dlq, async |channel| {
                    let count = self.inner.message_count(channel, &dlq).await?;
                    let mut moved = 0u32;
                    let mut last_tag = None;
                    for _ in 0..count {
                        let Some(got) = channel.basic_get(dlq.as_str().into(), BasicGetOptions::default()).await?
                        else {
                            break;
                        };
                        let delivery = got.delivery;
                        let letter = dead_letter_of(&delivery);
                        if !which.selects(&letter.id) {
                            // Left unacked for now; returned with the others at the end.
                            last_tag = Some(delivery.delivery_tag);
                            continue;
                        }
                        let headers =
                            fields::republishable(delivery.properties.headers().as_ref(), &fields::DEAD_LETTER_HEADERS);
                        let properties = delivery.properties.clone().with_headers(headers);
                        if let Err(err) =
                            self.inner.publish(EVENTS_EXCHANGE, queue.as_str(), &delivery.data, properties).await
                        {
                            // Left unacked: closing the channel returns it to the DLQ.
                            failure = Some(err);
                            break;
                        }
                        delivery.ack(lapin::options::BasicAckOptions::default()).await?;
                        moved += 1;
                    }
                    self.inner.restore(channel, &dlq, last_tag, count.saturating_sub(moved)).await?;
                    Ok(moved)
                })
                .await?;
            let moved = usize::try_from(moved).unwrap_or(usize::MAX);
            match failure {
                Some(err) if moved == 0 => Err(err),
                Some(err) => {
                    tracing::warn!(error = %err, moved, "replay stopped early");
                    Ok(moved)
                }
                None => Ok(moved),
            }
        })
    }

    fn purge_dead_letters<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<usize, BusError>> {
        let dlq = queue.dead_letter();
        Box::pin(async move {
            self.inner
                .on_channel("purge", &dlq, async |channel| {
                    let purged = channel.queue_purge(dlq.as_str().into(), QueuePurgeOptions::default()).await?;
                    Ok(usize::try_from(purged).unwrap_or(usize::MAX))
                })
                .await
        })
    }

    fn check<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let check = self.inner.on_channel("check", queue.as_str(), async |channel| {
                self.inner.message_count(channel, queue.as_str()).await.map(|_| ())
            });
            within_check_timeout(BACKEND, NO_ANSWER, check).await
        })
    }

    fn queue_depth<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<Depth, BusError>> {
        Box::pin(async move {
            let dlq = queue.dead_letter();
            let count = self.inner.on_channel("count", queue.as_str(), async |channel| {
                let waiting = self.inner.message_count(channel, queue.as_str()).await?;
                let dead_letters = self.inner.message_count(channel, &dlq).await?;
                Ok(Depth { waiting: u64::from(waiting), dead_letters: u64::from(dead_letters) })
            });
            within_check_timeout(BACKEND, NO_ANSWER, count).await
        })
    }
}

/// What a message fetched from a dead-letter queue says about itself.
fn dead_letter_of(delivery: &lapin::message::Delivery) -> DeadLetter {
    let properties = &delivery.properties;
    let empty = FieldTable::default();
    let headers_table = properties.headers().as_ref().unwrap_or(&empty);
    let envelope_id = crate::envelope::Envelope::from_json(&delivery.data).ok().map(|e| e.id().to_string());
    let id = envelope_id
        .or_else(|| properties.message_id().as_ref().map(|id| id.as_str().to_owned()))
        .unwrap_or_else(|| format!("delivery-{}", delivery.delivery_tag));
    let attempts = fields::integer(headers_table, headers::DEAD_LETTER_ATTEMPTS)
        .or_else(|| {
            let prior = fields::integer(headers_table, headers::ATTEMPTS).unwrap_or(0);
            fields::integer(headers_table, "x-delivery-count").map(|count| prior + count + 1)
        })
        .and_then(|n| u32::try_from(n).ok());
    DeadLetter {
        id,
        body: delivery.data.clone(),
        metadata: fields::metadata(properties),
        reason: fields::text(headers_table, headers::DEAD_LETTER_REASON)
            .or_else(|| fields::broker_death_reason(headers_table)),
        attempts,
        dead_lettered_at: fields::text(headers_table, headers::DEAD_LETTERED_AT)
            .and_then(|at| OffsetDateTime::parse(&at, &Rfc3339).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_buckets_round_up_to_two_significant_digits() {
        let ms = |n| retry_bucket(Duration::from_millis(n));
        assert_eq!(ms(0), 1);
        assert_eq!(ms(42), 42);
        assert_eq!(ms(100), 100);
        assert_eq!(ms(101), 110);
        assert_eq!(ms(1_000), 1_000);
        assert_eq!(ms(1_234), 1_300);
        assert_eq!(ms(16_000), 16_000);
        assert_eq!(ms(61_000), 61_000);
        assert_eq!(ms(99_999), 100_000);
        assert_eq!(retry_bucket(Duration::from_secs(3600)), 3_600_000);
        // Never earlier than asked.
        for n in [1u64, 99, 150, 999, 1_001, 12_345, 987_654] {
            assert!(ms(n) >= n);
            assert!(ms(n) <= n + n / 10 + 1, "{n} -> {}", ms(n));
        }
    }
}
