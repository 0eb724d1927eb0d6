//! Ledoit and Wolf (2008): is one Sharpe ratio higher than another?
//!
//! O. Ledoit and M. Wolf, "Robust performance hypothesis testing with the
//! Sharpe ratio", *Journal of Empirical Finance* 15(5):850–859. Two return
//! series observed on the same dates (a strategy and its benchmark, say) are
//! tested for H0: SR_a − SR_b = 0. Returns are fat-tailed and serially
//! dependent, so neither the textbook Jobson–Korkie/Memmel test nor an i.i.d.
//! bootstrap holds its level; the paper's studentised circular block
//! bootstrap does.
//!
//! # The statistic
//!
//! With μ = E[r] and the *uncentred* second moment γ = E[r²], the Sharpe ratio
//! is μ/√(γ − μ²) and the difference is Δ = f(μ_a, μ_b, γ_a, γ_b) with
//! f(a, b, c, d) = a/√(c − a²) − b/√(d − b²). Every moment is a sample mean
//! with divisor T, so σ̂² = γ̂ − μ̂² (divisor T, as in the paper's algebra; the
//! authors' R code takes Δ̂ from `sd`, divisor T − 1, but its standard errors
//! from γ̂ − μ̂²; here Δ̂ and its gradient agree). The delta method gives
//! s(Δ̂) = √(∇fᵀ Ψ̂ ∇f / T), ∇f = (γ_a/σ_a³, −γ_b/σ_b³, −μ_a/(2σ_a³), μ_b/(2σ_b³)),
//! where Ψ̂ estimates the long-run covariance of
//! y_t = (r_a − μ̂_a, r_b − μ̂_b, r_a² − γ̂_a, r_b² − γ̂_b).
//!
//! # The HAC standard error (Section 3.1)
//!
//! Ψ̂ is the prewhitened Parzen-kernel estimator of Andrews and Monahan
//! (1992), exactly as the authors' code (`compute.se.Parzen.pw`):
//!
//! 1. fit a VAR(1) to y_t by least squares (no intercept, one equation per
//!    column, all four lags as regressors);
//! 2. cap the singular values of the VAR matrix at 0.97 (A&M p. 957) and
//!    take the residuals e_t = y_t − Â y_{t−1}, t = 2..T (n = T − 1 rows);
//! 3. estimate the long-run covariance of e_t with the Parzen kernel and
//!    Andrews' (1991) automatic bandwidth S* = 2.6614 (α̂ n)^{1/5}, α̂ from a
//!    univariate AR(1) per column (OLS with intercept, innovation variance with
//!    divisor n − 1, unit weights), lags j = 1, 2, … while j < S*, autocovariances
//!    with divisor n, and the small-sample factor n/(n − 4);
//! 4. recolour: Ψ̂ = (I − Â)⁻¹ Ψ̂_e (I − Â)⁻ᵀ.
//!
//! **One deliberate difference**: y_t is built from the returns divided by
//! their own standard deviation √(γ̂ − μ̂²). The Sharpe ratios, Δ̂ and the
//! delta-method standard error are unchanged by rescaling either series, but
//! steps 2 and 3 are not: the VAR matrix couples levels and squares, so its
//! singular values carry units of 1/return and the cap binds on almost every
//! series quoted as fractions and on almost none quoted in percent; and α̂
//! weights the columns by their variances. Standardising makes both
//! unit-free; on standardised inputs the result *is* the authors' code's
//! (checked against their R functions to 1e-15). Where the VAR regression is
//! singular (a = b, or b a positive multiple of a), the minimum-norm least
//! squares solution of the unit-RMS-scaled regressors is used, dropping
//! eigenvalues of the normal equations below 1e-10 of the largest.
//!
//! # The bootstrap (Section 3.2, Remark 3.2, Appendix)
//!
//! With l = ⌊T/b⌋ blocks of b, each of the M repetitions resamples
//! n* = l·b pairs (the same dates for both series) as l circular blocks: a
//! start uniform on 0..T and the next b − 1 dates, wrapping past the end. On
//! the resample it computes Δ̂* and the block standard error
//! s(Δ̂*) = √(∇f*ᵀ Ψ̂* ∇f* / n*), Ψ̂* = (1/l) Σ_j ζ_j ζ_jᵀ,
//! ζ_j = b^{-1/2} Σ_{t in block j} (y*_t − ȳ*), and d* = |Δ̂* − Δ̂| / s(Δ̂*).
//! The p-value is (#{d* ≥ d} + 1)/(M + 1), d = |Δ̂|/s(Δ̂) with the HAC s(Δ̂).
//! (The authors' code divides by the original T where the resample has
//! l·b < T rows; here the resample's own length is used throughout.)
//!
//! **Draw order**, which `tools/reference_sharpe_test.py` repeats: one
//! [`SplitMix64`] seeded with [`SharpeTestOptions::seed`]; repetition by
//! repetition, block by block, one `below(T)` per block start, and nothing
//! else drawn. Conventions for degenerate cases: a deviation |Δ̂| or
//! |Δ̂* − Δ̂| of at most 1e-10 is rounding (b a positive multiple of a has the
//! same Sharpe ratio, computed to ~1e-16, with a standard error of ~1e-16) and
//! gives d = 0 or d* = 0, whatever the scale; a NaN (a resample in which a
//! series is constant) gives d* = +∞, which counts as an exceedance.
//!
//! # The interval and the smallest detectable difference
//!
//! q* is the ⌈0.95 (M + 1)⌉-th smallest d* (the bootstrap 0.95 quantile of
//! |Δ̂* − Δ̂|/s*), and the 95 % interval is the symmetric studentised bootstrap
//! interval Δ̂ ± q*·s(Δ̂). With this order statistic the interval excludes 0
//! exactly when the p-value is at most 0.05 (for every M ≥ 19, rounding-level
//! differences aside).
//!
//! The minimum detectable difference is (q* + z_0.80)·s(Δ̂), z_0.80 =
//! 0.8416…: the true Δ that the test rejects with probability ≈ 80 % at the
//! 5 % two-sided level, *approximating* Δ̂ as normal with mean Δ and standard
//! deviation s(Δ̂) (taken as known, the value estimated here) and ignoring the
//! far rejection tail. It is a planning figure, not a test.
//!
//! Every figure is per period; [`SharpeTest::annualised`] scales the Sharpe
//! figures by √(periods per year).

