//! The base portfolios the agent mixes, each solved by the convex
//! optimizer under the request's own constraints, so every one of them is
//! feasible and so is any convex combination of them.
//!
//! 1. **ESG-projected 1/N**: the feasible portfolio closest to 1/N.
//! 2. **Minimum variance** with the Ledoit-Wolf covariance.
//! 3. **Maximum Sharpe** with shrunk means: Jorion's (1986) Bayes-Stein
//!    estimator, which pulls each sample mean towards the mean of the
//!    minimum-variance portfolio by `δ = (n + 2) / (n + 2 + T·dᵀΣ⁻¹d)`.
//!    Where no feasible portfolio beats the risk-free rate after costs,
//!    the minimum-variance portfolio stands in.
//! 4. **ESG-projected inverse volatility**: the feasible portfolio
//!    closest to `wᵢ ∝ 1/σᵢ`.
//!
//! The estimates use the trailing [`LOOKBACK`] days of returns (three
//! years), or everything before the decision when there is less.

use ultracore_portfolio::{
    ledoit_wolf, EsgConstraints, EsgData, EsgObjective, EsgOptimizer, Matrix, PERIODS_PER_YEAR,
};

use crate::features::{cholesky, cholesky_solve};
use crate::{Error, Result};

pub const BASES: [&str; 4] = [
    "esg_equal_weight",
    "min_variance",
    "max_sharpe",
    "inverse_volatility",
];

/// Daily returns the estimators look back on.
pub const LOOKBACK: usize = 756;

/// Where the bases come from: the universe's ESG data, the request's
/// constraints and the risk-free rate.
#[derive(Debug, Clone)]
pub struct Universe {
    pub data: EsgData,
    pub constraints: EsgConstraints,
    pub risk_free_rate: f64,
}

/// The base portfolios of one decision, in [`BASES`] order.
pub type Bases = [Vec<f64>; 4];

impl Universe {
    pub fn assets(&self) -> usize {
        self.data.names.len()
    }

    /// Solves the bases from a window of daily returns (`T × n`, oldest
    /// first), against the current weights (for a turnover limit).
    pub fn bases(&self, window: &Matrix, current: &[f64]) -> Result<Bases> {
        let n = self.assets();
        if window.cols() != n || window.rows() < 60 {
            return Err(Error::Data {
                reason: format!(
                    "base portfolios need at least 60 days of returns of {n} assets (got {} × {})",
                    window.rows(),
                    window.cols()
                ),
            });
        }
        let (cov, _) = ledoit_wolf(window)?;
        let mu = bayes_stein_means(window)?;
        let opt = EsgOptimizer::new(
            &mu,
            &cov,
            current.to_vec(),
            &self.data,
            self.constraints.clone(),
            self.risk_free_rate,
        )?;
        let equal = opt.closest(&vec![1.0 / n as f64; n])?;
        let min_variance = opt.weights(EsgObjective::MinVolatility)?;
        let max_sharpe = match opt.weights(EsgObjective::MaxSharpe) {
            Ok(w) => w,
            Err(ultracore_portfolio::Error::InfeasibleConstraints {
                constraint: ultracore_portfolio::Constraint::RiskFreeRate,
                ..
            }) => min_variance.clone(),
            Err(e) => return Err(e.into()),
        };
        let inv: Vec<f64> = (0..n)
            .map(|i| 1.0 / cov.get(i, i).max(1e-12).sqrt())
            .collect();
        let total: f64 = inv.iter().sum();
        let inverse_vol = opt.closest(&inv.iter().map(|v| v / total).collect::<Vec<f64>>())?;
        Ok([
            clean(equal),
            clean(min_variance),
            clean(max_sharpe),
            clean(inverse_vol),
        ])
    }
}

/// Solver output rounded at 1e-10 below zero, so a weight of −1e-12 reads 0
/// (the constraints hold to the solver's tolerance either way).
fn clean(mut w: Vec<f64>) -> Vec<f64> {
    for v in &mut w {
        if v.abs() < 1e-10 {
            *v = 0.0;
        }
    }
    w
}

/// Jorion's Bayes-Stein means of daily returns, annualised (× 252): the
/// sample means shrunk towards the minimum-variance portfolio's mean.
pub fn bayes_stein_means(window: &Matrix) -> Result<Vec<f64>> {
    let (t, n) = (window.rows(), window.cols());
    let mean: Vec<f64> = (0..n)
        .map(|i| (0..t).map(|r| window.get(r, i)).sum::<f64>() / t as f64)
        .collect();
    // Sample covariance (T − 1).
    let mut s = vec![0.0; n * n];
    for r in 0..t {
        let row = window.row(r);
        for i in 0..n {
            let a = row[i] - mean[i];
            for j in 0..=i {
                s[i * n + j] += a * (row[j] - mean[j]);
            }
        }
    }
    let mut trace = 0.0;
    for i in 0..n {
        for j in 0..=i {
            s[i * n + j] /= (t - 1) as f64;
            s[j * n + i] = s[i * n + j];
        }
        trace += s[i * n + i];
    }
    for i in 0..n {
        s[i * n + i] += 1e-8 * trace / n as f64;
    }
    let l = cholesky(&s, n).ok_or_else(|| Error::Data {
        reason: "the returns' covariance is not positive definite".into(),
    })?;
    let ones = vec![1.0; n];
    let inv_ones = cholesky_solve(&l, n, &ones);
    let mu0 = crate::features::dot(&inv_ones, &mean) / inv_ones.iter().sum::<f64>();
    let d: Vec<f64> = mean.iter().map(|m| m - mu0).collect();
    let inv_d = cholesky_solve(&l, n, &d);
    let q = crate::features::dot(&d, &inv_d);
    let delta = (n as f64 + 2.0) / (n as f64 + 2.0 + t as f64 * q);
    Ok(mean
        .iter()
        .map(|m| ((1.0 - delta) * m + delta * mu0) * PERIODS_PER_YEAR)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bayes_stein_shrinks_towards_a_common_mean() {
        let mut rng = crate::SplitMix64::new(11);
        let rows: Vec<Vec<f64>> = (0..300)
            .map(|_| {
                (0..4)
                    .map(|i| 0.0005 * i as f64 + 0.01 * (rng.next_f64() - 0.5))
                    .collect()
            })
            .collect();
        let m = Matrix::from_rows(&rows).unwrap();
        let shrunk = bayes_stein_means(&m).unwrap();
        let sample: Vec<f64> = (0..4)
            .map(|i| m.column(i).iter().sum::<f64>() / 300.0 * 252.0)
            .collect();
        let spread = |v: &[f64]| {
            v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min)
        };
        assert!(spread(&shrunk) < spread(&sample));
        assert!(spread(&shrunk) > 0.0);
        // The order of the means is kept.
        for i in 1..4 {
            assert_eq!(
                shrunk[i] > shrunk[i - 1],
                sample[i] > sample[i - 1],
                "{shrunk:?} {sample:?}"
            );
        }
    }
}
