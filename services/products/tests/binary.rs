//! The `products` binary as a process: configuration errors, start-up, SIGTERM and escalation
//! exit codes — what Kubernetes sees.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use wharf_testkit::TempDir;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn products(dir: &TempDir, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_products"));
    command
        .env_clear()
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("DATABASE_URL", dir.sqlite_url("products.db"))
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Starts the binary and waits for its `ready` log line; returns the process, its base URL and
/// the time it took.
fn start(dir: &TempDir, vars: &[(&str, &str)]) -> (Child, String, Duration) {
    let (child, base, took, _) = start_logging(dir, vars);
    (child, base, took)
}

/// Like [`start`], also returning its stdout: the lines up to `ready`, then every later one.
fn start_logging(
    dir: &TempDir,
    vars: &[(&str, &str)],
) -> (Child, String, Duration, impl Iterator<Item = serde_json::Value>) {
    let started = Instant::now();
    let mut child = products(dir, vars).spawn().expect("spawn products");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let parse = |line: String| -> serde_json::Value {
        serde_json::from_str(&line).expect("every stdout line is a JSON log record")
    };
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let log = parse(line);
        seen.push(log.clone());
        if log["message"] == "ready" {
            let addr = log["addr"].as_str().expect("ready names the address").to_owned();
            return (
                child,
                format!("http://{addr}"),
                started.elapsed(),
                seen.into_iter().chain(rx.into_iter().map(parse)),
            );
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("products did not become ready");
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the process did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn terminate(child: &Child) {
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
    assert!(status.success());
}

#[test]
fn bad_configuration_is_one_line_per_variable_and_exit_code_2() {
    let dir = TempDir::new("bin");
    let output =
        products(&dir, &[("PORT", "http"), ("LOG_FORMAT", "xml"), ("BODY_LIMIT_BYTES", "-5")]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 3, "{stderr}");
    assert!(stderr.contains(r#"invalid PORT="http": expected an integer from 0 to 65535"#), "{stderr}");
    assert!(stderr.contains("LOG_FORMAT") && stderr.contains("BODY_LIMIT_BYTES"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn starts_quickly_and_sigterm_exits_cleanly() {
    let dir = TempDir::new("bin");
    let (mut child, base, took) = start(&dir, &[]);
    eprintln!("products ready in {took:?}");
    assert!(took < Duration::from_secs(5), "start-up took {took:?}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let ready = reqwest::get(format!("{base}/health/ready")).await.unwrap();
        assert_eq!(ready.status(), 200);
    });
    terminate(&child);
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
}

#[test]
fn every_log_line_names_the_service_by_its_short_name_whatever_the_trace_resource_is_called() {
    let dir = TempDir::new("bin");
    let vars = [("OTEL_SERVICE_NAME", "catalogue-resource"), ("RUST_LOG", "debug")];
    let (mut child, base, _, lines) = start_logging(&dir, &vars);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        assert_eq!(reqwest::get(format!("{base}/api/products")).await.unwrap().status(), 200);
        assert_eq!(reqwest::get(format!("{base}/nowhere")).await.unwrap().status(), 404);
    });
    terminate(&child);
    // Start-up, requests (inside their span and out), the drain: the stream ends when the process does.
    let lines: Vec<serde_json::Value> = lines.collect();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(15)).code(), Some(0));
    assert!(lines.iter().any(|line| line["correlationId"].is_string()), "request lines were logged");
    assert!(lines.iter().any(|line| line["message"] == "draining"), "the stop was logged");
    for line in &lines {
        assert_eq!(line["service"], "products", "{line}");
        assert!(line.get("correlation_id").is_none(), "one correlation field, `correlationId`: {line}");
    }
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let dir = TempDir::new("bin");
    let output = products(&dir, &[("PORT", &port)]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("set PORT to another port"), "{stderr}");
}

#[test]
fn unreachable_database_fails_start_up_with_exit_code_1() {
    let dir = TempDir::new("bin");
    let output = products(&dir, &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect to the database"), "{stderr}");
}

#[test]
fn a_restart_storm_makes_the_process_exit_non_zero() {
    let dir = TempDir::new("bin");
    let (mut child, base, _) = start(&dir, &[("CHAOS_ENABLED", "true"), ("SUPERVISOR_MAX_RESTARTS", "1")]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let actors: serde_json::Value =
            client.get(format!("{base}/admin/chaos/actors")).send().await.unwrap().json().await.unwrap();
        let store = actors["actors"][0].as_str().unwrap().to_owned();
        assert!(store.ends_with("/store"), "{actors}");
        for _ in 0..10 {
            let sent =
                client.post(format!("{base}/admin/chaos/kill")).json(&serde_json::json!({"actor": store})).send().await;
            if sent.is_err() {
                break; // the process is going down
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "escalation exits non-zero so the pod is restarted");
}

#[test]
fn healthcheck_asks_the_running_service_and_exits_0_or_1() {
    let dir = TempDir::new("bin");
    let (mut child, base, _) = start(&dir, &[]);
    let port = base.rsplit(':').next().unwrap().to_owned();
    // As a container's HEALTHCHECK runs it: the same environment, HOST bound to every address.
    let healthy = products(&dir, &[("PORT", &port), ("HOST", "0.0.0.0")]).arg("healthcheck").output().unwrap();
    assert_eq!(healthy.status.code(), Some(0), "{}", String::from_utf8_lossy(&healthy.stderr));
    terminate(&child);
    wait_exit(&mut child, Duration::from_secs(15));

    let gone = products(&dir, &[("PORT", &port)]).arg("healthcheck").output().unwrap();
    assert_eq!(gone.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert!(stderr.contains(&format!("cannot ask 127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn an_unknown_argument_is_exit_code_2() {
    let dir = TempDir::new("bin");
    let output = products(&dir, &[]).arg("serve").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("healthcheck"));
}

#[test]
fn operational_endpoints_answer_under_the_ingress_prefix_too() {
    let dir = TempDir::new("bin");
    let (mut child, base, _) = start(&dir, &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for path in ["/products/health", "/products/health/live", "/products/health/ready", "/products/openapi.json"] {
            let response = reqwest::get(format!("{base}{path}")).await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
        }
        let health: serde_json::Value =
            reqwest::get(format!("{base}/products/health")).await.unwrap().json().await.unwrap();
        assert_eq!(health["service"], "ProductService");
        // Only the operational endpoints: metrics stay off the ingress, other prefixes are not ours.
        for path in ["/products/metrics", "/orders/health", "/products/api/products"] {
            assert_eq!(reqwest::get(format!("{base}{path}")).await.unwrap().status(), 404, "{path}");
        }
    });
    terminate(&child);
    wait_exit(&mut child, Duration::from_secs(15));
}
