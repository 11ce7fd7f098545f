//! Publish + consume throughput of each backend on this machine: N messages published with 64
//! publishes in flight (each confirmed), consumed with prefetch 64 and acked. Reports the publish
//! rate and the end-to-end rate (first publish to last ack).
//!
//! `cargo bench -p wharf-bus --bench throughput` — the memory and SQLite buses always (SQLite on
//! a fresh file in the temp directory, as durable as `wharf up`'s); RabbitMQ when
//! `WHARF_TEST_AMQP_URL` is set, SQS when `WHARF_TEST_SQS_ENDPOINT` is set (credentials from the
//! usual AWS variables, `test`/`test` otherwise). `WHARF_BENCH_MESSAGES` overrides the message
//! count of the memory, SQLite and RabbitMQ runs (SQS runs 1/40 of it: an emulator such as moto handles
//! a few dozen requests a second, so its figure measures the emulator, not SQS).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use wharf_bus::{
    BackendKind, Bus, BusConfig, Envelope, Event, MemoryBus, QueueName, RabbitBus, SqliteBus, SqsBus, SubscribeOptions,
};

#[derive(Serialize, Deserialize)]
struct Tick {
    n: usize,
}

impl Event for Tick {
    const TYPE: &'static str = "Tick";
    const VERSION: u32 = 1;
}

const IN_FLIGHT: usize = 64;

struct Figures {
    backend: &'static str,
    messages: usize,
    publish: Duration,
    total: Duration,
}

fn bench_queue(backend: &str) -> anyhow::Result<QueueName> {
    Ok(QueueName::parse(&format!("bench-{backend}-{}", std::process::id()))?)
}

async fn run(
    backend: &'static str,
    bus: Arc<dyn Bus>,
    messages: usize,
    options: SubscribeOptions,
) -> anyhow::Result<Figures> {
    let queue = bench_queue(backend)?;
    bus.provision(&queue).await.context("provision")?;
    let envelopes: Vec<Envelope> =
        (0..messages).map(|n| Envelope::new(&Tick { n }, format!("bench-{n}"), None)).collect::<Result<_, _>>()?;

    let acked = Arc::new(AtomicUsize::new(0));
    let mut subscription = bus.subscribe(&queue, &options).await.context("subscribe")?;
    let consumer = tokio::spawn({
        let acked = Arc::clone(&acked);
        async move {
            let mut acks = tokio::task::JoinSet::new();
            for _ in 0..messages {
                let Ok(Ok(delivery)) = tokio::time::timeout(Duration::from_secs(60), subscription.next()).await else {
                    break;
                };
                let acked = Arc::clone(&acked);
                acks.spawn(async move {
                    if delivery.ack().await.is_ok() {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                });
                while acks.try_join_next().is_some() {}
            }
            while acks.join_next().await.is_some() {}
            subscription
        }
    });

    let started = Instant::now();
    let failures = futures_util::stream::iter(envelopes.iter())
        .map(|envelope| bus.publish(&queue, envelope))
        .buffer_unordered(IN_FLIGHT)
        .filter(|result| std::future::ready(result.is_err()))
        .count()
        .await;
    let publish = started.elapsed();
    anyhow::ensure!(failures == 0, "{failures} publishes failed on {backend}");
    let subscription = consumer.await?;
    let total = started.elapsed();
    anyhow::ensure!(acked.load(Ordering::Relaxed) == messages, "{backend}: not every message was acked");
    drop(subscription);
    Ok(Figures { backend, messages, publish, total })
}

async fn delete_rabbitmq_queues(url: &str, queue: &QueueName) {
    let Ok(connection) = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await else { return };
    for name in [queue.to_string(), queue.dead_letter()] {
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel.queue_delete(name.as_str().into(), lapin::options::QueueDeleteOptions::default()).await;
        }
    }
    let _ = connection.close(200, "bench done".into()).await;
}

fn rate(messages: usize, elapsed: Duration) -> f64 {
    messages as f64 / elapsed.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let messages: usize = std::env::var("WHARF_BENCH_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let options = SubscribeOptions { prefetch: 64, ..SubscribeOptions::default() };
    let mut figures = Vec::new();

    let memory: Arc<dyn Bus> = Arc::new(MemoryBus::with_limits(messages, 5, Duration::from_secs(10)));
    figures.push(run("memory", memory, messages, options.clone()).await?);

    let dir = std::env::temp_dir().join(format!("wharf-bus-bench-{}", std::process::id()));
    let config = BusConfig {
        backend: BackendKind::Sqlite,
        sqlite_url: format!("sqlite://{}/bus.db?mode=rwc", dir.display()),
        ..BusConfig::memory()
    };
    let sqlite: Arc<dyn Bus> = Arc::new(SqliteBus::open(&config).await.context("open the SQLite bus")?);
    let result = run("sqlite", sqlite, messages, options.clone()).await;
    let _ = std::fs::remove_dir_all(&dir);
    figures.push(result?);

    if let Ok(url) = std::env::var("WHARF_TEST_AMQP_URL") {
        let config = BusConfig { amqp_url: url, ..BusConfig::memory() };
        let rabbit: Arc<dyn Bus> = Arc::new(RabbitBus::with_connection_name(&config, "wharf-bus-bench"));
        let result = run("rabbitmq", rabbit, messages, options.clone()).await;
        delete_rabbitmq_queues(&config.amqp_url, &bench_queue("rabbitmq")?).await;
        figures.push(result?);
    }

    if let Ok(endpoint) = std::env::var("WHARF_TEST_SQS_ENDPOINT") {
        use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
        let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".to_owned());
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test".to_owned());
        let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
        let client = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(region))
                .endpoint_url(endpoint)
                .credentials_provider(Credentials::new(key, secret, None, None, "wharf-bench"))
                .build(),
        );
        let sqs: Arc<dyn Bus> = Arc::new(SqsBus::with_client(client.clone(), &BusConfig::memory()));
        let sqs_options = SubscribeOptions { poll_wait: Duration::from_secs(1), ..options.clone() };
        let result = run("sqs", sqs, (messages / 40).max(1), sqs_options).await;
        let queue = bench_queue("sqs")?;
        for name in [queue.to_string(), queue.dead_letter()] {
            if let Ok(output) = client.get_queue_url().queue_name(name).send().await
                && let Some(url) = output.queue_url()
            {
                let _ = client.delete_queue().queue_url(url).send().await;
            }
        }
        figures.push(result?);
    }

    println!("{:<10} {:>9} {:>14} {:>16}", "backend", "messages", "publish msg/s", "end-to-end msg/s");
    for f in &figures {
        println!(
            "{:<10} {:>9} {:>14.0} {:>16.0}",
            f.backend,
            f.messages,
            rate(f.messages, f.publish),
            rate(f.messages, f.total)
        );
    }
    Ok(())
}
