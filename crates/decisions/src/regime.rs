//! The regime model: how likely the market of a symbol is bull, bear or
//! sideways, from four of its features. Deterministic and closed-form, so a
//! decision's regime probabilities can be recomputed by hand.
//!
//! Two standardised readings, each the mean of its available components
//! (a missing feature is left out; with neither component the reading is 0):
//!
//! ```text
//! trend  = mean( clip(return_20d / 4),            clip((sma_50_200_ratio - 1) / 0.02) )
//! stress = mean( clip((vix_level - 20) / 6),      clip((volatility_20d - 20) / 8) )
//! clip(x) = min(max(x, -3), 3)
//! ```
//!
//! One unit of trend is a 4 % return over 20 days, or a 50-day average 2 %
//! above the 200-day one; one unit of stress is a VIX 6 points above 20, or
//! realised volatility 8 points above 20 %. The regime scores are
//!
//! ```text
//! bull     =  2·trend − stress
//! bear     = −2·trend + stress
//! sideways =  1 − 2·|trend|
//! ```
//!
//! and the probabilities their softmax. A flat, calm market (trend 0,
//! stress 0) is 58 % sideways and 21 % each bull and bear; so is a request
//! without any of the four features. On the specialists' own training
//! distributions (`tools/train_models.py`) the typical bull row (return_20d
//! ≈ +3.4 %, ratio ≈ 1.02, VIX ≈ 15) is ≈ 97 % bull and the typical bear row
//! (−4.5 %, 0.97, VIX ≈ 30) ≈ 99 % bear.
//!
//! Every constant above is a field of [`RegimeModel`] and can be changed in
//! the decision configuration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One of the three market regimes, each with its specialist model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    Bull,
    Bear,
    Sideways,
}

impl Regime {
    /// The three regimes, in the order scores and probabilities are listed.
    pub const ALL: [Regime; 3] = [Regime::Bull, Regime::Bear, Regime::Sideways];

    /// `bull`, `bear` or `sideways`: the name in events and model file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Regime::Bull => "bull",
            Regime::Bear => "bear",
            Regime::Sideways => "sideways",
        }
    }

    /// The regime named `bull`, `bear` or `sideways` (as events carry it).
    pub fn from_name(name: &str) -> Option<Regime> {
        Regime::ALL.into_iter().find(|r| r.as_str() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Regime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parameters of the regime model (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegimeModel {
    /// `return_20d` (%) worth one unit of trend.
    pub return_20d_unit: f64,
    /// `sma_50_200_ratio − 1` worth one unit of trend.
    pub sma_ratio_unit: f64,
    /// `vix_level` with no stress.
    pub vix_center: f64,
    /// VIX points worth one unit of stress.
    pub vix_unit: f64,
    /// `volatility_20d` (%) with no stress.
    pub volatility_center: f64,
    /// Volatility points worth one unit of stress.
    pub volatility_unit: f64,
    /// Every component is clipped to ±this many units.
    pub clip: f64,
    /// Weight of the trend in the bull and bear scores (and of |trend| against sideways).
    pub trend_weight: f64,
    /// Weight of the stress in the bull and bear scores.
    pub stress_weight: f64,
    /// The sideways score without trend.
    pub sideways_bias: f64,
}

impl Default for RegimeModel {
    fn default() -> Self {
        RegimeModel {
            return_20d_unit: 4.0,
            sma_ratio_unit: 0.02,
            vix_center: 20.0,
            vix_unit: 6.0,
            volatility_center: 20.0,
            volatility_unit: 8.0,
            clip: 3.0,
            trend_weight: 2.0,
            stress_weight: 1.0,
            sideways_bias: 1.0,
        }
    }
}

/// The inputs of the regime model, `None` when missing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RegimeInputs {
    pub return_20d: Option<f64>,
    pub sma_50_200_ratio: Option<f64>,
    pub vix_level: Option<f64>,
    pub volatility_20d: Option<f64>,
}

impl RegimeInputs {
    /// The four features the model reads, by their feature names.
    pub const FEATURES: [&'static str; 4] = [
        "return_20d",
        "sma_50_200_ratio",
        "vix_level",
        "volatility_20d",
    ];

    /// Picks the inputs out of a feature map (absent = missing).
    pub fn from_features(features: &BTreeMap<String, f64>) -> Self {
        RegimeInputs {
            return_20d: features.get("return_20d").copied(),
            sma_50_200_ratio: features.get("sma_50_200_ratio").copied(),
            vix_level: features.get("vix_level").copied(),
            volatility_20d: features.get("volatility_20d").copied(),
        }
    }
}

/// What the regime model concluded for one row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RegimeProbs {
    /// Probabilities in [`Regime::ALL`] order; they sum to 1.
    pub probs: [f64; 3],
    /// The standardised trend reading.
    pub trend: f64,
    /// The standardised stress reading.
    pub stress: f64,
}

impl RegimeProbs {
    /// The probability of one regime.
    pub fn prob(&self, regime: Regime) -> f64 {
        self.probs[regime.index()]
    }

    /// The most probable regime (ties go to the earlier of bull, bear, sideways).
    pub fn most_probable(&self) -> Regime {
        let mut best = Regime::Bull;
        for r in Regime::ALL {
            if self.prob(r) > self.prob(best) {
                best = r;
            }
        }
        best
    }

    /// `{bull: p, bear: p, sideways: p}`, as events carry them.
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        Regime::ALL
            .iter()
            .map(|r| (r.as_str().to_owned(), self.prob(*r)))
            .collect()
    }
}

