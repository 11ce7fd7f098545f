//! The settings every wharf service shares (where to listen, its database, logging, edge limits
//! and supervision), read through [`wharf_config::Env`] like each service's own.

use std::net::IpAddr;
use std::time::Duration;

use wharf_config::Env;

use crate::telemetry::{LogFormat, TraceConfig};

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
    /// `DATABASE_MAX_CONNECTIONS`: the database pool's size, and so the number of store workers.
    pub database_max_connections: u32,
    /// `STORE_QUEUE`: calls that may wait for a store worker before new ones get 503.
    pub store_queue: usize,
    pub log_format: LogFormat,
    pub log_filter: String,
    /// `OTEL_*`: trace export (off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set).
    pub traces: TraceConfig,
    pub chaos_enabled: bool,
    /// `BODY_LIMIT_BYTES`: the largest request body accepted.
    pub body_limit: u64,
    /// `SHUTDOWN_GRACE_SECS`: how long in-flight requests may run after SIGTERM.
    pub shutdown_grace: Duration,
    /// `HTTP_HEADER_TIMEOUT_SECS`, `HTTP_BODY_TIMEOUT_SECS`, `HTTP_IDLE_TIMEOUT_SECS`,
    /// `MAX_CONNECTIONS`: what one slow, idle or greedy client can hold.
    pub connections: wharf_edge::server::ConnectionLimits,
    /// `AUTH_MODE` and, with `jwt`, `AUTH_ISSUER`, `AUTH_JWKS_URL`, `AUTH_AUDIENCE`,
    /// `AUTH_ADMIN_GROUP`, `AUTH_JWKS_REFRESH_SECS`.
    pub auth: wharf_edge::auth::AuthSettings,
    /// `RATE_LIMIT_PER_SECOND`, `RATE_LIMIT_BURST`, `RATE_LIMIT_MAX_CLIENTS`, `TRUST_FORWARDED_FOR`.
    pub rate_limit: wharf_edge::rate_limit::RateLimitSettings,
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
        let store_queue = env.integer("STORE_QUEUE", 1024, 1..=1_000_000);
        let log_format =
            env.choice("LOG_FORMAT", LogFormat::Json, &[("json", LogFormat::Json), ("pretty", LogFormat::Pretty)]);
        let log_filter =
            env.parse("RUST_LOG", "info".to_owned(), "a tracing filter such as info or products=debug,info", |v| {
                tracing_subscriber::EnvFilter::try_new(v).ok().map(|_| v.to_owned())
            });
        let traces = TraceConfig::from_env(env, display_name(service));
        let chaos_enabled = env.boolean("CHAOS_ENABLED", false);
        let body_limit = env.integer("BODY_LIMIT_BYTES", 64 * 1024, 1..=64 * 1024 * 1024);
        let shutdown_grace = Duration::from_secs(env.integer("SHUTDOWN_GRACE_SECS", 10, 0..=3600));
        let defaults = wharf_edge::server::ConnectionLimits::default();
        let connections = wharf_edge::server::ConnectionLimits {
            header_timeout: Duration::from_secs(env.integer(
                "HTTP_HEADER_TIMEOUT_SECS",
                defaults.header_timeout.as_secs(),
                1..=3600,
            )),
            body_timeout: Duration::from_secs(env.integer(
                "HTTP_BODY_TIMEOUT_SECS",
                defaults.body_timeout.as_secs(),
                1..=3600,
            )),
            idle_timeout: Duration::from_secs(env.integer(
                "HTTP_IDLE_TIMEOUT_SECS",
                defaults.idle_timeout.as_secs(),
                1..=3600,
            )),
            max_connections: env.integer("MAX_CONNECTIONS", defaults.max_connections, 1..=1_000_000),
        };
        let max_restarts = env.integer("SUPERVISOR_MAX_RESTARTS", 10, 0..=10_000);
        let restart_window = Duration::from_secs(env.integer("SUPERVISOR_WINDOW_SECS", 60, 1..=86_400));
        let auth = read_auth(env);
        let rate_limit = wharf_edge::rate_limit::RateLimitSettings {
            per_second: env.integer("RATE_LIMIT_PER_SECOND", 0, 0..=1_000_000),
            burst: env.integer("RATE_LIMIT_BURST", 0, 0..=1_000_000),
            trust_forwarded_for: env.boolean("TRUST_FORWARDED_FOR", false),
            max_clients: env.integer("RATE_LIMIT_MAX_CLIENTS", 100_000, 1..=10_000_000),
        };
        Self {
            auth,
            rate_limit,
            host,
            port,
            port_variable: "PORT",
            database_url,
            database_max_connections,
            store_queue,
            log_format,
            log_filter,
            traces,
            chaos_enabled,
            body_limit,
            shutdown_grace,
            connections,
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
            connections: self.connections,
            auth: self.auth.clone(),
            rate_limit: self.rate_limit,
        }
    }
}

