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

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use failsafe::backoff::{self, Constant};
use failsafe::failure_policy::{ConsecutiveFailures, consecutive_failures};
use failsafe::futures::CircuitBreaker as _;
use failsafe::{Instrument, StateMachine};
use futures_util::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use ractor::ActorProcessingErr;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wharf_actors::{ChildSpec, PoolHandle, RestartPolicy, Worker, pool};
use wharf_edge::request::CORRELATION_HEADER;
use wharf_edge::{Check, CheckOutcome, CheckStatus, Problem};
use wharf_runtime::Env;
use wharf_runtime::error_chain;

use crate::product_cache::ProductCache;

/// The gateway's name under the orders supervisor; its workers are `product-gateway/{index}`.
pub const POOL_NAME: &str = "product-gateway";

/// The largest body read from products; a product is a few hundred bytes.
const MAX_BODY_BYTES: usize = 256 * 1024;

// ---------------------------------------------------------------------------------------------
// Configuration

/// How the gateway reaches products and how hard it tries.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `PRODUCTS_URL`: products' base URL, without a trailing slash.
    pub products_url: String,
    /// `PRODUCTS_TIMEOUT_MS`: the limit for one attempt (connect, request and body).
    pub timeout: Duration,
    /// `PRODUCTS_RETRIES`: attempts after the first one, for failures worth retrying.
    pub retries: u32,
    /// The backoff before the first retry; it doubles per retry (with jitter) up to `backoff_max`.
    pub backoff_initial: Duration,
    /// The longest backoff between two attempts.
    pub backoff_max: Duration,
    /// The longest `Retry-After` honoured by waiting; a longer one ends the lookup.
    pub max_retry_after: Duration,
    /// `BREAKER_FAILURES`: consecutive failed attempts that open the circuit.
    pub breaker_failures: u32,
    /// `BREAKER_OPEN_SECS`: how long the circuit stays open before a probe. A `Duration`, so
    /// tests can use milliseconds.
    pub breaker_open: Duration,
    /// `PRODUCT_CACHE_SIZE`: the most products kept for fallback answers (0 disables them).
    pub cache_size: usize,
    /// `PRODUCTS_CONCURRENCY`: gateway workers, i.e. the most lookups in flight to products.
    pub concurrency: usize,
    /// `PRODUCTS_QUEUE`: lookups that may wait for a worker before new ones are shed.
    pub queue: usize,
}

impl Default for GatewayConfig {
    /// The documented defaults (CONTRACT.md).
    fn default() -> Self {
        Self {
            products_url: "http://127.0.0.1:5000".to_owned(),
            timeout: Duration::from_millis(5000),
            retries: 3,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
            breaker_failures: 5,
            breaker_open: Duration::from_secs(30),
            cache_size: 10_000,
            concurrency: 32,
            queue: 64,
        }
    }
}

impl GatewayConfig {
    /// Reads the gateway's variables; bad values are recorded in `env` and replaced by defaults.
    pub fn from_env(env: &mut Env) -> Self {
        let defaults = Self::default();
        let products_url = env.parse(
            "PRODUCTS_URL",
            defaults.products_url.clone(),
            "an http:// or https:// base URL such as http://127.0.0.1:5000",
            parse_base_url,
        );
        let timeout = Duration::from_millis(env.integer("PRODUCTS_TIMEOUT_MS", 5000, 1..=600_000));
        let retries = env.integer("PRODUCTS_RETRIES", defaults.retries, 0..=10);
        let breaker_failures = env.integer("BREAKER_FAILURES", defaults.breaker_failures, 1..=10_000);
        let breaker_open = Duration::from_secs(env.integer("BREAKER_OPEN_SECS", 30, 1..=86_400));
        let cache_size = env.integer("PRODUCT_CACHE_SIZE", defaults.cache_size, 0..=10_000_000);
        let concurrency = env.integer("PRODUCTS_CONCURRENCY", defaults.concurrency, 1..=4096);
        let queue = env.integer("PRODUCTS_QUEUE", concurrency.saturating_mul(2), 1..=1_000_000);
        Self {
            products_url,
            timeout,
            retries,
            breaker_failures,
            breaker_open,
            cache_size,
            concurrency,
            queue,
            ..defaults
        }
    }

