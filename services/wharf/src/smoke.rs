//! `wharf smoke`: one order through a running wharf, checked at every step.
//!
//! Works against `wharf up`, the three binaries, a compose stack or an ALB: it only speaks the
//! public HTTP API. Every step prints its outcome and time; the exit code is 0 only when all
//! passed. What it created is removed where the API allows (the product; orders and
//! notifications are history and stay).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::targets::{self, TargetArgs};

/// Options of `wharf smoke`.
#[derive(Debug, clap::Args)]
pub struct SmokeArgs {
    #[command(flatten)]
    targets: TargetArgs,
    /// How long to wait for the order's confirmation email, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    wait: u64,
}

struct Smoke {
    client: reqwest::Client,
    products: String,
    orders: String,
    notifications: String,
    correlation_id: String,
    failed: bool,
}

impl Smoke {
    /// Runs one step, printing ✓ or ✗ with its time; `None` when it failed.
    async fn step<T>(
        &mut self,
        name: &str,
        work: impl std::future::Future<Output = Result<(T, String), String>>,
    ) -> Option<T> {
        let started = Instant::now();
        let outcome = work.await;
        let ms = started.elapsed().as_millis();
        match outcome {
            Ok((value, detail)) => {
                println!("  ✓ {name:<34} {ms:>6} ms  {detail}");
                Some(value)
            }
            Err(error) => {
                println!("  ✗ {name:<34} {ms:>6} ms  {error}");
                self.failed = true;
                None
            }
        }
    }
}

async fn expect_json(response: Result<reqwest::Response, reqwest::Error>, status: u16) -> Result<Value, String> {
    let response = response.map_err(|e| format!("no answer: {}", wharf_runtime::error_chain(&e)))?;
    let got = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    if got != status {
        return Err(format!("expected {status}, got {got}: {}", body.chars().take(300).collect::<String>()));
    }
    if body.is_empty() { Ok(Value::Null) } else { serde_json::from_str(&body).map_err(|e| format!("not JSON: {e}")) }
}

/// Runs the smoke check.
pub async fn run(args: SmokeArgs) -> ExitCode {
    let targets = args.targets.resolve();
    let client = match targets::client(Duration::from_secs(15), 4) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    let mut smoke = Smoke {
        client,
        products: targets.products.clone(),
        orders: targets.orders.clone(),
        notifications: targets.notifications.clone(),
        correlation_id: format!("smoke-{}", uuid::Uuid::new_v4()),
        failed: false,
    };
    println!("wharf smoke  (correlation id {})", smoke.correlation_id);
    let started = Instant::now();

    let services = [
        ("products", smoke.products.clone(), "/api/products"),
        ("orders", smoke.orders.clone(), "/api/orders"),
        ("notifications", smoke.notifications.clone(), "/api/notifications"),
    ];
    for (name, base, api) in services {
        let client = smoke.client.clone();
        let path_routed = targets.path_routed;
        smoke
            .step(&format!("{name} is healthy"), async move {
                if path_routed {
                    // Behind a path-routing ingress only `/api/*` reaches a service: its list
                    // endpoint answering 200 proves the route, the service and its database.
                    expect_json(client.get(format!("{base}{api}?limit=1")).send().await, 200).await?;
                    return Ok(((), format!("GET {api} answers")));
                }
                let health = expect_json(client.get(format!("{base}/health")).send().await, 200).await?;
                let status = health["status"].as_str().unwrap_or("?").to_owned();
                Ok(((), format!("{status} ({})", health["service"].as_str().unwrap_or("?"))))
            })
            .await;
    }

    let (client, base, cid) = (smoke.client.clone(), smoke.products.clone(), smoke.correlation_id.clone());
    let product = smoke
        .step("create a product", async move {
            let body = json!({"name": format!("wharf smoke {cid}"), "price": 1.25, "stock": 10, "description": "created by wharf smoke"});
            let product = expect_json(client.post(format!("{base}/api/products")).header("x-correlation-id", &cid).json(&body).send().await, 201).await?;
            let id = product["id"].as_i64().ok_or("no id in the answer")?;
            Ok((id, format!("product {id}")))
        })
        .await;

    let email = format!("smoke+{}@example.com", &smoke.correlation_id[6..14]);
    let order = match product {
        Some(product) => {
            let (client, base, cid, email) =
                (smoke.client.clone(), smoke.orders.clone(), smoke.correlation_id.clone(), email.clone());
            smoke
                .step("place an order", async move {
                    let body = json!({"productId": product, "quantity": 1, "customerEmail": email});
                    let order = expect_json(
                        client
                            .post(format!("{base}/api/orders"))
                            .header("x-correlation-id", &cid)
                            .header("idempotency-key", &cid)
                            .json(&body)
                            .send()
                            .await,
                        201,
                    )
                    .await?;
                    let id = order["id"].as_i64().ok_or("no id in the answer")?;
                    Ok((id, format!("order {id}, {}", order["status"].as_str().unwrap_or("?"))))
                })
                .await
        }
        None => None,
    };

    if let Some(order) = order {
        let (client, base, wait, email) = (smoke.client.clone(), smoke.notifications.clone(), args.wait, email.clone());
        smoke
            .step("confirmation email is sent", async move {
                let deadline = Instant::now() + Duration::from_secs(wait);
                let mut last = String::from("no notification yet");
                while Instant::now() < deadline {
                    let url = format!("{base}/api/notifications?recipient={}", email.replace('+', "%2B"));
                    if let Ok(list) = expect_json(client.get(url).send().await, 200).await
                        && let Some(found) = list.as_array().into_iter().flatten().find(|n| n["orderId"] == order)
                    {
                        let status = found["status"].as_str().unwrap_or("?");
                        if status == "Sent" {
                            return Ok(((), format!("notification {} Sent to {email}", found["id"])));
                        }
                        if status == "Failed" {
                            return Err(format!("notification {} Failed", found["id"]));
                        }
                        last = format!("notification {} is {status}", found["id"]);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(format!("not sent within {wait} s ({last})"))
            })
            .await;
        let (client, base) = (smoke.client.clone(), smoke.orders.clone());
        smoke
            .step("read the order back", async move {
                let found = expect_json(client.get(format!("{base}/api/orders/{order}")).send().await, 200).await?;
                Ok(((), format!("order {order}: {}", found["status"].as_str().unwrap_or("?"))))
            })
            .await;
    }

    if let Some(product) = product {
        let (client, base) = (smoke.client.clone(), smoke.products.clone());
        smoke
            .step("tidy up", async move {
                expect_json(client.delete(format!("{base}/api/products/{product}")).send().await, 204).await?;
                Ok(((), format!("product {product} deleted")))
            })
            .await;
    }

    let verdict = if smoke.failed { "FAILED" } else { "passed" };
    println!("smoke {verdict} in {} ms", started.elapsed().as_millis());
    if smoke.failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
