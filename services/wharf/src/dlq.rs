//! `wharf dlq`: the order-events dead-letter queue — list, replay, purge.
//!
//! Where the dead letters are read depends on the bus, named as the services name it (`BUS`,
//! `BUS_QUEUE`, `BUS_SQLITE_URL`, `AMQP_URL`, `SQS_QUEUE_URL`, `AWS_*`, or the flags below):
//! - `sqlite` (the default, as for `wharf up`): the bus file is opened directly — run it where
//!   the platform runs (the file is `data/bus.db` there), whether the services run or not;
//! - `memory`: the queue lives inside the notifications process, so its `/admin/dlq` endpoint is
//!   used (`ADMIN_ENABLED=true`, which `wharf up` sets; it answers for whatever bus the
//!   notifications service runs on);
//! - `rabbitmq`, `sqs`: the broker is asked directly — the services need not be running.
//!
//! Replayed messages go back to the main queue with a fresh attempt count; the consumer handles
//! them as any other delivery, idempotently.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;
use wharf_bus::{Bus, BusConfig, QueueName, Replay};

use crate::client::{ApiError, Client, ClientOptions, DeadLetterAdmin};
use crate::targets::AccessArgs;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  wharf dlq list                                   # `wharf up` in this directory (its SQLite bus file)
  wharf dlq list --bus memory                      # through notifications' /admin/dlq (BUS=memory)
  BUS=rabbitmq wharf dlq list --json               # straight from RabbitMQ
  BUS=sqs AWS_ENDPOINT_URL=http://127.0.0.1:4566 wharf dlq replay --all
  wharf dlq replay --id 0193c0de-…  --id 0193c0df-…
  wharf dlq purge --yes")]
pub struct DlqArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Show the dead letters: id, event type, attempts, when and why they were dead-lettered.
    List {
        #[command(flatten)]
        source: Source,
        /// Show at most this many messages.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        /// Print the messages as JSON (bodies included) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Move dead letters back to the main queue, where they are handled again.
    Replay {
        #[command(flatten)]
        source: Source,
        /// Replay every dead letter.
        #[arg(long, conflicts_with = "ids", required_unless_present = "ids")]
        all: bool,
        /// Replay the dead letter with this id (as `list` shows it); repeat for several.
        #[arg(long = "id", value_name = "ID")]
        ids: Vec<String>,
    },
    /// Delete every dead letter. Asks for --yes: what is purged is gone.
    Purge {
        #[command(flatten)]
        source: Source,
        /// Confirm that the dead letters may be deleted.
        #[arg(long)]
        yes: bool,
    },
}

/// Which dead-letter queue, and how to reach it.
#[derive(Debug, Clone, Args)]
struct Source {
    /// The bus backend: `sqlite` (the bus file), `memory` (through the notifications service),
    /// `rabbitmq` or `sqs`.
    #[arg(long, env = "BUS", default_value = "sqlite", value_parser = ["sqlite", "memory", "rabbitmq", "sqs"], ignore_case = true)]
    bus: String,
    /// The order-events queue; its dead-letter queue is `<queue>-dlq`.
    #[arg(long, env = "BUS_QUEUE", default_value = "notification-queue")]
    queue: String,
    /// For `memory`: the notifications service (run with ADMIN_ENABLED=true).
    #[arg(long, env = crate::targets::NOTIFICATIONS_URL_VARIABLE, default_value = crate::targets::NOTIFICATIONS_URL)]
    notifications: String,
    /// For `sqlite`: the bus file, as the services name it (relative to this directory).
    #[arg(long, env = "BUS_SQLITE_URL", default_value = wharf_bus::config::DEFAULT_SQLITE_URL)]
    sqlite_url: String,
    /// For `rabbitmq`: the broker URL.
    #[arg(long, env = "AMQP_URL", default_value = wharf_bus::config::DEFAULT_AMQP_URL)]
    amqp_url: String,
    /// For `sqs`: the main queue's URL; otherwise resolved from --queue.
    #[arg(long, env = "SQS_QUEUE_URL")]
    sqs_queue_url: Option<String>,
    // For `memory`: the notifications service may ask for a token like the rest of the API.
    #[command(flatten)]
    access: AccessArgs,
}

/// Where the operations go.
enum Target {
    /// `/admin/dlq` of the notifications service.
    Admin(DeadLetterAdmin),
    /// The broker itself.
    Broker { bus: Arc<dyn Bus>, queue: QueueName },
}

impl Source {
    async fn open(&self) -> Result<Target, String> {
        let queue = QueueName::parse(&self.queue).map_err(|e| format!("invalid --queue {:?}: {e}", self.queue))?;
        if self.bus.eq_ignore_ascii_case("memory") {
            let options =
                ClientOptions { timeout: Duration::from_secs(30), connections: 1, token: self.access.token.clone() };
            let client = Client::new(&options).map_err(|err| err.to_string())?;
            return Ok(Target::Admin(DeadLetterAdmin::new(client, &self.notifications)));
        }
        // The rest of the bus settings (AWS_ENDPOINT_URL, AWS_REGION, …) as the services read them;
        // never provision: an operator's command must not create queues.
        let overrides = [
            ("BUS", Some(self.bus.clone())),
            ("BUS_QUEUE", Some(self.queue.clone())),
            ("BUS_SQLITE_URL", Some(self.sqlite_url.clone())),
            ("AMQP_URL", Some(self.amqp_url.clone())),
            ("SQS_QUEUE_URL", self.sqs_queue_url.clone()),
            ("BUS_PROVISION", Some("false".to_owned())),
        ];
        let mut config = BusConfig::from_lookup(|name| match overrides.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => value.clone(),
            None => std::env::var(name).ok(),
        })
        .map_err(|e| e.to_string())?;
        config.provision = false;
        let bus = wharf_bus::connect(&config)
            .await
            .map_err(|e| format!("cannot reach the {} dead-letter queue of {queue}: {e}", config.backend))?;
        Ok(Target::Broker { bus, queue })
    }
}

