#!/usr/bin/env python3
"""Reference values for crates/epsilon/src/sharpe_test.rs: Ledoit and Wolf
(2008), "Robust performance hypothesis testing with the Sharpe ratio",
Journal of Empirical Finance 15(5):850-859.

Run it with any Python 3 that has numpy (nothing else is imported):

    ~/.cache/ultracore/benchvenv/bin/python tools/reference_sharpe_test.py

It prints one JSON object; the Rust tests pin its numbers. Nothing is read
or written: the inputs are generated here, from SplitMix64 draws, exactly as
the Rust test module generates them (`sample_returns` below and in the
tests), so no data file is needed.

What it pins, for each case in CASES (a 520-week series with serially
correlated returns and GARCH-like volatility; a 60-period series whose
length is not a multiple of the block; a very persistent 260-period series
that makes the prewhitening cap bind):

  * sharpe_a, sharpe_b, diff: per-period Sharpe ratios mu / sqrt(gamma - mu^2)
    from the uncentred second moment gamma = mean(r^2), as in the paper;
  * se: the HAC standard error of the difference: the paper code's
    `compute.se.Parzen.pw` (Andrews and Monahan 1992 VAR(1) prewhitening with
    the singular values of the VAR matrix capped at 0.97, then the Parzen
    kernel with Andrews' 1991 automatic bandwidth, then recolouring) applied
    to each series divided by its own standard deviation, which makes the cap
    and the bandwidth independent of units (see `hac_standard_error`);
    hac.se_paper_code_unscaled is the same code on the raw fractions, for
    comparison only;
  * exceedances and p_value of the studentised circular block bootstrap
    (the paper's Section 3.2 and Remark 3.2, its code's
    `boot.time.inference`), with the block starts drawn from SplitMix64 in
    the order documented in the Rust module;
  * q_star, ci_low, ci_high, min_detectable: the 0.95 quantile of the
    bootstrap |Delta* - Delta| / s(Delta*), the symmetric studentised 95 %
    interval and the minimum detectable difference (q* + z_0.80) * se;
  * min_relative_gap: the smallest |d* - d| / d over the repetitions, to show
    that no repetition ties with the observed statistic to within rounding
    (so the exceedance count, and with it the p-value, is exact in both
    implementations).

The least-squares fit, the SVD and the inverse use numpy (LAPACK); the Rust
module writes its own 4x4 linear algebra, so the two agree to rounding, not
bit for bit. `paper_standard_error` was checked against the authors' own R
functions (compute.se.Parzen.pw, R 4.2) on the three cases, standardised, in
fractions and in percent: agreement to 1e-15 relative.
"""

import json
import math

import numpy as np

MASK64 = (1 << 64) - 1

# z_0.80, the standard normal quantile for 80 % power.
Z_POWER = 0.8416212335729143
# Andrews and Monahan's cap on the singular values of the prewhitening VAR.
PREWHITEN_CAP = 0.97
# Eigenvalues of the scaled normal equations below this fraction of the
# largest are treated as zero (perfectly collinear moments, e.g. a = b).
PINV_RCOND = 1e-5  # on singular values of X, i.e. 1e-10 on eigenvalues of X'X
SQRT3 = 1.7320508075688772
# Sharpe differences and bootstrap deviations at most this large (per period)
# are rounding, e.g. between a and 3a, and count as exactly zero.
ROUNDING = 1e-10


