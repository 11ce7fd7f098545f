//! Consuming from the SQLite bus: the feeder that claims due messages, the renewer that keeps the
//! subscription's leases alive, and the settler of one delivery.
//!
//! The feeder never holds more than `prefetch` unsettled messages: it takes one permit per message
//! before claiming (up to [`CLAIM_BATCH`] at a time) and each delivery returns its permit when
//! settled. Every message a subscription holds carries its lease token, so one statement renews
//! them all.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use uuid::Uuid;

use super::{BACKEND, Store, after_ms, now_ms, sqlite_error};
use crate::BoxFuture;
use crate::delivery::{DeadLetterNote, Delivery, Received, Settler};
use crate::error::{BusError, SettleFailure};
use crate::message::Metadata;
use crate::queue::QueueName;
use crate::subscription::{AbortOnDrop, Feed, Subscription};

/// Messages claimed by one statement, at most.
const CLAIM_BATCH: usize = 128;

/// How often an idle feeder looks for messages published by another process (those published in
/// this one wake it at once).
const POLL: Duration = Duration::from_millis(200);

/// What every delivery of one subscription shares.
struct Lease {
    store: Arc<Store>,
    queue: QueueName,
    /// This subscription's lease token.
    token: String,
}

pub(super) fn subscribe(store: Arc<Store>, queue: QueueName, prefetch: usize) -> Subscription {
    let name = queue.clone();
    Subscription::spawn(name, BACKEND, prefetch, move |feed| async move {
        let lease = Arc::new(Lease { store, queue, token: Uuid::new_v4().to_string() });
        // Lives as long as the subscription: deliveries already handed out may still be settling
        // after the feeder stopped (a consumer draining).
        let _renewer = AbortOnDrop(tokio::spawn(renew(Arc::clone(&lease))));
        feed_sqlite(lease, feed, prefetch).await;
        std::future::pending::<()>().await;
    })
}

/// What one claim found.
enum Claimed {
    Deliveries(Vec<Delivery>),
    /// Nothing due; the earliest time something may become due (a retry, a lease expiring).
    Nothing {
        next_due: Option<i64>,
    },
}

