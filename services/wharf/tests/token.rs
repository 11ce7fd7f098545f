//! `--token` / `WHARF_TOKEN` as an operator uses them: a deployment behind a gateway that wants a
//! bearer token lets `wharf smoke` and `wharf load` in with it and refuses them without it, and
//! the token never shows in `--help`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Output;

use serde_json::Value;
use support::{Ingress, Platform, wharf};

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ3aGFyZiJ9.c2lnbmVk";

fn run(args: &[&str], token: Option<&str>) -> Output {
    let mut command = wharf();
    command.args(args).env_clear();
    if let Some(token) = token {
        command.env("WHARF_TOKEN", token);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_guarded_deployment_lets_the_token_in_and_keeps_everyone_else_out() {
    let platform = Platform::start(&[]);
    let ingress = Ingress::guarded(&platform, Some(TOKEN));

    let refused = run(&["smoke", "--wait", "5", "--base-url", &ingress.url], None);
    let stdout = text(&refused.stdout);
    assert_eq!(refused.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("✗ products is healthy"), "{stdout}");
    assert!(stdout.contains("401 Unauthorized: a valid bearer token is required"), "{stdout}");

    let wrong = run(&["smoke", "--wait", "5", "--base-url", &ingress.url, "--token", "not-the-token"], None);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong.stdout));

    let passed = run(&["smoke", "--wait", "20", "--base-url", &ingress.url], Some(TOKEN));
    let stdout = text(&passed.stdout);
    assert!(passed.status.success(), "{stdout}\n{}", text(&passed.stderr));
    assert!(stdout.contains("smoke passed") && !stdout.contains(TOKEN), "{stdout}");

    // The load's hot path, set-up, delivery poll and tidy-up all go through the gateway too.
    let args: [&str; 8] = ["load", "--base-url", &ingress.url, "--requests", "60", "--users", "3", "--json"];
    let mut with_flag = args.to_vec();
    with_flag.extend(["--token", TOKEN, "--notify-wait", "20s", "--require-notified", "--max-errors", "0"]);
    let loaded = run(&with_flag, None);
    assert_eq!(loaded.status.code(), Some(0), "{}\n{}", text(&loaded.stdout), text(&loaded.stderr));
    let report: Value = serde_json::from_slice(&loaded.stdout).unwrap();
    assert_eq!((report["requests"].as_u64(), report["errors"].as_u64()), (Some(60), Some(0)), "{report:#}");
    assert_eq!(report["products"]["not_deleted"], serde_json::json!([]), "{report:#}");

    let locked_out = run(&args, None);
    assert_eq!(locked_out.status.code(), Some(1));
    let stderr = text(&locked_out.stderr);
    assert!(stderr.contains("set-up failed") && stderr.contains("401"), "{stderr}");
}

#[test]
fn the_token_is_documented_never_shown_and_checked() {
    for command in
        [&["smoke", "--help"][..], &["load", "--help"], &["chaos", "status", "--help"], &["dlq", "list", "--help"]]
    {
        let help = run(command, Some(TOKEN));
        let text = text(&help.stdout);
        assert!(help.status.success(), "{command:?}");
        for word in ["--token", "WHARF_TOKEN", "Authorization: Bearer"] {
            assert!(text.contains(word), "{command:?}: {word} missing from {text}");
        }
        assert!(!text.contains(TOKEN), "{command:?} shows the token: {text}");
    }
    let bad = run(&["smoke", "--token", "two words"], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("one word"), "{}", text(&bad.stderr));
    let empty = run(&["chaos", "status", "--service", "orders"], Some(" "));
    assert_eq!(empty.status.code(), Some(2));
    assert!(text(&empty.stderr).contains("empty"), "{}", text(&empty.stderr));
}
