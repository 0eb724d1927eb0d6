//! Covariance estimators, as PyPortfolioOpt's `risk_models` computes them.
//! All take simple returns (`T × n`) and return an annualised `n × n`
//! matrix (× 252).

use crate::expected_returns::ewm_last;
use crate::metrics::PERIODS_PER_YEAR;
use crate::returns::check_returns;
use crate::{Error, Matrix, Result};

/// Which covariance estimator to use.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "method")]
pub enum CovarianceMethod {
    /// Sample covariance × 252.
    Sample,
    /// Ledoit-Wolf shrinkage towards a constant-variance target.
    LedoitWolf,
    /// Exponentially weighted covariance.
    Exp {
        /// EMA span in periods (PyPortfolioOpt's default 180).
        span: f64,
    },
}

/// Default span of the exponentially weighted covariance.
pub const DEFAULT_COV_SPAN: f64 = 180.0;

/// Dispatches to the estimator chosen by `method`.
pub fn estimate_covariance(returns: &Matrix, method: CovarianceMethod) -> Result<Matrix> {
    match method {
        CovarianceMethod::Sample => sample_cov(returns),
        CovarianceMethod::LedoitWolf => ledoit_wolf(returns).map(|(c, _)| c),
        CovarianceMethod::Exp { span } => exp_cov(returns, span),
    }
}

fn column_means(x: &Matrix) -> Vec<f64> {
    let mut m = vec![0.0; x.cols()];
    for r in 0..x.rows() {
        for (acc, v) in m.iter_mut().zip(x.row(r)) {
            *acc += v;
        }
    }
    let t = x.rows() as f64;
    m.iter_mut().for_each(|v| *v /= t);
    m
}

/// Column-centred copy of `x`.
fn centred(x: &Matrix) -> Matrix {
    let m = column_means(x);
    let mut out = x.clone();
    for r in 0..x.rows() {
        for (c, mean) in m.iter().enumerate() {
            out.set(r, c, x.get(r, c) - mean);
        }
    }
    out
}

/// `Xᵀ X` of a `T × n` matrix (symmetric, `n × n`), through nalgebra's
/// blocked matrix product (a naive triple loop is ~10× slower at 500 assets).
fn gram(x: &Matrix) -> Matrix {
    let n = x.cols();
    // Row-major T × n data is column-major n × T data: that is Xᵀ, free.
    let xt = nalgebra::DMatrix::from_column_slice(n, x.rows(), x.as_slice());
    let g = &xt * xt.transpose();
    let mut out = Matrix::zeros(n, n);
    for i in 0..n {
        for j in i..n {
            // Average the two halves so the result is exactly symmetric.
            let v = 0.5 * (g[(i, j)] + g[(j, i)]);
            out.set(i, j, v);
            out.set(j, i, v);
        }
    }
    out
}

/// Un-annualised sample covariance (`T − 1` denominator).
pub(crate) fn raw_sample_cov(returns: &Matrix) -> Matrix {
    let g = gram(&centred(returns));
    let d = returns.rows() as f64 - 1.0;
    let n = g.rows();
    let data = g.as_slice().iter().map(|v| v / d).collect();
    Matrix::from_row_major(n, n, data).unwrap_or_else(|_| Matrix::zeros(n, n))
}

/// Sample covariance, PyPortfolioOpt `sample_cov`:
/// `Σ_ij = 252 / (T − 1) · Σ_t (r_ti − r̄_i)(r_tj − r̄_j)`.
pub fn sample_cov(returns: &Matrix) -> Result<Matrix> {
    check_returns(returns, 2)?;
    Ok(annualise(raw_sample_cov(returns)))
}

fn annualise(m: Matrix) -> Matrix {
    let (r, c) = (m.rows(), m.cols());
    let data = m.as_slice().iter().map(|v| v * PERIODS_PER_YEAR).collect();
    Matrix::from_row_major(r, c, data).unwrap_or_else(|_| Matrix::zeros(r, c))
}

