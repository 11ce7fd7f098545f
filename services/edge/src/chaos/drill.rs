//! The chaos drill in progress on one instance: the armed fault plan and the readiness override.
//!
//! Every request asks [`Drill::faults_for`] whether it should suffer; readiness probes ask
//! [`Drill::readiness_check`]. Only the `/admin/chaos/*` handlers and each order's own expiry
//! timer write. So the request path never takes a lock: while nothing is armed it pays one
//! relaxed atomic load, and while a plan is armed, one `arc-swap` load of the plan. Writers are
//! serialised by a mutex among themselves, which keeps "is this still the plan my timer was
//! set for?" a simple question.
//!
//! A plan ends by itself: its timer clears it (and says so in the log); until the timer has run,
//! the plan's own deadline keeps a late request from suffering it anyway.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::Serialize;
use warp::reply::Response;

use super::faults::{FaultPlan, whole_secs};
use crate::health::{CheckOutcome, CheckStatus};
use crate::request::SCOPE;

/// The route label of a request answered by an injected error: its route never ran.
const INJECTED_ROUTE: &str = "chaos";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// What chaos is doing to this instance right now.
#[derive(Debug)]
pub(crate) struct Drill {
    /// Whether a plan may be armed: the request path's only read while none is. A hint, not the
    /// truth — the truth is `faults`, read only when this is set.
    armed: AtomicBool,
    faults: ArcSwapOption<ActiveFaults>,
    /// The forced unreadiness, if any.
    unready: ArcSwapOption<Window>,
    /// Serialises writers (handlers and expiry timers); never taken by a request.
    writes: Mutex<()>,
    injected: Family<KindLabels, Counter>,
    /// The `latency` and `error` series of `injected`, fetched once.
    delayed: Counter,
    failed: Counter,
}

/// An armed plan and when it ends.
#[derive(Debug)]
pub(crate) struct ActiveFaults {
    plan: FaultPlan,
    until: Instant,
}

impl ActiveFaults {
    /// Time left, `None` once over.
    fn remaining(&self) -> Option<Duration> {
        self.until.checked_duration_since(Instant::now()).filter(|left| !left.is_zero())
    }
}

/// A forced unreadiness and when it ends.
#[derive(Debug)]
struct Window {
    duration_secs: u64,
    until: Instant,
}

impl Window {
    fn remaining(&self) -> Option<Duration> {
        self.until.checked_duration_since(Instant::now()).filter(|left| !left.is_zero())
    }
}

