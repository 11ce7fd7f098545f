//! The product gateway: the only way orders talks to products.
//!
//! Orders needs one fact from products — what a product is right now (name, price, stock) — and
//! must keep taking orders when products is slow or gone. The gateway owns everything that makes
//! that call safe:
//!
//! - **a bulkhead**: lookups run on a supervised [`wharf_actors::pool()`] of
//!   `PRODUCTS_CONCURRENCY` workers, so at most that many calls to products are in flight; at
//!   most `PRODUCTS_QUEUE` more wait, and a full queue answers at once instead of piling up;
//! - **timeouts and retries**: each attempt has `PRODUCTS_TIMEOUT_MS`; connect errors, timeouts,
//!   broken connections, 5xx, 408 and 429 are retried up to `PRODUCTS_RETRIES` times with
//!   exponential backoff and jitter, and never sooner than a `Retry-After` asks (a `Retry-After`
//!   longer than [`GatewayConfig::max_retry_after`] ends the lookup instead: a request in
//!   flight cannot wait that long). A 404 is an answer (the product does not exist); any other
//!   4xx is products refusing our request, which a retry would not change;
//! - **a circuit breaker** ([failsafe]) that opens after `BREAKER_FAILURES` consecutive failed
//!   *attempts*. Attempts, not whole lookups: with the defaults (3 retries, 5 failures) a dead
//!   products trips the circuit during the second order instead of the fifth, and every later
//!   order is answered at once instead of after four timeouts. A 404 or another 4xx is
//!   products answering, so it counts as a success. After `BREAKER_OPEN_SECS` one probe is let
//!   through (half-open; concurrent lookups keep being served from the cache rather than
//!   stampeding a recovering products): it closes the circuit or opens it again. The gateway
//!   sends that probe by itself — a refresh of the most recently cached product — so the
//!   circuit closes, and health turns `up` again, without waiting for an order;
//! - **a fallback cache** ([`ProductCache`]) of the last-known products, refreshed by every live
//!   200. While the circuit is open, or when a lookup fails, a cached product is returned as
//!   [`Source::Fallback`] with its age; an uncached one is [`GatewayError::Unavailable`] with a
//!   `Retry-After` (the time until the next probe, at least 1 s).
//!
//! The breaker, the cache and the metrics are shared by the workers and the handle: they live in
//! the [`ProductGateway`] and survive worker restarts. Each worker owns one HTTP client (one
//! connection to products), rebuilt when the worker restarts.
//!
//! Supervision: [`product_gateway()`] returns the pool's [`ChildSpec`] for the orders supervisor.
//! Lookups are idempotent reads, so a lookup whose worker dies is redelivered to another worker
//! (up to [`wharf_actors::pool::MAX_ATTEMPTS`] times); while the pool itself is restarting,
//! lookups are answered from the cache or as unavailable, never left hanging.
//!
//! One concept per file: [`config`] (the variables), [`answer`] (what a lookup returns and how the
//! edge words it), [`worker`] (the shared state and the pool's workers: retries, fallback),
//! [`exchange`] (one attempt on the wire), [`breaker`], [`cache`] and [`metrics`].

mod answer;
mod breaker;
pub mod cache;
mod config;
mod exchange;
mod metrics;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use prometheus_client::registry::Registry;
use time::format_description::well_known::Rfc3339;
use tokio::sync::OnceCell;
use tracing::Instrument;
use wharf_actors::{ChildSpec, PoolHandle, RestartPolicy, pool};
use wharf_edge::trace::TRACE_TARGET;
use wharf_edge::{Check, CheckOutcome, CheckStatus};

pub use self::answer::{GatewayError, Lookup, ProductSnapshot, Source};
pub use self::breaker::BreakerState;
use self::breaker::{Breaker, Prober};
use self::cache::ProductCache;
pub use self::config::GatewayConfig;
use self::metrics::GatewayMetrics;
use self::worker::{Gateway, GatewayJob, GatewayWorker};

/// The gateway's name under the orders supervisor; its workers are `product-gateway/{index}`.
pub const POOL_NAME: &str = "product-gateway";

/// The gateway pool's spec for the orders supervisor, and the handle to look products up with.
/// The metrics are registered into `registry`.
pub fn product_gateway(
    config: GatewayConfig,
    policy: RestartPolicy,
    registry: &mut Registry,
) -> (ChildSpec, ProductGateway) {
    let metrics = GatewayMetrics::register(registry);
    let cache = Arc::new(ProductCache::new(config.cache_size));
    let breaker = Breaker::new(&config, metrics.clone());
    let wait_limit = config.lookup_budget().saturating_mul(2);
    let (concurrency, queue) = (config.concurrency, config.queue);
    let gateway = Arc::new(Gateway { config, breaker, cache: Arc::clone(&cache), metrics, client: OnceCell::new() });
    let worker = Arc::new(GatewayWorker { gateway: Arc::clone(&gateway) });
    let (spec, pool) = pool(POOL_NAME, worker, concurrency, queue, policy);
    gateway.breaker.observer.enable_probes(Prober { pool: pool.clone(), cache });
    (spec, ProductGateway { gateway, pool, wait_limit })
}

