//! The decision configuration: thresholds, sizing, risk limits and the
//! regime model. Every field has a default; a JSON file may set any subset
//! (unknown fields are refused, so a typo is an error, not a silent default).
//!
//! ```json
//! { "thresholds": { "buy": 0.25, "sell": 0.25 },
//!   "sizing": { "max_order_units": 1000, "max_order_value": 100000, "lot_size": 1, "allow_short": false },
//!   "risk": { "max_position_units": 10000, "max_concentration": 0.1, "max_correlation": 0.8, "missing_inputs": "reject" },
//!   "sideways_scale_bps": 100,
//!   "regime": { "return_20d_unit": 4, "...": "see RegimeModel" } }
//! ```

use serde::{Deserialize, Serialize};

use crate::{Error, RegimeModel, Result};

/// How a decision is made from the ensemble's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionConfig {
    pub thresholds: Thresholds,
    pub sizing: Sizing,
    pub risk: RiskLimits,
    /// The sideways specialist's prediction (bps) that maps to a signal of tanh(1) ≈ 0.76.
    pub sideways_scale_bps: f64,
    pub regime: RegimeModel,
}

impl Default for DecisionConfig {
    fn default() -> Self {
        DecisionConfig {
            thresholds: Thresholds::default(),
            sizing: Sizing::default(),
            risk: RiskLimits::default(),
            sideways_scale_bps: 100.0,
            regime: RegimeModel::default(),
        }
    }
}

/// The score (in −1 … 1) at which the ensemble buys or sells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// BUY when the score is at least this.
    pub buy: f64,
    /// SELL when the score is at most minus this.
    pub sell: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            buy: 0.25,
            sell: 0.25,
        }
    }
}

/// How many units a BUY or SELL trades.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sizing {
    /// Units at confidence 1; the order is `confidence × max_order_units`.
    pub max_order_units: f64,
    /// With a price in the request, the order's value is also at most
    /// `confidence × max_order_value`.
    pub max_order_value: Option<f64>,
    /// Orders are rounded down to a multiple of this.
    pub lot_size: f64,
    /// Whether a SELL may take the position below zero; if not, a SELL
    /// trades at most the units held.
    pub allow_short: bool,
}

impl Default for Sizing {
    fn default() -> Self {
        Sizing {
            max_order_units: 1000.0,
            max_order_value: Some(100_000.0),
            lot_size: 1.0,
            allow_short: false,
        }
    }
}

/// What a risk check does when the request lacks what it needs (a price
/// and portfolio value for concentration, a correlation for correlation)
/// and the trade adds exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingInputs {
    /// The check fails (the safe default): send what it needs.
    Reject,
    /// The check passes and says it was not evaluated.
    Skip,
}

/// Pre-trade risk limits. A trade that does not add exposure (HOLD, or a
/// SELL that shrinks a long position) passes every check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskLimits {
    /// `position_limit`: at most this many units held (long or short) after the trade.
    pub max_position_units: f64,
    /// `concentration`: the position's value after the trade over the
    /// portfolio's value, at most this.
    pub max_concentration: f64,
    /// `correlation`: the symbol's correlation with the current holdings
    /// (sign flipped for a short), at most this.
    pub max_correlation: f64,
    pub missing_inputs: MissingInputs,
}

impl Default for RiskLimits {
    fn default() -> Self {
        RiskLimits {
            max_position_units: 10_000.0,
            max_concentration: 0.10,
            max_correlation: 0.80,
            missing_inputs: MissingInputs::Reject,
        }
    }
}

impl DecisionConfig {
    /// Parses a JSON configuration (any subset of the fields) and checks it.
    pub fn from_json(text: &str) -> Result<DecisionConfig> {
        let config: DecisionConfig = serde_json::from_str(text).map_err(|e| Error::Config {
            field: "(file)".into(),
            reason: format!("{e}; see the fields of DecisionConfig in the README"),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every limit; the error names the field and the allowed range.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, reason: String| {
            Err(Error::Config {
                field: field.to_owned(),
                reason,
            })
        };
        let unit = |v: f64| v.is_finite() && v > 0.0 && v < 1.0;
        if !unit(self.thresholds.buy) {
            return bad(
                "thresholds.buy",
                format!("{} must be between 0 and 1", self.thresholds.buy),
            );
        }
        if !unit(self.thresholds.sell) {
            return bad(
                "thresholds.sell",
                format!("{} must be between 0 and 1", self.thresholds.sell),
            );
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.sizing.max_order_units) {
            return bad(
                "sizing.max_order_units",
                format!("{} must be > 0", self.sizing.max_order_units),
            );
        }
        if let Some(v) = self.sizing.max_order_value {
            if !positive(v) {
                return bad(
                    "sizing.max_order_value",
                    format!("{v} must be > 0 (or null for no limit)"),
                );
            }
        }
        if !positive(self.sizing.lot_size) {
            return bad(
                "sizing.lot_size",
                format!("{} must be > 0", self.sizing.lot_size),
            );
        }
        if !positive(self.risk.max_position_units) {
            return bad(
                "risk.max_position_units",
                format!("{} must be > 0", self.risk.max_position_units),
            );
        }
        if !(self.risk.max_concentration.is_finite()
            && self.risk.max_concentration > 0.0
            && self.risk.max_concentration <= 1.0)
        {
            return bad(
                "risk.max_concentration",
                format!(
                    "{} must be a fraction in (0, 1]",
                    self.risk.max_concentration
                ),
            );
        }
        if !(self.risk.max_correlation.is_finite()
            && (-1.0..=1.0).contains(&self.risk.max_correlation))
        {
            return bad(
                "risk.max_correlation",
                format!("{} must be between -1 and 1", self.risk.max_correlation),
            );
        }
        if !positive(self.sideways_scale_bps) {
            return bad(
                "sideways_scale_bps",
                format!("{} must be > 0", self.sideways_scale_bps),
            );
        }
        self.regime
            .validate()
            .or_else(|(field, reason)| bad(&format!("regime.{field}"), reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_files_keep_defaults_and_typos_are_refused() {
        let c = DecisionConfig::from_json(r#"{"thresholds": {"buy": 0.4}}"#).unwrap();
        assert_eq!(c.thresholds.buy, 0.4);
        assert_eq!(c.thresholds.sell, 0.25);
        let e = DecisionConfig::from_json(r#"{"thresholds": {"buyy": 0.4}}"#).unwrap_err();
        assert!(e.to_string().contains("buyy"), "{e}");
        let e = DecisionConfig::from_json(r#"{"risk": {"max_concentration": 2}}"#).unwrap_err();
        assert!(e.to_string().contains("risk.max_concentration"), "{e}");
    }
}
