//! The in-process bus: the embedded default (`wharf up`) and the backend every test can use.
//!
//! It keeps the semantics of the real brokers so code that passes on it behaves the same on
//! RabbitMQ and SQS:
//! - a delivery not settled (its consumer died, or dropped it) goes back to the front of the queue
//!   and its next delivery counts as another attempt; a message released after its last allowed
//!   attempt is dead-lettered (as SQS's redrive policy would);
//! - retry-later parks the message in a timer heap; a waiting subscriber sleeps until the earliest
//!   due time or a new message, it never polls;
//! - **bounded**: a queue holds at most `capacity` messages *counting ready, delayed, in-flight and
//!   dead-lettered ones*. Only publishing adds messages, so only `publish` can meet a full queue:
//!   it waits up to the publish timeout for room (an ack or a purge makes room) and then fails
//!   with [`BusError::Full`]. Settling never needs room (retry and dead-letter move a message the
//!   queue already counts), so a consumer can never be blocked by a full queue. A growing DLQ
//!   therefore eventually pushes back on producers — loudly, rather than by eating memory.
//!
//! Messages live as long as the [`MemoryBus`] (and its clones); nothing survives the process.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::BoxFuture;
use crate::bus::{Bus, DeadLetter, Replay, SubscribeOptions};
use crate::config::{BackendKind, BusConfig};
use crate::delivery::{DeadLetterNote, Delivery, Received, Settler};
use crate::depth::Depth;
use crate::error::{BusError, SettleFailure};
use crate::message::Message;
use crate::queue::QueueName;
use crate::subscription::{Feed, Subscription};

/// The in-process bus; cheap to clone, clones share the queues.
#[derive(Debug, Clone)]
pub struct MemoryBus {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    queues: Mutex<HashMap<QueueName, Arc<MemoryQueue>>>,
    capacity: usize,
    max_attempts: u32,
    publish_timeout: Duration,
}

impl MemoryBus {
    /// A bus with `config`'s capacity, max attempts and publish timeout.
    pub fn new(config: &BusConfig) -> Self {
        Self::with_limits(config.memory_capacity, config.max_attempts, config.publish_timeout)
    }

    /// A bus whose queues hold at most `capacity` messages each, dead-letter after `max_attempts`
    /// deliveries, and let a publish wait `publish_timeout` for room.
    pub fn with_limits(capacity: usize, max_attempts: u32, publish_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Shared {
                queues: Mutex::new(HashMap::new()),
                capacity: capacity.max(1),
                max_attempts: max_attempts.max(1),
                publish_timeout,
            }),
        }
    }

    /// Counts of `queue`'s messages, for tests and metrics.
    pub fn depth(&self, queue: &QueueName) -> QueueDepth {
        let q = self.queue(queue);
        let state = q.lock();
        QueueDepth {
            ready: state.ready.len(),
            delayed: state.delayed.len(),
            in_flight: state.in_flight,
            dead: state.dead.len(),
        }
    }

    /// The queue named `name`, created on first use (a memory queue needs no provisioning).
    fn queue(&self, name: &QueueName) -> Arc<MemoryQueue> {
        let mut queues = self.inner.queues.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(queues.entry(name.clone()).or_insert_with(|| {
            Arc::new(MemoryQueue {
                name: name.clone(),
                capacity: self.inner.capacity,
                state: Mutex::new(QueueState::default()),
                ready: Notify::new(),
                room: Notify::new(),
            })
        }))
    }
}

/// How many messages a memory queue holds, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Waiting to be delivered.
    pub ready: usize,
    /// Waiting for a retry delay to pass.
    pub delayed: usize,
    /// Delivered, not yet settled.
    pub in_flight: usize,
    /// In the dead-letter queue.
    pub dead: usize,
}

#[derive(Debug)]
struct MemoryQueue {
    name: QueueName,
    capacity: usize,
    state: Mutex<QueueState>,
    /// Woken when a message may have become deliverable (publish, retry, release, replay).
    ready: Notify,
    /// Woken when a message left for good (ack, purge), so waiting publishers look again.
    room: Notify,
}