async fn feed_sqlite(lease: Arc<Lease>, mut feed: Feed, prefetch: usize) {
    let unsettled = Arc::new(Semaphore::new(prefetch));
    let mut backoff = Duration::from_millis(100);
    loop {
        let first = tokio::select! {
            permit = Arc::clone(&unsettled).acquire_owned() => permit,
            () = feed.stopped() => return,
        };
        // The semaphore is never closed.
        let Ok(first) = first else { return };
        let mut permits = vec![first];
        while permits.len() < CLAIM_BATCH {
            match Arc::clone(&unsettled).try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        // Registered before claiming, so a publish between the claim and the wait is not missed.
        let wake = lease.store.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        // The claim runs in a task of its own: if this subscription is dropped mid-claim, the
        // claim still completes and the deliveries it made are dropped, which releases them at
        // once rather than leaving them leased until the lease expires.
        let claim = tokio::spawn(claim(Arc::clone(&lease), permits));
        let Ok(claimed) = claim.await else { return };
        match claimed {
            Ok(Claimed::Deliveries(deliveries)) => {
                backoff = Duration::from_millis(100);
                for delivery in deliveries {
                    if !feed.send(delivery).await {
                        return;
                    }
                }
            }
            Ok(Claimed::Nothing { next_due }) => {
                backoff = Duration::from_millis(100);
                let now = now_ms();
                let until_due = next_due.map_or(POLL, |due| {
                    Duration::from_millis(u64::try_from(due.saturating_sub(now)).unwrap_or(0).saturating_add(1))
                });
                tokio::select! {
                    () = &mut wake => {}
                    () = tokio::time::sleep(until_due.min(POLL)) => {}
                    () = feed.stopped() => return,
                }
            }
            Err(err @ BusError::QueueNotFound { .. }) => {
                feed.fail(err).await;
                return;
            }
            Err(err) => {
                tracing::warn!(queue = %lease.queue, error = %err, retry_in = ?backoff, "SQLite bus claim failed");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = feed.stopped() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    seq: i64,
    message_id: String,
    body: Vec<u8>,
    event_type: Option<String>,
    event_version: Option<i64>,
    correlation_id: Option<String>,
    traceparent: Option<String>,
    tracestate: Option<String>,
    attempts: i64,
}

/// Leases up to one due message per permit to this subscription, counting the attempt.
async fn claim(lease: Arc<Lease>, mut permits: Vec<OwnedSemaphorePermit>) -> Result<Claimed, BusError> {
    const CLAIM: &str = "UPDATE bus_messages SET lease = ?1, visible_at = ?2, attempts = attempts + 1
        WHERE seq IN (
            SELECT seq FROM bus_messages WHERE queue = ?3 AND visible_at <= ?4 ORDER BY visible_at, seq LIMIT ?5
        )
        RETURNING seq, message_id, body, event_type, event_version, correlation_id, traceparent, tracestate,
            attempts";
    const NEXT_DUE: &str = "SELECT MIN(visible_at) FROM bus_messages WHERE queue = ?1";
    let store = &lease.store;
    let started = Instant::now();
    let now = now_ms();
    let mut rows: Vec<ClaimedRow> = sqlx::query_as(CLAIM)
        .bind(&lease.token)
        .bind(after_ms(now, store.lease))
        .bind(lease.queue.as_str())
        .bind(now)
        .bind(i64::try_from(permits.len()).unwrap_or(1))
        .fetch_all(&store.pool)
        .await
        .map_err(|err| sqlite_error("receive from", lease.queue.as_str(), started, &err))?;
    if rows.is_empty() {
        let (next_due,): (Option<i64>,) = sqlx::query_as(NEXT_DUE)
            .bind(lease.queue.as_str())
            .fetch_one(&store.pool)
            .await
            .map_err(|err| sqlite_error("receive from", lease.queue.as_str(), started, &err))?;
        return Ok(Claimed::Nothing { next_due });
    }
    // RETURNING does not promise an order: hand them out oldest first.
    rows.sort_by_key(|row| row.seq);
    let mut deliveries = Vec::with_capacity(rows.len());
    for row in rows {
        // One permit was taken per row the claim may return.
        let Some(permit) = permits.pop() else { break };
        deliveries.push(wrap(&lease, row, permit));
    }
    Ok(Claimed::Deliveries(deliveries))
}

fn wrap(lease: &Arc<Lease>, row: ClaimedRow, permit: OwnedSemaphorePermit) -> Delivery {
    let attempt = u32::try_from(row.attempts).unwrap_or(u32::MAX);
    let metadata = Metadata {
        event_type: row.event_type,
        event_version: row.event_version.and_then(|v| u32::try_from(v).ok()),
        correlation_id: row.correlation_id,
        traceparent: row.traceparent,
        tracestate: row.tracestate,
    };
    let received = Received {
        queue: lease.queue.clone(),
        message_id: Some(row.message_id),
        body: row.body,
        metadata,
        attempt,
        max_attempts: lease.store.max_attempts,
    };
    let settler = SqliteSettler { lease: Arc::clone(lease), seq: row.seq, attempts: row.attempts, _permit: permit };
    Delivery::new(received, Box::new(settler))
}

/// Renews every lease this subscription holds every third of the lease time.
async fn renew(lease: Arc<Lease>) {
    const RENEW: &str = "UPDATE bus_messages SET visible_at = ?1 WHERE queue = ?2 AND lease = ?3";
    let period = (lease.store.lease / 3).max(Duration::from_millis(100));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let renewed = sqlx::query(RENEW)
            .bind(after_ms(now_ms(), lease.store.lease))
            .bind(lease.queue.as_str())
            .bind(&lease.token)
            .execute(&lease.store.pool)
            .await;
        if let Err(err) = renewed {
            tracing::warn!(queue = %lease.queue, error = %err, "could not renew SQLite bus leases; they may expire");
        }
    }
}

/// Settles one SQLite delivery; holds one of the subscription's prefetch permits until then.
struct SqliteSettler {
    lease: Arc<Lease>,
    seq: i64,
    /// The attempt this delivery is: with the lease token, names exactly this delivery.
    attempts: i64,
    _permit: OwnedSemaphorePermit,
}

/// The row is not this delivery's any more: its lease expired and it was claimed again.
impl SqliteSettler {
    /// Runs `sql` (parameters `?1` seq, `?2` lease, `?3` attempts, then `extra`) on this
    /// delivery's row; fails if the row is no longer this delivery's.
    async fn settle(&self, sql: &'static str, extra: Extra) -> Result<(), SettleFailure> {
        let query = sqlx::query(sql).bind(self.seq).bind(&self.lease.token).bind(self.attempts);
        let query = match extra {
            Extra::None => query,
            Extra::Retry { due } => query.bind(due),
            Extra::DeadLetter { queue, reason, attempts, at } => {
                query.bind(queue).bind(reason).bind(i64::from(attempts)).bind(at)
            }
        };
        let started = Instant::now();
        let changed = query
            .execute(&self.lease.store.pool)
            .await
            .map_err(|err| sqlite_error("settle in", self.lease.queue.as_str(), started, &err))?
            .rows_affected();
        if changed == 1 { Ok(()) } else { Err(SettleFailure::LeaseLost) }
    }

    async fn dead_letter_row(&self, note: DeadLetterNote) -> Result<(), SettleFailure> {
        const SQL: &str = "UPDATE bus_messages
            SET queue = ?4, lease = NULL, visible_at = ?7, dead_reason = ?5, dead_attempts = ?6, dead_at = ?7
            WHERE seq = ?1 AND lease = ?2 AND attempts = ?3";
        let extra = Extra::DeadLetter {
            queue: self.lease.queue.dead_letter(),
            reason: note.reason,
            attempts: note.attempts,
            at: now_ms(),
        };
        self.settle(SQL, extra).await
    }
}

/// The parameters a settle statement takes beyond the row's identity.
enum Extra {
    None,
    Retry { due: i64 },
    DeadLetter { queue: String, reason: String, attempts: u32, at: i64 },
}

impl Settler for SqliteSettler {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), SettleFailure>> {
        const SQL: &str = "DELETE FROM bus_messages WHERE seq = ?1 AND lease = ?2 AND attempts = ?3";
        Box::pin(async move { self.settle(SQL, Extra::None).await })
    }

    fn retry(self: Box<Self>, delay: Duration, _attempts: u32) -> BoxFuture<'static, Result<(), SettleFailure>> {
        // The claim counts the next attempt.
        const SQL: &str = "UPDATE bus_messages SET lease = NULL, visible_at = ?4
            WHERE seq = ?1 AND lease = ?2 AND attempts = ?3";
        Box::pin(async move {
            self.settle(SQL, Extra::Retry { due: after_ms(now_ms(), delay) }).await?;
            // Waiting feeders look again: this may now be the earliest due message.
            self.lease.store.wake.notify_waiters();
            Ok(())
        })
    }

    fn dead_letter(self: Box<Self>, note: DeadLetterNote) -> BoxFuture<'static, Result<(), SettleFailure>> {
        Box::pin(async move { self.dead_letter_row(note).await })
    }

    fn release(self: Box<Self>) {
        // Back in line where it was, at once. Without a runtime (the process is ending) the lease
        // expiry does the same, only later.
        const SQL: &str = "UPDATE bus_messages SET lease = NULL, visible_at = published_at
            WHERE seq = ?1 AND lease = ?2 AND attempts = ?3";
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let attempts = u32::try_from(self.attempts).unwrap_or(u32::MAX);
            let released = if attempts >= self.lease.store.max_attempts {
                let reason = format!(
                    "exhausted {attempts} attempts: delivered {attempts} times without being settled (its consumer \
                     crashed or was killed each time)"
                );
                self.dead_letter_row(DeadLetterNote { reason, attempts }).await
            } else {
                self.settle(SQL, Extra::None).await
            };
            match released {
                Ok(()) => self.lease.store.wake.notify_waiters(),
                Err(err) => tracing::debug!(
                    queue = %self.lease.queue,
                    error = %err,
                    "could not release a SQLite bus message; it is delivered again when its lease expires"
                ),
            }
        });
    }
}
