//! From a record on `trading_decisions` to a decision ready to explain, or
//! the reason it goes to the dead-letter topic.
//!
//! The hot path parses the envelope in one pass straight into a
//! [`DecisionView`], which borrows its strings from the record (maps become
//! lists of pairs: no allocation per feature); anything unusual (another
//! event type or schema version, a parse error) goes through the generic
//! [`Envelope::from_record`] path, which upcasts older versions and gives
//! the canonical reason for the dead-letter topic. Both accept the same
//! payloads: [`DecisionView`] has [`TradingDecision`]'s fields and rules.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use ultracore_events::trading::{Action, RiskCheck, TradingDecision, TradingDecisionEvent};
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

/// A string borrowed from the record when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON object of numbers (`{"rsi_14": 61.2, …}`) as the list of its
/// entries, in document order. A name given twice counts with its last
/// value, as in the `BTreeMap` of [`TradingDecision`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pairs<'a>(pub Vec<(Text<'a>, f64)>);

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of names to numbers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(24));
                while let Some(entry) = map.next_entry::<Text<'de>, f64>()? {
                    out.push(entry);
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Pairs<'a> {
    /// The entries of a map (sorted by name).
    pub fn of_map(map: &'a std::collections::BTreeMap<String, f64>) -> Self {
        Pairs(
            map.iter()
                .map(|(k, &v)| (Text(Cow::Borrowed(k.as_str())), v))
                .collect(),
        )
    }

    fn owned(map: std::collections::BTreeMap<String, f64>) -> Pairs<'static> {
        Pairs(
            map.into_iter()
                .map(|(k, v)| (Text(Cow::Owned(k)), v))
                .collect(),
        )
    }

    /// The value of `name` (the last one given).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k.0 == name)
            .map(|&(_, v)| v)
    }

    /// As the map [`TradingDecision`] holds.
    pub fn to_map(&self) -> std::collections::BTreeMap<String, f64> {
        self.0.iter().map(|(k, v)| (k.0.to_string(), *v)).collect()
    }
}

/// One risk check, borrowed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RiskCheckView<'a> {
    #[serde(borrow)]
    pub name: Text<'a>,
    pub passed: bool,
    pub value: f64,
    pub limit: f64,
    #[serde(default, borrow)]
    pub detail: Option<Text<'a>>,
}

/// A [`TradingDecision`] that borrows from the record it was read from:
/// the same fields, parsed by the same rules.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DecisionView<'a> {
    #[serde(borrow)]
    pub decision_id: Text<'a>,
    pub timestamp: DateTime<Utc>,
    #[serde(borrow)]
    pub symbol: Text<'a>,
    pub action: Action,
    pub quantity: f64,
    pub confidence: f64,
    #[serde(borrow)]
    pub regime_probs: Pairs<'a>,
    #[serde(borrow)]
    pub strategy_weights: Pairs<'a>,
    #[serde(borrow)]
    pub features: Pairs<'a>,
    #[serde(borrow)]
    pub risk_checks: Vec<RiskCheckView<'a>>,
    #[serde(borrow)]
    pub model_version: Text<'a>,
    /// Absent in decisions published before the field existed.
    #[serde(default)]
    pub latency_us: Option<u64>,
}

impl<'a> DecisionView<'a> {
    /// A view of a decision held elsewhere.
    pub fn of(d: &'a TradingDecision) -> Self {
        let text = |s: &'a String| Text(Cow::Borrowed(s.as_str()));
        DecisionView {
            decision_id: text(&d.decision_id),
            timestamp: d.timestamp,
            symbol: text(&d.symbol),
            action: d.action,
            quantity: d.quantity,
            confidence: d.confidence,
            regime_probs: Pairs::of_map(&d.regime_probs),
            strategy_weights: Pairs::of_map(&d.strategy_weights),
            features: Pairs::of_map(&d.features),
            risk_checks: d
                .risk_checks
                .iter()
                .map(|c| RiskCheckView {
                    name: text(&c.name),
                    passed: c.passed,
                    value: c.value,
                    limit: c.limit,
                    detail: c.detail.as_ref().map(text),
                })
                .collect(),
            model_version: text(&d.model_version),
            latency_us: d.latency_us,
        }
    }