/// Looks products up; cheap to clone. See the module documentation for what a lookup does.
#[derive(Debug, Clone)]
pub struct ProductGateway {
    gateway: Arc<Gateway>,
    pool: PoolHandle<GatewayWorker>,
    /// How long a caller waits for the pool: its own lookup plus one queued ahead of it. A
    /// backstop; the breaker normally answers long before.
    wait_limit: Duration,
}

impl ProductGateway {
    /// Product `id`, live or from the fallback cache. `correlation_id` is sent to products as
    /// `X-Correlation-ID` on every attempt (an empty or unusable id is not sent).
    /// The lookup is one CLIENT span (`GET /api/products/{id}`) in the request's trace; its
    /// retries, breaker rejections and cache answers are events on it, and products' SERVER
    /// span is its child.
    pub async fn lookup(&self, id: i64, correlation_id: &str) -> Result<Lookup, GatewayError> {
        let span = tracing::info_span!(
            target: TRACE_TARGET,
            "GET /api/products/{id}",
            otel.kind = "client",
            http.request.method = "GET",
            url.template = "/api/products/{id}",
            product.id = id,
        );
        let result = self.run(id, correlation_id, &span).instrument(span.clone()).await;
        self.gateway.metrics.record_lookup(&result);
        result
    }

    async fn run(&self, id: i64, correlation_id: &str, span: &tracing::Span) -> Result<Lookup, GatewayError> {
        // While the circuit is open there is nothing for a worker to do: answering here keeps
        // open-circuit lookups fast even when the pool is busy.
        if self.gateway.breaker.open_remaining().is_some() {
            self.gateway.metrics.rejections.inc();
            tracing::info!(target: TRACE_TARGET, "circuit open: products not asked");
            return self.gateway.fallback(id, "the circuit to products is open", None);
        }
        let job = GatewayJob { id, correlation_id: correlation_id.to_owned(), span: span.clone() };
        match tokio::time::timeout(self.wait_limit, self.pool.call(job)).await {
            Ok(Ok(result)) => result,
            Ok(Err(err)) => {
                tracing::warn!(product_id = id, error = %err, "product gateway did not run the lookup");
                self.gateway.fallback(id, &format!("the product gateway did not run the lookup ({err})"), None)
            }
            Err(_) => {
                tracing::warn!(product_id = id, limit = ?self.wait_limit, "product lookup did not finish in time");
                self.gateway.fallback(id, "the product lookup did not finish in time", None)
            }
        }
    }

    /// The circuit's current state.
    pub fn breaker_state(&self) -> BreakerState {
        self.gateway.breaker.state()
    }

    /// The `products` health check, for the edge.
    pub fn health(&self) -> ProductsHealth {
        ProductsHealth { gateway: Arc::clone(&self.gateway) }
    }
}

/// The `products` check on `/health` and `/health/ready`: `degraded` while the circuit is open or
/// half-open, `up` otherwise — never `down`.
///
/// Readiness stays 200 on purpose: when products is down every orders replica sees it at once,
/// and pulling them all out of service would turn a partial outage (no live prices) into a full
/// one (no orders at all, not even for cached products).
#[derive(Debug, Clone)]
pub struct ProductsHealth {
    gateway: Arc<Gateway>,
}

impl ProductsHealth {
    fn outcome(&self) -> CheckOutcome {
        let view = self.gateway.breaker.observer.view();
        let cached = self.gateway.cache.len();
        let since = view.since_wall.format(&Rfc3339).unwrap_or_default();
        match view.state {
            BreakerState::Closed => {
                CheckOutcome::with(CheckStatus::Up, format!("circuit closed; {cached} products cached"))
            }
            BreakerState::Open => {
                let probe_in = self.gateway.breaker.open_remaining().unwrap_or_default();
                CheckOutcome::with(
                    CheckStatus::Degraded,
                    format!(
                        "circuit open since {since}; next probe in {} s; serving from cache ({cached} products)",
                        probe_in.as_secs_f64().ceil()
                    ),
                )
            }
            BreakerState::HalfOpen => CheckOutcome::with(
                CheckStatus::Degraded,
                format!("circuit half-open since {since}, probing products; serving from cache ({cached} products)"),
            ),
        }
    }
}

impl Check for ProductsHealth {
    fn name(&self) -> &'static str {
        "products"
    }

    fn check(&self) -> BoxFuture<'_, CheckOutcome> {
        Box::pin(std::future::ready(self.outcome()))
    }
}