/// The name a service goes by in health bodies and traces (`ProductService`).
pub fn display_name(service: &str) -> &str {
    match service {
        "products" => "ProductService",
        "orders" => "OrderService",
        "notifications" => "NotificationService",
        other => other,
    }
}

/// The authentication settings; with `jwt`, a missing issuer or audience is an error like any
/// bad value, reported with the others.
fn read_auth(env: &mut Env) -> wharf_edge::auth::AuthSettings {
    use wharf_edge::auth::{AuthSettings, JwtSettings};
    #[derive(Clone, Copy)]
    enum Mode {
        None,
        Jwt,
    }
    let mode = env.choice("AUTH_MODE", Mode::None, &[("none", Mode::None), ("jwt", Mode::Jwt)]);
    let url =
        |v: &str| (v.starts_with("https://") || v.starts_with("http://")).then(|| v.trim_end_matches('/').to_owned());
    let issuer = env.optional(
        "AUTH_ISSUER",
        "an https:// URL (Cognito: https://cognito-idp.<region>.amazonaws.com/<pool-id>)",
        url,
    );
    let jwks_url = env.optional("AUTH_JWKS_URL", "an http(s):// URL", url);
    let audiences = env.optional("AUTH_AUDIENCE", "accepted audiences or client ids, comma-separated", |v| {
        let list: Vec<String> = v.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect();
        (!list.is_empty()).then_some(list)
    });
    let admin_group = env.string("AUTH_ADMIN_GROUP", "admin");
    let min_refresh_interval = Duration::from_secs(env.integer("AUTH_JWKS_REFRESH_SECS", 60, 1..=86_400));
    if matches!(mode, Mode::None) {
        return AuthSettings::None;
    }
    if issuer.is_none() && env.raw("AUTH_ISSUER").is_none() {
        env.reject("AUTH_ISSUER", "the token issuer's URL (required with AUTH_MODE=jwt)");
    }
    if audiences.is_none() && env.raw("AUTH_AUDIENCE").is_none() {
        env.reject("AUTH_AUDIENCE", "the accepted audience or Cognito client id (required with AUTH_MODE=jwt)");
    }
    let (Some(issuer), Some(audiences)) = (issuer, audiences) else { return AuthSettings::None };
    let jwks_url = jwks_url.unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json"));
    AuthSettings::Jwt(JwtSettings { issuer, jwks_url, audiences, admin_group, min_refresh_interval })
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
    fn connection_limits_are_read_and_checked() {
        let mut env = Env::from_pairs([
            ("HTTP_HEADER_TIMEOUT_SECS", "5"),
            ("HTTP_BODY_TIMEOUT_SECS", "7"),
            ("HTTP_IDLE_TIMEOUT_SECS", "90"),
            ("MAX_CONNECTIONS", "64"),
        ]);
        let config = ServiceConfig::from_env(&mut env, "products", 5000);
        assert!(env.finish().is_ok());
        let limits = config.edge().connections;
        assert_eq!(limits.header_timeout, Duration::from_secs(5));
        assert_eq!(limits.body_timeout, Duration::from_secs(7));
        assert_eq!(limits.idle_timeout, Duration::from_secs(90));
        assert_eq!(limits.max_connections, 64);

        let mut env = Env::from_pairs([("HTTP_BODY_TIMEOUT_SECS", "0"), ("MAX_CONNECTIONS", "lots")]);
        let _ = ServiceConfig::from_env(&mut env, "products", 5000);
        let text = env.finish().unwrap_err().to_string();
        assert!(text.contains("HTTP_BODY_TIMEOUT_SECS") && text.contains("MAX_CONNECTIONS"), "{text}");
    }

    #[test]
    fn jwt_mode_needs_an_issuer_and_an_audience() {
        let mut env = Env::from_pairs([("AUTH_MODE", "jwt")]);
        let _ = ServiceConfig::from_env(&mut env, "products", 5000);
        let text = env.finish().unwrap_err().to_string();
        assert!(text.contains("AUTH_ISSUER") && text.contains("AUTH_AUDIENCE"), "{text}");

        let mut env = Env::from_pairs([
            ("AUTH_MODE", "JWT"),
            ("AUTH_ISSUER", "https://cognito-idp.eu-west-1.amazonaws.com/pool/"),
            ("AUTH_AUDIENCE", "client-a, client-b"),
        ]);
        let config = ServiceConfig::from_env(&mut env, "products", 5000);
        assert!(env.finish().is_ok());
        let wharf_edge::auth::AuthSettings::Jwt(jwt) = config.auth else { panic!("jwt mode") };
        assert_eq!(jwt.jwks_url, "https://cognito-idp.eu-west-1.amazonaws.com/pool/.well-known/jwks.json");
        assert_eq!(jwt.audiences, ["client-a", "client-b"]);
        assert_eq!(jwt.admin_group, "admin");
        assert!(matches!(
            ServiceConfig::from_env(&mut Env::default(), "x", 1).auth,
            wharf_edge::auth::AuthSettings::None
        ));
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