class SplitMix64:
    """Steele, Lea and Flood (2014), as crates/epsilon/src/rng.rs."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def next_f64(self):
        return (self.next_u64() >> 11) / float(1 << 53)

    def below(self, n):
        return (self.next_u64() * n) >> 64


# ---------------------------------------------------------------- inputs


def gauss(rng):
    """Approximately standard normal: four uniforms (Irwin-Hall), centred and
    scaled to unit variance. Only + - * so Rust computes the same bits."""
    s = rng.next_f64() + rng.next_f64() + rng.next_f64() + rng.next_f64()
    return (s - 2.0) * SQRT3


def sample_returns(seed, t, mean_a, mean_b, vol, phi):
    """Two paired return series: a GARCH(1,1)-like common shock plus own
    shocks, each accumulated by an AR(1) with coefficient phi. Per period,
    the draws are: common, own a, own b (each four uniforms)."""
    rng = SplitMix64(seed)
    h = 1.0
    u_prev = 0.0
    xa = 0.0
    xb = 0.0
    a = []
    b = []
    for _ in range(t):
        h = 0.05 + 0.10 * u_prev * u_prev + 0.85 * h
        s = math.sqrt(h)
        u = s * gauss(rng)
        ea = s * gauss(rng)
        eb = s * gauss(rng)
        xa = phi * xa + 0.6 * u + 0.8 * ea
        xb = phi * xb + 0.6 * u + 0.8 * eb
        a.append(mean_a + vol * xa)
        b.append(mean_b + vol * xb)
        u_prev = u
    return np.array(a), np.array(b)


# ------------------------------------------------------------- statistic


def moments(r):
    # numpy scalars, so that a degenerate resample gives NaN or inf, as in
    # Rust, instead of raising.
    return np.float64(np.mean(r)), np.float64(np.mean(r * r))


def sharpe_and_gradient(a, b):
    """Sharpe ratios and the gradient of
    f(mu_a, mu_b, gamma_a, gamma_b) = mu_a/sqrt(gamma_a - mu_a^2) - mu_b/sqrt(gamma_b - mu_b^2)."""
    mu_a, g_a = moments(a)
    mu_b, g_b = moments(b)
    var_a = g_a - mu_a * mu_a
    var_b = g_b - mu_b * mu_b
    with np.errstate(all="ignore"):
        c_a = var_a * np.sqrt(var_a)
        c_b = var_b * np.sqrt(var_b)
        sr_a = mu_a / np.sqrt(var_a)
        sr_b = mu_b / np.sqrt(var_b)
        grad = np.array([g_a / c_a, -g_b / c_b, -0.5 * mu_a / c_a, 0.5 * mu_b / c_b])
    return float(sr_a), float(sr_b), grad, (mu_a, mu_b, g_a, g_b)


def parzen(x):
    x = abs(x)
    if x <= 0.5:
        return 1.0 - 6.0 * x * x + 6.0 * x * x * x
    if x <= 1.0:
        return 2.0 * (1.0 - x) ** 3
    return 0.0


def andrews_alpha(v):
    """Andrews (1991) eq. (6.4) for the Parzen kernel (q = 2), unit weights,
    from a univariate AR(1) fitted by OLS with intercept to each column (R's
    ar(x, aic = FALSE, order.max = 1, method = "ols"); innovation variance
    with divisor n - 1, the number of regression rows)."""
    num = 0.0
    den = 0.0
    for i in range(v.shape[1]):
        x0 = v[:-1, i]
        x1 = v[1:, i]
        d0 = x0 - x0.mean()
        d1 = x1 - x1.mean()
        sxx = float(d0 @ d0)
        if sxx == 0.0:
            continue  # a constant column contributes nothing
        rho = float(d0 @ d1) / sxx
        e = d1 - rho * d0
        s2 = float(e @ e) / len(e)
        num += 4.0 * rho * rho * s2 * s2 / (1.0 - rho) ** 8
        den += s2 * s2 / (1.0 - rho) ** 4
    return num / den if den > 0.0 else 0.0


def parzen_hac(v):
    """The paper code's compute.Psi.hat: Parzen kernel, bandwidth
    S* = 2.6614 (alpha T)^(1/5), lags j = 1, 2, ... while j < S* (and j < T,
    past which the autocovariances are empty sums), times T/(T-4)."""
    n = v.shape[0]
    alpha = andrews_alpha(v)
    s_star = 2.6614 * (alpha * n) ** 0.2
    psi = v.T @ v / n
    j = 1
    while j < s_star and j < n:
        gamma_j = v[j:].T @ v[:-j] / n
        psi = psi + parzen(j / s_star) * (gamma_j + gamma_j.T)
        j += 1
    return psi * (n / (n - 4.0)), s_star


def prewhitened_psi(a, b):
    """The paper code's compute.se.Parzen.pw, up to the final quadratic form:
    Psi-hat of (r_a - mu_a, r_b - mu_b, r_a^2 - gamma_a, r_b^2 - gamma_b)."""
    mu_a, g_a = moments(a)
    mu_b, g_b = moments(b)
    v = np.column_stack([a - mu_a, b - mu_b, a * a - g_a, b * b - g_b])
    x = v[:-1]
    y = v[1:]
    # VAR(1) by least squares, one equation per column, no intercept. The
    # regressors are scaled to unit RMS so that the cut-off for collinear
    # columns (a = b) does not depend on units.
    scale = np.sqrt(np.mean(x * x, axis=0))
    scale[scale == 0.0] = 1.0
    coef, *_ = np.linalg.lstsq(x / scale, y, rcond=PINV_RCOND)
    a_ls = (coef / scale[:, None]).T  # row j: equation of column j
    u, d, vt = np.linalg.svd(a_ls)
    capped = bool(np.any(d > PREWHITEN_CAP))
    a_hat = u @ np.diag(np.minimum(d, PREWHITEN_CAP)) @ vt if capped else a_ls
    e = y - x @ a_hat.T
    psi_e, s_star = parzen_hac(e)
    dmat = np.linalg.inv(np.eye(4) - a_hat)
    return dmat @ psi_e @ dmat.T, {
        "bandwidth": s_star,
        "singular_values": [float(s) for s in d],
        "cap_binds": capped,
    }


def paper_standard_error(a, b):
    """compute.se.Parzen.pw of the paper's code, on the returns as given."""
    _, _, grad, _ = sharpe_and_gradient(a, b)
    psi, info = prewhitened_psi(a, b)
    q = float(grad @ psi @ grad)
    return math.sqrt(max(q, 0.0) / len(a)), info


