//! What a `model_update` reports when a specialist is replaced, measured on
//! a fixed evaluation set.
//!
//! The evaluation set (`models/evaluation.csv`, written by
//! `tools/reference_decisions.py`) holds out-of-sample rows drawn by the
//! specialists' own training generator with other seeds: 400 rows per
//! regime, the 20 features (empty = missing), the row's `regime` and its
//! realised forward 5-day return in % (`fwd_return_5d`).
//!
//! - **Sharpe** of a specialist: on the rows of its own regime, the strategy
//!   holds the specialist's signal (−1 … 1, the common space of the
//!   ensemble) for 5 days, earning `signal × fwd_return_5d`; Sharpe is the
//!   mean of those returns over their sample standard deviation, annualised
//!   by √(252 / 5). It ranks models on one fixed set; it is not a backtest.
//! - **degradation %** = (Sharpe before − Sharpe after) / |Sharpe before| × 100:
//!   positive when the new model is worse, negative when it is better.
//! - **stability check**: on every row of the set, the new signal has the
//!   same sign as the old one on at least 80 % of rows and the mean
//!   |new − old| signal is at most 0.25. It flags a model that would change
//!   many decisions at once, whatever its Sharpe.
//! - **update type**: `incremental` when the new model's first trees are
//!   exactly the old model's (trees were added), `full_retrain` otherwise.
//! - **data window**: the model's `data_window_start` / `data_window_end`
//!   attributes when it has them, else the file's modification date (both ends).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ultracore_events::trading::{ModelUpdate, UpdateType};

use crate::specialists::signal;
use crate::{Error, Regime, Result, Specialist};

/// Bounds of the stability check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StabilityBounds {
    /// Least share of rows whose signal keeps its sign.
    pub min_sign_agreement: f64,
    /// Largest mean |new − old| signal.
    pub max_mean_abs_change: f64,
}

impl Default for StabilityBounds {
    fn default() -> Self {
        StabilityBounds {
            min_sign_agreement: 0.8,
            max_mean_abs_change: 0.25,
        }
    }
}

/// Rows with known outcomes, for comparing models.
#[derive(Debug, Clone)]
pub struct EvaluationSet {
    pub path: PathBuf,
    /// Rows in the models' feature order, NaN = missing.
    pub rows: Vec<Vec<f32>>,
    pub regimes: Vec<Regime>,
    /// Forward 5-day return, %.
    pub forward_returns: Vec<f64>,
}

