//! `wharf up`: the whole platform in one process, with embedded defaults.
//!
//! Each service gets its own configuration from the environment, with its own port and database
//! variables (`PRODUCTS_PORT`, `ORDERS_DATABASE_URL`, …) since one `PORT` cannot serve three
//! listeners. The services share one bus — by default the durable SQLite bus in `data/bus.db`
//! beside their databases, which is what connects orders to notifications here: an order's event
//! waits there until its email is sent, across Ctrl-C, crashes and restarts.

use std::process::ExitCode;
use std::sync::Arc;

use wharf_bus::Bus;
use wharf_edge::server::shutdown_signal;
use wharf_runtime::{Env, LogFormat, RunningService, TraceConfig, init_telemetry};

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Do not seed the demo catalogue into an empty products database.
    #[arg(long)]
    no_seed: bool,
}

/// One service's slice of the environment.
struct Slot {
    /// `products`, `orders`, `notifications`.
    name: &'static str,
    /// Its port variable, e.g. `PRODUCTS_PORT`.
    port_variable: &'static str,
    /// Its database variable, e.g. `PRODUCTS_DATABASE_URL`.
    database_variable: &'static str,
    default_port: u16,
}

const SLOTS: [Slot; 3] = [
    Slot {
        name: "products",
        port_variable: "PRODUCTS_PORT",
        database_variable: "PRODUCTS_DATABASE_URL",
        default_port: 5000,
    },
    Slot { name: "orders", port_variable: "ORDERS_PORT", database_variable: "ORDERS_DATABASE_URL", default_port: 5001 },
    Slot {
        name: "notifications",
        port_variable: "NOTIFICATIONS_PORT",
        database_variable: "NOTIFICATIONS_DATABASE_URL",
        default_port: 5002,
    },
];

/// The process environment as `slot` sees it: its own port and database in `PORT` and
/// `DATABASE_URL`, everything else shared.
fn env_for(process: &[(String, String)], slot: &Slot, errors: &mut Env) -> Env {
    let mut env = Env::from_pairs(process.iter().filter(|(k, _)| k != "PORT" && k != "DATABASE_URL").cloned());
    let port = errors.integer(slot.port_variable, slot.default_port, 0..=u16::MAX);
    env.set_default("PORT", port.to_string());
    let url = errors.string(slot.database_variable, &format!("sqlite://data/{}.db?mode=rwc", slot.name));
    env.set_default("DATABASE_URL", url);
    env
}

/// Every service's configuration, read in full before any of them starts.
struct Platform {
    products: products::ProductsConfig,
    orders: orders::OrdersConfig,
    notifications: notifications::NotificationsConfig,
    log_format: LogFormat,
    log_filter: String,
    traces: TraceConfig,
}

/// Reads every service's configuration; any bad variable stops here with exit code 2.
fn configure(args: &UpArgs) -> Result<Platform, String> {
    let process: Vec<(String, String)> =
        std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
    let mut shared = Env::from_pairs(process.iter().cloned());
    let mut errors = Vec::new();

    let mut env = env_for(&process, &SLOTS[0], &mut shared);
    env.set_default("SEED_DEMO_DATA", if args.no_seed { "false" } else { "true" });
    env.set_default("LOG_FORMAT", "pretty");
    let mut products = products::ProductsConfig::from_env(&mut env);
    products.service.port_variable = SLOTS[0].port_variable;
    errors.extend(env.finish().err().map(|e| e.to_string()));

    let mut env = env_for(&process, &SLOTS[1], &mut shared);
    env.set_default("PRODUCTS_URL", format!("http://127.0.0.1:{}", products.service.port));
    env.set_default("LOG_FORMAT", "pretty");
    let mut orders = orders::OrdersConfig::from_env(&mut env);
    orders.service.port_variable = SLOTS[1].port_variable;
    errors.extend(env.finish().err().map(|e| e.to_string()));

    let mut env = env_for(&process, &SLOTS[2], &mut shared);
    env.set_default("LOG_FORMAT", "pretty");
    // `/admin/dlq` is how `wharf dlq --bus memory` sees dead letters that live in this process
    // (`BUS=memory`); with the default SQLite bus `wharf dlq` can also open the file itself.
    env.set_default("ADMIN_ENABLED", "true");
    let mut notifications = notifications::NotificationsConfig::from_env(&mut env);
    notifications.service.port_variable = SLOTS[2].port_variable;
    errors.extend(env.finish().err().map(|e| e.to_string()));
    errors.extend(shared.finish().err().map(|e| e.to_string()));

    if !errors.is_empty() {
        // The same variable read by three services is reported once.
        let mut lines: Vec<&str> = errors.iter().flat_map(|e| e.lines()).collect();
        lines.dedup();
        let mut seen = std::collections::BTreeSet::new();
        lines.retain(|line| seen.insert(*line));
        return Err(lines.join("\n"));
    }
    let (log_format, log_filter) = (products.service.log_format, products.service.log_filter.clone());
    // One process, one trace resource: `service.name` is `wharf` unless OTEL_SERVICE_NAME says
    // otherwise; each span's `service` attribute tells the three apart.
    let mut traces = products.service.traces.clone();
    traces.service_name = process
        .iter()
        .find(|(k, v)| k == "OTEL_SERVICE_NAME" && !v.trim().is_empty())
        .map_or_else(|| "wharf".to_owned(), |(_, v)| v.trim().to_owned());
    Ok(Platform { products, orders, notifications, log_format, log_filter, traces })
}

