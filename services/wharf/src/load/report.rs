//! The run's report: what the phases found, as one JSON document (`--json`) or a table, and
//! whether the thresholds (`--max-errors`, `--require-notified`) were met.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::delivery::Delivery;
use super::mix::Operation;
use super::stats::{FailureKind, OpStats};
use super::user::LoadResult;
use super::working_set::{WorkingSet, list_ids};
use super::{LoadArgs, Session};
use crate::duration;

/// Latency (or delay) percentiles in ms.
#[derive(Debug, Serialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Percentiles {
    /// `None` for an empty histogram of µs.
    fn of(histogram: &Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Some(Self {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            max: ms(histogram.max()),
            mean: round(histogram.mean() / 1000.0, 3),
        })
    }
}

/// Errors of one operation, or of the run.
#[derive(Debug, Default, Serialize)]
struct ErrorKinds {
    /// An answer with an unexpected status.
    http: u64,
    /// The connection could not be made (refused, unreachable).
    connect: u64,
    /// No answer within --timeout.
    timeout: u64,
    /// Anything else (a broken answer, an order answer without an order).
    other: u64,
}

impl ErrorKinds {
    fn of(stats: &OpStats) -> Self {
        Self {
            http: stats.by_status.values().sum(),
            connect: stats.by_kind[FailureKind::Connect as usize],
            timeout: stats.by_kind[FailureKind::Timeout as usize],
            other: stats.by_kind[FailureKind::Other as usize],
        }
    }

    fn add(&mut self, other: &Self) {
        self.http += other.http;
        self.connect += other.connect;
        self.timeout += other.timeout;
        self.other += other.other;
    }
}

#[derive(Debug, Serialize)]
struct OperationReport {
    /// Requests sent (answered or failed).
    count: u64,
    ok: u64,
    errors: u64,
    rps: f64,
    /// Of the requests that got an answer; `null` when there were none.
    latency_ms: Option<Percentiles>,
    errors_by_status: BTreeMap<String, u64>,
    errors_by_kind: ErrorKinds,
}

#[derive(Debug, Serialize)]
struct Operations {
    product_read: OperationReport,
    order_create: OperationReport,
    notification_read: OperationReport,
}

#[derive(Debug, Serialize)]
struct ProductsReport {
    ids: Vec<i64>,
    /// Whether this run created them.
    created: bool,
    /// Created but left in place (--keep, or the delete failed).
    kept: bool,
    not_deleted: Vec<i64>,
}

#[derive(Debug, Serialize)]
struct Thresholds {
    max_errors: Option<u64>,
    require_notified: bool,
    passed: bool,
    violations: Vec<String>,
}

/// What the phases found, for the report.
#[derive(Debug)]
pub(super) struct Findings<'a> {
    pub(super) load: &'a LoadResult,
    /// `None` with --notify-wait 0.
    pub(super) delivery: Option<&'a Delivery>,
    pub(super) not_deleted: Vec<i64>,
    /// Whether Ctrl-C cut the run short.
    pub(super) interrupted: bool,
}

