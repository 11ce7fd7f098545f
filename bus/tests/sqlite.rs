//! The SQLite bus beyond the conformance suite: what makes it durable. Each bus opened here on the
//! same file stands for a separate process (its own connection, no in-process wake-ups): messages
//! outlive the bus that published them, a delivery whose holder vanished without a word (kill -9)
//! comes back once its lease expires, a running handler keeps its lease, and a publish in one
//! process reaches a subscriber in another.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{Ping, ping, unique};
use wharf_bus::{BackendKind, Bus, BusConfig, Envelope, QueueName, SqliteBus, SubscribeOptions};

const WAIT: Duration = Duration::from_secs(30);

/// A database file of its own, removed when dropped.
struct File(std::path::PathBuf);

impl File {
    fn new() -> Self {
        Self(std::env::temp_dir().join(unique("wharf-bus-sqlite-file")))
    }

    fn config(&self, lease: Duration) -> BusConfig {
        BusConfig {
            backend: BackendKind::Sqlite,
            sqlite_url: format!("sqlite://{}/bus.db?mode=rwc", self.0.display()),
            sqlite_lease: lease,
            ..BusConfig::memory()
        }
    }

    async fn open(&self, lease: Duration, queue: &QueueName) -> SqliteBus {
        let bus = SqliteBus::open(&self.config(lease)).await.unwrap();
        bus.provision(queue).await.unwrap();
        bus
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn one_at_a_time() -> SubscribeOptions {
    SubscribeOptions { prefetch: 1, ..SubscribeOptions::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_outlive_their_process_and_a_vanished_delivery_returns_after_its_lease() {
    let file = File::new();
    let queue = QueueName::parse(&unique("durable")).unwrap();
    let lease = Duration::from_millis(800);
    let (first, second) = (ping(1), ping(2));
    {
        let bus = file.open(lease, &queue).await;
        bus.publish(&queue, &first).await.unwrap();
        bus.publish(&queue, &second).await.unwrap();
        let mut subscription = bus.subscribe(&queue, &one_at_a_time()).await.unwrap();
        let delivery = tokio::time::timeout(WAIT, subscription.next()).await.unwrap().unwrap();
        assert_eq!(delivery.envelope().unwrap().id(), first.id());
        // The process dies holding it: no release, no settle, its lease simply stops being renewed.
        std::mem::forget(delivery);
    }

    let bus = file.open(lease, &queue).await;
    let mut subscription = bus.subscribe(&queue, &SubscribeOptions::default()).await.unwrap();
    let started = Instant::now();
    let next = tokio::time::timeout(WAIT, subscription.next()).await.unwrap().unwrap();
    assert_eq!(next.envelope().unwrap().id(), second.id(), "the message nobody held is there at once");
    assert_eq!(next.attempt(), 1);
    next.ack().await.unwrap();

    let again = tokio::time::timeout(WAIT, subscription.next()).await.unwrap().unwrap();
    assert_eq!(again.envelope().unwrap().id(), first.id(), "the vanished delivery comes back");
    assert_eq!(again.attempt(), 2, "counted as the second attempt");
    assert!(started.elapsed() < lease + Duration::from_secs(5), "soon after its lease expired");
    again.ack().await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(500), subscription.next()).await.is_err());
    let depth = bus.depth(&queue).await.unwrap();
    assert_eq!((depth.ready, depth.delayed, depth.leased, depth.dead), (0, 0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_handler_keeps_its_lease_and_another_process_does_not_get_the_message() {
    let file = File::new();
    let queue = QueueName::parse(&unique("renewed")).unwrap();
    let lease = Duration::from_millis(300);
    let holder = file.open(lease, &queue).await;
    let other = file.open(lease, &queue).await;
    holder.publish(&queue, &ping(1)).await.unwrap();

    let mut holding = holder.subscribe(&queue, &one_at_a_time()).await.unwrap();
    let delivery = tokio::time::timeout(WAIT, holding.next()).await.unwrap().unwrap();
    let mut watching = other.subscribe(&queue, &one_at_a_time()).await.unwrap();
    // Five leases long: without renewal the other process would have claimed it.
    assert!(
        tokio::time::timeout(lease * 5, watching.next()).await.is_err(),
        "a message whose handler is still running was delivered elsewhere"
    );
    delivery.ack().await.unwrap();
    assert!(tokio::time::timeout(lease * 3, watching.next()).await.is_err(), "acked means gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_in_one_process_reaches_a_subscriber_in_another() {
    let file = File::new();
    let queue = QueueName::parse(&unique("shared")).unwrap();
    let consumer = file.open(Duration::from_secs(10), &queue).await;
    let producer = file.open(Duration::from_secs(10), &queue).await;
    let mut subscription = consumer.subscribe(&queue, &SubscribeOptions::default()).await.unwrap();
    // Let the subscriber go idle first, so only polling can find the message.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let envelope = ping(7);
    let published = Instant::now();
    producer.publish(&queue, &envelope).await.unwrap();
    let delivery = tokio::time::timeout(WAIT, subscription.next()).await.unwrap().unwrap();
    assert_eq!(delivery.envelope().unwrap(), &envelope);
    assert!(published.elapsed() < Duration::from_secs(5), "picked up after {:?}", published.elapsed());
    delivery.ack().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_outlive_the_process_and_can_be_replayed_from_another() {
    let file = File::new();
    let queue = QueueName::parse(&unique("dlq")).unwrap();
    let envelope = ping(3);
    {
        let bus = file.open(Duration::from_secs(10), &queue).await;
        bus.publish(&queue, &envelope).await.unwrap();
        let mut subscription = bus.subscribe(&queue, &SubscribeOptions::default()).await.unwrap();
        let delivery = tokio::time::timeout(WAIT, subscription.next()).await.unwrap().unwrap();
        delivery.dead_letter("poison").await.unwrap();
    }
    // An operator's tool: opens the file without provisioning, as `wharf dlq --bus sqlite` does.
    let tool = SqliteBus::open(&BusConfig { provision: false, ..file.config(Duration::from_secs(10)) }).await.unwrap();
    tool.check(&queue).await.unwrap();
    let letters = tool.dead_letters(&queue, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].id, envelope.id().to_string());
    assert_eq!(letters[0].reason.as_deref(), Some("poison"));
    assert_eq!(tool.replay(&queue, &wharf_bus::Replay::All).await.unwrap(), 1);

    let bus = file.open(Duration::from_secs(10), &queue).await;
    let mut subscription = bus.subscribe(&queue, &SubscribeOptions::default()).await.unwrap();
    let delivery = tokio::time::timeout(WAIT, subscription.next()).await.unwrap().unwrap();
    assert_eq!(delivery.envelope().unwrap().id(), envelope.id());
    assert_eq!(delivery.attempt(), 1, "a replay starts a fresh count");
    delivery.ack().await.unwrap();
}

/// The table as the first SQLite bus release created it, before `tracestate`.
const FIRST_SCHEMA: &str = "
CREATE TABLE bus_messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue          TEXT    NOT NULL,
    message_id     TEXT    NOT NULL,
    body           BLOB    NOT NULL,
    event_type     TEXT,
    event_version  INTEGER,
    correlation_id TEXT,
    traceparent    TEXT,
    published_at   INTEGER NOT NULL,
    visible_at     INTEGER NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    lease          TEXT,
    dead_reason    TEXT,
    dead_attempts  INTEGER,
    dead_at        INTEGER
);
CREATE INDEX bus_messages_due ON bus_messages (queue, visible_at, seq);
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_a_bus_file_from_an_older_release_adds_tracestate_and_keeps_its_messages() {
    use sqlx::Connection;

    let file = File::new();
    let queue = QueueName::parse(&unique("upgraded")).unwrap();
    std::fs::create_dir_all(&file.0).unwrap();
    let old = ping(1);
    {
        let url = format!("sqlite://{}/bus.db?mode=rwc", file.0.display());
        let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(FIRST_SCHEMA).execute(&mut connection).await.unwrap();
        sqlx::query(
            "INSERT INTO bus_messages (queue, message_id, body, event_type, event_version, correlation_id,
                published_at, visible_at) VALUES (?1, ?2, ?3, 'Ping', 1, ?4, 0, 0)",
        )
        .bind(queue.as_str())
        .bind(old.id().to_string())
        .bind(old.to_json())
        .bind(old.correlation_id())
        .execute(&mut connection)
        .await
        .unwrap();
        connection.close().await.unwrap();
    }

    // Two processes provision the old file at once; then once more (idempotent).
    let (a, b) = tokio::join!(file.open(Duration::from_secs(10), &queue), file.open(Duration::from_secs(10), &queue));
    b.provision(&queue).await.unwrap();
    let traced =
        Envelope::new(&Ping { n: 2 }, "corr-2", Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()))
            .unwrap()
            .with_tracestate(Some("wharf=1,congo=t61rcWkgMzE".into()));
    b.publish(&queue, &traced).await.unwrap();

    let mut subscription = a.subscribe(&queue, &one_at_a_time()).await.unwrap();
    let first = tokio::time::timeout(WAIT, subscription.next()).await.unwrap().unwrap();
    assert_eq!(first.envelope().unwrap().id(), old.id(), "the message written before the upgrade is delivered");
    assert_eq!(first.metadata().tracestate, None);
    first.ack().await.unwrap();
    let second = tokio::time::timeout(WAIT, subscription.next()).await.unwrap().unwrap();
    assert_eq!(second.envelope().unwrap(), &traced);
    assert_eq!(second.metadata().tracestate.as_deref(), Some("wharf=1,congo=t61rcWkgMzE"));
    second.ack().await.unwrap();
}

/// Processes starting together on one bus file: the first connection of each switches the file to
/// WAL, which SQLite does not let a second connection wait for. Every open must still succeed —
/// on a new file, and on one an older tool made without WAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_opening_one_file_at_once_all_open_it() {
    use sqlx::Connection;

    let queue = QueueName::parse(&unique("together")).unwrap();
    for round in 0..6 {
        let file = File::new();
        std::fs::create_dir_all(&file.0).unwrap();
        if round % 2 == 1 {
            let url = format!("sqlite://{}/bus.db?mode=rwc", file.0.display());
            let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(FIRST_SCHEMA).execute(&mut connection).await.unwrap();
            connection.close().await.unwrap();
        }
        let config = file.config(Duration::from_secs(10));
        let opens = (0..6).map(|_| SqliteBus::open(&config));
        for (process, opened) in futures_util::future::join_all(opens).await.into_iter().enumerate() {
            let bus = opened.unwrap_or_else(|err| panic!("round {round}, process {process}: {err}"));
            bus.provision(&queue).await.unwrap_or_else(|err| panic!("round {round}, process {process}: {err}"));
        }
    }
}
