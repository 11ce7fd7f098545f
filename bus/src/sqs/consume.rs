//! Consuming from SQS: the long-polling feeder, the visibility extender, the batched deleter and
//! the settler of one delivery.
//!
//! The feeder never holds more than `prefetch` unsettled messages: it takes one permit per
//! message before receiving (up to 10 at a time) and each delivery returns its permit when
//! settled. While a delivery is unsettled its receipt handle sits in the subscription's
//! [`Visibility`] set, whose extender pushes the visibility timeout out again every third of it.
//! A settle removes the handle first and then takes the extender's lock, so a retry's
//! ChangeMessageVisibility always lands after any extension that was already under way.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::{BACKEND, Sqs, metadata_of, seconds, system_attribute};
use crate::BoxFuture;
use crate::bus::SubscribeOptions;
use crate::delivery::{DeadLetterNote, Delivery, Received, Settler};
use crate::error::{BusError, SettleFailure};
use crate::message::{Metadata, headers};
use crate::queue::QueueName;
use crate::subscription::{AbortOnDrop, Feed, Subscription};

/// Concurrent DeleteMessageBatch calls per subscription.
const DELETE_CONCURRENCY: usize = 4;

/// Receipt handles of unsettled deliveries, and the lock that orders extensions and settles.
#[derive(Debug, Default)]
struct Visibility {
    receipts: Mutex<HashSet<String>>,
    extending: tokio::sync::Mutex<()>,
}

impl Visibility {
    fn insert(&self, receipt: &str) {
        self.receipts.lock().unwrap_or_else(|p| p.into_inner()).insert(receipt.to_owned());
    }

    fn remove(&self, receipt: &str) {
        self.receipts.lock().unwrap_or_else(|p| p.into_inner()).remove(receipt);
    }

    fn snapshot(&self) -> Vec<String> {
        self.receipts.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }
}

/// One ack waiting for its DeleteMessageBatch. The channel carrying them is unbounded in type
/// only: each unsettled delivery (at most `prefetch`) queues at most one.
type DeleteRequest = (String, oneshot::Sender<Result<(), SettleFailure>>);

/// What every delivery of one subscription shares.
struct Shared {
    sqs: Arc<Sqs>,
    queue: QueueName,
    url: String,
    visibility: Arc<Visibility>,
    deletes: mpsc::UnboundedSender<DeleteRequest>,
}

pub(super) fn subscribe(sqs: Arc<Sqs>, queue: QueueName, url: String, options: &SubscribeOptions) -> Subscription {
    let prefetch = usize::from(options.prefetch.max(1));
    let wait = seconds(options.poll_wait).min(20);
    let visibility_secs = seconds(options.visibility_timeout).max(1);
    let name = queue.clone();
    Subscription::spawn(name, BACKEND, prefetch, move |feed| async move {
        let visibility = Arc::new(Visibility::default());
        let (deletes, delete_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared { sqs: Arc::clone(&sqs), queue, url: url.clone(), visibility, deletes });
        // Both helpers live as long as the feeder; the deleter also serves acks already queued.
        let _extender = AbortOnDrop(tokio::spawn(extend(Arc::clone(&shared), visibility_secs)));
        let _deleter = AbortOnDrop(tokio::spawn(delete(Arc::clone(&sqs), url, delete_rx)));
        feed_sqs(shared, feed, prefetch, wait, visibility_secs).await;
        // Stopped fetching, but deliveries already handed out may still be settling (a consumer
        // draining): keep the deleter and the extender until the subscription is dropped.
        std::future::pending::<()>().await;
    })
}

