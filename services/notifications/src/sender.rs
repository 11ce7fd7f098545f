//! The sender pool: supervised workers that start deliveries (`notifications/senders`, workers
//! `notifications/senders/0…`).
//!
//! Delivery is a mock — it takes a configurable time per channel and fails for recipients that
//! match `SEND_FAIL_PATTERN` — so that every path (success, retry, give up, dead letter) can be
//! exercised end to end without code changes.
//!
//! A delivery mostly waits (on the provider, here a timer), so it must not hold a worker while it
//! does: a worker takes one of `SEND_CONCURRENCY` in-flight permits — waiting for one is the
//! backpressure that reaches the consumer's prefetch, never an unbounded queue — and hands the
//! delivery to its own task, which reports the outcome to whoever waits for it (the event handler,
//! before it acks). A job is redelivered to another worker when its worker dies before the
//! delivery started; once started, a delivery no longer depends on the worker. A Sent row is never
//! sent again (the store only moves Pending → Sent), and an interrupted delivery leaves its row
//! Pending: direct sends are resumed at start-up, events come back from the bus unacked.

use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tracing::Instrument;
use wharf_actors::Worker;

use crate::domain::{Channel, Notification};
use crate::store::NotificationStore;

/// How the mock delivers.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// `SEND_DELAY_EMAIL_MS`: time an email takes, in ms.
    pub email_delay: RangeInclusive<u64>,
    /// `SEND_DELAY_SMS_MS`: time an SMS takes, in ms.
    pub sms_delay: RangeInclusive<u64>,
    /// `SEND_FAIL_PATTERN`: recipients matching this glob always fail.
    pub fail_pattern: String,
    /// `SENDERS`: workers that start deliveries (each waits for an in-flight permit).
    pub workers: usize,
    /// `SEND_CONCURRENCY`: deliveries under way at once, across all workers.
    pub concurrency: usize,
    /// `SEND_ATTEMPTS`: attempts of a direct send before it is Failed.
    pub attempts: u32,
    /// First wait between attempts; doubles.
    pub backoff: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            email_delay: 2000..=3000,
            sms_delay: 1000..=2000,
            fail_pattern: "*@fail.test".into(),
            workers: 4,
            // The default mock email takes 2–3 s: 2,048 in flight deliver ~800 emails/s.
            concurrency: 2048,
            attempts: 3,
            backoff: Duration::from_millis(200),
        }
    }
}

/// One delivery to make.
#[derive(Debug, Clone)]
pub struct SendJob {
    pub notification: Notification,
    /// Its correlation id, for the logs.
    pub correlation_id: String,
    /// Attempts to make before giving up.
    pub attempts: u32,
    /// Mark the notification Failed when the attempts are used up (direct sends). Event
    /// deliveries leave that to the event handler, which knows whether the bus will retry.
    pub final_on_failure: bool,
    /// Who waits for the outcome (`None`: nobody, a direct send).
    pub reply: Option<Reply>,
    /// The span the send belongs under (the event's consume span, the request of a direct
    /// send; none for a send resumed at start-up): the delivery runs on its own task.
    pub parent: tracing::Span,
}

/// A delivery's outcome, as its waiter receives it.
pub type Delivered = Result<(), SendError>;

/// Where a delivery reports its outcome once; shared by the copies of a redelivered job.
#[derive(Debug, Clone, Default)]
pub struct Reply(Arc<Mutex<Option<oneshot::Sender<Delivered>>>>);

