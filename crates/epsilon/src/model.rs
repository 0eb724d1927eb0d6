//! Walk-forward training and the model file.
//!
//! One fold per test year `Y`: the network trains on every step before
//! `Y − 1` (an expanding window), is validated on year `Y − 1`, and is
//! tested on `Y`; an embargo of [`EMBARGO_WEEKS`] separates training from
//! validation and validation from the test, so no label overlaps the next
//! window. Every setting of a small fixed grid trains with every seed; the
//! setting with the best mean validation Sharpe ratio (net of costs) is
//! kept, and the fold's agent is the average mix of its seeds. The last
//! fold has no test year: it is the model requests use.
//!
//! Everything is single-threaded f64 with seeded initialisation, so the
//! same data and settings write the same bytes.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use ultracore_portfolio::{EsgConstraints, EsgData};

use crate::base::{Universe, BASES};
use crate::policy::{softmax, Mlp};
use crate::train::{input_names, rollout, train, weekly_sharpe, Normaliser, Settings, Start, Step};
use crate::{Error, Result};

pub const FORMAT: &str = "ultracore-epsilon/1";
/// Weeks left out between training, validation and test windows.
pub const EMBARGO_WEEKS: i64 = 4;
/// Fewest training steps a fold needs.
pub const MIN_TRAINING_STEPS: usize = 40;

/// The grid every fold searches (all logged in the model).
pub fn default_grid() -> Vec<Settings> {
    let mut grid = Vec::new();
    for hidden in [8, 16] {
        for l2 in [1e-4, 1e-2] {
            grid.push(Settings {
                hidden,
                l2,
                epochs: 150,
                learning_rate: 0.01,
                eta: 1.0 / 26.0,
                cost_bps: 10.0,
            });
        }
    }
    grid
}

pub const DEFAULT_SEEDS: [u64; 3] = [1, 2, 3];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// The file's name (not its path: the model is the same wherever the
    /// data lives).
    pub file: String,
    pub sha256: String,
    pub tickers: Vec<String>,
    pub first_date: NaiveDate,
    pub last_date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Index into the model's grid.
    pub setting: usize,
    pub seed: u64,
    pub validation_sharpe: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fold {
    /// The year this fold's agent decides in (the last fold: the year after
    /// the data, for live requests).
    pub test_year: i32,
    pub train_from: NaiveDate,
    pub train_to: NaiveDate,
    pub validation_from: NaiveDate,
    pub validation_to: NaiveDate,
    pub normaliser: Normaliser,
    pub trials: Vec<Trial>,
    /// Index into the grid of the setting kept.
    pub chosen: usize,
    /// The kept setting's networks, one per seed; the agent averages them.
    pub networks: Vec<Mlp>,
    /// The best constant mix on the training window.
    pub static_mix: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub format: String,
    pub bases: Vec<String>,
    pub inputs: Vec<String>,
    pub data: DataInfo,
    /// The ESG records the model was trained with, per ticker.
    pub esg: EsgData,
    pub constraints: EsgConstraints,
    pub risk_free_rate: f64,
    pub grid: Vec<Settings>,
    pub seeds: Vec<u64>,
    pub embargo_weeks: i64,
    pub folds: Vec<Fold>,
}

impl Model {
    /// The fold whose agent decides on `date`: the one of its year, else
    /// the latest before it.
    pub fn fold_for(&self, date: NaiveDate) -> Option<&Fold> {
        self.folds
            .iter()
            .rev()
            .find(|f| f.test_year <= date.year())
            .or_else(|| self.folds.first())
    }

    /// The model for live requests: the last fold.
    pub fn live(&self) -> Option<&Fold> {
        self.folds.last()
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string(self).expect("a model serialises");
        s.push('\n');
        s
    }

    pub fn from_json(text: &str) -> Result<Model> {
        let m: Model = serde_json::from_str(text).map_err(|e| Error::Model {
            reason: format!("not an Epsilon model file: {e}"),
        })?;
        if m.format != FORMAT {
            return Err(Error::Model {
                reason: format!("format `{}`, expected `{FORMAT}`", m.format),
            });
        }
        if m.folds.is_empty() {
            return Err(Error::Model {
                reason: "the model has no fold".into(),
            });
        }
        Ok(m)
    }
}

/// The windows of fold `year`.
pub fn windows(year: i32) -> ((NaiveDate, NaiveDate), (NaiveDate, NaiveDate)) {
    let jan1 = |y: i32| NaiveDate::from_ymd_opt(y, 1, 1).expect("a valid date");
    let embargo = chrono::Duration::weeks(EMBARGO_WEEKS);
    let train_to = jan1(year - 1) - embargo;
    let validation = (jan1(year - 1), jan1(year) - embargo);
    ((NaiveDate::MIN, train_to), validation)
}

