//! The issuer's signing keys (JWKS), fetched at start-up and refreshed when a token names a key
//! the set does not hold — which is how a key rotation reaches a running service.
//!
//! A refresh is a request to the issuer, and a token's `kid` is attacker-chosen: refreshes are
//! therefore rate-bounded (at most one per `min_refresh_interval`, concurrent askers wait for the
//! one in flight), so a flood of tokens with made-up `kid`s costs the issuer one request per
//! interval, not one per token.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use prometheus_client::metrics::counter::Counter;

/// A verification key and the one algorithm it may verify.
#[derive(Clone)]
pub(crate) struct SigningKey {
    pub(crate) key: DecodingKey,
    pub(crate) algorithm: Algorithm,
}

/// Why the JWKS could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    #[error("cannot fetch the JWKS from {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("the JWKS at {url} holds no RS256 or ES256 signing key")]
    Empty { url: String },
}

/// The cached key set.
pub(crate) struct KeySet {
    url: String,
    client: reqwest::Client,
    keys: ArcSwap<HashMap<String, SigningKey>>,
    /// When the last refresh for an unknown `kid` started (the start-up fetch is not one, so a
    /// key rotated just after start-up is still picked up at once); held across a refresh so
    /// concurrent askers wait for it instead of fetching too.
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    min_refresh_interval: Duration,
    /// Fetches made, start-up included (`wharf_auth_jwks_fetches_total`).
    pub(crate) fetches: Counter,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("url", &self.url).field("kids", &self.keys.load().len()).finish()
    }
}

impl KeySet {
    /// Fetches the set from `url`; fails when it cannot be fetched or holds no usable key.
    pub(crate) async fn load(url: &str, min_refresh_interval: Duration) -> Result<Self, KeySetError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|err| KeySetError::Fetch { url: url.to_owned(), reason: err.to_string() })?;
        let set = Self {
            url: url.to_owned(),
            client,
            keys: ArcSwap::from_pointee(HashMap::new()),
            last_refresh: tokio::sync::Mutex::new(None),
            min_refresh_interval,
            fetches: Counter::default(),
        };
        let keys = set.fetch().await?;
        if keys.is_empty() {
            return Err(KeySetError::Empty { url: url.to_owned() });
        }
        set.keys.store(Arc::new(keys));
        Ok(set)
    }

    /// The key named `kid`, refreshing the set once if it is unknown and the last fetch is
    /// older than the refresh interval.
    pub(crate) async fn get(&self, kid: &str) -> Option<SigningKey> {
        if let Some(key) = self.keys.load().get(kid) {
            return Some(key.clone());
        }
        let mut last_refresh = self.last_refresh.lock().await;
        // Another request may have refreshed while this one waited for the lock.
        if let Some(key) = self.keys.load().get(kid) {
            return Some(key.clone());
        }
        if last_refresh.is_some_and(|at| at.elapsed() < self.min_refresh_interval) {
            return None;
        }
        *last_refresh = Some(Instant::now());
        match self.fetch().await {
            // An empty or broken answer keeps the keys that work.
            Ok(keys) if !keys.is_empty() => self.keys.store(Arc::new(keys)),
            Ok(_) => tracing::warn!(url = %self.url, "JWKS refresh returned no usable key; keeping the old set"),
            Err(err) => tracing::warn!(error = %err, "JWKS refresh failed; keeping the old set"),
        }
        self.keys.load().get(kid).cloned()
    }

    async fn fetch(&self) -> Result<HashMap<String, SigningKey>, KeySetError> {
        self.fetches.inc();
        let failed = |reason: String| KeySetError::Fetch { url: self.url.clone(), reason };
        let response = self.client.get(&self.url).send().await.map_err(|err| failed(err.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("HTTP {}", response.status())));
        }
        let set: JwkSet = response.json().await.map_err(|err| failed(format!("not a JWKS: {err}")))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            // A key's algorithm is fixed by the key, never by the token that claims it.
            let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
                (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
                (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                    if ec.curve == EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => continue,
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid, SigningKey { key, algorithm });
                }
                Err(err) => tracing::warn!(kid, error = %err, "skipping an unusable JWKS key"),
            }
        }
        tracing::info!(url = %self.url, keys = keys.len(), "JWKS fetched");
        Ok(keys)
    }
}
