//! `products`: the products service as its own process.

use std::process::ExitCode;

use products::ProductsConfig;

fn main() -> ExitCode {
    wharf_runtime::process::run("products", ProductsConfig::from_env, |config| &config.service, products::start)
}
