//! Risk and return metrics, following empyrical's definitions exactly.
//!
//! All functions take a series of simple periodic returns `r_1 … r_T` (daily
//! by default) and annualise with `P` periods per year (252). The risk-free
//! rate is given per year and converted to a per-period rate `rf = R_f / P`
//! before use, because empyrical's `risk_free` argument is per period.

use crate::returns::check_returns;
use crate::{Error, Matrix, Result};

/// Trading days per year used for annualisation.
pub const PERIODS_PER_YEAR: f64 = 252.0;

/// Settings shared by the metrics.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricsConfig {
    /// Annual risk-free rate (e.g. 0.02), used by Sharpe and as Sortino's
    /// required return, both after division by `periods_per_year`.
    pub risk_free_rate: f64,
    /// Periods per year (252 for daily data).
    pub periods_per_year: f64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            risk_free_rate: 0.0,
            periods_per_year: PERIODS_PER_YEAR,
        }
    }
}

/// The metric set reported per asset and per portfolio.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RiskMetrics {
    /// Arithmetic mean return × P.
    pub mean_return: f64,
    /// Compound annual growth rate ([`annual_return`]).
    pub cagr: f64,
    /// Annualised volatility ([`annual_volatility`]).
    pub volatility: f64,
    /// Sharpe ratio ([`sharpe_ratio`]).
    pub sharpe: f64,
    /// Sortino ratio ([`sortino_ratio`]).
    pub sortino: f64,
    /// Maximum drawdown, a negative fraction ([`max_drawdown`]).
    pub max_drawdown: f64,
    /// Calmar ratio ([`calmar_ratio`]).
    pub calmar: f64,
    /// Historical 95 % value at risk, the 5th percentile return (negative = loss).
    pub var_95: f64,
    /// Historical 95 % conditional VaR, the mean of the worst 5 % of returns.
    pub cvar_95: f64,
    /// Beta to the benchmark, when one was given ([`beta`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
}

/// Computes every metric of [`RiskMetrics`] for one return series.
///
/// `benchmark`, when given, must have the same length (aligned dates).
/// Needs at least two returns.
pub fn risk_metrics(
    returns: &[f64],
    benchmark: Option<&[f64]>,
    config: &MetricsConfig,
) -> Result<RiskMetrics> {
    check_series(returns, "return")?;
    let p = config.periods_per_year;
    if !(p.is_finite() && p > 0.0) {
        return Err(Error::InvalidParameter {
            name: "periods per year",
            value: p,
            reason: "must be positive",
            constraint: None,
        });
    }
    let rf = config.risk_free_rate / p;
    let beta = match benchmark {
        Some(b) => {
            if b.len() != returns.len() {
                return Err(Error::DimensionMismatch {
                    what: "benchmark returns",
                    expected: returns.len(),
                    got: b.len(),
                });
            }
            check_series(b, "benchmark return")?;
            Some(beta(returns, b, rf))
        }
        None => None,
    };
    Ok(RiskMetrics {
        mean_return: mean(returns) * p,
        cagr: annual_return(returns, p),
        volatility: annual_volatility(returns, p),
        sharpe: sharpe_ratio(returns, rf, p),
        sortino: sortino_ratio(returns, rf, p),
        max_drawdown: max_drawdown(returns),
        calmar: calmar_ratio(returns, p),
        var_95: value_at_risk(returns, 0.05),
        cvar_95: conditional_value_at_risk(returns, 0.05),
        beta,
    })
}

/// [`risk_metrics`] for every column of a returns matrix.
pub fn risk_metrics_per_asset(
    returns: &Matrix,
    benchmark: Option<&[f64]>,
    config: &MetricsConfig,
) -> Result<Vec<RiskMetrics>> {
    (0..returns.cols())
        .map(|c| risk_metrics(&returns.column(c), benchmark, config))
        .collect()
}

fn check_series(r: &[f64], what: &'static str) -> Result<()> {
    if r.len() < 2 {
        return Err(Error::TooFewObservations {
            what: "returns",
            needed: 2,
            got: r.len(),
        });
    }
    match r.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::NonFinite {
            what,
            row: i,
            column: 0,
            value: r[i],
        }),
    }
}

/// Arithmetic mean `Σ r_t / T`.
pub fn mean(r: &[f64]) -> f64 {
    r.iter().sum::<f64>() / r.len() as f64
}

/// Sample standard deviation with `T − 1` in the denominator (numpy `ddof=1`).
pub fn std_dev(r: &[f64]) -> f64 {
    let m = mean(r);
    let ss: f64 = r.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (r.len() as f64 - 1.0)).sqrt()
}

/// CAGR, empyrical `annual_return`: `(Π (1 + r_t))^(P / T) − 1`.
pub fn annual_return(r: &[f64], periods_per_year: f64) -> f64 {
    let ending: f64 = r.iter().map(|x| 1.0 + x).product();
    let years = r.len() as f64 / periods_per_year;
    ending.powf(1.0 / years) - 1.0
}

/// Annualised volatility, empyrical `annual_volatility`: `std(r, ddof=1) · √P`.
pub fn annual_volatility(r: &[f64], periods_per_year: f64) -> f64 {
    std_dev(r) * periods_per_year.sqrt()
}

/// Sharpe ratio, empyrical `sharpe_ratio`: with excess returns
/// `x_t = r_t − rf` (rf per period), `mean(x) / std(x, ddof=1) · √P`.
/// NaN when the excess returns have zero dispersion.
pub fn sharpe_ratio(r: &[f64], rf_per_period: f64, periods_per_year: f64) -> f64 {
    let x: Vec<f64> = r.iter().map(|v| v - rf_per_period).collect();
    let sd = std_dev(&x);
    if sd == 0.0 {
        return f64::NAN;
    }
    mean(&x) / sd * periods_per_year.sqrt()
}

