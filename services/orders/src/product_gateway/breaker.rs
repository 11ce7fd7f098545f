//! The circuit breaker in front of products: failsafe decides the transitions, the observer
//! mirrors them for metrics, logs, health and the open-circuit fast path, and schedules the
//! recovery probe.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use failsafe::backoff::{self, Constant};
use failsafe::failure_policy::{ConsecutiveFailures, consecutive_failures};
use failsafe::futures::CircuitBreaker as _;
use failsafe::{Instrument, StateMachine};
use time::OffsetDateTime;
use wharf_actors::PoolHandle;

use super::cache::ProductCache;
use super::config::GatewayConfig;
use super::exchange::{Answer, Failure};
use super::metrics::{GatewayMetrics, TransitionLabels};
use super::worker::{GatewayJob, GatewayWorker};

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
    pub(super) fn gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }
}

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
pub(super) struct Breaker {
    machine: Machine,
    pub(super) observer: BreakerObserver,
    /// Set while a probe attempt is in flight.
    probing: AtomicBool,
}

impl Breaker {
    pub(super) fn new(config: &GatewayConfig, metrics: GatewayMetrics) -> Self {
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

    pub(super) fn state(&self) -> BreakerState {
        self.observer.view().state
    }

    /// While the circuit is open and not yet due for a probe: how long until it is.
    pub(super) fn open_remaining(&self) -> Option<Duration> {
        let view = self.observer.view();
        if view.state != BreakerState::Open {
            return None;
        }
        let due = view.since + self.observer.0.open_for;
        due.checked_duration_since(Instant::now()).filter(|left| !left.is_zero())
    }

    /// Runs one attempt through the breaker, bounded by `timeout`; `Rejected` without running
    /// it while the circuit is open or another probe is in flight.
    pub(super) async fn call(
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
pub(super) struct BreakerObserver(Arc<ObserverState>);

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
pub(super) struct BreakerView {
    pub(super) state: BreakerState,
    /// When `state` was entered.
    pub(super) since: Instant,
    pub(super) since_wall: OffsetDateTime,
    /// How many times the circuit opened: tells a probe timer whether its open period is over.
    pub(super) opens: u64,
}

/// What a recovery probe needs: the pool to run it on and the cache to pick a product from.
#[derive(Debug)]
pub(super) struct Prober {
    pub(super) pool: PoolHandle<GatewayWorker>,
    pub(super) cache: Arc<ProductCache>,
}

impl BreakerObserver {
    pub(super) fn view(&self) -> BreakerView {
        *self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, BreakerView> {
        // The view is a plain value, always consistent: a poisoned lock still holds a usable one.
        self.0.view.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn enable_probes(&self, prober: Prober) {
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
            let job = GatewayJob {
                id,
                correlation_id: format!("breaker-probe-{}", uuid::Uuid::new_v4()),
                // A probe belongs to no request's trace.
                span: tracing::Span::none(),
            };
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
