//! Typed configuration from the environment.
//!
//! Every variable is read once at start-up through [`Env`], which records each bad value instead
//! of stopping at the first one, so an operator sees all mistakes in one run. Services read
//! their own variables with the same [`Env`] and then call [`Env::finish`].

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::telemetry::LogFormat;

/// One variable with a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable}={value:?}: expected {expected}")]
pub struct ConfigError {
    /// The environment variable's name.
    pub variable: String,
    /// The value found.
    pub value: String,
    /// What the variable accepts, in words.
    pub expected: String,
}

/// Every bad variable found while reading the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line per variable: this is what an operator reads in a crash-looping pod's log.
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "configuration error: {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A snapshot of environment variables plus the errors found while parsing them.
#[derive(Debug, Default)]
pub struct Env {
    vars: HashMap<String, String>,
    errors: Vec<ConfigError>,
}

impl Env {
    /// The process environment. Variables that are not valid unicode are kept out; a later read
    /// of such a variable falls back to its default, which is what an unset variable does.
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))))
    }

    /// An environment made of the given pairs (tests, and `wharf up` which layers defaults).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect(), errors: Vec::new() }
    }

    /// Sets a variable unless it is already present: how a launcher supplies defaults.
    pub fn set_default(&mut self, name: &str, value: impl Into<String>) {
        self.vars.entry(name.to_owned()).or_insert_with(|| value.into());
    }

    /// The raw value of a variable, if set and not blank.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A string variable, or its default.
    pub fn string(&mut self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or(default).to_owned()
    }

    /// A variable parsed by `parse`; an unparsable value is recorded as an error (naming what
    /// the variable accepts) and the default is returned so reading can go on.
    pub fn parse<T>(&mut self, name: &str, default: T, expected: &str, parse: impl FnOnce(&str) -> Option<T>) -> T {
        let Some(value) = self.raw(name) else { return default };
        match parse(value) {
            Some(parsed) => parsed,
            None => {
                let error =
                    ConfigError { variable: name.to_owned(), value: value.to_owned(), expected: expected.to_owned() };
                self.errors.push(error);
                default
            }
        }
    }

    /// An unsigned integer within `range`.
    pub fn integer<T>(&mut self, name: &str, default: T, range: std::ops::RangeInclusive<T>) -> T
    where
        T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
    {
        let expected = format!("an integer from {} to {}", range.start(), range.end());
        self.parse(name, default, &expected, |v| v.parse::<T>().ok().filter(|n| range.contains(n)))
    }

    /// A boolean: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.
    pub fn boolean(&mut self, name: &str, default: bool) -> bool {
        self.parse(name, default, "true or false", |v| match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        })
    }

    /// One of a fixed set of words (matched case-insensitively).
    pub fn choice<T: Copy>(&mut self, name: &str, default: T, choices: &[(&str, T)]) -> T {
        let expected = choices.iter().map(|(word, _)| *word).collect::<Vec<_>>().join(" or ");
        self.parse(name, default, &expected, |v| {
            choices.iter().find(|(word, _)| word.eq_ignore_ascii_case(v)).map(|(_, value)| *value)
        })
    }

    /// The bus variables (`BUS`, `AMQP_URL`, `BUS_QUEUE`, …), their errors recorded here like
    /// every other variable's.
    pub fn bus(&mut self) -> wharf_bus::BusConfig {
        match wharf_bus::BusConfig::from_lookup(|name| self.raw(name).map(str::to_owned)) {
            Ok(config) => config,
            Err(errors) => {
                for error in errors.0 {
                    self.errors.push(ConfigError {
                        variable: error.variable,
                        value: error.value,
                        expected: error.expected,
                    });
                }
                wharf_bus::BusConfig::memory()
            }
        }
    }

    /// Records an error found by a caller's own cross-variable check.
    pub fn reject(&mut self, name: &str, expected: &str) {
        let value = self.raw(name).unwrap_or_default().to_owned();
        self.errors.push(ConfigError { variable: name.to_owned(), value, expected: expected.to_owned() });
    }

    /// Ends reading: every recorded error, or nothing.
    pub fn finish(self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() { Ok(()) } else { Err(ConfigErrors(self.errors)) }
    }
}

/// What every wharf service reads: where to listen, its database, logging and edge limits.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// `HOST`: the address to bind.
    pub host: IpAddr,
    /// `PORT`: the port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// The variable `port` came from, for errors (`PORT`, or `wharf up`'s per-service names).
    pub port_variable: &'static str,
    /// `DATABASE_URL`: `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// `DATABASE_MAX_CONNECTIONS`: the pool's size.
    pub database_max_connections: u32,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `RUST_LOG`.
    pub log_filter: String,
    /// `CHAOS_ENABLED`: exposes `/admin/chaos/*`.
    pub chaos_enabled: bool,
    /// `BODY_LIMIT_BYTES`: the largest request body accepted.
    pub body_limit: u64,
    /// `SHUTDOWN_GRACE_SECS`: how long in-flight requests may run after SIGTERM.
    pub shutdown_grace: Duration,
    /// `SUPERVISOR_MAX_RESTARTS`: restarts of one actor within the window before the failure
    /// escalates and the process exits.
    pub max_restarts: u32,
    /// `SUPERVISOR_WINDOW_SECS`: the window for `max_restarts`.
    pub restart_window: Duration,
}

