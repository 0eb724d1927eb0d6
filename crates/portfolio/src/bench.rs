//! Timing entry points for `ultracore bench optimize`.
//!
//! Synthetic data comes from a fixed-seed factor model driven by SplitMix64
//! and Box-Muller, so runs are reproducible without a random-number crate.
//! Figures, and the same work timed in PyPortfolioOpt and numpy in the same
//! run (`--vs-python`), are in the README.

use std::time::{Duration, Instant};

use crate::{
    exp_cov, frontier_targets, ledoit_wolf, mean_historical_return, returns_from_prices,
    sample_cov, EfficientFrontier, Matrix, Objective, Result, DEFAULT_COV_SPAN,
};

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    /// Timed runs per case; the median is reported.
    pub runs: usize,
    /// Asset counts of the synthetic universes.
    pub synthetic_assets: Vec<usize>,
    /// Daily observations of the synthetic universes.
    pub synthetic_observations: usize,
    /// PRNG seed for the synthetic universes.
    pub seed: u64,
    /// Universes up to this many assets are optimized too; larger ones
    /// only get the covariance estimators.
    pub optimize_up_to_assets: usize,
    /// Points of the efficient-frontier case (0: no frontier case).
    pub frontier_points: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            runs: 21,
            synthetic_assets: vec![100, 500, 2000],
            synthetic_observations: 1260,
            seed: 42,
            optimize_up_to_assets: 500,
            frontier_points: 100,
        }
    }
}

/// Timings of one case.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BenchCase {
    /// `"sample-covariance"`, `"ledoit-wolf"`, `"exp-covariance"`,
    /// `"max-sharpe"`, `"efficient-risk"`, `"frontier"`.
    pub case: String,
    /// Data set: `"real"` or `"synthetic"`.
    pub data: String,
    /// Assets.
    pub assets: usize,
    /// Return observations.
    pub observations: usize,
    /// Median wall time.
    #[serde(serialize_with = "ser_ms")]
    pub median: Duration,
    /// Fastest run.
    #[serde(serialize_with = "ser_ms")]
    pub min: Duration,
    /// Timed runs.
    pub runs: usize,
    /// Solver iterations (0 for estimators; summed over a frontier's points).
    pub iterations: u32,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

/// A universe to time: its name, data set and daily returns.
#[derive(Debug, Clone)]
pub struct Universe {
    /// `"real-20"`, `"synthetic-500"`, …
    pub name: String,
    /// `"real"` or `"synthetic"`.
    pub data: String,
    /// `observations × assets` simple returns.
    pub returns: Matrix,
}

/// The universes of a run: `real_prices` (if given; e.g. the shipped 20
/// S&P 500 stocks, `observations × assets`) and the synthetic ones.
pub fn universes(real_prices: Option<&Matrix>, options: &BenchOptions) -> Result<Vec<Universe>> {
    let mut out = Vec::new();
    if let Some(prices) = real_prices {
        let returns = returns_from_prices(prices)?;
        out.push(Universe {
            name: format!("real-{}", returns.cols()),
            data: "real".into(),
            returns,
        });
    }
    for &n in &options.synthetic_assets {
        out.push(Universe {
            name: format!("synthetic-{n}"),
            data: "synthetic".into(),
            returns: synthetic_returns(n, options.synthetic_observations, options.seed),
        });
    }
    Ok(out)
}

/// Runs every case on every universe of [`universes`].
pub fn bench_optimize(
    real_prices: Option<&Matrix>,
    options: &BenchOptions,
) -> Result<Vec<BenchCase>> {
    let mut out = Vec::new();
    for u in universes(real_prices, options)? {
        out.extend(bench_universe(&u, options)?);
    }
    Ok(out)
}

/// The problems a universe is optimized on, built as the bench builds
/// them (for a reference implementation to solve the same ones).
#[derive(Debug, Clone)]
pub struct Problems {
    /// Mean historical returns (compounded) and the sample covariance.
    pub frontier: EfficientFrontier,
    /// Efficient risk's target: 30 % of the way from the minimum-volatility
    /// portfolio's volatility to the maximum-return portfolio's.
    pub efficient_risk_target: f64,
    /// The frontier's target returns between its two ends.
    pub frontier_targets: Vec<f64>,
}

