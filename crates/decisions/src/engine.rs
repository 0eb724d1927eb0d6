//! The decision itself: pure, no I/O. Given a request, a decision id and a
//! time, [`DecisionEngine::decide`] always returns the same decision.
//!
//! 1. The row: the request's features in the models' order, NaN where missing.
//! 2. Each specialist predicts (exactly as XGBoost would) and its prediction
//!    is mapped to a signal in −1 … 1 (see [`signal`]).
//! 3. The regime model gives P(bull), P(bear), P(sideways); these are the
//!    strategy weights, and the score is Σ weight × signal, in −1 … 1.
//! 4. Action: BUY when score ≥ `thresholds.buy`, SELL when score ≤
//!    −`thresholds.sell`, else HOLD. Confidence: |score| for BUY and SELL; for
//!    HOLD, 1 − |score| / threshold (1 when the ensemble is neutral, 0 at
//!    the edge of trading).
//! 5. Quantity: `confidence × max_order_units`, and with a price at most
//!    `confidence × max_order_value / price`, rounded down to the lot size;
//!    a SELL without `allow_short` trades at most the units held.
//! 6. Risk checks on the position the trade would leave; if any fails the
//!    decision is rejected and its quantity is 0 (the action stays, so the
//!    model's view is on record).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use ultracore_events::trading::{Action, ContextSource, TradingDecision};
use uuid::Uuid;

use crate::specialists::signal;
use crate::{
    risk, DecisionConfig, DecisionRequest, InvalidRequest, Regime, RegimeInputs, RegimeProbs,
    Result, Specialists,
};

/// What one specialist said about the request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpecialistOutput {
    /// The model's prediction as XGBoost gives it (probability or bps).
    pub prediction: f64,
    /// The prediction in the common signal space, −1 … 1.
    pub signal: f64,
    /// Its weight in the score (the regime's probability).
    pub weight: f64,
}

/// A decision: the `trading_decision` event's payload plus how it came about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Exactly what is published on `trading_decisions`.
    #[serde(flatten)]
    pub decision: TradingDecision,
    /// Whether every risk check passed.
    pub approved: bool,
    /// The names of the checks that failed.
    pub failed_checks: Vec<String>,
    /// The ensemble's score, −1 (sell) … 1 (buy).
    pub score: f64,
    /// The most probable regime.
    pub regime: Regime,
    /// The quantity before the risk checks.
    pub proposed_quantity: f64,
    /// Each specialist's prediction, signal and weight, by regime name.
    pub specialists: BTreeMap<String, SpecialistOutput>,
    /// The regime model's trend and stress readings.
    pub regime_trend: f64,
    pub regime_stress: f64,
    /// Where the risk checks' position and portfolio value came from: the
    /// caller's word (`caller`) or nowhere (`absent`: a zero position).
    pub context_source: ContextSource,
}

/// The specialists, their configuration and a feature index: everything a
/// decision needs. Cheap to share (`Arc`); rebuilt on a model reload.
#[derive(Debug, Clone)]
pub struct DecisionEngine {
    specialists: Specialists,
    config: DecisionConfig,
    column: HashMap<String, usize>,
    model_version: String,
}

impl DecisionEngine {
    /// Checks the configuration and indexes the features.
    pub fn new(specialists: Specialists, config: DecisionConfig) -> Result<DecisionEngine> {
        config.validate()?;
        let column = specialists
            .feature_names()
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let model_version = specialists.model_version();
        Ok(DecisionEngine {
            specialists,
            config,
            column,
            model_version,
        })
    }

    pub fn specialists(&self) -> &Specialists {
        &self.specialists
    }

    pub fn config(&self) -> &DecisionConfig {
        &self.config
    }

    /// The `model_version` every decision carries.
    pub fn model_version(&self) -> &str {
        &self.model_version
    }

    /// The regime probabilities of a feature map.
    pub fn regime(&self, features: &BTreeMap<String, f64>) -> RegimeProbs {
        self.config
            .regime
            .probs(&RegimeInputs::from_features(features))
    }

    /// The model row of a feature map: the models' order, NaN where missing.
    pub fn row(&self, features: &BTreeMap<String, f64>) -> Vec<f32> {
        let mut row = vec![f32::NAN; self.specialists.feature_names().len()];
        for (name, value) in features {
            if let Some(&i) = self.column.get(name) {
                row[i] = *value as f32;
            }
        }
        row
    }

