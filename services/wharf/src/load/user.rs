//! The load phase: virtual users sending the operations of the mix, under the closed model (each
//! user sends its next request when the last one answered) or the open model (a fixed schedule of
//! arrivals handed to idle users, dropped when none is idle), until the limit or Ctrl-C.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{StatusCode, Url};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::mix::{Dice, Mix, Operation};
use super::progress::{Progress, show_progress};
use super::stats::{FailureKind, Outcome, Tally};
use super::working_set::WorkingSet;
use super::{Limit, LoadArgs, Session, Stop};
use crate::client::{ApiError, CORRELATION_ID, IDEMPOTENCY_KEY, NewOrder, Notification, Order, Routes};
use crate::duration;
use crate::targets::Service;

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// How many notification ids a virtual user remembers for `GET /api/notifications/{id}`.
const KNOWN_NOTIFICATIONS: usize = 20;

/// Everything a request needs that does not change during the run, built once from the client's
/// routes, so the hot path only clones a URL and a body.
#[derive(Debug)]
struct Plan {
    /// The run's client: its requests carry the token, if any.
    http: reqwest::Client,
    /// For `/api/notifications/{id}` of the notifications the users learn about.
    routes: Routes,
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
    /// `X-Correlation-ID` of reads: `load-<run id>`.
    correlation_id: HeaderValue,
    /// `load-<run id>-`: an order's idempotency key and correlation id add `<user>-<n>`.
    key_prefix: String,
}

impl Plan {
    fn new(session: &Session, args: &LoadArgs, working_set: &WorkingSet) -> Result<Self, String> {
        let routes = session.api.routes();
        let order_bodies = working_set
            .ids
            .iter()
            .map(|&product_id| {
                let order = NewOrder { product_id, quantity: 1, customer_email: &session.recipient };
                serde_json::to_vec(&order).map(Bytes::from)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| format!("cannot write an order body: {err}"))?;
        // Every URL of the run, or the first that cannot be made.
        let urls = || -> Result<_, ApiError> {
            Ok((
                working_set.ids.iter().map(|&id| routes.product(id)).collect::<Result<Vec<_>, _>>()?,
                routes.page(Service::Products, 20)?,
                routes.collection(Service::Orders)?,
                routes.notifications_of(&session.recipient, Some(20), None)?,
            ))
        };
        let (product_urls, product_list, order_url, notification_list) = urls().map_err(|err| err.to_string())?;
        Ok(Self {
            http: session.api.client().http().clone(),
            routes: routes.clone(),
            mix: args.mix,
            product_urls,
            product_list,
            order_url,
            order_bodies,
            notification_list,
            correlation_id: session.correlation_id.clone(),
            key_prefix: format!("load-{}-", session.run_id),
        })
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
        let dice = Dice::new(seed ^ (number as u64).wrapping_mul(0xA076_1D64_78BD_642F));
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
        let sent = plan.http.get(url.clone()).header(CORRELATION_ID, plan.correlation_id.clone()).send().await;
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
            .http
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
            Ok(body) => match serde_json::from_slice::<Order>(&body) {
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
            let sent = plan.http.get(url.clone()).header(CORRELATION_ID, plan.correlation_id.clone()).send().await;
            return drain(sent, StatusCode::OK).await;
        }
        let sent = plan
            .http
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
                let Ok(page) = serde_json::from_slice::<Vec<Notification>>(&body) else {
                    return Outcome::Transport(FailureKind::Other);
                };
                for listed in page.into_iter().take(KNOWN_NOTIFICATIONS - self.known_notifications.len()) {
                    if let Ok(url) = plan.routes.notification(listed.id) {
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
pub(super) struct LoadResult {
    /// Every request, by operation; its orders are moved to `orders`.
    pub(super) tally: Tally,
    /// The orders placed, for the delivery phase.
    pub(super) orders: Vec<Order>,
    /// How long the load took.
    pub(super) elapsed: Duration,
    /// Open model: arrivals that found every slot busy.
    pub(super) dropped: u64,
}

/// Runs the virtual users until the limit (or Ctrl-C), with progress on stderr.
pub(super) async fn drive(
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
        Limit::Time(length) => format!("for {}", duration::human(length)),
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
