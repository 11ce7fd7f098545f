//! The bus conformance suite: one body of tests, run against every backend — the memory and
//! SQLite buses always, real RabbitMQ and an SQS API (moto) with `--features integration`, where an
//! unreachable broker or endpoint fails the test. Each test works on its own, freshly
//! provisioned queues and names its own supervisor.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use support::{Backend, Ping, PingV2, Script, eventually, ping, start_consumer};
use wharf_bus::{BusError, DeadLetter, Depth, Envelope, Message, Metadata, Outcome, Replay, SubscribeOptions};

const WAIT: Duration = Duration::from_secs(30);

/// Waits until the dead-letter queue holds exactly `n` messages and returns them.
async fn dead_letters(b: &Backend, n: usize) -> Vec<DeadLetter> {
    eventually(&format!("{n} dead letters"), WAIT, || async {
        let letters = b.bus.dead_letters(&b.queue, 100).await.unwrap();
        if std::env::var("DEBUG_DLQ").is_ok() {
            eprintln!("dlq: {:?}", letters.iter().map(|l| (&l.id, &l.reason)).collect::<Vec<_>>());
        }
        (letters.len() == n).then_some(letters)
    })
    .await
}

async fn round_trip_keeps_the_envelope_and_its_metadata(b: Backend) {
    let envelope = Envelope::new(
        &Ping { n: 7 },
        "corr-round-trip",
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
    )
    .unwrap()
    .with_tracestate(Some("wharf=1,congo=t61rcWkgMzE".to_owned()));
    b.bus.publish(&b.queue, &envelope).await.unwrap();

    let mut subscription = b.bus.subscribe(&b.queue, &b.options).await.unwrap();
    let delivery = tokio::time::timeout(WAIT, subscription.next()).await.unwrap().unwrap();
    assert_eq!(delivery.envelope().unwrap(), &envelope, "the envelope arrives unchanged, occurredAt included");
    assert_eq!(delivery.envelope().unwrap().decode::<Ping>().unwrap(), Ping { n: 7 });
    assert_eq!(delivery.message_id(), envelope.id().to_string());
    assert_eq!(delivery.attempt(), 1);
    assert_eq!(
        delivery.metadata(),
        &Metadata {
            event_type: Some("Ping".into()),
            event_version: Some(1),
            correlation_id: Some("corr-round-trip".into()),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: Some("wharf=1,congo=t61rcWkgMzE".into()),
        }
    );
    delivery.ack().await.unwrap();

    // Acked means gone: nothing comes back, not even after the SQS visibility timeout.
    assert!(tokio::time::timeout(b.quiet, subscription.next()).await.is_err(), "an acked message came back");
    drop(subscription);
    assert!(b.bus.dead_letters(&b.queue, 10).await.unwrap().is_empty());
    b.finish().await;
}

/// A subscription that goes away while it fetches — an SQS long poll is open at the server, and
/// SQS hides what a poll brings whether or not anyone reads the answer — releases what that last
/// fetch brought: the next subscriber gets the message at once, not after the visibility timeout.
/// Both when the subscription is dropped mid-fetch (a consumer killed) and when it is stopped
/// gracefully with `finish_fetching` (a consumer draining before its process exits).
async fn a_subscription_stopped_mid_fetch_releases_what_its_last_fetch_brought(b: Backend) {
    let slow = SubscribeOptions {
        poll_wait: Duration::from_secs(3),
        visibility_timeout: Duration::from_secs(60),
        ..b.options.clone()
    };
    let next_subscriber_gets = |envelope: Envelope, how: &'static str| {
        let (bus, queue, options) = (Arc::clone(&b.bus), b.queue.clone(), b.options.clone());
        async move {
            let mut next = bus.subscribe(&queue, &options).await.unwrap();
            let delivery = tokio::time::timeout(Duration::from_secs(10), next.next())
                .await
                .unwrap_or_else(|_| panic!("{how}: released at once, not after the 60 s visibility timeout"))
                .unwrap();
            assert_eq!(delivery.message_id(), envelope.id().to_string(), "{how}");
            delivery.ack().await.unwrap();
        }
    };

    // Dropped while its fetch is under way; the message arrives after the drop.
    let first = b.bus.subscribe(&b.queue, &slow).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(first);
    let envelope = ping(1);
    b.bus.publish(&b.queue, &envelope).await.unwrap();
    next_subscriber_gets(envelope, "dropped mid-fetch").await;

    // Stopped while its fetch is under way; the message arrives before the fetch ends.
    let mut second = b.bus.subscribe(&b.queue, &slow).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    second.stop_fetching();
    let envelope = ping(2);
    b.bus.publish(&b.queue, &envelope).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), second.finish_fetching())
        .await
        .expect("the last fetch ends within its poll wait");
    assert!(
        matches!(second.next().await, Err(BusError::SubscriptionEnded { .. })),
        "nothing is fetched after finish_fetching"
    );
    drop(second);
    next_subscriber_gets(envelope, "finished fetching").await;
    b.finish().await;
}

