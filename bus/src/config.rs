//! Which bus a service runs on, and how it reaches it: typed, validated once at start-up.
//!
//! [`BusConfig::from_env`] reads the `BUS*`, `AMQP_URL`, `SQS_QUEUE_URL` and `AWS_*` variables
//! through the same [`Env`] as every other setting, so a bad bus value is reported with the
//! rest, each naming the variable and what it accepts.

use std::fmt;
use std::time::Duration;

use wharf_config::{ConfigErrors, Env};

use crate::queue::{QUEUE_NAME_RULE, QueueName};

/// The backend behind the [`crate::Bus`] trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// In-process queues (tests; nothing survives the process).
    Memory,
    /// Queues in a SQLite file (embedded mode, the default): durable across crashes and restarts,
    /// shared by every process that opens the same file.
    Sqlite,
    /// RabbitMQ over AMQP 0-9-1 (local services mode).
    RabbitMq,
    /// Amazon SQS, or an emulator of its API (AWS, LocalStack, moto).
    Sqs,
}

impl BackendKind {
    /// The word `BUS` uses for this backend.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite => "sqlite",
            Self::RabbitMq => "rabbitmq",
            Self::Sqs => "sqs",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const DEFAULT_QUEUE: &str = "notification-queue";
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MEMORY_CAPACITY: usize = 10_000;
/// Beside the services' own default databases (`data/<service>.db`), so every service started in
/// the same directory without a broker shares it.
pub const DEFAULT_SQLITE_URL: &str = "sqlite://data/bus.db?mode=rwc";
pub const DEFAULT_SQLITE_LEASE: Duration = Duration::from_secs(10);
/// The largest `BUS_MAX_ATTEMPTS` (SQS's `maxReceiveCount` tops out at 1000).
pub const MAX_MAX_ATTEMPTS: u32 = 1000;

/// Everything needed to open the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// `BUS`: `sqlite` (default), `memory`, `rabbitmq` or `sqs`.
    pub backend: BackendKind,
    /// `BUS_QUEUE`: the order-events queue (default `notification-queue`; DLQ `<queue>-dlq`).
    pub queue: QueueName,
    /// `BUS_MAX_ATTEMPTS`: deliveries before a message is dead-lettered (default 5, 1–1000).
    pub max_attempts: u32,
    /// `BUS_PROVISION`: create exchanges/queues/DLQ if missing (default `true` unless `BUS=sqs`).
    pub provision: bool,
    /// `BUS_PUBLISH_TIMEOUT_MS`: how long a publish may wait for the broker (reconnecting,
    /// confirming) or for room in a full memory queue before it fails (default 10 000).
    pub publish_timeout: Duration,
    /// `BUS_MEMORY_CAPACITY`: messages one memory queue holds, dead letters included (default 10 000).
    pub memory_capacity: usize,
    /// `BUS_SQLITE_URL`: the SQLite file of the `sqlite` bus (default `sqlite://data/bus.db?mode=rwc`).
    pub sqlite_url: String,
    /// `BUS_SQLITE_LEASE_MS`: how long a `sqlite` delivery stays leased to a consumer that stops
    /// renewing it (its process was killed) before it is delivered again (default 10 000). A
    /// running handler's lease is renewed every third of it.
    pub sqlite_lease: Duration,
    /// `AMQP_URL`: the RabbitMQ URL.
    pub amqp_url: String,
    /// `SQS_QUEUE_URL`: the queue's URL; otherwise resolved from `BUS_QUEUE` with GetQueueUrl.
    pub sqs_queue_url: Option<String>,
    /// `AWS_ENDPOINT_URL`: points the SDK at LocalStack or moto; SDK default otherwise.
    pub aws_endpoint_url: Option<String>,
    /// `AWS_REGION`: SDK default chain otherwise.
    pub aws_region: Option<String>,
}

impl BusConfig {
    /// The default: the durable SQLite bus in `data/bus.db`, on `notification-queue`.
    pub fn sqlite() -> Self {
        Self { backend: BackendKind::Sqlite, ..Self::memory() }
    }

    /// An in-process memory bus on `notification-queue` (tests), otherwise the defaults.
    pub fn memory() -> Self {
        Self {
            backend: BackendKind::Memory,
            queue: QueueName::from_static(DEFAULT_QUEUE),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            provision: true,
            publish_timeout: DEFAULT_PUBLISH_TIMEOUT,
            memory_capacity: DEFAULT_MEMORY_CAPACITY,
            sqlite_url: DEFAULT_SQLITE_URL.to_owned(),
            sqlite_lease: DEFAULT_SQLITE_LEASE,
            amqp_url: DEFAULT_AMQP_URL.to_owned(),
            sqs_queue_url: None,
            aws_endpoint_url: None,
            aws_region: None,
        }
    }

