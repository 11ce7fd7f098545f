//! The order-events queue as `/metrics` shows it: events waiting in the bus
//! (`wharf_bus_queue_depth{queue}`), dead letters (`wharf_bus_dlq_depth{queue}`) and events the
//! consumer is handling (`wharf_consumer_in_flight`).
//!
//! The bus is asked on scrape, at most once per [`FRESH`]: a scrape reads the last answer and,
//! when it is older, starts the next question in the background, because encoding cannot wait on
//! the network and a scrape must not hang on a dead broker. So the broker sees a couple of small
//! calls every few seconds, whatever the scrape or message rate. The depth series are absent
//! until the first answer and while the bus does not answer (a stale figure would read as true).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use wharf_bus::{Bus, ConsumerHandle, Depth, QueueName};

/// How long one answer from the bus serves scrapes.
const FRESH: Duration = Duration::from_secs(5);

/// Collects the queue's series on every scrape; cheap to clone.
#[derive(Debug, Clone)]
pub struct QueueMetrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bus: Arc<dyn Bus>,
    queue: QueueName,
    consumer: ConsumerHandle,
    sample: Mutex<Sample>,
}

#[derive(Debug, Default)]
struct Sample {
    /// The last answer, `None` before the first and after a failed one.
    depth: Option<Depth>,
    /// When the last question was asked.
    asked: Option<Instant>,
}

impl QueueMetrics {
    /// The series of `queue` on `bus`, consumed by `consumer`; asks the bus once straight away
    /// so the first scrape already has a figure.
    pub fn new(bus: Arc<dyn Bus>, queue: QueueName, consumer: ConsumerHandle) -> Self {
        let metrics = Self { inner: Arc::new(Inner { bus, queue, consumer, sample: Mutex::default() }) };
        metrics.ask_if_stale();
        metrics
    }

    fn sample(&self) -> std::sync::MutexGuard<'_, Sample> {
        self.inner.sample.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a question to the bus unless one was asked within [`FRESH`].
    fn ask_if_stale(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        {
            let mut sample = self.sample();
            if sample.asked.is_some_and(|asked| asked.elapsed() < FRESH) {
                return;
            }
            sample.asked = Some(Instant::now());
        }
        let metrics = self.clone();
        runtime.spawn(async move {
            let answer = metrics.inner.bus.queue_depth(&metrics.inner.queue).await;
            if let Err(err) = &answer {
                tracing::debug!(error = %err, queue = %metrics.inner.queue, "could not read the queue depth");
            }
            metrics.sample().depth = answer.ok();
        });
    }
}

impl Collector for QueueMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        self.ask_if_stale();
        let in_flight = ConstGauge::new(i64::try_from(self.inner.consumer.stats().in_flight).unwrap_or(i64::MAX));
        in_flight.encode(encoder.encode_descriptor(
            "consumer_in_flight",
            "Events the order-events consumer is handling",
            None,
            in_flight.metric_type(),
        )?)?;
        let Some(depth) = self.sample().depth else { return Ok(()) };
        let labels = [("queue", self.inner.queue.as_str())];
        let gauges = [
            ("bus_queue_depth", "Events waiting in the bus queue for a consumer", depth.waiting),
            ("bus_dlq_depth", "Events in the queue's dead-letter queue", depth.dead_letters),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            let mut descriptor = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(descriptor.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