/// See [`Problems`].
pub fn problems(returns: &Matrix, frontier_points: usize) -> Result<Problems> {
    let mu = mean_historical_return(returns, true)?;
    let ef = EfficientFrontier::new(mu, sample_cov(returns)?)?;
    let min = ef.min_volatility()?;
    let max = ef.max_return()?;
    let target = min.volatility + 0.3 * (max.volatility - min.volatility);
    Ok(Problems {
        efficient_risk_target: target,
        frontier_targets: frontier_targets(
            min.expected_return,
            max.expected_return,
            frontier_points.max(2),
        ),
        frontier: ef,
    })
}

/// Cases for one universe: the covariance estimators, then (up to
/// `optimize_up_to_assets`) max Sharpe, efficient risk (see [`Problems`])
/// and the efficient frontier of `frontier_points` points in one call.
pub fn bench_universe(u: &Universe, options: &BenchOptions) -> Result<Vec<BenchCase>> {
    let returns = &u.returns;
    let runs = options.runs.max(1);
    let (n, t) = (returns.cols(), returns.rows());
    let case =
        |name: &str, (median, min, runs, iterations): (Duration, Duration, usize, u32)| BenchCase {
            case: name.to_string(),
            data: u.data.clone(),
            assets: n,
            observations: t,
            median,
            min,
            runs,
            iterations,
        };
    let mut out = vec![
        case(
            "sample-covariance",
            time(runs, || sample_cov(returns).map(|_| 0))?,
        ),
        case(
            "ledoit-wolf",
            time(runs, || ledoit_wolf(returns).map(|_| 0))?,
        ),
        case(
            "exp-covariance",
            time(runs, || exp_cov(returns, DEFAULT_COV_SPAN).map(|_| 0))?,
        ),
    ];
    if n > options.optimize_up_to_assets {
        return Ok(out);
    }
    let p = problems(returns, options.frontier_points)?;
    let ef = &p.frontier;
    out.push(case(
        "max-sharpe",
        time(runs, || {
            ef.optimize(Objective::MaxSharpe).map(|p| p.iterations)
        })?,
    ));
    let objective = Objective::EfficientRisk {
        target_volatility: p.efficient_risk_target,
    };
    out.push(case(
        "efficient-risk",
        time(runs, || ef.optimize(objective).map(|p| p.iterations))?,
    ));
    if options.frontier_points >= 2 {
        out.push(case(
            "frontier",
            time(runs.min(7), || {
                ef.frontier(options.frontier_points)
                    .map(|f| f.points.len() as u32)
            })?,
        ));
    }
    Ok(out)
}

fn time(
    runs: usize,
    mut f: impl FnMut() -> Result<u32>,
) -> Result<(Duration, Duration, usize, u32)> {
    let mut iterations = f()?; // warm-up: page in code and allocator state
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        iterations = f()?;
        samples.push(start.elapsed());
    }
    samples.sort();
    Ok((samples[samples.len() / 2], samples[0], runs, iterations))
}

pub use ultracore_rng::SplitMix64;

/// Daily returns (`observations × assets`) from a 3-factor model:
/// `r_ti = α_i + Σ_k β_ik f_tk + ε_ti`, market factor volatility 1 % a day,
/// two style factors at 0.5 %, idiosyncratic volatility 1–2.5 %, and
/// drifts `α_i` between −5 % and +25 % a year. Deterministic in `seed`.
pub fn synthetic_returns(assets: usize, observations: usize, seed: u64) -> Matrix {
    let mut rng = SplitMix64::new(seed);
    let factor_vol = [0.01, 0.005, 0.005];
    let betas: Vec<[f64; 3]> = (0..assets)
        .map(|_| {
            [
                0.6 + 0.8 * rng.uniform(),
                rng.normal() * 0.5,
                rng.normal() * 0.5,
            ]
        })
        .collect();
    let alpha: Vec<f64> = (0..assets)
        .map(|_| (-0.05 + 0.30 * rng.uniform()) / 252.0)
        .collect();
    let idio: Vec<f64> = (0..assets).map(|_| 0.01 + 0.015 * rng.uniform()).collect();
    let mut data = Vec::with_capacity(assets * observations);
    for _ in 0..observations {
        let f: Vec<f64> = factor_vol.iter().map(|v| v * rng.normal()).collect();
        for i in 0..assets {
            let common: f64 = betas[i].iter().zip(&f).map(|(b, x)| b * x).sum();
            data.push(alpha[i] + common + idio[i] * rng.normal());
        }
    }
    Matrix::from_row_major(observations, assets, data)
        .unwrap_or_else(|_| Matrix::zeros(observations, assets))
}
