//! `wharf load`: a scenario load generator for a running wharf.
//!
//! Virtual users read products, place orders and read notifications in a configurable mix,
//! either back to back (closed model: each of `--users` loops sends its next request when the
//! previous one has answered) or on a fixed schedule (open model, `--rate`: arrivals come whatever
//! the answer times, `--users` caps the requests in flight and an arrival that finds every slot
//! busy is counted as dropped, never queued). Only the public `/api/*` API is used, so it works the
//! same against `wharf up`, the three binaries, a compose stack or a path-routed ingress.
//!
//! A run goes through four phases, top to bottom in this file:
//! 1. **set-up** — check the services answer, create the working set of products (or check the
//!    ones given);
//! 2. **load** — the virtual users, with live progress on stderr;
//! 3. **delivery** — wait for every order placed to have its notification `Sent`, which gives the
//!    end-to-end order→email delay;
//! 4. **tidy-up** — delete the products the run created; then the report (a table, or one JSON
//!    document) on stdout and the exit code from the thresholds.
//!
//! The hot path is kept small so the generator is not what is measured: URLs and order bodies are
//! built once, each virtual user records into its own histograms (merged when the load stops) and
//! progress is a handful of atomics.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::targets::{self, TargetArgs, Targets};

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Stock given to the products a run creates: orders never run out during a run.
const WORKING_STOCK: i64 = 1_000_000;
/// Page size of the notification poll after the load (the API's maximum).
const POLL_PAGE: usize = 1000;
/// How many notification ids a virtual user remembers for `GET /api/notifications/{id}`.
const KNOWN_NOTIFICATIONS: usize = 20;

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

/// Options of `wharf load`.
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
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, conflicts_with = "requests")]
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
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    notify_wait: Duration,
    /// Time limit of one request.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    timeout: Duration,
    /// Fail (exit 1) when more than N requests failed (unexpected status, connect error, timeout).
    #[arg(long, value_name = "N")]
    max_errors: Option<u64>,
    /// Fail (exit 1) unless every order placed had its notification Sent within --notify-wait.
    #[arg(long)]
    require_notified: bool,
    /// Print the report as one JSON document on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

// ---------------------------------------------------------------------------------------------
// Option values
// ---------------------------------------------------------------------------------------------

const DURATION_HINT: &str = "use e.g. 500ms, 30s, 2m, 1h or 1m30s; a bare number is seconds";

/// `500ms`, `30s`, `2m`, `1h`, `1m30s`, `1.5s`; a bare number is seconds. Zero is allowed.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("empty duration: {DURATION_HINT}"));
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("\"{text}\" is not a duration: {DURATION_HINT}"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let unit_len =
            rest[number_len..].find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len() - number_len);
        let (number, unit) = (&rest[..number_len], &rest[number_len..number_len + unit_len]);
        let number: f64 = number.parse().map_err(|_| {
            format!("\"{text}\" is not a duration: expected a number before \"{unit}\"; {DURATION_HINT}")
        })?;
        let seconds_per_unit = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!("\"{text}\" is not a duration: the number {number} has no unit; {DURATION_HINT}"));
            }
            other => {
                return Err(format!("\"{text}\" is not a duration: unknown unit \"{other}\"; {DURATION_HINT}"));
            }
        };
        let part = Duration::try_from_secs_f64(number * seconds_per_unit)
            .map_err(|_| format!("\"{text}\" is too long a duration"))?;
        total = total.checked_add(part).ok_or_else(|| format!("\"{text}\" is too long a duration"))?;
        rest = &rest[number_len + unit_len..];
    }
    Ok(total)
}

/// A duration above zero.
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() { Err(format!("\"{text}\" is zero: the duration must be above 0")) } else { Ok(duration) }
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

/// What a virtual user does in one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    /// `GET /api/products/{id}` of a working-set product; one time in ten `GET /api/products?limit=20`.
    ProductRead,
    /// `POST /api/orders` for a working-set product.
    OrderCreate,
    /// `GET /api/notifications?recipient=<the run's address>&limit=20`, or one of those by id.
    NotificationRead,
}

impl Operation {
    const ALL: [Self; 3] = [Self::ProductRead, Self::OrderCreate, Self::NotificationRead];