impl ServiceConfig {
    /// Reads the common variables; `service` names the default SQLite file (`data/<service>.db`).
    pub fn from_env(env: &mut Env, service: &str, default_port: u16) -> Self {
        let host = env.parse("HOST", IpAddr::from([127, 0, 0, 1]), "an IP address such as 127.0.0.1 or 0.0.0.0", |v| {
            v.parse().ok()
        });
        let port = env.integer("PORT", default_port, 0..=u16::MAX);
        let default_url = format!("sqlite://data/{service}.db?mode=rwc");
        let database_url = env.parse("DATABASE_URL", default_url, "a sqlite://… or postgres://… URL", |v| {
            (v.starts_with("sqlite:") || v.starts_with("postgres://") || v.starts_with("postgresql://"))
                .then(|| v.to_owned())
        });
        let database_max_connections = env.integer("DATABASE_MAX_CONNECTIONS", 8, 1..=1000);
        let log_format =
            env.choice("LOG_FORMAT", LogFormat::Json, &[("json", LogFormat::Json), ("pretty", LogFormat::Pretty)]);
        let log_filter =
            env.parse("RUST_LOG", "info".to_owned(), "a tracing filter such as info or products=debug,info", |v| {
                tracing_subscriber::EnvFilter::try_new(v).ok().map(|_| v.to_owned())
            });
        let chaos_enabled = env.boolean("CHAOS_ENABLED", false);
        let body_limit = env.integer("BODY_LIMIT_BYTES", 64 * 1024, 1..=64 * 1024 * 1024);
        let shutdown_grace = Duration::from_secs(env.integer("SHUTDOWN_GRACE_SECS", 10, 0..=3600));
        let max_restarts = env.integer("SUPERVISOR_MAX_RESTARTS", 10, 0..=10_000);
        let restart_window = Duration::from_secs(env.integer("SUPERVISOR_WINDOW_SECS", 60, 1..=86_400));
        Self {
            host,
            port,
            port_variable: "PORT",
            database_url,
            database_max_connections,
            log_format,
            log_filter,
            chaos_enabled,
            body_limit,
            shutdown_grace,
            max_restarts,
            restart_window,
        }
    }

    /// The restart policy every supervisor of the service applies.
    pub fn restart_policy(&self) -> wharf_actors::RestartPolicy {
        wharf_actors::RestartPolicy {
            max_restarts: self.max_restarts,
            window: self.restart_window,
            ..Default::default()
        }
    }

    /// The edge's part of the configuration.
    pub fn edge(&self) -> wharf_edge::EdgeConfig {
        wharf_edge::EdgeConfig {
            host: self.host,
            port: self.port,
            body_limit: self.body_limit,
            shutdown_grace: self.shutdown_grace,
            chaos_enabled: self.chaos_enabled,
            port_variable: self.port_variable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_unset_or_blank() {
        let mut env = Env::from_pairs([("PORT", "  ")]);
        let config = ServiceConfig::from_env(&mut env, "products", 5000);
        assert!(env.finish().is_ok());
        assert_eq!(config.port, 5000);
        assert_eq!(config.database_url, "sqlite://data/products.db?mode=rwc");
        assert_eq!(config.body_limit, 65536);
        assert!(!config.chaos_enabled);
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn every_bad_variable_is_named_on_its_own_line() {
        let mut env = Env::from_pairs([
            ("PORT", "http"),
            ("LOG_FORMAT", "xml"),
            ("DATABASE_URL", "mysql://x"),
            ("CHAOS_ENABLED", "maybe"),
        ]);
        let _ = ServiceConfig::from_env(&mut env, "orders", 5001);
        let errors = env.finish().unwrap_err();
        let text = errors.to_string();
        assert_eq!(errors.0.len(), 4, "{text}");
        assert!(text.contains(r#"invalid PORT="http": expected an integer from 0 to 65535"#), "{text}");
        assert!(text.contains(r#"invalid LOG_FORMAT="xml": expected json or pretty"#), "{text}");
        assert!(text.contains("DATABASE_URL"), "{text}");
        assert!(text.contains(r#"invalid CHAOS_ENABLED="maybe": expected true or false"#), "{text}");
        assert_eq!(text.lines().count(), 4);
    }

    #[test]
    fn out_of_range_integers_are_rejected() {
        let mut env = Env::from_pairs([("PORT", "70000"), ("BODY_LIMIT_BYTES", "0")]);
        let _ = ServiceConfig::from_env(&mut env, "products", 5000);
        assert_eq!(env.finish().unwrap_err().0.len(), 2);
    }

    #[test]
    fn choices_ignore_case_and_set_default_does_not_override() {
        let mut env = Env::from_pairs([("LOG_FORMAT", "Pretty")]);
        env.set_default("LOG_FORMAT", "json");
        env.set_default("PORT", "0");
        let config = ServiceConfig::from_env(&mut env, "products", 5000);
        assert_eq!(config.log_format, LogFormat::Pretty);
        assert_eq!(config.port, 0);
    }
}
