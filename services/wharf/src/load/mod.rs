//! `wharf load`: a scenario load generator for a running wharf.
//!
//! Virtual users read products, place orders and read notifications in a configurable mix,
//! either back to back (closed model: each of `--users` loops sends its next request when the
//! previous one has answered) or on a fixed schedule (open model, `--rate`: arrivals come whatever
//! the answer times, `--users` caps the requests in flight and an arrival that finds every slot
//! busy is counted as dropped, never queued). Only the public `/api/*` API is used, so it works the
//! same against `wharf up`, the three binaries, a compose stack or a path-routed ingress.
//!
//! This file holds the command's options and [`run`], which takes a run through four phases:
//! 1. **set-up** (`working_set.rs`) — check the services answer, create the working set of
//!    products (or check the ones given);
//! 2. **load** (`user.rs`) — the virtual users sending the operations of the mix (`mix.rs`),
//!    measuring into `stats.rs`, with live progress on stderr (`progress.rs`);
//! 3. **delivery** (`delivery.rs`) — wait for every order placed to have its notification `Sent`,
//!    which gives the end-to-end order→email delay;
//! 4. **tidy-up** (`working_set.rs`) — delete the products the run created; then the report
//!    (`report.rs`: a table, or one JSON document) on stdout and the exit code from the thresholds.
//!
//! The hot path is kept small so the generator is not what is measured: URLs and order bodies are
//! built once, each virtual user records into its own histograms (merged when the load stops) and
//! progress is a handful of atomics.

mod delivery;
mod mix;
mod progress;
mod report;
mod stats;
mod user;
mod working_set;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::header::HeaderValue;
use tokio::sync::Notify;

use crate::client::{Api, Client, ClientOptions};
use crate::duration;
use crate::targets::TargetArgs;
use delivery::await_delivery;
use mix::{Mix, Operation};
use report::{Findings, Report};
use user::drive;
use working_set::{set_up, tidy_up};

// The variant's doc comment in main.rs is the command's about text and clap applies it after
// these arguments, so the longer explanation goes after the options (`--help`); `-h` shows only
// the examples.
macro_rules! examples {
    () => {
        "\
Examples:
  # 30 s of the default mix from 10 virtual users against `wharf up`
  wharf load

  # 500 requests, orders only, then require every confirmation email to have been sent
  wharf load --requests 500 --users 20 --mix orders=1 --require-notified

  # open model through an ingress: 200 req/s for 2 minutes, at most 50 in flight, JSON for CI
  wharf load --base-url https://wharf.example.com --rate 200 --users 50 --duration 2m \\
             --json --max-errors 0"
    };
}

const EXAMPLES: &str = examples!();

