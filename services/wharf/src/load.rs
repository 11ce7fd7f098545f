//! `wharf load` (being written).

use std::process::ExitCode;

/// Options of `wharf load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {}

/// Runs `wharf load`.
pub async fn run(_args: LoadArgs) -> ExitCode {
    eprintln!("wharf load: not available yet");
    ExitCode::FAILURE
}
