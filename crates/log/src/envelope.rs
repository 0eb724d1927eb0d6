use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Header, NewRecord, Record};

/// The namespace of UltraCore's name-based (UUIDv5) event ids; see
/// [`derive_event_id`]. Fixed forever: changing it changes every derived id.
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0xae13_f789_7c75_4c28_92d6_ecf8_b3f0_bb4d);

/// An id derived from another one, a tag and an index: the UUIDv5 in
/// [`EVENT_ID_NAMESPACE`] of the name `base (16 bytes) ‖ tag ‖ index (8
/// bytes, big-endian)`. The same inputs always give the same id, so an
/// effect published twice (a crash between publishing and committing)
/// carries one id and consumers deduplicate it. Different inputs give
/// different names, since `base` and `index` have fixed widths, and so
/// different ids (barring a SHA-1 collision).
pub fn derive_event_id(base: Uuid, tag: &[u8], index: u64) -> Uuid {
    let mut name = Vec::with_capacity(16 + tag.len() + 8);
    name.extend_from_slice(base.as_bytes());
    name.extend_from_slice(tag);
    name.extend_from_slice(&index.to_be_bytes());
    Uuid::new_v5(&EVENT_ID_NAMESPACE, &name)
}

/// The JSON envelope every record's value carries, readable by any Kafka
/// client without UltraCore's code:
///
/// ```json
/// { "event_id": "0190…", "event_type": "portfolio_optimization_requested",
///   "schema_version": 1, "timestamp": "2026-01-02T03:04:05.678Z",
///   "aggregate_type": "Portfolio", "aggregate_id": "pf-123", "version": 4,
///   "correlation_id": "…", "causation_id": null, "payload": { … } }
/// ```
///
/// The record key is `aggregate_id`, so one aggregate's events stay in one
/// partition, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<P = serde_json::Value> {
    /// UUIDv7: unique, and sortable by creation time. Consumers deduplicate on it.
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    #[serde(with = "rfc3339")]
    pub timestamp: DateTime<Utc>,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The aggregate's version after this event (1 for its first event).
    pub version: u64,
    /// Ties together every event of one business request.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// The `event_id` of the event that caused this one.
    #[serde(default)]
    pub causation_id: Option<Uuid>,
    /// Who asked for it, on events that record an accepted command: the
    /// API key id, `jwt:<subject>` for an identity provider's token, or
    /// `local` for the CLI. Absent on events a service derived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    pub payload: P,
}

/// An envelope whose payload is still plain JSON.
pub type RawEnvelope = Envelope<serde_json::Value>;

/// Why a record could not be decoded into a typed event. The text is what a
/// dead-letter record's `dlq.reason` header says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("value is not valid JSON: {0}")]
    NotJson(String),
    #[error("value is not an event envelope: {0}")]
    NotEnvelope(String),
    #[error("unknown event type '{0}' on this topic")]
    UnknownEventType(String),
    #[error("event type '{event_type}' schema version {version} is not supported (newest known: {newest})")]
    UnsupportedVersion {
        event_type: String,
        version: u32,
        newest: u32,
    },
    #[error("payload does not match event type '{event_type}': {reason}")]
    PayloadMismatch { event_type: String, reason: String },
}

/// A closed set of typed events carried on one topic family.
///
/// `decode` receives the envelope's `event_type`, `schema_version` and raw
/// payload; it upcasts payloads of older schema versions to the current
/// type, so handlers only ever see the newest shape.
pub trait EventFamily: Sized + Send + Sync + 'static {
    /// The event type string of this event (a constant per variant).
    fn event_type(&self) -> &'static str;
    /// The schema version this code writes for this event.
    fn schema_version(&self) -> u32;
    /// The payload as JSON.
    fn to_payload(&self) -> serde_json::Value;
    /// Decodes (and upcasts) a payload.
    fn decode(
        event_type: &str,
        schema_version: u32,
        payload: serde_json::Value,
    ) -> Result<Self, DecodeError>;
}

/// Decodes a JSON payload into `T`, reporting a mismatch for `event_type`.
pub fn payload_as<T: DeserializeOwned>(
    event_type: &str,
    payload: serde_json::Value,
) -> Result<T, DecodeError> {
    serde_json::from_value(payload).map_err(|e| DecodeError::PayloadMismatch {
        event_type: event_type.to_owned(),
        reason: e.to_string(),
    })
}