#[derive(Debug, Default)]
struct QueueState {
    ready: VecDeque<Stored>,
    delayed: BinaryHeap<Reverse<Delayed>>,
    in_flight: usize,
    dead: VecDeque<Dead>,
    /// Tie-breaker keeping equal due times in retry order.
    sequence: u64,
}

impl QueueState {
    fn total(&self) -> usize {
        self.ready.len() + self.delayed.len() + self.in_flight + self.dead.len()
    }

    /// Moves every delayed message whose time has come to the back of the ready queue.
    fn promote_due(&mut self, now: Instant) {
        while self.delayed.peek().is_some_and(|Reverse(d)| d.due <= now) {
            if let Some(Reverse(delayed)) = self.delayed.pop() {
                self.ready.push_back(delayed.stored);
            }
        }
    }

    fn settle_one(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }
}

#[derive(Debug, Clone)]
struct Stored {
    message: Message,
    attempts: u32,
}

#[derive(Debug)]
struct Delayed {
    due: Instant,
    sequence: u64,
    stored: Stored,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.sequence) == (other.due, other.sequence)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.sequence).cmp(&(other.due, other.sequence))
    }
}

#[derive(Debug)]
struct Dead {
    message: Message,
    reason: String,
    attempts: u32,
    at: OffsetDateTime,
}

impl MemoryQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding the lock cannot leave the state half-updated (every update is a
        // few infallible collection operations), so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn publish(&self, message: &Message, timeout: Duration) -> Result<(), BusError> {
        let started = Instant::now();
        let deadline = crate::later(started, timeout);
        loop {
            // Registered before looking, so an ack between the look and the wait is not missed.
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut state = self.lock();
                if state.total() < self.capacity {
                    state.ready.push_back(Stored { message: message.clone(), attempts: 0 });
                    drop(state);
                    self.ready.notify_waiters();
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                return Err(BusError::Full {
                    queue: self.name.to_string(),
                    capacity: self.capacity,
                    waited: started.elapsed(),
                });
            }
        }
    }

    /// The next deliverable message, waiting for one without polling.
    async fn take(&self) -> Stored {
        loop {
            let ready = self.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            let next_due = {
                let mut state = self.lock();
                state.promote_due(Instant::now());
                if let Some(mut stored) = state.ready.pop_front() {
                    state.in_flight += 1;
                    stored.attempts = stored.attempts.saturating_add(1);
                    return stored;
                }
                state.delayed.peek().map(|Reverse(d)| d.due)
            };
            match next_due {
                Some(due) => {
                    tokio::select! {
                        () = &mut ready => {}
                        () = tokio::time::sleep_until(due) => {}
                    }
                }
                None => ready.await,
            }
        }
    }
}

impl Bus for MemoryBus {
    fn backend(&self) -> BackendKind {
        BackendKind::Memory
    }

    fn max_attempts(&self) -> u32 {
        self.inner.max_attempts
    }