/// The run's report: `--json` prints it as is; otherwise [`Report::table`].
#[derive(Debug, Serialize)]
pub(super) struct Report {
    run_id: String,
    recipient: String,
    /// `closed` or `open`.
    model: &'static str,
    users: u32,
    rate: Option<f64>,
    interrupted: bool,
    duration_secs: f64,
    /// Requests sent (answered or failed).
    requests: u64,
    ok: u64,
    errors: u64,
    /// Open model: arrivals that found every slot busy.
    dropped: u64,
    rps: f64,
    operations: Operations,
    errors_by_status: BTreeMap<String, u64>,
    errors_by_kind: ErrorKinds,
    orders_created: u64,
    /// `null` with --notify-wait 0 (not checked).
    notifications_sent: Option<u64>,
    notifications_failed: Option<u64>,
    notifications_missing: Option<u64>,
    notify_wait_secs: f64,
    /// Notification `sentAt` − order `createdAt` of the Sent ones.
    order_to_notification_ms: Option<Percentiles>,
    products: ProductsReport,
    thresholds: Thresholds,
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

impl Report {
    pub(super) fn new(session: &Session, args: &LoadArgs, working_set: &WorkingSet, findings: Findings<'_>) -> Self {
        let Findings { load, delivery, not_deleted, interrupted } = findings;
        let seconds = load.elapsed.as_secs_f64().max(1e-9);
        let per_second = |count: u64| round(count as f64 / seconds, 2);
        let operation = |op: Operation| {
            let stats = &load.tally.ops[op.index()];
            OperationReport {
                count: stats.count(),
                ok: stats.ok,
                errors: stats.errors(),
                rps: per_second(stats.count()),
                latency_ms: Percentiles::of(&stats.latency),
                errors_by_status: stats.by_status.iter().map(|(status, count)| (status.to_string(), *count)).collect(),
                errors_by_kind: ErrorKinds::of(stats),
            }
        };
        let operations = Operations {
            product_read: operation(Operation::ProductRead),
            order_create: operation(Operation::OrderCreate),
            notification_read: operation(Operation::NotificationRead),
        };
        let all = [&operations.product_read, &operations.order_create, &operations.notification_read];
        let mut errors_by_status = BTreeMap::new();
        let mut errors_by_kind = ErrorKinds::default();
        for op in all {
            for (status, count) in &op.errors_by_status {
                *errors_by_status.entry(status.clone()).or_default() += count;
            }
            errors_by_kind.add(&op.errors_by_kind);
        }
        let requests: u64 = all.iter().map(|op| op.count).sum();
        let errors: u64 = all.iter().map(|op| op.errors).sum();
        let orders_created = load.orders.len() as u64;

        let mut violations = Vec::new();
        if let Some(max) = args.max_errors
            && errors > max
        {
            violations.push(format!("{errors} requests failed, more than --max-errors {max}"));
        }
        if args.notified_required() {
            match delivery {
                Some(delivery) if delivery.sent == orders_created => {}
                Some(delivery) => violations.push(format!(
                    "not every order notified (--require-notified, the default; --allow-unnotified reports without failing): {} of {orders_created} orders notified (Sent) within {} ({} failed, {} missing)",
                    delivery.sent,
                    duration::human(args.notify_wait),
                    delivery.failed,
                    delivery.missing
                )),
                None => violations.push("--require-notified: notifications were not checked".into()),
            }
        }

        Self {
            run_id: session.run_id.clone(),
            recipient: session.recipient.clone(),
            model: if args.rate.is_some() { "open" } else { "closed" },
            users: args.users,
            rate: args.rate,
            interrupted,
            duration_secs: round(load.elapsed.as_secs_f64(), 3),
            requests,
            ok: requests - errors,
            errors,
            dropped: load.dropped,
            rps: per_second(requests),
            operations,
            errors_by_status,
            errors_by_kind,
            orders_created,
            notifications_sent: delivery.map(|d| d.sent),
            notifications_failed: delivery.map(|d| d.failed),
            notifications_missing: delivery.map(|d| d.missing),
            notify_wait_secs: delivery.map_or(0.0, |d| round(d.waited.as_secs_f64(), 3)),
            order_to_notification_ms: delivery.and_then(|d| Percentiles::of(&d.delay)),
            products: ProductsReport {
                ids: working_set.ids.clone(),
                created: working_set.created,
                kept: working_set.created && (args.keep || !not_deleted.is_empty()),
                not_deleted,
            },
            thresholds: Thresholds {
                max_errors: args.max_errors,
                require_notified: args.notified_required(),
                passed: violations.is_empty(),
                violations,
            },
        }
    }

    /// Whether every threshold was met: the exit code.
    pub(super) fn passed(&self) -> bool {
        self.thresholds.passed
    }

