//! From a record on `trading_decisions` to a typed decision, or the reason
//! it goes to the dead-letter topic.

use serde_json::value::RawValue;
use ultracore_events::trading::{TradingDecision, TradingDecisionEvent};
use ultracore_log::{DecodeError, Envelope, Record};
use uuid::Uuid;

/// Why a record cannot be explained. Its text is the dead-letter record's
/// `dlq.reason`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// Not a valid `trading_decision` envelope (not JSON, not an envelope,
    /// another event type, an unknown schema version, a payload that does not
    /// match).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The decision id is not a UUID, so it could never be looked up.
    #[error(
        "decision_id '{0}' is not a UUID (expected e.g. 0190f7a2-0000-7000-8000-000000000001)"
    )]
    DecisionId(String),
    /// A strategy weight names no specialist.
    #[error("strategy_weights names '{name}', which is not a specialist ({known})")]
    UnknownSpecialist { name: String, known: String },
    /// A weight or feature value that is not a finite number.
    #[error("{field} is not a finite number")]
    NotFinite { field: String },
}

/// A decision ready to explain.
#[derive(Debug, Clone)]
pub struct DecodedDecision {
    /// The envelope's event id.
    pub event_id: Uuid,
    /// The decision id, parsed.
    pub decision_id: Uuid,
    pub decision: TradingDecision,
    /// The payload JSON exactly as published (stored for audit).
    pub payload_json: String,
}

/// The envelope with the payload left as raw JSON: one pass over the
/// record checks the envelope and finds the payload's bytes.
type RawPayloadEnvelope = Envelope<Box<RawValue>>;

/// Decodes a record of `trading_decisions`.
///
/// The hot path parses the envelope once with the payload kept raw, then the
/// payload into a [`TradingDecision`]; anything unusual (another event type
/// or schema version, a parse error) goes through the generic
/// [`Envelope::from_record`] path, which upcasts older versions and produces
/// the canonical reason for the dead-letter topic.
pub fn decode(record: &Record) -> Result<DecodedDecision, Rejection> {
    let fast = serde_json::from_slice::<RawPayloadEnvelope>(&record.value)
        .ok()
        .filter(|env| env.event_type == "trading_decision" && env.schema_version == 1)
        .and_then(|env| {
            let decision = serde_json::from_str::<TradingDecision>(env.payload.get()).ok()?;
            Some((env.event_id, decision, env.payload.get().to_owned()))
        });
    let (event_id, decision, payload_json) = match fast {
        Some(parts) => parts,
        None => {
            let env = Envelope::<TradingDecisionEvent>::from_record(record)?;
            let TradingDecisionEvent::TradingDecision(decision) = env.payload;
            let json = serde_json::to_string(&decision).expect("a decision always serializes");
            (env.event_id, *decision, json)
        }
    };
    let decision_id = parse_decision_id(&decision.decision_id)
        .ok_or_else(|| Rejection::DecisionId(decision.decision_id.clone()))?;
    Ok(DecodedDecision {
        event_id,
        decision_id,
        decision,
        payload_json,
    })
}

/// A decision id as the API accepts it: a UUID in its hyphenated form
/// (`0190f7a2-0000-7000-8000-000000000001`, any case) or its 32-digit simple
/// form. Braced and `urn:uuid:` forms are refused so one id has one spelling
/// in URLs.
pub fn parse_decision_id(text: &str) -> Option<Uuid> {
    if text.len() != 36 && text.len() != 32 {
        return None;
    }
    Uuid::try_parse(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_ids_are_hyphenated_or_simple_uuids() {
        let id = "0190f7a2-0000-7000-8000-000000000001";
        assert!(parse_decision_id(id).is_some());
        assert!(parse_decision_id(&id.to_uppercase()).is_some());
        assert!(parse_decision_id(&id.replace('-', "")).is_some());
        for bad in [
            "",
            "42",
            "not-a-uuid",
            "{0190f7a2-0000-7000-8000-000000000001}",
            "urn:uuid:0190f7a2-0000-7000-8000-000000000001",
            "0190f7a2-0000-7000-8000-00000000000g",
            "0190f7a2-0000-7000-8000-0000000000011",
        ] {
            assert!(parse_decision_id(bad).is_none(), "{bad}");
        }
    }
}
