//! Expected-return estimators, as PyPortfolioOpt's `expected_returns` module
//! computes them. Input is a matrix of simple returns (`T × n`), output is
//! one annualised expected return per asset.

use crate::metrics::PERIODS_PER_YEAR;
use crate::returns::{check_returns, equal_weight_returns};
use crate::{Error, Matrix, Result};

/// Which expected-return estimator to use.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "method")]
pub enum ExpectedReturnsMethod {
    /// Compounded mean historical return (CAGR), PyPortfolioOpt's default.
    Mean,
    /// Arithmetic mean × 252.
    MeanArithmetic,
    /// Exponentially weighted mean, compounded.
    Ema {
        /// EMA span in periods (PyPortfolioOpt's default 500).
        span: f64,
    },
    /// CAPM returns with the equal-weighted universe (or a benchmark given to
    /// [`estimate_expected_returns`]) as the market.
    Capm {
        /// Annual risk-free rate.
        risk_free_rate: f64,
    },
}

/// Default EMA span (PyPortfolioOpt `ema_historical_return`).
pub const DEFAULT_EMA_SPAN: f64 = 500.0;

/// Dispatches to the estimator chosen by `method`. `market` (returns aligned
/// with `returns`) is used by CAPM only.
pub fn estimate_expected_returns(
    returns: &Matrix,
    method: ExpectedReturnsMethod,
    market: Option<&[f64]>,
) -> Result<Vec<f64>> {
    match method {
        ExpectedReturnsMethod::Mean => mean_historical_return(returns, true),
        ExpectedReturnsMethod::MeanArithmetic => mean_historical_return(returns, false),
        ExpectedReturnsMethod::Ema { span } => ema_historical_return(returns, span, true),
        ExpectedReturnsMethod::Capm { risk_free_rate } => {
            capm_return(returns, market, risk_free_rate, true)
        }
    }
}

/// Mean historical return, PyPortfolioOpt `mean_historical_return`.
///
/// Compounded: `μ_j = (Π_t (1 + r_tj))^(252 / T) − 1`.
/// Arithmetic: `μ_j = 252 · mean_t r_tj`.
pub fn mean_historical_return(returns: &Matrix, compounding: bool) -> Result<Vec<f64>> {
    check_returns(returns, 1)?;
    Ok((0..returns.cols())
        .map(|c| compound_or_mean(&returns.column(c), compounding))
        .collect())
}

fn compound_or_mean(r: &[f64], compounding: bool) -> f64 {
    let t = r.len() as f64;
    if compounding {
        r.iter()
            .map(|x| 1.0 + x)
            .product::<f64>()
            .powf(PERIODS_PER_YEAR / t)
            - 1.0
    } else {
        r.iter().sum::<f64>() / t * PERIODS_PER_YEAR
    }
}

/// Exponentially weighted mean of a series at its last point, pandas
/// `Series.ewm(span).mean().iloc[-1]` (`adjust=True`): with
/// `α = 2 / (span + 1)`, `Σ_i (1−α)^i r_{T−i} / Σ_i (1−α)^i`.
pub(crate) fn ewm_last(r: &[f64], span: f64) -> f64 {
    let decay = 1.0 - 2.0 / (span + 1.0);
    let (mut num, mut den) = (0.0, 0.0);
    for x in r {
        num = num * decay + x;
        den = den * decay + 1.0;
    }
    num / den
}

/// EMA historical return, PyPortfolioOpt `ema_historical_return`.
///
/// With `m_j` the exponentially weighted mean of asset `j`'s returns at the
/// last date (see `span`; `α = 2/(span+1)`):
/// compounded `μ_j = (1 + m_j)^252 − 1`, arithmetic `μ_j = 252 · m_j`.
pub fn ema_historical_return(returns: &Matrix, span: f64, compounding: bool) -> Result<Vec<f64>> {
    check_returns(returns, 1)?;
    if !(span.is_finite() && span >= 1.0) {
        return Err(Error::InvalidParameter {
            name: "EMA span",
            value: span,
            reason: "must be at least 1",
            constraint: None,
        });
    }
    Ok((0..returns.cols())
        .map(|c| {
            let m = ewm_last(&returns.column(c), span);
            if compounding {
                (1.0 + m).powf(PERIODS_PER_YEAR) - 1.0
            } else {
                m * PERIODS_PER_YEAR
            }
        })
        .collect())
}

/// CAPM expected returns, PyPortfolioOpt `capm_return`.
///
/// The market's returns `m_t` are `market` if given, else the equal-weighted
/// average of the assets. `β_j = cov(r_j, m) / var(m)` (sample moments), the
/// market return `μ_m` is compounded (or arithmetic) as in
/// [`mean_historical_return`], and `μ_j = R_f + β_j (μ_m − R_f)` with the
/// annual risk-free rate `R_f`.
pub fn capm_return(
    returns: &Matrix,
    market: Option<&[f64]>,
    risk_free_rate: f64,
    compounding: bool,
) -> Result<Vec<f64>> {
    check_returns(returns, 2)?;
    let market = match market {
        Some(m) => {
            if m.len() != returns.rows() {
                return Err(Error::DimensionMismatch {
                    what: "market returns",
                    expected: returns.rows(),
                    got: m.len(),
                });
            }
            if let Some(i) = m.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    what: "market return",
                    row: i,
                    column: 0,
                    value: m[i],
                });
            }
            m.to_vec()
        }
        None => equal_weight_returns(returns),
    };
    let t = returns.rows() as f64;
    let mm = market.iter().sum::<f64>() / t;
    let var_m = market.iter().map(|x| (x - mm) * (x - mm)).sum::<f64>() / (t - 1.0);
    if var_m <= 0.0 {
        return Err(Error::InvalidParameter {
            name: "market return variance",
            value: var_m,
            reason: "the market series is constant, so betas are undefined",
            constraint: None,
        });
    }
    let mkt_ret = compound_or_mean(&market, compounding);
    Ok((0..returns.cols())
        .map(|c| {
            let r = returns.column(c);
            let rm = r.iter().sum::<f64>() / t;
            let cov = r
                .iter()
                .zip(&market)
                .map(|(a, b)| (a - rm) * (b - mm))
                .sum::<f64>()
                / (t - 1.0);
            risk_free_rate + cov / var_m * (mkt_ret - risk_free_rate)
        })
        .collect())
}
