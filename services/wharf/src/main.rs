//! `wharf`: run the platform on a laptop (`up`) and check a deployment end to end (`smoke`).

mod smoke;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    }
}