    /// The report for a terminal: aligned columns, milliseconds, the thresholds' verdict last.
    pub(super) fn table(&self) -> String {
        let mut out = String::new();
        let mode = match self.rate {
            Some(rate) => format!("open model, {rate} req/s, {} slots", self.users),
            None => format!("closed model, {} users", self.users),
        };
        let _ = writeln!(out, "\nwharf load  run {}  ({mode})\n", self.run_id);
        let _ = write!(
            out,
            "  duration {:.2} s   requests {}   {:.1} req/s   errors {}",
            self.duration_secs, self.requests, self.rps, self.errors
        );
        if self.model == "open" {
            let _ = write!(out, "   dropped {}", self.dropped);
        }
        let _ = writeln!(out, "\n");
        let _ = writeln!(
            out,
            "  {:<18} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
            "operation", "count", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"
        );
        let rows = [
            ("product-read", &self.operations.product_read),
            ("order-create", &self.operations.order_create),
            ("notification-read", &self.operations.notification_read),
        ];
        for (name, op) in rows {
            let _ = write!(out, "  {name:<18} {:>8} {:>9.1}", op.count, op.rps);
            match &op.latency_ms {
                Some(l) => {
                    let _ = write!(out, " {:>9.2} {:>9.2} {:>9.2} {:>9.2}", l.p50, l.p90, l.p99, l.max);
                }
                None => {
                    let _ = write!(out, " {:>9} {:>9} {:>9} {:>9}", "-", "-", "-", "-");
                }
            }
            let _ = writeln!(out, " {:>7}", op.errors);
        }
        let _ = writeln!(out);
        if self.errors == 0 {
            let _ = writeln!(out, "  errors: none");
        } else {
            let statuses = if self.errors_by_status.is_empty() {
                "none".to_owned()
            } else {
                self.errors_by_status
                    .iter()
                    .map(|(status, count)| format!("{status} ×{count}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let kinds = &self.errors_by_kind;
            let _ = writeln!(out, "  errors by status: {statuses}");
            let _ = writeln!(
                out,
                "  errors by kind:   http {}, connect {}, timeout {}, other {}",
                kinds.http, kinds.connect, kinds.timeout, kinds.other
            );
        }
        match (self.notifications_sent, self.notifications_failed, self.notifications_missing) {
            (Some(sent), Some(failed), Some(missing)) => {
                let _ = writeln!(
                    out,
                    "  orders created: {}, notified (Sent): {sent}, failed: {failed}, missing: {missing}  (waited {:.1} s)",
                    self.orders_created, self.notify_wait_secs
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "  orders created: {}  (notifications not checked: --notify-wait 0)",
                    self.orders_created
                );
            }
        }
        if let Some(delay) = &self.order_to_notification_ms {
            let _ = writeln!(
                out,
                "  order → notification delay: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                delay.p50, delay.p90, delay.p99, delay.max
            );
        }
        let products = &self.products;
        if products.created {
            let fate = if !products.not_deleted.is_empty() {
                format!("could not delete {}", list_ids(&products.not_deleted))
            } else if products.kept {
                "kept (--keep)".to_owned()
            } else {
                "deleted".to_owned()
            };
            let _ = writeln!(out, "  products: created {} — {fate}", list_ids(&products.ids));
        } else if !products.ids.is_empty() {
            let _ = writeln!(out, "  products: used {}", list_ids(&products.ids));
        }
        if self.thresholds.passed {
            let _ = writeln!(out, "  result: passed");
        } else {
            let _ = writeln!(out, "  result: FAILED");
            for violation in &self.thresholds.violations {
                let _ = writeln!(out, "    - {violation}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::load::stats::{Outcome, Tally};

    #[test]
    fn error_kinds_count_statuses_as_http_and_transport_failures_by_kind() {
        let mut tally = Tally::new().unwrap();
        let stats = &mut tally.ops[Operation::OrderCreate.index()];
        stats.record(Outcome::Success, Duration::from_millis(2));
        for outcome in [
            Outcome::Status(503),
            Outcome::Status(422),
            Outcome::Transport(FailureKind::Connect),
            Outcome::Transport(FailureKind::Timeout),
            Outcome::Transport(FailureKind::Timeout),
        ] {
            stats.record(outcome, Duration::from_millis(1));
        }
        let kinds = ErrorKinds::of(stats);
        assert_eq!((kinds.http, kinds.connect, kinds.timeout, kinds.other), (2, 1, 2, 0));
    }
}
