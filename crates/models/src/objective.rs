//! The learning objectives a model can have, and what each means for
//! `base_score` and for the transformed prediction.

use std::fmt;

/// The objective a model was trained with (`learner.objective.name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// `binary:logistic`: the margin is a log-odds, the prediction a probability.
    /// `base_score` is stored as a probability; the trees start from its logit.
    BinaryLogistic,
    /// `reg:squarederror`: the margin is the prediction; `base_score` is added as is.
    SquaredError,
}

impl Objective {
    /// The objective named as XGBoost names it, if this crate implements it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "binary:logistic" => Some(Self::BinaryLogistic),
            "reg:squarederror" => Some(Self::SquaredError),
            _ => None,
        }
    }

    /// XGBoost's name for the objective.
    pub fn name(self) -> &'static str {
        match self {
            Self::BinaryLogistic => "binary:logistic",
            Self::SquaredError => "reg:squarederror",
        }
    }

    /// The margin the trees start from, in XGBoost's float32 arithmetic
    /// (`ProbToMargin`: `-logf(1.0f / base_score - 1.0f)` for the logistic).
    pub fn base_margin_f32(self, base_score: f32) -> f32 {
        match self {
            Self::BinaryLogistic => -(1.0f32 / base_score - 1.0f32).ln(),
            Self::SquaredError => base_score,
        }
    }

    /// The same margin in double precision, from the same float32 `base_score`
    /// (what the SHAP values and the expected value are computed from).
    pub fn base_margin(self, base_score: f32) -> f64 {
        let p = f64::from(base_score);
        match self {
            Self::BinaryLogistic => (p / (1.0 - p)).ln(),
            Self::SquaredError => p,
        }
    }

    /// The prediction from a margin, as XGBoost's `PredTransform` computes it
    /// in float32 (`common::Sigmoid` for the logistic).
    pub fn transform_f32(self, margin: f32) -> f32 {
        match self {
            Self::BinaryLogistic => {
                let x = (-margin).min(88.7f32);
                1.0f32 / (x.exp() + 1.0f32 + 1e-16f32)
            }
            Self::SquaredError => margin,
        }
    }

    /// The prediction from a margin in double precision.
    pub fn transform(self, margin: f64) -> f64 {
        match self {
            Self::BinaryLogistic => 1.0 / (1.0 + (-margin).exp()),
            Self::SquaredError => margin,
        }
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
