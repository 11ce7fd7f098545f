//! The event consumer actor: owns one subscription and runs a [`Handler`] on its deliveries.
//!
//! **Owns** the subscription to one queue, a pump task that pulls deliveries, and the handler
//! tasks (at most `prefetch` at once, the consumer's concurrency). The actor's own mailbox is
//! never blocked by a handler: handlers run in tasks the pump spawns, and the actor only hears
//! about the subscription ending.
//!
//! **Supervised by** a `wharf_actors::Supervisor`: build the child with [`consumer()`]. If the
//! subscription ends for good (queue deleted, access revoked) the actor fails and its supervisor
//! restarts it, which subscribes again; a restart storm escalates like any other child's.
//!
//! **What each delivery becomes**: an undecodable body, or an envelope whose (type, major
//! version) the handler does not [`Handler::accepts`], goes straight to the dead-letter queue
//! with the reason. Otherwise the handler's [`Outcome`] is applied: ack, retry after a delay
//! (dead-letter with `"exhausted N attempts: <reason>"` once the bus's max attempts are used up),
//! or dead-letter. A handler that panics or exceeds `handler_timeout` counts as a failed attempt
//! (retried after `failure_delay`).
//!
//! **In-flight work when it dies**: killed or failed, the actor's state is dropped, which aborts
//! the pump and every handler task; their deliveries were never acked, so the backend delivers
//! them again (as a new attempt). Stopped gracefully (supervisor shutdown), it stops fetching and
//! gives running handlers `drain_timeout` to finish and settle before the rest are released; in
//! that time the fetch under way (an SQS long poll) also completes, and what it brought is released
//! at once instead of staying hidden for a visibility timeout.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use wharf_actors::{ActorHandle, ChildSpec, child};

use crate::bus::{Bus, SubscribeOptions};
use crate::delivery::{Delivery, Settled};
use crate::envelope::{Envelope, EventKind};
use crate::message::Metadata;
use crate::queue::QueueName;
use crate::subscription::{AbortOnDrop, Subscription};

/// Handles the events of one queue. Runs concurrently (up to the consumer's prefetch), so it
/// must be `Sync`; it must not block the thread (use async I/O, or `spawn_blocking`).
pub trait Handler: Send + Sync + 'static {
    /// The (type, major version) pairs this handler understands; anything else is dead-lettered
    /// without calling [`Handler::handle`]. Asked once per (re)start.
    fn accepts(&self) -> Vec<EventKind>;

    /// Handles one event and says what to do with its message. Decode the payload with
    /// [`Envelope::decode`]; an invalid payload is usually [`Outcome::dead_letter`].
    fn handle(&self, envelope: &Envelope, context: &DeliveryContext) -> impl Future<Output = Outcome> + Send;
}

/// What a handler knows about the delivery besides its envelope.
#[derive(Debug, Clone)]
pub struct DeliveryContext {
    pub queue: QueueName,
    /// The transport message id.
    pub message_id: String,
    /// Which delivery this is (1-based).
    pub attempt: u32,
    /// The bus's max attempts: a retry requested on this attempt dead-letters instead.
    pub max_attempts: u32,
    pub metadata: Metadata,
}

impl DeliveryContext {
    /// Whether this is the last attempt before the message is dead-lettered.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// What to do with a handled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ack,
    /// Failed for now: deliver it again after `delay`.
    Retry {
        /// How long to wait.
        delay: Duration,
        /// Why; recorded if this turns into a dead letter.
        reason: String,
    },
    /// Will never succeed: move it to the dead-letter queue.
    DeadLetter {
        /// Why; recorded on the dead letter.
        reason: String,
    },
}

impl Outcome {
    pub fn retry(delay: Duration, reason: impl Into<String>) -> Self {
        Self::Retry { delay, reason: reason.into() }
    }

    pub fn dead_letter(reason: impl Into<String>) -> Self {
        Self::DeadLetter { reason: reason.into() }
    }
}

/// How a consumer runs.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// How it subscribes; `prefetch` is the number of handlers running at once.
    pub subscribe: SubscribeOptions,
    /// A handler still running after this long is abandoned and its message retried.
    pub handler_timeout: Duration,
    /// Retry delay after a handler panicked or timed out.
    pub failure_delay: Duration,
    /// On a graceful stop, how long running handlers get to finish (and the fetch under way:
    /// keep `subscribe.poll_wait` below it).
    pub drain_timeout: Duration,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            subscribe: SubscribeOptions::default(),
            handler_timeout: Duration::from_secs(60),
            failure_delay: Duration::from_secs(5),
            // Well inside the supervisor's per-child stop timeout (10 s).
            drain_timeout: Duration::from_secs(8),
        }
    }
}