use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;

/// z_0.80, the standard normal quantile for 80 % power.
pub const Z_POWER_80: f64 = 0.841_621_233_572_914_3;

/// Andrews and Monahan's cap on the singular values of the prewhitening VAR.
const PREWHITEN_CAP: f64 = 0.97;

/// Eigenvalues of the scaled normal equations below this fraction of the
/// largest are zero: the regressors are collinear (a = b).
const COLLINEAR_TOLERANCE: f64 = 1e-10;

/// The HAC step needs a few more observations than the four moments it
/// regresses on (and n − 4 > 0 in its small-sample factor).
const MIN_OBSERVATIONS: usize = 10;

/// Sharpe differences (and bootstrap deviations) at most this large, per
/// period, are rounding: between b = c·a (c > 0) and a, whose Sharpe ratios
/// are equal, the computed difference is ~1e-16 and so is its standard error,
/// and their ratio would be noise of any size.
const ROUNDING: f64 = 1e-10;

/// With fewer repetitions there is no 0.95 bootstrap quantile, and no
/// p-value can reach 0.05.
const MIN_REPS: usize = 19;

/// The outcome of [`sharpe_difference_test`]. Sharpe figures are per period
/// (see [`SharpeTest::annualised`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SharpeTest {
    /// μ̂/σ̂ of series a.
    pub sharpe_a: f64,
    /// μ̂/σ̂ of series b.
    pub sharpe_b: f64,
    /// Δ̂ = sharpe_a − sharpe_b.
    pub diff: f64,
    /// The prewhitened Parzen HAC standard error of Δ̂.
    pub se: f64,
    /// Studentised circular block bootstrap p-value of H0: Δ = 0, two-sided.
    pub p_value: f64,
    /// Lower end of the 95 % symmetric studentised bootstrap interval.
    pub ci_low: f64,
    /// Upper end of the 95 % interval.
    pub ci_high: f64,
    /// The smallest |Δ| the test detects with ≈ 80 % power at 5 %.
    pub min_detectable: f64,
    /// Block length b.
    pub block: usize,
    /// Bootstrap repetitions M.
    pub reps: usize,
    /// Paired observations T.
    pub observations: usize,
}

