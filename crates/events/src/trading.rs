//! The trading topics: `trading_decisions`, `model_updates`, `regime_changes`
//! and `risk_decisions`. Each topic carries one event type; the payloads keep
//! the field names the platform's existing consumers read (snake_case, actions
//! in capitals, regimes as `bull` / `bear` / `sideways`).
//!
//! A decision's `features` map holds the model inputs by name; a feature that
//! was missing at decision time is absent from the map (JSON has no NaN), and
//! the forensics service sends it down each split's default direction, as
//! XGBoost does.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::event_family_v1;

/// Topic of [`TradingDecisionEvent`].
pub const DECISIONS_TOPIC: &str = "trading_decisions";
/// Topic of [`ModelUpdateEvent`].
pub const MODEL_UPDATES_TOPIC: &str = "model_updates";
/// Topic of [`RegimeChangeEvent`].
pub const REGIME_CHANGES_TOPIC: &str = "regime_changes";
/// Topic of [`RiskDecisionEvent`].
pub const RISK_DECISIONS_TOPIC: &str = "risk_decisions";

/// Aggregate type of decisions and risk decisions; the aggregate id is the symbol.
pub const AGGREGATE_TYPE: &str = "TradingDecision";
/// Aggregate type of model updates; the aggregate id is the model id.
pub const MODEL_AGGREGATE_TYPE: &str = "Model";
/// Aggregate type of regime changes; the aggregate id is the symbol (or `market`).
pub const REGIME_AGGREGATE_TYPE: &str = "Regime";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TradingDecisionEvent {
    TradingDecision(Box<TradingDecision>),
}

event_family_v1!(TradingDecisionEvent {
    TradingDecision => "trading_decision",
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ModelUpdateEvent {
    ModelUpdate(ModelUpdate),
}

event_family_v1!(ModelUpdateEvent {
    ModelUpdate => "model_update",
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RegimeChangeEvent {
    RegimeChange(RegimeChange),
}

event_family_v1!(RegimeChangeEvent {
    RegimeChange => "regime_change",
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RiskDecisionEvent {
    RiskDecision(RiskDecision),
}

event_family_v1!(RiskDecisionEvent {
    RiskDecision => "risk_decision",
});

/// What a decision asks the desk to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    Buy,
    Sell,
    Hold,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Buy => "BUY",
            Action::Sell => "SELL",
            Action::Hold => "HOLD",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the position and portfolio figures of a decision's risk checks
/// came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextSource {
    /// The caller's word: the request's `portfolio` (position, value,
    /// correlation with the holdings), which the platform did not verify.
    /// Events written before the field existed read as this.
    #[default]
    Caller,
    /// The request gave none: the checks ran on a zero position, with the
    /// value and the correlation unknown.
    Absent,
}

/// One pre-trade risk check as evaluated for a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskCheck {
    /// `position_limit`, `concentration` or `correlation`.
    pub name: String,
    pub passed: bool,
    /// The measured value (units, weight or correlation).
    pub value: f64,
    /// The configured limit it was compared with.
    pub limit: f64,
    /// What was measured, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One trading decision, published on `trading_decisions` as it is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradingDecision {
    /// UUID (v7: time-ordered), the key the forensics API is queried by.
    pub decision_id: String,
    pub timestamp: DateTime<Utc>,
    pub symbol: String,
    pub action: Action,
    /// Units to trade (0 for HOLD or when the risk checks cut it to nothing).
    pub quantity: f64,
    /// 0..1: how sure the weighted ensemble is of the action.
    pub confidence: f64,
    /// Probability of each regime (`bull`, `bear`, `sideways`), summing to 1.
    pub regime_probs: BTreeMap<String, f64>,
    /// Weight given to each regime specialist's output, summing to 1.
    pub strategy_weights: BTreeMap<String, f64>,
    /// The model inputs by feature name; missing features are absent.
    pub features: BTreeMap<String, f64>,
    pub risk_checks: Vec<RiskCheck>,
    /// Identifies the specialists' model files (name and content digest).
    pub model_version: String,
    /// Microseconds the decision service took to decide: from taking the
    /// request to the decision being made, before its events are queued
    /// (so the log's latency is not in it). Absent in events written before
    /// the field existed, and from callers that do not measure (the engine
    /// alone is pure and leaves it out); absent, it is not written, so
    /// their JSON is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
}

/// How a model was refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateType {
    Incremental,
    FullRetrain,
}

/// A model was retrained or updated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelUpdate {
    pub model_id: String,
    pub update_type: UpdateType,
    /// Model version before and after the update.
    pub previous_version: String,
    pub new_version: String,
    /// The training data window.
    pub data_window_start: NaiveDate,
    pub data_window_end: NaiveDate,
    pub sharpe_before: f64,
    pub sharpe_after: f64,
    /// Relative loss of Sharpe ratio, % (negative: improvement).
    pub degradation_pct: f64,
    /// Whether the new model's predictions stayed within the stability bounds.
    pub stability_check_passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stability_detail: Option<String>,
    pub timestamp: DateTime<Utc>,
}

/// The most probable regime changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegimeChange {
    /// The symbol whose regime changed, or `market`.
    pub symbol: String,
    pub previous_regime: String,
    pub new_regime: String,
    pub previous_probs: BTreeMap<String, f64>,
    pub new_probs: BTreeMap<String, f64>,
    /// The decision during which the change was seen, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
    pub timestamp: DateTime<Utc>,
}

/// Whether the risk engine let a decision through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskOutcome {
    Approved,
    Rejected,
}