    /// A view that owns its strings.
    pub fn owned(d: TradingDecision) -> DecisionView<'static> {
        let text = |s: String| Text(Cow::Owned(s));
        DecisionView {
            decision_id: text(d.decision_id),
            timestamp: d.timestamp,
            symbol: text(d.symbol),
            action: d.action,
            quantity: d.quantity,
            confidence: d.confidence,
            regime_probs: Pairs::owned(d.regime_probs),
            strategy_weights: Pairs::owned(d.strategy_weights),
            features: Pairs::owned(d.features),
            risk_checks: d
                .risk_checks
                .into_iter()
                .map(|c| RiskCheckView {
                    name: text(c.name),
                    passed: c.passed,
                    value: c.value,
                    limit: c.limit,
                    detail: c.detail.map(text),
                })
                .collect(),
            model_version: text(d.model_version),
            latency_us: d.latency_us,
        }
    }

    /// The decision as the event type holds it.
    pub fn to_decision(&self) -> TradingDecision {
        TradingDecision {
            decision_id: self.decision_id.to_string(),
            timestamp: self.timestamp,
            symbol: self.symbol.to_string(),
            action: self.action,
            quantity: self.quantity,
            confidence: self.confidence,
            regime_probs: self.regime_probs.to_map(),
            strategy_weights: self.strategy_weights.to_map(),
            features: self.features.to_map(),
            risk_checks: self
                .risk_checks
                .iter()
                .map(|c| RiskCheck {
                    name: c.name.to_string(),
                    passed: c.passed,
                    value: c.value,
                    limit: c.limit,
                    detail: c.detail.as_ref().map(|d| d.to_string()),
                })
                .collect(),
            model_version: self.model_version.to_string(),
            latency_us: self.latency_us,
        }
    }
}

/// A decision ready to explain.
#[derive(Debug, Clone)]
pub struct DecodedDecision<'a> {
    /// The envelope's event id.
    pub event_id: Uuid,
    /// The decision id, parsed.
    pub decision_id: Uuid,
    pub decision: DecisionView<'a>,
}

/// Decodes a record of `trading_decisions`.
pub fn decode(record: &Record) -> Result<DecodedDecision<'_>, Rejection> {
    let (event_id, decision) = match fast(&record.value) {
        Some(parts) => parts,
        None => {
            let env = Envelope::<TradingDecisionEvent>::from_record(record)?;
            let TradingDecisionEvent::TradingDecision(decision) = env.payload;
            (env.event_id, DecisionView::owned(*decision))
        }
    };
    let decision_id = parse_decision_id(&decision.decision_id)
        .ok_or_else(|| Rejection::DecisionId(decision.decision_id.to_string()))?;
    Ok(DecodedDecision {
        event_id,
        decision_id,
        decision,
    })
}

/// The hot path: a current `trading_decision` envelope parsed in one pass
/// by a SIMD JSON parser (sonic-rs, floats correctly rounded as Rust's
/// own parser does) through the same `Deserialize` impls as serde_json.
/// `None` for anything else, which then takes the generic path: that path
/// alone decides what is rejected and why, so the two parsers need only
/// agree on what they both accept (pinned by a test against serde_json).
fn fast(value: &[u8]) -> Option<(Uuid, DecisionView<'_>)> {
    if may_hold_negative_zero(value) {
        return None;
    }
    sonic_rs::from_slice(value).ok().and_then(current)
}

/// The event id and decision of a `trading_decision` envelope of the
/// current schema version; `None` for another type or version.
fn current(env: Envelope<DecisionView<'_>>) -> Option<(Uuid, DecisionView<'_>)> {
    (env.event_type == "trading_decision" && env.schema_version == 1)
        .then_some((env.event_id, env.payload))
}

