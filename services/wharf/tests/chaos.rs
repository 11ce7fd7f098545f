//! `wharf chaos` as an operator runs it: the real `wharf up` in a child process on free ports,
//! driven by the real `wharf chaos`, with the effect checked over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Platform, free_ports, wharf};

/// `wharf up` with the chaos routes mounted or not.
fn up(chaos_enabled: bool) -> Platform {
    Platform::start(&[("CHAOS_ENABLED", if chaos_enabled { "true" } else { "false" })])
}

/// Runs `wharf chaos <args>` with the platform's URLs in the environment, as an operator would.
fn chaos(platform: Option<&Platform>, args: &[&str]) -> Output {
    let mut command = wharf();
    command.arg("chaos").args(args).env_clear();
    if let Some(platform) = platform {
        command
            .env("WHARF_PRODUCTS_URL", &platform.products)
            .env("WHARF_ORDERS_URL", &platform.orders)
            .env("WHARF_NOTIFICATIONS_URL", &platform.notifications);
    }
    command.output().expect("run wharf chaos")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn succeeds(output: Output) -> String {
    assert_eq!(output.status.code(), Some(0), "stdout: {}\nstderr: {}", stdout(&output), stderr(&output));
    stdout(&output)
}

/// Blocking HTTP for the checks (the tests themselves are synchronous, like the child processes).
struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Self {
        Self { runtime: tokio::runtime::Runtime::new().unwrap(), client: reqwest::Client::new() }
    }

    fn status(&self, url: &str) -> u16 {
        self.runtime.block_on(async { self.client.get(url).send().await.unwrap().status().as_u16() })
    }

    fn json(&self, url: &str) -> Value {
        self.runtime.block_on(async { self.client.get(url).send().await.unwrap().json().await.unwrap() })
    }

    /// Polls until `url` answers `status` (a killed actor takes a moment to come back).
    fn eventually(&self, url: &str, status: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = 0;
        while Instant::now() < deadline {
            last = self.status(url);
            if last == status {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{url} still answers {last}, expected {status}");
    }
}

#[test]
fn chaos_drives_a_running_wharf_and_undoes_what_it_did() {
    let platform = up(true);
    let http = Http::new();
    let products_api = format!("{}/api/products", platform.products);

    // status: a table of faults and the killable actors.
    let shown = succeeds(chaos(Some(&platform), &["status", "--service", "products"]));
    assert!(shown.contains(&format!("products ({})", platform.products)), "{shown}");
    assert!(shown.contains("readiness") && shown.contains("not forced"), "{shown}");
    assert!(shown.contains("products/store"), "actors are listed: {shown}");

    // kill: the actor dies, its supervisor restarts it, the service stays healthy.
    let actors = http.json(&format!("{}/admin/chaos/actors", platform.products));
    let victim = actors["actors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|name| name.ends_with("/0"))
        .expect("a pool worker to kill")
        .to_owned();
    let killed = succeeds(chaos(Some(&platform), &["kill", "--service", "products", &victim]));
    assert!(killed.contains(&format!("killed {victim}")), "{killed}");
    http.eventually(&products_api, 200);
    assert_eq!(http.status(&format!("{}/health/ready", platform.products)), 200);
    assert_eq!(http.status(&format!("{}/health/live", platform.products)), 200);
    let unknown = chaos(Some(&platform), &["kill", "--service", "products", "products/nobody"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("no killable actor is named \"products/nobody\""), "{}", stderr(&unknown));

    // errors: every API request fails until cleared; health is spared.
    let injected =
        succeeds(chaos(Some(&platform), &["errors", "--service", "products", "--rate", "1", "--for", "30s"]));
    assert_eq!(injected.trim(), "products: errors 100% → 503 on /api/ for 30 s");
    assert_eq!(http.status(&products_api), 503);
    assert_eq!(http.status(&format!("{}/health/ready", platform.products)), 200);
    assert_eq!(http.status(&format!("{}/api/orders", platform.orders)), 200, "only products was told");
    let shown = succeeds(chaos(Some(&platform), &["status", "--service", "products"]));
    assert!(shown.contains("100% → 503 on /api/") && shown.contains("1 failed"), "{shown}");
    assert!(shown.lines().any(|line| line.split_whitespace().eq(["latency", "none", "-"])), "{shown}");
    let cleared = succeeds(chaos(Some(&platform), &["clear", "--service", "products"]));
    assert!(cleared.contains("products: latency and errors cleared"), "{cleared}");
    assert_eq!(http.status(&products_api), 200);

    // unready / ready: readiness flips, liveness and the API do not.
    let orders_ready = format!("{}/health/ready", platform.orders);
    let forced = succeeds(chaos(Some(&platform), &["unready", "--service", "orders", "--for", "1m"]));
    assert_eq!(forced.trim(), "orders: readiness forced to 503 for 1 min (liveness untouched)");
    assert_eq!(http.status(&orders_ready), 503);
    assert_eq!(http.status(&format!("{}/health/live", platform.orders)), 200);
    assert_eq!(http.status(&format!("{}/api/orders", platform.orders)), 200);
    let shown = succeeds(chaos(Some(&platform), &["status", "--service", "orders"]));
    assert!(shown.contains("forced 503"), "{shown}");
    succeeds(chaos(Some(&platform), &["ready", "--service", "orders"]));
    assert_eq!(http.status(&orders_ready), 200);

    // latency, addressed by --url: the API waits, then answers.
    let url = platform.notifications.clone();
    let delayed = succeeds(chaos(
        None,
        &["latency", "--url", &url, "--ms", "400", "--jitter-ms", "100", "--for", "30s", "--service", "notifications"],
    ));
    assert_eq!(delayed.trim(), "notifications: latency 400±100 ms on /api/ for 30 s");
    let started = Instant::now();
    assert_eq!(http.status(&format!("{url}/api/notifications")), 200);
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    succeeds(chaos(None, &["clear", "--url", &url]));
}

#[test]
fn a_service_without_chaos_enabled_is_named_as_such() {
    let platform = up(false);
    let refused = chaos(Some(&platform), &["status", "--service", "products"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("CHAOS_ENABLED=true"), "{}", stderr(&refused));
    for args in [
        &["errors", "--service", "orders", "--rate", "0.5", "--for", "10s"][..],
        &["kill", "--service", "notifications", "notifications/store/0"],
    ] {
        let refused = chaos(Some(&platform), args);
        assert_eq!(refused.status.code(), Some(1));
        assert!(stderr(&refused).ends_with("start the service with CHAOS_ENABLED=true\n"), "{}", stderr(&refused));
    }
}

#[test]
fn bad_flags_exit_2_and_an_unreachable_service_exits_1() {
    for args in [
        &[][..],
        &["status"],
        &["status", "--service", "payments"],
        &["errors", "--service", "products", "--rate", "1.5", "--for", "30s"],
        &["errors", "--service", "products", "--rate", "0.5", "--for", "30"],
        &["errors", "--service", "products", "--rate", "0.5", "--for", "2h"],
        &["errors", "--service", "products", "--rate", "0.5", "--for", "10s", "--status", "404"],
        &["latency", "--service", "products", "--ms", "100", "--jitter-ms", "200", "--for", "10s"],
        &["latency", "--service", "products", "--for", "10s"],
        &["kill", "--service", "products"],
        &["unready", "--url", "localhost:5000", "--for", "10s"],
    ] {
        let output = chaos(None, args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
    }
    let no_unit = chaos(None, &["unready", "--service", "orders", "--for", "30"]);
    assert!(stderr(&no_unit).contains("needs a unit"), "{}", stderr(&no_unit));

    let [closed, _, _] = free_ports();
    let url = format!("http://127.0.0.1:{closed}");
    let unreachable = chaos(None, &["status", "--url", &url, "--timeout", "2s"]);
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(stderr(&unreachable).contains("cannot reach"), "{}", stderr(&unreachable));
}

#[test]
fn help_explains_every_subcommand_and_option() {
    let help = succeeds(chaos(None, &["--help"]));
    for word in ["status", "kill", "latency", "errors", "unready", "ready", "clear", "Examples", "CHAOS_ENABLED"] {
        assert!(help.contains(word), "{word} in {help}");
    }
    for (subcommand, options) in [
        ("status", &["--service", "--url", "--timeout"][..]),
        ("kill", &["ACTOR", "--all-matching", "Possible values"]),
        ("latency", &["--ms", "--jitter-ms", "--for", "--path-prefix", "Example"]),
        ("errors", &["--rate", "--status", "--for", "--path-prefix", "Retry-After"]),
        ("unready", &["--for", "/health/live"]),
        ("ready", &["--service"]),
        ("clear", &["--service"]),
    ] {
        let help = succeeds(chaos(None, &[subcommand, "--help"]));
        for option in options {
            assert!(help.contains(option), "`wharf chaos {subcommand} --help` mentions {option}: {help}");
        }
    }
}
