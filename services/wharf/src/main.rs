//! `wharf`: run the platform on a laptop (`up`), check a deployment end to end (`smoke`), load it
//! (`load`), break it on purpose (`chaos`) and look after its dead letters (`dlq`).

mod chaos;
mod client;
mod dlq;
mod duration;
mod load;
mod smoke;
mod targets;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc, not glibc's malloc: a request allocates and frees many small buffers across tokio's
/// worker threads, where glibc's per-thread arenas cost CPU (malloc/free were ~15 % of products'
/// profile) and keep freed memory resident; see docs/performance.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// wharf — products, orders and notifications, from one command.
#[derive(Debug, Parser)]
#[command(name = "wharf", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run products, orders and notifications in this process (ports 5000/5001/5002), each with
    /// its own SQLite file under ./data and an in-process bus between them. Ctrl-C stops all three.
    Up(up::UpArgs),
    /// Check a running wharf end to end: health, create a product, place an order, wait for its
    /// confirmation email, read the order back, tidy up. Exits 0 when every step passed.
    Smoke(smoke::SmokeArgs),
    /// Put a running wharf under load: virtual users reading products, placing orders and reading
    /// notifications; reports throughput, latency percentiles, errors and order→email delay.
    Load(load::LoadArgs),
    /// Inject faults into services started with CHAOS_ENABLED=true: kill an actor, add latency or
    /// errors to their API for a while, take them out of readiness.
    Chaos(chaos::ChaosArgs),
    /// Inspect, replay or purge the order-events dead-letter queue (memory, RabbitMQ or SQS).
    Dlq(dlq::DlqArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Up(args) => up::run(args, &runtime),
        Command::Smoke(args) => runtime.block_on(smoke::run(args)),
        Command::Load(args) => runtime.block_on(load::run(args)),
        Command::Chaos(args) => runtime.block_on(chaos::run(args)),
        Command::Dlq(args) => runtime.block_on(dlq::run(args)),
    }
}
