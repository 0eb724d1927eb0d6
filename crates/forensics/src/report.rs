//! A stored explanation as JSON: what `GET /api/v1/forensics/{decision_id}`
//! and `ultracore forensics show --json` print.
//!
//! ```json
//! { "decision_id": "0190…", "event_id": "0190…", "symbol": "AAPL", "action": "BUY",
//!   "decided_at": "2026-01-02T14:30:00.000Z", "explained_at": "…",
//!   "model_version": "…", "explained_with": "specialists@…",
//!   "source": {"topic": "trading_decisions", "partition": 3, "offset": 41},
//!   "decision": { …the trading_decision payload as published… },
//!   "explanation": "BUY 100 AAPL with confidence 0.71. …",
//!   "ensemble": {"margin": …, "expected_value": …, "shap": {"rsi_14": …, …},
//!                "top_up": [{"feature", "value", "shap"}], "top_down": […]},
//!   "specialists": [{"name": "bull", "objective": "binary:logistic", "weight": 0.6,
//!                    "margin": …, "prediction": …, "expected_value": …, "shap": {…},
//!                    "top_up": […], "top_down": […]}, …] }
//! ```
//!
//! Numbers are the stored doubles, printed so they read back bit for bit;
//! a missing feature's `value` is `null`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::narrative::{top_features, TOP_FEATURES};
use crate::{Part, StoredExplanation};

fn time(millis: i64) -> Value {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|t| json!(t.to_rfc3339_opts(SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null)
}

fn part_json(features: &[String], row: &[f32], part: Part<'_>) -> Map<String, Value> {
    let shap: Map<String, Value> = features
        .iter()
        .zip(part.shap)
        .map(|(f, v)| (f.clone(), json!(v)))
        .collect();
    let top = |up| -> Value {
        top_features(part.shap, TOP_FEATURES, up)
            .into_iter()
            .map(|(i, v)| {
                let x = row[i];
                json!({
                    "feature": features[i],
                    "value": if x.is_nan() { Value::Null } else { json!(f64::from(x)) },
                    "shap": v,
                })
            })
            .collect()
    };
    let mut m = Map::new();
    m.insert("margin".into(), json!(part.margin));
    m.insert("expected_value".into(), json!(part.expected_value));
    m.insert("shap".into(), Value::Object(shap));
    m.insert("top_up".into(), top(true));
    m.insert("top_down".into(), top(false));
    m
}

/// Logistic or identity, as the specialist's objective says.
fn prediction(objective: &str, margin: f64) -> f64 {
    match objective {
        "binary:logistic" => 1.0 / (1.0 + (-margin).exp()),
        _ => margin,
    }
}

impl StoredExplanation {
    /// The JSON document described in the module documentation.
    pub fn to_json(&self) -> Value {
        let set = &self.model_set;
        let e = &self.explanation;
        let decision = serde_json::to_value(&self.decision).unwrap_or(Value::Null);
        let specialists: Vec<Value> = set
            .specialists
            .iter()
            .enumerate()
            .map(|(i, (name, objective))| {
                let part = e.part(i);
                let mut m = Map::new();
                m.insert("name".into(), json!(name));
                m.insert("objective".into(), json!(objective));
                m.insert("weight".into(), json!(e.weights()[i]));
                m.insert(
                    "prediction".into(),
                    json!(prediction(objective, part.margin)),
                );
                m.extend(part_json(&set.features, e.row(), part));
                Value::Object(m)
            })
            .collect();
        json!({
            "decision_id": self.decision.decision_id,
            "event_id": self.event_id,
            "symbol": self.symbol,
            "action": self.action,
            "decided_at": time(self.decided_at),
            "explained_at": time(self.explained_at),
            "model_version": self.model_version,
            "explained_with": self.explained_with,
            "source": {
                "topic": self.source_topic,
                "partition": self.source_partition,
                "offset": self.source_offset,
            },
            "explanation": self.narrative,
            "ensemble": Value::Object(part_json(&set.features, e.row(), e.ensemble())),
            "specialists": specialists,
            "decision": decision,
        })
    }
}
