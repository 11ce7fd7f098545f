//! Shared by the bus test suites: the backends under test (each on fresh, uniquely named queues),
//! test events, a scriptable handler that records what it saw, and polling helpers.
// Each test binary uses only part of this module.
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wharf_actors::{Liveness, RestartPolicy, Supervisor, SupervisorHandle};
use wharf_bus::{
    BackendKind, Bus, BusConfig, ConsumerHandle, ConsumerOptions, DeliveryContext, Envelope, Event, EventKind, Handler,
    MemoryBus, Outcome, QueueName, SubscribeOptions,
};

/// A name no other test (or earlier run) uses: `prefix-<pid>-<counter>-<nanos>`.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// The test event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    pub n: u32,
}

impl Event for Ping {
    const TYPE: &'static str = "Ping";
    const VERSION: u32 = 1;
}

/// A breaking revision of [`Ping`] that consumers of v1 must refuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingV2 {
    pub label: String,
}

impl Event for PingV2 {
    const TYPE: &'static str = "Ping";
    const VERSION: u32 = 2;
}

pub fn ping(n: u32) -> Envelope {
    Envelope::new(&Ping { n }, format!("corr-{n}"), None).unwrap()
}

/// One backend under test, with a fresh queue.
pub struct Backend {
    pub bus: Arc<dyn Bus>,
    pub queue: QueueName,
    /// How a subscription polls (short waits for SQS, so tests stay fast).
    pub options: SubscribeOptions,
    /// A retry delay this backend honours precisely enough to assert on (SQS counts in seconds).
    pub retry_delay: Duration,
    /// How long to watch for an unwanted (re)delivery.
    pub quiet: Duration,
    cleanup: Option<Box<dyn FnOnce() -> futures_util::future::BoxFuture<'static, ()> + Send>>,
}

impl Backend {
    pub fn kind(&self) -> BackendKind {
        self.bus.backend()
    }

    /// Removes what the test created on a real broker.
    pub async fn finish(mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            cleanup().await;
        }
    }

    /// Consumer options for this backend with `prefetch` concurrent handlers.
    pub fn consumer_options(&self, prefetch: u16) -> ConsumerOptions {
        ConsumerOptions {
            subscribe: SubscribeOptions { prefetch, ..self.options.clone() },
            handler_timeout: Duration::from_secs(30),
            failure_delay: self.retry_delay,
            // Generous: under a loaded CI machine an SQS ack through moto can take a second or more,
            // and a graceful stop must wait for it.
            drain_timeout: Duration::from_secs(6),
        }
    }
}

fn config(max_attempts: u32) -> BusConfig {
    BusConfig { max_attempts, publish_timeout: Duration::from_secs(10), ..BusConfig::memory() }
}

pub async fn memory(max_attempts: u32) -> Backend {
    let queue = QueueName::parse(&unique("mem")).unwrap();
    let bus = MemoryBus::with_limits(10_000, max_attempts, Duration::from_secs(5));
    Backend {
        bus: Arc::new(bus),
        queue,
        options: SubscribeOptions { prefetch: 10, ..SubscribeOptions::default() },
        retry_delay: Duration::from_millis(300),
        quiet: Duration::from_millis(200),
        cleanup: None,
    }
}

/// A SQLite bus on a database file of its own, removed by [`Backend::finish`].
pub async fn sqlite(max_attempts: u32) -> Backend {
    let dir = std::env::temp_dir().join(unique("wharf-bus-sqlite"));
    let config = BusConfig {
        backend: BackendKind::Sqlite,
        sqlite_url: format!("sqlite://{}/bus.db?mode=rwc", dir.display()),
        ..config(max_attempts)
    };
    let bus = wharf_bus::connect(&config).await.unwrap();
    Backend {
        bus,
        queue: QueueName::parse(&unique("sqlite")).unwrap(),
        options: SubscribeOptions { prefetch: 10, ..SubscribeOptions::default() },
        retry_delay: Duration::from_millis(300),
        quiet: Duration::from_millis(500),
        cleanup: Some(Box::new(move || {
            Box::pin(async move {
                let _ = std::fs::remove_dir_all(dir);
            })
        })),
    }
}

