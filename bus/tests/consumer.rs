//! The consumer actor beyond the conformance suite, on the memory bus: handler panics and
//! timeouts count as failed attempts, and killing the actor repeatedly under load loses nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use support::{Script, eventually, ping, start_consumer};
use wharf_bus::{Envelope, Outcome};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_failed_attempt_and_ends_in_the_dead_letter_queue() {
    let b = support::memory(3).await;
    let handler = Script::new(|_, _| Box::pin(async { panic!("handler bug") }));
    let (supervisor, consumer) = start_consumer(&b, Arc::clone(&handler), 2).await;
    let envelope = ping(1);
    b.bus.publish(&b.queue, &envelope).await.unwrap();

    let letters = eventually("the dead letter", WAIT, || async {
        let letters = b.bus.dead_letters(&b.queue, 10).await.unwrap();
        (letters.len() == 1).then_some(letters)
    })
    .await;
    assert_eq!(letters[0].reason.as_deref(), Some("exhausted 3 attempts: handler panicked: handler bug"));
    assert_eq!(handler.attempts_of(&envelope), [1, 2, 3]);
    assert!(supervisor.liveness().restarts().is_empty(), "a handler panic does not kill the consumer");
    assert_eq!(consumer.stats().dead_lettered, 1);
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_past_its_timeout_is_abandoned_and_retried() {
    let b = support::memory(5).await;
    let handler = Script::new(|_, context| {
        let attempt = context.attempt;
        Box::pin(async move {
            if attempt == 1 {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Outcome::Ack
        })
    });
    let mut options = b.consumer_options(2);
    options.handler_timeout = Duration::from_millis(200);
    options.failure_delay = Duration::from_millis(50);
    let (spec, consumer) =
        wharf_bus::consumer("consumer", Arc::clone(&b.bus), b.queue.clone(), Arc::clone(&handler), options);
    let supervisor = wharf_actors::Supervisor::start(
        support::unique("bus-test"),
        support::fast_policy(),
        wharf_actors::Liveness::new(),
        vec![spec],
    )
    .await
    .unwrap();
    let envelope = ping(1);
    b.bus.publish(&b.queue, &envelope).await.unwrap();
    eventually("the second attempt acked", WAIT, || async { (consumer.stats().acked == 1).then_some(()) }).await;
    assert_eq!(handler.attempts_of(&envelope), [1, 2]);
    assert_eq!(consumer.stats().retried, 1);
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_consumer_again_and_again_under_load_loses_nothing() {
    let b = support::memory(50).await;
    let handler = Script::new(|_, _| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Outcome::Ack
        })
    });
    let (supervisor, consumer) = start_consumer(&b, Arc::clone(&handler), 8).await;
    let envelopes: Vec<Envelope> = (0..300).map(ping).collect();
    for envelope in &envelopes {
        b.bus.publish(&b.queue, envelope).await.unwrap();
    }
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        eventually("a running consumer", WAIT, || async { consumer.actor().get().map(|_| ()) }).await;
        wharf_actors::chaos::kill(consumer.name()).unwrap();
    }
    eventually("every event acked", WAIT, || async { (consumer.stats().acked == 300).then_some(()) }).await;
    let handled: HashSet<_> = handler.seen().iter().map(|s| s.envelope.id()).collect();
    assert_eq!(handled, envelopes.iter().map(Envelope::id).collect());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(consumer.stats().acked, 300, "each message acked exactly once");
    assert_eq!(supervisor.liveness().restarts().len(), 1);
    assert_eq!(supervisor.liveness().restarts()[0].1, 5);
    assert!(b.bus.dead_letters(&b.queue, 10).await.unwrap().is_empty());
    // Deliveries cut short by a kill came back as later attempts, and were handled then.
    let stats = consumer.stats();
    assert!(stats.received > 300, "some deliveries were interrupted and redelivered: {stats:?}");
    supervisor.shutdown().await;
}
