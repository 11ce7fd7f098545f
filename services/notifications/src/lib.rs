//! The wharf notification service.
//!
//! ```text
//! notifications (supervisor)
//! ├── notifications/store         API store worker pool
//! ├── notifications/senders       sender pool: mock email/SMS delivery (workers …/0 … n-1)
//! └── notifications/order-events  EventConsumer: OrderPlaced → one Email notification per event id
//! ```
//!
//! Beside the edge's metrics: the backlog (`backlog`), the order-events queue (`queue_metrics`), the
//! order → email delay (`order_to_email`) and the senders' outcomes (`sender`).

pub mod admin;
pub mod backlog;
pub mod domain;
pub mod order_events;
pub mod order_to_email;
pub mod queue_metrics;
pub mod routes;
pub mod sender;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use utoipa::OpenApi;
use warp::Filter;
use wharf_actors::{Liveness, Supervisor, pool};
use wharf_bus::{Bus, BusConfig, ConsumerOptions, QueueName, SubscribeOptions, consumer};
use wharf_edge::{Check, CheckOutcome, CheckStatus, Edge, ServiceName};
use wharf_runtime::{Database, Env, RunningService, ServiceConfig, StartError, store_pool};

use crate::backlog::BacklogStatus;
use crate::order_events::OrderPlacedHandler;
use crate::order_to_email::OrderToEmail;
use crate::queue_metrics::QueueMetrics;
use crate::routes::NotificationsApi;
use crate::sender::{SendJob, Sender, SenderConfig, parse_delay};
use crate::store::{NotificationStore, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};

/// How the service names itself.
pub const SERVICE: ServiceName = ServiceName { display: "NotificationService", short: "notifications" };
pub const DEFAULT_PORT: u16 = 5002;

/// The notifications service's configuration.
#[derive(Debug, Clone)]
pub struct NotificationsConfig {
    /// What every service reads.
    pub service: ServiceConfig,
    pub bus: BusConfig,
    pub senders: SenderConfig,
    /// `CONSUMER_PREFETCH`: events handled at once.
    pub prefetch: u16,
    /// `EVENT_RETRY_DELAY_MS`: wait before a failed event is delivered again.
    pub retry_delay: Duration,
    /// `BACKLOG_MAX_AGE_SECS`: `/health` is degraded while a notification has waited longer.
    pub backlog_max_age: Duration,
    /// `ADMIN_ENABLED`: mount `/admin/dlq` (off by default; `wharf up` turns it on).
    pub admin_enabled: bool,
    /// Registry name of the supervisor (tests vary it).
    pub actor_namespace: String,
}

impl NotificationsConfig {
    /// Reads the configuration; errors are collected in `env`.
    pub fn from_env(env: &mut Env) -> Self {
        let service = ServiceConfig::from_env(env, SERVICE.short, DEFAULT_PORT);
        let bus = BusConfig::from_env(env);
        let defaults = SenderConfig::default();
        let delay_rule = "milliseconds as min-max (e.g. 2000-3000) or one number, at most 600000";
        let senders = SenderConfig {
            email_delay: env.parse("SEND_DELAY_EMAIL_MS", defaults.email_delay.clone(), delay_rule, parse_delay),
            sms_delay: env.parse("SEND_DELAY_SMS_MS", defaults.sms_delay.clone(), delay_rule, parse_delay),
            fail_pattern: env.string("SEND_FAIL_PATTERN", &defaults.fail_pattern),
            workers: env.integer("SENDERS", defaults.workers, 1..=10_000),
            concurrency: env.integer("SEND_CONCURRENCY", defaults.concurrency, 1..=100_000),
            attempts: env.integer("SEND_ATTEMPTS", defaults.attempts, 1..=100),
            backoff: defaults.backoff,
        };
        // Each event holds its prefetch slot until its email is Sent (ack after the effect), so
        // the default matches the senders' concurrency: 2,048 slots keep ~800 emails/s flowing
        // at the default 2–3 s mock delay.
        let prefetch = env.integer("CONSUMER_PREFETCH", 2048, 1..=65_535);
        let backlog_max_age = Duration::from_secs(env.integer("BACKLOG_MAX_AGE_SECS", 60, 1..=86_400));
        let retry_delay = Duration::from_millis(env.integer("EVENT_RETRY_DELAY_MS", 2000, 0..=3_600_000));
        let admin_enabled = env.boolean("ADMIN_ENABLED", false);
        Self {
            service,
            bus,
            senders,
            prefetch,
            retry_delay,
            backlog_max_age,
            admin_enabled,
            actor_namespace: SERVICE.short.to_owned(),
        }
    }
}

