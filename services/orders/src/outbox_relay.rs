//! The OutboxRelay actor: moves OrderPlaced events from the outbox to the bus.
//!
//! Supervised by the orders supervisor (`orders/outbox-relay`). Each round it claims a batch of
//! unpublished rows with a lease, publishes them in id order, and marks each row published only
//! after the bus confirmed it. It wakes at once when an order commits (the store's signal) and
//! also polls, for rows written by other replicas or left by a relay that died.
//!
//! When it dies mid-batch, the rows it claimed stay unpublished and become claimable again when
//! their lease ends, so nothing is lost; a row confirmed by the bus but not yet marked may be
//! published a second time, which is why every consumer deduplicates by event id. While the bus
//! is down it backs off exponentially and the outbox simply grows: orders keep being accepted.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use wharf_bus::{Bus, Envelope, QueueName};
use wharf_edge::{Check, CheckOutcome, CheckStatus};

use crate::store::{OrderStore, OutboxRow};

/// How the relay paces itself.
#[derive(Debug, Clone, Copy)]
pub struct RelayConfig {
    /// Rows claimed per round.
    pub batch: i64,
    /// How long claimed rows are reserved for this relay.
    pub lease: Duration,
    /// How often it looks for rows without being woken.
    pub poll: Duration,
    /// First wait after a failed publish; doubles up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Longest wait between attempts while the bus is down.
    pub backoff_max: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch: 100,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(500),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// What the relay reports: metrics, and the outbox lag for `/health`.
#[derive(Debug, Clone)]
pub struct RelayStatus {
    /// Read by the health check directly, so the lag shows even when no relay runs.
    store: OrderStore,
    published: Counter,
    failures: Counter,
    pending: Gauge,
    oldest_age_seconds: Gauge<f64, AtomicU64>,
    /// Unix millis of the last failed publish (0: none since the last success).
    failing_since: Arc<AtomicI64>,
    last_error: Arc<std::sync::Mutex<Option<String>>>,
}

impl RelayStatus {
    /// Registers the relay's metrics; the health check reads the lag from `store`.
    pub fn register(registry: &mut Registry, store: OrderStore) -> Self {
        let status = Self {
            store,
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

    fn failed(&self, error: &str) {
        self.failures.inc();
        let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
        let _ = self.failing_since.compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error.to_owned());
        }
    }