impl SharpeTest {
    /// The same test with `sharpe_a`, `sharpe_b`, `diff`, `se`, the interval
    /// and `min_detectable` multiplied by √`periods_per_year` (52 for weekly
    /// returns, 252 for daily); the p-value and counts are unchanged. Call it
    /// once, on the per-period result.
    pub fn annualised(&self, periods_per_year: f64) -> SharpeTest {
        let k = periods_per_year.sqrt();
        SharpeTest {
            sharpe_a: self.sharpe_a * k,
            sharpe_b: self.sharpe_b * k,
            diff: self.diff * k,
            se: self.se * k,
            ci_low: self.ci_low * k,
            ci_high: self.ci_high * k,
            min_detectable: self.min_detectable * k,
            ..*self
        }
    }
}

/// Bootstrap settings.
#[derive(Debug, Clone, Copy)]
pub struct SharpeTestOptions {
    /// Block length b. The paper calibrates it; 5 suits weekly returns
    /// (about a month of dependence), larger for daily data.
    pub block: usize,
    /// Bootstrap repetitions M (at least 19; 4999 makes 0.05 and 0.01 exact
    /// attainable p-values).
    pub reps: usize,
    /// Seed of the [`SplitMix64`] that draws the block starts.
    pub seed: u64,
}

impl Default for SharpeTestOptions {
    fn default() -> Self {
        SharpeTestOptions {
            block: 5,
            reps: 4999,
            seed: 42,
        }
    }
}

/// Why the test could not be run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SharpeTestError {
    /// The series are not paired date by date.
    #[error(
        "series a has {a} returns and series b {b}: the test pairs them date by date, so align both on their common dates first"
    )]
    LengthMismatch { a: usize, b: usize },
    /// Too short for two blocks or for the HAC standard error.
    #[error(
        "only {observations} paired returns: the test needs at least {needed} (two blocks of {block}, and never fewer than {MIN_OBSERVATIONS}); use a longer history or a smaller block"
    )]
    TooShort {
        observations: usize,
        needed: usize,
        block: usize,
    },
    /// A NaN or infinite return.
    #[error(
        "return {index} of series {series} is {value}: drop or fill missing and infinite returns before testing"
    )]
    NonFinite {
        series: &'static str,
        index: usize,
        value: f64,
    },
    /// A series without variance has no Sharpe ratio.
    #[error(
        "series {series} has zero variance (every return the same): a Sharpe ratio needs returns that vary"
    )]
    ZeroVariance { series: &'static str },
    /// Block or repetitions out of range.
    #[error(
        "block {block} with {reps} repetitions: the block must be at least 1 and the repetitions at least {MIN_REPS} (4999 is the default)"
    )]
    BadOptions { block: usize, reps: usize },
}

/// Ledoit and Wolf's test of H0: SR_a = SR_b for returns `a` and `b`
/// observed on the same dates (see the module documentation for every
/// choice). Deterministic for a given `options.seed`.
///
/// # Errors
/// [`SharpeTestError`] when the lengths differ, a return is not finite, a
/// series is constant, there are fewer than max(2·block, 10) observations, or
/// `block` is 0 or `reps` below 19.
pub fn sharpe_difference_test(
    a: &[f64],
    b: &[f64],
    options: SharpeTestOptions,
) -> Result<SharpeTest, SharpeTestError> {
    let SharpeTestOptions { block, reps, seed } = options;
    if block == 0 || reps < MIN_REPS {
        return Err(SharpeTestError::BadOptions { block, reps });
    }
    validate(a, b, block)?;
    let t = a.len();
    let observed = Moments::of(a, b);
    let diff = observed.diff();
    let se = hac_se_unchecked(a, b);
    let d = studentised(diff.abs(), se);

    let d_star = bootstrap(a, b, block, reps, seed, diff);
    let exceedances = d_star.iter().filter(|&&x| x >= d).count();
    let p_value = (exceedances + 1) as f64 / (reps + 1) as f64;
    let q_star = upper_quantile(d_star, 95);

    Ok(SharpeTest {
        sharpe_a: observed.sharpe_a,
        sharpe_b: observed.sharpe_b,
        diff,
        se,
        p_value,
        ci_low: diff - q_star * se,
        ci_high: diff + q_star * se,
        min_detectable: (q_star + Z_POWER_80) * se,
        block,
        reps,
        observations: t,
    })
}

