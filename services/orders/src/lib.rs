//! The wharf order service.
//!
//! Start-up: configuration → database (migrated) → bus → supervisor with the order-store pool,
//! the product gateway pool and the outbox relay → the edge with `/api/orders`.
//!
//! ```text
//! orders (supervisor)
//! ├── orders/store            pool of store workers
//! ├── orders/product-gateway  pool of gateway workers (timeout, retry, breaker, fallback cache)
//! └── orders/outbox-relay     OutboxRelay: outbox → bus (OrderPlaced v1)
//! ```

pub mod domain;
pub mod order_store;
pub mod outbox;
pub mod product_gateway;
pub mod routes;
pub mod store;

use std::sync::Arc;

use utoipa::OpenApi;
use wharf_actors::{Liveness, Supervisor, child};
use wharf_bus::{Bus, BusConfig};
use wharf_edge::{Edge, ServiceName};
use wharf_runtime::{Database, Env, RunningService, ServiceConfig, StartError, store_pool};

use crate::order_store::Orders;
use crate::outbox::{OutboxRelay, OutboxWritten, RelayArgs, RelayConfig, RelayStatus};
use crate::product_gateway::{GatewayConfig, product_gateway};
use crate::routes::OrdersApi;
use crate::store::{OrderStore, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};

/// How the service names itself.
pub const SERVICE: ServiceName = ServiceName { display: "OrderService", short: "orders" };
/// `PORT` when unset.
pub const DEFAULT_PORT: u16 = 5001;

/// The orders service's configuration.
#[derive(Debug, Clone)]
pub struct OrdersConfig {
    /// What every service reads.
    pub service: ServiceConfig,
    /// `PRODUCTS_*`, `BREAKER_*`: the way to products.
    pub gateway: GatewayConfig,
    /// `BUS*`, `AMQP_URL`, `SQS_QUEUE_URL`, `AWS_*`.
    pub bus: BusConfig,
    /// `OUTBOX_RELAY_ENABLED`: publish the outbox (off only to inspect it or in crash tests).
    pub relay_enabled: bool,
    /// Relay pacing (`OUTBOX_POLL_MS`, `OUTBOX_BATCH`).
    pub relay: RelayConfig,
    /// Registry name of the supervisor (tests vary it: actor names are process-wide).
    pub actor_namespace: String,
}

impl OrdersConfig {
    /// Reads the configuration; errors are collected in `env`.
    pub fn from_env(env: &mut Env) -> Self {
        let service = ServiceConfig::from_env(env, SERVICE.short, DEFAULT_PORT);
        let gateway = GatewayConfig::from_env(env);
        let bus = BusConfig::from_env(env);
        let relay_enabled = env.boolean("OUTBOX_RELAY_ENABLED", true);
        let relay = RelayConfig::from_env(env);
        Self { service, gateway, bus, relay_enabled, relay, actor_namespace: SERVICE.short.to_owned() }
    }
}

/// Starts the service with the bus its configuration names.
pub async fn start(config: OrdersConfig) -> Result<RunningService, StartError> {
    let bus = wharf_bus::connect(&config.bus).await.map_err(StartError::bus)?;
    start_with_bus(config, bus).await
}

/// Starts the service on an already open bus (`wharf up` shares one bus between services;
/// tests count what reaches it).
pub async fn start_with_bus(config: OrdersConfig, bus: Arc<dyn Bus>) -> Result<RunningService, StartError> {
    let settings = &config.service;
    let db = Database::connect(&settings.database_url, settings.database_max_connections).await?;
    db.migrate(&SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS).await?;
    // The store raises `written` after each commit; the relay waits on it.
    let written = OutboxWritten::new();
    let store = OrderStore::new(db.clone(), written.clone());
    let policy = settings.restart_policy();
    let liveness = Liveness::new();

    let mut edge = Edge::new(SERVICE, settings.edge(), liveness.clone());
    let (store_spec, store_client) = store_pool(store.clone(), settings, "order store");
    let (gateway_spec, gateway) = product_gateway(config.gateway.clone(), policy, edge.registry());
    let relay_status = RelayStatus::register(edge.registry(), store.outbox());
    let mut children = vec![store_spec, gateway_spec];
    if config.relay_enabled {
        let args = RelayArgs {
            outbox: store.outbox(),
            written,
            bus: bus.clone(),
            queue: config.bus.queue.clone(),
            config: config.relay,
            status: relay_status.clone(),
            owner: format!("{}/{}", config.actor_namespace, uuid::Uuid::new_v4()),
        };
        let (relay_spec, _relay) = child("outbox-relay", move || (OutboxRelay, args.clone()));
        children.push(relay_spec);
    } else {
        tracing::warn!("OUTBOX_RELAY_ENABLED=false: orders are accepted but their events stay in the outbox");
    }
    let supervisor = Supervisor::start(config.actor_namespace.clone(), policy, liveness, children).await?;

    let edge = edge
        .check(db.clone())
        .check(gateway.health())
        .check(relay_status)
        .supervisor(supervisor.clone())
        .openapi(routes::ApiDoc::openapi());
    let api = routes::routes(OrdersApi { orders: Orders::new(store_client), products: gateway }, edge.body_limit());
    let running = RunningService::serve(edge, api, supervisor, db.clone()).await?;
    tracing::info!(
        service = SERVICE.short,
        addr = %running.local_addr(),
        database = db.backend(),
        bus = %config.bus.backend,
        products = %config.gateway.products_url,
        "ready"
    );
    Ok(running)
}