    fn succeeded(&self) {
        self.published.inc();
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
            let lag = match self.store.outbox_lag().await {
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

/// The relay actor.
#[derive(Debug)]
pub struct OutboxRelay;

/// What a relay incarnation starts with.
#[derive(Debug, Clone)]
pub struct RelayArgs {
    /// Where the outbox is.
    pub store: OrderStore,
    /// Where events go.
    pub bus: Arc<dyn Bus>,
    /// The queue OrderPlaced is published to.
    pub queue: QueueName,
    /// Pacing.
    pub config: RelayConfig,
    /// Metrics and health.
    pub status: RelayStatus,
    /// Who claims rows: one value per service process, kept across relay restarts.
    pub owner: String,
}

/// The relay's messages.
#[derive(Debug)]
pub enum RelayMsg {
    /// Look for rows now (poll timer, or an order just committed).
    Run,
}

/// A relay incarnation's state.
#[derive(Debug)]
pub struct RelayState {
    args: RelayArgs,
    /// No publishing before this instant (backing off after a failure).
    resume_at: Instant,
    backoff: Duration,
    /// When the lag gauges were last refreshed: at most once per poll interval, not after every
    /// wake (a wake comes with every committed order).
    lag_refreshed: Option<Instant>,
}

impl Actor for OutboxRelay {
    type Msg = RelayMsg;
    type State = RelayState;
    type Arguments = RelayArgs;

    async fn pre_start(&self, myself: ActorRef<RelayMsg>, args: RelayArgs) -> Result<RelayState, ActorProcessingErr> {
        // Rows a previous incarnation claimed are free again at once (it is dead); rows of other
        // processes keep their leases.
        match args.store.release_claims_of(&args.owner).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "outbox rows of the previous relay released"),
            Err(err) => {
                tracing::warn!(error = %err, "could not release the previous relay's rows; their leases will expire")
            }
        }
        // The store's signal turns into a message; the task ends when this incarnation does.
        let signal = args.store.outbox_signal();
        let me = myself.clone();
        tokio::spawn(async move {
            loop {
                signal.notified().await;
                if me.send_message(RelayMsg::Run).is_err() {
                    break;
                }
            }
        });
        myself.send_interval(args.config.poll, || RelayMsg::Run);
        // A new incarnation starts with a round: rows may be waiting from before a restart.
        myself.send_message(RelayMsg::Run)?;
        let backoff = args.config.backoff_initial;
        Ok(RelayState { args, resume_at: Instant::now(), backoff, lag_refreshed: None })
    }

    async fn handle(
        &self,
        _myself: ActorRef<RelayMsg>,
        RelayMsg::Run: RelayMsg,
        state: &mut RelayState,
    ) -> Result<(), ActorProcessingErr> {
        if Instant::now() < state.resume_at {
            return Ok(());
        }
        match relay_rounds(&state.args).await {
            Ok(()) => state.backoff = state.args.config.backoff_initial,
            Err(error) => {
                tracing::warn!(error = %error, retry_in_ms = state.backoff.as_millis() as u64, "outbox relay backing off");
                state.resume_at = Instant::now() + state.backoff;
                state.backoff = (state.backoff * 2).min(state.args.config.backoff_max);
            }
        }
        if state.lag_refreshed.is_none_or(|at| at.elapsed() >= state.args.config.poll) {
            refresh_lag(&state.args).await;
            state.lag_refreshed = Some(Instant::now());
        }
        Ok(())
    }
}

/// Claims and publishes batches until the outbox is drained or a publish fails.
async fn relay_rounds(args: &RelayArgs) -> Result<(), String> {
    loop {
        let rows = args
            .store
            .claim_outbox(&args.owner, args.config.batch, args.config.lease)
            .await
            .map_err(|e| e.to_string())?;
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= args.config.batch;
        let mut rows = rows.into_iter();
        while let Some(row) = rows.next() {
            if let Err(error) = publish(args, &row).await {
                args.status.failed(&error);
                // Give this row and the rest of the batch back now rather than at lease end.
                for unsent in std::iter::once(row).chain(rows) {
                    if let Err(err) = args.store.release(unsent.id, &error).await {
                        tracing::warn!(error = %err, row = unsent.id, "could not release an outbox row; its lease will expire");
                    }
                }
                return Err(error);
            }
            args.status.succeeded();
        }
        if !full {
            return Ok(());
        }
    }
}

async fn publish(args: &RelayArgs, row: &OutboxRow) -> Result<(), String> {
    let envelope = Envelope::from_json(row.envelope.as_bytes())
        .map_err(|e| format!("outbox row {} is not an envelope: {e}", row.id))?;
    args.bus.publish(&args.queue, &envelope).await.map_err(|e| e.to_string())?;
    // Confirmed by the bus: only now is the row done.
    if let Err(err) = args.store.mark_published(row.id).await {
        // The event is out; the row will be published again after its lease. Consumers dedupe.
        tracing::warn!(error = %err, row = row.id, event_id = %row.event_id, "published but not marked; it will be sent again");
    }
    tracing::debug!(row = row.id, event_id = %row.event_id, correlation_id = %row.correlation_id, attempt = row.attempts, "event published");
    Ok(())
}

async fn refresh_lag(args: &RelayArgs) {
    if let Ok(lag) = args.store.outbox_lag().await {
        args.status.pending.set(lag.pending);
        args.status.oldest_age_seconds.set(lag.oldest.map(|d| d.as_secs_f64()).unwrap_or(0.0));
    }
}