/// The HAC standard error s(Δ̂) alone (the prewhitened Parzen estimator of
/// the module documentation), per period.
///
/// # Errors
/// As [`sharpe_difference_test`], with at least 10 observations needed.
pub fn hac_standard_error(a: &[f64], b: &[f64]) -> Result<f64, SharpeTestError> {
    validate(a, b, 1)?;
    Ok(hac_se_unchecked(a, b))
}

fn validate(a: &[f64], b: &[f64], block: usize) -> Result<(), SharpeTestError> {
    if a.len() != b.len() {
        return Err(SharpeTestError::LengthMismatch {
            a: a.len(),
            b: b.len(),
        });
    }
    let needed = (2 * block).max(MIN_OBSERVATIONS);
    if a.len() < needed {
        return Err(SharpeTestError::TooShort {
            observations: a.len(),
            needed,
            block,
        });
    }
    for (series, r) in [("a", a), ("b", b)] {
        if let Some((index, &value)) = r.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(SharpeTestError::NonFinite {
                series,
                index,
                value,
            });
        }
        let (mu, gamma) = mean_and_square(r);
        // All equal, or a variance lost to rounding: no Sharpe ratio.
        if r.iter().all(|&x| x == r[0]) || gamma - mu * mu <= 0.0 {
            return Err(SharpeTestError::ZeroVariance { series });
        }
    }
    Ok(())
}

// ------------------------------------------------------------ moments

fn mean_and_square(r: &[f64]) -> (f64, f64) {
    let n = r.len() as f64;
    let (s, s2) = r.iter().fold((0.0, 0.0), |(s, s2), &x| (s + x, s2 + x * x));
    (s / n, s2 / n)
}

/// μ̂, γ̂, the Sharpe ratios and ∇f at the estimates, for a pair of series.
struct Moments {
    mu: [f64; 2],
    gamma: [f64; 2],
    sharpe_a: f64,
    sharpe_b: f64,
    gradient: [f64; 4],
}

impl Moments {
    fn of(a: &[f64], b: &[f64]) -> Moments {
        let (mu_a, g_a) = mean_and_square(a);
        let (mu_b, g_b) = mean_and_square(b);
        let var_a = g_a - mu_a * mu_a;
        let var_b = g_b - mu_b * mu_b;
        let c_a = var_a * var_a.sqrt();
        let c_b = var_b * var_b.sqrt();
        Moments {
            mu: [mu_a, mu_b],
            gamma: [g_a, g_b],
            sharpe_a: mu_a / var_a.sqrt(),
            sharpe_b: mu_b / var_b.sqrt(),
            gradient: [g_a / c_a, -g_b / c_b, -0.5 * mu_a / c_a, 0.5 * mu_b / c_b],
        }
    }

    fn diff(&self) -> f64 {
        self.sharpe_a - self.sharpe_b
    }

    /// y_t: the moment vector at date t, centred at the estimates.
    fn centred(&self, ra: f64, rb: f64) -> [f64; 4] {
        [
            ra - self.mu[0],
            rb - self.mu[1],
            ra * ra - self.gamma[0],
            rb * rb - self.gamma[1],
        ]
    }
}

/// |deviation| / se, with 0 for a deviation within rounding (whatever the
/// scale) and +∞ where the ratio is NaN (a degenerate resample).
fn studentised(deviation: f64, se: f64) -> f64 {
    if deviation <= ROUNDING {
        return 0.0;
    }
    let d = deviation / se;
    if d.is_nan() {
        f64::INFINITY
    } else {
        d
    }
}

// ------------------------------------------------------------ bootstrap

