//! `wharf dlq` (being written).

use std::process::ExitCode;

/// Options of `wharf dlq`.
#[derive(Debug, clap::Args)]
pub struct DlqArgs {}

/// Runs `wharf dlq`.
pub async fn run(_args: DlqArgs) -> ExitCode {
    eprintln!("wharf dlq: not available yet");
    ExitCode::FAILURE
}
