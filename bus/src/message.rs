//! The transport form of an event: body bytes plus the metadata that travels beside them.
//!
//! Every backend carries [`Metadata`] out of band (AMQP headers, SQS message attributes) under the
//! names in [`headers`], so tooling and consumers can route, trace and triage a message without
//! parsing its body — including a body that cannot be parsed at all.

use uuid::Uuid;

use crate::envelope::Envelope;

/// Names of the headers / message attributes the bus reads and writes.
pub mod headers {
    pub const EVENT_TYPE: &str = "event-type";
    pub const EVENT_VERSION: &str = "event-version";
    pub const CORRELATION_ID: &str = "correlation-id";
    /// The envelope's `traceparent` (W3C trace context).
    pub const TRACEPARENT: &str = "traceparent";
    /// The envelope's `tracestate` (W3C trace context: vendor entries), sent only with a
    /// `traceparent` it belongs to.
    pub const TRACESTATE: &str = "tracestate";
    /// Deliveries this message already had before the copy carrying the header was published
    /// (RabbitMQ retries republish a message; the count must survive that).
    pub const ATTEMPTS: &str = "attempts";
    /// Why a message was dead-lettered.
    pub const DEAD_LETTER_REASON: &str = "dead-letter-reason";
    /// How many deliveries a message had when it was dead-lettered.
    pub const DEAD_LETTER_ATTEMPTS: &str = "dead-letter-attempts";
    /// When a message was dead-lettered (RFC 3339).
    pub const DEAD_LETTERED_AT: &str = "dead-lettered-at";
}

/// Metadata carried beside the body. Every field is optional on receipt: a foreign or broken
/// producer may omit any of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub event_type: Option<String>,
    pub event_version: Option<u32>,
    pub correlation_id: Option<String>,
    pub traceparent: Option<String>,
    /// The `tracestate` that goes with `traceparent`; absent when the trace had none.
    pub tracestate: Option<String>,
}

impl Metadata {
    /// The metadata describing `envelope`.
    pub fn of(envelope: &Envelope) -> Self {
        Self {
            event_type: Some(envelope.event_type().to_owned()),
            event_version: Some(envelope.version()),
            correlation_id: Some(envelope.correlation_id().to_owned()),
            traceparent: envelope.traceparent().map(str::to_owned),
            tracestate: envelope.tracestate().map(str::to_owned),
        }
    }

    /// The metadata as (header name, value) pairs, absent fields left out.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::with_capacity(5);
        if let Some(value) = &self.event_type {
            pairs.push((headers::EVENT_TYPE, value.clone()));
        }
        if let Some(value) = self.event_version {
            pairs.push((headers::EVENT_VERSION, value.to_string()));
        }
        if let Some(value) = &self.correlation_id {
            pairs.push((headers::CORRELATION_ID, value.clone()));
        }
        if let Some(value) = &self.traceparent {
            pairs.push((headers::TRACEPARENT, value.clone()));
        }
        if let Some(value) = &self.tracestate {
            pairs.push((headers::TRACESTATE, value.clone()));
        }
        pairs
    }

    /// Reads the metadata from named string values (header or attribute lookup).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            event_type: lookup(headers::EVENT_TYPE),
            event_version: lookup(headers::EVENT_VERSION).and_then(|v| v.trim().parse().ok()),
            correlation_id: lookup(headers::CORRELATION_ID),
            traceparent: lookup(headers::TRACEPARENT),
            tracestate: lookup(headers::TRACESTATE),
        }
    }
}

/// A message as the bus publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The transport message id: the event id for envelopes, a fresh UUID v7 for raw messages.
    pub id: String,
    /// The body (an envelope's JSON for messages built by [`Message::from_envelope`]).
    pub body: Vec<u8>,
    pub metadata: Metadata,
}

impl Message {
    /// The transport form of `envelope`.
    pub fn from_envelope(envelope: &Envelope) -> Self {
        Self { id: envelope.id().to_string(), body: envelope.to_json(), metadata: Metadata::of(envelope) }
    }

    /// A message with an arbitrary body, e.g. from a foreign producer, or to test poison handling.
    pub fn raw(body: impl Into<Vec<u8>>, metadata: Metadata) -> Self {
        Self { id: Uuid::now_v7().to_string(), body: body.into(), metadata }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn pairs_and_lookup_round_trip() {
        let metadata = Metadata {
            event_type: Some("OrderPlaced".into()),
            event_version: Some(1),
            correlation_id: Some("c-1".into()),
            traceparent: None,
            tracestate: None,
        };
        let map: HashMap<&str, String> = metadata.pairs().into_iter().collect();
        assert_eq!(map.len(), 3);
        assert_eq!(map["event-version"], "1");
        assert_eq!(Metadata::from_lookup(|k| map.get(k).cloned()), metadata);
    }

    #[test]
    fn trace_context_round_trips_with_its_tracestate() {
        let metadata = Metadata {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: Some("wharf=1,congo=t61rcWkgMzE".into()),
            ..Metadata::default()
        };
        let map: HashMap<&str, String> = metadata.pairs().into_iter().collect();
        assert_eq!(map["tracestate"], "wharf=1,congo=t61rcWkgMzE");
        assert_eq!(Metadata::from_lookup(|k| map.get(k).cloned()), metadata);
    }

    #[test]
    fn an_unparsable_version_reads_as_absent() {
        let metadata = Metadata::from_lookup(|k| (k == headers::EVENT_VERSION).then(|| "one".to_owned()));
        assert_eq!(metadata.event_version, None);
    }
}