#[cfg(feature = "integration")]
pub fn amqp_url() -> String {
    std::env::var("WHARF_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// A RabbitMQ bus whose connection is named `connection` (so a test can close exactly it).
#[cfg(feature = "integration")]
pub async fn rabbitmq_named(max_attempts: u32, connection: &str) -> Backend {
    let queue = QueueName::parse(&unique("amqp")).unwrap();
    let config = BusConfig { amqp_url: amqp_url(), ..config(max_attempts) };
    let bus = wharf_bus::RabbitBus::with_connection_name(&config, connection);
    bus.provision(&queue).await.unwrap_or_else(|err| panic!("RabbitMQ at {} must be reachable: {err}", amqp_url()));
    let retry_delay = Duration::from_millis(500);
    let cleanup_queue = queue.clone();
    Backend {
        bus: Arc::new(bus),
        queue,
        options: SubscribeOptions { prefetch: 10, ..SubscribeOptions::default() },
        retry_delay,
        quiet: Duration::from_millis(500),
        cleanup: Some(Box::new(move || Box::pin(delete_rabbitmq_queues(cleanup_queue, retry_delay)))),
    }
}

#[cfg(feature = "integration")]
pub async fn rabbitmq(max_attempts: u32) -> Backend {
    rabbitmq_named(max_attempts, &unique("wharf-bus-test")).await
}

#[cfg(feature = "integration")]
pub async fn delete_rabbitmq_queues(queue: QueueName, retry_delay: Duration) {
    use lapin::options::QueueDeleteOptions;
    let Ok(connection) = lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await else {
        return;
    };
    let names = [
        queue.to_string(),
        queue.dead_letter(),
        wharf_bus::rabbitmq::retry_queue_name(&queue, retry_delay),
        wharf_bus::rabbitmq::retry_queue_name(&queue, Duration::from_millis(100)),
    ];
    for name in names {
        // A channel per delete: deleting a queue that does not exist closes the channel.
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel.queue_delete(name.as_str().into(), QueueDeleteOptions::default()).await;
        }
    }
    let _ = connection.close(200, "test done".into()).await;
}

#[cfg(feature = "integration")]
pub fn sqs_endpoint() -> String {
    std::env::var("WHARF_TEST_SQS_ENDPOINT")
        .expect("WHARF_TEST_SQS_ENDPOINT must point at an SQS API (e.g. a moto server): see scripts/dev-services.sh")
}

/// An SQS client for the test endpoint; credentials from the environment, or moto's dummies.
#[cfg(feature = "integration")]
pub fn sqs_client() -> aws_sdk_sqs::Client {
    use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".to_owned());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test".to_owned());
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .endpoint_url(sqs_endpoint())
        .credentials_provider(Credentials::new(key, secret, None, None, "wharf-tests"))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

#[cfg(feature = "integration")]
pub async fn sqs(max_attempts: u32) -> Backend {
    let queue = QueueName::parse(&unique("sqs")).unwrap();
    let client = sqs_client();
    let bus = wharf_bus::SqsBus::with_client(client.clone(), &config(max_attempts));
    bus.provision(&queue).await.unwrap_or_else(|err| panic!("SQS at {} must be reachable: {err}", sqs_endpoint()));
    let cleanup_queue = queue.clone();
    Backend {
        bus: Arc::new(bus),
        queue,
        options: SubscribeOptions {
            prefetch: 10,
            poll_wait: Duration::from_secs(1),
            // Short, so the suite is quick, but with room for a busy moto server's latency.
            visibility_timeout: Duration::from_secs(4),
        },
        retry_delay: Duration::from_secs(1),
        // Longer than the visibility timeout: an unsettled message would be back by then.
        quiet: Duration::from_millis(4500),
        cleanup: Some(Box::new(move || {
            Box::pin(async move {
                for name in [cleanup_queue.to_string(), cleanup_queue.dead_letter()] {
                    if let Ok(url) = client.get_queue_url().queue_name(name).send().await
                        && let Some(url) = url.queue_url()
                    {
                        let _ = client.delete_queue().queue_url(url).send().await;
                    }
                }
            })
        })),
    }
}

/// What a [`Script`] handler saw of one delivery.
#[derive(Debug, Clone)]
pub struct Seen {
    pub envelope: Envelope,
    pub attempt: u32,
    pub at: Instant,
}

type Behaviour = dyn Fn(&Envelope, &DeliveryContext) -> futures_util::future::BoxFuture<'static, Outcome> + Send + Sync;

/// A handler that records every call and answers with a scripted outcome.
pub struct Script {
    accepts: Vec<EventKind>,
    seen: Mutex<Vec<Seen>>,
    behaviour: Box<Behaviour>,
}

impl Script {
    /// Accepts `Ping v1`; answers with `behaviour`.
    pub fn new(
        behaviour: impl Fn(&Envelope, &DeliveryContext) -> futures_util::future::BoxFuture<'static, Outcome>
        + Send
        + Sync
        + 'static,
    ) -> Arc<Self> {
        Arc::new(Self { accepts: vec![Ping::kind()], seen: Mutex::new(Vec::new()), behaviour: Box::new(behaviour) })
    }

    pub fn acking() -> Arc<Self> {
        Self::new(|_, _| Box::pin(async { Outcome::Ack }))
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn attempts_of(&self, envelope: &Envelope) -> Vec<u32> {
        self.seen().iter().filter(|s| s.envelope.id() == envelope.id()).map(|s| s.attempt).collect()
    }
}

impl Handler for Script {
    fn accepts(&self) -> Vec<EventKind> {
        self.accepts.clone()
    }

    fn handle(&self, envelope: &Envelope, context: &DeliveryContext) -> impl Future<Output = Outcome> + Send {
        self.seen.lock().unwrap().push(Seen {
            envelope: envelope.clone(),
            attempt: context.attempt,
            at: Instant::now(),
        });
        (self.behaviour)(envelope, context)
    }
}

/// A restart policy with tiny backoffs.
pub fn fast_policy() -> RestartPolicy {
    RestartPolicy {
        max_restarts: 20,
        window: Duration::from_secs(60),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
    }
}

/// Starts a consumer of `backend`'s queue running `handler`, under its own supervisor.
pub async fn start_consumer(
    backend: &Backend,
    handler: Arc<Script>,
    prefetch: u16,
) -> (SupervisorHandle, ConsumerHandle) {
    let (spec, handle) = wharf_bus::consumer(
        "consumer",
        Arc::clone(&backend.bus),
        backend.queue.clone(),
        handler,
        backend.consumer_options(prefetch),
    );
    let supervisor = Supervisor::start(unique("bus-test"), fast_policy(), Liveness::new(), vec![spec]).await.unwrap();
    (supervisor, handle)
}

/// Polls `check` every 20 ms until it yields `Some`, failing the test after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
