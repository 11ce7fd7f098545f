//! Consuming from RabbitMQ: the feeder that keeps a consumer alive across reconnections, and
//! the settler that acks, retries or dead-letters one delivery.
//!
//! Each subscription has its own channel with `basic.qos(prefetch)`, so the broker never hands
//! it more than `prefetch` unacked messages. When the channel or connection is lost, the broker
//! requeues what was unacked (quorum queues count that as a delivery: `x-delivery-count`), the
//! settle operations of those deliveries fail (they will be redelivered), and the feeder opens a
//! new channel and consumes again, backing off while the broker is unreachable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Acker, BasicProperties, Channel, Consumer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{
    BACKEND, DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE, RETRY_EXCHANGE, Rabbit, backend_error, fields, is_not_found,
};
use crate::BoxFuture;
use crate::delivery::{DeadLetterNote, Delivery, Received, Settler};
use crate::error::{BusError, SettleFailure};
use crate::message::headers;
use crate::queue::QueueName;
use crate::subscription::{Feed, Subscription};

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long one attempt to reopen a consumer may take (a black-holed broker would otherwise
/// hold it for the operating system's TCP timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Subscribes to `queue`: the first consumer is set up before returning, so a missing queue or
/// an unreachable broker is reported to the caller; later losses are repaired by the feeder.
pub(super) async fn subscribe(rabbit: Arc<Rabbit>, queue: QueueName, prefetch: u16) -> Result<Subscription, BusError> {
    let started = tokio::time::Instant::now();
    let first = tokio::time::timeout(rabbit.publish_timeout, open(&rabbit, &queue, prefetch))
        .await
        .map_err(|_| BusError::Unavailable {
            backend: BACKEND,
            waited: started.elapsed(),
            detail: "could not connect in time".to_owned(),
        })?
        .map_err(|err| match backend_error("consume from", queue.as_str(), &err) {
            BusError::Backend { detail, .. } => {
                BusError::Unavailable { backend: BACKEND, waited: started.elapsed(), detail }
            }
            other => other,
        })?;
    let name = queue.clone();
    Ok(Subscription::spawn(name, BACKEND, usize::from(prefetch), move |feed| {
        feed_rabbit(rabbit, queue, prefetch, first, feed)
    }))
}

/// A channel with its prefetch set and a consumer on `queue`.
async fn open(rabbit: &Rabbit, queue: &QueueName, prefetch: u16) -> Result<(Channel, Consumer), lapin::Error> {
    let channel = rabbit.link.channel().await?;
    channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let consumer = channel
        .basic_consume(queue.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await?;
    Ok((channel, consumer))
}

async fn feed_rabbit(rabbit: Arc<Rabbit>, queue: QueueName, prefetch: u16, first: (Channel, Consumer), mut feed: Feed) {
    let mut session = Some(first);
    let mut backoff = Duration::from_millis(100);
    loop {
        let (channel, mut consumer) = match session.take() {
            Some(open) => open,
            None => match tokio::time::timeout(CONNECT_TIMEOUT, open(&rabbit, &queue, prefetch))
                .await
                .unwrap_or_else(|_| Err(lapin::Error::from(std::io::Error::from(std::io::ErrorKind::TimedOut))))
            {
                Ok(open) => {
                    tracing::info!(%queue, "RabbitMQ consumer resumed");
                    backoff = Duration::from_millis(100);
                    open
                }
                Err(err) if is_not_found(&err) => {
                    feed.fail(backend_error("consume from", queue.as_str(), &err)).await;
                    return;
                }
                Err(err) => {
                    tracing::warn!(%queue, error = %err, retry_in = ?backoff, "cannot consume from RabbitMQ yet");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = feed.stopped() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        loop {
            let next = tokio::select! {
                next = consumer.next() => Some(next),
                () = feed.stopped() => None,
            };
            let Some(next) = next else {
                // Stop the broker pushing more, but keep the channel open: deliveries already
                // handed out must still be able to ack on it. Dropping the subscription (which
                // aborts this task) closes it and requeues whatever is left.
                let _ = channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await;
                // Fetching is over (see `Subscription::finish_fetching`).
                drop(feed);
                std::future::pending::<()>().await;
                return;
            };
            match next {
                Some(Ok(delivery)) => {
                    let delivery = wrap(&rabbit, &queue, &channel, &feed.closing(), delivery);
                    if !feed.send(delivery).await {
                        return;
                    }
                }
                Some(Err(err)) => {
                    tracing::warn!(%queue, error = %err, "RabbitMQ consumer lost; resubscribing");
                    break;
                }
                None => {
                    tracing::warn!(%queue, "RabbitMQ consumer cancelled by the broker; resubscribing");
                    break;
                }
            }
        }
        if feed.is_stopped() {
            return;
        }
    }
}

/// Turns a lapin delivery into a bus delivery.
fn wrap(
    rabbit: &Arc<Rabbit>,
    queue: &QueueName,
    channel: &Channel,
    closing: &Arc<AtomicBool>,
    delivery: lapin::message::Delivery,
) -> Delivery {
    let lapin::message::Delivery { data, properties, redelivered, acker, .. } = delivery;
    let empty = FieldTable::default();
    let table = properties.headers().as_ref().unwrap_or(&empty);
    let prior = fields::integer(table, headers::ATTEMPTS).and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    // Quorum queues count redeliveries of this copy; a classic queue only says "redelivered".
    let redeliveries = fields::integer(table, "x-delivery-count")
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(u32::from(redelivered));
    let received = Received {
        queue: queue.clone(),
        message_id: properties.message_id().as_ref().map(|id| id.as_str().to_owned()),
        body: data.clone(),
        metadata: fields::metadata(&properties),
        attempt: prior.saturating_add(redeliveries).saturating_add(1),
        max_attempts: rabbit.max_attempts,
    };
    let settler = RabbitSettler {
        rabbit: Arc::clone(rabbit),
        queue: queue.clone(),
        _channel: channel.clone(),
        closing: Arc::clone(closing),
        acker,
        body: data,
        properties,
    };
    Delivery::new(received, Box::new(settler))
}

/// Settles one RabbitMQ delivery.
struct RabbitSettler {
    rabbit: Arc<Rabbit>,
    queue: QueueName,
    /// Keeps the delivery's channel open until it is settled (acks only work on their channel).
    _channel: Channel,
    /// Raised when the subscription is torn down: its channel is about to close.
    closing: Arc<AtomicBool>,
    acker: Acker,
    body: Vec<u8>,
    properties: BasicProperties,
}

impl RabbitSettler {
    async fn ack(acker: &Acker) -> Result<(), SettleFailure> {
        match acker.ack(BasicAckOptions::default()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(SettleFailure::ChannelClosed),
            Err(err) => Err(SettleFailure::Amqp(err)),
        }
    }

    /// Returns the message to the queue at once (best effort: if this fails, the channel is
    /// gone and the broker requeued it anyway).
    async fn requeue(acker: &Acker) {
        let _ = acker.nack(BasicNackOptions { multiple: false, requeue: true }).await;
    }

    /// A copy of the message for republishing, with `set` headers replacing the bus's own.
    fn copy_properties(&self, set: impl FnOnce(&mut FieldTable)) -> BasicProperties {
        let mut headers = fields::republishable(self.properties.headers().as_ref(), &fields::DEAD_LETTER_HEADERS);
        set(&mut headers);
        self.properties.clone().with_headers(headers).with_delivery_mode(2)
    }

    /// Publishes a copy, then acks the original; if the copy cannot be published, the original
    /// goes back to the queue instead (so it is redelivered, never lost).
    async fn move_to(
        self,
        exchange: &str,
        routing_key: &str,
        properties: BasicProperties,
    ) -> Result<(), SettleFailure> {
        match self.rabbit.publish(exchange, routing_key, &self.body, properties).await {
            Ok(()) => Self::ack(&self.acker).await,
            Err(err) => {
                Self::requeue(&self.acker).await;
                Err(err.into())
            }
        }
    }
}

impl Settler for RabbitSettler {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), SettleFailure>> {
        Box::pin(async move { Self::ack(&self.acker).await })
    }

    fn retry(self: Box<Self>, delay: Duration, attempts: u32) -> BoxFuture<'static, Result<(), SettleFailure>> {
        Box::pin(async move {
            let properties = self.copy_properties(|h| fields::put_integer(h, headers::ATTEMPTS, i64::from(attempts)));
            if delay.is_zero() {
                let queue = self.queue.clone();
                return self.move_to(EVENTS_EXCHANGE, queue.as_str(), properties).await;
            }
            match self.rabbit.retry_queue(&self.queue, delay).await {
                Ok(retry_queue) => self.move_to(RETRY_EXCHANGE, &retry_queue, properties).await,
                Err(err) => {
                    Self::requeue(&self.acker).await;
                    Err(err.into())
                }
            }
        })
    }

    fn dead_letter(self: Box<Self>, note: DeadLetterNote) -> BoxFuture<'static, Result<(), SettleFailure>> {
        Box::pin(async move {
            let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
            let properties = self.copy_properties(|h| {
                fields::put_text(h, headers::DEAD_LETTER_REASON, &note.reason);
                fields::put_integer(h, headers::DEAD_LETTER_ATTEMPTS, i64::from(note.attempts));
                fields::put_text(h, headers::DEAD_LETTERED_AT, &now);
            });
            let dlq = self.queue.dead_letter();
            self.move_to(DEAD_LETTER_EXCHANGE, &dlq, properties).await
        })
    }

    fn release(self: Box<Self>) {
        // When the subscription is going, its channel closes once the last delivery is dropped
        // and the broker requeues everything unacked on it: a nack now would return the message
        // to the consumer still on that channel and have it counted twice. Without a runtime
        // there is nothing to send the nack with, and the channel closing does the same.
        if self.closing.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { Self::requeue(&self.acker).await });
        }
    }
}