/// Counters of one consumer across all its incarnations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsumerStats {
    /// Deliveries taken from the subscription.
    pub received: u64,
    pub acked: u64,
    pub retried: u64,
    /// Dead-lettered (by the handler, as poison, or after exhausting their attempts).
    pub dead_lettered: u64,
    /// Settle operations that failed (the message will be redelivered).
    pub settle_failures: u64,
    /// Handler runs in progress.
    pub in_flight: u64,
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    acked: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    settle_failures: AtomicU64,
    in_flight: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ConsumerStats {
        ConsumerStats {
            received: self.received.load(Ordering::Relaxed),
            acked: self.acked.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            settle_failures: self.settle_failures.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }
}

/// Messages the consumer actor handles.
#[derive(Debug)]
pub enum ConsumerMsg {
    /// The subscription ended for good; the actor fails so its supervisor restarts it.
    SubscriptionEnded(String),
}

/// Reaches a running consumer; cheap to clone.
#[derive(Clone)]
pub struct ConsumerHandle {
    actor: ActorHandle<ConsumerMsg>,
    counters: Arc<Counters>,
}

impl fmt::Debug for ConsumerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerHandle").field("actor", &self.actor).field("stats", &self.stats()).finish()
    }
}

impl ConsumerHandle {
    /// The actor's registry name (`"{supervisor}/{name}"` once started), for `chaos::kill`.
    pub fn name(&self) -> &str {
        self.actor.name()
    }

    pub fn actor(&self) -> &ActorHandle<ConsumerMsg> {
        &self.actor
    }

    /// Counters over all incarnations.
    pub fn stats(&self) -> ConsumerStats {
        self.counters.snapshot()
    }
}

/// A supervisor child consuming `queue` on `bus` with `handler`, and its handle.
pub fn consumer<H: Handler>(
    name: impl Into<String>,
    bus: Arc<dyn Bus>,
    queue: QueueName,
    handler: Arc<H>,
    options: ConsumerOptions,
) -> (ChildSpec, ConsumerHandle) {
    let counters = Arc::new(Counters::default());
    let args = ConsumerArgs { bus, queue, handler, options, counters: Arc::clone(&counters) };
    let (spec, actor) = child(name, move || (EventConsumer::<H>::new(), args.clone()));
    (spec, ConsumerHandle { actor, counters })
}

/// The consumer actor; see the module documentation.
pub struct EventConsumer<H> {
    handler: PhantomData<fn() -> H>,
}

impl<H> fmt::Debug for EventConsumer<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventConsumer")
    }
}

impl<H> EventConsumer<H> {
    fn new() -> Self {
        Self { handler: PhantomData }
    }
}

/// What an incarnation starts from.
pub struct ConsumerArgs<H> {
    bus: Arc<dyn Bus>,
    queue: QueueName,
    handler: Arc<H>,
    options: ConsumerOptions,
    counters: Arc<Counters>,
}

impl<H> fmt::Debug for ConsumerArgs<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerArgs")
            .field("queue", &self.queue)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<H> Clone for ConsumerArgs<H> {
    fn clone(&self) -> Self {
        Self {
            bus: Arc::clone(&self.bus),
            queue: self.queue.clone(),
            handler: Arc::clone(&self.handler),
            options: self.options.clone(),
            counters: Arc::clone(&self.counters),
        }
    }
}

/// A running incarnation: its pump, and the signal asking the pump to drain.
#[derive(Debug)]
pub struct ConsumerState {
    /// Aborted (with every handler task) when the state is dropped, i.e. when the actor dies.
    pump: Option<AbortOnDrop>,
    drain: watch::Sender<bool>,
    drain_timeout: Duration,
    /// The subscription's teardown flag, raised before the pump is aborted.
    closing: Arc<AtomicBool>,
}

impl Drop for ConsumerState {
    fn drop(&mut self) {
        // Raised first, so the deliveries of the handler tasks aborted next know the whole
        // subscription is going (see `Feed::closing`).
        self.closing.store(true, Ordering::SeqCst);
    }
}

impl<H: Handler> Actor for EventConsumer<H> {
    type Msg = ConsumerMsg;
    type State = ConsumerState;
    type Arguments = ConsumerArgs<H>;

    async fn pre_start(
        &self,
        myself: ActorRef<ConsumerMsg>,
        args: ConsumerArgs<H>,
    ) -> Result<ConsumerState, ActorProcessingErr> {
        let subscription = args.bus.subscribe(&args.queue, &args.options.subscribe).await?;
        let (drain, drain_rx) = watch::channel(false);
        let drain_timeout = args.options.drain_timeout;
        let pump = Pump {
            accepts: Arc::new(args.handler.accepts()),
            handler: args.handler,
            options: args.options,
            counters: args.counters,
        };
        tracing::info!(queue = %args.queue, backend = %args.bus.backend(), "consumer subscribed");
        let closing = subscription.closing();
        let task = tokio::spawn(pump.run(subscription, myself, drain_rx));
        Ok(ConsumerState { pump: Some(AbortOnDrop(task)), drain, drain_timeout, closing })
    }

