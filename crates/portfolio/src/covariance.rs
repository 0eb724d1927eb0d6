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

/// Multiply-adds from which the product runs on every core: below it (the
/// 20-asset universe: 0.5 M) waking threads costs more than it saves.
const PARALLEL_FROM: usize = 4_000_000;
/// Multiply-adds from which the lower triangle is cut into one band of rows
/// per core, each a single-threaded product (2,000 assets: 10 % faster on
/// two cores than faer's own split of the triangle; 500 assets: slower).
const BANDS_FROM: usize = 1_000_000_000;

/// `α (X − 1x̄ᵀ)ᵀ D (X − 1x̄ᵀ)` of a `T × n` row-major matrix `X` with
/// column means `x̄` (`means`: Ledoit-Wolf uses them again) and `D = diag(weights)` (all ones when `None`): the
/// (weighted) centred cross-product, symmetric `n × n`, through faer's
/// SIMD GEMM (AVX-512 where the CPU has it). Only the lower triangle is
/// computed (half the multiply-adds) and mirrored, so the result is
/// exactly symmetric.
///
/// Unweighted, the product is taken of `X` as it is and centred after:
/// `α (XᵀX − T x̄x̄ᵀ)`, with no centred copy of the data. That loses to
/// rounding what the means take of the raw second moments, nothing for
/// returns (a mean far below its volatility); a column whose mean exceeds
/// its standard deviation is centred first instead.
fn centred_gram(x: &Matrix, means: &[f64], weights: Option<&[f64]>, alpha: f64) -> Matrix {
    let (t, n) = (x.rows(), x.cols());
    let mut out = vec![0.0; n * n];
    if weights.is_none() {
        lower_product(x.as_slice(), t, n, alpha, &mut out);
        // out_ii = α Σ_t x_ti²; the mean is at most the (biased) standard
        // deviation when T x̄_i² ≤ Σ_t x_ti² / 2.
        let tf = t as f64;
        if (0..n).all(|i| alpha * tf * means[i] * means[i] <= 0.5 * out[i * n + i]) {
            centre_and_mirror(&mut out, n, means, alpha * tf);
            return Matrix::from_row_major(n, n, out).unwrap_or_else(|_| Matrix::zeros(n, n));
        }
    }
    let mut centred = Vec::with_capacity(t * n);
    for r in 0..t {
        let s = weights.map_or(1.0, |w| w[r].sqrt());
        centred.extend(x.row(r).iter().zip(means).map(|(v, m)| (v - m) * s));
    }
    lower_product(&centred, t, n, alpha, &mut out);
    centre_and_mirror(&mut out, n, means, 0.0);
    Matrix::from_row_major(n, n, out).unwrap_or_else(|_| Matrix::zeros(n, n))
}

/// The lower triangle of `α XᵀX` (`X` row-major `t × n`) into `out`
/// (row-major `n × n`).
fn lower_product(x: &[f64], t: usize, n: usize, alpha: f64, out: &mut [f64]) {
    let cores = std::thread::available_parallelism()
        .map_or(1, |c| c.get())
        .min(16);
    let bands = if n * n * t >= BANDS_FROM { cores } else { 1 };
    lower_product_in(x, t, n, alpha, out, bands);
}

/// [`lower_product`] in `bands` bands of rows, one thread each (`1`: one
/// product, multi-threaded by faer when large).
fn lower_product_in(x: &[f64], t: usize, n: usize, alpha: f64, out: &mut [f64], bands: usize) {
    use faer::linalg::matmul::triangular::{matmul, BlockStructure};
    let xr = faer::MatRef::from_row_major_slice(x, t, n);
    let work = n * n * t;
    if bands > 1 {
        // Bands of rows with equal areas of the triangle: row k_b = n √(b/bands).
        let bounds: Vec<usize> = (0..=bands)
            .map(|b| ((n as f64) * (b as f64 / bands as f64).sqrt()).round() as usize)
            .collect();
        std::thread::scope(|s| {
            let mut rest = &mut out[..];
            for w in bounds.windows(2) {
                let (lo, hi) = (w[0], w[1]);
                let (band, tail) = rest.split_at_mut((hi - lo) * n);
                rest = tail;
                if hi == lo {
                    continue;
                }
                s.spawn(move || {
                    let rows = faer::MatMut::from_row_major_slice_mut(band, hi - lo, n);
                    let (left, right) = rows.split_at_col_mut(lo);
                    let (right, _) = right.split_at_col_mut(hi - lo);
                    let xb = xr.subcols(lo, hi - lo);
                    faer::linalg::matmul::matmul(
                        left,
                        faer::Accum::Replace,
                        xb.transpose(),
                        xr.subcols(0, lo),
                        alpha,
                        faer::Par::Seq,
                    );
                    matmul(
                        right,
                        BlockStructure::TriangularLower,
                        faer::Accum::Replace,
                        xb.transpose(),
                        BlockStructure::Rectangular,
                        xb,
                        BlockStructure::Rectangular,
                        alpha,
                        faer::Par::Seq,
                    );
                });
            }
        });
        return;
    }
    let par = if work >= PARALLEL_FROM {
        faer::Par::rayon(0)
    } else {
        faer::Par::Seq
    };
    matmul(
        faer::MatMut::from_row_major_slice_mut(out, n, n),
        BlockStructure::TriangularLower,
        faer::Accum::Replace,
        xr.transpose(),
        BlockStructure::Rectangular,
        xr,
        BlockStructure::Rectangular,
        alpha,
        par,
    );
}

