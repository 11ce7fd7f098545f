//! `wharf load` against a real `wharf up`: a short closed-model run whose every order is notified,
//! the same through a path-routing ingress (`--base-url`), an open-model run on a kept working set
//! reused by id, and the mistakes a user can make on the command line or with the addresses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use support::{Ingress, Platform, http_status, run};

/// Runs `wharf load --json <args>`; returns the exit code, the report and stderr.
fn load_json(args: &[&str]) -> (Option<i32>, Value, String) {
    let mut all = vec!["load", "--json"];
    all.extend_from_slice(args);
    let output = run(&all);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("stdout is not one JSON document ({err}):\n{stdout}\nstderr:\n{stderr}"));
    (output.status.code(), report, stderr)
}

/// Runs `wharf load --json <args> <platform's URLs>`.
fn load(platform: &Platform, args: &[&str]) -> (Option<i32>, Value, String) {
    let targets = platform.target_args();
    let mut all = args.to_vec();
    all.extend(targets.iter().map(String::as_str));
    load_json(&all)
}

fn number(report: &Value, pointer: &str) -> f64 {
    report.pointer(pointer).and_then(Value::as_f64).unwrap_or_else(|| panic!("no number at {pointer} in {report:#}"))
}

#[test]
fn a_counted_run_reports_every_request_and_every_order_is_notified() {
    let platform = Platform::start(&[("SEND_DELAY_EMAIL_MS", "5-20")]);
    let (code, report, stderr) = load(
        &platform,
        &[
            "--requests",
            "200",
            "--users",
            "8",
            "--mix",
            "products=50,orders=40,notifications=10",
            "--require-notified",
            "--max-errors",
            "0",
            "--notify-wait",
            "30",
        ],
    );
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_eq!(report["errors"], 0, "{report:#}");
    assert_eq!(report["requests"], 200, "exactly --requests are sent: {report:#}");
    assert_eq!(report["model"], "closed");
    let per_op: f64 = ["product_read", "order_create", "notification_read"]
        .iter()
        .map(|op| number(&report, &format!("/operations/{op}/count")))
        .sum();
    assert_eq!(per_op, 200.0, "{report:#}");

    let orders = number(&report, "/orders_created");
    assert!(orders > 0.0, "{report:#}");
    assert_eq!(number(&report, "/operations/order_create/ok"), orders);
    assert_eq!(number(&report, "/notifications_sent"), orders, "{report:#}");
    assert_eq!((report["notifications_failed"].as_u64(), report["notifications_missing"].as_u64()), (Some(0), Some(0)));

    let latency = |op: &str, p: &str| number(&report, &format!("/operations/{op}/latency_ms/{p}"));
    for op in ["product_read", "order_create"] {
        let (p50, p90, p99, max) = (latency(op, "p50"), latency(op, "p90"), latency(op, "p99"), latency(op, "max"));
        assert!(0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "{op}: {report:#}");
    }
    // Email delivery alone takes 5-20 ms, so the end-to-end delay cannot be shorter.
    assert!(number(&report, "/order_to_notification_ms/p50") >= 5.0, "{report:#}");
    assert!(number(&report, "/rps") > 0.0 && number(&report, "/duration_secs") > 0.0);

    let ids: Vec<i64> = report["products"]["ids"].as_array().unwrap().iter().map(|id| id.as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 5, "the default working set: {report:#}");
    assert_eq!(report["products"]["not_deleted"], serde_json::json!([]));
    for id in ids {
        assert_eq!(http_status("GET", &format!("{}/api/products/{id}", platform.products)), Some(404), "tidied up");
    }
}

