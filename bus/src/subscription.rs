//! A live subscription to one queue: the stream of [`Delivery`]s a backend feeds.
//!
//! Every backend runs a *feeder* task that fetches messages and pushes them into a bounded
//! channel; the subscriber pulls them with [`Subscription::next`]. The feeder belongs to the
//! subscription: dropping the subscription aborts it, and the deliveries still buffered in the
//! channel are dropped too, which releases them back to their queue (see [`crate::delivery`]).
//!
//! The subscription is also the last line of the attempt limit: a delivery whose attempt exceeds
//! the bus's maximum (a message redelivered again and again without ever being settled, e.g.
//! because it crashes its consumer) is dead-lettered here instead of being handed out.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::BackendKind;
use crate::delivery::Delivery;
use crate::error::BusError;
use crate::queue::QueueName;

/// Aborts a task when dropped, tying the task's life to its owner's.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The deliveries of one queue.
pub struct Subscription {
    queue: QueueName,
    backend: BackendKind,
    deliveries: mpsc::Receiver<Result<Delivery, BusError>>,
    /// Set to `true` to ask the feeder to stop fetching.
    stop: watch::Sender<bool>,
    /// Set once the subscription is being torn down (see [`Feed::closing`]).
    closing: Arc<AtomicBool>,
    _feeder: AbortOnDrop,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Before the fields go: deliveries dropped from here on see that their channel is closing.
        self.closing.store(true, Ordering::SeqCst);
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("queue", &self.queue).field("backend", &self.backend).finish()
    }
}

/// The feeder's end of a subscription.
#[derive(Debug)]
pub(crate) struct Feed {
    tx: mpsc::Sender<Result<Delivery, BusError>>,
    stop: watch::Receiver<bool>,
    closing: Arc<AtomicBool>,
}

impl Feed {
    /// Hands a delivery to the subscriber; `false` once the subscription is gone (the delivery
    /// is then dropped, which releases it).
    pub(crate) async fn send(&self, delivery: Delivery) -> bool {
        self.tx.send(Ok(delivery)).await.is_ok()
    }

    /// Reports that the subscription cannot continue; the feeder should return afterwards.
    pub(crate) async fn fail(&self, error: BusError) {
        let _ = self.tx.send(Err(error)).await;
    }

    /// Resolves once the subscriber asked to stop fetching (or went away).
    pub(crate) async fn stopped(&mut self) {
        // Errs only when the sender is gone, which also means: stop.
        let _ = self.stop.wait_for(|stop| *stop).await;
    }

    /// A flag that turns `true` when the subscription (or the consumer owning it) is torn down.
    /// A backend whose teardown returns unsettled messages by itself (closing an AMQP channel
    /// requeues them) gives it to its settlers so a dropped delivery is not returned twice.
    pub(crate) fn closing(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.closing)
    }

    /// Whether the subscriber asked to stop fetching.
    pub(crate) fn is_stopped(&self) -> bool {
        *self.stop.borrow() || self.tx.is_closed()
    }
}

impl Subscription {
    /// A subscription whose feeder is spawned from `feeder`, given the feed it must fill.
    /// `buffer` bounds the deliveries waiting to be pulled.
    pub(crate) fn spawn<F, Fut>(queue: QueueName, backend: BackendKind, buffer: usize, feeder: F) -> Self
    where
        F: FnOnce(Feed) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, deliveries) = mpsc::channel(buffer.max(1));
        let (stop, stop_rx) = watch::channel(false);
        let closing = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(feeder(Feed { tx, stop: stop_rx, closing: Arc::clone(&closing) }));
        Self { queue, backend, deliveries, stop, closing, _feeder: AbortOnDrop(task) }
    }

    /// The queue subscribed to.
    pub fn queue(&self) -> &QueueName {
        &self.queue
    }

    /// The next delivery. An error means the subscription has ended for good (the backend
    /// reconnects by itself, so this is rare: the queue was deleted, or access was revoked);
    /// subscribe again or let the consumer's supervisor restart it.
    pub async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            match self.deliveries.recv().await {
                Some(Ok(delivery)) if delivery.attempt() > delivery.max_attempts() => {
                    let reason = format!(
                        "exhausted {} attempts: delivered {} times without being settled (its consumer crashed or \
                         was killed each time)",
                        delivery.max_attempts(),
                        delivery.attempt() - 1
                    );
                    tracing::warn!(
                        queue = %self.queue,
                        message_id = %delivery.message_id(),
                        attempt = delivery.attempt(),
                        "dead-lettering a message redelivered past the attempt limit"
                    );
                    let attempts = delivery.attempt() - 1;
                    if let Err(err) = delivery.dead_letter_after(&reason, attempts).await {
                        tracing::warn!(error = %err, "could not dead-letter an over-delivered message");
                    }
                }
                Some(Ok(delivery)) => return Ok(delivery),
                Some(Err(err)) => return Err(err),
                None => {
                    return Err(BusError::SubscriptionEnded {
                        backend: self.backend,
                        queue: self.queue.to_string(),
                        detail: "the feeder stopped".to_owned(),
                    });
                }
            }
        }
    }

    /// The teardown flag, for an owner that drops the subscription's deliveries before the
    /// subscription itself (the consumer actor's handler tasks).
    pub(crate) fn closing(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.closing)
    }

    /// Asks the backend to stop fetching new messages (a consumer draining before shutdown).
    /// Deliveries already handed out can still be settled; buffered ones are released when the
    /// subscription is dropped.
    pub fn stop_fetching(&self) {
        self.stop.send_replace(true);
    }

    /// Stops fetching and waits until the backend has fetched for the last time. A fetch already
    /// under way (an SQS long poll, a SQLite claim) completes, and what it brought is released at
    /// once with the other buffered deliveries — rather than staying hidden until its visibility
    /// timeout or lease runs out because the process exited mid-fetch. Deliveries handed out
    /// earlier can still be settled; [`next`](Self::next) answers `SubscriptionEnded` afterwards.
    pub async fn finish_fetching(&mut self) {
        self.stop_fetching();
        // The feeder drops its end of the channel once it has stopped fetching.
        while let Some(buffered) = self.deliveries.recv().await {
            drop(buffered);
        }
    }
}
