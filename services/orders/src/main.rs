//! `orders`: the orders service as its own process.

use std::process::ExitCode;

use orders::OrdersConfig;

/// mimalloc, not glibc's malloc: a request allocates and frees many small buffers across tokio's
/// worker threads, where glibc's per-thread arenas cost CPU (malloc/free were ~15 % of products'
/// profile) and keep freed memory resident; see docs/performance.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    wharf_runtime::process::run("orders", OrdersConfig::from_env, |config| &config.service, orders::start)
}
