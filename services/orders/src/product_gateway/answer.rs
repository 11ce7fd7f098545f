//! What a lookup answers, and the one place that says how the edge words a failed lookup.

use std::time::Duration;

use wharf_edge::Problem;

/// What orders needs to know about a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSnapshot {
    pub id: i64,
    pub name: String,
    /// Its price in whole cents (exact: converted from products' two-decimal number).
    pub price_cents: i64,
    /// Units in stock.
    pub stock: i32,
}

/// Where a found product came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// products answered this lookup.
    Live,
    /// products could not answer; this is the last-known snapshot, confirmed `age` ago.
    Fallback {
        /// Time since products last returned this snapshot.
        age: Duration,
    },
}

/// The answer to a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The product, live or from the fallback cache.
    Found {
        product: ProductSnapshot,
        /// Live, or a fallback with its age.
        source: Source,
    },
    /// products says there is no such product (a definite answer, never a fallback).
    NotFound,
}

/// Why a lookup has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// products cannot answer right now (down, slow, overloaded, or the circuit is open) and the
    /// product is not in the fallback cache. Transient: the edge answers 503 + `Retry-After`.
    #[error("products is unavailable and the product is not cached: {reason}")]
    Unavailable {
        /// When a retry has a chance: the time until the next probe, at least 1 s, whole seconds.
        retry_after: Duration,
        /// What went wrong, for logs and the problem's detail.
        reason: String,
    },
    /// products refused the request itself (a 4xx other than 404, 408 and 429): a bug or a
    /// misconfiguration between the services that retrying, or a stale cache, would only hide.
    /// The edge answers 502.
    #[error("products refused the lookup with HTTP {status}{}", detail_suffix(.detail))]
    Refused {
        /// products' status code.
        status: u16,
        /// products' problem detail, if it sent one.
        detail: String,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() { String::new() } else { format!(": {detail}") }
}

impl From<GatewayError> for Problem {
    fn from(error: GatewayError) -> Self {
        match error {
            GatewayError::Unavailable { retry_after, reason } => {
                let seconds = u32::try_from(retry_after.as_secs()).unwrap_or(u32::MAX).max(1);
                Problem::unavailable(
                    format!("The product catalogue cannot be reached and the product is not cached: {reason}."),
                    seconds,
                )
            }
            GatewayError::Refused { status, .. } => Problem::new(
                warp::http::StatusCode::BAD_GATEWAY,
                "bad-gateway",
                "Bad gateway",
                format!("The product service refused the lookup (HTTP {status})."),
            ),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn unavailable_maps_to_503_with_whole_seconds_and_refused_to_502() {
        let problem = Problem::from(GatewayError::Unavailable {
            retry_after: Duration::from_secs(7),
            reason: "the circuit to products is open".into(),
        });
        assert_eq!(problem.status, 503);
        assert_eq!(problem.retry_after, Some(7));
        let problem = Problem::from(GatewayError::Refused { status: 401, detail: "no".into() });
        assert_eq!(problem.status, 502);
    }
}