impl RegimeModel {
    /// Checks the parameters: units positive, everything finite.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let units = [
            ("return_20d_unit", self.return_20d_unit),
            ("sma_ratio_unit", self.sma_ratio_unit),
            ("vix_unit", self.vix_unit),
            ("volatility_unit", self.volatility_unit),
            ("clip", self.clip),
        ];
        for (name, v) in units {
            if !(v.is_finite() && v > 0.0) {
                return Err((name.to_owned(), format!("{v} must be a number > 0")));
            }
        }
        let others = [
            ("vix_center", self.vix_center),
            ("volatility_center", self.volatility_center),
            ("trend_weight", self.trend_weight),
            ("stress_weight", self.stress_weight),
            ("sideways_bias", self.sideways_bias),
        ];
        for (name, v) in others {
            if !v.is_finite() {
                return Err((name.to_owned(), format!("{v} must be a finite number")));
            }
        }
        Ok(())
    }

    /// The regime scores (before the softmax), with the trend and stress readings.
    pub fn scores(&self, x: &RegimeInputs) -> ([f64; 3], f64, f64) {
        let clip = |v: f64| v.clamp(-self.clip, self.clip);
        let mean = |parts: [Option<f64>; 2]| {
            let present: Vec<f64> = parts.into_iter().flatten().collect();
            if present.is_empty() {
                0.0
            } else {
                present.iter().sum::<f64>() / present.len() as f64
            }
        };
        let trend = mean([
            x.return_20d.map(|r| clip(r / self.return_20d_unit)),
            x.sma_50_200_ratio
                .map(|s| clip((s - 1.0) / self.sma_ratio_unit)),
        ]);
        let stress = mean([
            x.vix_level
                .map(|v| clip((v - self.vix_center) / self.vix_unit)),
            x.volatility_20d
                .map(|v| clip((v - self.volatility_center) / self.volatility_unit)),
        ]);
        let bull = self.trend_weight * trend - self.stress_weight * stress;
        let bear = -self.trend_weight * trend + self.stress_weight * stress;
        let sideways = self.sideways_bias - self.trend_weight * trend.abs();
        ([bull, bear, sideways], trend, stress)
    }

    /// The regime probabilities: the softmax of [`RegimeModel::scores`].
    pub fn probs(&self, x: &RegimeInputs) -> RegimeProbs {
        let (scores, trend, stress) = self.scores(x);
        let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exp = scores.map(|s| (s - max).exp());
        let sum: f64 = exp.iter().sum();
        RegimeProbs {
            probs: exp.map(|e| e / sum),
            trend,
            stress,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(r20: f64, sma: f64, vix: f64, vol: f64) -> RegimeInputs {
        RegimeInputs {
            return_20d: Some(r20),
            sma_50_200_ratio: Some(sma),
            vix_level: Some(vix),
            volatility_20d: Some(vol),
        }
    }

    #[test]
    fn a_flat_calm_market_and_no_evidence_lean_sideways() {
        let m = RegimeModel::default();
        let e = 1f64.exp();
        for x in [inputs(0.0, 1.0, 20.0, 20.0), RegimeInputs::default()] {
            let p = m.probs(&x);
            assert!((p.prob(Regime::Sideways) - e / (2.0 + e)).abs() < 1e-15);
            assert!((p.prob(Regime::Bull) - 1.0 / (2.0 + e)).abs() < 1e-15);
            assert!((p.prob(Regime::Bear) - 1.0 / (2.0 + e)).abs() < 1e-15);
            assert_eq!(p.most_probable(), Regime::Sideways);
        }
    }

    #[test]
    fn hand_checked_bull_and_bear_rows() {
        let m = RegimeModel::default();
        // trend = mean(4/4, 0.02/0.02) = 1; stress = mean(-5/6, -4/8) = -2/3.
        let p = m.probs(&inputs(4.0, 1.02, 15.0, 16.0));
        assert!((p.trend - 1.0).abs() < 1e-12);
        assert!((p.stress + 2.0 / 3.0).abs() < 1e-12);
        // scores: bull 2 + 2/3, bear -2 - 2/3, sideways -1.
        let s = [8.0 / 3.0, -8.0 / 3.0, -1.0f64];
        let z: f64 = s.iter().map(|v| v.exp()).sum();
        for (r, v) in Regime::ALL.iter().zip(s) {
            assert!((p.prob(*r) - v.exp() / z).abs() < 1e-12, "{r}");
        }
        assert_eq!(p.most_probable(), Regime::Bull);
        assert!(p.prob(Regime::Bull) > 0.97);

        // Only the VIX known: trend 0, stress clipped at 3.
        let p = m.probs(&RegimeInputs {
            vix_level: Some(80.0),
            ..RegimeInputs::default()
        });
        assert_eq!((p.trend, p.stress), (0.0, 3.0));
        let s = [-3.0, 3.0, 1.0f64];
        let z: f64 = s.iter().map(|v| v.exp()).sum();
        assert!((p.prob(Regime::Bear) - 3f64.exp() / z).abs() < 1e-12);
        assert_eq!(p.most_probable(), Regime::Bear);
        assert!((p.probs.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    }
}