/// The M studentised bootstrap deviations d*, in repetition order.
fn bootstrap(a: &[f64], b: &[f64], block: usize, reps: usize, seed: u64, diff: f64) -> Vec<f64> {
    let t = a.len();
    let blocks = t / block;
    let n_star = blocks * block;
    let mut rng = SplitMix64::new(seed);
    let mut ra = vec![0.0; n_star];
    let mut rb = vec![0.0; n_star];
    let mut d_star = Vec::with_capacity(reps);
    for _ in 0..reps {
        // The documented draw order: block by block, one start each.
        for j in 0..blocks {
            let start = rng.below(t);
            for k in 0..block {
                let source = (start + k) % t;
                ra[j * block + k] = a[source];
                rb[j * block + k] = b[source];
            }
        }
        let m = Moments::of(&ra, &rb);
        // ∇f*ᵀ Ψ̂* ∇f* = (1/l) Σ_j (∇f*ᵀ ζ_j)², ζ_j = b^{-1/2} Σ_t y*_t.
        let mut sum_sq = 0.0;
        for j in 0..blocks {
            let mut z = 0.0;
            for i in j * block..(j + 1) * block {
                z += dot(&m.gradient, &m.centred(ra[i], rb[i]));
            }
            sum_sq += z * z;
        }
        let variance = sum_sq / (block * blocks) as f64;
        let se_star = (variance / n_star as f64).sqrt();
        d_star.push(studentised((m.diff() - diff).abs(), se_star));
    }
    d_star
}

/// The ⌈percent/100 · (M + 1)⌉-th smallest of the M values (at most the
/// largest).
fn upper_quantile(mut values: Vec<f64>, percent: usize) -> f64 {
    let m = values.len();
    let k = ((percent * (m + 1)).div_ceil(100)).clamp(1, m);
    values.sort_by(f64::total_cmp);
    values[k - 1]
}

// ------------------------------------------------------------ HAC

type Mat4 = [[f64; 4]; 4];

fn hac_se_unchecked(a: &[f64], b: &[f64]) -> f64 {
    // Standardise: see "One deliberate difference" in the module docs.
    let sd = |r: &[f64]| {
        let (mu, gamma) = mean_and_square(r);
        (gamma - mu * mu).sqrt()
    };
    let (sd_a, sd_b) = (sd(a), sd(b));
    let a: Vec<f64> = a.iter().map(|x| x / sd_a).collect();
    let b: Vec<f64> = b.iter().map(|x| x / sd_b).collect();
    let m = Moments::of(&a, &b);
    let y: Vec<[f64; 4]> = a
        .iter()
        .zip(&b)
        .map(|(&ra, &rb)| m.centred(ra, rb))
        .collect();
    let psi = prewhitened_long_run_covariance(&y);
    let g = &m.gradient;
    let quadratic = dot(g, &mat_vec(&psi, g));
    // Rounding can leave a hair below zero where the variance is zero (a = b).
    (quadratic.max(0.0) / a.len() as f64).sqrt()
}

/// Steps 1–4 of the module documentation: Ψ̂ of the rows `y`.
fn prewhitened_long_run_covariance(y: &[[f64; 4]]) -> Mat4 {
    let n = y.len() - 1;
    let (x, next) = (&y[..n], &y[1..]);

    // VAR(1) by least squares on regressors scaled to unit RMS, so that the
    // collinearity cut-off does not depend on units.
    let mut scale = [0.0; 4];
    for row in x {
        for k in 0..4 {
            scale[k] += row[k] * row[k];
        }
    }
    for s in &mut scale {
        *s = (*s / n as f64).sqrt();
        if *s == 0.0 {
            *s = 1.0;
        }
    }
    let mut xtx = [[0.0; 4]; 4];
    let mut xty = [[0.0; 4]; 4];
    for (row, target) in x.iter().zip(next) {
        let xs: [f64; 4] = std::array::from_fn(|k| row[k] / scale[k]);
        for k in 0..4 {
            for l in 0..4 {
                xtx[k][l] += xs[k] * xs[l];
                xty[k][l] += xs[k] * target[l];
            }
        }
    }
    let coef = mat_mul(&pseudo_inverse(&xtx), &xty);
    // Row j of A is the equation of column j: A[j][k] = coef[k][j] / scale[k].
    let a_ls: Mat4 = std::array::from_fn(|j| std::array::from_fn(|k| coef[k][j] / scale[k]));
    let a_hat = cap_singular_values(&a_ls, PREWHITEN_CAP);

    let e: Vec<[f64; 4]> = x
        .iter()
        .zip(next)
        .map(|(row, target)| {
            let fitted = mat_vec(&a_hat, row);
            std::array::from_fn(|k| target[k] - fitted[k])
        })
        .collect();
    let psi_e = parzen_long_run_covariance(&e);

    let mut i_minus_a = a_hat;
    for (k, row) in i_minus_a.iter_mut().enumerate() {
        for (l, v) in row.iter_mut().enumerate() {
            *v = if k == l { 1.0 } else { 0.0 } - *v;
        }
    }
    let d = inverse(&i_minus_a);
    mat_mul(&mat_mul(&d, &psi_e), &transpose(&d))
}

