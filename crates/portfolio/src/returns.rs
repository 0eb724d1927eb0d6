//! Simple returns from prices, and portfolio returns.

use crate::{Error, Matrix, Result};

/// Simple (arithmetic) returns `r[t][j] = p[t+1][j] / p[t][j] − 1`,
/// pandas' `pct_change().dropna()` on a gap-free price matrix.
///
/// Needs at least two price rows. Prices must be finite and strictly
/// positive: a NaN or non-positive price is an error (the data layer aligns
/// and cleans; silently dropping here would shift dates between assets).
pub fn returns_from_prices(prices: &Matrix) -> Result<Matrix> {
    if prices.rows() < 2 {
        return Err(Error::TooFewObservations {
            what: "price rows",
            needed: 2,
            got: prices.rows(),
        });
    }
    prices.check_finite("price")?;
    let (rows, cols) = (prices.rows(), prices.cols());
    let mut out = Matrix::zeros(rows - 1, cols);
    for c in 0..cols {
        for r in 0..rows {
            let p = prices.get(r, c);
            if p <= 0.0 {
                return Err(Error::NonPositivePrice {
                    row: r,
                    column: c,
                    value: p,
                });
            }
        }
    }
    for r in 1..rows {
        for c in 0..cols {
            out.set(r - 1, c, prices.get(r, c) / prices.get(r - 1, c) - 1.0);
        }
    }
    Ok(out)
}

/// Returns of a portfolio rebalanced to `weights` every period: `R · w`.
pub fn portfolio_returns(returns: &Matrix, weights: &[f64]) -> Result<Vec<f64>> {
    returns.mul_vec(weights)
}

/// Equal-weighted portfolio returns (the row means), PyPortfolioOpt's market
/// proxy for CAPM when no benchmark is given.
pub fn equal_weight_returns(returns: &Matrix) -> Vec<f64> {
    let n = returns.cols() as f64;
    (0..returns.rows())
        .map(|r| returns.row(r).iter().sum::<f64>() / n)
        .collect()
}

/// Checks a returns matrix has enough finite rows for estimators.
pub(crate) fn check_returns(returns: &Matrix, needed: usize) -> Result<()> {
    if returns.rows() < needed {
        return Err(Error::TooFewObservations {
            what: "returns",
            needed,
            got: returns.rows(),
        });
    }
    if returns.cols() == 0 {
        return Err(Error::DimensionMismatch {
            what: "returns columns",
            expected: 1,
            got: 0,
        });
    }
    returns.check_finite("return")
}