    /// The longest one lookup can take once a worker runs it: every attempt timing out, with
    /// the longest wait between attempts.
    pub fn lookup_budget(&self) -> Duration {
        let longest_wait = self.backoff_max.max(self.max_retry_after);
        self.timeout.saturating_mul(self.retries.saturating_add(1)) + longest_wait.saturating_mul(self.retries)
    }

    /// The wait before retry number `retry` (0-based): `backoff_initial × 2^retry`, capped at
    /// `backoff_max`, of which the upper half is random ("equal jitter"), so that lookups that
    /// failed together do not retry together, yet no retry comes immediately.
    fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        let ceiling = self.backoff_initial.saturating_mul(factor).min(self.backoff_max);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// An http(s) URL with a host and nothing after the path, without its trailing slash.
fn parse_base_url(value: &str) -> Option<String> {
    let url = reqwest::Url::parse(value).ok()?;
    let usable = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.query().is_none()
        && url.fragment().is_none();
    usable.then(|| value.trim_end_matches('/').to_owned())
}

// ---------------------------------------------------------------------------------------------
// What the gateway answers

/// What orders needs to know about a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSnapshot {
    /// The product's id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its price in whole cents (exact: converted from products' two-decimal number).
    pub price_cents: i64,
    /// Units in stock.
    pub stock: i32,
}

/// Where a found product came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// products answered this lookup.
    Live,
    /// products could not answer; this is the last-known snapshot, confirmed `age` ago.
    Fallback {
        /// Time since products last returned this snapshot.
        age: Duration,
    },
}

/// The answer to a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The product, live or from the fallback cache.
    Found {
        /// The snapshot.
        product: ProductSnapshot,
        /// Live, or a fallback with its age.
        source: Source,
    },
    /// products says there is no such product (a definite answer, never a fallback).
    NotFound,
}

/// Why a lookup has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// products cannot answer right now (down, slow, overloaded, or the circuit is open) and the
    /// product is not in the fallback cache. Transient: the edge answers 503 + `Retry-After`.
    #[error("products is unavailable and the product is not cached: {reason}")]
    Unavailable {
        /// When a retry has a chance: the time until the next probe, at least 1 s, whole seconds.
        retry_after: Duration,
        /// What went wrong, for logs and the problem's detail.
        reason: String,
    },
    /// products refused the request itself (a 4xx other than 404, 408 and 429): a bug or a
    /// misconfiguration between the services that retrying, or a stale cache, would only hide.
    /// The edge answers 502.
    #[error("products refused the lookup with HTTP {status}{}", detail_suffix(.detail))]
    Refused {
        /// products' status code.
        status: u16,
        /// products' problem detail, if it sent one.
        detail: String,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() { String::new() } else { format!(": {detail}") }
}

impl From<GatewayError> for Problem {
    fn from(error: GatewayError) -> Self {
        match error {
            GatewayError::Unavailable { retry_after, reason } => {
                let seconds = u32::try_from(retry_after.as_secs()).unwrap_or(u32::MAX).max(1);
                Problem::unavailable(format!("The product service is unavailable: {reason}."), seconds)
            }
            GatewayError::Refused { status, .. } => Problem::new(
                warp::http::StatusCode::BAD_GATEWAY,
                "bad-gateway",
                "Bad gateway",
                format!("The product service refused the lookup (HTTP {status})."),
            ),
        }
    }
}

/// The state of the circuit in front of products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Lookups go to products.
    Closed,
    /// One probe goes to products; other lookups are served from the cache.
    HalfOpen,
    /// Lookups are served from the cache without calling products.
    Open,
}

impl BreakerState {
    /// The `products_breaker_state` gauge's value.
    fn gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway: its spec, its handle, its health

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
    let gateway = Arc::new(Gateway { config, breaker, cache: Arc::clone(&cache), metrics });
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
    pub async fn lookup(&self, id: i64, correlation_id: &str) -> Result<Lookup, GatewayError> {
        let result = self.run(id, correlation_id).await;
        self.gateway.metrics.record_lookup(&result);
        result
    }