/// Parzen kernel, Andrews' automatic bandwidth, divisor n, times n/(n − 4):
/// the authors' `compute.Psi.hat`.
fn parzen_long_run_covariance(e: &[[f64; 4]]) -> Mat4 {
    let n = e.len();
    let s_star = 2.6614 * (andrews_alpha(e) * n as f64).powf(0.2);
    let mut psi = autocovariance(e, 0);
    let mut j = 1;
    // Past n the autocovariances are empty sums; the bound only guards.
    while (j as f64) < s_star && j < n {
        let w = parzen(j as f64 / s_star);
        let gamma = autocovariance(e, j);
        for k in 0..4 {
            for l in 0..4 {
                psi[k][l] += w * (gamma[k][l] + gamma[l][k]);
            }
        }
        j += 1;
    }
    let factor = n as f64 / (n as f64 - 4.0);
    psi.map(|row| row.map(|v| v * factor))
}

/// Γ̂(j) = (1/n) Σ_{t ≥ j} e_t e_{t−j}ᵀ.
fn autocovariance(e: &[[f64; 4]], j: usize) -> Mat4 {
    let mut g = [[0.0; 4]; 4];
    for (now, then) in e[j..].iter().zip(e) {
        for k in 0..4 {
            for l in 0..4 {
                g[k][l] += now[k] * then[l];
            }
        }
    }
    let n = e.len() as f64;
    g.map(|row| row.map(|v| v / n))
}

fn parzen(x: f64) -> f64 {
    let x = x.abs();
    if x <= 0.5 {
        1.0 - 6.0 * x * x + 6.0 * x * x * x
    } else if x <= 1.0 {
        2.0 * (1.0 - x).powi(3)
    } else {
        0.0
    }
}

/// Andrews (1991) eq. (6.4) for q = 2 with unit weights: a univariate AR(1)
/// per column, fitted by OLS with intercept (R's `ar(x, FALSE, 1, method =
/// "ols")`), innovation variance with divisor n − 1.
fn andrews_alpha(e: &[[f64; 4]]) -> f64 {
    let pairs = (e.len() - 1) as f64;
    let (mut num, mut den) = (0.0, 0.0);
    for k in 0..4 {
        let x0 = e[..e.len() - 1].iter().map(|r| r[k]);
        let x1 = e[1..].iter().map(|r| r[k]);
        let m0 = x0.clone().sum::<f64>() / pairs;
        let m1 = x1.clone().sum::<f64>() / pairs;
        let (mut sxx, mut sxy) = (0.0, 0.0);
        for (u, v) in x0.clone().zip(x1.clone()) {
            sxx += (u - m0) * (u - m0);
            sxy += (u - m0) * (v - m1);
        }
        if sxx == 0.0 {
            continue; // a constant column says nothing about the bandwidth
        }
        let rho = sxy / sxx;
        let ss: f64 = x0
            .zip(x1)
            .map(|(u, v)| {
                let r = (v - m1) - rho * (u - m0);
                r * r
            })
            .sum();
        let s2 = ss / pairs;
        num += 4.0 * rho * rho * s2 * s2 / (1.0 - rho).powi(8);
        den += s2 * s2 / (1.0 - rho).powi(4);
    }
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

// ------------------------------------------------------------ 4×4 algebra

fn dot(u: &[f64; 4], v: &[f64; 4]) -> f64 {
    u[0] * v[0] + u[1] * v[1] + u[2] * v[2] + u[3] * v[3]
}

fn mat_vec(m: &Mat4, v: &[f64; 4]) -> [f64; 4] {
    m.map(|row| dot(&row, v))
}

fn mat_mul(p: &Mat4, q: &Mat4) -> Mat4 {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..4).map(|k| p[i][k] * q[k][j]).sum()))
}

fn transpose(m: &Mat4) -> Mat4 {
    std::array::from_fn(|i| std::array::from_fn(|j| m[j][i]))
}

