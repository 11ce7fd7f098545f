//! Where a deployment's three services answer: one URL each, or one base URL with path routing;
//! and the bearer token they may ask for.
//!
//! `smoke` and `load` speak only the public HTTP API, so they work the same against `wharf up`,
//! the three binaries, a compose stack or an ALB / ingress (`--base-url`, which routes
//! `/api/products*`, `/api/orders*` and `/api/notifications*` to their services).

use crate::client::BearerToken;

/// Where products answers under `wharf up`.
pub const PRODUCTS_URL: &str = "http://127.0.0.1:5000";
/// Names products' URL for every command, so one `export` points them all elsewhere.
pub const PRODUCTS_URL_VARIABLE: &str = "WHARF_PRODUCTS_URL";
/// Where orders answers under `wharf up`.
pub const ORDERS_URL: &str = "http://127.0.0.1:5001";
/// Names orders' URL for every command, so one `export` points them all elsewhere.
pub const ORDERS_URL_VARIABLE: &str = "WHARF_ORDERS_URL";
/// Where notifications answers under `wharf up`.
pub const NOTIFICATIONS_URL: &str = "http://127.0.0.1:5002";
/// Names notifications' URL for every command, so one `export` points them all elsewhere.
pub const NOTIFICATIONS_URL_VARIABLE: &str = "WHARF_NOTIFICATIONS_URL";

/// One of the platform's three services: what the commands name, address and check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// The products service (port 5000 under `wharf up`).
    Products,
    /// The orders service (port 5001).
    Orders,
    /// The notifications service (port 5002).
    Notifications,
}

impl Service {
    /// All three, in the order the platform's data flows (a product, its order, the email).
    pub const ALL: [Self; 3] = [Self::Products, Self::Orders, Self::Notifications];

    /// How the output names it; also its segment of the API (`/api/<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Products => "products",
            Self::Orders => "orders",
            Self::Notifications => "notifications",
        }
    }

    /// The variable that names its URL, shared by every command.
    pub fn url_variable(self) -> &'static str {
        match self {
            Self::Products => PRODUCTS_URL_VARIABLE,
            Self::Orders => ORDERS_URL_VARIABLE,
            Self::Notifications => NOTIFICATIONS_URL_VARIABLE,
        }
    }

    /// Its address under `wharf up`, used when nothing says otherwise.
    pub fn local_url(self) -> &'static str {
        match self {
            Self::Products => PRODUCTS_URL,
            Self::Orders => ORDERS_URL,
            Self::Notifications => NOTIFICATIONS_URL,
        }
    }
}

/// The service URL options shared by the commands that drive a deployment.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Base URL of the products service.
    #[arg(long, env = PRODUCTS_URL_VARIABLE, default_value = PRODUCTS_URL)]
    pub products: String,
    /// Base URL of the orders service.
    #[arg(long, env = ORDERS_URL_VARIABLE, default_value = ORDERS_URL)]
    pub orders: String,
    /// Base URL of the notifications service.
    #[arg(long, env = NOTIFICATIONS_URL_VARIABLE, default_value = NOTIFICATIONS_URL)]
    pub notifications: String,
    /// One base URL for all three, routed by path (an ingress / ALB); overrides the three above.
    #[arg(long, env = "WHARF_BASE_URL")]
    pub base_url: Option<String>,
    #[command(flatten)]
    pub access: AccessArgs,
}

/// How the commands prove who they are to a deployment that checks (JWT auth at its edge).
#[derive(Debug, Clone, clap::Args)]
pub struct AccessArgs {
    /// A bearer token for deployments with JWT auth: every request to the services then carries
    /// `Authorization: Bearer <TOKEN>`. The token is never printed; prefer the variable to the
    /// flag, which other users of the machine can see in the process list.
    #[arg(long, value_name = "TOKEN", env = "WHARF_TOKEN", hide_env_values = true, value_parser = BearerToken::parse)]
    pub token: Option<BearerToken>,
}

/// Resolved base URLs, without a trailing slash.
#[derive(Debug, Clone)]
pub struct Targets {
    /// Where products answers (`/api/products*`, `/health`).
    pub products: String,
    /// Where orders answers (`/api/orders*`, `/health`).
    pub orders: String,
    /// Where notifications answers (`/api/notifications*`, `/health`).
    pub notifications: String,
    /// Whether the three share one path-routed base URL: only `/api/*` is routed to a service
    /// there, so per-service endpoints such as `/health` are not reachable through it.
    pub path_routed: bool,
}

impl Targets {
    /// Where `service` answers.
    pub fn base(&self, service: Service) -> &str {
        match service {
            Service::Products => &self.products,
            Service::Orders => &self.orders,
            Service::Notifications => &self.notifications,
        }
    }
}

impl TargetArgs {
    /// The URLs these options name; `--base-url` wins over the three per-service ones.
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
