//! What only RabbitMQ needs proving: the bus rides out the broker closing its connections
//! (publishers and consumers resume by themselves, nothing is lost, nothing is falsely
//! confirmed), an unreachable broker fails publishes after the bound, an unroutable publish is an
//! error, provisioning is idempotent, and a consumer whose queue vanished is restarted by its
//! supervisor until the queue is back. Needs a real broker (`--features integration`);
//! `rabbitmqctl` closes connections from the broker side.
//!
//! Only connections named by the test are closed (not `close_all_connections`), so the other
//! suites running at the same time keep theirs.

#![cfg(feature = "integration")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Script, eventually, ping, rabbitmq_named, start_consumer, unique};
use wharf_actors::{Liveness, RestartPolicy, Supervisor};
use wharf_bus::{BackendKind, Bus, BusConfig, BusError, Envelope, QueueName, RabbitBus};

const WAIT: Duration = Duration::from_secs(30);

/// Closes, from the broker side, every connection whose client properties mention `name`;
/// returns how many it closed.
fn close_connections_named(name: &str) -> usize {
    let output = Command::new("rabbitmqctl")
        .args(["list_connections", "pid", "client_properties", "-q", "--no-table-headers"])
        .output()
        .expect("rabbitmqctl must be available to the integration tests");
    assert!(output.status.success(), "rabbitmqctl list_connections: {}", String::from_utf8_lossy(&output.stderr));
    let listing = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut closed = 0;
    // One connection per line: its pid (`<rabbit@host.1.2.3>`), a tab, its client properties.
    for line in listing.lines().filter(|line| line.contains(name)) {
        let pid = line.split('\t').next().expect("a connection pid").trim();
        let closing = Command::new("rabbitmqctl")
            .args(["close_connection", pid, "wharf bus test: simulated broker-side close"])
            .output()
            .unwrap();
        assert!(
            closing.status.success(),
            "rabbitmqctl close_connection {pid}: {}{}",
            String::from_utf8_lossy(&closing.stdout),
            String::from_utf8_lossy(&closing.stderr)
        );
        closed += 1;
    }
    closed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_ride_out_a_closed_connection_and_nothing_is_lost() {
    let connection = unique("wharf-bus-reconnect-pub");
    let b = rabbitmq_named(5, &connection).await;
    let first = ping(0);
    b.bus.publish(&b.queue, &first).await.unwrap();

    assert_eq!(close_connections_named(&connection), 1, "the bus had exactly one connection");
    let envelopes: Vec<Envelope> = (1..=50).map(ping).collect();
    let publishes = envelopes.iter().map(|envelope| b.bus.publish(&b.queue, envelope));
    let results = futures_util::future::join_all(publishes).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let mut subscription = b.bus.subscribe(&b.queue, &b.options).await.unwrap();
    let mut received = HashSet::new();
    while received.len() < 51 {
        let delivery = tokio::time::timeout(WAIT, subscription.next()).await.expect("all 51 arrive").unwrap();
        received.insert(delivery.envelope().unwrap().id());
        delivery.ack().await.unwrap();
    }
    let published: HashSet<_> = std::iter::once(&first).chain(&envelopes).map(Envelope::id).collect();
    assert_eq!(received, published);
    drop(subscription);
    b.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_resumes_by_itself_after_its_connection_is_closed() {
    let connection = unique("wharf-bus-reconnect-sub");
    let b = rabbitmq_named(5, &connection).await;
    let handler = Script::acking();
    let (supervisor, consumer) = start_consumer(&b, Arc::clone(&handler), 8).await;
    for n in 0..5 {
        b.bus.publish(&b.queue, &ping(n)).await.unwrap();
    }
    eventually("the first five", WAIT, || async { (consumer.stats().acked == 5).then_some(()) }).await;

    assert_eq!(close_connections_named(&connection), 1);
    for n in 5..10 {
        b.bus.publish(&b.queue, &ping(n)).await.unwrap();
    }
    eventually("the five published after the close", WAIT, || async { (consumer.stats().acked == 10).then_some(()) })
        .await;
    assert!(supervisor.liveness().restarts().is_empty(), "the subscription recovered without restarting the actor");
    assert_eq!(handler.seen().len(), 10);
    supervisor.shutdown().await;
    b.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_to_an_unreachable_broker_fails_after_the_publish_timeout() {
    let config = BusConfig {
        backend: BackendKind::RabbitMq,
        amqp_url: "amqp://guest:guest@127.0.0.1:1/%2f".to_owned(),
        publish_timeout: Duration::from_millis(1500),
        ..BusConfig::memory()
    };
    let bus = RabbitBus::new(&config);
    let started = Instant::now();
    let err = bus.publish(&config.queue, &ping(1)).await.unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, BusError::Unavailable { backend: BackendKind::RabbitMq, .. }), "{err}");
    assert!(err.is_transient());
    assert!(waited >= Duration::from_millis(1500) && waited < Duration::from_secs(5), "failed after {waited:?}");
    // Connecting at start-up fails just as clearly.
    let err = wharf_bus::connect(&config).await.unwrap_err();
    assert!(matches!(err, BusError::Unavailable { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_nothing_can_route_is_an_error_not_a_success() {
    let config = BusConfig { amqp_url: support::amqp_url(), ..BusConfig::memory() };
    let bus = RabbitBus::new(&config);
    let never_provisioned = QueueName::parse(&unique("amqp-missing")).unwrap();
    let err = bus.publish(&never_provisioned, &ping(1)).await.unwrap_err();
    assert!(matches!(err, BusError::QueueNotFound { .. }), "{err}");
    assert!(!err.is_transient());
    // The bus still works afterwards.
    let b = rabbitmq_named(5, &unique("wharf-bus-after-unroutable")).await;
    b.bus.publish(&b.queue, &ping(2)).await.unwrap();
    assert!(matches!(b.bus.check(&never_provisioned).await, Err(BusError::QueueNotFound { .. })));
    b.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_from_configuration_is_idempotent() {
    let queue = QueueName::parse(&unique("amqp-provision")).unwrap();
    let config = BusConfig {
        backend: BackendKind::RabbitMq,
        amqp_url: support::amqp_url(),
        queue: queue.clone(),
        ..BusConfig::memory()
    };
    let bus: Arc<dyn Bus> = wharf_bus::connect(&config).await.unwrap();
    assert_eq!(bus.backend(), BackendKind::RabbitMq);
    bus.provision(&queue).await.unwrap();
    let again = wharf_bus::connect(&config).await.unwrap();
    again.check(&queue).await.unwrap();
    // Without provisioning, start-up only checks that the queue exists.
    let checked = BusConfig { provision: false, ..config.clone() };
    wharf_bus::connect(&checked).await.unwrap();
    let missing = BusConfig { queue: QueueName::parse(&unique("amqp-absent")).unwrap(), ..checked };
    assert!(matches!(wharf_bus::connect(&missing).await, Err(BusError::QueueNotFound { .. })));
    // A different attempt limit conflicts with the existing queue's arguments: a clear error.
    let conflicting = BusConfig { max_attempts: 9, ..config };
    let err = wharf_bus::connect(&conflicting).await.unwrap_err();
    assert!(matches!(err, BusError::Rejected { .. }), "{err}");
    assert!(err.to_string().contains("other arguments"), "{err}");
    support::delete_rabbitmq_queues(queue, Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_whose_queue_disappears_fails_and_its_supervisor_restarts_it() {
    let b = support::rabbitmq(5).await;
    let handler = Script::acking();
    let (spec, consumer) = wharf_bus::consumer(
        "consumer",
        Arc::clone(&b.bus),
        b.queue.clone(),
        Arc::clone(&handler),
        b.consumer_options(4),
    );
    let policy = RestartPolicy {
        max_restarts: 1000,
        window: Duration::from_secs(60),
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_millis(500),
    };
    let supervisor = Supervisor::start(unique("bus-test"), policy, Liveness::new(), vec![spec]).await.unwrap();
    b.bus.publish(&b.queue, &ping(1)).await.unwrap();
    eventually("the first event", WAIT, || async { (consumer.stats().acked == 1).then_some(()) }).await;

    // The broker cancels the consumer of a deleted queue; resubscribing finds no queue, so the
    // subscription ends and the actor fails, to be restarted (and fail again) by its supervisor.
    support::delete_rabbitmq_queues(b.queue.clone(), Duration::from_secs(1)).await;
    eventually("a restart", WAIT, || async { (!supervisor.liveness().restarts().is_empty()).then_some(()) }).await;

    b.bus.provision(&b.queue).await.unwrap();
    b.bus.publish(&b.queue, &ping(2)).await.unwrap();
    eventually("the event published once the queue is back", WAIT, || async {
        (consumer.stats().acked == 2).then_some(())
    })
    .await;
    assert!(supervisor.liveness().is_alive());
    supervisor.shutdown().await;
    b.finish().await;
}
