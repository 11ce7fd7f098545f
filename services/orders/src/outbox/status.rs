//! What the relay reports: the outbox's metrics, and its lag and publish failures as the `outbox`
//! check on `/health`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use wharf_edge::{Check, CheckOutcome, CheckStatus};

use super::table::Outbox;

/// What the relay reports: metrics, and the outbox lag for `/health`.
#[derive(Debug, Clone)]
pub struct RelayStatus {
    /// Read by the health check directly, so the lag shows even when no relay runs.
    outbox: Outbox,
    pub(super) published: Counter,
    pub(super) failures: Counter,
    pub(super) pending: Gauge,
    pub(super) oldest_age_seconds: Gauge<f64, AtomicU64>,
    /// Unix millis of the last failed publish (0: none since the last success).
    failing_since: Arc<AtomicI64>,
    last_error: Arc<std::sync::Mutex<Option<String>>>,
}

impl RelayStatus {
    /// Registers the relay's metrics; the health check reads the lag from `outbox`.
    pub fn register(registry: &mut Registry, outbox: Outbox) -> Self {
        let status = Self {
            outbox,
            published: Counter::default(),
            failures: Counter::default(),
            pending: Gauge::default(),
            oldest_age_seconds: Gauge::default(),
            failing_since: Arc::default(),
            last_error: Arc::default(),
        };
        registry.register("outbox_published", "Outbox events confirmed by the bus", status.published.clone());
        registry.register("outbox_publish_failures", "Failed outbox publish attempts", status.failures.clone());
        registry.register("outbox_pending", "Outbox events not yet published", status.pending.clone());
        registry.register(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest unpublished outbox event",
            status.oldest_age_seconds.clone(),
        );
        status
    }

    pub(super) fn failed(&self, error: &str) {
        self.failures.inc();
        let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
        let _ = self.failing_since.compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error.to_owned());
        }
    }

    /// `count` events were confirmed by the bus.
    pub(super) fn succeeded(&self, count: usize) {
        if count == 0 {
            return;
        }
        self.published.inc_by(u64::try_from(count).unwrap_or(u64::MAX));
        self.failing_since.store(0, Ordering::Release);
    }
}

/// `/health` check `outbox`: the lag, and degraded while the bus refuses events. Never down:
/// the outbox exists so that orders keep being accepted while the bus is unavailable.
impl Check for RelayStatus {
    fn name(&self) -> &'static str {
        "outbox"
    }

    fn check(&self) -> futures_util::future::BoxFuture<'_, CheckOutcome> {
        Box::pin(async move {
            let lag = match self.outbox.lag().await {
                Ok(lag) => {
                    let oldest = lag.oldest.map(|d| d.as_secs_f64()).unwrap_or(0.0);
                    format!("{} pending, oldest {oldest:.1} s", lag.pending)
                }
                Err(err) => format!("lag unknown: {err}"),
            };
            if self.failing_since.load(Ordering::Acquire) == 0 {
                CheckOutcome::with(CheckStatus::Up, lag)
            } else {
                let error = self.last_error.lock().ok().and_then(|e| e.clone()).unwrap_or_default();
                CheckOutcome::with(CheckStatus::Degraded, format!("bus refusing events ({error}); {lag}"))
            }
        })
    }
}
