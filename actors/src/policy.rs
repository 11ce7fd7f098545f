//! The restart policy every wharf supervisor applies to its children.
//!
//! A child that fails is restarted after an exponential backoff; a child that
//! fails more than `max_restarts` times within `window` is not restarted again:
//! the supervisor escalates instead (see [`crate::supervisor`]). The same policy
//! type is used by [`mod@crate::pool`] for its workers, so a service has exactly
//! one knob per supervisor.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How often a child may be restarted, and how long to wait before each restart.
#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    /// Restarts tolerated within `window`; one more failure escalates.
    pub max_restarts: u32,
    /// The sliding window in which restarts are counted.
    pub window: Duration,
    /// Delay before the first restart of a quiet child.
    pub backoff_initial: Duration,
    /// Upper bound for the doubling delay.
    pub backoff_max: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            max_restarts: 10,
            window: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
        }
    }
}

impl RestartPolicy {
    /// Delay before the next restart, given how many restarts already happened
    /// within the window: `backoff_initial * 2^recent_restarts`, capped at `backoff_max`.
    pub fn backoff(&self, recent_restarts: u32) -> Duration {
        // 2^32 and beyond would overflow the factor; the cap is reached long before anyway.
        let factor = 1u32.checked_shl(recent_restarts).unwrap_or(u32::MAX);
        self.backoff_initial.saturating_mul(factor).min(self.backoff_max)
    }
}

/// What a supervisor should do about a child that just failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartDecision {
    /// Restart the child after `delay`; `attempt` counts failures within the window (1-based).
    Restart {
        /// Failures of this child within the window, including this one.
        attempt: u32,
        /// How long to wait before respawning.
        delay: Duration,
    },
    /// Too many failures within the window: give up on this child.
    Escalate {
        /// Failures of this child within the window, including this one.
        failures: u32,
    },
}

/// The failure history of one child, pruned to the policy's window.
///
/// Kept per child so that one flapping child cannot exhaust the budget of its
/// healthy siblings.
#[derive(Debug, Clone, Default)]
pub struct RestartWindow {
    /// When each failure within the window happened, oldest first.
    failures: VecDeque<Instant>,
}

impl RestartWindow {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a failure at `now` and decides whether to restart or escalate.
    pub fn record_failure(&mut self, now: Instant, policy: &RestartPolicy) -> RestartDecision {
        while let Some(oldest) = self.failures.front() {
            if now.saturating_duration_since(*oldest) > policy.window {
                self.failures.pop_front();
            } else {
                break;
            }
        }
        self.failures.push_back(now);
        let failures = u32::try_from(self.failures.len()).unwrap_or(u32::MAX);
        if failures > policy.max_restarts {
            RestartDecision::Escalate { failures }
        } else {
            // The first failure in a quiet window waits `backoff_initial`.
            RestartDecision::Restart { attempt: failures, delay: policy.backoff(failures - 1) }
        }
    }

    /// Failures currently inside the window (as of the last recorded failure).
    pub fn len(&self) -> usize {
        self.failures.len()
    }

    /// Whether no failure has been recorded within the window.
    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn policy(max_restarts: u32) -> RestartPolicy {
        RestartPolicy {
            max_restarts,
            window: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
        }
    }

    #[test]
    fn default_matches_the_documented_values() {
        let p = RestartPolicy::default();
        assert_eq!(p.max_restarts, 10);
        assert_eq!(p.window, Duration::from_secs(60));
        assert_eq!(p.backoff(0), Duration::from_millis(50));
        assert_eq!(p.backoff_max, Duration::from_secs(5));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = policy(10);
        assert_eq!(p.backoff(0), Duration::from_millis(100));
        assert_eq!(p.backoff(1), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(800));
        assert_eq!(p.backoff(4), Duration::from_secs(1));
        assert_eq!(p.backoff(31), Duration::from_secs(1));
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn escalates_after_max_restarts_within_the_window() {
        let p = policy(3);
        let mut w = RestartWindow::new();
        let t0 = Instant::now();
        for attempt in 1..=3 {
            let now = t0 + Duration::from_millis(u64::from(attempt));
            assert_eq!(w.record_failure(now, &p), RestartDecision::Restart { attempt, delay: p.backoff(attempt - 1) });
        }
        assert_eq!(w.record_failure(t0 + Duration::from_millis(4), &p), RestartDecision::Escalate { failures: 4 });
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let p = policy(2);
        let mut w = RestartWindow::new();
        let t0 = Instant::now();
        assert!(matches!(w.record_failure(t0, &p), RestartDecision::Restart { attempt: 1, .. }));
        assert!(matches!(
            w.record_failure(t0 + Duration::from_secs(1), &p),
            RestartDecision::Restart { attempt: 2, .. }
        ));
        // 11 s after t0 the first failure left the 10 s window; the second is still in it.
        let decision = w.record_failure(t0 + Duration::from_secs(11), &p);
        assert_eq!(decision, RestartDecision::Restart { attempt: 2, delay: p.backoff(1) });
        assert_eq!(w.len(), 2);
        // A long quiet period resets the backoff to its initial value.
        let decision = w.record_failure(t0 + Duration::from_secs(60), &p);
        assert_eq!(decision, RestartDecision::Restart { attempt: 1, delay: p.backoff(0) });
    }

    #[test]
    fn zero_max_restarts_escalates_on_first_failure() {
        let p = policy(0);
        let mut w = RestartWindow::new();
        assert_eq!(w.record_failure(Instant::now(), &p), RestartDecision::Escalate { failures: 1 });
    }
}