#[test]
fn a_run_through_a_path_routing_ingress_has_no_errors_and_every_order_is_notified() {
    let platform = Platform::start(&[]);
    let ingress = Ingress::start(&platform);
    let (code, report, stderr) = load_json(&[
        "--base-url",
        &ingress.url,
        "--requests",
        "100",
        "--users",
        "4",
        "--max-errors",
        "0",
        "--require-notified",
        "--notify-wait",
        "30",
    ]);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_eq!((report["errors"].as_u64(), report["requests"].as_u64()), (Some(0), Some(100)), "{report:#}");
    let orders = number(&report, "/orders_created");
    assert!(orders > 0.0, "the default mix places orders: {report:#}");
    assert_eq!(number(&report, "/notifications_sent"), orders, "every order notified: {report:#}");
    assert_eq!(report["products"]["not_deleted"], serde_json::json!([]), "tidied up through the ingress too");
}

#[test]
fn an_open_model_run_keeps_its_schedule_and_a_kept_working_set_can_be_reused() {
    let platform = Platform::start(&[]);
    let (code, report, stderr) = load(
        &platform,
        &[
            "--rate",
            "100",
            "--duration",
            "1s",
            "--users",
            "4",
            "--products-count",
            "2",
            "--keep",
            "--notify-wait",
            "10s",
        ],
    );
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_eq!(report["model"], "open");
    // 100 arrivals in 1 s, each either sent or dropped.
    assert_eq!(number(&report, "/requests") + number(&report, "/dropped"), 100.0, "{report:#}");
    assert!(number(&report, "/duration_secs") >= 0.99, "the schedule spans the duration: {report:#}");
    assert_eq!(report["products"]["kept"], true);
    let ids: Vec<String> =
        report["products"]["ids"].as_array().unwrap().iter().map(|id| id.as_i64().unwrap().to_string()).collect();
    for id in &ids {
        assert_eq!(http_status("GET", &format!("{}/api/products/{id}", platform.products)), Some(200), "kept");
    }

    let listed = ids.join(",");
    let (code, report, stderr) =
        load(&platform, &["--requests", "30", "--users", "2", "--product-ids", &listed, "--require-notified"]);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_eq!(report["products"]["created"], false);
    assert_eq!(report["products"]["ids"].as_array().unwrap().len(), ids.len());
    for id in &ids {
        assert_eq!(http_status("GET", &format!("{}/api/products/{id}", platform.products)), Some(200), "not ours");
    }
}

/// Creates a product through the API; returns its id.
fn create_product(platform: &Platform, stock: i64) -> i64 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let body = serde_json::json!({"name": "out of stock", "price": 1.0, "stock": stock});
        let response = reqwest::Client::new()
            .post(format!("{}/api/products", platform.products))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    })
}