impl RawEnvelope {
    /// Parses a record value as an envelope, leaving the payload untyped.
    pub fn from_bytes(value: &[u8]) -> Result<Self, DecodeError> {
        let json: serde_json::Value =
            serde_json::from_slice(value).map_err(|e| DecodeError::NotJson(e.to_string()))?;
        serde_json::from_value(json).map_err(|e| DecodeError::NotEnvelope(e.to_string()))
    }

    /// Types the payload with an [`EventFamily`].
    pub fn typed<E: EventFamily>(self) -> Result<Envelope<E>, DecodeError> {
        let payload = E::decode(&self.event_type, self.schema_version, self.payload)?;
        Ok(Envelope {
            event_id: self.event_id,
            event_type: self.event_type,
            schema_version: payload.schema_version(),
            timestamp: self.timestamp,
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            version: self.version,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            principal: self.principal,
            payload,
        })
    }
}

impl<E: EventFamily> Envelope<E> {
    /// A new envelope for `event` on the given aggregate, with a fresh UUIDv7 and the current time.
    pub fn new(
        aggregate_type: impl Into<String>,
        aggregate_id: impl Into<String>,
        version: u64,
        event: E,
    ) -> Self {
        EnvelopeBuilder::new(aggregate_type, aggregate_id)
            .version(version)
            .build(event)
    }

    /// Decodes a record into a typed envelope.
    pub fn from_record(record: &Record) -> Result<Self, DecodeError> {
        RawEnvelope::from_bytes(&record.value)?.typed()
    }

    /// The untyped form, as written on the log.
    pub fn to_raw(&self) -> RawEnvelope {
        Envelope {
            event_id: self.event_id,
            event_type: self.payload.event_type().to_owned(),
            schema_version: self.payload.schema_version(),
            timestamp: self.timestamp,
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: self.aggregate_id.clone(),
            version: self.version,
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id,
            principal: self.principal.clone(),
            payload: self.payload.to_payload(),
        }
    }

    /// The record to append: key = aggregate id, value = envelope JSON.
    pub fn to_record(&self) -> NewRecord {
        self.to_raw().to_record()
    }
}

impl RawEnvelope {
    /// The record to append: key = aggregate id, value = envelope JSON, the
    /// event type in a header (so routers need not parse the value), and the
    /// envelope time as the record timestamp.
    pub fn to_record(&self) -> NewRecord {
        let value = serde_json::to_vec(self).expect("an envelope always serializes");
        NewRecord {
            key: Some(self.aggregate_id.clone().into_bytes()),
            value,
            headers: vec![
                Header::new("event_type", self.event_type.clone()),
                Header::new("content-type", "application/json"),
            ],
            timestamp: Some(self.timestamp.timestamp_millis()),
            partition: None,
        }
    }
}

/// The current time at the millisecond precision the envelope carries, so an
/// envelope equals itself after a round trip through JSON.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// Builds envelopes that share an aggregate and a correlation.
#[derive(Debug, Clone)]
pub struct EnvelopeBuilder {
    aggregate_type: String,
    aggregate_id: String,
    version: u64,
    correlation_id: Option<String>,
    causation_id: Option<Uuid>,
    principal: Option<String>,
}

impl EnvelopeBuilder {
    pub fn new(aggregate_type: impl Into<String>, aggregate_id: impl Into<String>) -> Self {
        EnvelopeBuilder {
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            version: 1,
            correlation_id: None,
            causation_id: None,
            principal: None,
        }
    }

    pub fn version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    pub fn causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Who asked for the command these events record.
    pub fn principal(mut self, principal: impl Into<String>) -> Self {
        self.principal = Some(principal.into());
        self
    }

    pub fn build<E: EventFamily>(&self, event: E) -> Envelope<E> {
        Envelope {
            event_id: Uuid::now_v7(),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            timestamp: now(),
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: self.aggregate_id.clone(),
            version: self.version,
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id,
            principal: self.principal.clone(),
            payload: event,
        }
    }

    /// An untyped envelope around a JSON payload.
    pub fn build_raw(
        &self,
        event_type: impl Into<String>,
        schema_version: u32,
        payload: serde_json::Value,
    ) -> RawEnvelope {
        Envelope {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version,
            timestamp: now(),
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: self.aggregate_id.clone(),
            version: self.version,
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id,
            principal: self.principal.clone(),
            payload,
        }
    }
}

