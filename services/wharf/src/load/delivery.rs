//! The delivery phase: after the load, poll the run's notifications until every order placed has
//! its email Sent (or Failed), which gives the end-to-end order→notification delay and the count
//! `--require-notified` checks.

use std::collections::HashMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::stats::record_micros;
use super::{Session, Stop};
use crate::client::{NotificationQuery, Order};
use crate::duration;

/// Page size of the notification poll after the load (the API's maximum).
const POLL_PAGE: usize = 1000;

/// What became of the notifications of the orders placed.
#[derive(Debug)]
pub(super) struct Delivery {
    pub(super) sent: u64,
    pub(super) failed: u64,
    /// Still Pending (or not created yet) when the wait ended.
    pub(super) missing: u64,
    /// Notification `sentAt` − order `createdAt`, in µs, of the Sent ones.
    pub(super) delay: Histogram<u64>,
    /// How long the wait took.
    pub(super) waited: Duration,
    /// Why the last poll failed, when it did.
    pub(super) last_error: Option<String>,
}

/// Polls the run's notifications until every order placed has one Sent or Failed, the wait is
/// over, or Ctrl-C.
pub(super) async fn await_delivery(
    session: &Session,
    orders: &[Order],
    wait: Duration,
    interrupted: &Stop,
) -> Result<Delivery, String> {
    let started = Instant::now();
    let deadline = started + wait;
    let mut pending: HashMap<i64, OffsetDateTime> = orders.iter().map(|order| (order.id, order.created_at)).collect();
    let mut delivery = Delivery {
        sent: 0,
        failed: 0,
        missing: 0,
        delay: Histogram::new(3).map_err(|err| format!("cannot create a histogram: {err}"))?,
        waited: Duration::ZERO,
        last_error: None,
    };
    if !pending.is_empty() {
        eprintln!(
            "wharf load: waiting up to {} for the notifications of {} orders",
            duration::human(wait),
            pending.len()
        );
    }
    // Notifications are listed in id order and never removed: everything before the first one
    // still Pending is settled and need not be read again.
    let mut settled_prefix = 0usize;
    while !pending.is_empty() && !interrupted.is_stopped() {
        let poll = poll_notifications(session, &mut pending, &mut delivery, &mut settled_prefix);
        match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), poll).await {
            Ok(Ok(())) => delivery.last_error = None,
            Ok(Err(err)) => delivery.last_error = Some(err),
            Err(_) => break,
        }
        if pending.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200).min(deadline.saturating_duration_since(Instant::now()))) => {}
            () = interrupted.stopped() => break,
        }
    }
    delivery.missing = pending.len() as u64;
    delivery.waited = started.elapsed();
    Ok(delivery)
}

/// One pass over the run's notifications from `settled_prefix` on, a page at a time.
async fn poll_notifications(
    session: &Session,
    pending: &mut HashMap<i64, OffsetDateTime>,
    delivery: &mut Delivery,
    settled_prefix: &mut usize,
) -> Result<(), String> {
    let mut offset = *settled_prefix;
    let mut settled = true;
    loop {
        let query = NotificationQuery { recipient: &session.recipient, limit: Some(POLL_PAGE), offset: Some(offset) };
        let page = session.api.notifications(&query).await.map_err(|err| err.to_string())?;
        for (position, notification) in page.iter().enumerate() {
            let final_state = notification.is_settled();
            if let Some(created_at) = notification.order_id.and_then(|id| pending.get(&id).copied())
                && final_state
            {
                if notification.is_sent() {
                    delivery.sent += 1;
                    if let Some(sent_at) = notification.sent_at {
                        // Clocks of two hosts can disagree by a little; a negative delay is 0.
                        let micros = (sent_at - created_at).whole_microseconds().max(0);
                        record_micros(&mut delivery.delay, u64::try_from(micros).unwrap_or(u64::MAX));
                    }
                } else {
                    delivery.failed += 1;
                }
                if let Some(id) = notification.order_id {
                    pending.remove(&id);
                }
            }
            settled &= final_state;
            if settled {
                *settled_prefix = offset + position + 1;
            }
        }
        if page.len() < POLL_PAGE {
            return Ok(());
        }
        offset += page.len();
    }
}