/// The bus as a readiness check: notifications exists to consume it.
struct BusCheck {
    bus: Arc<dyn Bus>,
    queue: QueueName,
}

impl Check for BusCheck {
    fn name(&self) -> &'static str {
        "bus"
    }

    fn check(&self) -> futures_util::future::BoxFuture<'_, CheckOutcome> {
        Box::pin(async move {
            match self.bus.check(&self.queue).await {
                Ok(()) => CheckOutcome::with(CheckStatus::Up, self.bus.backend().as_str()),
                Err(err) => CheckOutcome::with(CheckStatus::Down, err.to_string()),
            }
        })
    }
}

/// Starts the service with the bus its configuration names.
pub async fn start(config: NotificationsConfig) -> Result<RunningService, StartError> {
    let bus = wharf_bus::connect(&config.bus).await.map_err(StartError::bus)?;
    start_with_bus(config, bus).await
}

/// Starts the service on an already open bus (`wharf up`, tests).
pub async fn start_with_bus(config: NotificationsConfig, bus: Arc<dyn Bus>) -> Result<RunningService, StartError> {
    let settings = &config.service;
    let db = Database::connect(&settings.database_url, settings.database_max_connections).await?;
    db.migrate(&SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS).await?;
    let store = NotificationStore::new(db.clone());
    let policy = settings.restart_policy();
    let liveness = Liveness::new();
    let mut edge = Edge::new(SERVICE, settings.edge(), liveness.clone());

    let (store_spec, store_client) = store_pool(store.clone(), settings, "notification store");
    let sender = Arc::new(Sender::new(store.clone(), config.senders.clone(), edge.registry()));
    // The sender queue holds every accepted direct send and every event in delivery.
    let (senders_spec, senders) = pool("senders", sender, config.senders.workers, 100_000, policy);
    let order_to_email = OrderToEmail::register(edge.registry());
    let handler = Arc::new(OrderPlacedHandler::new(store.clone(), senders.clone(), config.retry_delay, order_to_email));
    let options = ConsumerOptions {
        subscribe: SubscribeOptions { prefetch: config.prefetch, ..SubscribeOptions::default() },
        ..ConsumerOptions::default()
    };
    let (consumer_spec, consumer) = consumer("order-events", bus.clone(), config.bus.queue.clone(), handler, options);
    let supervisor = Supervisor::start(
        config.actor_namespace.clone(),
        policy,
        liveness,
        vec![store_spec, senders_spec, consumer_spec],
    )
    .await?;

    // Direct sends accepted before a restart and never delivered: hand them to the senders again.
    match store.pending_direct(10_000).await {
        Ok(pending) => {
            let count = pending.len();
            for stored in pending {
                let job = SendJob {
                    notification: stored.notification,
                    correlation_id: stored.correlation_id,
                    attempts: config.senders.attempts,
                    final_on_failure: true,
                    reply: None,
                    // Resumed at start-up: the request that asked for it is long gone.
                    parent: tracing::Span::none(),
                };
                if let Err(err) = senders.submit(job) {
                    tracing::warn!(error = %err, "could not resubmit a pending notification; it stays Pending");
                }
            }
            if count > 0 {
                tracing::info!(count, "pending direct sends handed to the senders again");
            }
        }
        Err(err) => tracing::warn!(error = %err, "could not read pending notifications"),
    }

    edge.registry().register_collector(Box::new(QueueMetrics::new(bus.clone(), config.bus.queue.clone(), consumer)));
    let backlog = BacklogStatus::register(edge.registry(), store.clone(), config.backlog_max_age);
    backlog.clone().watch();
    let edge = edge
        .check(db.clone())
        .check(backlog)
        .check(BusCheck { bus: bus.clone(), queue: config.bus.queue.clone() })
        .supervisor(supervisor.clone())
        .openapi(routes::ApiDoc::openapi());
    let api = NotificationsApi { store: store_client, senders, attempts: config.senders.attempts };
    let mut edge = edge;
    let mut routes = routes::routes(api, edge.body_limit());
    if config.admin_enabled {
        use warp::http::Method;
        edge = edge
            .undocumented_route("/admin/dlq", &[Method::GET, Method::DELETE])
            .undocumented_route("/admin/dlq/replay", &[Method::POST]);
        let dlq = admin::DlqAdmin { bus, queue: config.bus.queue.clone() };
        routes = routes.or(admin::routes(dlq, edge.body_limit())).unify().boxed();
    }
    let running = RunningService::serve(edge, routes, supervisor, db.clone()).await?;
    tracing::info!(service = SERVICE.short, addr = %running.local_addr(), database = db.backend(), bus = %config.bus.backend, "ready");
    Ok(running)
}
