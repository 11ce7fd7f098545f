//! The gateway's Prometheus series: lookups by outcome, retries by reason, the breaker's state
//! and transitions, the fallback cache's size.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::answer::{GatewayError, Lookup, Source};
use super::breaker::BreakerState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OutcomeLabels {
    pub(super) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct TransitionLabels {
    pub(super) to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RetryLabels {
    pub(super) reason: &'static str,
}

/// The gateway's metrics; clones share the same series.
#[derive(Debug, Clone)]
pub(super) struct GatewayMetrics {
    pub(super) breaker_state: Gauge,
    pub(super) transitions: Family<TransitionLabels, Counter>,
    pub(super) rejections: Counter,
    pub(super) lookups: Family<OutcomeLabels, Counter>,
    pub(super) retries: Family<RetryLabels, Counter>,
    pub(super) cache_entries: Gauge,
}

impl GatewayMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            breaker_state: Gauge::default(),
            transitions: Family::default(),
            rejections: Counter::default(),
            lookups: Family::default(),
            retries: Family::default(),
            cache_entries: Gauge::default(),
        };
        registry.register(
            "products_breaker_state",
            "State of the circuit breaker in front of products: 0 closed, 1 half-open, 2 open",
            metrics.breaker_state.clone(),
        );
        registry.register(
            "products_breaker_transitions",
            "Circuit breaker transitions, by the state entered",
            metrics.transitions.clone(),
        );
        registry.register(
            "products_breaker_rejections",
            "Product lookups answered without calling products because the circuit was open",
            metrics.rejections.clone(),
        );
        registry.register(
            "products_lookups",
            "Product lookups by outcome: live, fallback, not_found, unavailable, refused",
            metrics.lookups.clone(),
        );
        registry.register("products_retries", "Retried calls to products, by reason", metrics.retries.clone());
        registry.register(
            "products_cache_entries",
            "Products held in the fallback cache",
            metrics.cache_entries.clone(),
        );
        // Every series exists from the start, so rates and alerts see zeros rather than gaps.
        for outcome in ["live", "fallback", "not_found", "unavailable", "refused"] {
            let _ = metrics.lookups.get_or_create(&OutcomeLabels { outcome });
        }
        for state in [BreakerState::Closed, BreakerState::HalfOpen, BreakerState::Open] {
            let _ = metrics.transitions.get_or_create(&TransitionLabels { to: state.label() });
        }
        metrics
    }

    pub(super) fn record_lookup(&self, result: &Result<Lookup, GatewayError>) {
        let outcome = match result {
            Ok(Lookup::Found { source: Source::Live, .. }) => "live",
            Ok(Lookup::Found { source: Source::Fallback { .. }, .. }) => "fallback",
            Ok(Lookup::NotFound) => "not_found",
            Err(GatewayError::Unavailable { .. }) => "unavailable",
            Err(GatewayError::Refused { .. }) => "refused",
        };
        self.lookups.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}
