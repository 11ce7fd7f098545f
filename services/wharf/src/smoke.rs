//! `wharf smoke`: one order through a running wharf, checked at every step.
//!
//! Works against `wharf up`, the three binaries, a compose stack or an ALB: it only speaks the
//! public HTTP API. The check is the list [`STEPS`]: each prints its outcome and time, and runs
//! only when the earlier steps made what it needs (no order is placed without a product). The exit
//! code is 0 only when all passed. What it created is removed where the API allows (the product;
//! orders and notifications are history and stay).

use std::borrow::Cow;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;

use crate::client::{Api, Client, ClientOptions, NewOrder, NewProduct, NotificationQuery};
use crate::targets::{Service, TargetArgs};

/// Where the deployment is and how patient to be with its email.
#[derive(Debug, clap::Args)]
pub struct SmokeArgs {
    #[command(flatten)]
    targets: TargetArgs,
    /// How long to wait for the order's confirmation email, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    wait: u64,
}

/// One check of the smoke run.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The service answers: its `/health`, or its API's first page behind a path-routing ingress.
    Healthy(Service),
    /// A product to order, with enough stock.
    CreateProduct,
    /// An order for that product, for the run's own address.
    PlaceOrder,
    /// The order's confirmation email reaches `Sent` within `--wait`.
    EmailSent,
    /// The order reads back by id.
    ReadOrderBack,
    /// The product is deleted again.
    TidyUp,
}

/// The smoke check, in order.
const STEPS: [Step; 8] = [
    Step::Healthy(Service::Products),
    Step::Healthy(Service::Orders),
    Step::Healthy(Service::Notifications),
    Step::CreateProduct,
    Step::PlaceOrder,
    Step::EmailSent,
    Step::ReadOrderBack,
    Step::TidyUp,
];

/// What the steps share, and what each leaves for the next.
#[derive(Debug)]
struct Smoke {
    api: Api,
    /// `smoke-<uuid>`: names every request of the run in the services' logs, and keys its order.
    correlation_id: String,
    /// `smoke+<8 hex>@example.com`: only this run's order is notified there.
    email: String,
    wait: Duration,
    /// Behind a path-routing ingress, where `/health` is not routed.
    path_routed: bool,
    /// The product created, once it is.
    product: Option<i64>,
    /// The order placed, once it is.
    order: Option<i64>,
}

