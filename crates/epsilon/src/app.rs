//! What `ultracore epsilon train` and `… backtest` do, without the
//! command line: load the prices, build the universe, compute the steps,
//! train or test.

use std::path::Path;
use std::time::Instant;

use ultracore_marketdata::mesh::synthetic_esg;
use ultracore_portfolio::{EsgConstraints, EsgData};

use crate::backtest::{self, Backtest};
use crate::base::Universe;
use crate::data::Panel;
use crate::features::EsgInputs;
use crate::model::{default_grid, walk_forward, DataInfo, Model, DEFAULT_SEEDS};
use crate::train::{build_steps, Step};
use crate::{Error, Result};

/// The constraints the backtest applies when none are given: the demo
/// request's (minimum ESG score 60, carbon at most 150, flagged issuers
/// excluded, at most 25 % per asset); on a universe of fewer than eight
/// assets, at most 40 % per asset and no score or carbon limit.
pub fn default_constraints(assets: usize) -> EsgConstraints {
    if assets >= 8 {
        EsgConstraints {
            min_esg_score: Some(60.0),
            max_carbon_intensity: Some(150.0),
            exclude_flagged: true,
            weight_bounds: (0.0, 0.25),
            ..EsgConstraints::default()
        }
    } else {
        EsgConstraints {
            weight_bounds: (0.0, 0.4),
            ..EsgConstraints::default()
        }
    }
}

/// The universe of a panel: its tickers with the shipped (synthetic) ESG
/// records.
pub fn universe(panel: &Panel, constraints: EsgConstraints, risk_free_rate: f64) -> Universe {
    let as_of = *panel.dates.last().expect("a panel has dates");
    let records: Vec<_> = panel
        .tickers
        .iter()
        .map(|t| synthetic_esg(t, as_of))
        .collect();
    Universe {
        data: EsgData {
            names: panel.tickers.clone(),
            esg_score: records.iter().map(|r| r.esg_score).collect(),
            carbon_intensity: records.iter().map(|r| r.carbon_intensity).collect(),
            sector: records.iter().map(|r| r.sector.clone()).collect(),
            flagged: records.iter().map(|r| r.controversy_flag).collect(),
        },
        constraints,
        risk_free_rate,
    }
}

pub fn esg_inputs(u: &Universe) -> EsgInputs {
    EsgInputs {
        esg_score: u.data.esg_score.clone(),
        carbon_intensity: u.data.carbon_intensity.clone(),
        min_esg_score: u.constraints.min_esg_score,
        max_carbon_intensity: u.constraints.max_carbon_intensity,
    }
}

/// What training took.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainStats {
    pub steps: usize,
    pub folds: usize,
    pub networks_trained: usize,
    pub steps_seconds: f64,
    pub training_seconds: f64,
}

/// Options of a training run.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub seeds: Vec<u64>,
    pub first_test_year: Option<i32>,
    pub constraints: Option<EsgConstraints>,
    pub risk_free_rate: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            seeds: DEFAULT_SEEDS.to_vec(),
            first_test_year: Some(2000),
            constraints: None,
            risk_free_rate: 0.02,
        }
    }
}

fn data_info(path: &Path, panel: &Panel) -> DataInfo {
    DataInfo {
        file: path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        ),
        sha256: panel.sha256.clone(),
        tickers: panel.tickers.clone(),
        first_date: panel.dates[0],
        last_date: *panel.dates.last().expect("a panel has dates"),
    }
}

/// Computes every weekly step of a panel under the constraints, reporting
/// progress every tenth of the way.
pub fn steps_for(
    panel: &Panel,
    universe: &Universe,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Step>> {
    let mut last = 0;
    build_steps(panel, universe, &esg_inputs(universe), |done, total| {
        let pct = done * 100 / total.max(1);
        if pct >= last + 10 || done == total {
            last = pct;
            progress(&format!(
                "base portfolios and features: {done}/{total} weeks"
            ));
        }
    })
}

/// Trains a model on a price file (see [`crate::model`]).
pub fn train(
    prices: &Path,
    options: &TrainOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<(Model, TrainStats)> {
    let panel = Panel::read(prices)?;
    let constraints = options
        .constraints
        .clone()
        .unwrap_or_else(|| default_constraints(panel.assets()));
    let u = universe(&panel, constraints, options.risk_free_rate);
    let started = Instant::now();
    let steps = steps_for(&panel, &u, progress)?;
    let steps_seconds = started.elapsed().as_secs_f64();
    let grid = default_grid();
    let started = Instant::now();
    let mut first_year = None;
    let model = walk_forward(
        &steps,
        data_info(prices, &panel),
        &u,
        &grid,
        &options.seeds,
        options.first_test_year,
        &mut |year, done, total| {
            first_year.get_or_insert(year);
            if done < total {
                progress(&format!(
                    "fold {}/{total}: test year {year} ({} networks)",
                    done + 1,
                    grid.len() * options.seeds.len()
                ));
            }
        },
    )?;
    let stats = TrainStats {
        steps: steps.len(),
        folds: model.folds.len(),
        networks_trained: model.folds.len() * (grid.len() * options.seeds.len() + 1),
        steps_seconds,
        training_seconds: started.elapsed().as_secs_f64(),
    };
    Ok((model, stats))
}

/// Backtests a model on its price file (the data's hash must match the
/// model's) at `cost_bps`.
pub fn run_backtest(
    model: &Model,
    prices: &Path,
    cost_bps: f64,
    progress: &mut dyn FnMut(&str),
) -> Result<Backtest> {
    let panel = Panel::read(prices)?;
    if panel.sha256 != model.data.sha256 {
        return Err(Error::Model {
            reason: format!(
                "{} is not the data the model was trained on (SHA-256 {} vs the model's {} for {}); pass the model's file with --prices, or train a model on this one",
                prices.display(),
                panel.sha256,
                model.data.sha256,
                model.data.file
            ),
        });
    }
    let u = universe(&panel, model.constraints.clone(), model.risk_free_rate);
    let steps = steps_for(&panel, &u, progress)?;
    backtest::run(model, &steps, &u, cost_bps)
}
