//! Timing entry points for `ultracore bench optimize`.
//!
//! Synthetic data comes from a fixed-seed factor model driven by SplitMix64
//! and Box-Muller, so runs are reproducible without a random-number crate.
//!
//! Medians measured on the 2-core development machine with
//! `cargo run --release -p ultracore-portfolio --example bench_optimize`
//! (1,260 daily returns each):
//!
//! | assets | sample cov | Ledoit-Wolf | max Sharpe | efficient risk |
//! |---|---|---|---|---|
//! | 20 (S&P 500 sample) | 0.09 ms | 0.17 ms | 0.22 ms | 0.33 ms |
//! | 100 (synthetic) | 1.3 ms | 3.0 ms | 1.0 ms | 1.2 ms |
//! | 500 (synthetic) | 13 ms | 27 ms | 3.4 ms | 2.3 ms |
//!
//! The large universes are fast because of the working-set solve (see
//! `optimizer/working_set.rs`); solving all 500 assets at once took about
//! 150 ms (max Sharpe) and 800 ms (efficient risk).

use std::time::{Duration, Instant};

use crate::{
    ledoit_wolf, mean_historical_return, returns_from_prices, sample_cov, EfficientFrontier,
    Matrix, Objective, Result,
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
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            runs: 21,
            synthetic_assets: vec![100, 500],
            synthetic_observations: 1260,
            seed: 42,
        }
    }
}

/// Timings of one case.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BenchCase {
    /// `"max-sharpe"`, `"efficient-risk"`, `"sample-covariance"`, `"ledoit-wolf"`.
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
    /// Solver iterations (0 for estimators).
    pub iterations: u32,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

/// Runs every case on `real_prices` (if given; e.g. the shipped 20 S&P 500
/// stocks, `observations × assets`) and on the synthetic universes.
pub fn bench_optimize(
    real_prices: Option<&Matrix>,
    options: &BenchOptions,
) -> Result<Vec<BenchCase>> {
    let mut out = Vec::new();
    if let Some(prices) = real_prices {
        let returns = returns_from_prices(prices)?;
        out.extend(bench_universe(&returns, "real", options.runs)?);
    }
    for &n in &options.synthetic_assets {
        let returns = synthetic_returns(n, options.synthetic_observations, options.seed);
        out.extend(bench_universe(&returns, "synthetic", options.runs)?);
    }
    Ok(out)
}

/// Cases for one universe: covariance estimation, max-Sharpe and
/// efficient-risk (target 30 % of the way from the minimum-volatility
/// portfolio's volatility to the maximum-return portfolio's).
pub fn bench_universe(returns: &Matrix, data: &str, runs: usize) -> Result<Vec<BenchCase>> {
    let runs = runs.max(1);
    let (n, t) = (returns.cols(), returns.rows());
    let case = |name: &str, (median, min, iterations): (Duration, Duration, u32)| BenchCase {
        case: name.to_string(),
        data: data.to_string(),
        assets: n,
        observations: t,
        median,
        min,
        iterations,
    };
    let mut out = Vec::new();
    out.push(case(
        "sample-covariance",
        time(runs, || sample_cov(returns).map(|_| 0))?,
    ));
    out.push(case(
        "ledoit-wolf",
        time(runs, || ledoit_wolf(returns).map(|_| 0))?,
    ));
    let mu = mean_historical_return(returns, true)?;
    let ef = EfficientFrontier::new(mu, sample_cov(returns)?)?;
    out.push(case(
        "max-sharpe",
        time(runs, || {
            ef.optimize(Objective::MaxSharpe).map(|p| p.iterations)
        })?,
    ));
    let lo = ef.min_volatility()?.volatility;
    let hi = ef.max_return()?.volatility;
    let target = lo + 0.3 * (hi - lo);
    let objective = Objective::EfficientRisk {
        target_volatility: target,
    };
    out.push(case(
        "efficient-risk",
        time(runs, || ef.optimize(objective).map(|p| p.iterations))?,
    ));
    Ok(out)
}

fn time(runs: usize, mut f: impl FnMut() -> Result<u32>) -> Result<(Duration, Duration, u32)> {
    let mut iterations = f()?; // warm-up: page in code and allocator state
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        iterations = f()?;
        samples.push(start.elapsed());
    }
    samples.sort();
    Ok((samples[samples.len() / 2], samples[0], iterations))
}

/// SplitMix64: tiny, fast and good enough for test data; the one seeded
/// generator behind every synthetic input of `ultracore bench`.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Daily returns (`observations × assets`) from a 3-factor model:
/// `r_ti = α_i + Σ_k β_ik f_tk + ε_ti`, market factor volatility 1 % a day,
/// two style factors at 0.5 %, idiosyncratic volatility 1–2.5 %, and
/// drifts `α_i` between −5 % and +25 % a year. Deterministic in `seed`.
pub fn synthetic_returns(assets: usize, observations: usize, seed: u64) -> Matrix {
    let mut rng = SplitMix64(seed);
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