    /// Its name in the table.
    fn name(self) -> &'static str {
        match self {
            Self::ProductRead => "product-read",
            Self::OrderCreate => "order-create",
            Self::NotificationRead => "notification-read",
        }
    }

    /// The status that counts as success.
    fn success(self) -> StatusCode {
        match self {
            Self::OrderCreate => StatusCode::CREATED,
            Self::ProductRead | Self::NotificationRead => StatusCode::OK,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Relative weights of the operations (`--mix`); their sum is above zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mix {
    /// Indexed by [`Operation::index`].
    weights: [u64; 3],
}

impl Mix {
    fn parse(text: &str) -> Result<Self, String> {
        const HINT: &str = "e.g. products=70,orders=20,notifications=10";
        let mut weights: [Option<u64>; 3] = [None; 3];
        for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let (name, weight) =
                part.split_once('=').ok_or_else(|| format!("\"{part}\" is not name=weight ({HINT})"))?;
            let name = name.trim();
            let operation = match name {
                "products" | "product-read" => Operation::ProductRead,
                "orders" | "order-create" => Operation::OrderCreate,
                "notifications" | "notification-read" => Operation::NotificationRead,
                _ => {
                    return Err(format!(
                        "unknown operation \"{name}\": the operations are products, orders and notifications ({HINT})"
                    ));
                }
            };
            let weight = weight.trim().parse::<u32>().map_err(|_| {
                format!("the weight of {name} must be a whole number of 0 or more, not \"{}\"", weight.trim())
            })?;
            if weights[operation.index()].replace(u64::from(weight)).is_some() {
                return Err(format!("{} is given twice", operation.name()));
            }
        }
        let weights = weights.map(|weight| weight.unwrap_or(0));
        if weights.iter().sum::<u64>() == 0 {
            return Err(format!("the weights add up to 0: give at least one operation a weight above 0 ({HINT})"));
        }
        Ok(Self { weights })
    }

    fn weight(&self, operation: Operation) -> u64 {
        self.weights[operation.index()]
    }

    /// The operation a uniformly random `roll` falls on.
    fn pick(&self, roll: u64) -> Operation {
        let mut point = roll % self.weights.iter().sum::<u64>();
        for operation in Operation::ALL {
            let weight = self.weight(operation);
            if point < weight {
                return operation;
            }
            point -= weight;
        }
        Operation::ProductRead
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

    /// What clap cannot say about the options together.
    fn check(&self) -> Result<(), String> {
        if self.require_notified && self.notify_wait.is_zero() {
            return Err("--require-notified needs --notify-wait above 0: with 0 no notification is awaited".into());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// Runs `wharf load`.
pub async fn run(args: LoadArgs) -> ExitCode {
    if let Err(message) = args.check() {
        eprintln!("error: {message}\n\nFor more information, try '--help'.");
        return ExitCode::from(2);
    }
    let interrupts = Arc::new(Interrupts::default());
    tokio::spawn(on_ctrl_c(interrupts.clone()));

    let run_id: String = uuid::Uuid::new_v4().simple().to_string().chars().take(8).collect();
    let targets = args.targets.resolve();
    // One pool for the whole run, sized so every virtual user keeps its connection.
    let client = match targets::client(args.timeout, args.users as usize + 4) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("wharf load: {err}");
            return ExitCode::FAILURE;
        }
    };
    let session = Session { client, targets, recipient: format!("load+{run_id}@example.com"), run_id };

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
    if report.thresholds.passed { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// What every phase shares.
struct Session {
    client: reqwest::Client,
    targets: Targets,
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
async fn on_ctrl_c(interrupts: Arc<Interrupts>) {
    while tokio::signal::ctrl_c().await.is_ok() {
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

// ---------------------------------------------------------------------------------------------
// Phase 1: set-up
// ---------------------------------------------------------------------------------------------

/// The products the load uses.
#[derive(Debug)]
struct WorkingSet {
    ids: Vec<i64>,
    /// Whether this run created them (and so deletes them).
    created: bool,
}

/// Checks the services the run needs answer, then creates (or checks) the working set.
async fn set_up(session: &Session, args: &LoadArgs) -> Result<WorkingSet, String> {
    let places_orders = args.mix.weight(Operation::OrderCreate) > 0;
    let mut needed = Vec::new();
    if args.needs_products() {
        needed.push(("products", &session.targets.products, "/api/products"));
    }
    if places_orders {
        needed.push(("orders", &session.targets.orders, "/api/orders"));
    }
    if args.mix.weight(Operation::NotificationRead) > 0 || (places_orders && !args.notify_wait.is_zero()) {
        needed.push(("notifications", &session.targets.notifications, "/api/notifications"));
    }
    let probes = needed.iter().map(|(name, base, path)| async move {
        let url = format!("{base}{path}?limit=1");
        match session.client.get(&url).send().await {
            Ok(response) if response.status() == StatusCode::OK => Ok(()),
            Ok(response) => Err(format!("{name} at {base} answered GET {path} with {}", response.status())),
            Err(err) => Err(format!("cannot reach {name} at {base}: {}", describe(&err))),
        }
    });
    let failures: Vec<String> =
        futures_util::future::join_all(probes).await.into_iter().filter_map(Result::err).collect();
    if !failures.is_empty() {
        let mut message = failures.join("\n  ");
        if failures.iter().any(|failure| failure.starts_with("cannot reach")) {
            message.push_str("\n  (is wharf running? `wharf up` starts it; --products/--orders/--notifications or --base-url say where it is)");
        }
        return Err(message);
    }
    if !args.needs_products() {
        return Ok(WorkingSet { ids: Vec::new(), created: false });
    }

    if !args.product_ids.is_empty() {
        for &id in &args.product_ids {
            let url = format!("{}/api/products/{id}", session.targets.products);
            match session.client.get(&url).send().await {
                Ok(response) if response.status() == StatusCode::OK => {}
                Ok(response) => {
                    return Err(format!("product {id} cannot be used: GET {url} answered {}", response.status()));
                }
                Err(err) => return Err(format!("cannot read product {id}: {}", describe(&err))),
            }
        }
        eprintln!("wharf load: run {}, working set: products {}", session.run_id, list_ids(&args.product_ids));
        return Ok(WorkingSet { ids: args.product_ids.clone(), created: false });
    }

    let url = format!("{}/api/products", session.targets.products);
    let mut ids = Vec::new();
    let mut failure = None;
    let numbers: Vec<u32> = (1..=args.products_count).collect();
    // A few at a time: quick for a large working set without flooding the service during set-up.
    for chunk in numbers.chunks(8) {
        let creations = chunk.iter().map(|number| {
            let body = json!({
                "name": format!("wharf load {} #{number}", session.run_id),
                "price": 1.0,
                "stock": WORKING_STOCK,
                "description": "created by wharf load; deleted when the run ends",
            });
            create_product(session, &url, body)
        });
        for created in futures_util::future::join_all(creations).await {
            match created {
                Ok(id) => ids.push(id),
                Err(err) => failure = Some(err),
            }
        }
        if failure.is_some() {
            break;
        }
    }
    ids.sort_unstable();
    let working_set = WorkingSet { ids, created: true };
    if let Some(err) = failure {
        tidy_up(session, args, &working_set).await;
        return Err(format!("cannot create the working set of products: {err}"));
    }
    eprintln!(
        "wharf load: run {}, created products {} (recipient {})",
        session.run_id,
        list_ids(&working_set.ids),
        session.recipient
    );
    Ok(working_set)
}

async fn create_product(session: &Session, url: &str, body: serde_json::Value) -> Result<i64, String> {
    let response = session.client.post(url).json(&body).send().await.map_err(|err| describe(&err))?;
    let status = response.status();
    let text = response.text().await.map_err(|err| describe(&err))?;
    if status != StatusCode::CREATED {
        return Err(format!("POST {url} answered {status}: {}", text.chars().take(300).collect::<String>()));
    }
    let created: serde_json::Value =
        serde_json::from_str(&text).map_err(|err| format!("POST {url} answered 201 without a JSON product: {err}"))?;
    created["id"].as_i64().ok_or_else(|| format!("POST {url} answered 201 without an id"))
}

/// `3, 4, 5` — or `3 … 102 (100)` for a long list.
fn list_ids(ids: &[i64]) -> String {
    match ids {
        [] => "none".into(),
        [first, .., last] if ids.len() > 6 => format!("{first} … {last} ({})", ids.len()),
        _ => ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", "),
    }
}

// ---------------------------------------------------------------------------------------------
// Phase 2: load
// ---------------------------------------------------------------------------------------------

/// Everything a request needs that does not change during the run, built once.
#[derive(Debug)]
struct Plan {
    client: reqwest::Client,
    mix: Mix,
    /// `GET /api/products/{id}`, one per working-set product.
    product_urls: Vec<Url>,
    /// `GET /api/products?limit=20`.
    product_list: Url,
    /// `POST /api/orders`.
    order_url: Url,
    /// The order body for each working-set product, in the order of `product_urls`.
    order_bodies: Vec<Bytes>,
    /// `GET /api/notifications?recipient=<the run's address>&limit=20`.
    notification_list: Url,
    /// The notifications service's base URL, for `/api/notifications/{id}`.
    notifications_base: String,
    /// `X-Correlation-ID` of reads: `load-<run id>`.
    correlation_id: HeaderValue,
    /// `load-<run id>-`: an order's idempotency key and correlation id add `<user>-<n>`.
    key_prefix: String,
}

impl Plan {
    fn new(session: &Session, args: &LoadArgs, working_set: &WorkingSet) -> Result<Self, String> {
        let url = |text: String| Url::parse(&text).map_err(|err| format!("invalid URL {text}: {err}"));
        let targets = &session.targets;
        let product_urls = working_set
            .ids
            .iter()
            .map(|id| url(format!("{}/api/products/{id}", targets.products)))
            .collect::<Result<Vec<_>, _>>()?;
        let order_bodies = working_set
            .ids
            .iter()
            .map(|id| {
                let body = json!({"productId": id, "quantity": 1, "customerEmail": session.recipient});
                Bytes::from(body.to_string())
            })
            .collect();
        let mut notification_list = url(format!("{}/api/notifications", targets.notifications))?;
        notification_list.query_pairs_mut().append_pair("recipient", &session.recipient).append_pair("limit", "20");
        let correlation_id = HeaderValue::from_str(&format!("load-{}", session.run_id))
            .map_err(|err| format!("invalid correlation id: {err}"))?;
        Ok(Self {
            client: session.client.clone(),
            mix: args.mix,
            product_urls,
            product_list: url(format!("{}/api/products?limit=20", targets.products))?,
            order_url: url(format!("{}/api/orders", targets.orders))?,
            order_bodies,
            notification_list,
            notifications_base: targets.notifications.clone(),
            correlation_id,
            key_prefix: format!("load-{}-", session.run_id),
        })
    }
}

/// Live counters, shared by the virtual users and the progress display.
#[derive(Debug, Default)]
struct Progress {
    /// Requests answered or failed.
    done: AtomicU64,
    /// Of those, failed.
    errors: AtomicU64,
    /// Open model: arrivals that found every slot busy.
    dropped: AtomicU64,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The expected status (and, for an order, an order in the body).
    Success,
    /// Another status.
    Status(u16),
    /// No (complete) answer.
    Transport(FailureKind),
}

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    /// The connection could not be made (refused, unreachable, DNS).
    Connect,
    /// No answer within `--timeout`.
    Timeout,
    /// Anything else: the connection broke mid-answer, an order answer without an order, …
    Other,
}

impl FailureKind {
    fn of(err: &reqwest::Error) -> Self {
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
struct OpStats {
    /// Latency in µs of every request that got an answer, whatever its status (a refused
    /// connection or a timeout has no latency worth the name).
    latency: Histogram<u64>,
    ok: u64,
    by_status: BTreeMap<u16, u64>,
    /// Indexed by `FailureKind as usize`.
    by_kind: [u64; 3],
}

impl OpStats {
    fn new() -> Result<Self, String> {
        let latency = Histogram::new(3).map_err(|err| format!("cannot create a histogram: {err}"))?;
        Ok(Self { latency, ok: 0, by_status: BTreeMap::new(), by_kind: [0; 3] })
    }

    fn record(&mut self, outcome: Outcome, elapsed: Duration) {
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

    fn errors(&self) -> u64 {
        self.by_status.values().sum::<u64>() + self.by_kind.iter().sum::<u64>()
    }

    fn count(&self) -> u64 {
        self.ok + self.errors()
    }
}

/// An order the run placed, from the `POST /api/orders` answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlacedOrder {
    id: i64,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

/// What one virtual user (or, merged, the run) did.
#[derive(Debug)]
struct Tally {
    /// Indexed by [`Operation::index`].
    ops: [OpStats; 3],
    orders: Vec<PlacedOrder>,
}

impl Tally {
    fn new() -> Result<Self, String> {
        Ok(Self { ops: [OpStats::new()?, OpStats::new()?, OpStats::new()?], orders: Vec::new() })
    }

    fn merge(&mut self, other: Self) -> Result<(), String> {
        for (mine, theirs) in self.ops.iter_mut().zip(&other.ops) {
            mine.merge(theirs)?;
        }
        self.orders.extend(other.orders);
        Ok(())
    }
}

/// SplitMix64: a fast, good-enough generator for picking operations and products; no
/// cryptography here and no dependency needed.
#[derive(Debug)]
struct Dice(u64);

impl Dice {
    fn roll(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniformly chosen index below `len` (which is above zero).
    fn index(&mut self, len: usize) -> usize {
        (self.roll() % len.max(1) as u64) as usize
    }
}

/// One virtual user: picks an operation, sends it, records the outcome in its own tally.
#[derive(Debug)]
struct VirtualUser {
    number: usize,
    plan: Arc<Plan>,
    progress: Arc<Progress>,
    dice: Dice,
    tally: Tally,
    /// Orders placed so far by this user, numbering its idempotency keys.
    placed: u64,
    /// `GET /api/notifications/{id}` of notifications seen in the list.
    known_notifications: Vec<Url>,
}

impl VirtualUser {
    fn new(number: usize, plan: Arc<Plan>, progress: Arc<Progress>, seed: u64) -> Result<Self, String> {
        let dice = Dice(seed ^ (number as u64).wrapping_mul(0xA076_1D64_78BD_642F));
        Ok(Self { number, plan, progress, dice, tally: Tally::new()?, placed: 0, known_notifications: Vec::new() })
    }

    /// One request of the mix.
    async fn act(&mut self) {
        let operation = self.plan.mix.pick(self.dice.roll());
        let started = Instant::now();
        let outcome = match operation {
            Operation::ProductRead => self.read_product().await,
            Operation::OrderCreate => self.place_order().await,
            Operation::NotificationRead => self.read_notifications().await,
        };
        self.tally.ops[operation.index()].record(outcome, started.elapsed());
        self.progress.done.fetch_add(1, Ordering::Relaxed);
        if outcome != Outcome::Success {
            self.progress.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn read_product(&mut self) -> Outcome {
        let plan = &self.plan;
        let url = if plan.product_urls.is_empty() || self.dice.roll().is_multiple_of(10) {
            &plan.product_list
        } else {
            &plan.product_urls[self.dice.index(plan.product_urls.len())]
        };
        let sent = plan.client.get(url.clone()).header(CORRELATION_ID, plan.correlation_id.clone()).send().await;
        drain(sent, Operation::ProductRead.success()).await
    }

    async fn place_order(&mut self) -> Outcome {
        let plan = &self.plan;
        if plan.order_bodies.is_empty() {
            return Outcome::Transport(FailureKind::Other);
        }
        let body = plan.order_bodies[self.dice.index(plan.order_bodies.len())].clone();
        self.placed += 1;
        // Unique per request, and the same value as the correlation id so one order can be
        // followed through the services' logs.
        let Ok(key) = HeaderValue::try_from(format!("{}{}-{}", plan.key_prefix, self.number, self.placed)) else {
            return Outcome::Transport(FailureKind::Other);
        };
        let sent = plan
            .client
            .post(plan.order_url.clone())
            .header(CONTENT_TYPE, APPLICATION_JSON)
            .header(IDEMPOTENCY_KEY, key.clone())
            .header(CORRELATION_ID, key)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => return Outcome::Transport(FailureKind::of(&err)),
        };
        if response.status() != StatusCode::CREATED {
            return drain(Ok(response), StatusCode::CREATED).await;
        }
        match response.bytes().await {
            Ok(body) => match serde_json::from_slice::<PlacedOrder>(&body) {
                Ok(order) => {
                    self.tally.orders.push(order);
                    Outcome::Success
                }
                Err(_) => Outcome::Transport(FailureKind::Other),
            },
            Err(err) => Outcome::Transport(FailureKind::of(&err)),
        }
    }

    async fn read_notifications(&mut self) -> Outcome {
        let plan = &self.plan;
        if !self.known_notifications.is_empty() && self.dice.roll().is_multiple_of(2) {
            let url = &self.known_notifications[self.dice.index(self.known_notifications.len())];
            let sent = plan.client.get(url.clone()).header(CORRELATION_ID, plan.correlation_id.clone()).send().await;
            return drain(sent, StatusCode::OK).await;
        }
        let sent = plan
            .client
            .get(plan.notification_list.clone())
            .header(CORRELATION_ID, plan.correlation_id.clone())
            .send()
            .await;
        if self.known_notifications.len() >= KNOWN_NOTIFICATIONS {
            return drain(sent, StatusCode::OK).await;
        }
        // Still learning ids for the by-id reads: read the page.
        let response = match sent {
            Ok(response) if response.status() == StatusCode::OK => response,
            other => return drain(other, StatusCode::OK).await,
        };
        match response.bytes().await {
            Ok(body) => {
                #[derive(Deserialize)]
                struct Listed {
                    id: i64,
                }
                let Ok(page) = serde_json::from_slice::<Vec<Listed>>(&body) else {
                    return Outcome::Transport(FailureKind::Other);
                };
                for listed in page.into_iter().take(KNOWN_NOTIFICATIONS - self.known_notifications.len()) {
                    if let Ok(url) = Url::parse(&format!("{}/api/notifications/{}", plan.notifications_base, listed.id))
                    {
                        self.known_notifications.push(url);
                    }
                }
                Outcome::Success
            }
            Err(err) => Outcome::Transport(FailureKind::of(&err)),
        }
    }
}

/// Reads an answer to the end (so its connection goes back to the pool) and judges it.
async fn drain(sent: Result<reqwest::Response, reqwest::Error>, success: StatusCode) -> Outcome {
    let mut response = match sent {
        Ok(response) => response,
        Err(err) => return Outcome::Transport(FailureKind::of(&err)),
    };
    loop {
        match response.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(err) => return Outcome::Transport(FailureKind::of(&err)),
        }
    }
    let status = response.status();
    if status == success { Outcome::Success } else { Outcome::Status(status.as_u16()) }
}

/// What the load phase produced.
#[derive(Debug)]
struct LoadResult {
    tally: Tally,
    orders: Vec<PlacedOrder>,
    elapsed: Duration,
    dropped: u64,
}

/// Runs the virtual users until the limit (or Ctrl-C), with progress on stderr.
async fn drive(
    session: &Session,
    args: &LoadArgs,
    working_set: &WorkingSet,
    stop: &Arc<Stop>,
) -> Result<LoadResult, String> {
    let plan = Arc::new(Plan::new(session, args, working_set)?);
    let progress = Arc::new(Progress::default());
    let limit = args.limit();
    let seed = uuid::Uuid::new_v4().as_u64_pair().0;
    let users = (0..args.users as usize)
        .map(|number| VirtualUser::new(number, plan.clone(), progress.clone(), seed))
        .collect::<Result<Vec<_>, _>>()?;

    let model = match args.rate {
        Some(rate) => format!("open model, {rate} req/s, at most {} in flight", args.users),
        None => format!("closed model, {} users", args.users),
    };
    let until = match limit {
        Limit::Time(duration) => format!("for {}", human_duration(duration)),
        Limit::Count(count) => format!("for {count} {}", if args.rate.is_some() { "arrivals" } else { "requests" }),
    };
    eprintln!("wharf load: {model}, {until}");

    let started = Instant::now();
    // The open model turns a time limit into its number of arrivals (below), so only the closed
    // model needs a timer.
    if let (Limit::Time(duration), None) = (limit, args.rate) {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            stop.stop();
        });
    }
    let finished = Arc::new(Stop::default());
    let display = tokio::spawn(show_progress(progress.clone(), limit, started, finished.clone()));

    let mut handles = Vec::with_capacity(users.len());
    match args.rate {
        None => {
            let budget = match limit {
                Limit::Count(count) => Some(Arc::new(AtomicU64::new(count))),
                Limit::Time(_) => None,
            };
            for user in users {
                handles.push(tokio::spawn(closed_loop(user, budget.clone(), stop.clone())));
            }
        }
        Some(rate) => {
            let (idle_tx, idle_rx) = mpsc::unbounded_channel();
            let mut slots = Vec::with_capacity(users.len());
            for user in users {
                let (job_tx, job_rx) = mpsc::channel(1);
                slots.push(job_tx);
                handles.push(tokio::spawn(open_slot(user, job_rx, idle_tx.clone())));
            }
            // Exactly the arrivals of the schedule, however late the runtime wakes the scheduler.
            let arrivals = match limit {
                Limit::Count(count) => count,
                Limit::Time(duration) => ((duration.as_secs_f64() * rate).ceil() as u64).max(1),
            };
            tokio::spawn(schedule(rate, arrivals, slots, idle_rx, progress.clone(), stop.clone()));
        }
    }

    let tallies = futures_util::future::join_all(handles).await;
    let elapsed = started.elapsed();
    finished.stop();
    let _ = display.await;
    let mut tally = Tally::new()?;
    let mut crashed = 0;
    for user_tally in tallies {
        match user_tally {
            Ok(user_tally) => tally.merge(user_tally)?,
            Err(_) => crashed += 1,
        }
    }
    if crashed > 0 {
        return Err(format!("{crashed} virtual users crashed; their results are lost"));
    }
    let orders = std::mem::take(&mut tally.orders);
    Ok(LoadResult { tally, orders, elapsed, dropped: progress.dropped.load(Ordering::Relaxed) })
}

/// Closed model: one request after another until the budget is spent or the load stops. A
/// request in flight when the load stops is finished (bounded by --timeout) and counted.
async fn closed_loop(mut user: VirtualUser, budget: Option<Arc<AtomicU64>>, stop: Arc<Stop>) -> Tally {
    loop {
        if stop.is_stopped() {
            break;
        }
        if let Some(budget) = &budget
            && budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(1)).is_err()
        {
            break;
        }
        user.act().await;
    }
    user.tally
}

/// Open model: one slot of `--users`; says it is idle, then serves the arrival it is given.
async fn open_slot(mut user: VirtualUser, mut jobs: mpsc::Receiver<()>, idle: mpsc::UnboundedSender<usize>) -> Tally {
    loop {
        if idle.send(user.number).is_err() {
            break;
        }
        // The scheduler closes the channels when the load stops.
        if jobs.recv().await.is_none() {
            break;
        }
        user.act().await;
    }
    user.tally
}

/// Open model: `arrivals` at `rate` per second on a fixed schedule from the start (or fewer after
/// Ctrl-C), each handed to an idle slot or, when there is none, dropped. Behind schedule (a busy
/// runtime) it catches up at once rather than shifting the schedule.
async fn schedule(
    rate: f64,
    arrivals: u64,
    slots: Vec<mpsc::Sender<()>>,
    mut idle: mpsc::UnboundedReceiver<usize>,
    progress: Arc<Progress>,
    stop: Arc<Stop>,
) {
    let started = Instant::now();
    let mut arrived: u64 = 0;
    while !stop.is_stopped() && arrived < arrivals {
        // Arrival k (from 0) is due at k / rate seconds.
        let due = ((started.elapsed().as_secs_f64() * rate) as u64 + 1).min(arrivals);
        while arrived < due {
            arrived += 1;
            let handed = match idle.try_recv() {
                Ok(slot) => slots.get(slot).is_some_and(|slot| slot.try_send(()).is_ok()),
                Err(_) => false,
            };
            if !handed {
                progress.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        let next = started + Duration::from_secs_f64(arrived as f64 / rate);
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = stop.stopped() => break,
        }
    }
    // Dropping the senders ends every slot once its request in flight is done.
    drop(slots);
}

/// A live bar on a terminal; on anything else (CI logs) a line every 5 s.
async fn show_progress(progress: Arc<Progress>, limit: Limit, started: Instant, finished: Arc<Stop>) {
    let target = ProgressDrawTarget::stderr();
    let live = !target.is_hidden();
    let bar = live.then(|| {
        let (length, template) = match limit {
            Limit::Time(duration) => (
                u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                "{spinner:.green} {elapsed_precise} {msg} [{wide_bar:.cyan/blue}]",
            ),
            Limit::Count(count) => {
                (count, "{spinner:.green} {elapsed_precise} {msg} [{wide_bar:.cyan/blue}] {pos}/{len}")
            }
        };
        let bar = ProgressBar::with_draw_target(Some(length), target);
        bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
        bar
    });
    let mut window: std::collections::VecDeque<(Instant, u64)> = std::collections::VecDeque::new();
    let tick = if live { Duration::from_millis(200) } else { Duration::from_secs(5) };
    let mut interval = tokio::time::interval_at(started + tick, tick);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = finished.stopped() => break,
        }
        let now = Instant::now();
        let done = progress.done.load(Ordering::Relaxed);
        let errors = progress.errors.load(Ordering::Relaxed);
        let dropped = progress.dropped.load(Ordering::Relaxed);
        // Current rate: over the last second or so on a terminal, the last 5 s otherwise.
        window.push_back((now, done));
        while window.len() > 2 && now.duration_since(window[0].0) > Duration::from_millis(1100) {
            window.pop_front();
        }
        let (since, done_then) =
            if window.len() > 1 { window.front().copied().unwrap_or((started, 0)) } else { (started, 0) };
        let seconds = now.duration_since(since).as_secs_f64();
        let rps = if seconds > 0.0 { (done - done_then) as f64 / seconds } else { 0.0 };
        let mut message = format!("{done} requests · {rps:.0} req/s · {errors} errors");
        if dropped > 0 {
            let _ = write!(message, " · {dropped} dropped");
        }
        match &bar {
            Some(bar) => {
                let position = match limit {
                    Limit::Time(_) => u64::try_from(now.duration_since(started).as_millis()).unwrap_or(u64::MAX),
                    // With --rate a count limits arrivals, dropped ones included.
                    Limit::Count(_) => done + dropped,
                };
                bar.set_position(position);
                bar.set_message(message);
            }
            None => eprintln!("wharf load: {:>6.1} s  {message}", now.duration_since(started).as_secs_f64()),
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

// ---------------------------------------------------------------------------------------------
// Phase 3: delivery
// ---------------------------------------------------------------------------------------------

/// What became of the notifications of the orders placed.
#[derive(Debug)]
struct Delivery {
    sent: u64,
    failed: u64,
    missing: u64,
    /// Notification `sentAt` − order `createdAt`, in µs, of the Sent ones.
    delay: Histogram<u64>,
    /// How long the wait took.
    waited: Duration,
    /// Why the last poll failed, when it did.
    last_error: Option<String>,
}

/// A notification as the poll reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationState {
    status: String,
    #[serde(default)]
    order_id: Option<i64>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    sent_at: Option<OffsetDateTime>,
}

/// Polls the run's notifications until every order placed has one Sent or Failed, the wait is
/// over, or Ctrl-C.
async fn await_delivery(
    session: &Session,
    orders: &[PlacedOrder],
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
            human_duration(wait),
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
    let base = format!("{}/api/notifications", session.targets.notifications);
    let mut offset = *settled_prefix;
    let mut settled = true;
    loop {
        let mut url = Url::parse(&base).map_err(|err| format!("invalid URL {base}: {err}"))?;
        url.query_pairs_mut()
            .append_pair("recipient", &session.recipient)
            .append_pair("limit", &POLL_PAGE.to_string())
            .append_pair("offset", &offset.to_string());
        let response = session.client.get(url).send().await.map_err(|err| describe(&err))?;
        if response.status() != StatusCode::OK {
            return Err(format!("GET /api/notifications answered {}", response.status()));
        }
        let page: Vec<NotificationState> =
            response.json().await.map_err(|err| format!("unexpected notifications page: {}", describe(&err)))?;
        for (position, notification) in page.iter().enumerate() {
            let final_state = notification.status != "Pending";
            if let Some(created_at) = notification.order_id.and_then(|id| pending.get(&id).copied())
                && final_state
            {
                if notification.status == "Sent" {
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

// ---------------------------------------------------------------------------------------------
// Phase 4: tidy-up
// ---------------------------------------------------------------------------------------------

/// Deletes the products the run created (unless --keep); returns those it could not delete.
/// Never fails the run, and never hangs: each delete is bounded, all run at once.
async fn tidy_up(session: &Session, args: &LoadArgs, working_set: &WorkingSet) -> Vec<i64> {
    if !working_set.created || args.keep || working_set.ids.is_empty() {
        return Vec::new();
    }
    let bound = args.timeout.min(Duration::from_secs(10));
    let deletions = working_set.ids.iter().map(|&id| async move {
        let url = format!("{}/api/products/{id}", session.targets.products);
        let outcome = match tokio::time::timeout(bound, session.client.delete(&url).send()).await {
            // 404: already gone, which is what tidying up wants.
            Ok(Ok(response)) if matches!(response.status(), StatusCode::NO_CONTENT | StatusCode::NOT_FOUND) => Ok(()),
            Ok(Ok(response)) => Err(format!("answered {}", response.status())),
            Ok(Err(err)) => Err(describe(&err)),
            Err(_) => Err(format!("no answer within {}", human_duration(bound))),
        };
        (id, outcome)
    });
    let mut not_deleted = Vec::new();
    for (id, outcome) in futures_util::future::join_all(deletions).await {
        if let Err(err) = outcome {
            eprintln!("wharf load: could not delete product {id}: {err}");
            not_deleted.push(id);
        }
    }
    not_deleted
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

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
struct Findings<'a> {
    load: &'a LoadResult,
    /// `None` with --notify-wait 0.
    delivery: Option<&'a Delivery>,
    not_deleted: Vec<i64>,
    /// Whether Ctrl-C cut the run short.
    interrupted: bool,
}

/// The run's report: `--json` prints it as is; otherwise [`Report::table`].
#[derive(Debug, Serialize)]
struct Report {
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
    fn new(session: &Session, args: &LoadArgs, working_set: &WorkingSet, findings: Findings<'_>) -> Self {
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
        if args.require_notified {
            match delivery {
                Some(delivery) if delivery.sent == orders_created => {}
                Some(delivery) => violations.push(format!(
                    "--require-notified: {} of {orders_created} orders notified (Sent) within {} ({} failed, {} missing)",
                    delivery.sent,
                    human_duration(args.notify_wait),
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
                require_notified: args.require_notified,
                passed: violations.is_empty(),
                violations,
            },
        }
    }

    /// The human form.
    fn table(&self) -> String {
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

// ---------------------------------------------------------------------------------------------
// Small things
// ---------------------------------------------------------------------------------------------

/// Records a value, growing the histogram as needed. (`saturating_record` would not grow it: it
/// clamps to the current range, which starts at 2 µs.)
fn record_micros(histogram: &mut Histogram<u64>, micros: u64) {
    if histogram.record(micros).is_err() {
        histogram.saturating_record(micros);
    }
}

/// What went wrong, in a few words: the innermost cause ("Connection refused (os error 111)",
/// "operation timed out"), since reqwest's own message only says that sending failed.
fn describe(err: &reqwest::Error) -> String {
    let mut innermost: &dyn std::error::Error = err;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    let text = innermost.to_string();
    if err.is_timeout() && !text.contains("timed out") { format!("timed out ({text})") } else { text }
}

/// `1m30s`, `500ms`, `2.5s`.
fn human_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis}ms")
    } else if !millis.is_multiple_of(1000) {
        format!("{:.1}s", duration.as_secs_f64())
    } else {
        let seconds = duration.as_secs();
        match (seconds / 60, seconds % 60) {
            (0, s) => format!("{s}s"),
            (m, 0) => format!("{m}m"),
            (m, s) => format!("{m}m{s}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_humane_units() {
        let ok = |text: &str| parse_duration(text).unwrap();
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("45"), Duration::from_secs(45));
        assert_eq!(ok("0"), Duration::ZERO);
        for bad in ["5x", "", "s", "1m30", "ten seconds", "-3s", "1..5s"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("500ms"), "{bad:?}: {err}");
        }
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit \"x\""));
        assert!(parse_positive_duration("0s").is_err());
    }

    #[test]
    fn durations_print_back_humanely() {
        for text in ["500ms", "30s", "2m", "1m30s", "1.5s"] {
            assert_eq!(human_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn mix_names_weights_and_errors() {
        let mix = Mix::parse("products=70, orders=20,notifications=10").unwrap();
        assert_eq!(mix.weights, [70, 20, 10]);
        assert_eq!(Mix::parse("order-create=1").unwrap().weights, [0, 1, 0]);
        let err = |text: &str| Mix::parse(text).unwrap_err();
        assert!(err("foo=1").contains("unknown operation \"foo\""));
        assert!(err("products=0,orders=0").contains("add up to 0"));
        assert!(err("products").contains("name=weight"));
        assert!(err("orders=-1").contains("weight of orders"));
        assert!(err("orders=1,order-create=2").contains("twice"));
    }

    #[test]
    fn mix_picks_in_proportion() {
        let mix = Mix::parse("products=70,orders=20,notifications=10").unwrap();
        let mut dice = Dice(7);
        let mut counts = [0u32; 3];
        for _ in 0..100_000 {
            counts[mix.pick(dice.roll()).index()] += 1;
        }
        for (count, expected) in counts.iter().zip([70_000, 20_000, 10_000]) {
            assert!(count.abs_diff(expected) < 1500, "{counts:?}");
        }
        let only_orders = Mix::parse("orders=3").unwrap();
        assert!((0..1000).all(|roll| only_orders.pick(roll) == Operation::OrderCreate));
    }

    #[test]
    fn rates_are_positive_numbers() {
        assert_eq!(parse_rate("12.5").unwrap(), 12.5);
        for bad in ["0", "-1", "fast", "inf", "NaN"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

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
        let kinds = ErrorKinds::of(&merged);
        assert_eq!((kinds.http, kinds.connect, kinds.timeout, kinds.other), (2, 2, 0, 0));
    }
}
