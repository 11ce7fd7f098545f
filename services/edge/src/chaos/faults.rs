//! A fault plan: what `POST /admin/chaos/faults` asks for, and what one request suffers under it.
//!
//! A plan is parsed once, when it is posted; the request path only reads it. It never touches
//! the operational endpoints (`/health*`, `/metrics`, `/admin/*`): a drill must be observable
//! and stoppable through the very instance it is breaking.

use std::time::Duration;

use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::fields::Fields;
use crate::problem::Problem;

/// The longest latency (and jitter) a plan may add, in ms.
pub(crate) const MAX_LATENCY_MS: u64 = 60_000;
/// The longest a fault or a readiness override may last, in seconds.
pub(crate) const MAX_DURATION_SECS: u64 = 3_600;
/// Where faults apply when the plan does not say.
pub(crate) const DEFAULT_PATH_PREFIX: &str = "/api/";

/// The first path segments that faults never apply to.
const OPERATIONAL: [&str; 3] = ["health", "metrics", "admin"];

/// Latency and errors to inject into the requests under a path prefix, for a while.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FaultPlan {
    /// Added before the route runs, in ms (0: none).
    pub(crate) latency_ms: u64,
    /// The latency varies by up to this much either way, uniformly, in ms.
    pub(crate) latency_jitter_ms: u64,
    /// The share of requests answered with `error_status` instead of running the route.
    pub(crate) error_rate: f64,
    /// The injected errors' status, 500–599.
    pub(crate) error_status: u16,
    /// Faults apply to requests whose path starts with this.
    pub(crate) path_prefix: String,
    /// How long the plan lasts from when it was posted.
    pub(crate) duration_secs: u64,
}

const FIELDS: [&str; 6] = ["latencyMs", "latencyJitterMs", "errorRate", "errorStatus", "durationSecs", "pathPrefix"];

impl FaultPlan {
    /// Parses `{latencyMs?, latencyJitterMs?, errorRate?, errorStatus?, durationSecs, pathPrefix?}`;
    /// every bad field is named in the problem.
    pub(crate) fn parse(body: &Value) -> Result<Self, Problem> {
        let mut fields = Fields::of(body, &FIELDS)?;
        let latency_ms = fields.whole("latencyMs", 0..=MAX_LATENCY_MS, Some(0));
        let latency_jitter_ms = fields.whole("latencyJitterMs", 0..=MAX_LATENCY_MS, Some(0));
        let error_rate = fields.fraction("errorRate", 0.0);
        let error_status = fields.whole("errorStatus", 500..=599, Some(503)).and_then(|s| u16::try_from(s).ok());
        let duration_secs = fields.whole("durationSecs", 1..=MAX_DURATION_SECS, None);
        let path_prefix = fields.string("pathPrefix", DEFAULT_PATH_PREFIX);

        if let (Some(latency), Some(jitter)) = (latency_ms, latency_jitter_ms)
            && jitter > latency
        {
            fields.reject("latencyJitterMs", "must not exceed latencyMs (the delay varies by this much either way)");
        }
        if latency_ms == Some(0) && error_rate == Some(0.0) {
            let message = "give latencyMs or errorRate (or both): a plan without either injects nothing";
            fields.reject("latencyMs", message);
            fields.reject("errorRate", message);
        }
        if let Some(prefix) = &path_prefix {
            if !prefix.starts_with('/') || prefix.len() > 200 || prefix.chars().any(char::is_whitespace) {
                fields.reject("pathPrefix", "must be a path starting with / (at most 200 characters, no spaces)");
            } else if OPERATIONAL.contains(&first_segment(prefix)) {
                fields.reject("pathPrefix", "faults never apply to /health*, /metrics or /admin/*");
            }
        }

        let plan = || {
            Some(Self {
                latency_ms: latency_ms?,
                latency_jitter_ms: latency_jitter_ms?,
                error_rate: error_rate?,
                error_status: error_status?,
                path_prefix: path_prefix?,
                duration_secs: duration_secs?,
            })
        };
        fields.finish(plan())
    }

    /// Whether a request for `path` is subject to this plan.
    pub(crate) fn applies_to(&self, path: &str) -> bool {
        path.starts_with(&self.path_prefix) && !OPERATIONAL.contains(&first_segment(path))
    }

    /// The delay for one request, if the plan adds any.
    pub(crate) fn delay(&self) -> Option<Duration> {
        if self.latency_ms == 0 && self.latency_jitter_ms == 0 {
            return None;
        }
        // latency ± jitter, uniformly; parse guarantees jitter ≤ latency, so this never underflows.
        let spread = fastrand::u64(0..=2 * self.latency_jitter_ms);
        let ms = (self.latency_ms + spread).saturating_sub(self.latency_jitter_ms);
        Some(Duration::from_millis(ms))
    }

    /// Whether this request is one of those that fail.
    pub(crate) fn fails(&self) -> bool {
        // `f64()` is in [0, 1): a rate of 1 always fails, 0 never does.
        self.error_rate > 0.0 && fastrand::f64() < self.error_rate
    }

    /// The injected error, `remaining` before the plan ends.
    pub(crate) fn error(&self, remaining: Duration) -> Problem {
        let status = StatusCode::from_u16(self.error_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let detail = format!(
            "This error was injected by chaos (CHAOS_ENABLED): {:.0}% of requests to {}* fail with {} for another {} s.",
            self.error_rate * 100.0,
            self.path_prefix,
            self.error_status,
            whole_secs(remaining),
        );
        let mut problem = Problem::new(status, "chaos", "Fault injected by chaos", detail);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            problem.retry_after = Some(1);
        }
        problem
    }