def hac_standard_error(a, b):
    """The module's HAC standard error: paper_standard_error of the returns
    divided by their own standard deviation sqrt(gamma - mu^2).

    The Sharpe ratios, their difference and the delta-method standard error
    do not change when a series is multiplied by a positive constant, but two
    steps of the paper's code do: the 0.97 cap on the singular values of the
    prewhitening VAR matrix (whose off-diagonal blocks carry units of
    1/return between the levels and the squares) and Andrews' bandwidth
    (which weights the four moment columns by their variances). On returns
    quoted as fractions the cap binds almost always; in percent it rarely
    does. Standardising first makes both unit-free."""
    mu_a, g_a = moments(a)
    mu_b, g_b = moments(b)
    sd_a = math.sqrt(g_a - mu_a * mu_a)
    sd_b = math.sqrt(g_b - mu_b * mu_b)
    return paper_standard_error(a / sd_a, b / sd_b)


def studentised(deviation, se):
    """|deviation| / se with the conventions of the Rust module: a deviation
    within rounding (ROUNDING) is 0 whatever se; a NaN (degenerate resample)
    is +inf."""
    if deviation <= ROUNDING:
        return 0.0
    with np.errstate(all="ignore"):
        d = float(np.float64(deviation) / np.float64(se))
    return math.inf if math.isnan(d) else d


def sharpe_difference_test(a, b, block, reps, seed):
    t = len(a)
    sr_a, sr_b, _, _ = sharpe_and_gradient(a, b)
    diff = sr_a - sr_b
    se, info = hac_standard_error(a, b)
    info["se_paper_code_unscaled"] = paper_standard_error(a, b)[0]
    d = studentised(abs(diff), se)

    blocks = t // block
    n_star = blocks * block
    rng = SplitMix64(seed)
    offsets = np.arange(block)
    d_star = np.empty(reps)
    for m in range(reps):
        # Draw order: repetition by repetition, block by block, one
        # below(T) per block start.
        starts = np.array([rng.below(t) for _ in range(blocks)])
        idx = ((starts[:, None] + offsets[None, :]) % t).reshape(-1)
        ra = a[idx]
        rb = b[idx]
        s_a, s_b, g, (mu_a, mu_b, g_a, g_b) = sharpe_and_gradient(ra, rb)
        y = np.column_stack([ra - mu_a, rb - mu_b, ra * ra - g_a, rb * rb - g_b])
        z = (y @ g).reshape(blocks, block).sum(axis=1)  # sqrt(b) g'zeta_j
        var = float(z @ z) / (block * blocks)  # g' Psi* g
        se_star = math.sqrt(var / n_star) if var >= 0.0 else math.nan
        d_star[m] = studentised(abs((s_a - s_b) - diff), se_star)

    exceed = int(np.sum(d_star >= d))
    p_value = (exceed + 1) / (reps + 1)
    k = min((95 * (reps + 1) + 99) // 100, reps)
    q_star = float(np.sort(d_star)[k - 1])
    gap = float(np.min(np.abs(d_star - d)) / d) if d > 0 else 0.0
    return {
        "observations": t,
        "block": block,
        "reps": reps,
        "seed": seed,
        "sharpe_a": sr_a,
        "sharpe_b": sr_b,
        "diff": diff,
        "se": se,
        "statistic": d,
        "exceedances": exceed,
        "p_value": p_value,
        "q_star": q_star,
        "ci_low": diff - q_star * se,
        "ci_high": diff + q_star * se,
        "min_detectable": (q_star + Z_POWER) * se,
        "min_relative_gap": gap,
        "hac": info,
        "first_returns": [float(a[0]), float(b[0]), float(a[-1]), float(b[-1])],
    }


# (name, data seed, T, mean_a, mean_b, vol, phi, block, reps, bootstrap seed)
CASES = [
    ("weekly", 2008, 520, 0.004, 0.002, 0.02, 0.3, 5, 4999, 42),
    ("short", 60, 60, 0.006, 0.001, 0.02, 0.2, 7, 999, 7),
    ("persistent", 1991, 260, 0.003, 0.001, 0.004, 0.99, 10, 999, 11),
]


def main():
    out = {}
    for name, data_seed, t, mean_a, mean_b, vol, phi, block, reps, seed in CASES:
        a, b = sample_returns(data_seed, t, mean_a, mean_b, vol, phi)
        out[name] = sharpe_difference_test(a, b, block, reps, seed)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