fn within(steps: &[Step], from: NaiveDate, to: NaiveDate) -> Vec<&Step> {
    steps
        .iter()
        .filter(|s| s.date >= from && s.date < to)
        .collect()
}

/// What training reports as it goes: `(fold test year, folds done, folds)`.
pub type Progress<'a> = &'a mut dyn FnMut(i32, usize, usize);

/// Trains every fold from `first_test_year` to the year after the data.
#[allow(clippy::too_many_arguments)]
pub fn walk_forward(
    steps: &[Step],
    data: DataInfo,
    universe: &Universe,
    grid: &[Settings],
    seeds: &[u64],
    first_test_year: Option<i32>,
    progress: Progress<'_>,
) -> Result<Model> {
    let last_year = steps
        .last()
        .map(|s| s.date.year())
        .ok_or_else(|| Error::Data {
            reason: "no decision has enough history".into(),
        })?;
    let first = match first_test_year {
        Some(y) => y,
        None => (steps[0].date.year()..=last_year)
            .find(|y| {
                let ((a, b), _) = windows(*y);
                within(steps, a, b).len() >= MIN_TRAINING_STEPS
            })
            .ok_or_else(|| Error::Data {
                reason: format!(
                    "no year leaves {MIN_TRAINING_STEPS} weekly decisions to train on; the data is too short"
                ),
            })?,
    };
    let years: Vec<i32> = (first..=last_year + 1).collect();
    let mut folds = Vec::with_capacity(years.len());
    for (i, &year) in years.iter().enumerate() {
        progress(year, i, years.len());
        let ((_, train_to), (val_from, val_to)) = windows(year);
        let train_steps = within(steps, steps[0].date, train_to);
        let val_steps = within(steps, val_from, val_to);
        if train_steps.len() < MIN_TRAINING_STEPS || val_steps.is_empty() {
            return Err(Error::Data {
                reason: format!(
                    "fold {year}: {} training and {} validation weeks; it needs {MIN_TRAINING_STEPS} and 1 (start later with --first-test-year)",
                    train_steps.len(),
                    val_steps.len()
                ),
            });
        }
        let owned: Vec<Step> = train_steps.iter().map(|s| (*s).clone()).collect();
        let normaliser = Normaliser::fit(&owned);
        let mut trials = Vec::new();
        let mut nets: Vec<Vec<Mlp>> = Vec::new();
        for (g, settings) in grid.iter().enumerate() {
            let mut these = Vec::new();
            for &seed in seeds {
                let net = train(&train_steps, &normaliser, settings, seed);
                let path = rollout(&val_steps, Start::fresh(val_steps[0]), |_| {
                    (&net, &normaliser)
                });
                trials.push(Trial {
                    setting: g,
                    seed,
                    validation_sharpe: weekly_sharpe(&path.net(settings.cost_bps / 1e4), 0.0),
                });
                these.push(net);
            }
            nets.push(these);
        }
        let mean_of = |g: usize| {
            let v: Vec<f64> = trials
                .iter()
                .filter(|t| t.setting == g)
                .map(|t| t.validation_sharpe)
                .collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let chosen = (0..grid.len())
            .fold(None, |best: Option<(usize, f64)>, g| {
                let m = mean_of(g);
                match best {
                    Some((_, b)) if b >= m => best,
                    _ => Some((g, m)),
                }
            })
            .map_or(0, |(g, _)| g);
        let static_settings = Settings {
            hidden: 0,
            l2: 0.0,
            ..grid[chosen]
        };
        let fixed = train(&train_steps, &normaliser, &static_settings, 0);
        folds.push(Fold {
            test_year: year,
            train_from: train_steps[0].date,
            train_to,
            validation_from: val_from,
            validation_to: val_to,
            normaliser,
            trials,
            chosen,
            networks: nets.swap_remove(chosen),
            static_mix: softmax(&fixed.params),
        });
    }
    progress(last_year + 1, years.len(), years.len());
    Ok(Model {
        format: FORMAT.into(),
        bases: BASES.iter().map(|b| (*b).to_owned()).collect(),
        inputs: input_names(),
        data,
        esg: universe.data.clone(),
        constraints: universe.constraints.clone(),
        risk_free_rate: universe.risk_free_rate,
        grid: grid.to_vec(),
        seeds: seeds.to_vec(),
        embargo_weeks: EMBARGO_WEEKS,
        folds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_leave_an_embargo() {
        let ((_, train_to), (vf, vt)) = windows(2010);
        assert_eq!(vf, NaiveDate::from_ymd_opt(2009, 1, 1).unwrap());
        assert_eq!((vf - train_to).num_weeks(), EMBARGO_WEEKS);
        assert_eq!(
            (NaiveDate::from_ymd_opt(2010, 1, 1).unwrap() - vt).num_weeks(),
            EMBARGO_WEEKS
        );
    }
}
