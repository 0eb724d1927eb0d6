//! The three regime specialists and what each one says, in one common space.
//!
//! Each specialist answers a different question (see `tools/train_models.py`):
//!
//! | specialist | output | signal in the common space (−1 sell … +1 buy) |
//! |---|---|---|
//! | `bull` | P(next 5 days' return > +0.5 %) = p_up | `2·p_up − 1` |
//! | `bear` | P(next 5 days' return < −0.5 %) = p_down | `1 − 2·p_down` |
//! | `sideways` | next 5 days' return r, basis points | `tanh(r / scale)`, scale = 100 bps by default |
//!
//! so every signal is a number in [−1, 1] whose sign is the direction the
//! specialist favours and whose size is how strongly.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use ultracore_models::Model;

use crate::{Error, Regime, Result};

/// One loaded specialist model and where it came from.
#[derive(Debug, Clone)]
pub struct Specialist {
    pub regime: Regime,
    pub model: Model,
    /// The file it was read from.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// SHA-256 of each tree's JSON, in order: a model whose first trees
    /// equal another's grew from it (an incremental update).
    pub tree_digests: Vec<[u8; 32]>,
    /// The training data window, from the model's `data_window_start` /
    /// `data_window_end` attributes (`Booster.set_attr`), if it has them.
    pub data_window: Option<(NaiveDate, NaiveDate)>,
    /// The file's modification date (the data window when the model has none).
    pub modified: Option<NaiveDate>,
}

impl Specialist {
    /// `bull@1a2b3c4d`: the regime and the first 8 hex digits of the file's SHA-256.
    pub fn version(&self) -> String {
        format!("{}@{}", self.regime, &self.sha256[..8])
    }

    /// Reads one model file.
    pub fn load(regime: Regime, path: &Path) -> Result<Specialist> {
        let bytes = std::fs::read(path).map_err(|source| Error::ModelFile {
            path: path.to_owned(),
            reason: source.to_string(),
        })?;
        let bad = |reason: String| Error::ModelFile {
            path: path.to_owned(),
            reason,
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| bad(e.to_string()))?;
        let model = Model::from_json(text).map_err(|e| bad(error_chain(&e)))?;
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let learner = &json["learner"];
        let tree_digests = learner["gradient_booster"]["model"]["trees"]
            .as_array()
            .map(|trees| {
                trees
                    .iter()
                    .map(|t| Sha256::digest(t.to_string().as_bytes()).into())
                    .collect()
            })
            .unwrap_or_default();
        let attr = |name: &str| {
            learner["attributes"][name]
                .as_str()
                .and_then(|s| s.parse::<NaiveDate>().ok())
        };
        let data_window = attr("data_window_start").zip(attr("data_window_end"));
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .map(|t| chrono::DateTime::<chrono::Utc>::from(t).date_naive());
        Ok(Specialist {
            regime,
            model,
            path: path.to_owned(),
            sha256: hex(&Sha256::digest(&bytes)),
            tree_digests,
            data_window,
            modified,
        })
    }

    /// Whether `self` is `previous` with trees added (XGBoost's
    /// `xgb.train(..., xgb_model=previous)`), rather than a new model.
    pub fn extends(&self, previous: &Specialist) -> bool {
        !previous.tree_digests.is_empty()
            && self.tree_digests.len() > previous.tree_digests.len()
            && self.tree_digests[..previous.tree_digests.len()] == previous.tree_digests[..]
    }
}

/// The three specialists, sharing one feature list.
#[derive(Debug, Clone)]
pub struct Specialists {
    by_regime: [Specialist; 3],
    feature_names: Vec<String>,
}

impl Specialists {
    /// Loads `bull.json`, `bear.json` and `sideways.json` from `dir`.
    ///
    /// Errors name the file: unreadable, not an XGBoost JSON model, the wrong
    /// objective (bull and bear must be `binary:logistic`, sideways
    /// `reg:squarederror`), or feature names that differ between the three.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Specialists> {
        let dir = dir.as_ref();
        let load = |r: Regime| Specialist::load(r, &dir.join(format!("{r}.json")));
        Specialists::new([
            load(Regime::Bull)?,
            load(Regime::Bear)?,
            load(Regime::Sideways)?,
        ])
    }

    /// Checks and combines three loaded specialists (bull, bear, sideways, in that order).
    pub fn new(by_regime: [Specialist; 3]) -> Result<Specialists> {
        use ultracore_models::Objective;
        for (s, want) in by_regime.iter().zip(Regime::ALL) {
            if s.regime != want {
                return Err(Error::ModelFile {
                    path: s.path.clone(),
                    reason: format!("given as the {want} specialist but loaded as {}", s.regime),
                });
            }
            let objective = match want {
                Regime::Bull | Regime::Bear => Objective::BinaryLogistic,
                Regime::Sideways => Objective::SquaredError,
            };
            if s.model.objective() != objective {
                return Err(Error::ModelFile {
                    path: s.path.clone(),
                    reason: format!(
                        "the {want} specialist must be {objective}, this model is {}",
                        s.model.objective()
                    ),
                });
            }
        }
        let feature_names = by_regime[0].model.feature_names().to_vec();
        for s in &by_regime[1..] {
            if s.model.feature_names() != feature_names.as_slice() {
                return Err(Error::ModelFile {
                    path: s.path.clone(),
                    reason: format!(
                        "its features differ from {}'s: every specialist must take the same features in the same order",
                        by_regime[0].path.display()
                    ),
                });
            }
        }
        Ok(Specialists {
            by_regime,
            feature_names,
        })
    }

    /// The specialist of one regime.
    pub fn get(&self, regime: Regime) -> &Specialist {
        &self.by_regime[regime as usize]
    }

    /// The three, in [`Regime::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = &Specialist> {
        self.by_regime.iter()
    }

    /// The feature names every specialist takes, in row order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// `bull@1a2b3c4d+bear@5e6f7a8b+sideways@9c0d1e2f`: names every model
    /// file by the first 8 hex digits of its SHA-256.
    pub fn model_version(&self) -> String {
        self.iter()
            .map(Specialist::version)
            .collect::<Vec<_>>()
            .join("+")
    }

    /// Each specialist's prediction for a row (NaN = missing), as XGBoost's
    /// `predict` gives it: p_up, p_down, basis points.
    pub fn predict(&self, row: &[f32]) -> Result<[f32; 3]> {
        let mut out = [0.0f32; 3];
        for (o, s) in out.iter_mut().zip(&self.by_regime) {
            *o = s
                .model
                .predict(row)
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
        Ok(out)
    }
}

/// A specialist's prediction mapped to the common signal space (see the module docs).
pub fn signal(regime: Regime, prediction: f64, sideways_scale_bps: f64) -> f64 {
    match regime {
        Regime::Bull => 2.0 * prediction - 1.0,
        Regime::Bear => 1.0 - 2.0 * prediction,
        Regime::Sideways => (prediction / sideways_scale_bps).tanh(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_share_one_space() {
        assert_eq!(signal(Regime::Bull, 0.75, 100.0), 0.5);
        assert_eq!(signal(Regime::Bear, 0.75, 100.0), -0.5);
        assert_eq!(signal(Regime::Bull, 0.5, 100.0), 0.0);
        assert!((signal(Regime::Sideways, 100.0, 100.0) - 1f64.tanh()).abs() < 1e-15);
        assert!((signal(Regime::Sideways, -50.0, 100.0) + 0.5f64.tanh()).abs() < 1e-15);
    }
}
