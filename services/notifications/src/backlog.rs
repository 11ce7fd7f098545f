//! The backlog between an accepted order (or direct send) and its delivered notification, made
//! visible: `wharf_notifications_unsent` and `wharf_notifications_oldest_unsent_age_seconds`, and a
//! `/health` check that turns `degraded` while the oldest unsent notification is older than
//! `BACKLOG_MAX_AGE_SECS`.
//!
//! Degraded, never down: notifications still accepts events and sends while it is behind, and a
//! readiness failure would only move the backlog elsewhere. The point is that nothing says
//! `healthy` while emails pile up. The gauges are refreshed on every health check and every few
//! seconds by [`BacklogStatus::watch`], so a scrape sees a recent figure without touching the
//! database itself.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use futures_util::future::BoxFuture;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use wharf_edge::{Check, CheckOutcome, CheckStatus};
use wharf_runtime::StoreError;

use crate::store::{Backlog, NotificationStore};

/// How often the gauges are refreshed between health checks.
const REFRESH: Duration = Duration::from_secs(5);

/// The backlog's metrics and health check; cheap to clone.
#[derive(Debug, Clone)]
pub struct BacklogStatus {
    store: NotificationStore,
    max_age: Duration,
    unsent: Gauge,
    oldest_age_seconds: Gauge<f64, AtomicU64>,
}

impl BacklogStatus {
    /// Registers the gauges; `/health` is degraded while the oldest unsent notification is older
    /// than `max_age`.
    pub fn register(registry: &mut Registry, store: NotificationStore, max_age: Duration) -> Self {
        let status = Self { store, max_age, unsent: Gauge::default(), oldest_age_seconds: Gauge::default() };
        registry.register("notifications_unsent", "Notifications not yet delivered (Pending)", status.unsent.clone());
        registry.register(
            "notifications_oldest_unsent_age_seconds",
            "How long the oldest undelivered notification has waited",
            status.oldest_age_seconds.clone(),
        );
        status
    }

    /// Reads the backlog and publishes it in the gauges.
    async fn refresh(&self) -> Result<Backlog, StoreError> {
        let backlog = self.store.backlog().await?;
        self.unsent.set(backlog.unsent);
        self.oldest_age_seconds.set(backlog.oldest.unwrap_or_default().as_secs_f64());
        Ok(backlog)
    }

    /// Keeps the gauges fresh until the database pool closes (the service stopped).
    pub fn watch(self) {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(REFRESH);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match self.refresh().await {
                    Ok(_) => {}
                    Err(StoreError::Unavailable(sqlx::Error::PoolClosed)) => break,
                    Err(err) => tracing::debug!(error = %err, "could not read the notification backlog"),
                }
            }
        });
    }
}

impl Check for BacklogStatus {
    fn name(&self) -> &'static str {
        "backlog"
    }

    fn check(&self) -> BoxFuture<'_, CheckOutcome> {
        Box::pin(async move {
            match self.refresh().await {
                Ok(Backlog { unsent, oldest }) => {
                    let age = oldest.unwrap_or_default();
                    let detail = format!("{unsent} unsent, oldest {}s", age.as_secs());
                    if age > self.max_age {
                        CheckOutcome::with(
                            CheckStatus::Degraded,
                            format!("{detail}: behind by more than BACKLOG_MAX_AGE_SECS={}", self.max_age.as_secs()),
                        )
                    } else {
                        CheckOutcome::with(CheckStatus::Up, detail)
                    }
                }
                // The database check reports the database; the backlog is only unknown.
                Err(err) => CheckOutcome::with(CheckStatus::Degraded, format!("backlog unknown: {err}")),
            }
        })
    }
}
