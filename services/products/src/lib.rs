//! The wharf product catalogue service.
//!
//! Start-up reads like the request path: configuration → database (migrated) → the supervisor
//! and its store pool → the edge with the `/api/products` routes. `main.rs` only adds process
//! concerns (exit codes, signals).
//!
//! ```text
//! products (supervisor)
//! └── products/store        pool of store workers (products/store/0 … n-1)
//! ```

pub mod catalogue;
pub mod domain;
pub mod routes;
pub mod store;

use utoipa::OpenApi;
use wharf_actors::{Liveness, Supervisor};
use wharf_edge::{Edge, ServiceName};
use wharf_runtime::{Database, Env, RunningService, ServiceConfig, StartError, store_pool};

use crate::catalogue::Catalogue;
use crate::store::{POSTGRES_MIGRATIONS, ProductStore, SQLITE_MIGRATIONS};

/// How the service names itself.
pub const SERVICE: ServiceName = ServiceName { display: "ProductService", short: "products" };
pub const DEFAULT_PORT: u16 = 5000;

/// The products service's configuration.
#[derive(Debug, Clone)]
pub struct ProductsConfig {
    /// What every service reads.
    pub service: ServiceConfig,
    /// `SEED_DEMO_DATA`: add a small demo catalogue when the store is empty.
    pub seed_demo: bool,
    /// The registry name of the service's supervisor; its actors are named under it. Actor
    /// names are process-wide, so tests that start several services in one process vary it.
    pub actor_namespace: String,
}

impl ProductsConfig {
    /// Reads the configuration; errors are collected in `env`.
    pub fn from_env(env: &mut Env) -> Self {
        let service = ServiceConfig::from_env(env, SERVICE.short, DEFAULT_PORT);
        let seed_demo = env.boolean("SEED_DEMO_DATA", false);
        Self { service, seed_demo, actor_namespace: SERVICE.short.to_owned() }
    }
}

/// Starts the service; it serves until [`RunningService::run_until`] or `shutdown`.
pub async fn start(config: ProductsConfig) -> Result<RunningService, StartError> {
    let settings = &config.service;
    let db = Database::connect(&settings.database_url, settings.database_max_connections).await?;
    db.migrate(&SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS).await?;
    let store = ProductStore::new(db.clone());
    if config.seed_demo {
        let added = store.seed_demo().await?;
        if added > 0 {
            tracing::info!(added, "seeded the demo catalogue");
        }
    }

    let (store_spec, store) = store_pool(store, settings, "product store");
    let liveness = Liveness::new();
    let supervisor = Supervisor::start(
        config.actor_namespace.clone(),
        settings.restart_policy(),
        liveness.clone(),
        vec![store_spec],
    )
    .await?;

    let mut edge = Edge::new(SERVICE, settings.edge(), liveness).check(db.clone()).supervisor(supervisor.clone());
    edge = edge.openapi(routes::ApiDoc::openapi());
    let api = routes::routes(Catalogue::new(store), edge.body_limit());
    let running = RunningService::serve(edge, api, supervisor, db.clone()).await?;
    tracing::info!(
        service = SERVICE.short,
        addr = %running.local_addr(),
        database = db.backend(),
        workers = settings.database_max_connections,
        "ready"
    );
    Ok(running)
}