#[test]
fn thresholds_fail_the_run_with_exit_code_1_and_the_report_says_why() {
    // Every email of a load run fails at once (one attempt, no retry delay).
    let platform = Platform::start(&[
        ("SEND_FAIL_PATTERN", "load+*@example.com"),
        ("BUS_MAX_ATTEMPTS", "1"),
        ("EVENT_RETRY_DELAY_MS", "0"),
    ]);

    // Orders for a product out of stock are all refused with 422.
    let empty = create_product(&platform, 0).to_string();
    let (code, report, stderr) = load(
        &platform,
        &[
            "--product-ids",
            &empty,
            "--mix",
            "orders=1",
            "--requests",
            "10",
            "--users",
            "2",
            "--max-errors",
            "3",
            "--notify-wait",
            "0",
        ],
    );
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!((number(&report, "/errors"), number(&report, "/errors_by_status/422")), (10.0, 10.0), "{report:#}");
    assert_eq!(number(&report, "/errors_by_kind/http"), 10.0);
    assert_eq!(report["orders_created"], 0);
    assert_eq!(report["notifications_sent"], Value::Null, "not checked with --notify-wait 0");
    assert_eq!(report["thresholds"]["passed"], false);
    let violations = report["thresholds"]["violations"].to_string();
    assert!(violations.contains("10 requests failed") && violations.contains("--max-errors 3"), "{violations}");

    // Orders placed, but no email goes out.
    let (code, report, stderr) = load(
        &platform,
        &["--mix", "orders=1", "--requests", "10", "--users", "2", "--require-notified", "--notify-wait", "10s"],
    );
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!((report["errors"].as_u64(), report["orders_created"].as_u64()), (Some(0), Some(10)), "{report:#}");
    assert_eq!(report["notifications_sent"], 0);
    assert_eq!(number(&report, "/notifications_failed") + number(&report, "/notifications_missing"), 10.0);
    assert_eq!(report["order_to_notification_ms"], Value::Null, "nothing was sent: {report:#}");
    assert!(report["thresholds"]["violations"].to_string().contains("--require-notified"), "{report:#}");

    // The same without any flag: un-notified orders fail the verdict by default …
    let (code, report, stderr) =
        load(&platform, &["--mix", "orders=1", "--requests", "5", "--users", "2", "--notify-wait", "3s"]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!(report["thresholds"]["passed"], false, "{report:#}");
    assert!(report["thresholds"]["violations"].to_string().contains("not every order notified"), "{report:#}");
    // … unless the user opts out explicitly: then they are reported, not failed.
    let (code, report, stderr) = load(
        &platform,
        &["--mix", "orders=1", "--requests", "5", "--users", "2", "--notify-wait", "3s", "--allow-unnotified"],
    );
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_eq!(report["notifications_sent"], 0);
    assert_eq!(number(&report, "/notifications_failed") + number(&report, "/notifications_missing"), 5.0);
}

#[test]
fn an_unreachable_service_is_a_set_up_failure_naming_it() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{closed}");
    let output =
        run(&["load", "--requests", "5", "--products", &url, "--orders", &url, "--notifications", &url, "--json"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot reach products at {url}")), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(output.stdout.is_empty(), "no report without a run");
}

#[test]
fn bad_options_are_usage_errors_naming_the_problem() {
    let cases: [(&[&str], &[&str]); 7] = [
        (&["--mix", "foo=1"], &["--mix", "unknown operation \"foo\""]),
        (&["--mix", "products=0"], &["--mix", "add up to 0"]),
        (&["--duration", "5x"], &["--duration", "unknown unit \"x\""]),
        (&["--duration", "5s", "--requests", "10"], &["--duration", "cannot be used with", "--requests"]),
        (&["--rate", "0"], &["--rate", "above 0"]),
        (&["--product-ids", "1", "--products-count", "2"], &["--product-ids", "cannot be used with"]),
        (&["--require-notified", "--notify-wait", "0"], &["--require-notified", "--notify-wait"]),
    ];
    for (args, expected) in cases {
        let mut all = vec!["load"];
        all.extend_from_slice(args);
        let output = run(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        for text in expected {
            assert!(stderr.contains(text), "{args:?}: {text:?} missing from {stderr}");
        }
    }
}

#[test]
fn help_explains_every_option() {
    let output = run(&["load", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--products ",
        "--orders",
        "--notifications",
        "--base-url",
        "--users",
        "--duration",
        "--requests",
        "--rate",
        "--mix",
        "--products-count",
        "--product-ids",
        "--keep",
        "--notify-wait",
        "--timeout",
        "--max-errors",
        "--require-notified",
        "--json",
        "Examples:",
        "Exit codes",
    ] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}

#[test]
fn a_load_against_a_slowed_sender_fails_its_verdict_by_default() {
    // Every email takes 20 s: a load that waits 2 s for them ends with its orders un-notified.
    let platform = Platform::start(&[("SEND_DELAY_EMAIL_MS", "20000")]);
    let (code, report, stderr) =
        load(&platform, &["--mix", "orders=1", "--requests", "6", "--users", "2", "--notify-wait", "2s"]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!((report["errors"].as_u64(), report["orders_created"].as_u64()), (Some(0), Some(6)), "{report:#}");
    assert_eq!(report["notifications_sent"], 0, "{report:#}");
    assert_eq!(number(&report, "/notifications_failed") + number(&report, "/notifications_missing"), 6.0);
    assert!(report["thresholds"]["violations"].to_string().contains("0 of 6 orders notified"), "{report:#}");
}