const LONG_HELP: &str = concat!(
    "\
Virtual users read products (GET /api/products/{id}, sometimes the first page of the list), place
orders (POST /api/orders, quantity 1, a unique Idempotency-Key each) and read the run's
notifications, in the proportions of --mix. Before the load the run creates --products-count
products with a large stock (or uses --product-ids); afterwards it waits up to --notify-wait for
every order it placed to have its email Sent, then deletes the products it created (unless --keep).

Closed model (default): --users loops, each sending its next request as soon as the previous one
answered, for --duration (default 30s) or until --requests have been sent. Open model (--rate):
requests start on a fixed schedule whatever the answer times; --users is then the most requests in
flight, and an arrival that finds every slot busy is counted as dropped.

The report (stdout) gives throughput, latency percentiles per operation (p50/p90/p99/max, ms),
errors by HTTP status and by kind (connect, timeout, other), the orders placed and how many were
notified, and the order→notification delay. Progress goes to stderr: a live bar on a terminal, a
line every 5 s otherwise.

Exit codes: 0 success; 1 set-up failed (services unreachable, products cannot be created) or a
threshold (--max-errors, --require-notified) was not met; 2 bad options.",
    "\n\n",
    examples!()
);

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES, after_long_help = LONG_HELP)]
pub struct LoadArgs {
    #[command(flatten)]
    targets: TargetArgs,
    /// Virtual users: concurrent request loops; with --rate, the most requests in flight at once.
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    users: u32,
    /// How long to load: 500ms, 30s, 2m, 1h, 1m30s (a bare number is seconds) [default: 30s unless
    /// --requests is given].
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_positive, conflicts_with = "requests")]
    duration: Option<Duration>,
    /// Stop after N requests instead of after a time (with --rate: after N arrivals, sent or
    /// dropped).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,
    /// Open model: start R requests per second on a fixed schedule, whatever the answer times; an
    /// arrival that finds all --users slots busy is dropped (counted), never delayed.
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    rate: Option<f64>,
    /// Weights of the operations: products (product-read), orders (order-create), notifications
    /// (notification-read); an operation left out weighs 0.
    #[arg(long, value_name = "WEIGHTS", default_value = "products=70,orders=20,notifications=10", value_parser = Mix::parse)]
    mix: Mix,
    /// Products to create as the working set (stock 1,000,000, named "wharf load <run id> #i"),
    /// deleted at the end unless --keep.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    products_count: u32,
    /// Use these existing products as the working set instead of creating some (comma-separated
    /// ids); they are never deleted.
    #[arg(long, value_name = "IDS", value_delimiter = ',', value_parser = clap::value_parser!(i64).range(1..), conflicts_with = "products_count")]
    product_ids: Vec<i64>,
    /// Keep the products this run created instead of deleting them at the end.
    #[arg(long)]
    keep: bool,
    /// After the load, how long to wait for every order placed to have its notification Sent, for
    /// the order→notification delay (0 skips the wait).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration::parse)]
    notify_wait: Duration,
    /// Time limit of one request.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse_positive)]
    timeout: Duration,
    /// Fail (exit 1) when more than N requests failed (unexpected status, connect error, timeout).
    #[arg(long, value_name = "N")]
    max_errors: Option<u64>,
    /// Fail (exit 1) unless every order placed had its notification Sent within --notify-wait.
    /// This is the default whenever --notify-wait is above 0; the flag only makes it explicit.
    #[arg(long, conflicts_with = "allow_unnotified")]
    require_notified: bool,
    /// Report orders left without a Sent notification but do not fail the run for them (the
    /// verdict fails by default: a platform that accepts orders it does not confirm is not well).
    #[arg(long)]
    allow_unnotified: bool,
    /// Print the report as one JSON document on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

/// Requests per second: a number above 0, at most a million.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0 => Ok(rate),
        _ => Err(format!(
            "\"{text}\" is not a rate: give requests per second above 0 (at most 1000000), e.g. 50 or 12.5"
        )),
    }
}

/// When the load stops.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// After this long.
    Time(Duration),
    /// After this many requests (closed model) or arrivals (open model).
    Count(u64),
}

impl LoadArgs {
    fn limit(&self) -> Limit {
        match (self.requests, self.duration) {
            (Some(count), _) => Limit::Count(count),
            (None, Some(duration)) => Limit::Time(duration),
            (None, None) => Limit::Time(Duration::from_secs(30)),
        }
    }

    /// Whether the run needs a working set of products.
    fn needs_products(&self) -> bool {
        self.mix.weight(Operation::ProductRead) > 0 || self.mix.weight(Operation::OrderCreate) > 0
    }

    /// Whether orders left un-notified fail the run: unless the user opted out, or skipped the
    /// wait for notifications altogether (`--notify-wait 0`).
    fn notified_required(&self) -> bool {
        !self.allow_unnotified && !self.notify_wait.is_zero()
    }

    /// What clap cannot say about the options together.
    fn check(&self) -> Result<(), String> {
        if self.require_notified && self.notify_wait.is_zero() {
            return Err("--require-notified needs --notify-wait above 0: with 0 no notification is awaited".into());
        }
        Ok(())
    }
}

