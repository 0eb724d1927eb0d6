//! Covariance estimators, as PyPortfolioOpt's `risk_models` computes them.
//! All take simple returns (`T × n`) and return an annualised `n × n`
//! matrix (× 252).

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

/// Multiply-adds of a product from which GEMM runs on every core: below
/// it (the 20-asset universe: 0.5 M) waking the thread pool costs more
/// than it saves.
const PARALLEL_FROM: usize = 4_000_000;

/// `α (X − 1x̄ᵀ)ᵀ D (X − 1x̄ᵀ)` of a `T × n` row-major matrix `X` with
/// column means `x̄` and `D = diag(weights)` (all ones when `None`): the
/// (weighted) centred cross-product, symmetric `n × n`. Computed through
/// faer's SIMD GEMM (AVX-512 where the CPU has it; multi-threaded for
/// large products) on a centred copy; only the lower triangle is computed
/// (half the multiply-adds) and mirrored, so the result is exactly
/// symmetric.
fn centred_gram(x: &Matrix, weights: Option<&[f64]>, alpha: f64) -> Matrix {
    use faer::linalg::matmul::triangular::{matmul, BlockStructure};
    let (t, n) = (x.rows(), x.cols());
    let means = column_means(x);
    let par = if n * n * t >= PARALLEL_FROM {
        faer::Par::rayon(0)
    } else {
        faer::Par::Seq
    };
    let mut centred = Vec::with_capacity(t * n);
    for r in 0..t {
        let s = weights.map_or(1.0, |w| w[r].sqrt());
        centred.extend(x.row(r).iter().zip(&means).map(|(v, m)| (v - m) * s));
    }
    let xr = faer::MatRef::from_row_major_slice(&centred, t, n);
    let mut out = vec![0.0; n * n];
    matmul(
        faer::MatMut::from_row_major_slice_mut(&mut out, n, n),
        BlockStructure::TriangularLower,
        faer::Accum::Replace,
        xr.transpose(),
        BlockStructure::Rectangular,
        xr,
        BlockStructure::Rectangular,
        alpha,
        par,
    );
    mirror_lower(&mut out, n);
    Matrix::from_row_major(n, n, out).unwrap_or_else(|_| Matrix::zeros(n, n))
}

/// Copies the lower triangle of a row-major `n × n` matrix onto its upper
/// triangle, in tiles that stay in cache for large `n`.
fn mirror_lower(m: &mut [f64], n: usize) {
    const TILE: usize = 64;
    for i0 in (0..n).step_by(TILE) {
        for j0 in (0..=i0).step_by(TILE) {
            for i in i0..(i0 + TILE).min(n) {
                for j in j0..(j0 + TILE).min(i) {
                    m[j * n + i] = m[i * n + j];
                }
            }
        }
    }
}

/// Un-annualised sample covariance (`T − 1` denominator).
pub(crate) fn raw_sample_cov(returns: &Matrix) -> Matrix {
    centred_gram(returns, None, 1.0 / (returns.rows() as f64 - 1.0))
}

/// Sample covariance, PyPortfolioOpt `sample_cov`:
/// `Σ_ij = 252 / (T − 1) · Σ_t (r_ti − r̄_i)(r_tj − r̄_j)`.
pub fn sample_cov(returns: &Matrix) -> Result<Matrix> {
    check_returns(returns, 2)?;
    let alpha = PERIODS_PER_YEAR / (returns.rows() as f64 - 1.0);
    Ok(centred_gram(returns, None, alpha))
}

/// Ledoit-Wolf shrinkage towards a scaled identity, PyPortfolioOpt
/// `CovarianceShrinkage.ledoit_wolf()` (which calls scikit-learn's
/// `ledoit_wolf`). Returns the annualised matrix and the shrinkage `δ`.
///
/// With `X` the column-centred returns (`T × n`), `S = XᵀX / T` (note: `T`,
/// not `T − 1`) and `μ = tr(S) / n`:
///
/// * `d² = (‖XᵀX‖²_F / T² − 2 μ tr(S) + n μ²) / n`,
/// * `b² = min(d², (Σ_ij ((X∘X)ᵀ(X∘X))_ij / T − ‖XᵀX‖²_F / T²) / (n T))`
///   (the sum is `Σ_t (Σ_i x_ti²)²`),
/// * `δ = b² / d²` (0 when `b² = 0`),
/// * `Σ = 252 · ((1 − δ) S + δ μ I)`.
pub fn ledoit_wolf(returns: &Matrix) -> Result<(Matrix, f64)> {
    check_returns(returns, 2)?;
    let (t, n) = (returns.rows() as f64, returns.cols());
    let g = centred_gram(returns, None, 1.0);
    // Σ_ij ((X∘X)ᵀ(X∘X))_ij = Σ_t (Σ_i x_ti²)²: one pass over X instead
    // of a second n × n product.
    let means = column_means(returns);
    let beta_raw: f64 = (0..returns.rows())
        .map(|r| {
            let row = returns.row(r);
            let sq: f64 = row.iter().zip(&means).map(|(v, m)| (v - m) * (v - m)).sum();
            sq * sq
        })
        .sum();
    let emp_trace: Vec<f64> = (0..n).map(|i| g.get(i, i) / t).collect();
    let trace_sum: f64 = emp_trace.iter().sum();
    let mu = trace_sum / n as f64;
    let delta_raw: f64 = g.as_slice().iter().map(|v| v * v).sum::<f64>() / (t * t);
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
    // pandas' adjusted EWM at the last date is a weighted mean with
    // weights (1 − α)^(T−1−t): the weighted sum of outer products.
    let t = returns.rows();
    let decay = 1.0 - 2.0 / (span + 1.0);
    let mut weights = vec![0.0; t];
    let mut w = 1.0;
    for v in weights.iter_mut().rev() {
        *v = w;
        w *= decay;
    }
    let den: f64 = weights.iter().sum();
    Ok(centred_gram(
        returns,
        Some(&weights),
        PERIODS_PER_YEAR / den,
    ))
}
