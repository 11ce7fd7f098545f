//! Where a deployment's three services answer: one URL each, or one base URL with path routing.
//!
//! `smoke` and `load` speak only the public HTTP API, so they work the same against `wharf up`,
//! the three binaries, a compose stack or an ALB / ingress (`--base-url`, which routes
//! `/api/products*`, `/api/orders*` and `/api/notifications*` to their services).

use std::time::Duration;

/// Where each service answers under `wharf up`, and the variable that says otherwise.
pub const PRODUCTS_URL: &str = "http://127.0.0.1:5000";
/// See [`PRODUCTS_URL`].
pub const PRODUCTS_URL_VARIABLE: &str = "WHARF_PRODUCTS_URL";
/// See [`PRODUCTS_URL`].
pub const ORDERS_URL: &str = "http://127.0.0.1:5001";
/// See [`PRODUCTS_URL`].
pub const ORDERS_URL_VARIABLE: &str = "WHARF_ORDERS_URL";
/// See [`PRODUCTS_URL`].
pub const NOTIFICATIONS_URL: &str = "http://127.0.0.1:5002";
/// See [`PRODUCTS_URL`].
pub const NOTIFICATIONS_URL_VARIABLE: &str = "WHARF_NOTIFICATIONS_URL";

/// The service URL options shared by the commands that drive a deployment.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// The products service.
    #[arg(long, env = PRODUCTS_URL_VARIABLE, default_value = PRODUCTS_URL)]
    pub products: String,
    /// The orders service.
    #[arg(long, env = ORDERS_URL_VARIABLE, default_value = ORDERS_URL)]
    pub orders: String,
    /// The notifications service.
    #[arg(long, env = NOTIFICATIONS_URL_VARIABLE, default_value = NOTIFICATIONS_URL)]
    pub notifications: String,
    /// One base URL for all three, routed by path (an ingress / ALB); overrides the three above.
    #[arg(long, env = "WHARF_BASE_URL")]
    pub base_url: Option<String>,
}

/// Resolved base URLs, without a trailing slash.
#[derive(Debug, Clone)]
pub struct Targets {
    /// Base URL of products.
    pub products: String,
    /// Base URL of orders.
    pub orders: String,
    /// Base URL of notifications.
    pub notifications: String,
    /// Whether the three share one path-routed base URL: only `/api/*` is routed to a service
    /// there, so per-service endpoints such as `/health` are not reachable through it.
    pub path_routed: bool,
}

impl TargetArgs {
    /// The URLs these options name.
    pub fn resolve(&self) -> Targets {
        let trim = |url: &str| url.trim_end_matches('/').to_owned();
        match &self.base_url {
            Some(base) => {
                Targets { products: trim(base), orders: trim(base), notifications: trim(base), path_routed: true }
            }
            None => Targets {
                products: trim(&self.products),
                orders: trim(&self.orders),
                notifications: trim(&self.notifications),
                path_routed: false,
            },
        }
    }
}

/// An HTTP client for the commands: bounded time per request, HTTPS for ALB URLs.
pub fn client(timeout: Duration, max_idle_per_host: usize) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(max_idle_per_host)
        .user_agent(concat!("wharf/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| format!("cannot build an HTTP client: {err}"))
}
