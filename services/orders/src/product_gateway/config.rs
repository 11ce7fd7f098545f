//! How the gateway reaches products and how hard it tries: the `PRODUCTS_*`, `BREAKER_*` and
//! `PRODUCT_CACHE_SIZE` variables, read once at start-up, and the backoff between attempts.

use std::time::Duration;

use wharf_runtime::Env;

/// How the gateway reaches products and how hard it tries.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `PRODUCTS_URL`: products' base URL, without a trailing slash.
    pub products_url: String,
    /// `PRODUCTS_TIMEOUT_MS`: the limit for one attempt (connect, request and body).
    pub timeout: Duration,
    /// `PRODUCTS_RETRIES`: attempts after the first one, for failures worth retrying.
    pub retries: u32,
    /// The backoff before the first retry; it doubles per retry (with jitter) up to `backoff_max`.
    pub backoff_initial: Duration,
    /// The longest backoff between two attempts.
    pub backoff_max: Duration,
    /// The longest `Retry-After` honoured by waiting; a longer one ends the lookup.
    pub max_retry_after: Duration,
    /// `BREAKER_FAILURES`: consecutive failed attempts that open the circuit.
    pub breaker_failures: u32,
    /// `BREAKER_OPEN_SECS`: how long the circuit stays open before a probe. A `Duration`, so
    /// tests can use milliseconds.
    pub breaker_open: Duration,
    /// `PRODUCT_CACHE_SIZE`: the most products kept for fallback answers (0 disables them).
    pub cache_size: usize,
    /// `PRODUCTS_CONCURRENCY`: gateway workers, i.e. the most lookups in flight to products.
    pub concurrency: usize,
    /// `PRODUCTS_QUEUE`: lookups that may wait for a worker before new ones are shed.
    pub queue: usize,
}

impl Default for GatewayConfig {
    /// The documented defaults (CONTRACT.md).
    fn default() -> Self {
        Self {
            products_url: "http://127.0.0.1:5000".to_owned(),
            timeout: Duration::from_millis(5000),
            retries: 3,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
            breaker_failures: 5,
            breaker_open: Duration::from_secs(30),
            cache_size: 10_000,
            concurrency: 32,
            queue: 64,
        }
    }
}

impl GatewayConfig {
    /// Reads the gateway's variables; bad values are recorded in `env` and replaced by defaults.
    pub fn from_env(env: &mut Env) -> Self {
        let defaults = Self::default();
        let products_url = env.parse(
            "PRODUCTS_URL",
            defaults.products_url.clone(),
            "an http:// or https:// base URL such as http://127.0.0.1:5000",
            parse_base_url,
        );
        let timeout = Duration::from_millis(env.integer("PRODUCTS_TIMEOUT_MS", 5000, 1..=600_000));
        let retries = env.integer("PRODUCTS_RETRIES", defaults.retries, 0..=10);
        let breaker_failures = env.integer("BREAKER_FAILURES", defaults.breaker_failures, 1..=10_000);
        let breaker_open = Duration::from_secs(env.integer("BREAKER_OPEN_SECS", 30, 1..=86_400));
        let cache_size = env.integer("PRODUCT_CACHE_SIZE", defaults.cache_size, 0..=10_000_000);
        let concurrency = env.integer("PRODUCTS_CONCURRENCY", defaults.concurrency, 1..=4096);
        let queue = env.integer("PRODUCTS_QUEUE", concurrency.saturating_mul(2), 1..=1_000_000);
        Self {
            products_url,
            timeout,
            retries,
            breaker_failures,
            breaker_open,
            cache_size,
            concurrency,
            queue,
            ..defaults
        }
    }

    /// The longest one lookup can take once a worker runs it: every attempt timing out, with
    /// the longest wait between attempts.
    pub fn lookup_budget(&self) -> Duration {
        let longest_wait = self.backoff_max.max(self.max_retry_after);
        self.timeout.saturating_mul(self.retries.saturating_add(1)) + longest_wait.saturating_mul(self.retries)
    }

    /// The wait before retry number `retry` (0-based): `backoff_initial × 2^retry`, capped at
    /// `backoff_max`, of which the upper half is random ("equal jitter"), so that lookups that
    /// failed together do not retry together, yet no retry comes immediately.
    pub(super) fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        let ceiling = self.backoff_initial.saturating_mul(factor).min(self.backoff_max);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// An http(s) URL with a host and nothing after the path, without its trailing slash.
fn parse_base_url(value: &str) -> Option<String> {
    let url = reqwest::Url::parse(value).ok()?;
    let usable = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.query().is_none()
        && url.fragment().is_none();
    usable.then(|| value.trim_end_matches('/').to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_in_the_upper_half_and_is_capped() {
        let config = GatewayConfig {
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(350),
            ..GatewayConfig::default()
        };
        for _ in 0..100 {
            let first = config.backoff(0);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first), "{first:?}");
            let second = config.backoff(1);
            assert!((Duration::from_millis(100)..=Duration::from_millis(200)).contains(&second), "{second:?}");
            let capped = config.backoff(40);
            assert!((Duration::from_millis(175)..=Duration::from_millis(350)).contains(&capped), "{capped:?}");
        }
    }

    #[test]
    fn configuration_defaults_match_the_contract() {
        let mut env = Env::from_pairs([("PRODUCTS_URL", "https://products.internal:8443/")]);
        let config = GatewayConfig::from_env(&mut env);
        assert!(env.finish().is_ok());
        assert_eq!(config.products_url, "https://products.internal:8443");
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert_eq!(config.retries, 3);
        assert_eq!(config.breaker_failures, 5);
        assert_eq!(config.breaker_open, Duration::from_secs(30));
        assert_eq!(config.cache_size, 10_000);
        assert_eq!(config.concurrency, 32);
        assert_eq!(config.queue, 64);
        assert_eq!(GatewayConfig::from_env(&mut Env::default()).products_url, "http://127.0.0.1:5000");
    }

    #[test]
    fn every_bad_variable_is_recorded() {
        let mut env = Env::from_pairs([
            ("PRODUCTS_URL", "ftp://products"),
            ("PRODUCTS_TIMEOUT_MS", "0"),
            ("PRODUCTS_RETRIES", "many"),
            ("BREAKER_FAILURES", "0"),
            ("BREAKER_OPEN_SECS", "-1"),
            ("PRODUCT_CACHE_SIZE", "big"),
            ("PRODUCTS_CONCURRENCY", "0"),
        ]);
        let config = GatewayConfig::from_env(&mut env);
        let text = env.finish().unwrap_err().to_string();
        for variable in [
            "PRODUCTS_URL",
            "PRODUCTS_TIMEOUT_MS",
            "PRODUCTS_RETRIES",
            "BREAKER_FAILURES",
            "BREAKER_OPEN_SECS",
            "PRODUCT_CACHE_SIZE",
            "PRODUCTS_CONCURRENCY",
        ] {
            assert!(text.contains(&format!("invalid {variable}=")), "{variable} missing in:\n{text}");
        }
        assert_eq!(config.products_url, "http://127.0.0.1:5000");
        for bad in ["http://", "http://host/?q=1", "not a url", "http://host/#x"] {
            assert_eq!(parse_base_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_lookup_budget_covers_every_attempt_and_wait() {
        let config = GatewayConfig {
            timeout: Duration::from_millis(200),
            retries: 2,
            backoff_max: Duration::from_millis(50),
            max_retry_after: Duration::from_millis(10),
            ..GatewayConfig::default()
        };
        assert_eq!(config.lookup_budget(), Duration::from_millis(700));
    }
}