/// Annualised downside deviation, empyrical `downside_risk`:
/// `√(mean_t min(r_t − m, 0)²) · √P` with required return `m` per period.
/// The mean runs over all `T` periods, not only the losing ones.
pub fn downside_risk(r: &[f64], required_per_period: f64, periods_per_year: f64) -> f64 {
    let sq: Vec<f64> = r
        .iter()
        .map(|v| {
            let d = (v - required_per_period).min(0.0);
            d * d
        })
        .collect();
    mean(&sq).sqrt() * periods_per_year.sqrt()
}

/// Sortino ratio, empyrical `sortino_ratio`:
/// `mean(r − m) · P / downside_risk(r, m)`, with `m` the per-period required
/// return (here the per-period risk-free rate). Infinite when nothing falls
/// below `m`, as in empyrical.
pub fn sortino_ratio(r: &[f64], required_per_period: f64, periods_per_year: f64) -> f64 {
    let excess: Vec<f64> = r.iter().map(|v| v - required_per_period).collect();
    mean(&excess) * periods_per_year / downside_risk(r, required_per_period, periods_per_year)
}

/// Maximum drawdown, empyrical `max_drawdown`: with wealth `W_0 = 100`,
/// `W_t = 100 · Π_{s≤t}(1 + r_s)` and running peak `M_t = max_{s≤t} W_s`,
/// `min_t (W_t − M_t) / M_t` — a number ≤ 0 (−0.35 is a 35 % drawdown).
pub fn max_drawdown(r: &[f64]) -> f64 {
    let start = 100.0;
    let mut growth = 1.0;
    let mut peak: f64 = start;
    let mut worst: f64 = 0.0;
    for x in r {
        growth *= 1.0 + x;
        let w = growth * start;
        peak = peak.max(w);
        worst = worst.min((w - peak) / peak);
    }
    worst
}

/// Calmar ratio, empyrical `calmar_ratio`: `annual_return / |max_drawdown|`,
/// NaN when there is no drawdown.
pub fn calmar_ratio(r: &[f64], periods_per_year: f64) -> f64 {
    let dd = max_drawdown(r);
    if dd < 0.0 {
        let c = annual_return(r, periods_per_year) / dd.abs();
        if c.is_infinite() {
            f64::NAN
        } else {
            c
        }
    } else {
        f64::NAN
    }
}

/// Historical value at risk, empyrical `value_at_risk`: the `cutoff`
/// percentile of the returns with linear interpolation (numpy's default):
/// position `h = cutoff · (T − 1)` in the sorted returns, interpolated
/// between its neighbours. With `cutoff = 0.05` this is the 95 % VaR, a
/// return (negative = loss).
pub fn value_at_risk(r: &[f64], cutoff: f64) -> f64 {
    let mut s = r.to_vec();
    s.sort_by(f64::total_cmp);
    let h = cutoff * (s.len() as f64 - 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    let frac = h - lo as f64;
    // numpy's _lerp: a + (b - a) * t, corrected near t = 1 for monotonicity.
    let (a, b) = (s[lo], s[hi]);
    let diff = b - a;
    if frac >= 0.5 {
        b - diff * (1.0 - frac)
    } else {
        a + diff * frac
    }
}

/// Historical conditional VaR (expected shortfall), empyrical
/// `conditional_value_at_risk`: with `k = ⌊(T − 1) · cutoff⌋`, the mean of
/// the `k + 1` smallest returns.
pub fn conditional_value_at_risk(r: &[f64], cutoff: f64) -> f64 {
    let mut s = r.to_vec();
    s.sort_by(f64::total_cmp);
    let k = ((s.len() as f64 - 1.0) * cutoff) as usize;
    mean(&s[..=k])
}

/// Beta to a benchmark, empyrical `beta`: with `x_t = r_t − rf` and
/// `b_t = benchmark_t − rf`, `mean((b − b̄) · x) / mean((b − b̄)²)`
/// (population moments; the `1/T` factors cancel). NaN for a constant
/// benchmark.
pub fn beta(r: &[f64], benchmark: &[f64], rf_per_period: f64) -> f64 {
    let b: Vec<f64> = benchmark.iter().map(|v| v - rf_per_period).collect();
    let bm = mean(&b);
    let n = r.len() as f64;
    let cov: f64 = b
        .iter()
        .zip(r)
        .map(|(bi, ri)| (bi - bm) * (ri - rf_per_period))
        .sum::<f64>()
        / n;
    let var: f64 = b.iter().map(|bi| (bi - bm) * (bi - bm)).sum::<f64>() / n;
    if var < 1e-30 {
        f64::NAN
    } else {
        cov / var
    }
}

/// Pearson correlation matrix of the columns of `returns` (pandas
/// `DataFrame.corr()`): `ρ_ij = c_ij / √(c_ii c_jj)` with `c` the sample
/// covariance. Needs at least two rows.
pub fn correlation_matrix(returns: &Matrix) -> Result<Matrix> {
    check_returns(returns, 2)?;
    let cov = crate::covariance::raw_sample_cov(returns);
    let n = cov.rows();
    let mut out = Matrix::zeros(n, n);
    for i in 0..n {
        for j in 0..n {
            let d = (cov.get(i, i) * cov.get(j, j)).sqrt();
            let v = if i == j && d > 0.0 {
                1.0
            } else {
                cov.get(i, j) / d
            };
            out.set(i, j, v);
        }
    }
    Ok(out)
}