/// Ledoit-Wolf shrinkage towards a scaled identity, PyPortfolioOpt
/// `CovarianceShrinkage.ledoit_wolf()` (which calls scikit-learn's
/// `ledoit_wolf`). Returns the annualised matrix and the shrinkage `δ`.
///
/// With `X` the column-centred returns (`T × n`), `S = XᵀX / T` (note: `T`,
/// not `T − 1`) and `μ = tr(S) / n`:
///
/// * `d² = (‖XᵀX‖²_F / T² − 2 μ tr(S) + n μ²) / n`,
/// * `b² = min(d², (Σ_ij ((X∘X)ᵀ(X∘X))_ij / T − ‖XᵀX‖²_F / T²) / (n T))`,
/// * `δ = b² / d²` (0 when `b² = 0`),
/// * `Σ = 252 · ((1 − δ) S + δ μ I)`.
pub fn ledoit_wolf(returns: &Matrix) -> Result<(Matrix, f64)> {
    check_returns(returns, 2)?;
    let x = centred(returns);
    let (t, n) = (x.rows() as f64, x.cols());
    let g = gram(&x);
    let mut x2 = x.clone();
    for r in 0..x2.rows() {
        for c in 0..n {
            let v = x2.get(r, c);
            x2.set(r, c, v * v);
        }
    }
    let g2 = gram(&x2);
    let emp_trace: Vec<f64> = (0..n).map(|i| g.get(i, i) / t).collect();
    let trace_sum: f64 = emp_trace.iter().sum();
    let mu = trace_sum / n as f64;
    let delta_raw: f64 = g.as_slice().iter().map(|v| v * v).sum::<f64>() / (t * t);
    let beta_raw: f64 = g2.as_slice().iter().sum();
    let beta = (beta_raw / t - delta_raw) / (n as f64 * t);
    let delta = (delta_raw - 2.0 * mu * trace_sum + n as f64 * mu * mu) / n as f64;
    let beta = beta.min(delta);
    let shrinkage = if beta == 0.0 { 0.0 } else { beta / delta };
    let mut out = Matrix::zeros(n, n);
    for i in 0..n {
        for j in 0..n {
            let mut v = (1.0 - shrinkage) * g.get(i, j) / t;
            if i == j {
                v += shrinkage * mu;
            }
            out.set(i, j, v * PERIODS_PER_YEAR);
        }
    }
    Ok((out, shrinkage))
}

/// Exponentially weighted covariance, PyPortfolioOpt `exp_cov`:
/// `Σ_ij = 252 · EWM_span((r_i − r̄_i)(r_j − r̄_j))` at the last date, where
/// `r̄` are the plain (unweighted) sample means and EWM is pandas'
/// `ewm(span).mean()` (`α = 2/(span+1)`, `adjust=True`).
///
/// PyPortfolioOpt then runs `fix_nonpositive_semidefinite`, which leaves a
/// positive semidefinite matrix unchanged (the estimator is a weighted sum
/// of outer products, so it is PSD up to rounding); we skip that step.
pub fn exp_cov(returns: &Matrix, span: f64) -> Result<Matrix> {
    check_returns(returns, 2)?;
    if !(span.is_finite() && span >= 1.0) {
        return Err(Error::InvalidParameter {
            name: "covariance span",
            value: span,
            reason: "must be at least 1",
            constraint: None,
        });
    }
    let x = centred(returns);
    let n = x.cols();
    let cols: Vec<Vec<f64>> = (0..n).map(|c| x.column(c)).collect();
    let mut out = Matrix::zeros(n, n);
    let mut prod = vec![0.0; x.rows()];
    for i in 0..n {
        for j in i..n {
            for (p, (a, b)) in prod.iter_mut().zip(cols[i].iter().zip(&cols[j])) {
                *p = a * b;
            }
            let v = ewm_last(&prod, span) * PERIODS_PER_YEAR;
            out.set(i, j, v);
            out.set(j, i, v);
        }
    }
    Ok(out)
}