impl EvaluationSet {
    /// Reads the CSV; its header must hold every one of `feature_names`,
    /// `regime` and `fwd_return_5d`.
    pub fn load(path: impl AsRef<Path>, feature_names: &[String]) -> Result<EvaluationSet> {
        let path = path.as_ref();
        let bad = |reason: String| Error::Evaluation {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            bad(format!(
                "{e} (it ships as models/evaluation.csv; tools/reference_decisions.py writes it)"
            ))
        })?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines
            .next()
            .ok_or_else(|| bad("empty file".into()))?
            .split(',')
            .collect();
        let col = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .ok_or_else(|| bad(format!("no column '{name}' in the header")))
        };
        let feature_cols = feature_names
            .iter()
            .map(|n| col(n))
            .collect::<Result<Vec<_>>>()?;
        let regime_col = col("regime")?;
        let fwd_col = col("fwd_return_5d")?;
        let mut set = EvaluationSet {
            path: path.to_owned(),
            rows: Vec::new(),
            regimes: Vec::new(),
            forward_returns: Vec::new(),
        };
        for (i, line) in lines.enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = |reason: String| bad(format!("line {}: {reason}", i + 2));
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != header.len() {
                return Err(at(format!(
                    "{} cells, the header has {}",
                    cells.len(),
                    header.len()
                )));
            }
            let row = feature_cols
                .iter()
                .map(|&c| {
                    let cell = cells[c].trim();
                    if cell.is_empty() {
                        Ok(f32::NAN)
                    } else {
                        cell.parse::<f32>()
                            .map_err(|_| at(format!("'{cell}' is not a number")))
                    }
                })
                .collect::<Result<Vec<f32>>>()?;
            let regime = match cells[regime_col].trim() {
                "bull" => Regime::Bull,
                "bear" => Regime::Bear,
                "sideways" => Regime::Sideways,
                other => {
                    return Err(at(format!(
                        "regime '{other}' is not bull, bear or sideways"
                    )))
                }
            };
            let fwd: f64 = cells[fwd_col].trim().parse().map_err(|_| {
                at(format!(
                    "fwd_return_5d '{}' is not a number",
                    cells[fwd_col]
                ))
            })?;
            set.rows.push(row);
            set.regimes.push(regime);
            set.forward_returns.push(fwd);
        }
        if set.rows.is_empty() {
            return Err(bad("no rows".into()));
        }
        Ok(set)
    }

    /// Each row's signal from one specialist.
    fn signals(&self, s: &Specialist, scale_bps: f64) -> Result<Vec<f64>> {
        self.rows
            .iter()
            .map(|row| {
                let p = s.model.predict(row).map_err(|e| Error::Evaluation {
                    path: self.path.clone(),
                    reason: format!("{}: {e}", s.path.display()),
                })?;
                Ok(signal(s.regime, f64::from(p), scale_bps))
            })
            .collect()
    }

    /// The specialist's annualised Sharpe ratio on the rows of its regime
    /// (see the module documentation) and the number of rows used.
    pub fn sharpe(&self, s: &Specialist, scale_bps: f64) -> Result<(f64, usize)> {
        let signals = self.signals(s, scale_bps)?;
        Ok(self.sharpe_of(s.regime, &signals))
    }

    fn sharpe_of(&self, regime: Regime, signals: &[f64]) -> (f64, usize) {
        let returns: Vec<f64> = signals
            .iter()
            .zip(&self.forward_returns)
            .zip(&self.regimes)
            .filter(|(_, r)| **r == regime)
            .map(|((s, f), _)| s * f)
            .collect();
        let n = returns.len();
        if n < 2 {
            return (0.0, n);
        }
        let mean = returns.iter().sum::<f64>() / n as f64;
        let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let sharpe = if var > 0.0 {
            mean / var.sqrt() * (252.0f64 / 5.0).sqrt()
        } else {
            0.0
        };
        (sharpe, n)
    }

    /// The `model_update` for replacing `old` by `new` (same regime).
    pub fn compare(
        &self,
        old: &Specialist,
        new: &Specialist,
        scale_bps: f64,
        bounds: StabilityBounds,
        timestamp: DateTime<Utc>,
    ) -> Result<ModelUpdate> {
        let before = self.signals(old, scale_bps)?;
        let after = self.signals(new, scale_bps)?;
        let (sharpe_before, n) = self.sharpe_of(old.regime, &before);
        let (sharpe_after, _) = self.sharpe_of(new.regime, &after);
        let degradation_pct = if sharpe_before != 0.0 {
            (sharpe_before - sharpe_after) / sharpe_before.abs() * 100.0
        } else {
            0.0
        };
        let rows = before.len() as f64;
        let agree = before
            .iter()
            .zip(&after)
            .filter(|(a, b)| a.signum() == b.signum())
            .count() as f64
            / rows;
        let mean_change = before
            .iter()
            .zip(&after)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>()
            / rows;
        let passed =
            agree >= bounds.min_sign_agreement && mean_change <= bounds.max_mean_abs_change;
        let today = timestamp.date_naive();
        let (start, end) = new.data_window.unwrap_or_else(|| {
            let d = new.modified.unwrap_or(today);
            (d, d)
        });
        Ok(ModelUpdate {
            model_id: new.regime.as_str().to_owned(),
            update_type: if new.extends(old) {
                UpdateType::Incremental
            } else {
                UpdateType::FullRetrain
            },
            previous_version: old.version(),
            new_version: new.version(),
            data_window_start: start,
            data_window_end: end,
            sharpe_before,
            sharpe_after,
            degradation_pct,
            stability_check_passed: passed,
            stability_detail: Some(format!(
                "signal sign kept on {:.1} % of {} evaluation rows (bound ≥ {:.0} %), mean |signal change| {:.3} (bound ≤ {}); Sharpe on the {n} {} rows",
                agree * 100.0,
                before.len(),
                bounds.min_sign_agreement * 100.0,
                mean_change,
                bounds.max_mean_abs_change,
                new.regime,
            )),
            timestamp,
        })
    }
}
