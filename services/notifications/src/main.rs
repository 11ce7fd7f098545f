//! `notifications`: the notifications service as its own process.

use std::process::ExitCode;

use notifications::NotificationsConfig;

fn main() -> ExitCode {
    wharf_runtime::process::run(
        "notifications",
        NotificationsConfig::from_env,
        |config| &config.service,
        notifications::start,
    )
}