    /// Each specialist's prediction and signal in the common space.
    pub fn signals(&self, row: &[f32]) -> Result<[(f64, f64); 3]> {
        let predictions = self.specialists.predict(row)?;
        let mut out = [(0.0, 0.0); 3];
        for ((o, p), r) in out.iter_mut().zip(predictions).zip(Regime::ALL) {
            let p = f64::from(p);
            *o = (p, signal(r, p, self.config.sideways_scale_bps));
        }
        Ok(out)
    }

    /// Decides with a fresh UUIDv7 at the current time (milliseconds, as envelopes carry it).
    pub fn decide_now(&self, request: &DecisionRequest) -> Result<Decision> {
        self.decide(request, Uuid::now_v7(), Utc::now().trunc_subsecs(3))
    }

    /// Makes the decision for `request` (see the module documentation).
    /// Errors: [`crate::Error::Invalid`] naming the field when the request
    /// does not pass [`DecisionRequest::validate`].
    pub fn decide(
        &self,
        request: &DecisionRequest,
        decision_id: Uuid,
        timestamp: DateTime<Utc>,
    ) -> Result<Decision> {
        request.validate_with(
            |name| self.column.contains_key(name),
            self.specialists.feature_names(),
        )?;
        let row = self.row(&request.features);
        let signals = self.signals(&row)?;
        let regime = self.regime(&request.features);
        let score: f64 = Regime::ALL
            .iter()
            .zip(&signals)
            .map(|(r, (_, s))| regime.prob(*r) * s)
            .sum();
        let t = &self.config.thresholds;
        let (action, confidence) = if score >= t.buy {
            (Action::Buy, score.min(1.0))
        } else if score <= -t.sell {
            (Action::Sell, (-score).min(1.0))
        } else {
            let edge = if score >= 0.0 { t.buy } else { t.sell };
            (Action::Hold, (1.0 - score.abs() / edge).clamp(0.0, 1.0))
        };
        let proposed = self.size(request, action, confidence);
        let checks = risk::evaluate(&self.config.risk, request, action, proposed);
        let failed_checks: Vec<String> = checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.clone())
            .collect();
        let approved = failed_checks.is_empty();
        let weights = regime.to_map();
        let specialists = Regime::ALL
            .iter()
            .zip(signals)
            .map(|(r, (prediction, signal))| {
                (
                    r.as_str().to_owned(),
                    SpecialistOutput {
                        prediction,
                        signal,
                        weight: regime.prob(*r),
                    },
                )
            })
            .collect();
        Ok(Decision {
            decision: TradingDecision {
                decision_id: decision_id.to_string(),
                timestamp,
                symbol: request.symbol.clone(),
                action,
                quantity: if approved { proposed } else { 0.0 },
                confidence,
                regime_probs: weights.clone(),
                strategy_weights: weights,
                features: request.features.clone(),
                risk_checks: checks,
                model_version: self.model_version.clone(),
                // Pure: the caller that measures sets it (the service does).
                latency_us: None,
            },
            approved,
            failed_checks,
            score,
            regime: regime.most_probable(),
            proposed_quantity: proposed,
            specialists,
            regime_trend: regime.trend,
            regime_stress: regime.stress,
            context_source: request.portfolio.source(),
        })
    }

    /// Units to trade for an action at a confidence (step 5 above).
    fn size(&self, request: &DecisionRequest, action: Action, confidence: f64) -> f64 {
        if action == Action::Hold {
            return 0.0;
        }
        let s = &self.config.sizing;
        let mut units = confidence * s.max_order_units;
        if let (Some(price), Some(max_value)) = (request.price, s.max_order_value) {
            units = units.min(confidence * max_value / price);
        }
        if action == Action::Sell && !s.allow_short {
            units = units.min(request.portfolio.position_units.max(0.0));
        }
        // Round down to whole lots; the epsilon keeps 0.29 × 1000 at 290.
        let lots = (units / s.lot_size + 1e-9).floor().max(0.0);
        lots * s.lot_size
    }
}

impl From<InvalidRequest> for crate::Error {
    fn from(e: InvalidRequest) -> Self {
        crate::Error::Invalid(e)
    }
}
