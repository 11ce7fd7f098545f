//! `notifications`: the notification service as its own process.

use std::process::ExitCode;

use notifications::NotificationsConfig;
use wharf_edge::server::shutdown_signal;
use wharf_runtime::{Env, Stopped, init_telemetry};

fn main() -> ExitCode {
    let mut env = Env::from_process();
    let config = NotificationsConfig::from_env(&mut env);
    if let Err(errors) = env.finish() {
        eprintln!("{errors}");
        return ExitCode::from(2);
    }
    let _telemetry = init_telemetry(config.service.log_format, &config.service.log_filter);

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let service = match notifications::start(config).await {
            Ok(service) => service,
            Err(err) => {
                tracing::error!(error = %err, "notifications failed to start");
                eprintln!("notifications failed to start: {err}");
                return ExitCode::FAILURE;
            }
        };
        match service.run_until(shutdown_signal()).await {
            Stopped::Requested => ExitCode::SUCCESS,
            Stopped::Escalated(_) => ExitCode::FAILURE,
        }
    })
}
