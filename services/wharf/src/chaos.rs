//! `wharf chaos` (being written).

use std::process::ExitCode;

/// Options of `wharf chaos`.
#[derive(Debug, clap::Args)]
pub struct ChaosArgs {}

/// Runs `wharf chaos`.
pub async fn run(_args: ChaosArgs) -> ExitCode {
    eprintln!("wharf chaos: not available yet");
    ExitCode::FAILURE
}