    /// Every variable [`BusConfig::from_env`] reads.
    pub const VARIABLES: [&'static str; 12] = [
        "BUS",
        "BUS_QUEUE",
        "BUS_MAX_ATTEMPTS",
        "BUS_PROVISION",
        "BUS_PUBLISH_TIMEOUT_MS",
        "BUS_MEMORY_CAPACITY",
        "BUS_SQLITE_URL",
        "BUS_SQLITE_LEASE_MS",
        "AMQP_URL",
        "SQS_QUEUE_URL",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
    ];

    /// Reads the configuration through `lookup` on its own (tools such as `wharf dlq` that read
    /// only the bus); blank values count as unset, and every invalid value is returned.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let mut env = Env::from_pairs(Self::VARIABLES.into_iter().filter_map(|name| Some((name, lookup(name)?))));
        let config = Self::from_env(&mut env);
        env.finish().map(|()| config)
    }

    /// Reads the bus variables from `env`, recording each bad value there; a value that cannot be
    /// used leaves its default in place, so reading can go on and report everything at once.
    pub fn from_env(env: &mut Env) -> Self {
        let defaults = Self::sqlite();

        let backend = env.parse("BUS", defaults.backend, "sqlite, memory, rabbitmq or sqs", |v| {
            [BackendKind::Sqlite, BackendKind::Memory, BackendKind::RabbitMq, BackendKind::Sqs]
                .into_iter()
                .find(|kind| kind.as_str().eq_ignore_ascii_case(v))
        });
        let queue = env.parse("BUS_QUEUE", defaults.queue.clone(), QUEUE_NAME_RULE, |v| QueueName::parse(v).ok());
        let max_attempts = env.parse("BUS_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS, "an integer from 1 to 1000", |v| {
            v.parse::<u32>().ok().filter(|n| (1..=MAX_MAX_ATTEMPTS).contains(n))
        });
        // Provisioning is for local use; in AWS, Terraform owns the queues.
        let provision = env.parse("BUS_PROVISION", backend != BackendKind::Sqs, "true or false", parse_bool);
        let publish_timeout = env.parse(
            "BUS_PUBLISH_TIMEOUT_MS",
            DEFAULT_PUBLISH_TIMEOUT,
            "an integer from 1 to 3600000 (milliseconds)",
            |v| v.parse::<u64>().ok().filter(|n| (1..=3_600_000).contains(n)).map(Duration::from_millis),
        );
        let memory_capacity =
            env.parse("BUS_MEMORY_CAPACITY", DEFAULT_MEMORY_CAPACITY, "an integer from 1 to 10000000", |v| {
                v.parse::<usize>().ok().filter(|n| (1..=10_000_000).contains(n))
            });
        let sqlite_url = env.parse("BUS_SQLITE_URL", defaults.sqlite_url, "a sqlite:… URL", |v| {
            v.starts_with("sqlite:").then(|| v.to_owned())
        });
        let sqlite_lease = env.parse(
            "BUS_SQLITE_LEASE_MS",
            DEFAULT_SQLITE_LEASE,
            "an integer from 300 to 3600000 (milliseconds)",
            |v| v.parse::<u64>().ok().filter(|n| (300..=3_600_000).contains(n)).map(Duration::from_millis),
        );
        let amqp_url = env.parse("AMQP_URL", DEFAULT_AMQP_URL.to_owned(), "an amqp:// or amqps:// URL", |v| {
            (v.starts_with("amqp://") || v.starts_with("amqps://")).then(|| v.to_owned())
        });
        let sqs_queue_url = env.optional("SQS_QUEUE_URL", "an http:// or https:// URL", parse_http_url);
        let aws_endpoint_url = env.optional("AWS_ENDPOINT_URL", "an http:// or https:// URL", parse_http_url);
        let aws_region = env.optional("AWS_REGION", "a region name such as us-east-1", |v| {
            v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-').then(|| v.to_owned())
        });

        Self {
            backend,
            queue,
            max_attempts,
            provision,
            publish_timeout,
            memory_capacity,
            sqlite_url,
            sqlite_lease,
            amqp_url,
            sqs_queue_url,
            aws_endpoint_url,
            aws_region,
        }
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_http_url(value: &str) -> Option<String> {
    let rest = value.strip_prefix("http://").or_else(|| value.strip_prefix("https://"))?;
    (!rest.is_empty() && !rest.contains(char::is_whitespace)).then(|| value.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<BusConfig, ConfigErrors> {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        BusConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_contract() {
        let config = read(&[]).unwrap();
        assert_eq!(config, BusConfig::sqlite());
        assert_eq!(config.backend, BackendKind::Sqlite);
        assert_eq!(config.sqlite_url, "sqlite://data/bus.db?mode=rwc");
        assert_eq!(config.sqlite_lease, Duration::from_secs(10));
        assert_eq!(config.queue.as_str(), "notification-queue");
        assert_eq!(config.queue.dead_letter(), "notification-queue-dlq");
        assert_eq!(config.max_attempts, 5);
        assert!(config.provision);
        assert_eq!(config.amqp_url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(config.publish_timeout, Duration::from_secs(10));
    }

    #[test]
    fn provisioning_defaults_off_for_sqs_only() {
        assert!(!read(&[("BUS", "sqs")]).unwrap().provision);
        assert!(read(&[("BUS", "RabbitMQ")]).unwrap().provision);
        assert!(read(&[("BUS", "sqs"), ("BUS_PROVISION", "true")]).unwrap().provision);
        assert!(!read(&[("BUS", "rabbitmq"), ("BUS_PROVISION", "0")]).unwrap().provision);
    }

    #[test]
    fn reads_every_variable() {
        let config = read(&[
            ("BUS", "sqs"),
            ("BUS_QUEUE", "orders-events"),
            ("BUS_MAX_ATTEMPTS", "3"),
            ("BUS_PUBLISH_TIMEOUT_MS", "2500"),
            ("BUS_MEMORY_CAPACITY", "50"),
            ("BUS_SQLITE_URL", "sqlite:///var/lib/wharf/bus.db"),
            ("BUS_SQLITE_LEASE_MS", "2000"),
            ("AMQP_URL", "amqps://u:p@mq.example:5671/vh"),
            ("SQS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123/orders-events"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ("AWS_REGION", "eu-west-1"),
        ])
        .unwrap();
        assert_eq!(config.backend, BackendKind::Sqs);
        assert_eq!(config.queue.as_str(), "orders-events");
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.publish_timeout, Duration::from_millis(2500));
        assert_eq!(config.memory_capacity, 50);
        assert_eq!(config.sqlite_url, "sqlite:///var/lib/wharf/bus.db");
        assert_eq!(config.sqlite_lease, Duration::from_secs(2));
        assert_eq!(config.amqp_url, "amqps://u:p@mq.example:5671/vh");
        assert_eq!(config.sqs_queue_url.as_deref(), Some("https://sqs.eu-west-1.amazonaws.com/123/orders-events"));
        assert_eq!(config.aws_endpoint_url.as_deref(), Some("http://127.0.0.1:4566"));
        assert_eq!(config.aws_region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn blank_values_count_as_unset() {
        assert_eq!(read(&[("BUS", "  "), ("BUS_QUEUE", "")]).unwrap(), BusConfig::sqlite());
        assert_eq!(read(&[("BUS", "memory")]).unwrap(), BusConfig::memory());
    }

    #[test]
    fn every_bad_value_is_reported_with_its_variable_and_accepted_values() {
        let errors = read(&[
            ("BUS", "kafka"),
            ("BUS_QUEUE", "bad name"),
            ("BUS_MAX_ATTEMPTS", "0"),
            ("BUS_PROVISION", "maybe"),
            ("AMQP_URL", "http://x"),
            ("SQS_QUEUE_URL", "queue"),
            ("BUS_PUBLISH_TIMEOUT_MS", "-1"),
        ])
        .unwrap_err();
        let variables: Vec<&str> = errors.0.iter().map(|e| e.variable.as_str()).collect();
        assert_eq!(
            variables,
            [
                "BUS",
                "BUS_QUEUE",
                "BUS_MAX_ATTEMPTS",
                "BUS_PROVISION",
                "BUS_PUBLISH_TIMEOUT_MS",
                "AMQP_URL",
                "SQS_QUEUE_URL"
            ]
        );
        let text = errors.to_string();
        assert!(text.contains(r#"invalid BUS="kafka": expected sqlite, memory, rabbitmq or sqs"#), "{text}");
        assert!(text.contains("BUS_MAX_ATTEMPTS=\"0\": expected an integer from 1 to 1000"), "{text}");
        assert_eq!(text.lines().count(), 7);
    }

    #[test]
    fn the_default_queue_name_is_valid() {
        assert!(QueueName::parse(DEFAULT_QUEUE).is_ok());
    }
}