impl Target {
    /// The listing document `/admin/dlq` answers, whichever way it was obtained.
    async fn list(&self, limit: u16) -> Result<Value, String> {
        match self {
            Self::Admin(admin) => admin.list(limit).await.map_err(refused),
            Self::Broker { bus, queue } => {
                let letters = bus.dead_letters(queue, usize::from(limit)).await.map_err(|e| e.to_string())?;
                // The services' BUS_MAX_ATTEMPTS, not this command's: unknown from here.
                Ok(wharf_bus::dead_letter_listing(queue, bus.backend(), None, &letters))
            }
        }
    }

    async fn replay(&self, which: &Replay) -> Result<u64, String> {
        match self {
            Self::Admin(admin) => admin.replay(which).await.map_err(refused),
            Self::Broker { bus, queue } => bus.replay(queue, which).await.map(|n| n as u64).map_err(|e| e.to_string()),
        }
    }

    async fn purge(&self) -> Result<u64, String> {
        match self {
            Self::Admin(admin) => admin.purge().await.map_err(refused),
            Self::Broker { bus, queue } => {
                bus.purge_dead_letters(queue).await.map(|n| n as u64).map_err(|e| e.to_string())
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Admin(admin) => format!("notifications' bus via {}/admin/dlq", admin.base()),
            Self::Broker { bus, queue } => format!("{} queue {queue}-dlq", bus.backend()),
        }
    }
}

/// The client's error, with the way round it when the admin routes are off: the broker itself.
fn refused(err: ApiError) -> String {
    match err {
        ApiError::RoutesOff { .. } => format!("{err}, or name the bus with --bus sqlite|rabbitmq|sqs"),
        other => other.to_string(),
    }
}

/// Cuts `text` to `width` characters, marking the cut.
fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut clipped: String = text.chars().take(width.saturating_sub(1)).collect();
        clipped.push('…');
        clipped
    }
}

fn print_table(listing: &Value) {
    let messages = listing["messages"].as_array().map(Vec::as_slice).unwrap_or_default();
    let after =
        listing["maxAttempts"].as_u64().map(|n| format!(", dead-lettered after {n} attempts")).unwrap_or_default();
    println!(
        "{} dead letter(s) in {} ({}{after})",
        messages.len(),
        listing["deadLetterQueue"].as_str().unwrap_or("?"),
        listing["backend"].as_str().unwrap_or("?"),
    );
    if messages.is_empty() {
        return;
    }
    println!("{:<36}  {:<12}  {:>8}  {:<20}  reason", "id", "type", "attempts", "dead-lettered at");
    for message in messages {
        let text = |field: &str| message[field].as_str().unwrap_or("-").to_owned();
        let attempts = message["attempts"].as_u64().map_or_else(|| "-".to_owned(), |n| n.to_string());
        // To the second: `2026-11-24T01:07:06Z`.
        let at = text("deadLetteredAt");
        let at = at.get(..19).map_or(at.clone(), |seconds| format!("{seconds}Z"));
        let order = message["body"]["data"]["orderId"].as_i64().map(|id| format!(" [order {id}]")).unwrap_or_default();
        println!(
            "{:<36}  {:<12}  {:>8}  {:<20}  {}{order}",
            clip(&text("id"), 36),
            clip(&text("eventType"), 12),
            attempts,
            at,
            clip(&text("reason"), 100),
        );
    }
}

/// Lists, replays or purges; a replay of ids that matched nothing fails, as they are most likely typos.
pub async fn run(args: DlqArgs) -> ExitCode {
    let source = match &args.action {
        Action::List { source, .. } | Action::Replay { source, .. } | Action::Purge { source, .. } => source,
    };
    if let Action::Purge { yes: false, .. } = args.action {
        eprintln!("wharf dlq purge deletes every dead letter for good; add --yes to confirm");
        return ExitCode::from(2);
    }
    let target = match source.open().await {
        Ok(target) => target,
        Err(err) => {
            eprintln!("wharf dlq: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match &args.action {
        Action::List { limit, json, .. } => target.list(*limit).await.map(|listing| {
            if *json {
                println!("{}", serde_json::to_string_pretty(&listing).unwrap_or_default());
            } else {
                print_table(&listing);
            }
            true
        }),
        Action::Replay { all, ids, .. } => {
            let which = if *all { Replay::All } else { Replay::Ids(ids.clone()) };
            target.replay(&which).await.map(|replayed| {
                println!("replayed {replayed} dead letter(s) from the {} to the main queue", target.describe());
                match &which {
                    // Ids that matched nothing are most likely typos: say so, and fail.
                    Replay::Ids(ids) if (replayed as usize) < ids.len() => {
                        eprintln!(
                            "{} of the {} ids given were not in the dead-letter queue",
                            ids.len() - replayed as usize,
                            ids.len()
                        );
                        false
                    }
                    _ => true,
                }
            })
        }
        Action::Purge { .. } => target.purge().await.map(|purged| {
            println!("purged {purged} dead letter(s) from the {}", target.describe());
            true
        }),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("wharf dlq: {err}");
            ExitCode::FAILURE
        }
    }
}
