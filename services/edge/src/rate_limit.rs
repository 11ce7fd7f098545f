//! Per-client rate limits on `/api/*` (docs/contract.md, "Rate limiting"), with governor's GCRA.
//!
//! A client is its IP address: the peer's, or behind the ALB (`TRUST_FORWARDED_FOR`) the first
//! `X-Forwarded-For` address — which a client can set to anything, so the key set is bounded:
//! past `max_clients` keys, stale ones are dropped, and if the set is still full (a spray of
//! fresh addresses within one window) new addresses share one overflow bucket instead of growing
//! memory. Honest clients already known keep their own bucket.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use prometheus_client::metrics::gauge::Gauge;
use warp::reply::Response;

use crate::problem::Problem;

/// The key every client beyond `max_clients` shares.
const OVERFLOW: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// `RATE_LIMIT_*` and `TRUST_FORWARDED_FOR`.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitSettings {
    /// Requests per second per client; 0 turns limiting off.
    pub per_second: u32,
    /// Requests a client may make at once after a pause.
    pub burst: u32,
    /// Key by the first `X-Forwarded-For` address instead of the peer.
    pub trust_forwarded_for: bool,
    /// Clients tracked at most (`RATE_LIMIT_MAX_CLIENTS`).
    pub max_clients: usize,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self { per_second: 0, burst: 0, trust_forwarded_for: false, max_clients: 100_000 }
    }
}

/// A request's standing against its client's quota.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Let through; `remaining` more may follow at once.
    Allowed { remaining: u32 },
    /// Refused for `wait_secs`.
    Limited { wait_secs: u64 },
}

/// The limiter of one service.
pub(crate) struct ClientLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr, StateInformationMiddleware>,
    settings: RateLimitSettings,
    /// `wharf_rate_limit_clients`: keys held.
    pub(crate) clients: Gauge,
}

impl std::fmt::Debug for ClientLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientLimiter").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl ClientLimiter {
    /// A limiter for `settings`, or `None` when limiting is off.
    pub(crate) fn new(settings: RateLimitSettings) -> Option<Self> {
        let per_second = NonZeroU32::new(settings.per_second)?;
        let burst = NonZeroU32::new(settings.burst).unwrap_or(per_second);
        let quota = Quota::per_second(per_second).allow_burst(burst);
        let limiter = RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>();
        Some(Self {
            limiter,
            settings: RateLimitSettings { burst: burst.get(), ..settings },
            clients: Gauge::default(),
        })
    }

    /// The client a request comes from.
    pub(crate) fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> IpAddr {
        let forwarded = self
            .settings
            .trust_forwarded_for
            .then(|| headers.get("x-forwarded-for")?.to_str().ok()?.split(',').next()?.trim().parse::<IpAddr>().ok())
            .flatten();
        forwarded.or(peer).unwrap_or(OVERFLOW)
    }

    /// Counts one request of `client`.
    pub(crate) fn check(&self, client: IpAddr) -> Verdict {
        let mut key = client;
        if self.limiter.len() >= self.settings.max_clients {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
            if self.limiter.len() >= self.settings.max_clients {
                key = OVERFLOW;
            }
        }
        let verdict = match self.limiter.check_key(&key) {
            Ok(snapshot) => Verdict::Allowed { remaining: snapshot.remaining_burst_capacity() },
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Verdict::Limited { wait_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) }
            }
        };
        self.clients.set(i64::try_from(self.limiter.len()).unwrap_or(i64::MAX));
        verdict
    }

    /// Adds `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` to a response.
    pub(crate) fn annotate(&self, verdict: &Verdict, headers: &mut HeaderMap) {
        let (remaining, reset) = match *verdict {
            // Seconds until the bucket is full again.
            Verdict::Allowed { remaining } => {
                let used = u64::from(self.settings.burst.saturating_sub(remaining));
                (remaining, used.div_ceil(u64::from(self.settings.per_second.max(1))))
            }
            Verdict::Limited { wait_secs } => (0, wait_secs),
        };
        headers.insert("ratelimit-limit", HeaderValue::from(self.settings.burst));
        headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(reset));
    }

    /// The 429 for a limited request.
    pub(crate) fn refusal(&self, verdict: &Verdict) -> Response {
        let wait = match *verdict {
            Verdict::Limited { wait_secs } => wait_secs.max(1),
            Verdict::Allowed { .. } => 1,
        };
        let mut response = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too Many Requests",
            format!("This client sent more than {} requests a second; retry in {wait} s.", self.settings.per_second),
        )
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        self.annotate(verdict, response.headers_mut());
        response
    }
}