    async fn handle(
        &self,
        _myself: ActorRef<ConsumerMsg>,
        message: ConsumerMsg,
        _state: &mut ConsumerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ConsumerMsg::SubscriptionEnded(reason) => Err(format!("subscription ended: {reason}").into()),
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ConsumerMsg>,
        state: &mut ConsumerState,
    ) -> Result<(), ActorProcessingErr> {
        // Graceful stop only (a kill skips this): let running handlers finish and settle.
        state.drain.send_replace(true);
        if let Some(mut pump) = state.pump.take()
            && tokio::time::timeout(state.drain_timeout, &mut pump.0).await.is_err()
        {
            tracing::warn!(timeout = ?state.drain_timeout, "consumer did not drain in time; releasing its deliveries");
        }
        Ok(())
    }
}

/// Pulls deliveries and runs the handler on them.
struct Pump<H> {
    handler: Arc<H>,
    accepts: Arc<Vec<EventKind>>,
    options: ConsumerOptions,
    counters: Arc<Counters>,
}

impl<H: Handler> Pump<H> {
    async fn run(self, mut subscription: Subscription, actor: ActorRef<ConsumerMsg>, mut drain: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(usize::from(this.options.subscribe.prefetch.max(1))));
        let mut running = JoinSet::new();
        loop {
            while running.try_join_next().is_some() {}
            let slot = tokio::select! {
                slot = Arc::clone(&slots).acquire_owned() => slot,
                _ = drain.wait_for(|drain| *drain) => break,
            };
            // The semaphore is never closed.
            let Ok(slot) = slot else { break };
            let delivery = tokio::select! {
                delivery = subscription.next() => delivery,
                _ = drain.wait_for(|drain| *drain) => break,
            };
            match delivery {
                Ok(delivery) => {
                    this.counters.received.fetch_add(1, Ordering::Relaxed);
                    running.spawn(Arc::clone(&this).process(delivery, slot));
                }
                Err(err) => {
                    tracing::error!(error = %err, "subscription ended");
                    let _ = actor.send_message(ConsumerMsg::SubscriptionEnded(err.to_string()));
                    break;
                }
            }
        }
        // Running handlers settle while the last fetch completes and its messages are released.
        let handlers = async { while running.join_next().await.is_some() {} };
        tokio::join!(handlers, subscription.finish_fetching());
    }

    async fn process(self: Arc<Self>, delivery: Delivery, _slot: OwnedSemaphorePermit) {
        self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        let outcome = self.outcome(&delivery).await;
        self.apply(delivery, outcome).await;
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Decides what to do with `delivery`, running the handler if the message is one it accepts.
    async fn outcome(&self, delivery: &Delivery) -> Outcome {
        let envelope = match delivery.envelope() {
            Ok(envelope) => envelope,
            Err(undecodable) => return Outcome::dead_letter(format!("undecodable message: {}", undecodable.error)),
        };
        let kind = envelope.kind();
        if !self.accepts.contains(&kind) {
            let accepted: Vec<String> = self.accepts.iter().map(ToString::to_string).collect();
            return Outcome::dead_letter(format!(
                "unsupported event {kind} (this consumer accepts {})",
                if accepted.is_empty() { "nothing".to_owned() } else { accepted.join(", ") }
            ));
        }
        let context = DeliveryContext {
            queue: delivery.queue().clone(),
            message_id: delivery.message_id().to_owned(),
            attempt: delivery.attempt(),
            max_attempts: delivery.max_attempts(),
            metadata: delivery.metadata().clone(),
        };
        let run = AssertUnwindSafe(self.handler.handle(envelope, &context)).catch_unwind();
        match tokio::time::timeout(self.options.handler_timeout, run).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(panic)) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic".to_owned());
                Outcome::retry(self.options.failure_delay, format!("handler panicked: {message}"))
            }
            Err(_) => Outcome::retry(
                self.options.failure_delay,
                format!("handler timed out after {:?}", self.options.handler_timeout),
            ),
        }
    }

    async fn apply(&self, delivery: Delivery, outcome: Outcome) {
        let (queue, message_id, attempt) =
            (delivery.queue().to_string(), delivery.message_id().to_owned(), delivery.attempt());
        let result = match &outcome {
            Outcome::Ack => delivery.ack().await,
            Outcome::Retry { delay, reason } => delivery.retry(*delay, reason).await,
            Outcome::DeadLetter { reason } => delivery.dead_letter(reason).await,
        };
        match result {
            Ok(Settled::Acked) => {
                self.counters.acked.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%queue, %message_id, attempt, "message handled");
            }
            Ok(Settled::Retried { delay }) => {
                self.counters.retried.fetch_add(1, Ordering::Relaxed);
                let reason = match &outcome {
                    Outcome::Retry { reason, .. } => reason.as_str(),
                    _ => "",
                };
                tracing::warn!(%queue, %message_id, attempt, ?delay, %reason, "message will be retried");
            }
            Ok(Settled::DeadLettered { reason }) => {
                self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%queue, %message_id, attempt, %reason, "message dead-lettered");
            }
            Err(err) => {
                self.counters.settle_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %err, "could not settle message");
            }
        }
    }
}
