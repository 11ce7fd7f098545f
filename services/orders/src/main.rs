//! `orders`: the orders service as its own process.

use std::process::ExitCode;

use orders::OrdersConfig;

fn main() -> ExitCode {
    wharf_runtime::process::run("orders", OrdersConfig::from_env, |config| &config.service, orders::start)
}