/// From this many assets the centring and the mirror run on every core
/// (2,000 assets: 6 ms on one).
const PARALLEL_MIRROR_FROM: usize = 512;

/// Subtracts `c · m mᵀ` from the lower triangle of a row-major `n × n`
/// matrix and copies it onto the upper triangle, in tiles that stay in
/// cache for large `n`; on every core from [`PARALLEL_MIRROR_FROM`].
///
/// Each row is split at its diagonal: the lower parts are centred in place,
/// then only read; the upper parts are only written. So the threads share
/// the lower parts and each owns a band of upper parts, with no copy and
/// no unsafe code.
fn centre_and_mirror(out: &mut [f64], n: usize, m: &[f64], c: f64) {
    const TILE: usize = 32;
    let threads = if n >= PARALLEL_MIRROR_FROM {
        std::thread::available_parallelism()
            .map_or(1, |c| c.get())
            .min(16)
    } else {
        1
    };
    let (mut lowers, mut uppers): (Vec<&mut [f64]>, Vec<&mut [f64]>) = out
        .chunks_mut(n)
        .enumerate()
        .map(|(i, row)| row.split_at_mut(i + 1))
        .unzip();
    // Row i has i + 1 lower and n − 1 − i upper elements: bands of equal
    // work for each pass.
    let lower_bands = bands(n, threads, |i| i + 1);
    let upper_bands = bands(n, threads, |i| n - 1 - i);
    let centre = |rows: &mut [&mut [f64]], first: usize| {
        if c == 0.0 {
            return;
        }
        for (k, row) in rows.iter_mut().enumerate() {
            let ci = c * m[first + k];
            for (v, mj) in row.iter_mut().zip(m) {
                *v -= ci * mj;
            }
        }
    };
    per_band(&mut lowers, &lower_bands, centre);
    let lowers: Vec<&[f64]> = lowers.into_iter().map(|l| &*l).collect();
    let lowers = &lowers[..];
    let mirror = |rows: &mut [&mut [f64]], first: usize| {
        let last = first + rows.len();
        for i0 in (first..last).step_by(TILE) {
            let i1 = (i0 + TILE).min(last);
            for j0 in (i0..n).step_by(TILE) {
                let j1 = (j0 + TILE).min(n);
                for i in i0..i1 {
                    let row = &mut rows[i - first];
                    for j in j0.max(i + 1)..j1 {
                        row[j - i - 1] = lowers[j][i];
                    }
                }
            }
        }
    };
    per_band(&mut uppers, &upper_bands, mirror);
}

/// Runs `f(band, first row)` on each band of `rows` (the bands end at
/// `ends`, the last at `rows.len()`): the last band on this thread, the
/// others on threads of their own.
fn per_band<F>(rows: &mut [&mut [f64]], ends: &[usize], f: F)
where
    F: Fn(&mut [&mut [f64]], usize) + Sync,
{
    let n = rows.len();
    let f = &f;
    std::thread::scope(|s| {
        let mut rest = rows;
        let mut first = 0;
        for &end in ends {
            let (band, tail) = rest.split_at_mut(end - first);
            rest = tail;
            if end == n {
                f(band, first);
            } else {
                s.spawn(move || f(band, first));
            }
            first = end;
        }
    });
}

/// Where `threads` bands of rows `0..n` end, each with about the same sum
/// of `work(row)`; the last ends at `n`.
fn bands(n: usize, threads: usize, work: impl Fn(usize) -> usize) -> Vec<usize> {
    let total: usize = (0..n).map(&work).sum();
    let mut ends = Vec::with_capacity(threads);
    let mut done = 0;
    for i in 0..n {
        done += work(i);
        let band = ends.len() + 1;
        if band < threads && done * threads >= total * band {
            ends.push(i + 1);
        }
    }
    ends.push(n);
    ends
}

