//! What the load measures: how each request ended and, per operation, the latency histogram and
//! the counts of successes and of errors by status and by kind. Each virtual user keeps its own
//! [`Tally`], merged when the load stops, so the hot path shares nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::client::Order;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The expected status (and, for an order, an order in the body).
    Success,
    /// Another status.
    Status(u16),
    /// No (complete) answer.
    Transport(FailureKind),
}

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FailureKind {
    /// The connection could not be made (refused, unreachable, DNS).
    Connect,
    /// No answer within `--timeout`.
    Timeout,
    /// Anything else: the connection broke mid-answer, an order answer without an order, …
    Other,
}

impl FailureKind {
    pub(super) fn of(err: &reqwest::Error) -> Self {
        if err.is_timeout() {
            Self::Timeout
        } else if err.is_connect() {
            Self::Connect
        } else {
            Self::Other
        }
    }
}

/// One operation's results in one virtual user (and, merged, in the run).
#[derive(Debug)]
pub(super) struct OpStats {
    /// Latency in µs of every request that got an answer, whatever its status (a refused
    /// connection or a timeout has no latency worth the name).
    pub(super) latency: Histogram<u64>,
    pub(super) ok: u64,
    pub(super) by_status: BTreeMap<u16, u64>,
    /// Indexed by `FailureKind as usize`.
    pub(super) by_kind: [u64; 3],
}

impl OpStats {
    fn new() -> Result<Self, String> {
        let latency = Histogram::new(3).map_err(|err| format!("cannot create a histogram: {err}"))?;
        Ok(Self { latency, ok: 0, by_status: BTreeMap::new(), by_kind: [0; 3] })
    }

    pub(super) fn record(&mut self, outcome: Outcome, elapsed: Duration) {
        match outcome {
            Outcome::Success => self.ok += 1,
            Outcome::Status(status) => *self.by_status.entry(status).or_default() += 1,
            Outcome::Transport(kind) => self.by_kind[kind as usize] += 1,
        }
        if !matches!(outcome, Outcome::Transport(_)) {
            record_micros(&mut self.latency, u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
        }
    }

    fn merge(&mut self, other: &Self) -> Result<(), String> {
        self.latency.add(&other.latency).map_err(|err| format!("cannot merge histograms: {err}"))?;
        self.ok += other.ok;
        for (status, count) in &other.by_status {
            *self.by_status.entry(*status).or_default() += count;
        }
        for (mine, theirs) in self.by_kind.iter_mut().zip(other.by_kind) {
            *mine += theirs;
        }
        Ok(())
    }

    pub(super) fn errors(&self) -> u64 {
        self.by_status.values().sum::<u64>() + self.by_kind.iter().sum::<u64>()
    }

    pub(super) fn count(&self) -> u64 {
        self.ok + self.errors()
    }
}

/// What one virtual user (or, merged, the run) did.
#[derive(Debug)]
pub(super) struct Tally {
    /// Indexed by [`Operation::index`](super::mix::Operation::index).
    pub(super) ops: [OpStats; 3],
    pub(super) orders: Vec<Order>,
}

impl Tally {
    pub(super) fn new() -> Result<Self, String> {
        Ok(Self { ops: [OpStats::new()?, OpStats::new()?, OpStats::new()?], orders: Vec::new() })
    }

    pub(super) fn merge(&mut self, other: Self) -> Result<(), String> {
        for (mine, theirs) in self.ops.iter_mut().zip(&other.ops) {
            mine.merge(theirs)?;
        }
        self.orders.extend(other.orders);
        Ok(())
    }
}

/// Records a value, growing the histogram as needed. (`saturating_record` would not grow it: it
/// clamps to the current range, which starts at 2 µs.)
pub(super) fn record_micros(histogram: &mut Histogram<u64>, micros: u64) {
    if histogram.record(micros).is_err() {
        histogram.saturating_record(micros);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_count_errors_by_status_and_kind() {
        let mut stats = OpStats::new().unwrap();
        stats.record(Outcome::Success, Duration::from_millis(2));
        stats.record(Outcome::Status(503), Duration::from_millis(1));
        stats.record(Outcome::Transport(FailureKind::Connect), Duration::from_millis(1));
        let mut merged = OpStats::new().unwrap();
        merged.merge(&stats).unwrap();
        merged.merge(&stats).unwrap();
        assert_eq!((merged.count(), merged.ok, merged.errors()), (6, 2, 4));
        assert_eq!(merged.latency.len(), 4, "transport failures carry no latency");
        assert!((1990..=2010).contains(&merged.latency.max()), "µs, not clamped: {}", merged.latency.max());
        assert_eq!(merged.by_status, BTreeMap::from([(503, 2)]));
        assert_eq!(merged.by_kind, [2, 0, 0], "connect, timeout, other");
    }
}