/// Eigenvalues and eigenvectors (columns) of a symmetric matrix, by cyclic
/// Jacobi rotations.
fn symmetric_eigen(m: &Mat4) -> ([f64; 4], Mat4) {
    let mut m = *m;
    let mut v: Mat4 = std::array::from_fn(|i| std::array::from_fn(|j| f64::from(u8::from(i == j))));
    for _ in 0..100 {
        let off: f64 = (0..4)
            .flat_map(|p| (p + 1..4).map(move |q| (p, q)))
            .map(|(p, q)| m[p][q] * m[p][q])
            .sum();
        let total: f64 = m.iter().flatten().map(|x| x * x).sum();
        if off <= f64::EPSILON * f64::EPSILON * total {
            break;
        }
        for p in 0..3 {
            for q in p + 1..4 {
                if m[p][q] == 0.0 {
                    continue;
                }
                let theta = (m[q][q] - m[p][p]) / (2.0 * m[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in m.iter_mut().chain(v.iter_mut()) {
                    let (rp, rq) = (row[p], row[q]);
                    row[p] = c * rp - s * rq;
                    row[q] = s * rp + c * rq;
                }
                let (old_p, old_q) = (m[p], m[q]);
                m[p] = std::array::from_fn(|k| c * old_p[k] - s * old_q[k]);
                m[q] = std::array::from_fn(|k| s * old_p[k] + c * old_q[k]);
            }
        }
    }
    ([m[0][0], m[1][1], m[2][2], m[3][3]], v)
}

/// Moore–Penrose inverse of a symmetric positive semi-definite matrix,
/// eigenvalues below `COLLINEAR_TOLERANCE` of the largest taken as zero.
fn pseudo_inverse(m: &Mat4) -> Mat4 {
    let (lambda, v) = symmetric_eigen(m);
    let largest = lambda.iter().copied().fold(0.0, f64::max);
    let mut out = [[0.0; 4]; 4];
    for (k, &l) in lambda.iter().enumerate() {
        if l > COLLINEAR_TOLERANCE * largest {
            for i in 0..4 {
                for j in 0..4 {
                    out[i][j] += v[i][k] * v[j][k] / l;
                }
            }
        }
    }
    out
}

/// A with every singular value above `cap` lowered to `cap`:
/// A − Σ (σ_i − cap) u_i v_iᵀ = A (I − Σ (1 − cap/σ_i) v_i v_iᵀ), the v_i and
/// σ_i² from the eigen-decomposition of AᵀA. A itself where none exceeds.
fn cap_singular_values(a: &Mat4, cap: f64) -> Mat4 {
    let (lambda, v) = symmetric_eigen(&mat_mul(&transpose(a), a));
    let mut shrink = [[0.0; 4]; 4];
    let mut binds = false;
    for (k, &l) in lambda.iter().enumerate() {
        let sigma = l.max(0.0).sqrt();
        if sigma > cap {
            binds = true;
            let f = 1.0 - cap / sigma;
            for i in 0..4 {
                for j in 0..4 {
                    shrink[i][j] += f * v[i][k] * v[j][k];
                }
            }
        }
    }
    if !binds {
        return *a;
    }
    let keep: Mat4 = std::array::from_fn(|i| {
        std::array::from_fn(|j| f64::from(u8::from(i == j)) - shrink[i][j])
    });
    mat_mul(a, &keep)
}

/// Inverse by Gauss–Jordan elimination with partial pivoting; NaN where the
/// matrix is singular (never for I − Â, whose singular values are ≥ 0.03).
fn inverse(m: &Mat4) -> Mat4 {
    let mut a = *m;
    let mut inv: Mat4 =
        std::array::from_fn(|i| std::array::from_fn(|j| f64::from(u8::from(i == j))));
    for col in 0..4 {
        let pivot = (col..4)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        if a[pivot][col] == 0.0 {
            return [[f64::NAN; 4]; 4];
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let p = a[col][col];
        for k in 0..4 {
            a[col][k] /= p;
            inv[col][k] /= p;
        }
        for row in 0..4 {
            if row != col {
                let f = a[row][col];
                for k in 0..4 {
                    a[row][k] -= f * a[col][k];
                    inv[row][k] -= f * inv[col][k];
                }
            }
        }
    }
    inv
}

#[cfg(test)]
mod tests;