/// Takes a run through set-up, load, delivery and tidy-up; the exit code comes from the thresholds.
pub async fn run(args: LoadArgs) -> ExitCode {
    if let Err(message) = args.check() {
        eprintln!("error: {message}\n\nFor more information, try '--help'.");
        return ExitCode::from(2);
    }
    let interrupts = Arc::new(Interrupts::default());
    tokio::spawn(on_ctrl_c(interrupts.clone()));

    let run_id: String = uuid::Uuid::new_v4().simple().to_string().chars().take(8).collect();
    let correlation_id = match HeaderValue::from_str(&format!("load-{run_id}")) {
        Ok(id) => id,
        Err(err) => {
            eprintln!("wharf load: invalid correlation id: {err}");
            return ExitCode::FAILURE;
        }
    };
    // One pool for the whole run, sized so every virtual user keeps its connection.
    let options = ClientOptions {
        timeout: args.timeout,
        connections: args.users as usize + 4,
        token: args.targets.access.token.clone(),
    };
    let api = match Client::new(&options).and_then(|client| Api::new(client, args.targets.resolve())) {
        Ok(api) => api.correlated(correlation_id.clone()),
        Err(err) => {
            eprintln!("wharf load: {err}");
            return ExitCode::FAILURE;
        }
    };
    let session = Session { api, correlation_id, recipient: format!("load+{run_id}@example.com"), run_id };

    let working_set = match set_up(&session, &args).await {
        Ok(working_set) => working_set,
        Err(err) => {
            eprintln!("wharf load: set-up failed: {err}");
            return ExitCode::FAILURE;
        }
    };
    let load = match drive(&session, &args, &working_set, &interrupts.load).await {
        Ok(load) => load,
        Err(err) => {
            eprintln!("wharf load: {err}");
            tidy_up(&session, &args, &working_set).await;
            return ExitCode::FAILURE;
        }
    };
    let delivery = if args.notify_wait.is_zero() {
        None
    } else {
        match await_delivery(&session, &load.orders, args.notify_wait, &interrupts.wait).await {
            Ok(delivery) => Some(delivery),
            Err(err) => {
                eprintln!("wharf load: {err}");
                tidy_up(&session, &args, &working_set).await;
                return ExitCode::FAILURE;
            }
        }
    };
    if let Some(err) = delivery.as_ref().and_then(|d| d.last_error.as_ref().filter(|_| d.missing > 0)) {
        eprintln!("wharf load: the last poll of notifications failed: {err}");
    }
    let not_deleted = tidy_up(&session, &args, &working_set).await;

    let findings =
        Findings { load: &load, delivery: delivery.as_ref(), not_deleted, interrupted: interrupts.pressed() };
    let report = Report::new(&session, &args, &working_set, findings);
    if args.json {
        match serde_json::to_string(&report) {
            Ok(json) => println!("{json}"),
            Err(err) => {
                eprintln!("wharf load: cannot write the report as JSON: {err}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", report.table());
    }
    if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// What every phase shares.
struct Session {
    /// The deployment's API; its calls are named by `correlation_id` in the services' logs.
    api: Api,
    /// `load-<run id>`: names the run's requests, but for orders (named by their idempotency key).
    correlation_id: HeaderValue,
    /// Eight hex digits naming the run in product names, the recipient and correlation ids.
    run_id: String,
    /// `load+<run id>@example.com`: every order of the run is placed for it.
    recipient: String,
}

/// A flag with a wake-up: set once, awaited by whoever must stop.
#[derive(Debug, Default)]
struct Stop {
    flag: AtomicBool,
    notify: Notify,
}

impl Stop {
    fn stop(&self) {
        self.flag.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    async fn stopped(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the flag is read, so a stop in between is not missed.
            notified.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }
}

/// What Ctrl-C has stopped so far.
#[derive(Debug, Default)]
struct Interrupts {
    /// The load phase (also stopped by its own limit).
    load: Arc<Stop>,
    /// The wait for notifications.
    wait: Stop,
    /// Whether Ctrl-C was pressed at all.
    any: AtomicBool,
}

impl Interrupts {
    fn pressed(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }
}

/// Ctrl-C stops the phase in progress — the load, then the wait for notifications — so the report
/// and the tidy-up still happen; once both are over it exits at once.
/// SIGINT (Ctrl-C) or SIGTERM (a CI job's timeout, `kill`): either ends the load the same way, so
/// the working-set products are still deleted.
async fn interrupted() -> bool {
    #[cfg(unix)]
    {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            return tokio::signal::ctrl_c().await.is_ok();
        };
        tokio::select! {
            ctrl_c = tokio::signal::ctrl_c() => ctrl_c.is_ok(),
            term = term.recv() => term.is_some(),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}

async fn on_ctrl_c(interrupts: Arc<Interrupts>) {
    while interrupted().await {
        interrupts.any.store(true, Ordering::Release);
        if !interrupts.load.is_stopped() {
            interrupts.load.stop();
            eprintln!(
                "\nwharf load: interrupted — stopping the load; the report and tidy-up follow (Ctrl-C again to skip the wait for notifications)"
            );
        } else if !interrupts.wait.is_stopped() {
            interrupts.wait.stop();
            eprintln!("\nwharf load: interrupted — not waiting for notifications (Ctrl-C again to quit at once)");
        } else {
            std::process::exit(130);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_positive_numbers() {
        assert_eq!(parse_rate("12.5").unwrap(), 12.5);
        for bad in ["0", "-1", "fast", "inf", "NaN"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