    /// `latency 300±100 ms, errors 30% → 503 on /api/` — for logs.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.latency_ms > 0 || self.latency_jitter_ms > 0 {
            match self.latency_jitter_ms {
                0 => parts.push(format!("latency {} ms", self.latency_ms)),
                jitter => parts.push(format!("latency {}±{jitter} ms", self.latency_ms)),
            }
        }
        if self.error_rate > 0.0 {
            parts.push(format!("errors {}% → {}", self.error_rate * 100.0, self.error_status));
        }
        format!("{} on {}", parts.join(", "), self.path_prefix)
    }
}

/// `api` for `/api/products`, `` for `/`.
fn first_segment(path: &str) -> &str {
    path.trim_start_matches('/').split('/').next().unwrap_or_default()
}

/// Seconds, rounded up: "1 s left" until the very end, never "0 s left" while still active.
pub(crate) fn whole_secs(duration: Duration) -> u64 {
    duration.as_millis().div_ceil(1000).try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors(body: Value) -> Value {
        let problem = FaultPlan::parse(&body).unwrap_err();
        assert_eq!(problem.status, 400);
        serde_json::to_value(problem.errors).unwrap()
    }

    #[test]
    fn defaults_fill_what_is_not_given() {
        let plan = FaultPlan::parse(&json!({"errorRate": 0.25, "durationSecs": 30})).unwrap();
        assert_eq!(
            plan,
            FaultPlan {
                latency_ms: 0,
                latency_jitter_ms: 0,
                error_rate: 0.25,
                error_status: 503,
                path_prefix: "/api/".to_owned(),
                duration_secs: 30,
            }
        );
        assert_eq!(plan.delay(), None);
    }

    #[test]
    fn every_bad_field_is_named() {
        let found = errors(json!({"latencyMs": -1, "errorRate": 1.5, "errorStatus": 404, "durationSecs": 0,
                                  "pathPrefix": "api", "latency": 5}));
        for field in ["latencyMs", "errorRate", "errorStatus", "durationSecs", "pathPrefix", "latency"] {
            assert!(found.get(field).is_some(), "{field} in {found}");
        }
        assert!(errors(json!({"errorRate": 0.1}))["durationSecs"][0].as_str().unwrap().contains("required"));
        assert!(errors(json!([]))["body"].is_array());
        assert!(errors(json!({"durationSecs": 5})).get("latencyMs").is_some(), "a plan that injects nothing");
        let jitter = errors(json!({"latencyMs": 10, "latencyJitterMs": 20, "durationSecs": 5}));
        assert!(jitter.get("latencyJitterMs").is_some(), "{jitter}");
    }

    #[test]
    fn operational_paths_are_never_targets() {
        for prefix in ["/health", "/health/ready", "/metrics", "/admin/"] {
            let found = errors(json!({"errorRate": 1, "durationSecs": 5, "pathPrefix": prefix}));
            assert!(found.get("pathPrefix").is_some(), "{prefix}: {found}");
        }
        let everything = FaultPlan::parse(&json!({"errorRate": 1, "durationSecs": 5, "pathPrefix": "/"})).unwrap();
        assert!(everything.applies_to("/api/products") && everything.applies_to("/openapi.json"));
        for path in ["/health", "/health/ready", "/metrics", "/admin/chaos"] {
            assert!(!everything.applies_to(path), "{path}");
        }
        let api = FaultPlan::parse(&json!({"errorRate": 1, "durationSecs": 5})).unwrap();
        assert!(api.applies_to("/api/orders/7") && !api.applies_to("/swagger/"));
    }

    #[test]
    fn delay_stays_within_latency_plus_or_minus_jitter() {
        let plan = FaultPlan::parse(&json!({"latencyMs": 100, "latencyJitterMs": 40, "durationSecs": 5})).unwrap();
        let delays: Vec<u128> = (0..1000).filter_map(|_| plan.delay()).map(|d| d.as_millis()).collect();
        assert!(delays.iter().all(|ms| (60..=140).contains(ms)), "{delays:?}");
        assert!(delays.iter().any(|ms| *ms < 80) && delays.iter().any(|ms| *ms > 120), "the jitter varies");
        assert_eq!(plan.describe(), "latency 100±40 ms on /api/");
    }

    #[test]
    fn error_rate_bounds_are_exact() {
        let never = FaultPlan::parse(&json!({"latencyMs": 1, "errorRate": 0, "durationSecs": 5})).unwrap();
        let always = FaultPlan::parse(&json!({"errorRate": 1, "errorStatus": 500, "durationSecs": 5})).unwrap();
        assert!((0..1000).all(|_| !never.fails() && always.fails()));
        let problem = always.error(Duration::from_millis(1_200));
        assert_eq!((problem.status, problem.retry_after), (500, None));
        assert!(problem.detail.contains("injected by chaos") && problem.detail.contains("2 s"), "{}", problem.detail);
        let unavailable = FaultPlan::parse(&json!({"errorRate": 1, "durationSecs": 5})).unwrap();
        assert_eq!(unavailable.error(Duration::from_secs(1)).retry_after, Some(1));
    }
}