/// Timestamps as RFC 3339 UTC with milliseconds and a `Z`, the form every
/// JSON consumer parses.
mod rfc3339 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("timestamp '{s}' is not RFC 3339: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_event_ids_are_pinned_uuid_v5() {
        // Values computed independently (Python's hashlib SHA-1 over the
        // namespace and name): the layout of the name must never change,
        // or a result re-published after an upgrade would get a new id.
        let base = Uuid::from_u128(0x0190_f5a0_0000_7000_8000_0000_0000_0001);
        let result = derive_event_id(base, b"esg-result", 0);
        assert_eq!(result.to_string(), "e9471962-7bfc-5209-b1cc-fc2b56b2a449");
        assert_eq!(result.get_version_num(), 5);
        assert_eq!(
            derive_event_id(base, b"order", 300).to_string(),
            "fe50f1d9-e5c8-5dfd-a571-54e776d05c97"
        );
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Deposited {
        amount: i64,
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Account {
        Deposited(Deposited),
    }

    impl EventFamily for Account {
        fn event_type(&self) -> &'static str {
            "deposited"
        }
        fn schema_version(&self) -> u32 {
            2
        }
        fn to_payload(&self) -> serde_json::Value {
            match self {
                Account::Deposited(d) => serde_json::to_value(d).unwrap(),
            }
        }
        fn decode(
            event_type: &str,
            version: u32,
            payload: serde_json::Value,
        ) -> Result<Self, DecodeError> {
            match (event_type, version) {
                // v1 carried whole units in "units"; v2 carries cents in "amount".
                ("deposited", 1) => {
                    let units = payload
                        .get("units")
                        .and_then(|u| u.as_i64())
                        .ok_or_else(|| DecodeError::PayloadMismatch {
                            event_type: event_type.into(),
                            reason: "missing units".into(),
                        })?;
                    Ok(Account::Deposited(Deposited {
                        amount: units * 100,
                    }))
                }
                ("deposited", 2) => Ok(Account::Deposited(payload_as(event_type, payload)?)),
                ("deposited", v) => Err(DecodeError::UnsupportedVersion {
                    event_type: event_type.into(),
                    version: v,
                    newest: 2,
                }),
                (other, _) => Err(DecodeError::UnknownEventType(other.into())),
            }
        }
    }

    #[test]
    fn round_trips_through_a_record() {
        let env = EnvelopeBuilder::new("Account", "acc-1")
            .version(3)
            .correlation_id("req-9")
            .build(Account::Deposited(Deposited { amount: 250 }));
        let record = env.to_record();
        assert_eq!(record.key.as_deref(), Some(&b"acc-1"[..]));
        let json: serde_json::Value = serde_json::from_slice(&record.value).unwrap();
        assert_eq!(json["event_type"], "deposited");
        assert_eq!(json["payload"]["amount"], 250);
        assert!(json["timestamp"].as_str().unwrap().ends_with('Z'));
        let back: Envelope<Account> = RawEnvelope::from_bytes(&record.value)
            .unwrap()
            .typed()
            .unwrap();
        assert_eq!(back.payload, env.payload);
        assert_eq!(back.event_id, env.event_id);
        assert_eq!(back.version, 3);
        assert_eq!(back.correlation_id.as_deref(), Some("req-9"));
    }

    #[test]
    fn upcasts_old_schema_versions() {
        let mut raw = EnvelopeBuilder::new("Account", "a").build_raw(
            "deposited",
            1,
            serde_json::json!({"units": 3}),
        );
        raw.schema_version = 1;
        let typed = raw.typed::<Account>().unwrap();
        assert_eq!(typed.payload, Account::Deposited(Deposited { amount: 300 }));
        assert_eq!(typed.schema_version, 2);
    }

    #[test]
    fn rejects_what_is_not_an_envelope() {
        assert!(matches!(
            RawEnvelope::from_bytes(b"\xff\x00"),
            Err(DecodeError::NotJson(_))
        ));
        assert!(matches!(
            RawEnvelope::from_bytes(br#"{"hello":1}"#),
            Err(DecodeError::NotEnvelope(_))
        ));
        let raw =
            EnvelopeBuilder::new("Account", "a").build_raw("withdrawn", 1, serde_json::json!({}));
        assert_eq!(
            raw.typed::<Account>().unwrap_err(),
            DecodeError::UnknownEventType("withdrawn".into())
        );
        let raw = EnvelopeBuilder::new("Account", "a").build_raw(
            "deposited",
            2,
            serde_json::json!({"amount": "x"}),
        );
        assert!(matches!(
            raw.typed::<Account>(),
            Err(DecodeError::PayloadMismatch { .. })
        ));
        let raw =
            EnvelopeBuilder::new("Account", "a").build_raw("deposited", 7, serde_json::json!({}));
        assert!(matches!(
            raw.typed::<Account>(),
            Err(DecodeError::UnsupportedVersion { version: 7, .. })
        ));
    }
}
