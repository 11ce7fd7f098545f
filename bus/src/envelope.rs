//! The envelope every event travels in, and the typed way to put events in and take them out.
//!
//! On the wire an envelope is the JSON object of docs/contract.md:
//! `{ "id", "type", "version", "occurredAt", "correlationId", "traceparent"?, "tracestate"?, "data" }`.
//! Producers build one with [`Envelope::new`] from a value implementing [`Event`]; consumers check
//! [`Envelope::kind`] and call [`Envelope::decode`]. Unknown fields are ignored on both levels, so a
//! producer may add fields (a minor change) without breaking consumers; a breaking change bumps
//! the event's major `version`, which consumers that do not know it dead-letter.
//!
//! The bus itself never looks inside `data`: events belong to the services (see `wharf-events`).

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// An event type that can travel in an [`Envelope`]: its name and major version.
///
/// One Rust type per (type, major version): a breaking change to the payload is a new type with
/// `VERSION` bumped, so a consumer states exactly which versions it understands.
pub trait Event: Serialize + DeserializeOwned {
    /// The envelope's `type`, e.g. `"OrderPlaced"`.
    const TYPE: &'static str;
    /// The envelope's `version`: the payload's major version.
    const VERSION: u32;

    /// This event's (type, version) pair.
    fn kind() -> EventKind {
        EventKind::new(Self::TYPE, Self::VERSION)
    }
}

/// An event type and major version, e.g. `OrderPlaced v1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKind {
    pub event_type: String,
    /// The envelope's `version` (major).
    pub version: u32,
}

impl EventKind {
    /// The kind `event_type` v`version`.
    pub fn new(event_type: impl Into<String>, version: u32) -> Self {
        Self { event_type: event_type.into(), version }
    }

    /// The kind of event type `E`.
    pub fn of<E: Event>() -> Self {
        E::kind()
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{}", self.event_type, self.version)
    }
}

/// One event with the metadata every consumer needs: identity, type, time and tracing context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Unique per event (UUID v7, so ids sort by creation time); consumers dedupe on it.
    id: Uuid,
    /// The event type, e.g. `OrderPlaced`.
    #[serde(rename = "type")]
    event_type: String,
    /// The payload's major version.
    version: u32,
    /// When the event happened (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
    /// The correlation id of the request that caused the event.
    correlation_id: String,
    /// W3C trace context of the producing span, if tracing was active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
    /// The W3C `tracestate` that goes with `traceparent` (vendor entries), if the trace had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tracestate: Option<String>,
    data: serde_json::Value,
}

/// Why an event could not be put into an envelope.
#[derive(Debug, thiserror::Error)]
#[error("event {kind} could not be serialised")]
pub struct EncodeError {
    pub kind: EventKind,
    /// What serde reported (e.g. a map with non-string keys).
    #[source]
    pub source: serde_json::Error,
}

/// Why [`Envelope::decode`] did not produce the requested event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The envelope carries another event type.
    #[error("expected event type {expected}, found {found}")]
    WrongType {
        /// The type asked for.
        expected: &'static str,
        found: String,
    },
    /// Same type, but a major version this code does not know.
    #[error("event {event_type} has unsupported major version {found} (expected {expected})")]
    UnsupportedVersion {
        event_type: String,
        /// The version this code knows.
        expected: u32,
        found: u32,
    },
    /// Right type and version, but `data` does not fit the event's shape.
    #[error("payload of {kind} is invalid: {source}")]
    Payload {
        kind: EventKind,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
}

impl Envelope {
    /// Wraps `event` in a new envelope: a fresh UUID v7 id, the current UTC time, the given
    /// correlation id and optional W3C `traceparent`.
    pub fn new<E: Event>(
        event: &E,
        correlation_id: impl Into<String>,
        traceparent: Option<String>,
    ) -> Result<Self, EncodeError> {
        let data = serde_json::to_value(event).map_err(|source| EncodeError { kind: E::kind(), source })?;
        Ok(Self {
            id: Uuid::now_v7(),
            event_type: E::TYPE.to_owned(),
            version: E::VERSION,
            occurred_at: OffsetDateTime::now_utc(),
            correlation_id: correlation_id.into(),
            traceparent,
            tracestate: None,
            data,
        })
    }

    /// The envelope with the W3C `tracestate` that goes with its `traceparent`; an empty value
    /// counts as none.
    #[must_use]
    pub fn with_tracestate(mut self, tracestate: Option<String>) -> Self {
        self.tracestate = tracestate.filter(|value| !value.is_empty());
        self
    }

    /// Decodes the payload as `E`, checking the type and the major version first.
    pub fn decode<E: Event>(&self) -> Result<E, DecodeError> {
        if self.event_type != E::TYPE {
            return Err(DecodeError::WrongType { expected: E::TYPE, found: self.event_type.clone() });
        }
        if self.version != E::VERSION {
            return Err(DecodeError::UnsupportedVersion {
                event_type: self.event_type.clone(),
                expected: E::VERSION,
                found: self.version,
            });
        }
        E::deserialize(&self.data).map_err(|source| DecodeError::Payload { kind: self.kind(), source })
    }

