//! `wharf dlq` against a real `wharf up` on its default SQLite bus, both through notifications'
//! `/admin/dlq` (`--bus memory`, the way to a bus inside the process) and straight from the bus
//! file (`--bus sqlite`): a poison order's event is listed with its reason, replayed by id and
//! handled again, and purged. The broker backends are driven the same way by
//! `scripts/e2e-services.sh` (RabbitMQ, SQS).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Platform, run};

/// How `wharf dlq` reaches the dead letters.
#[derive(Clone, Copy)]
enum Via {
    /// Notifications' `/admin/dlq`.
    Admin,
    /// The SQLite bus file in the platform's directory.
    File,
}

fn dlq(platform: &Platform, via: Via, args: &[&str]) -> std::process::Output {
    let mut all: Vec<String> = ["dlq"].into_iter().chain(args.iter().copied()).map(str::to_owned).collect();
    match via {
        Via::Admin => {
            all.extend(["--bus".into(), "memory".into(), "--notifications".into(), platform.notifications.clone()])
        }
        Via::File => {
            let url = format!("sqlite://{}/data/bus.db", platform.dir.path().display());
            all.extend(["--bus".into(), "sqlite".into(), "--sqlite-url".into(), url]);
        }
    }
    run(&all.iter().map(String::as_str).collect::<Vec<_>>())
}

fn listing(platform: &Platform, via: Via) -> Value {
    let output = dlq(platform, via, &["list", "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Waits until the order's event is in the DLQ with a `deadLetteredAt` other than `not`.
fn dead_letter_of(platform: &Platform, via: Via, order: i64, not: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = listing(platform, via);
        let found =
            listed["messages"].as_array().unwrap().iter().find(|m| m["body"]["data"]["orderId"] == order).cloned();
        if let Some(found) = found
            && &found["deadLetteredAt"] != not
        {
            return found;
        }
        assert!(Instant::now() < deadline, "order {order} not dead-lettered: {listed}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_poison_event_is_listed_replayed_and_purged_through_the_admin_endpoint() {
    poison_event_drill(Via::Admin);
}

#[test]
fn a_poison_event_is_listed_replayed_and_purged_straight_from_the_bus_file() {
    poison_event_drill(Via::File);
}

fn poison_event_drill(via: Via) {
    let platform =
        Platform::start(&[("BUS_MAX_ATTEMPTS", "2"), ("EVENT_RETRY_DELAY_MS", "50"), ("SEND_ATTEMPTS", "1")]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let order: Value = runtime.block_on(async {
        let product: Value = client
            .post(format!("{}/api/products", platform.products))
            .json(&json!({"name": "poison", "price": 1, "stock": 5}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let body = json!({"productId": product["id"], "quantity": 1, "customerEmail": "dlq@fail.test"});
        client.post(format!("{}/api/orders", platform.orders)).json(&body).send().await.unwrap().json().await.unwrap()
    });
    let order = order["id"].as_i64().unwrap();

    let letter = dead_letter_of(&platform, via, order, &Value::Null);
    assert_eq!(listing(&platform, via)["backend"], "sqlite", "wharf up's default bus");
    assert_eq!(letter["attempts"], 2);
    assert!(letter["reason"].as_str().unwrap().contains("SEND_FAIL_PATTERN"), "{letter}");

    let table = dlq(&platform, via, &["list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("1 dead letter(s)") && table.contains(&format!("[order {order}]")), "{table}");

    let id = letter["id"].as_str().unwrap();
    let replayed = dlq(&platform, via, &["replay", "--id", id]);
    assert!(replayed.status.success(), "{}", String::from_utf8_lossy(&replayed.stderr));
    assert!(String::from_utf8_lossy(&replayed.stdout).contains("replayed 1 dead letter"));
    let again = dead_letter_of(&platform, via, order, &letter["deadLetteredAt"]);
    assert_eq!(again["attempts"], 2, "handled again with a fresh attempt count");

    // An id that is not there is an operator's typo: exit 1, saying so.
    let missing = dlq(&platform, via, &["replay", "--id", "no-such-id"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not in the dead-letter queue"));

    let refused = dlq(&platform, via, &["purge"]);
    assert_eq!(refused.status.code(), Some(2), "purge needs --yes");
    assert_eq!(listing(&platform, via)["count"], 1);
    let purged = dlq(&platform, via, &["purge", "--yes"]);
    assert!(String::from_utf8_lossy(&purged.stdout).contains("purged 1 dead letter"));
    assert_eq!(listing(&platform, via)["count"], 0);
}

#[test]
fn wrong_targets_and_flags_are_clear_errors() {
    let not_notifications = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let output = run(&["dlq", "list", "--bus", "memory", "--notifications", &format!("http://{not_notifications}")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("did not answer"));

    let output = run(&["dlq", "replay", "--bus", "memory"]);
    assert_eq!(output.status.code(), Some(2), "replay needs --all or --id");
    let output = run(&["dlq", "replay", "--all", "--id", "x"]);
    assert_eq!(output.status.code(), Some(2), "--all and --id exclude each other");
    // A bus file that is not there is reported, and not created.
    let dir = support::TempDir::new("dlq-no-bus");
    let file = dir.path().join("bus.db");
    let url = format!("sqlite://{}", file.display());
    let output = run(&["dlq", "list", "--bus", "sqlite", "--sqlite-url", &url]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("sqlite dead-letter queue"), "{output:?}");
    assert!(!file.exists(), "wharf dlq created a bus file");

    let output = run(&["dlq", "list", "--bus", "kafka"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("kafka"));
}
