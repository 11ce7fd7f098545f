//! The OutboxRelay actor: moves OrderPlaced events from the outbox to the bus.
//!
//! Supervised by the orders supervisor (`orders/outbox-relay`). Each round it claims a batch of
//! unpublished rows with a lease, publishes them (started in id order, confirms awaited together),
//! and marks rows published only after the bus confirmed each of them. It wakes at once when an order commits (the [`OutboxWritten`]
//! signal in its arguments, which the order store raises) and also polls, for rows written by
//! other replicas or left by a relay that died.
//!
//! When it dies mid-batch, the rows it claimed stay unpublished and become claimable again when
//! their lease ends, so nothing is lost; a row confirmed by the bus but not yet marked may be
//! published a second time, which is why every consumer deduplicates by event id. While the bus
//! is down it backs off exponentially and the outbox simply grows: orders keep being accepted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::Instrument;
use wharf_bus::{BackendKind, Bus, BusError, Envelope, Message, QueueName};
use wharf_edge::trace::{self, TRACE_TARGET};
use wharf_runtime::{Env, StoreError, error_chain};

use super::OutboxWritten;
use super::status::RelayStatus;
use super::table::{Outbox, OutboxRow};

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

impl RelayConfig {
    /// `OUTBOX_POLL_MS` and `OUTBOX_BATCH`; the lease and backoff are fixed.
    pub fn from_env(env: &mut Env) -> Self {
        let defaults = Self::default();
        let poll_ms = u64::try_from(defaults.poll.as_millis()).unwrap_or(u64::MAX);
        Self {
            poll: Duration::from_millis(env.integer("OUTBOX_POLL_MS", poll_ms, 10..=600_000)),
            batch: env.integer("OUTBOX_BATCH", defaults.batch, 1..=10_000),
            ..defaults
        }
    }
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

/// The relay actor (`orders/outbox-relay`); what it does and what a crash leaves behind is in the
/// module documentation.
#[derive(Debug)]
pub struct OutboxRelay;

/// What a relay incarnation starts with.
#[derive(Debug, Clone)]
pub struct RelayArgs {
    /// Where the events wait.
    pub outbox: Outbox,
    /// Raised by the order store after each commit: publish now rather than at the next poll.
    pub written: OutboxWritten,
    pub bus: Arc<dyn Bus>,
    /// The queue OrderPlaced is published to.
    pub queue: QueueName,
    pub config: RelayConfig,
    pub status: RelayStatus,
    /// Who claims rows: one value per service process, kept across relay restarts.
    pub owner: String,
}

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
        match args.outbox.release_claims_of(&args.owner).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "outbox rows of the previous relay released"),
            Err(err) => {
                tracing::warn!(error = %err, "could not release the previous relay's rows; their leases will expire")
            }
        }
        // The signal turns into a message; the task ends when this incarnation does.
        let written = args.written.clone();
        let me = myself.clone();
        tokio::spawn(async move {
            loop {
                written.raised().await;
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
                tracing::warn!(error = %error_chain(&error), retry_in_ms = state.backoff.as_millis() as u64, "outbox relay backing off");
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

/// Why a round stopped before the outbox was drained; the relay backs off and tries again.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The outbox could not be read.
    #[error("could not claim outbox rows")]
    Claim(#[source] StoreError),
    /// A row holds something that is not an envelope: written by a different version, or edited.
    #[error("outbox row {row} is not an envelope")]
    NotAnEnvelope {
        row: i64,
        #[source]
        source: serde_json::Error,
    },
    /// The bus did not confirm the event.
    #[error("the bus did not take the event")]
    Publish(#[source] BusError),
}

/// Claims and publishes batches until the outbox is drained or a publish fails. A batch's
/// publishes are started in id order and their confirms awaited together — the bus pipelines
/// them, so a batch costs about one confirm round trip, not one per row — and the confirmed rows
/// are then marked published in one statement.
async fn relay_rounds(args: &RelayArgs) -> Result<(), RelayError> {
    loop {
        let rows =
            args.outbox.claim(&args.owner, args.config.batch, args.config.lease).await.map_err(RelayError::Claim)?;
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= args.config.batch;
        let outcomes = join_all(rows.iter().map(|row| publish(args, row))).await;
        let mut confirmed = Vec::with_capacity(rows.len());
        let mut unsent = Vec::new();
        let mut failure = None;
        for (row, outcome) in rows.iter().zip(outcomes) {
            match outcome {
                Ok(()) => confirmed.push(row.id),
                Err(error) => {
                    unsent.push(row.id);
                    failure.get_or_insert(error);
                }
            }
        }
        // Confirmed by the bus: only now are the rows done.
        if let Err(err) = args.outbox.mark_published(&confirmed).await {
            // The events are out; the rows will be published again after their lease. Consumers dedupe.
            tracing::warn!(error = %err, rows = confirmed.len(), "published but not marked; they will be sent again");
        }
        args.status.succeeded(confirmed.len());
        if let Some(error) = failure {
            let reason = error_chain(&error);
            args.status.failed(&reason);
            // Give the rows that were not confirmed back now rather than at lease end.
            if let Err(err) = args.outbox.release(&unsent, &reason).await {
                tracing::warn!(error = %err, rows = unsent.len(), "could not release outbox rows; their leases will expire");
            }
            return Err(error);
        }
        if !full {
            return Ok(());
        }
    }
}

/// Publishes one row inside a PRODUCER span that continues the trace of the request that wrote
/// it (the row's `traceparent`); the message carries the producer span's own context, so the
/// consumer's span is its child.
async fn publish(args: &RelayArgs, row: &OutboxRow) -> Result<(), RelayError> {
    let span = tracing::info_span!(
        target: TRACE_TARGET,
        "publish",
        otel.name = %format_args!("{} publish", args.queue.as_str()),
        otel.kind = "producer",
        messaging.system = messaging_system(args.bus.backend()),
        messaging.operation.type = "send",
        messaging.destination.name = args.queue.as_str(),
        messaging.message.id = %row.event_id,
        correlation_id = %row.correlation_id,
    );
    trace::continue_from(&span, row.traceparent.as_deref(), row.tracestate.as_deref());
    publish_row(args, row, &span).instrument(span.clone()).await
}

async fn publish_row(args: &RelayArgs, row: &OutboxRow, span: &tracing::Span) -> Result<(), RelayError> {
    let envelope = Envelope::from_json(row.envelope.as_bytes())
        .map_err(|source| RelayError::NotAnEnvelope { row: row.id, source })?;
    let mut message = Message::from_envelope(&envelope);
    if let Some(traceparent) = trace::traceparent(span) {
        message.metadata.traceparent = Some(traceparent);
    }
    args.bus.publish_message(&args.queue, &message).await.map_err(RelayError::Publish)?;
    tracing::debug!(row = row.id, event_id = %row.event_id, correlation_id = %row.correlation_id, attempt = row.attempts, "event published");
    Ok(())
}

/// The `messaging.system` semantic-convention value of a bus backend.
/// Other backends go by their `BUS` word.
fn messaging_system(backend: BackendKind) -> &'static str {
    match backend.as_str() {
        "sqs" => "aws_sqs",
        other => other,
    }
}

async fn refresh_lag(args: &RelayArgs) {
    if let Ok(lag) = args.outbox.lag().await {
        args.status.pending.set(lag.pending);
        args.status.oldest_age_seconds.set(lag.oldest.map(|d| d.as_secs_f64()).unwrap_or(0.0));
    }
}