    fn provision<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            self.queue(queue);
            Ok(())
        })
    }

    fn publish_message<'a>(
        &'a self,
        queue: &'a QueueName,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move { self.queue(queue).publish(message, self.inner.publish_timeout).await })
    }

    fn subscribe<'a>(
        &'a self,
        queue: &'a QueueName,
        options: &'a SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription, BusError>> {
        let q = self.queue(queue);
        let prefetch = usize::from(options.prefetch.max(1));
        let max_attempts = self.inner.max_attempts;
        let name = queue.clone();
        Box::pin(async move {
            Ok(Subscription::spawn(name, BackendKind::Memory, prefetch, move |feed| {
                feed_memory(q, feed, prefetch, max_attempts)
            }))
        })
    }

    fn dead_letters<'a>(
        &'a self,
        queue: &'a QueueName,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BusError>> {
        Box::pin(async move {
            let q = self.queue(queue);
            let state = q.lock();
            Ok(state
                .dead
                .iter()
                .take(limit)
                .map(|dead| DeadLetter {
                    id: dead.message.id.clone(),
                    body: dead.message.body.clone(),
                    metadata: dead.message.metadata.clone(),
                    reason: Some(dead.reason.clone()),
                    attempts: Some(dead.attempts),
                    dead_lettered_at: Some(dead.at),
                })
                .collect())
        })
    }

    fn replay<'a>(&'a self, queue: &'a QueueName, which: &'a Replay) -> BoxFuture<'a, Result<usize, BusError>> {
        Box::pin(async move {
            let q = self.queue(queue);
            let moved = {
                let mut state = q.lock();
                let (selected, kept): (VecDeque<Dead>, VecDeque<Dead>) =
                    std::mem::take(&mut state.dead).into_iter().partition(|dead| which.selects(&dead.message.id));
                state.dead = kept;
                let moved = selected.len();
                // The queue already counts these messages, so replaying never needs room.
                state.ready.extend(selected.into_iter().map(|dead| Stored { message: dead.message, attempts: 0 }));
                moved
            };
            q.ready.notify_waiters();
            Ok(moved)
        })
    }

    fn purge_dead_letters<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<usize, BusError>> {
        Box::pin(async move {
            let q = self.queue(queue);
            let purged = std::mem::take(&mut q.lock().dead).len();
            q.room.notify_waiters();
            Ok(purged)
        })
    }

    fn queue_depth<'a>(&'a self, queue: &'a QueueName) -> BoxFuture<'a, Result<Depth, BusError>> {
        let depth = self.depth(queue);
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Box::pin(async move { Ok(Depth { waiting: count(depth.ready), dead_letters: count(depth.dead) }) })
    }

    fn check<'a>(&'a self, _queue: &'a QueueName) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async { Ok(()) })
    }
}

/// The feeder of a memory subscription: takes a message whenever fewer than `prefetch`
/// deliveries are unsettled.
async fn feed_memory(queue: Arc<MemoryQueue>, mut feed: Feed, prefetch: usize, max_attempts: u32) {
    let unsettled = Arc::new(Semaphore::new(prefetch));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&unsettled).acquire_owned() => permit,
            () = feed.stopped() => return,
        };
        // The semaphore is never closed.
        let Ok(permit) = permit else { return };
        // `take` pops the message in the same poll that completes it, so losing this race to
        // `stopped` never loses a message.
        let stored = tokio::select! {
            stored = queue.take() => stored,
            () = feed.stopped() => return,
        };
        let received = Received {
            queue: queue.name.clone(),
            message_id: Some(stored.message.id.clone()),
            body: stored.message.body.clone(),
            metadata: stored.message.metadata.clone(),
            attempt: stored.attempts,
            max_attempts,
        };
        let settler = MemorySettler { queue: Arc::clone(&queue), stored, max_attempts, _permit: permit };
        if !feed.send(Delivery::new(received, Box::new(settler))).await {
            return;
        }
    }
}

/// Settles one memory delivery; holds one of its subscription's prefetch permits until then.
struct MemorySettler {
    queue: Arc<MemoryQueue>,
    stored: Stored,
    max_attempts: u32,
    _permit: OwnedSemaphorePermit,
}

impl Settler for MemorySettler {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), SettleFailure>> {
        self.queue.lock().settle_one();
        self.queue.room.notify_waiters();
        Box::pin(async { Ok(()) })
    }

    fn retry(self: Box<Self>, delay: Duration, attempts: u32) -> BoxFuture<'static, Result<(), SettleFailure>> {
        let this = *self;
        {
            let mut state = this.queue.lock();
            state.settle_one();
            state.sequence += 1;
            let sequence = state.sequence;
            let stored = Stored { message: this.stored.message, attempts };
            state.delayed.push(Reverse(Delayed { due: crate::later(Instant::now(), delay), sequence, stored }));
        }
        // Waiting subscribers re-arm their timers: this may now be the earliest due message.
        this.queue.ready.notify_waiters();
        Box::pin(async { Ok(()) })
    }

    fn dead_letter(self: Box<Self>, note: DeadLetterNote) -> BoxFuture<'static, Result<(), SettleFailure>> {
        let this = *self;
        {
            let mut state = this.queue.lock();
            state.settle_one();
            let dead =
                Dead { message: this.stored.message, reason: note.reason, attempts: note.attempts, at: now_utc() };
            state.dead.push_back(dead);
        }
        Box::pin(async { Ok(()) })
    }

    fn release(self: Box<Self>) {
        let this = *self;
        {
            let mut state = this.queue.lock();
            state.settle_one();
            let attempts = this.stored.attempts;
            if attempts >= this.max_attempts {
                let reason = format!(
                    "exhausted {attempts} attempts: delivered {attempts} times without being settled (its consumer \
                     crashed or was killed each time)"
                );
                state.dead.push_back(Dead { message: this.stored.message, reason, attempts, at: now_utc() });
            } else {
                // Back to the front: it was next in line before its consumer died.
                state.ready.push_front(this.stored);
            }
        }
        this.queue.ready.notify_waiters();
    }
}

