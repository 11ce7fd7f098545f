//! Whether this process is still fit to run, as seen by its supervisors.
//!
//! A [`Liveness`] is shared by every supervisor of a service and by its HTTP
//! edge. Supervisors call [`Liveness::escalate`] when a child exceeds its restart
//! budget; `/health/live` reads [`Liveness::is_alive`] on every probe; the
//! service's `main` awaits [`Liveness::failed`] and exits non-zero, so the
//! orchestrator replaces the pod. Restart counts are kept here too, for metrics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::watch;

/// Shared liveness state; cloning is cheap and every clone sees the same state.
#[derive(Clone, Debug)]
pub struct Liveness {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The first escalation reason; set once, never cleared. `OnceLock::get` is a
    /// single atomic load, which keeps the liveness probe lock-free.
    failure: OnceLock<String>,
    /// Flipped to `true` on escalation, to wake [`Liveness::failed`] waiters.
    escalated: watch::Sender<bool>,
    /// Restarts per child registry name. Restarts are rare, so a mutex is fine.
    restarts: Mutex<BTreeMap<String, u64>>,
}

impl Default for Liveness {
    fn default() -> Self {
        Self::new()
    }
}

impl Liveness {
    /// A live process with no restarts recorded.
    pub fn new() -> Self {
        let (escalated, _) = watch::channel(false);
        Self { inner: Arc::new(Inner { failure: OnceLock::new(), escalated, restarts: Mutex::new(BTreeMap::new()) }) }
    }

    /// Whether nothing has escalated yet. Lock-free.
    pub fn is_alive(&self) -> bool {
        self.inner.failure.get().is_none()
    }

    /// The escalation reason, if any.
    pub fn failure(&self) -> Option<String> {
        self.inner.failure.get().cloned()
    }

    /// Marks the process as failed. The first reason wins: later escalations are
    /// usually consequences of the first (e.g. siblings being stopped).
    pub fn escalate(&self, reason: impl Into<String>) {
        let reason = reason.into();
        match self.inner.failure.set(reason) {
            Ok(()) => {
                if let Some(first) = self.inner.failure.get() {
                    tracing::error!(reason = %first, "liveness escalated: this process should exit");
                }
                self.inner.escalated.send_replace(true);
            }
            Err(later) => tracing::debug!(reason = %later, "liveness already escalated; reason ignored"),
        }
    }

    /// Resolves with the escalation reason once the process has failed
    /// (immediately if it already has).
    pub async fn failed(&self) -> String {
        let mut rx = self.inner.escalated.subscribe();
        // `wait_for` only errs when the sender is dropped, and `self` keeps it alive.
        let _ = rx.wait_for(|escalated| *escalated).await;
        // The reason is stored before the flag flips, so it is always present here.
        self.failure().unwrap_or_default()
    }

    /// Counts one restart of `child` (its registry name).
    pub fn record_restart(&self, child: &str) {
        let mut restarts = self.inner.restarts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *restarts.entry(child.to_owned()).or_default() += 1;
    }

    /// Restarts per child, sorted by child name.
    pub fn restarts(&self) -> Vec<(String, u64)> {
        let restarts = self.inner.restarts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        restarts.iter().map(|(name, count)| (name.clone(), *count)).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn starts_alive_without_restarts() {
        let l = Liveness::new();
        assert!(l.is_alive());
        assert_eq!(l.failure(), None);
        assert!(l.restarts().is_empty());
    }

    #[test]
    fn first_escalation_reason_wins() {
        let l = Liveness::new();
        let clone = l.clone();
        clone.escalate("orders/store restarted too often");
        l.escalate("something later");
        assert!(!l.is_alive());
        assert_eq!(l.failure().as_deref(), Some("orders/store restarted too often"));
    }

    #[test]
    fn restarts_are_counted_per_child_and_sorted() {
        let l = Liveness::new();
        l.record_restart("b");
        l.record_restart("a");
        l.record_restart("b");
        assert_eq!(l.restarts(), vec![("a".to_owned(), 1), ("b".to_owned(), 2)]);
    }

    #[tokio::test]
    async fn failed_resolves_on_escalation_and_afterwards() {
        let l = Liveness::new();
        let waiter = tokio::spawn({
            let l = l.clone();
            async move { l.failed().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished());
        l.escalate("boom");
        let reason = tokio::time::timeout(Duration::from_secs(1), waiter).await.unwrap().unwrap();
        assert_eq!(reason, "boom");
        // A late waiter does not hang either.
        let reason = tokio::time::timeout(Duration::from_secs(1), l.failed()).await.unwrap();
        assert_eq!(reason, "boom");
    }
}