    async fn run(&self, id: i64, correlation_id: &str) -> Result<Lookup, GatewayError> {
        // While the circuit is open there is nothing for a worker to do: answering here keeps
        // open-circuit lookups fast even when the pool is busy.
        if self.gateway.breaker.open_remaining().is_some() {
            self.gateway.metrics.rejections.inc();
            return self.gateway.fallback(id, "the circuit to products is open", None);
        }
        let job = GatewayJob { id, correlation_id: correlation_id.to_owned() };
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

// ---------------------------------------------------------------------------------------------
// The shared state and the workers

/// What the handle and every worker share; outlives worker and pool restarts.
#[derive(Debug)]
struct Gateway {
    config: GatewayConfig,
    breaker: Breaker,
    cache: Arc<ProductCache>,
    metrics: GatewayMetrics,
}

/// One lookup for a worker.
#[derive(Debug)]
struct GatewayJob {
    id: i64,
    correlation_id: String,
}

/// A gateway worker: performs lookups one at a time with its own HTTP client.
#[derive(Debug)]
struct GatewayWorker {
    gateway: Arc<Gateway>,
}

impl Worker for GatewayWorker {
    type Job = GatewayJob;
    type Output = Result<Lookup, GatewayError>;
    type State = reqwest::Client;

    async fn init(&self) -> Result<reqwest::Client, ActorProcessingErr> {
        let client = reqwest::Client::builder()
            .connect_timeout(self.gateway.config.timeout)
            // products never redirects; following one would leave the timeout and breaker accounting.
            .redirect(reqwest::redirect::Policy::none())
            // One lookup at a time per worker: one idle connection is all it can reuse.
            .pool_max_idle_per_host(1)
            .user_agent(concat!("wharf-orders/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(client)
    }

    async fn perform(&self, client: &mut reqwest::Client, job: &GatewayJob) -> Self::Output {
        self.gateway.fetch(client, job).await
    }

    fn redeliver_on_death(&self, _job: &GatewayJob) -> bool {
        // A lookup is a read: running it twice is harmless.
        true
    }
}

/// What one attempt learned from products.
#[derive(Debug)]
enum Answer {
    /// 200 with the product.
    Product(ProductSnapshot),
    /// 404.
    Missing,
}

/// Why one attempt got no answer.
#[derive(Debug)]
enum Failure {
    /// No connection could be made (refused, unreachable, name not resolved).
    Connect(String),
    /// No complete answer within the per-attempt timeout.
    Timeout,
    /// The connection failed mid-exchange.
    Transport(String),
    /// 5xx, 408 or 429, with products' `Retry-After` if it sent one.
    Status { status: u16, retry_after: Option<Duration> },
    /// An answer that is not what the contract promises (a 200 that is not the product asked
    /// for, or an unexpected status): products is broken; retrying would not help.
    Malformed(String),
    /// A 4xx other than 404, 408 and 429: products refused our request.
    Refused { status: u16, detail: String },
}

impl Failure {
    /// Whether this attempt counts against products in the circuit breaker. A refusal is
    /// products answering: it says nothing about products' health.
    fn counts_against_products(&self) -> bool {
        !matches!(self, Self::Refused { .. })
    }

    /// Whether another attempt might succeed, and under which `products_retries` reason.
    fn retry_reason(&self) -> Option<&'static str> {
        match self {
            Self::Connect(_) => Some("connect"),
            Self::Timeout => Some("timeout"),
            Self::Transport(_) => Some("transport"),
            Self::Status { status: 429, .. } => Some("throttled"),
            Self::Status { status: 408, .. } => Some("request_timeout"),
            Self::Status { .. } => Some("server_error"),
            Self::Malformed(_) | Self::Refused { .. } => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn from_reqwest(err: reqwest::Error) -> Self {
        let err = err.without_url();
        if err.is_timeout() {
            Self::Timeout
        } else if err.is_connect() {
            Self::Connect(error_chain(&err))
        } else {
            Self::Transport(error_chain(&err))
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(err) => write!(f, "cannot connect to products ({err})"),
            Self::Timeout => write!(f, "products did not answer in time"),
            Self::Transport(err) => write!(f, "the connection to products failed ({err})"),
            Self::Status { status, .. } => write!(f, "products answered HTTP {status}"),
            Self::Malformed(why) => write!(f, "products sent an unusable answer ({why})"),
            Self::Refused { status, .. } => write!(f, "products refused the request with HTTP {status}"),
        }
    }
}

impl Gateway {
    /// A worker's lookup: attempts with retries through the breaker, then the cache.
    async fn fetch(&self, client: &reqwest::Client, job: &GatewayJob) -> Result<Lookup, GatewayError> {
        let url = format!("{}/api/products/{}", self.config.products_url, job.id);
        let headers = context_headers(&job.correlation_id);
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
    fn fallback(&self, id: i64, reason: &str, hint: Option<Duration>) -> Result<Lookup, GatewayError> {
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

/// The headers that carry a lookup's context to products: the correlation id today. The W3C
/// trace context (`traceparent`, `tracestate`) belongs here too once telemetry propagates it.
fn context_headers(correlation_id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if !correlation_id.is_empty() {
        match HeaderValue::from_str(correlation_id) {
            Ok(value) => {
                headers.insert(CORRELATION_HEADER, value);
            }
            // The edge only hands out header-safe ids; anything else is dropped, not a failure.
            Err(_) => tracing::debug!("correlation id is not a valid header value; not sent to products"),
        }
    }
    headers
}

/// One request to products and the reading of its answer (the caller bounds it in time).
async fn exchange(client: &reqwest::Client, url: &str, headers: HeaderMap, id: i64) -> Result<Answer, Failure> {
    let mut response = client.get(url).headers(headers).send().await.map_err(Failure::from_reqwest)?;
    let status = response.status().as_u16();
    match status {
        200 => parse_product(&read_body(&mut response).await?, id).map(Answer::Product),
        404 => Ok(Answer::Missing),
        408 | 429 | 500..=599 => Err(Failure::Status { status, retry_after: retry_after_header(response.headers()) }),
        400..=499 => {
            // The detail is only for the log: a body we cannot read does not change the verdict.
            let detail = read_body(&mut response).await.map(|body| problem_detail(&body)).unwrap_or_default();
            Err(Failure::Refused { status, detail })
        }
        other => Err(Failure::Malformed(format!("unexpected HTTP {other}"))),
    }
}

async fn read_body(response: &mut reqwest::Response) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Failure::from_reqwest)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Failure::Malformed(format!("a body over {MAX_BODY_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The fields of products' product JSON that orders uses; others are ignored.
#[derive(Deserialize)]
struct WireProduct {
    id: i64,
    name: String,
    price: f64,
    stock: i64,
}

/// A 200 body as a snapshot of product `id`.
fn parse_product(body: &[u8], id: i64) -> Result<ProductSnapshot, Failure> {
    let wire: WireProduct =
        serde_json::from_slice(body).map_err(|err| Failure::Malformed(format!("not a product: {err}")))?;
    if wire.id != id {
        return Err(Failure::Malformed(format!("asked for product {id}, got product {}", wire.id)));
    }
    let price_cents = price_cents(wire.price)
        .ok_or_else(|| Failure::Malformed(format!("price {} is not a non-negative amount of cents", wire.price)))?;
    let stock = i32::try_from(wire.stock)
        .ok()
        .filter(|units| *units >= 0)
        .ok_or_else(|| Failure::Malformed(format!("stock {} is out of range", wire.stock)))?;
    Ok(ProductSnapshot { id, name: wire.name, price_cents, stock })
}

/// A price (a JSON number with at most two decimals, as products sends it) in exact cents.
///
/// Multiplying by 100 would round (`19.99 * 100.0` is `1998.9999999999998`); instead this reads
/// the number's shortest decimal form, which is what products wrote (`cents / 100`, correctly
/// rounded, prints as exactly the two-decimal value) — the same reasoning as products' `Price`.
fn price_cents(price: f64) -> Option<i64> {
    if !price.is_finite() || price < 0.0 {
        return None;
    }
    // `Display` for f64 prints the shortest digits that round-trip, never in exponent form.
    let text = price.to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if fraction.len() > 2 {
        return None;
    }
    let whole: i64 = whole.trim_start_matches('-').parse().ok()?;
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(fraction)
}

/// `Retry-After` in delay-seconds. The HTTP-date form is not used by wharf services and is
/// ignored (the backoff applies).
fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The `detail` of a problem+json body, or nothing.
fn problem_detail(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|problem| problem.get("detail")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The circuit breaker

/// failsafe's state machine with the gateway's policy: open after `breaker_failures`
/// consecutive failed attempts, for a constant `breaker_open`.
type Machine = StateMachine<ConsecutiveFailures<Constant>, BreakerObserver>;

/// The circuit breaker in front of products, shared by the handle and all workers.
///
/// failsafe decides the transitions; [`BreakerObserver`] mirrors them (failsafe does not expose
/// its state) for metrics, logs, health and the open-circuit fast path; the probe gate lets only
/// one attempt through while the circuit is not closed (failsafe's half-open state admits every
/// caller).
#[derive(Debug)]
struct Breaker {
    machine: Machine,
    observer: BreakerObserver,
    /// Set while a probe attempt is in flight.
    probing: AtomicBool,
}

impl Breaker {
    fn new(config: &GatewayConfig, metrics: GatewayMetrics) -> Self {
        let observer = BreakerObserver(Arc::new(ObserverState {
            view: Mutex::new(BreakerView {
                state: BreakerState::Closed,
                since: Instant::now(),
                since_wall: OffsetDateTime::now_utc(),
                opens: 0,
            }),
            failures: config.breaker_failures,
            open_for: config.breaker_open,
            metrics,
            prober: OnceLock::new(),
        }));
        let policy = consecutive_failures(config.breaker_failures, backoff::constant(config.breaker_open));
        let machine = StateMachine::new(policy, observer.clone());
        Self { machine, observer, probing: AtomicBool::new(false) }
    }

    fn state(&self) -> BreakerState {
        self.observer.view().state
    }

    /// While the circuit is open and not yet due for a probe: how long until it is.
    fn open_remaining(&self) -> Option<Duration> {
        let view = self.observer.view();
        if view.state != BreakerState::Open {
            return None;
        }
        let due = view.since + self.observer.0.open_for;
        due.checked_duration_since(Instant::now()).filter(|left| !left.is_zero())
    }

    /// Runs one attempt through the breaker, bounded by `timeout`; `Rejected` without running
    /// it while the circuit is open or another probe is in flight.
    async fn call(
        &self,
        attempt: impl Future<Output = Result<Answer, Failure>>,
        timeout: Duration,
    ) -> Result<Answer, failsafe::Error<Failure>> {
        let _probe = match self.state() {
            BreakerState::Closed => None,
            BreakerState::Open | BreakerState::HalfOpen => Some(self.try_probe().ok_or(failsafe::Error::Rejected)?),
        };
        let bounded = async { tokio::time::timeout(timeout, attempt).await.unwrap_or(Err(Failure::Timeout)) };
        self.machine.call_with(Failure::counts_against_products, bounded).await
    }

    fn try_probe(&self) -> Option<ProbePermit<'_>> {
        self.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| ProbePermit { probing: &self.probing })
    }
}

/// The right to send the one probe; released when the attempt ends, however it ends.
struct ProbePermit<'a> {
    probing: &'a AtomicBool,
}

impl Drop for ProbePermit<'_> {
    fn drop(&mut self) {
        self.probing.store(false, Ordering::Release);
    }
}

/// Receives failsafe's transitions: updates the view and metrics, logs, schedules probes.
#[derive(Debug, Clone)]
struct BreakerObserver(Arc<ObserverState>);

#[derive(Debug)]
struct ObserverState {
    view: Mutex<BreakerView>,
    /// `BREAKER_FAILURES`, for the log.
    failures: u32,
    /// `BREAKER_OPEN_SECS`.
    open_for: Duration,
    metrics: GatewayMetrics,
    /// Sends recovery probes; set once the pool exists.
    prober: OnceLock<Prober>,
}

/// The circuit as last reported by failsafe.
#[derive(Debug, Clone, Copy)]
struct BreakerView {
    state: BreakerState,
    /// When `state` was entered.
    since: Instant,
    since_wall: OffsetDateTime,
    /// How many times the circuit opened: tells a probe timer whether its open period is over.
    opens: u64,
}

/// What a recovery probe needs: the pool to run it on and the cache to pick a product from.
#[derive(Debug)]
struct Prober {
    pool: PoolHandle<GatewayWorker>,
    cache: Arc<ProductCache>,
}

impl BreakerObserver {
    fn view(&self) -> BreakerView {
        *self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, BreakerView> {
        // The view is a plain value, always consistent: a poisoned lock still holds a usable one.
        self.0.view.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn enable_probes(&self, prober: Prober) {
        let _ = self.0.prober.set(prober);
    }

    fn transition(&self, to: BreakerState) {
        let (from, opens) = {
            let mut view = self.lock();
            if view.state == to {
                // failsafe reports "closed" once at construction.
                return;
            }
            let from = view.state;
            *view = BreakerView {
                state: to,
                since: Instant::now(),
                since_wall: OffsetDateTime::now_utc(),
                opens: view.opens + u64::from(to == BreakerState::Open),
            };
            (from, view.opens)
        };
        let metrics = &self.0.metrics;
        metrics.breaker_state.set(to.gauge());
        metrics.transitions.get_or_create(&TransitionLabels { to: to.label() }).inc();
        let open_for_ms = u64::try_from(self.0.open_for.as_millis()).unwrap_or(u64::MAX);
        match to {
            BreakerState::Open => {
                tracing::warn!(
                    from = from.label(),
                    failures = self.0.failures,
                    open_for_ms,
                    "products circuit opened: lookups are served from the fallback cache"
                );
                self.schedule_probe(opens);
            }
            BreakerState::HalfOpen => tracing::info!("products circuit half-open: probing products"),
            BreakerState::Closed => {
                tracing::info!(from = from.label(), "products circuit closed: products answers again")
            }
        }
    }

    /// After the open period, refreshes the most recently cached product through the pool; that
    /// lookup is the probe which closes or reopens the circuit. With nothing cached there is
    /// nothing to serve meanwhile either: the next lookup probes.
    fn schedule_probe(&self, opens: u64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let observer = self.clone();
        runtime.spawn(async move {
            tokio::time::sleep(observer.0.open_for).await;
            let view = observer.view();
            if view.state != BreakerState::Open || view.opens != opens {
                return; // a lookup already probed, or this open period is over
            }
            let Some(prober) = observer.0.prober.get() else { return };
            let Some(id) = prober.cache.most_recent() else {
                tracing::debug!("no product cached to probe with; the next lookup probes products");
                return;
            };
            let job = GatewayJob { id, correlation_id: format!("breaker-probe-{}", uuid::Uuid::new_v4()) };
            if let Err(err) = prober.pool.submit(job) {
                tracing::debug!(error = %err, "could not queue the products probe; the next lookup probes");
            }
        });
    }
}

impl Instrument for BreakerObserver {
    fn on_call_rejected(&self) {
        // Counted by the gateway, which also sees the probe gate's rejections.
    }

    fn on_open(&self) {
        self.transition(BreakerState::Open);
    }

    fn on_half_open(&self) {
        self.transition(BreakerState::HalfOpen);
    }

    fn on_closed(&self) {
        self.transition(BreakerState::Closed);
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RetryLabels {
    reason: &'static str,
}

/// The gateway's metrics; clones share the same series.
#[derive(Debug, Clone)]
struct GatewayMetrics {
    breaker_state: Gauge,
    transitions: Family<TransitionLabels, Counter>,
    rejections: Counter,
    lookups: Family<OutcomeLabels, Counter>,
    retries: Family<RetryLabels, Counter>,
    cache_entries: Gauge,
}

impl GatewayMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            breaker_state: Gauge::default(),
            transitions: Family::default(),
            rejections: Counter::default(),
            lookups: Family::default(),
            retries: Family::default(),
            cache_entries: Gauge::default(),
        };
        registry.register(
            "products_breaker_state",
            "State of the circuit breaker in front of products: 0 closed, 1 half-open, 2 open",
            metrics.breaker_state.clone(),
        );
        registry.register(
            "products_breaker_transitions",
            "Circuit breaker transitions, by the state entered",
            metrics.transitions.clone(),
        );
        registry.register(
            "products_breaker_rejections",
            "Product lookups answered without calling products because the circuit was open",
            metrics.rejections.clone(),
        );
        registry.register(
            "products_lookups",
            "Product lookups by outcome: live, fallback, not_found, unavailable, refused",
            metrics.lookups.clone(),
        );
        registry.register("products_retries", "Retried calls to products, by reason", metrics.retries.clone());
        registry.register(
            "products_cache_entries",
            "Products held in the fallback cache",
            metrics.cache_entries.clone(),
        );
        // Every series exists from the start, so rates and alerts see zeros rather than gaps.
        for outcome in ["live", "fallback", "not_found", "unavailable", "refused"] {
            let _ = metrics.lookups.get_or_create(&OutcomeLabels { outcome });
        }
        for state in [BreakerState::Closed, BreakerState::HalfOpen, BreakerState::Open] {
            let _ = metrics.transitions.get_or_create(&TransitionLabels { to: state.label() });
        }
        metrics
    }

    fn record_lookup(&self, result: &Result<Lookup, GatewayError>) {
        let outcome = match result {
            Ok(Lookup::Found { source: Source::Live, .. }) => "live",
            Ok(Lookup::Found { source: Source::Fallback { .. }, .. }) => "fallback",
            Ok(Lookup::NotFound) => "not_found",
            Err(GatewayError::Unavailable { .. }) => "unavailable",
            Err(GatewayError::Refused { .. }) => "refused",
        };
        self.lookups.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn prices_convert_to_exact_cents() {
        for (price, cents) in [
            (19.99, 1999),
            (0.1, 10),
            (0.0, 0),
            (5.0, 500),
            (0.07, 7),
            (1_234_567.89, 123_456_789),
            (999_999_999.99, 99_999_999_999),
        ] {
            assert_eq!(price_cents(price), Some(cents), "{price}");
        }
        for bad in [1.005, -1.0, f64::NAN, f64::INFINITY, 1e300] {
            assert_eq!(price_cents(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_product_body_is_parsed_and_checked() {
        let body = br#"{"id":7,"name":"Lamp","price":19.99,"description":"","stock":3,"createdAt":"x"}"#;
        let product = parse_product(body, 7).unwrap();
        assert_eq!(product, ProductSnapshot { id: 7, name: "Lamp".into(), price_cents: 1999, stock: 3 });
        assert!(matches!(parse_product(body, 8), Err(Failure::Malformed(_))));
        assert!(matches!(parse_product(br#"{"id":7,"name":"x","price":1,"stock":-1}"#, 7), Err(Failure::Malformed(_))));
        assert!(matches!(parse_product(b"<html>", 7), Err(Failure::Malformed(_))));
    }

    #[test]
    fn retry_after_takes_delay_seconds_only() {
        let header = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_str(value).unwrap());
            retry_after_header(&headers)
        };
        assert_eq!(header("3"), Some(Duration::from_secs(3)));
        assert_eq!(header(" 0 "), Some(Duration::ZERO));
        assert_eq!(header("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(header("-1"), None);
        assert_eq!(retry_after_header(&HeaderMap::new()), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_in_the_upper_half_and_is_capped() {
        let config = GatewayConfig {
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(350),
            ..GatewayConfig::default()
        };
        for _ in 0..100 {
            let first = config.backoff(0);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first), "{first:?}");
            let second = config.backoff(1);
            assert!((Duration::from_millis(100)..=Duration::from_millis(200)).contains(&second), "{second:?}");
            let capped = config.backoff(40);
            assert!((Duration::from_millis(175)..=Duration::from_millis(350)).contains(&capped), "{capped:?}");
        }
    }

    #[test]
    fn failures_decide_retries_and_breaker_accounting() {
        assert_eq!(Failure::Timeout.retry_reason(), Some("timeout"));
        assert_eq!(Failure::Status { status: 503, retry_after: None }.retry_reason(), Some("server_error"));
        assert_eq!(Failure::Status { status: 429, retry_after: None }.retry_reason(), Some("throttled"));
        assert_eq!(Failure::Malformed("x".into()).retry_reason(), None);
        let refused = Failure::Refused { status: 400, detail: String::new() };
        assert_eq!(refused.retry_reason(), None);
        assert!(!refused.counts_against_products());
        assert!(Failure::Malformed("x".into()).counts_against_products());
    }

    #[test]
    fn configuration_defaults_match_the_contract() {
        let mut env = Env::from_pairs([("PRODUCTS_URL", "https://products.internal:8443/")]);
        let config = GatewayConfig::from_env(&mut env);
        assert!(env.finish().is_ok());
        assert_eq!(config.products_url, "https://products.internal:8443");
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert_eq!(config.retries, 3);
        assert_eq!(config.breaker_failures, 5);
        assert_eq!(config.breaker_open, Duration::from_secs(30));
        assert_eq!(config.cache_size, 10_000);
        assert_eq!(config.concurrency, 32);
        assert_eq!(config.queue, 64);
        assert_eq!(GatewayConfig::from_env(&mut Env::default()).products_url, "http://127.0.0.1:5000");
    }

    #[test]
    fn every_bad_variable_is_recorded() {
        let mut env = Env::from_pairs([
            ("PRODUCTS_URL", "ftp://products"),
            ("PRODUCTS_TIMEOUT_MS", "0"),
            ("PRODUCTS_RETRIES", "many"),
            ("BREAKER_FAILURES", "0"),
            ("BREAKER_OPEN_SECS", "-1"),
            ("PRODUCT_CACHE_SIZE", "big"),
            ("PRODUCTS_CONCURRENCY", "0"),
        ]);
        let config = GatewayConfig::from_env(&mut env);
        let text = env.finish().unwrap_err().to_string();
        for variable in [
            "PRODUCTS_URL",
            "PRODUCTS_TIMEOUT_MS",
            "PRODUCTS_RETRIES",
            "BREAKER_FAILURES",
            "BREAKER_OPEN_SECS",
            "PRODUCT_CACHE_SIZE",
            "PRODUCTS_CONCURRENCY",
        ] {
            assert!(text.contains(&format!("invalid {variable}=")), "{variable} missing in:\n{text}");
        }
        assert_eq!(config.products_url, "http://127.0.0.1:5000");
        for bad in ["http://", "http://host/?q=1", "not a url", "http://host/#x"] {
            assert_eq!(parse_base_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn unavailable_maps_to_503_with_whole_seconds_and_refused_to_502() {
        let problem = Problem::from(GatewayError::Unavailable {
            retry_after: Duration::from_secs(7),
            reason: "the circuit to products is open".into(),
        });
        assert_eq!(problem.status, 503);
        assert_eq!(problem.retry_after, Some(7));
        let problem = Problem::from(GatewayError::Refused { status: 401, detail: "no".into() });
        assert_eq!(problem.status, 502);
    }

    #[test]
    fn the_lookup_budget_covers_every_attempt_and_wait() {
        let config = GatewayConfig {
            timeout: Duration::from_millis(200),
            retries: 2,
            backoff_max: Duration::from_millis(50),
            max_retry_after: Duration::from_millis(10),
            ..GatewayConfig::default()
        };
        assert_eq!(config.lookup_budget(), Duration::from_millis(700));
    }
}