/// Whether `json` may hold a negative number that is zero or underflows
/// to zero (`-0`, `-0.0`, `-0e7`, `-1e-400`): sonic-rs reads those as 0.0,
/// serde_json as -0.0, and the stored decision must keep the sign it was
/// published with. Such records take the generic path. A `-0` counts when
/// it follows `:`, `,` or `[` (only those can start a number; one inside a
/// string that looks like that, `"x:-0"`, only costs the fast path) and no
/// digit from 1 to 9 follows before the exponent. A negative exponent of
/// three digits or more that ends where a number ends (`,`, `}`, `]`,
/// whitespace or the end) counts whatever the sign of the number.
fn may_hold_negative_zero(json: &[u8]) -> bool {
    let digits = |from: usize| {
        json[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    memchr::memchr_iter(b'-', json).any(|i| match i.checked_sub(1).map(|p| json[p]) {
        // Inside ids and dates: the common case, decided by one byte.
        Some(b'0'..=b'9' | b'a'..=b'd' | b'f' | b'A'..=b'D' | b'F') => false,
        // An exponent ends where the number does; in an id (`…7ae-0000-…`)
        // the digits run into a `-`, a letter or the closing quote.
        Some(b'e' | b'E') => {
            let n = digits(i + 1);
            n >= 3
                && matches!(
                    json.get(i + 1 + n),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
                )
        }
        _ => {
            let starts_number = json[..i]
                .iter()
                .rev()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| matches!(b, b':' | b',' | b'['));
            starts_number
                && json.get(i + 1) == Some(&b'0')
                && json[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit() || **b == b'.')
                    .all(|b| matches!(b, b'0' | b'.'))
        }
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

    fn decision() -> TradingDecision {
        serde_json::from_value(serde_json::json!({
            "decision_id": "0190f7a2-0000-7000-8000-000000000001",
            "timestamp": "2026-01-02T14:30:00.123456789Z",
            "symbol": "A\"B",
            "action": "BUY",
            "quantity": 100.0,
            "confidence": 0.71,
            "regime_probs": {"bull": 0.6, "bear": 0.3, "sideways": 0.1},
            "strategy_weights": {"bull": 0.6, "bear": 0.3, "sideways": 0.1},
            "features": {"rsi_14": 61.25, "macd": -0.000123456789012345, "x\\y": 1e300},
            "risk_checks": [
                {"name": "position_limit", "passed": true, "value": 100.0, "limit": 1000.0, "detail": "100 units"},
                {"name": "correlation", "passed": false, "value": 0.9, "limit": 0.8}
            ],
            "model_version": "specialists@0123456789abcdef",
            "latency_us": 23
        }))
        .unwrap()
    }

    #[test]
    fn the_view_reads_what_the_event_type_reads() {
        let d = decision();
        let json = serde_json::to_string(&d).unwrap();
        let view: DecisionView<'_> = serde_json::from_str(&json).unwrap();
        assert_eq!(view.to_decision(), d);
        assert_eq!(view, DecisionView::of(&d));
        assert_eq!(DecisionView::owned(d.clone()).to_decision(), d);
        // Strings without escapes are borrowed; with escapes, owned.
        assert!(matches!(view.decision_id.0, Cow::Borrowed(_)));
        assert!(matches!(view.symbol.0, Cow::Owned(_)));
        assert_eq!(&*view.symbol, "A\"B");
        // Decisions published before the latency existed read without one.
        let older = json.replace(",\"latency_us\":23", "");
        assert_ne!(older, json);
        let view: DecisionView<'_> = serde_json::from_str(&older).unwrap();
        assert_eq!(view.latency_us, None);
        assert_eq!(
            view.to_decision(),
            TradingDecision {
                latency_us: None,
                ..d.clone()
            }
        );
        // What the event type refuses, the view refuses.
        for bad in [
            json.replace("\"BUY\"", "\"BUYS\""),
            json.replace("61.25", "null"),
            json.replace("\"quantity\":100.0,", ""),
            json.replace("\"latency_us\":23", "\"latency_us\":-1"),
            json.replace("\"latency_us\":23", "\"latency_us\":2.5"),
        ] {
            assert!(serde_json::from_str::<TradingDecision>(&bad).is_err());
            assert!(
                serde_json::from_str::<DecisionView<'_>>(&bad).is_err(),
                "{bad}"
            );
        }
    }

    /// The envelope JSON of [`decision`], as a decision service writes it.
    fn envelope_json() -> String {
        let event = TradingDecisionEvent::TradingDecision(Box::new(decision()));
        let env = Envelope::new("symbol", "AB", 1, event);
        String::from_utf8(env.to_record().value).unwrap()
    }

    #[test]
    fn the_fast_parser_reads_what_serde_json_reads_and_nothing_it_refuses() {
        let base = envelope_json();
        assert!(fast(base.as_bytes()).is_some(), "{base}");
        // Ids whose hex digits look like exponents still take the fast path.
        let id = decision().decision_id;
        for lookalike in [
            "0190f7ae-0000-7000-8000-000000000001",
            "0190f7a2-0000-7000-800e-000000000001",
        ] {
            let json = base.replacen(&id, lookalike, 1);
            assert!(fast(json.as_bytes()).is_some(), "{json}");
        }
        let number = "61.25";
        assert!(base.contains(number));
        let mut inputs: Vec<(Vec<u8>, Option<String>)> = [
            "1e400",
            "-1e400",
            "1e-400",
            "NaN",
            "nan",
            "Infinity",
            "-Infinity",
            "6.125e1",
            "6125E-2",
            "61.250000000000000000000000000001",
            "-0",
            "-0.0",
            "01",
            "1.",
            ".5",
            "+1",
            "1e",
            "1e+",
            "0x10",
            "1_0",
            "61.25.1",
            "\"61.25\"",
            "null",
            "true",
            "0.1000000000000000055511151231257827021181583404541015625",
            "2.2250738585072011e-308",
            "4.9406564584124654e-324",
            "1.7976931348623157e308",
            "1.7976931348623159e308",
            "9007199254740993",
            "123456789012345678901234567890",
            "-1e-400",
            "-0e5",
            "-0.000",
            "-00",
            "-",
            "--1",
            "-.5",
            "-5e-300",
            "-5e-3000",
        ]
        .iter()
        .map(|n| {
            (
                base.replacen(number, n, 1).into_bytes(),
                Some(n.to_string()),
            )
        })
        .collect();
        let edits: Vec<(&str, &str)> = vec![
            ("\"symbol\":", "\"symbol\":\"X\",\"symbol\":"),
            ("\"event_type\":", "\"extra\":1,\"event_type\":"),
            ("\"decision_id\":", "\"extra\":1,\"decision_id\":"),
            ("\"payload\":{", "\"payload\":{\"payload\":1,"),
            ("\"passed\":true", "\"passed\":\"true\""),
            ("\"passed\":true", "\"passed\":1"),
            ("\"BUY\"", "\"buy\""),
            ("\"schema_version\":1", "\"schema_version\":1.0"),
            ("\"schema_version\":1", "\"schema_version\":4294967297"),
            ("\"version\":1", "\"version\":-1"),
            ("\"version\":1", "\"version\":1e0"),
            ("\"position_limit\"", "\"position\\u005flimit\""),
            ("\"position_limit\"", "\"position\\x5flimit\""),
            ("\"position_limit\"", "\"position\\ud800limit\""),
            ("\"position_limit\"", "\"position\nlimit\""),
            ("\"position_limit\"", "\"position\tlimit\""),
            ("\"100 units\"", "null"),
            ("\"rsi_14\":", "\"rsi_14\":1.0,\"rsi_14\":"),
            ("T14:30:00.123456789Z", "T14:30:00Z"),
            ("T14:30:00.123456789Z", " 14:30:00Z"),
            ("T14:30:00.123456789Z", "T14:30:00+02:00"),
            ("T14:30:00.123456789Z", "t14:30:00z"),
            ("T14:30:00.123456789Z", "T25:30:00Z"),
            ("\"regime_probs\":{", "\"regime_probs\":{}, \"x\":{"),
            ("\"latency_us\":23", "\"latency_us\":null"),
            ("\"latency_us\":23", "\"latency_us\":0"),
            ("\"latency_us\":23", "\"latency_us\":-1"),
            ("\"latency_us\":23", "\"latency_us\":2.5"),
            ("\"latency_us\":23", "\"latency_us\":1e3"),
            ("\"latency_us\":23", "\"latency_us\":\"23\""),
            ("\"latency_us\":23", "\"latency_us\":18446744073709551615"),
            ("\"latency_us\":23", "\"latency_us\":18446744073709551616"),
            (",\"latency_us\":23", ""),
            ("[{", "[ {"),
            ("[{", "[,{"),
            ("}]", "},]"),
            (":", " : "),
        ];
        for (from, to) in edits {
            assert!(base.contains(from), "{from}");
            inputs.push((base.replacen(from, to, 1).into_bytes(), None));
        }
        inputs.push((base.replacen(&id, &id.to_uppercase(), 1).into_bytes(), None));
        let event_id = &base[14..50];
        for other in [
            event_id.to_uppercase(),
            event_id.replace('-', ""),
            format!("{{{event_id}}}"),
        ] {
            inputs.push((base.replacen(event_id, &other, 1).into_bytes(), None));
        }
        for tail in [" ", "\n", " x", "}", "{}", "\u{0}"] {
            inputs.push((format!("{base}{tail}").into_bytes(), None));
            inputs.push((format!("{tail}{base}").into_bytes(), None));
        }
        let mut bad_utf8 = base.clone().into_bytes();
        let at = base.find("AB").unwrap();
        bad_utf8[at] = 0xff;
        inputs.push((bad_utf8, None));
        inputs.push((base.as_bytes()[..base.len() - 1].to_vec(), None));
        inputs.push((Vec::new(), None));

        // Random doubles of every magnitude, written shortest (as serde_json
        // writes them) and with 17 significant digits.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f64::from_bits(state);
            if !x.is_finite() {
                continue;
            }
            for text in [serde_json::to_string(&x).unwrap(), format!("{x:.16e}")] {
                inputs.push((base.replacen(number, &text, 1).into_bytes(), Some(text)));
            }
        }

        // serde_json's float_roundtrip parser is not always correctly
        // rounded (2.2250738585072011e-308); Rust's own parser is the
        // reference for the number itself.
        let rsi = |view: &mut DecisionView<'_>| {
            let entry = view
                .features
                .0
                .iter_mut()
                .find(|(k, _)| &**k == "rsi_14")
                .unwrap();
            std::mem::replace(&mut entry.1, 0.0)
        };
        let mut accepted = 0;
        for (input, number) in &inputs {
            let reference = serde_json::from_slice(input).ok().and_then(current);
            let text = String::from_utf8_lossy(input);
            match (fast(input), reference) {
                (Some(mut got), Some(mut want)) => {
                    if let Some(number) = number {
                        let parsed = rsi(&mut got.1);
                        rsi(&mut want.1);
                        let std = number.parse::<f64>().unwrap();
                        assert_eq!(
                            parsed.to_bits(),
                            std.to_bits(),
                            "{number}: {parsed:e} vs {std:e}"
                        );
                    }
                    // Debug shows float bits that == would not (-0.0, NaN).
                    let (got, want) = (format!("{got:?}"), format!("{want:?}"));
                    if got != want {
                        let at = got
                            .bytes()
                            .zip(want.bytes())
                            .take_while(|(a, b)| a == b)
                            .count();
                        let from = at.saturating_sub(40);
                        panic!(
                            "the parsers differ on {text}: fast …{}… serde_json …{}…",
                            &got[from..(at + 40).min(got.len())],
                            &want[from..(at + 40).min(want.len())]
                        );
                    }
                    accepted += 1;
                }
                (Some(got), None) => panic!("only the fast parser accepts {text}: {got:?}"),
                (None, _) => {}
            }
        }
        assert!(
            accepted > 20,
            "{accepted} of {} accepted by both",
            inputs.len()
        );
    }

    #[test]
    fn a_name_given_twice_counts_with_its_last_value() {
        let json = r#"{"a": 1.0, "b": 2.0, "a": 3.0}"#;
        let pairs: Pairs<'_> = serde_json::from_str(json).unwrap();
        let map: std::collections::BTreeMap<String, f64> = serde_json::from_str(json).unwrap();
        assert_eq!(pairs.to_map(), map);
        assert_eq!(pairs.get("a"), Some(3.0));
    }
}