impl Reply {
    /// A reply slot and the receiver its outcome arrives on.
    pub fn channel() -> (Self, oneshot::Receiver<Delivered>) {
        let (tx, rx) = oneshot::channel();
        (Self(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    fn send(&self, outcome: Delivered) {
        if let Some(tx) = self.0.lock().unwrap_or_else(PoisonError::into_inner).take() {
            // The waiter may have given up (its event was redelivered elsewhere): nothing to do.
            let _ = tx.send(outcome);
        }
    }
}

/// Why a delivery did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The (mock) provider refused it.
    #[error("delivery to {recipient} refused by the provider (it matches SEND_FAIL_PATTERN)")]
    Refused { recipient: String },
    /// The outcome could not be recorded.
    #[error("could not record the delivery: {0}")]
    Store(String),
    /// The sender stopped before the delivery started.
    #[error("the sender is not accepting deliveries")]
    Stopped,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    channel: &'static str,
    outcome: &'static str,
}

#[derive(Debug)]
pub struct Sender {
    delivery: Arc<Delivery>,
    in_flight: Arc<Semaphore>,
}

/// What a started delivery needs, shared by every delivery task.
#[derive(Debug)]
struct Delivery {
    store: NotificationStore,
    config: SenderConfig,
    attempts: Family<AttemptLabels, Counter>,
    in_flight: Gauge,
}

impl Sender {
    /// Senders over `store`; registers `notification_send_attempts_total{channel,outcome}` and
    /// `sender_in_flight`.
    pub fn new(store: NotificationStore, config: SenderConfig, registry: &mut Registry) -> Self {
        let attempts = Family::default();
        registry.register("notification_send_attempts", "Delivery attempts by channel and outcome", attempts.clone());
        let in_flight = Gauge::default();
        registry.register("sender_in_flight", "Deliveries under way (at most SEND_CONCURRENCY)", in_flight.clone());
        let permits = config.concurrency.max(1);
        Self {
            delivery: Arc::new(Delivery { store, config, attempts, in_flight }),
            in_flight: Arc::new(Semaphore::new(permits)),
        }
    }
}

impl Delivery {
    fn delay(&self, channel: Channel) -> Duration {
        let range = match channel {
            Channel::Email => &self.config.email_delay,
            Channel::Sms => &self.config.sms_delay,
        };
        Duration::from_millis(fastrand::u64(range.clone()))
    }

    /// One attempt: the mock provider's delay, then its verdict.
    async fn attempt(&self, job: &SendJob) -> Result<(), SendError> {
        let notification = &job.notification;
        tokio::time::sleep(self.delay(notification.channel)).await;
        if glob_matches(&self.config.fail_pattern, notification.recipient.as_str()) {
            return Err(SendError::Refused { recipient: notification.recipient.as_str().to_owned() });
        }
        Ok(())
    }
}

impl Worker for Sender {
    type Job = SendJob;
    type Output = Result<(), SendError>;
    type State = ();

    async fn init(&self) -> Result<(), ractor::ActorProcessingErr> {
        Ok(())
    }

    /// Starts the delivery once a permit is free and returns: the outcome goes to the job's reply.
    async fn perform(&self, (): &mut (), job: &SendJob) -> Self::Output {
        let Ok(permit) = Arc::clone(&self.in_flight).acquire_owned().await else {
            // The semaphore is never closed; if it were, the job is not lost: its caller retries.
            return Err(SendError::Stopped);
        };
        let delivery = Arc::clone(&self.delivery);
        let job = job.clone();
        let span = tracing::info_span!(
            parent: &job.parent,
            "send",
            otel.name = %format_args!("send {}", job.notification.channel.as_str()),
            otel.kind = "client",
            service = "notifications",
            correlation_id = job.correlation_id.as_str(),
            notification.id = job.notification.id,
            notification.channel = job.notification.channel.as_str(),
        );
        tokio::spawn(async move {
            let outcome = delivery.deliver(&job, permit).instrument(span).await;
            if let Some(reply) = &job.reply {
                reply.send(outcome);
            }
        });
        Ok(())
    }

    fn redeliver_on_death(&self, _job: &SendJob) -> bool {
        true
    }
}

impl Delivery {
    /// Every attempt of one delivery, holding an in-flight permit throughout.
    async fn deliver(&self, job: &SendJob, _permit: OwnedSemaphorePermit) -> Result<(), SendError> {
        self.in_flight.inc();
        let outcome = self.attempts_of(job).await;
        self.in_flight.dec();
        outcome
    }

    async fn attempts_of(&self, job: &SendJob) -> Result<(), SendError> {
        let notification = &job.notification;
        let channel = notification.channel.as_str();
        let mut backoff = self.config.backoff;
        for attempt in 1..=job.attempts.max(1) {
            match self.attempt(job).await {
                Ok(()) => {
                    self.attempts.get_or_create(&AttemptLabels { channel, outcome: "sent" }).inc();
                    let sent =
                        self.store.mark_sent(notification.id).await.map_err(|e| SendError::Store(e.to_string()))?;
                    tracing::info!(
                        notification_id = notification.id,
                        channel,
                        attempt,
                        correlation_id = %job.correlation_id,
                        first_delivery = sent,
                        "notification sent"
                    );
                    return Ok(());
                }
                Err(error) => {
                    self.attempts.get_or_create(&AttemptLabels { channel, outcome: "failed" }).inc();
                    let give_up = attempt >= job.attempts && job.final_on_failure;
                    tracing::warn!(
                        notification_id = notification.id,
                        channel,
                        attempt,
                        correlation_id = %job.correlation_id,
                        error = %error,
                        give_up,
                        "delivery attempt failed"
                    );
                    if let Err(err) = self.store.record_failure(notification.id, &error.to_string(), give_up).await {
                        tracing::warn!(error = %err, notification_id = notification.id, "could not record the failed attempt");
                    }
                    if attempt >= job.attempts {
                        return Err(error);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        Ok(())
    }
}

/// `*` matches any run of characters, `?` any one; case-insensitive (addresses are).
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) =
        (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect());
    // Iterative matching with backtracking to the last `*`: linear in practice, no recursion.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Parses `min-max` (or a single number) milliseconds.
pub fn parse_delay(raw: &str) -> Option<RangeInclusive<u64>> {
    let (min, max) = raw.split_once('-').unwrap_or((raw, raw));
    let (min, max) = (min.trim().parse::<u64>().ok()?, max.trim().parse::<u64>().ok()?);
    (min <= max && max <= 600_000).then_some(min..=max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches("*@fail.test", "x@fail.test"));
        assert!(glob_matches("*@fail.test", "X@FAIL.test"));
        assert!(!glob_matches("*@fail.test", "x@fail.test.com"));
        assert!(glob_matches("a?c*", "abcdef"));
        assert!(!glob_matches("", "a"));
        assert!(glob_matches("*", ""));
    }

    #[test]
    fn delays() {
        assert_eq!(parse_delay("2000-3000"), Some(2000..=3000));
        assert_eq!(parse_delay("0"), Some(0..=0));
        assert_eq!(parse_delay("5-1"), None);
        assert_eq!(parse_delay("fast"), None);
    }
}