/// Every published event is consumed. Memory, SQLite and RabbitMQ deliver each exactly once here
/// (nothing fails, nobody dies). SQS promises at least once: a standard queue may hand a message
/// out again, and moto does so under this load — its `Queue.delete_message` rebuilds the message
/// list without a lock, so of two DeleteMessageBatch calls served at once one can put back a
/// message the other removed, and it reappears one visibility timeout later. So on SQS a second
/// copy is allowed only as what SQS itself can do: a later receive of a message, never a first
/// receive twice, and rare.
async fn a_thousand_concurrent_publishes_are_each_consumed_at_least_once_and_none_lost(b: Backend) {
    let handler = Script::acking();
    let (supervisor, consumer) = start_consumer(&b, Arc::clone(&handler), 32).await;

    let envelopes: Vec<Envelope> = (0..1000).map(ping).collect();
    let bus = Arc::clone(&b.bus);
    let queue = b.queue.clone();
    let results: Vec<_> = futures_util::stream::iter(envelopes.iter())
        .map(|envelope| {
            let (bus, queue) = (Arc::clone(&bus), queue.clone());
            async move { bus.publish(&queue, envelope).await }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    assert!(results.iter().all(Result::is_ok), "every publish is confirmed: {:?}", results.iter().find(|r| r.is_err()));

    eventually("1000 acks", Duration::from_secs(90), || async { (consumer.stats().acked >= 1000).then_some(()) }).await;
    tokio::time::sleep(b.quiet).await;
    let seen = handler.seen();
    let ids: HashSet<_> = seen.iter().map(|s| s.envelope.id()).collect();
    let published: HashSet<_> = envelopes.iter().map(Envelope::id).collect();
    assert_eq!(ids, published, "every published event was consumed");
    let first_receives: Vec<_> = seen.iter().filter(|s| s.attempt == 1).map(|s| s.envelope.id()).collect();
    assert_eq!(first_receives.len(), 1000, "one first receive per event");
    assert_eq!(first_receives.into_iter().collect::<HashSet<_>>(), published, "each event's first receive, once");
    let again = seen.len() - 1000;
    if b.kind() == wharf_bus::BackendKind::Sqs {
        assert!(again <= 10, "redeliveries are rare: {again} of 1000");
    } else {
        assert_eq!(again, 0, "none twice");
    }
    let stats = consumer.stats();
    assert_eq!(
        (stats.acked, stats.retried, stats.dead_lettered, stats.settle_failures),
        (seen.len() as u64, 0, 0, 0),
        "every delivery acked, none retried or dead-lettered"
    );
    supervisor.shutdown().await;
    b.finish().await;
}

async fn an_unacked_delivery_is_redelivered_after_its_consumer_is_killed(b: Backend) {
    // The first delivery hangs as a stuck handler would; the second is handled.
    let handler = Script::new(|_, context| {
        let attempt = context.attempt;
        Box::pin(async move {
            if attempt == 1 {
                std::future::pending::<()>().await;
            }
            Outcome::Ack
        })
    });
    let (supervisor, consumer) = start_consumer(&b, Arc::clone(&handler), 4).await;
    let envelope = ping(1);
    b.bus.publish(&b.queue, &envelope).await.unwrap();
    eventually("the first delivery", WAIT, || async { (handler.attempts_of(&envelope) == [1]).then_some(()) }).await;

    wharf_actors::chaos::kill(consumer.name()).unwrap();

    eventually("the redelivery", WAIT, || async { (consumer.stats().acked == 1).then_some(()) }).await;
    // Handled twice, the redelivery counted as a later attempt. Memory and RabbitMQ count
    // deliveries exactly (2). SQS counts receives (ApproximateReceiveCount), and a receive whose
    // response no handler saw still counts: the killed consumer's long poll, abandoned
    // mid-flight, can take the released message first (LocalStack: 3). So "later", not "+1".
    let attempts = handler.attempts_of(&envelope);
    assert_eq!(attempts.len(), 2, "handled once more after the kill, not more: {attempts:?}");
    assert_eq!(attempts[0], 1);
    if b.kind() == wharf_bus::BackendKind::Sqs {
        assert!(attempts[1] >= 2, "the redelivery counts as a later attempt: {attempts:?}");
    } else {
        assert_eq!(attempts[1], 2, "redelivered once, counted as the second attempt");
    }
    assert_eq!(supervisor.liveness().restarts().len(), 1, "the consumer was restarted by its supervisor");
    tokio::time::sleep(b.quiet).await;
    assert_eq!(handler.attempts_of(&envelope), attempts, "and acked for good");
    supervisor.shutdown().await;
    b.finish().await;
}

async fn retry_later_waits_for_the_delay_and_counts_the_attempt(b: Backend) {
    let delay = b.retry_delay;
    let handler = Script::new(move |_, context| {
        let outcome = if context.attempt == 1 { Outcome::retry(delay, "not yet") } else { Outcome::Ack };
        Box::pin(async move { outcome })
    });
    let (supervisor, consumer) = start_consumer(&b, Arc::clone(&handler), 4).await;
    let envelope = ping(1);
    b.bus.publish(&b.queue, &envelope).await.unwrap();

    eventually("the retried delivery", WAIT, || async { (consumer.stats().acked == 1).then_some(()) }).await;
    let seen = handler.seen();
    assert_eq!(seen.iter().map(|s| s.attempt).collect::<Vec<_>>(), [1, 2]);
    let waited = seen[1].at - seen[0].at;
    assert!(waited >= delay, "redelivered after {waited:?}, before the {delay:?} delay");
    assert!(waited < delay + Duration::from_secs(5), "redelivered only after {waited:?}");
    assert_eq!(consumer.stats().retried, 1);
    tokio::time::sleep(b.quiet).await;
    assert_eq!(handler.seen().len(), 2);
    supervisor.shutdown().await;
    b.finish().await;
}

/// Run with `BUS_MAX_ATTEMPTS` = 3.
async fn an_always_failing_message_is_dead_lettered_after_max_attempts(b: Backend) {
    assert_eq!(b.bus.max_attempts(), 3);
    let delay =
        if b.kind() == wharf_bus::BackendKind::Sqs { Duration::from_secs(1) } else { Duration::from_millis(100) };
    let handler = Script::new(move |_, _| Box::pin(async move { Outcome::retry(delay, "downstream is down") }));
    let (supervisor, consumer) = start_consumer(&b, Arc::clone(&handler), 4).await;
    let envelope = ping(9);
    b.bus.publish(&b.queue, &envelope).await.unwrap();

    let letters = dead_letters(&b, 1).await;
    assert_eq!(handler.attempts_of(&envelope), [1, 2, 3], "exactly max attempts, then no more");
    let letter = &letters[0];
    assert_eq!(letter.id, envelope.id().to_string());
    assert_eq!(letter.reason.as_deref(), Some("exhausted 3 attempts: downstream is down"));
    assert_eq!(letter.attempts, Some(3));
    assert!(letter.dead_lettered_at.is_some());
    assert_eq!(letter.envelope().unwrap(), envelope, "the dead letter keeps the event");
    assert_eq!(letter.metadata.event_type.as_deref(), Some("Ping"));
    assert_eq!(letter.metadata.correlation_id.as_deref(), Some("corr-9"));
    let stats = consumer.stats();
    assert_eq!((stats.retried, stats.dead_lettered), (2, 1));
    tokio::time::sleep(b.quiet).await;
    assert_eq!(handler.attempts_of(&envelope).len(), 3);
    supervisor.shutdown().await;
    b.finish().await;
}

async fn undecodable_and_unknown_major_versions_go_straight_to_the_dead_letter_queue(b: Backend) {
    let handler = Script::acking();
    let (supervisor, consumer) = start_consumer(&b, Arc::clone(&handler), 4).await;
    let metadata = Metadata { event_type: Some("Ping".into()), event_version: Some(1), ..Metadata::default() };
    let garbage = Message::raw("{ this is not an envelope", metadata);
    b.bus.publish_message(&b.queue, &garbage).await.unwrap();
    let v2 = Envelope::new(&PingV2 { label: "new shape".into() }, "corr-v2", None).unwrap();
    b.bus.publish(&b.queue, &v2).await.unwrap();
    let good = ping(1);
    b.bus.publish(&b.queue, &good).await.unwrap();

    let letters = dead_letters(&b, 2).await;
    eventually("the good event acked", WAIT, || async { (consumer.stats().acked == 1).then_some(()) }).await;
    assert_eq!(handler.attempts_of(&good), [1]);
    assert_eq!(handler.seen().len(), 1, "the handler never sees poison");

    let undecodable = letters.iter().find(|l| l.body == garbage.body).expect("the undecodable message");
    let reason = undecodable.reason.as_deref().unwrap();
    assert!(reason.starts_with("undecodable message: "), "{reason}");
    assert_eq!(undecodable.attempts, Some(1), "dead-lettered on its first delivery");
    assert_eq!(undecodable.metadata.event_type.as_deref(), Some("Ping"));

    let unknown = letters.iter().find(|l| l.id == v2.id().to_string()).expect("the v2 event");
    assert_eq!(
        unknown.reason.as_deref(),
        Some("unsupported event Ping v2 (this consumer accepts Ping v1)"),
        "an unknown major version is dead-lettered with the reason"
    );
    assert_eq!(unknown.attempts, Some(1));
    assert_eq!(consumer.stats().dead_lettered, 2);
    supervisor.shutdown().await;
    b.finish().await;
}

async fn dead_letters_can_be_listed_replayed_and_purged(b: Backend) {
    let rejecting = Arc::new(AtomicBool::new(true));
    let handler = Script::new({
        let rejecting = Arc::clone(&rejecting);
        move |_, _| {
            let outcome =
                if rejecting.load(Ordering::SeqCst) { Outcome::dead_letter("rejected") } else { Outcome::Ack };
            Box::pin(async move { outcome })
        }
    });
    let (supervisor, consumer) = start_consumer(&b, Arc::clone(&handler), 4).await;
    let envelopes: Vec<Envelope> = (1..=3).map(ping).collect();
    for envelope in &envelopes {
        b.bus.publish(&b.queue, envelope).await.unwrap();
    }
    let letters = dead_letters(&b, 3).await;
    assert!(letters.iter().all(|l| l.reason.as_deref() == Some("rejected") && l.attempts == Some(1)));
    let ids: HashSet<String> = letters.iter().map(|l| l.id.clone()).collect();
    assert_eq!(ids, envelopes.iter().map(|e| e.id().to_string()).collect());
    // Listing does not consume: the same three are still there.
    assert_eq!(b.bus.dead_letters(&b.queue, 100).await.unwrap().len(), 3);
    assert_eq!(b.bus.dead_letters(&b.queue, 2).await.unwrap().len(), 2, "the limit is honoured");

    // Replay one, selected by id: it is delivered again, with a fresh attempt count.
    rejecting.store(false, Ordering::SeqCst);
    let first = &envelopes[0];
    let replayed = b.bus.replay(&b.queue, &Replay::Ids(vec![first.id().to_string()])).await.unwrap();
    assert_eq!(replayed, 1);
    eventually("the replayed event acked", WAIT, || async { (consumer.stats().acked == 1).then_some(()) }).await;
    assert_eq!(handler.attempts_of(first), [1, 1]);
    let left = dead_letters(&b, 2).await;
    assert!(left.iter().all(|l| l.id != first.id().to_string()));

    // Replay the rest.
    assert_eq!(b.bus.replay(&b.queue, &Replay::All).await.unwrap(), 2);
    eventually("all replayed events acked", WAIT, || async { (consumer.stats().acked == 3).then_some(()) }).await;
    dead_letters(&b, 0).await;

    // Purge.
    rejecting.store(true, Ordering::SeqCst);
    for n in 10..12 {
        b.bus.publish(&b.queue, &ping(n)).await.unwrap();
    }
    dead_letters(&b, 2).await;
    assert_eq!(b.bus.purge_dead_letters(&b.queue).await.unwrap(), 2);
    assert!(b.bus.dead_letters(&b.queue, 100).await.unwrap().is_empty());
    assert_eq!(b.bus.replay(&b.queue, &Replay::All).await.unwrap(), 0);
    supervisor.shutdown().await;
    b.finish().await;
}

/// Run with `BUS_MAX_ATTEMPTS` = 2. Each delivery is dropped unsettled, as when the consumer
/// holding it dies: every one counts as an attempt, and after the last the message is moved to
/// the dead-letter queue (by the bus, or on SQS by the queue's redrive policy).
async fn a_message_whose_consumer_keeps_dying_is_dead_lettered_after_max_attempts(b: Backend) {
    assert_eq!(b.bus.max_attempts(), 2);
    let envelope = ping(3);
    b.bus.publish(&b.queue, &envelope).await.unwrap();
    let mut subscription = b.bus.subscribe(&b.queue, &b.options).await.unwrap();
    for attempt in 1..=2 {
        let delivery = tokio::time::timeout(WAIT, subscription.next()).await.unwrap().unwrap();
        assert_eq!(delivery.attempt(), attempt);
        assert_eq!(delivery.envelope().unwrap().id(), envelope.id());
        drop(delivery);
    }
    // The subscription keeps pulling, as a consumer does: the third delivery never reaches it.
    assert!(tokio::time::timeout(b.quiet, subscription.next()).await.is_err(), "never delivered a third time");
    drop(subscription);
    let letters = dead_letters(&b, 1).await;
    assert_eq!(letters[0].id, envelope.id().to_string());
    if b.kind() != wharf_bus::BackendKind::Sqs {
        let reason = letters[0].reason.as_deref().unwrap();
        assert!(reason.starts_with("exhausted 2 attempts: "), "{reason}");
    }
    b.finish().await;
}

async fn a_graceful_stop_lets_running_handlers_finish(b: Backend) {
    // Longer than an SQS long poll, so the feeder has stopped fetching while the handler runs.
    let handler = Script::new(|_, _| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Outcome::Ack
        })
    });
    let (supervisor, consumer) = start_consumer(&b, Arc::clone(&handler), 4).await;
    let envelope = ping(1);
    b.bus.publish(&b.queue, &envelope).await.unwrap();
    eventually("the delivery", WAIT, || async { (!handler.seen().is_empty()).then_some(()) }).await;
    let started = Instant::now();
    supervisor.shutdown().await;
    assert_eq!(consumer.stats().acked, 1, "the running handler finished and acked before the stop completed");
    assert_eq!(consumer.stats().settle_failures, 0);
    assert!(started.elapsed() < Duration::from_secs(8), "the stop waited for the handler, not much longer");

    // Nothing is left to deliver.
    let mut subscription = b.bus.subscribe(&b.queue, &b.options).await.unwrap();
    assert!(tokio::time::timeout(b.quiet, subscription.next()).await.is_err());
    drop(subscription);
    b.finish().await;
}