impl Step {
    /// How the output names it.
    fn name(self) -> Cow<'static, str> {
        match self {
            Self::Healthy(service) => Cow::Owned(format!("{} is healthy", service.name())),
            Self::CreateProduct => Cow::Borrowed("create a product"),
            Self::PlaceOrder => Cow::Borrowed("place an order"),
            Self::EmailSent => Cow::Borrowed("confirmation email is sent"),
            Self::ReadOrderBack => Cow::Borrowed("read the order back"),
            Self::TidyUp => Cow::Borrowed("tidy up"),
        }
    }

    /// Whether what it needs was made: a step that cannot run is left out, not failed, since the
    /// step that could not make it has already failed.
    fn can_run(self, smoke: &Smoke) -> bool {
        match self {
            Self::Healthy(_) | Self::CreateProduct => true,
            Self::PlaceOrder | Self::TidyUp => smoke.product.is_some(),
            Self::EmailSent | Self::ReadOrderBack => smoke.order.is_some(),
        }
    }

    /// Runs it: what it found, for the output, or why it failed.
    async fn run(self, smoke: &mut Smoke) -> Result<String, String> {
        let api = &smoke.api;
        match self {
            Self::Healthy(service) if smoke.path_routed => {
                api.probe(service).await.map_err(|err| err.to_string())?;
                Ok(format!("GET /api/{} answers", service.name()))
            }
            Self::Healthy(service) => {
                let health = api.health(service).await.map_err(|err| err.to_string())?;
                let (status, name) = (health.status.as_deref(), health.service.as_deref());
                Ok(format!("{} ({})", status.unwrap_or("?"), name.unwrap_or("?")))
            }
            Self::CreateProduct => {
                let name = format!("wharf smoke {}", smoke.correlation_id);
                let product = NewProduct::new(name, 1.25, 10, "created by wharf smoke");
                let id = api.create_product(&product).await.map_err(|err| err.to_string())?.id;
                smoke.product = Some(id);
                Ok(format!("product {id}"))
            }
            Self::PlaceOrder => {
                let product_id = smoke.product.ok_or("no product to order")?;
                let order = NewOrder { product_id, quantity: 1, customer_email: &smoke.email };
                let order = api.place_order(&order, &smoke.correlation_id).await.map_err(|err| err.to_string())?;
                smoke.order = Some(order.id);
                Ok(format!("order {}, {}", order.id, order.status))
            }
            Self::EmailSent => {
                let order = smoke.order.ok_or("no order placed")?;
                let deadline = Instant::now() + smoke.wait;
                let mut last = String::from("no notification yet");
                while Instant::now() < deadline {
                    // A failed poll is retried until the deadline, as the email itself may be late.
                    if let Ok(page) = api.notifications(&NotificationQuery::of(&smoke.email)).await
                        && let Some(found) = page.iter().find(|n| n.order_id == Some(order))
                    {
                        match found.status.as_str() {
                            "Sent" => return Ok(format!("notification {} Sent to {}", found.id, smoke.email)),
                            "Failed" => return Err(format!("notification {} Failed", found.id)),
                            status => last = format!("notification {} is {status}", found.id),
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(format!("not sent within {} s ({last})", smoke.wait.as_secs()))
            }
            Self::ReadOrderBack => {
                let order = smoke.order.ok_or("no order placed")?;
                let found = api.order(order).await.map_err(|err| err.to_string())?;
                Ok(format!("order {order}: {}", found.status))
            }
            Self::TidyUp => {
                let product = smoke.product.ok_or("no product created")?;
                api.delete_product(product).await.map_err(|err| err.to_string())?;
                Ok(format!("product {product} deleted"))
            }
        }
    }
}

/// Runs every step it can, each on one line; exit 0 only when every step passed.
pub async fn run(args: SmokeArgs) -> ExitCode {
    let correlation_id = format!("smoke-{}", uuid::Uuid::new_v4());
    let targets = args.targets.resolve();
    let path_routed = targets.path_routed;
    let options = ClientOptions { timeout: Duration::from_secs(15), connections: 4, token: args.targets.access.token };
    let api = Client::new(&options).and_then(|client| Api::new(client, targets)).map_err(|err| err.to_string());
    let api = api.and_then(|api| match HeaderValue::from_str(&correlation_id) {
        Ok(id) => Ok(api.correlated(id)),
        Err(err) => Err(format!("invalid correlation id {correlation_id}: {err}")),
    });
    let api = match api {
        Ok(api) => api,
        Err(err) => {
            eprintln!("wharf smoke: {err}");
            return ExitCode::FAILURE;
        }
    };
    let email = format!("smoke+{}@example.com", &correlation_id[6..14]);
    let mut smoke = Smoke {
        api,
        correlation_id,
        email,
        wait: Duration::from_secs(args.wait),
        path_routed,
        product: None,
        order: None,
    };
    println!("wharf smoke  (correlation id {})", smoke.correlation_id);
    let started = Instant::now();
    let mut failed = false;
    for step in STEPS {
        if !step.can_run(&smoke) {
            continue;
        }
        let step_started = Instant::now();
        let outcome = step.run(&mut smoke).await;
        let (name, ms) = (step.name(), step_started.elapsed().as_millis());
        match outcome {
            Ok(detail) => println!("  ✓ {name:<34} {ms:>6} ms  {detail}"),
            Err(error) => {
                println!("  ✗ {name:<34} {ms:>6} ms  {error}");
                failed = true;
            }
        }
    }
    let verdict = if failed { "FAILED" } else { "passed" };
    println!("smoke {verdict} in {} ms", started.elapsed().as_millis());
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
