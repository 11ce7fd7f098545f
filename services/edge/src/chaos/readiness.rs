//! A readiness order: what `POST /admin/chaos/readiness` asks for.
//!
//! Forcing an instance unready rehearses what a load balancer or Kubernetes does when a replica
//! drops out (traffic moves to the others, alerts fire) without breaking anything in it. Only
//! readiness moves: liveness stays 200, so the orchestrator does not restart the process.

use serde_json::Value;

use super::faults::MAX_DURATION_SECS;
use super::fields::Fields;
use crate::problem::Problem;

/// Take the instance out of readiness for a while, or put it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadinessOrder {
    /// `{"ready": false, "durationSecs": n}`: `/health/ready` answers 503 for `n` seconds.
    ForceUnready { duration_secs: u64 },
    /// `{"ready": true}`: end a forced unreadiness now.
    Restore,
}

impl ReadinessOrder {
    /// Parses `{"ready": bool, "durationSecs"?}`; the duration is required with `false` and
    /// refused with `true` (there is no forcing an instance *ready*).
    pub(crate) fn parse(body: &Value) -> Result<Self, Problem> {
        let mut fields = Fields::of(body, &["ready", "durationSecs"])?;
        let ready = fields.boolean("ready");
        let order = match ready {
            Some(false) => fields
                .whole("durationSecs", 1..=MAX_DURATION_SECS, None)
                .map(|duration_secs| Self::ForceUnready { duration_secs }),
            Some(true) => {
                if fields.has("durationSecs") {
                    fields.reject("durationSecs", "only with \"ready\": false; true restores readiness at once");
                }
                Some(Self::Restore)
            }
            None => None,
        };
        fields.finish(order)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn orders_parse_and_bad_ones_name_their_fields() {
        assert_eq!(
            ReadinessOrder::parse(&json!({"ready": false, "durationSecs": 30})).unwrap(),
            ReadinessOrder::ForceUnready { duration_secs: 30 }
        );
        assert_eq!(ReadinessOrder::parse(&json!({"ready": true})).unwrap(), ReadinessOrder::Restore);
        for (body, field) in [
            (json!({"ready": false}), "durationSecs"),
            (json!({"ready": false, "durationSecs": 3601}), "durationSecs"),
            (json!({"ready": true, "durationSecs": 5}), "durationSecs"),
            (json!({"ready": "no", "durationSecs": 5}), "ready"),
            (json!({"durationSecs": 5}), "ready"),
            (json!({"ready": false, "durationSecs": 5, "why": "drill"}), "why"),
        ] {
            let problem = ReadinessOrder::parse(&body).unwrap_err();
            assert!(problem.errors.as_ref().is_some_and(|e| e.contains_key(field)), "{body}: {problem:?}");
        }
    }
}