/// Waits until the backend counts `expected` in `b.queue` and its dead-letter queue.
async fn depth_becomes(b: &Backend, expected: Depth) {
    let mut last = None;
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let depth = b.bus.queue_depth(&b.queue).await.unwrap();
            if depth == expected {
                return;
            }
            last = Some(depth);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(found.is_ok(), "the depth stayed {last:?}, never {expected:?}");
}

async fn queue_depth_counts_waiting_messages_and_dead_letters(b: Backend) {
    depth_becomes(&b, Depth { waiting: 0, dead_letters: 0 }).await;
    for n in 1..=3 {
        b.bus.publish(&b.queue, &ping(n)).await.unwrap();
    }
    depth_becomes(&b, Depth { waiting: 3, dead_letters: 0 }).await;

    let mut subscription = b.bus.subscribe(&b.queue, &b.options).await.unwrap();
    let delivery = tokio::time::timeout(WAIT, subscription.next()).await.unwrap().unwrap();
    delivery.dead_letter("counted").await.unwrap();
    // The others the subscription fetched go back to the queue unsettled.
    drop(subscription);
    depth_becomes(&b, Depth { waiting: 2, dead_letters: 1 }).await;
    b.finish().await;
}

/// One module per backend, each running every test body.
macro_rules! conformance {
    ($($case:ident $(($max_attempts:expr))?),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case(super::support::memory(conformance!(@max $($max_attempts)?)).await).await
            })*
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case(super::support::sqlite(conformance!(@max $($max_attempts)?)).await).await
            })*
        }
        #[cfg(feature = "integration")]
        mod rabbitmq {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case(super::support::rabbitmq(conformance!(@max $($max_attempts)?)).await).await
            })*
        }
        #[cfg(feature = "integration")]
        mod sqs {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case(super::support::sqs(conformance!(@max $($max_attempts)?)).await).await
            })*
        }
    };
    (@max $max_attempts:expr) => { $max_attempts };
    (@max) => { 5 };
}

conformance!(
    round_trip_keeps_the_envelope_and_its_metadata,
    a_subscription_stopped_mid_fetch_releases_what_its_last_fetch_brought,
    a_thousand_concurrent_publishes_are_each_consumed_at_least_once_and_none_lost,
    an_unacked_delivery_is_redelivered_after_its_consumer_is_killed,
    retry_later_waits_for_the_delay_and_counts_the_attempt,
    an_always_failing_message_is_dead_lettered_after_max_attempts(3),
    undecodable_and_unknown_major_versions_go_straight_to_the_dead_letter_queue,
    dead_letters_can_be_listed_replayed_and_purged,
    a_message_whose_consumer_keeps_dying_is_dead_lettered_after_max_attempts(2),
    a_graceful_stop_lets_running_handlers_finish,
    queue_depth_counts_waiting_messages_and_dead_letters,
);