/// The body of `GET /admin/chaos` and of every chaos order's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChaosState {
    /// Supervised actors that `POST /admin/chaos/kill` accepts.
    actors: Vec<String>,
    /// The armed plan, `null` when none.
    faults: Option<FaultsView>,
    /// The forced unreadiness, `null` when none.
    readiness_override: Option<ReadinessView>,
    /// Faults injected since the process started.
    injected: Injected,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FaultsView {
    #[serde(flatten)]
    plan: FaultPlan,
    remaining_secs: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadinessView {
    ready: bool,
    duration_secs: u64,
    remaining_secs: u64,
}

#[derive(Debug, Serialize)]
struct Injected {
    latency: u64,
    error: u64,
}

impl Drill {
    /// Nothing armed, nothing injected.
    pub(crate) fn new() -> Self {
        let injected = Family::<KindLabels, Counter>::default();
        let delayed = injected.get_or_create(&KindLabels { kind: "latency" }).clone();
        let failed = injected.get_or_create(&KindLabels { kind: "error" }).clone();
        Self {
            armed: AtomicBool::new(false),
            faults: ArcSwapOption::empty(),
            unready: ArcSwapOption::empty(),
            writes: Mutex::new(()),
            injected,
            delayed,
            failed,
        }
    }

    /// Exposes `wharf_chaos_injected_total{kind="latency"|"error"}` (only where chaos is enabled).
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "chaos_injected",
            "Faults injected by chaos: requests delayed (latency) or answered with an error (error)",
            self.injected.clone(),
        );
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The guarded data is `()`: a panicking writer cannot have left it inconsistent.
        self.writes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The plan a request for `path` suffers, if any. While nothing is armed this is one relaxed
    /// atomic load: no lock, no allocation, no clock read.
    pub(crate) fn faults_for(&self, path: &str) -> Option<Arc<ActiveFaults>> {
        if !self.armed.load(Ordering::Relaxed) {
            return None;
        }
        let faults = self.faults.load_full()?;
        (faults.remaining().is_some() && faults.plan.applies_to(path)).then_some(faults)
    }

    /// Makes the request suffer `faults`: sleeps for the plan's latency, then answers for the
    /// route with the injected error if this request is one of those that fail.
    pub(crate) async fn inject(&self, faults: &ActiveFaults) -> Option<Response> {
        if let Some(delay) = faults.plan.delay() {
            self.delayed.inc();
            tokio::time::sleep(delay).await;
        }
        if !faults.plan.fails() {
            return None;
        }
        self.failed.inc();
        let _ = SCOPE.try_with(|scope| scope.route.set(INJECTED_ROUTE));
        Some(faults.plan.error(faults.remaining().unwrap_or_default()).into_response())
    }

    /// Arms `plan`, replacing any armed one; it disarms itself when its duration is over.
    pub(crate) fn arm(self: &Arc<Self>, plan: FaultPlan) {
        let duration = Duration::from_secs(plan.duration_secs);
        let active = Arc::new(ActiveFaults { plan, until: Instant::now() + duration });
        let replaced = {
            let _writing = self.lock();
            let replaced = self.faults.swap(Some(active.clone()));
            self.armed.store(true, Ordering::Relaxed);
            replaced.filter(|old| old.remaining().is_some())
        };
        let plan = &active.plan;
        tracing::warn!(
            faults = %plan.describe(),
            latency_ms = plan.latency_ms,
            latency_jitter_ms = plan.latency_jitter_ms,
            error_rate = plan.error_rate,
            error_status = plan.error_status,
            path_prefix = %plan.path_prefix,
            duration_secs = plan.duration_secs,
            replaced = replaced.map(|old| old.plan.describe()),
            "chaos: faults injected"
        );
        let drill = Arc::downgrade(self);
        let until = tokio::time::Instant::from_std(active.until);
        tokio::spawn(async move {
            tokio::time::sleep_until(until).await;
            if let Some(drill) = drill.upgrade() {
                drill.expire_faults(&active);
            }
        });
    }

    /// Disarms the plan, if any.
    pub(crate) fn clear(&self) {
        let cleared = {
            let _writing = self.lock();
            self.armed.store(false, Ordering::Relaxed);
            self.faults.swap(None)
        };
        match cleared.filter(|old| old.remaining().is_some()) {
            Some(old) => tracing::warn!(faults = %old.plan.describe(), "chaos: faults cleared on request"),
            None => tracing::warn!("chaos: clear requested; no faults were active"),
        }
    }

    /// The timer of `active` went off: disarm it unless another plan replaced it meanwhile.
    fn expire_faults(&self, active: &Arc<ActiveFaults>) {
        let _writing = self.lock();
        let current = self.faults.load();
        if current.as_ref().is_some_and(|current| Arc::ptr_eq(current, active)) {
            self.armed.store(false, Ordering::Relaxed);
            self.faults.store(None);
            tracing::warn!(
                faults = %active.plan.describe(),
                duration_secs = active.plan.duration_secs,
                "chaos: faults expired"
            );
        }
    }

    /// Makes readiness answer 503 for `duration_secs`, replacing any earlier override.
    pub(crate) fn force_unready(self: &Arc<Self>, duration_secs: u64) {
        let duration = Duration::from_secs(duration_secs);
        let window = Arc::new(Window { duration_secs, until: Instant::now() + duration });
        {
            let _writing = self.lock();
            self.unready.store(Some(window.clone()));
        }
        tracing::warn!(duration_secs, "chaos: readiness forced to 503 (liveness untouched)");
        let drill = Arc::downgrade(self);
        let until = tokio::time::Instant::from_std(window.until);
        tokio::spawn(async move {
            tokio::time::sleep_until(until).await;
            if let Some(drill) = drill.upgrade() {
                let _writing = drill.lock();
                let current = drill.unready.load();
                if current.as_ref().is_some_and(|current| Arc::ptr_eq(current, &window)) {
                    drill.unready.store(None);
                    tracing::warn!(duration_secs = window.duration_secs, "chaos: forced unreadiness expired");
                }
            }
        });
    }

    /// Ends a forced unreadiness now.
    pub(crate) fn restore_ready(&self) {
        let restored = {
            let _writing = self.lock();
            self.unready.swap(None)
        };
        match restored.filter(|old| old.remaining().is_some()) {
            Some(_) => tracing::warn!("chaos: readiness restored on request"),
            None => tracing::warn!("chaos: readiness restore requested; it was not forced"),
        }
    }

    /// The `chaos` check of `/health` and `/health/ready`: down while readiness is forced.
    pub(crate) fn readiness_check(&self) -> Option<CheckOutcome> {
        let window = self.unready.load_full()?;
        let left = window.remaining()?;
        Some(CheckOutcome::with(
            CheckStatus::Down,
            format!(
                "forced unready by chaos for {} s, {} s left (POST /admin/chaos/readiness {{\"ready\": true}} restores it)",
                window.duration_secs,
                whole_secs(left)
            ),
        ))
    }

    /// What is armed, what is forced and what was injected so far.
    pub(crate) fn state(&self, actors: Vec<String>) -> ChaosState {
        let faults = self.faults.load_full().and_then(|faults| {
            let left = faults.remaining()?;
            Some(FaultsView { plan: faults.plan.clone(), remaining_secs: whole_secs(left) })
        });
        let readiness_override = self.unready.load_full().and_then(|window| {
            let left = window.remaining()?;
            Some(ReadinessView { ready: false, duration_secs: window.duration_secs, remaining_secs: whole_secs(left) })
        });
        let injected = Injected { latency: self.delayed.get(), error: self.failed.get() };
        ChaosState { actors, faults, readiness_override, injected }
    }
}