/// The risk engine's verdict on one decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskDecision {
    pub decision_id: String,
    pub symbol: String,
    pub outcome: RiskOutcome,
    /// The checks that failed (empty when approved).
    pub failed_checks: Vec<String>,
    pub checks: Vec<RiskCheck>,
    /// Where the checks' position and portfolio value came from.
    #[serde(default)]
    pub context_source: ContextSource,
    pub timestamp: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use ultracore_log::EventFamily;

    use super::*;

    #[test]
    fn decisions_round_trip_with_capital_actions_and_absent_missing_features() {
        let decision = TradingDecision {
            decision_id: "0190f7a2-0000-7000-8000-000000000001".into(),
            timestamp: "2026-01-02T14:30:00Z".parse().unwrap(),
            symbol: "AAPL".into(),
            action: Action::Buy,
            quantity: 100.0,
            confidence: 0.71,
            regime_probs: [
                ("bull".into(), 0.6),
                ("bear".into(), 0.1),
                ("sideways".into(), 0.3),
            ]
            .into(),
            strategy_weights: [
                ("bull".into(), 0.6),
                ("bear".into(), 0.1),
                ("sideways".into(), 0.3),
            ]
            .into(),
            features: [("rsi_14".into(), 61.5)].into(),
            risk_checks: vec![RiskCheck {
                name: "position_limit".into(),
                passed: true,
                value: 100.0,
                limit: 10_000.0,
                detail: None,
            }],
            model_version: "specialists@1a2b3c".into(),
            latency_us: Some(23),
        };
        let event = TradingDecisionEvent::TradingDecision(Box::new(decision.clone()));
        let payload = event.to_payload();
        assert_eq!(payload["action"], "BUY");
        assert_eq!(payload["features"]["rsi_14"], 61.5);
        assert!(payload["features"].get("macd").is_none());
        assert_eq!(payload["latency_us"], 23);
        let back = TradingDecisionEvent::decode("trading_decision", 1, payload.clone()).unwrap();
        assert_eq!(back, event);

        // Without a latency the JSON is what it was before the field, and
        // such JSON (older events) reads as no latency.
        let mut older = payload;
        older.as_object_mut().unwrap().remove("latency_us");
        let unmeasured = TradingDecisionEvent::TradingDecision(Box::new(TradingDecision {
            latency_us: None,
            ..decision
        }));
        assert_eq!(unmeasured.to_payload(), older);
        let back = TradingDecisionEvent::decode("trading_decision", 1, older).unwrap();
        assert_eq!(back, unmeasured);
        assert!(
            TradingDecisionEvent::decode("trading_decision", 2, serde_json::json!({})).is_err()
        );
    }
}
