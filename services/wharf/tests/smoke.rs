//! `wharf smoke` against a real `wharf up`: directly, through a path-routing ingress
//! (`--base-url`), and with a service missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Ingress, Platform, run};

#[test]
fn smoke_passes_against_wharf_up() {
    let platform = Platform::start(&[]);
    let mut args = vec!["smoke".to_owned(), "--wait".into(), "20".into()];
    args.extend(platform.target_args());
    let output = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    for step in ["products is healthy", "place an order", "confirmation email is sent", "tidy up", "smoke passed"] {
        assert!(stdout.contains(step), "{step:?} missing from:\n{stdout}");
    }
}

#[test]
fn smoke_passes_through_a_path_routing_ingress() {
    let platform = Platform::start(&[]);
    let ingress = Ingress::start(&platform);
    // With a trailing slash, as a URL is often pasted.
    let output = run(&["smoke", "--wait", "20", "--base-url", &format!("{}/", ingress.url)]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("GET /api/orders answers"), "health goes through the routed API:\n{stdout}");
    assert!(stdout.contains("smoke passed"), "{stdout}");
}

#[test]
fn smoke_fails_and_says_which_step_when_a_service_is_missing() {
    let platform = Platform::start(&[]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let notifications = format!("http://{closed}");
    let output = run(&[
        "smoke",
        "--wait",
        "2",
        "--products",
        &platform.products,
        "--orders",
        &platform.orders,
        "--notifications",
        &notifications,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("✗ notifications is healthy"), "{stdout}");
    assert!(stdout.contains("smoke FAILED"), "{stdout}");
}
