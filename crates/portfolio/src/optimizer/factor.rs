//! A square-root factor of the covariance for the volatility cone.

use nalgebra::DMatrix;

use crate::Matrix;

/// Columns of `Fᵀ` for `Σ = F Fᵀ`: entry `j` lists `(i, F_ji)` with `i`
/// ascending, ready for [`super::problem::Program::norm_le`].
///
/// The Cholesky factor is used when it exists: it is triangular, so `Fᵀ`
/// has half the non-zeros of a dense square root. A singular covariance
/// (more assets than observations, a duplicated asset) has none, and then
/// the symmetric eigendecomposition `Σ = V D Vᵀ`, `F = V √D` (negative
/// rounding-level eigenvalues clipped to 0) is used instead.
pub(crate) fn covariance_factor(cov: &Matrix) -> Vec<Vec<(usize, f64)>> {
    let n = cov.rows();
    let m = DMatrix::from_row_slice(n, n, cov.as_slice());
    if let Some(ch) = m.clone().cholesky() {
        let l = ch.l();
        return (0..n)
            .map(|j| (0..=j).map(|i| (i, l[(j, i)])).collect())
            .collect();
    }
    let eig = m.symmetric_eigen();
    let roots: Vec<f64> = eig.eigenvalues.iter().map(|d| d.max(0.0).sqrt()).collect();
    (0..n)
        .map(|j| {
            (0..n)
                .filter(|&i| roots[i] > 0.0)
                .map(|i| (i, eig.eigenvectors[(j, i)] * roots[i]))
                .collect()
        })
        .collect()
}
