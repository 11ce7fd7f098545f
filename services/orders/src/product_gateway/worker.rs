//! The state the handle and every worker share, and the workers themselves: a lookup's attempts
//! with retries through the breaker, then the fallback cache.

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorProcessingErr;
use tokio::sync::OnceCell;
use wharf_actors::Worker;
use wharf_edge::trace::TRACE_TARGET;

use super::answer::{GatewayError, Lookup, Source};
use super::breaker::{Breaker, BreakerState};
use super::cache::ProductCache;
use super::config::GatewayConfig;
use super::exchange::{Answer, Failure, context_headers, exchange};
use super::metrics::{GatewayMetrics, RetryLabels};

/// What the handle and every worker share; outlives worker and pool restarts.
#[derive(Debug)]
pub(super) struct Gateway {
    pub(super) config: GatewayConfig,
    pub(super) breaker: Breaker,
    pub(super) cache: Arc<ProductCache>,
    pub(super) metrics: GatewayMetrics,
    /// The HTTP client every worker uses, built by the first worker to start. Building one
    /// loads and parses the system's root certificates: once per worker, that was most of
    /// orders' start-up time off the database (docs/performance.md).
    pub(super) client: OnceCell<reqwest::Client>,
}

/// One lookup for a worker.
#[derive(Debug)]
pub(super) struct GatewayJob {
    pub(super) id: i64,
    pub(super) correlation_id: String,
    /// The lookup's CLIENT span: its context goes to products as `traceparent`, and the
    /// worker's retries are recorded on it.
    pub(super) span: tracing::Span,
}

/// A gateway worker: performs lookups one at a time with the gateway's HTTP client.
#[derive(Debug)]
pub(super) struct GatewayWorker {
    pub(super) gateway: Arc<Gateway>,
}

impl Worker for GatewayWorker {
    type Job = GatewayJob;
    type Output = Result<Lookup, GatewayError>;
    type State = reqwest::Client;

    async fn init(&self) -> Result<reqwest::Client, ActorProcessingErr> {
        let config = &self.gateway.config;
        let client = self
            .gateway
            .client
            .get_or_try_init(|| async {
                reqwest::Client::builder()
                    .connect_timeout(config.timeout)
                    // products never redirects; following one would leave the timeout and breaker
                    // accounting.
                    .redirect(reqwest::redirect::Policy::none())
                    // One lookup at a time per worker: a connection per worker is all they reuse.
                    .pool_max_idle_per_host(config.concurrency)
                    .user_agent(concat!("wharf-orders/", env!("CARGO_PKG_VERSION")))
                    .build()
            })
            .await?;
        Ok(client.clone())
    }

    async fn perform(&self, client: &mut reqwest::Client, job: &GatewayJob) -> Self::Output {
        self.gateway.fetch(client, job).await
    }

    fn redeliver_on_death(&self, _job: &GatewayJob) -> bool {
        // A lookup is a read: running it twice is harmless.
        true
    }
}

impl Gateway {
    /// A worker's lookup: attempts with retries through the breaker, then the cache.
    async fn fetch(&self, client: &reqwest::Client, job: &GatewayJob) -> Result<Lookup, GatewayError> {
        let url = format!("{}/api/products/{}", self.config.products_url, job.id);
        let headers = context_headers(&job.correlation_id, &job.span);
        let mut retry = 0;
        loop {
            let attempt = exchange(client, &url, headers.clone(), job.id);
            let failure = match self.breaker.call(attempt, self.config.timeout).await {
                Ok(Answer::Product(product)) => {
                    let cached = self.cache.refresh(product.clone());
                    self.metrics.cache_entries.set(i64::try_from(cached).unwrap_or(i64::MAX));
                    return Ok(Lookup::Found { product, source: Source::Live });
                }
                Ok(Answer::Missing) => {
                    let cached = self.cache.remove(job.id);
                    self.metrics.cache_entries.set(i64::try_from(cached).unwrap_or(i64::MAX));
                    return Ok(Lookup::NotFound);
                }
                Err(failsafe::Error::Rejected) => {
                    self.metrics.rejections.inc();
                    tracing::info!(target: TRACE_TARGET, parent: &job.span, "circuit open: attempt rejected");
                    return self.fallback(job.id, "the circuit to products is open", None);
                }
                Err(failsafe::Error::Inner(failure)) => failure,
            };
            if let Failure::Refused { status, detail } = failure {
                tracing::warn!(product_id = job.id, correlation_id = %job.correlation_id, status, %detail, "products refused a lookup");
                return Err(GatewayError::Refused { status, detail });
            }
            let Some((delay, reason)) = self.retry_delay(&failure, retry) else {
                tracing::warn!(
                    product_id = job.id,
                    correlation_id = %job.correlation_id,
                    attempts = retry + 1,
                    error = %failure,
                    "product lookup failed"
                );
                return self.fallback(job.id, &failure.to_string(), failure.retry_after());
            };
            tracing::debug!(
                product_id = job.id,
                correlation_id = %job.correlation_id,
                retry = retry + 1,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %failure,
                "retrying product lookup"
            );
            self.metrics.retries.get_or_create(&RetryLabels { reason }).inc();
            tracing::info!(target: TRACE_TARGET, parent: &job.span, retry = retry + 1, reason, error = %failure, "retry");
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }

    /// How long to wait before retrying after `failure` (retry number `retry`, 0-based), or
    /// `None` when the lookup should end now.
    fn retry_delay(&self, failure: &Failure, retry: u32) -> Option<(Duration, &'static str)> {
        let reason = failure.retry_reason()?;
        // An open circuit would reject the retry anyway: answer from the cache now.
        if retry >= self.config.retries || self.breaker.state() == BreakerState::Open {
            return None;
        }
        let backoff = self.config.backoff(retry);
        match failure.retry_after() {
            // products asked for more patience than a request in flight has.
            Some(asked) if asked > self.config.max_retry_after => None,
            Some(asked) => Some((backoff.max(asked), reason)),
            None => Some((backoff, reason)),
        }
    }

    /// The answer when products could not give one: the cached product, or unavailable.
    pub(super) fn fallback(&self, id: i64, reason: &str, hint: Option<Duration>) -> Result<Lookup, GatewayError> {
        match self.cache.get(id) {
            Some(cached) => {
                tracing::debug!(product_id = id, age_ms = u64::try_from(cached.age.as_millis()).unwrap_or(u64::MAX), %reason, "serving product from the fallback cache");
                Ok(Lookup::Found { product: cached.product, source: Source::Fallback { age: cached.age } })
            }
            None => Err(GatewayError::Unavailable { retry_after: self.retry_after(hint), reason: reason.to_owned() }),
        }
    }

    /// When a client may try again: until the next probe while the circuit is open, otherwise
    /// what products asked for (at most one open period); whole seconds, at least one.
    fn retry_after(&self, hint: Option<Duration>) -> Duration {
        let wait =
            self.breaker.open_remaining().unwrap_or_else(|| hint.unwrap_or_default().min(self.config.breaker_open));
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Duration::from_secs(seconds.max(1))
    }
}
