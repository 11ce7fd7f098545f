//! `main` for a wharf service binary: configuration (exit 2 on a bad variable), logging, the
//! runtime, start-up (exit 1 if it fails), serving until SIGTERM/SIGINT (exit 0) or an escalated
//! supervision failure (exit 1).

use std::future::Future;
use std::process::ExitCode;

use wharf_edge::server::shutdown_signal;

use crate::{Env, RunningService, ServiceConfig, StartError, Stopped, init_telemetry};

/// Runs a service binary. `read` builds its configuration from the environment; `service`
/// names it in messages; `start` starts it.
pub fn run<C, Fut>(
    service: &str,
    read: impl FnOnce(&mut Env) -> C,
    settings: impl Fn(&C) -> &ServiceConfig,
    start: impl FnOnce(C) -> Fut,
) -> ExitCode
where
    Fut: Future<Output = Result<RunningService, StartError>>,
{
    let mut env = Env::from_process();
    let config = read(&mut env);
    if let Err(errors) = env.finish() {
        eprintln!("{errors}");
        return ExitCode::from(2);
    }
    let common = settings(&config);
    let _telemetry = init_telemetry(common.log_format, &common.log_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let running = match start(config).await {
            Ok(running) => running,
            Err(err) => {
                tracing::error!(error = %err, "{service} failed to start");
                eprintln!("{service} failed to start: {err}");
                return ExitCode::FAILURE;
            }
        };
        match running.run_until(shutdown_signal()).await {
            Stopped::Requested => ExitCode::SUCCESS,
            Stopped::Escalated(_) => ExitCode::FAILURE,
        }
    })
}