/// Runs the platform until Ctrl-C (exit 0) or an escalated failure (exit 1).
pub fn run(args: UpArgs, runtime: &tokio::runtime::Runtime) -> ExitCode {
    let platform = match configure(&args) {
        Ok(platform) => platform,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let _telemetry = init_telemetry(platform.log_format, &platform.log_filter, "wharf", &platform.traces);
    runtime.block_on(async move {
        let services = match start(platform).await {
            Ok(services) => services,
            Err(err) => {
                eprintln!("wharf up failed: {err}");
                return ExitCode::FAILURE;
            }
        };
        banner(&services);
        let escalated = wait(&services).await;
        // Producers first, so nothing new enters a service that is already stopping.
        for service in services.into_iter().rev() {
            service.shutdown().await;
        }
        if escalated { ExitCode::FAILURE } else { ExitCode::SUCCESS }
    })
}

/// products, notifications, orders — in that order: each one's dependencies are up first.
async fn start(platform: Platform) -> Result<Vec<RunningService>, String> {
    let bus: Arc<dyn Bus> =
        wharf_bus::connect(&platform.orders.bus).await.map_err(|e| format!("cannot open the bus: {e}"))?;
    let mut started: Vec<RunningService> = Vec::new();
    let result = async {
        started.push(products::start(platform.products).await.map_err(|e| e.to_string())?);
        started
            .push(notifications::start_with_bus(platform.notifications, bus.clone()).await.map_err(|e| e.to_string())?);
        started.push(orders::start_with_bus(platform.orders, bus).await.map_err(|e| e.to_string())?);
        Ok::<(), String>(())
    }
    .await;
    match result {
        Ok(()) => Ok(started),
        Err(err) => {
            for service in started.into_iter().rev() {
                service.shutdown().await;
            }
            Err(err)
        }
    }
}

fn banner(services: &[RunningService]) {
    let names = ["products", "notifications", "orders"];
    println!("\n  wharf is up\n");
    for (name, service) in names.iter().zip(services) {
        let base = format!("http://{}", service.local_addr());
        println!("  {name:<14} {base}    swagger {base}/swagger/    health {base}/health");
    }
    println!("\n  check it:   cargo run -p wharf -- smoke        stop: Ctrl-C\n");
}

/// Waits for a signal (false) or any service's escalation (true).
async fn wait(services: &[RunningService]) -> bool {
    let failures = services.iter().map(|s| {
        let liveness = s.liveness().clone();
        Box::pin(async move { liveness.failed().await })
    });
    tokio::select! {
        () = shutdown_signal() => false,
        (reason, _, _) = futures_util::future::select_all(failures) => {
            tracing::error!(reason = %reason, "a service escalated; stopping the platform");
            true
        }
    }
}