fn now_utc() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::message::Metadata;

    fn queue() -> QueueName {
        QueueName::parse("memory-unit").unwrap()
    }

    fn message(n: u32) -> Message {
        Message::raw(format!("m{n}"), Metadata::default())
    }

    #[tokio::test]
    async fn a_full_queue_makes_publish_wait_then_fail_and_an_ack_makes_room() {
        let bus = MemoryBus::with_limits(2, 5, Duration::from_millis(200));
        let q = queue();
        bus.publish_message(&q, &message(1)).await.unwrap();
        bus.publish_message(&q, &message(2)).await.unwrap();

        let started = Instant::now();
        let err = bus.publish_message(&q, &message(3)).await.unwrap_err();
        assert!(matches!(err, BusError::Full { capacity: 2, .. }), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(200));

        // A publisher waiting for room gets in as soon as a delivery is acked.
        let mut sub = bus.subscribe(&q, &SubscribeOptions::default()).await.unwrap();
        let waiting = tokio::spawn({
            let bus = bus.clone();
            let q = q.clone();
            async move { bus.publish_message(&q, &message(4)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        sub.next().await.unwrap().ack().await.unwrap();
        waiting.await.unwrap().unwrap();
        // Deliveries the subscription had fetched but not handed out go back when it is dropped.
        drop(sub);
        let expected = QueueDepth { ready: 2, delayed: 0, in_flight: 0, dead: 0 };
        for _ in 0..100 {
            if bus.depth(&q) == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(bus.depth(&q), expected);
    }

    #[tokio::test]
    async fn dead_letters_count_against_capacity_and_purging_frees_it() {
        let bus = MemoryBus::with_limits(1, 5, Duration::from_millis(50));
        let q = queue();
        bus.publish_message(&q, &message(1)).await.unwrap();
        let mut sub = bus.subscribe(&q, &SubscribeOptions::default()).await.unwrap();
        sub.next().await.unwrap().dead_letter("poison").await.unwrap();
        assert!(matches!(bus.publish_message(&q, &message(2)).await, Err(BusError::Full { .. })));
        assert_eq!(bus.purge_dead_letters(&q).await.unwrap(), 1);
        bus.publish_message(&q, &message(2)).await.unwrap();
    }

    #[tokio::test]
    async fn prefetch_bounds_unsettled_deliveries() {
        let bus = MemoryBus::with_limits(10, 5, Duration::from_millis(50));
        let q = queue();
        for n in 0..3 {
            bus.publish_message(&q, &message(n)).await.unwrap();
        }
        let options = SubscribeOptions { prefetch: 2, ..SubscribeOptions::default() };
        let mut sub = bus.subscribe(&q, &options).await.unwrap();
        let first = sub.next().await.unwrap();
        let _second = sub.next().await.unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(50), sub.next()).await.is_err());
        first.ack().await.unwrap();
        let third = tokio::time::timeout(Duration::from_secs(1), sub.next()).await.unwrap().unwrap();
        assert_eq!(third.body(), b"m2");
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_messages_wake_their_subscriber_at_the_due_time() {
        let bus = MemoryBus::with_limits(10, 5, Duration::from_millis(50));
        let q = queue();
        bus.publish_message(&q, &message(1)).await.unwrap();
        let mut sub = bus.subscribe(&q, &SubscribeOptions::default()).await.unwrap();
        let started = Instant::now();
        sub.next().await.unwrap().retry(Duration::from_secs(30), "later").await.unwrap();
        let again = sub.next().await.unwrap();
        assert_eq!(again.attempt(), 2);
        assert!(started.elapsed() >= Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(31));
    }
}