/// Un-annualised sample covariance (`T − 1` denominator).
pub(crate) fn raw_sample_cov(returns: &Matrix) -> Matrix {
    let means = column_means(returns);
    centred_gram(returns, &means, None, 1.0 / (returns.rows() as f64 - 1.0))
}

/// Sample covariance, PyPortfolioOpt `sample_cov`:
/// `Σ_ij = 252 / (T − 1) · Σ_t (r_ti − r̄_i)(r_tj − r̄_j)`.
pub fn sample_cov(returns: &Matrix) -> Result<Matrix> {
    check_returns(returns, 2)?;
    let alpha = PERIODS_PER_YEAR / (returns.rows() as f64 - 1.0);
    Ok(centred_gram(returns, &column_means(returns), None, alpha))
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
    let means = column_means(returns);
    let g = centred_gram(returns, &means, None, 1.0);
    // Σ_ij ((X∘X)ᵀ(X∘X))_ij = Σ_t (Σ_i x_ti²)²: one pass over X instead
    // of a second n × n product.
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
        &column_means(returns),
        Some(&weights),
        PERIODS_PER_YEAR / den,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two-pass centred covariance, the textbook way.
    fn naive(x: &Matrix, alpha: f64) -> Vec<f64> {
        let (t, n) = (x.rows(), x.cols());
        let m = column_means(x);
        let mut out = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                let s: f64 = (0..t)
                    .map(|r| (x.get(r, i) - m[i]) * (x.get(r, j) - m[j]))
                    .sum();
                out[i * n + j] = alpha * s;
            }
        }
        out
    }

    fn assert_close(what: &str, got: &[f64], want: &[f64]) {
        let scale = want.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-12 * scale, "{what}[{k}]: {g} vs {w}");
        }
    }

    #[test]
    fn centring_after_the_product_and_the_fallback_match_two_passes() {
        // Returns (means well below the volatility) take the uncentred
        // product; prices-like columns (mean ≫ spread) are centred first.
        for (label, level) in [("returns", 0.0001), ("prices", 150.0)] {
            let data: Vec<f64> = (0..300 * 7)
                .map(|k| {
                    level * (1.0 + (k % 7) as f64)
                        + 0.01 * ((k * 7919 % 1013) as f64 / 1013.0 - 0.5)
                })
                .collect();
            let x = Matrix::from_row_major(300, 7, data).unwrap();
            let got = centred_gram(&x, &column_means(&x), None, 1.0 / 299.0);
            assert_close(label, got.as_slice(), &naive(&x, 1.0 / 299.0));
        }
    }

    #[test]
    fn bands_of_rows_give_the_single_product() {
        let (t, n) = (50, 37);
        let x: Vec<f64> = (0..t * n)
            .map(|k| ((k * 7919 % 1013) as f64 / 1013.0) - 0.5)
            .collect();
        let mut one = vec![0.0; n * n];
        lower_product_in(&x, t, n, 2.0, &mut one, 1);
        for bands in [2, 3, 5] {
            let mut many = vec![0.0; n * n];
            lower_product_in(&x, t, n, 2.0, &mut many, bands);
            for i in 0..n {
                for j in 0..=i {
                    let (a, b) = (one[i * n + j], many[i * n + j]);
                    assert!(
                        (a - b).abs() <= 1e-13 * a.abs().max(1.0),
                        "{bands} bands ({i},{j}): {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_mirror_on_every_core_matches_two_passes() {
        // Above PARALLEL_MIRROR_FROM: centring and mirror in bands of rows.
        let (t, n) = (30, PARALLEL_MIRROR_FROM + 37);
        let data: Vec<f64> = (0..t * n)
            .map(|k| 0.0002 * (k % 11) as f64 + 0.01 * ((k * 7919 % 1013) as f64 / 1013.0 - 0.5))
            .collect();
        let x = Matrix::from_row_major(t, n, data).unwrap();
        let want = naive(&x, 1.0 / (t as f64 - 1.0));
        let got = centred_gram(&x, &column_means(&x), None, 1.0 / (t as f64 - 1.0));
        assert_close("centred", got.as_slice(), &want);
        let g = got.as_slice();
        assert!((0..n).all(|i| (0..n).all(|j| g[i * n + j] == g[j * n + i])));
        for threads in [1, 2, 3, 7] {
            let ends = bands(n, threads, |i| n - 1 - i);
            assert_eq!(ends.last(), Some(&n));
            assert!(ends.windows(2).all(|w| w[0] <= w[1]) && ends.len() <= threads);
        }
    }
}
