//! `main` for a wharf service binary: secrets (exit 1 if one cannot be read), configuration
//! (exit 2 on a bad variable), logging and traces, start-up (exit 1 if it fails), serving until
//! SIGTERM/SIGINT (exit 0) or an escalated supervision failure (exit 1). Buffered log lines and
//! spans are flushed on every one of those exits once telemetry is up (the guard's drop).
//!
//! `<binary> healthcheck` instead asks the running service on the configured `HOST`/`PORT`
//! whether it is alive, exit 0 or 1: a distroless image has no curl for its `HEALTHCHECK`.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wharf_edge::server::shutdown_signal;

use crate::{Env, RunningService, ServiceConfig, StartError, Stopped, error_chain, init_telemetry, secrets};

/// How long `healthcheck` waits for the whole exchange: well under a container health check's
/// own timeout, so a hung service is reported unhealthy rather than timing the check out.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);

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
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut env = Env::from_process();
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("healthcheck") => {
            let config = read(&mut env);
            let common = settings(&config);
            return runtime.block_on(healthcheck(common.host, common.port));
        }
        Some(other) => {
            eprintln!("{service}: unknown argument {other:?}; run without arguments to serve, or `healthcheck`");
            return ExitCode::from(2);
        }
    }
    if let Err(err) = runtime.block_on(secrets::resolve(&mut env)) {
        eprintln!("{service} failed to start: {err}");
        return ExitCode::FAILURE;
    }
    let config = read(&mut env);
    if let Err(errors) = env.finish() {
        eprintln!("{errors}");
        return ExitCode::from(2);
    }
    let common = settings(&config);
    let _telemetry = init_telemetry(common.log_format, &common.log_filter, service, &common.traces);
    runtime.block_on(async {
        let running = match start(config).await {
            Ok(running) => running,
            Err(err) => {
                let reason = error_chain(&err);
                tracing::error!(error = %reason, "{service} failed to start");
                eprintln!("{service} failed to start: {reason}");
                return ExitCode::FAILURE;
            }
        };
        match running.run_until(shutdown_signal()).await {
            Stopped::Requested => ExitCode::SUCCESS,
            Stopped::Escalated(_) => ExitCode::FAILURE,
        }
    })
}

/// GETs `/health/live` from the service listening on `host:port`; 0 on a 200, 1 otherwise.
async fn healthcheck(host: IpAddr, port: u16) -> ExitCode {
    // A service bound to every address is asked on loopback.
    let host = match host {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    let addr = SocketAddr::new(host, port);
    match tokio::time::timeout(HEALTHCHECK_TIMEOUT, live_status(addr)).await {
        Ok(Ok(200)) => ExitCode::SUCCESS,
        Ok(Ok(status)) => {
            eprintln!("healthcheck: {addr} answered /health/live with {status}");
            ExitCode::FAILURE
        }
        Ok(Err(err)) => {
            eprintln!("healthcheck: cannot ask {addr}: {err}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("healthcheck: {addr} did not answer within {HEALTHCHECK_TIMEOUT:?}");
            ExitCode::FAILURE
        }
    }
}

/// One HTTP/1.1 exchange, enough to read a status line: no client library for one request.
async fn live_status(addr: SocketAddr) -> std::io::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET /health/live HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0_u8; 64];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .filter(|_| line.starts_with("HTTP/1."))
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response"))
}