    /// Parses an envelope from its JSON form (unknown fields are ignored).
    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// The envelope's JSON form, as it travels.
    pub fn to_json(&self) -> Vec<u8> {
        // Cannot fail: strings, numbers, a `Value`, and a timestamp that is either "now" or was
        // parsed from RFC 3339 — so its year has four digits and its offset whole minutes, the
        // only things RFC 3339 formatting can reject.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The payload's major version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The (type, version) pair.
    pub fn kind(&self) -> EventKind {
        EventKind::new(self.event_type.clone(), self.version)
    }

    /// When the event happened.
    pub fn occurred_at(&self) -> OffsetDateTime {
        self.occurred_at
    }

    pub fn correlation_id(&self) -> &str {
        &self.correlation_id
    }

    /// The W3C trace context, if any.
    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }

    /// The W3C `tracestate` that goes with [`traceparent`](Self::traceparent), if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    pub fn data(&self) -> &serde_json::Value {
        &self.data
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Shipped {
        parcel_id: u64,
    }

    impl Event for Shipped {
        const TYPE: &'static str = "Shipped";
        const VERSION: u32 = 1;
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct ShippedV2 {
        parcel: String,
    }

    impl Event for ShippedV2 {
        const TYPE: &'static str = "Shipped";
        const VERSION: u32 = 2;
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Other {}

    impl Event for Other {
        const TYPE: &'static str = "Other";
        const VERSION: u32 = 1;
    }

    #[test]
    fn json_is_camel_case_with_the_payload_under_data() {
        let envelope = Envelope::new(&Shipped { parcel_id: 7 }, "corr-1", Some("00-abc-def-01".into())).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        let object = json.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["correlationId", "data", "id", "occurredAt", "traceparent", "type", "version"]);
        assert_eq!(json["type"], "Shipped");
        assert_eq!(json["version"], 1);
        assert_eq!(json["correlationId"], "corr-1");
        assert_eq!(json["data"], json!({"parcelId": 7}));
        // RFC 3339, parseable back, and the id is a v7 UUID.
        let occurred = json["occurredAt"].as_str().unwrap();
        OffsetDateTime::parse(occurred, &time::format_description::well_known::Rfc3339).unwrap();
        let id = Uuid::parse_str(json["id"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
    }

    #[test]
    fn traceparent_is_omitted_when_absent_and_round_trips() {
        let envelope = Envelope::new(&Shipped { parcel_id: 1 }, "c", None).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        assert!(json.get("traceparent").is_none());
        assert!(json.get("tracestate").is_none());
        assert_eq!(Envelope::from_json(&envelope.to_json()).unwrap(), envelope);
    }

    #[test]
    fn tracestate_travels_with_the_traceparent_and_an_empty_one_is_none() {
        let traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned());
        let envelope = Envelope::new(&Shipped { parcel_id: 1 }, "c", traceparent.clone())
            .unwrap()
            .with_tracestate(Some("wharf=1,congo=t61rcWkgMzE".into()));
        let json: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        assert_eq!(json["tracestate"], "wharf=1,congo=t61rcWkgMzE");
        let parsed = Envelope::from_json(&envelope.to_json()).unwrap();
        assert_eq!(parsed.tracestate(), Some("wharf=1,congo=t61rcWkgMzE"));
        assert_eq!(parsed, envelope);
        let empty =
            Envelope::new(&Shipped { parcel_id: 1 }, "c", traceparent).unwrap().with_tracestate(Some(String::new()));
        assert_eq!(empty.tracestate(), None);
    }

    #[test]
    fn parses_the_contract_example_and_ignores_unknown_fields() {
        let body = br#"{ "id": "0190b7a2-7c7e-7d1a-9a8e-2f1c3b4d5e6f", "type": "Shipped", "version": 1,
            "occurredAt": "2024-07-01T12:00:00Z", "correlationId": "abc", "extra": true,
            "data": { "parcelId": 42, "addedLater": "ignored" } }"#;
        let envelope = Envelope::from_json(body).unwrap();
        assert_eq!(envelope.kind(), EventKind::new("Shipped", 1));
        assert_eq!(envelope.traceparent(), None);
        assert_eq!(envelope.decode::<Shipped>().unwrap(), Shipped { parcel_id: 42 });
    }

    #[test]
    fn decode_distinguishes_type_version_and_payload_errors() {
        let envelope = Envelope::new(&Shipped { parcel_id: 1 }, "c", None).unwrap();
        assert!(matches!(
            envelope.decode::<Other>(),
            Err(DecodeError::WrongType { expected: "Other", found }) if found == "Shipped"
        ));
        assert!(matches!(
            envelope.decode::<ShippedV2>(),
            Err(DecodeError::UnsupportedVersion { expected: 2, found: 1, .. })
        ));
        let bad = Envelope::from_json(
            br#"{"id":"0190b7a2-7c7e-7d1a-9a8e-2f1c3b4d5e6f","type":"Shipped","version":1,
                "occurredAt":"2024-07-01T12:00:00Z","correlationId":"c","data":{"parcelId":"seven"}}"#,
        )
        .unwrap();
        let err = bad.decode::<Shipped>().unwrap_err();
        assert!(matches!(err, DecodeError::Payload { .. }));
        assert!(err.to_string().contains("Shipped v1"), "{err}");
    }

    #[test]
    fn missing_required_fields_are_rejected() {
        assert!(Envelope::from_json(br#"{"type":"Shipped","version":1,"data":{}}"#).is_err());
        assert!(Envelope::from_json(b"not json").is_err());
    }
}