async fn feed_sqs(shared: Arc<Shared>, mut feed: Feed, prefetch: usize, wait: i32, visibility_secs: i32) {
    let unsettled = Arc::new(Semaphore::new(prefetch));
    let mut backoff = Duration::from_millis(200);
    loop {
        let first = tokio::select! {
            permit = Arc::clone(&unsettled).acquire_owned() => permit,
            () = feed.stopped() => return,
        };
        // The semaphore is never closed.
        let Ok(first) = first else { return };
        let mut permits = vec![first];
        while permits.len() < 10 {
            match Arc::clone(&unsettled).try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        // Asked to stop while waiting for a permit: start no new long poll.
        if feed.is_stopped() {
            return;
        }
        // The receive runs in a task of its own. SQS hides what a long poll brings whether or not
        // anyone reads the answer, so if this subscription is dropped mid-poll the task still
        // takes the answer and drops its deliveries, which makes them visible again at once
        // rather than after the visibility timeout.
        let receive = tokio::spawn(receive(Arc::clone(&shared), permits, wait, visibility_secs));
        let Ok(received) = receive.await else { return };
        let deliveries = match received {
            Ok(deliveries) => {
                backoff = Duration::from_millis(200);
                deliveries
            }
            Err(err @ BusError::QueueNotFound { .. }) => {
                feed.fail(err).await;
                return;
            }
            Err(err) => {
                tracing::warn!(queue = %shared.queue, error = %err, retry_in = ?backoff, "SQS receive failed");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = feed.stopped() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        for delivery in deliveries {
            if !feed.send(delivery).await {
                return;
            }
        }
    }
}

/// One long poll for as many messages as there are `permits`, each message wrapped with one.
async fn receive(
    shared: Arc<Shared>,
    mut permits: Vec<OwnedSemaphorePermit>,
    wait: i32,
    visibility_secs: i32,
) -> Result<Vec<Delivery>, BusError> {
    let max = i32::try_from(permits.len()).unwrap_or(10);
    let messages = shared.sqs.receive(&shared.url, shared.queue.as_str(), max, wait, visibility_secs).await?;
    Ok(messages.into_iter().filter_map(|message| Some(wrap(&shared, message, permits.pop()?))).collect())
}

fn wrap(shared: &Arc<Shared>, message: aws_sdk_sqs::types::Message, permit: OwnedSemaphorePermit) -> Delivery {
    let receipt = message.receipt_handle().unwrap_or_default().to_owned();
    shared.visibility.insert(&receipt);
    // Receives so far, this one included: may skip numbers (see the module documentation of
    // `sqs`), never goes down; a missing or unreadable count is taken as a first receive.
    let attempt = system_attribute(&message, &MessageSystemAttributeName::ApproximateReceiveCount)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let body = message.body().unwrap_or_default().as_bytes().to_vec();
    let metadata = metadata_of(&message);
    let received = Received {
        queue: shared.queue.clone(),
        message_id: message.message_id().map(str::to_owned),
        body: body.clone(),
        metadata: metadata.clone(),
        attempt,
        max_attempts: shared.sqs.max_attempts,
    };
    let settler = SqsSettler { shared: Arc::clone(shared), receipt, body, metadata, _permit: permit };
    Delivery::new(received, Box::new(settler))
}

/// Extends the visibility of every unsettled delivery every third of the visibility timeout.
async fn extend(shared: Arc<Shared>, visibility_secs: i32) {
    let period =
        Duration::from_millis(u64::try_from(visibility_secs).unwrap_or(1) * 1000 / 3).max(Duration::from_millis(300));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let _extending = shared.visibility.extending.lock().await;
        let receipts = shared.visibility.snapshot();
        // All batches at once: done one after the other, a slow endpoint could let the last
        // ones lapse before their turn.
        let batches =
            receipts.chunks(10).map(|chunk| shared.sqs.change_visibility_batch(&shared.url, chunk, visibility_secs));
        futures_util::future::join_all(batches).await;
    }
}

/// Deletes acked messages in batches of up to 10: while one batch is in flight, the next fills.
async fn delete(sqs: Arc<Sqs>, url: String, mut requests: mpsc::UnboundedReceiver<DeleteRequest>) {
    let calls = Arc::new(Semaphore::new(DELETE_CONCURRENCY));
    while let Some(first) = requests.recv().await {
        let Ok(call) = Arc::clone(&calls).acquire_owned().await else { return };
        let mut batch = vec![first];
        while batch.len() < 10 {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let (sqs, url) = (Arc::clone(&sqs), url.clone());
        tokio::spawn(async move {
            let receipts: Vec<String> = batch.iter().map(|(receipt, _)| receipt.clone()).collect();
            let results = sqs.delete_batch(&url, &receipts).await;
            for ((_, reply), result) in batch.into_iter().zip(results) {
                let _ = reply.send(result);
            }
            drop(call);
        });
    }
}

/// Settles one SQS delivery; holds one of the subscription's prefetch permits until then.
struct SqsSettler {
    shared: Arc<Shared>,
    receipt: String,
    /// For the dead-letter copy.
    body: Vec<u8>,
    metadata: Metadata,
    _permit: OwnedSemaphorePermit,
}

impl SqsSettler {
    async fn delete(shared: &Shared, receipt: String) -> Result<(), SettleFailure> {
        let (reply, answer) = oneshot::channel();
        shared.deletes.send((receipt, reply)).map_err(|_| SettleFailure::SubscriptionClosed)?;
        answer.await.unwrap_or(Err(SettleFailure::SubscriptionClosed))
    }

    /// Sends a copy carrying the reason to the dead-letter queue, then deletes the original.
    async fn move_to_dead_letters(
        shared: &Shared,
        receipt: &str,
        body: &[u8],
        metadata: &Metadata,
        note: DeadLetterNote,
    ) -> Result<(), SettleFailure> {
        let dlq = shared.sqs.dlq_url(&shared.queue).await?;
        let at = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
        let mut attributes = metadata.pairs();
        attributes.push((headers::DEAD_LETTER_REASON, note.reason));
        attributes.push((headers::DEAD_LETTER_ATTEMPTS, note.attempts.to_string()));
        attributes.push((headers::DEAD_LETTERED_AT, at));
        let target = shared.queue.dead_letter();
        shared.sqs.send(&dlq, &target, body, &attributes).await?;
        Self::delete(shared, receipt.to_owned()).await
    }

    /// Sets this message's visibility, after any extension already under way.
    async fn change_visibility(shared: &Shared, receipt: &str, secs: i32) -> Result<(), SettleFailure> {
        shared.visibility.remove(receipt);
        let _extending = shared.visibility.extending.lock().await;
        Ok(shared.sqs.change_visibility(&shared.url, receipt, secs).await?)
    }
}

impl Settler for SqsSettler {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), SettleFailure>> {
        Box::pin(async move {
            // Extended until deleted: a slow delete must not let the message reappear.
            let deleted = Self::delete(&self.shared, self.receipt.clone()).await;
            self.shared.visibility.remove(&self.receipt);
            deleted
        })
    }

    fn retry(self: Box<Self>, delay: Duration, _attempts: u32) -> BoxFuture<'static, Result<(), SettleFailure>> {
        // SQS counts the next receive itself (ApproximateReceiveCount).
        Box::pin(async move { Self::change_visibility(&self.shared, &self.receipt, seconds(delay)).await })
    }

    fn dead_letter(self: Box<Self>, note: DeadLetterNote) -> BoxFuture<'static, Result<(), SettleFailure>> {
        Box::pin(async move {
            let shared = &self.shared;
            // Still extended while the copy is sent: the original must not reappear meanwhile.
            let moved = Self::move_to_dead_letters(shared, &self.receipt, &self.body, &self.metadata, note).await;
            shared.visibility.remove(&self.receipt);
            moved
        })
    }

    fn release(self: Box<Self>) {
        // Visible again at once rather than after the visibility timeout. Without a runtime the
        // timeout does the same, only later.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = Self::change_visibility(&self.shared, &self.receipt, 0).await {
                    tracing::debug!(
                        error = %err,
                        "could not release an SQS message; it reappears after its visibility timeout"
                    );
                }
            });
        } else {
            self.shared.visibility.remove(&self.receipt);
        }
    }
}
