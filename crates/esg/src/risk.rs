//! `calculate_risk_metrics`: the metrics `ultracore risk` prints (empyrical's
//! definitions, 252 periods a year), per ticker and for a weighted
//! portfolio, from the data mesh's financial product; and
//! `calculate_correlation`, the correlation matrix of the same returns.
//!
//! Prices are read with ISIN pushdown (only the requested instruments' row
//! groups) and aligned exactly as `ultracore risk` aligns a price file:
//! common dates only, then the lookback from the last common date. So the
//! figures equal `ultracore risk --json` on the prices the mesh was built from.
//! Tickers are resolved to ISINs through the ESG product, the mesh's list of
//! instruments (the financial product is keyed and sorted by ISIN).

use std::collections::{BTreeMap, BTreeSet};

use crate::Failure;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use ultracore_marketdata::mesh::{DataMesh, PriceFilter};
use ultracore_marketdata::{DataProvider, Lookback, PriceMatrix};
use ultracore_portfolio::{
    correlation_matrix, portfolio_returns, returns_from_prices, risk_metrics,
    risk_metrics_per_asset, Matrix, MetricsConfig, RiskMetrics,
};

/// The arguments of `calculate_risk_metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RiskRequest {
    /// Tickers in the data products, e.g. `["AAPL", "MSFT", "KO"]`.
    pub tickers: Vec<String>,
    /// Use only the last N years of prices (default: all common history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback_years: Option<f64>,
    /// Portfolio weights by ticker, adding up to 1 (tickers left out weigh
    /// 0): adds the metrics of the portfolio rebalanced to these weights daily.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<BTreeMap<String, f64>>,
    /// Annual risk-free rate for Sharpe and Sortino (default 0, as `ultracore risk`).
    #[serde(default)]
    pub risk_free_rate: f64,
    /// Ticker to compute each asset's beta against (added to the tickers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<String>,
}

/// The metrics of a weighted portfolio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortfolioRisk {
    /// The weights used, by ticker.
    pub weights: BTreeMap<String, f64>,
    /// The portfolio's metrics.
    pub metrics: RiskMetrics,
}

/// What `calculate_risk_metrics` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskReport {
    /// Metrics per ticker: what `ultracore risk --json` prints.
    pub assets: BTreeMap<String, RiskMetrics>,
    /// The weighted portfolio's metrics, when weights were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portfolio: Option<PortfolioRisk>,
    /// First date of the prices used.
    pub start: NaiveDate,
    /// Last date of the prices used.
    pub end: NaiveDate,
    /// Daily returns the metrics are computed from.
    pub observations: usize,
    /// The annual risk-free rate used.
    pub risk_free_rate: f64,
    /// The benchmark of the betas, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<String>,
    /// Where the prices come from.
    pub source: String,
}

/// Computes the metrics of `request` from the mesh's prices. Reads files:
/// call it off the async workers.
///
/// # Errors
///
/// A [`Failure`] naming the argument at fault (an unknown ticker, weights
/// not adding up to 1, too little history) or the data problem.
pub fn calculate_risk_metrics(
    mesh: &DataMesh,
    request: &RiskRequest,
) -> Result<RiskReport, Failure> {
    validate(request)?;
    let mut tickers = request.tickers.clone();
    if let Some(b) = &request.benchmark {
        if !tickers.contains(b) {
            tickers.push(b.clone());
        }
    }
    let field = |i: usize| {
        if i < request.tickers.len() {
            format!("tickers[{i}]")
        } else {
            "benchmark".to_owned()
        }
    };
    let Aligned { prices, returns } =
        aligned_returns(mesh, &tickers, request.lookback_years, field)?;
    let benchmark = request.benchmark.as_ref().map(|b| {
        let i = prices.tickers.iter().position(|t| t == b).unwrap_or(0);
        returns.column(i)
    });
    let config = MetricsConfig {
        risk_free_rate: request.risk_free_rate,
        ..MetricsConfig::default()
    };
    let per_asset = risk_metrics_per_asset(&returns, benchmark.as_deref(), &config)
        .map_err(|e| Failure::general(format!("metrics: {e}")))?;
    let portfolio = match &request.weights {
        None => None,
        Some(weights) => {
            let w: Vec<f64> = prices
                .tickers
                .iter()
                .map(|t| weights.get(t).copied().unwrap_or(0.0))
                .collect();
            let r = portfolio_returns(&returns, &w)
                .map_err(|e| Failure::general(format!("portfolio returns: {e}")))?;
            let metrics = risk_metrics(&r, benchmark.as_deref(), &config)
                .map_err(|e| Failure::general(format!("metrics: {e}")))?;
            Some(PortfolioRisk {
                weights: weights.clone(),
                metrics,
            })
        }
    };
    Ok(RiskReport {
        assets: prices.tickers.iter().cloned().zip(per_asset).collect(),
        portfolio,
        start: prices.dates[0],
        end: prices.dates[prices.dates.len() - 1],
        observations: returns.rows(),
        risk_free_rate: request.risk_free_rate,
        benchmark: request.benchmark.clone(),
        source: source(mesh),
    })
}

fn source(mesh: &DataMesh) -> String {
    format!(
        "{} (data mesh financial product)",
        mesh.dir().join("financial_data_product.parquet").display()
    )
}

/// Prices of some tickers on their common dates, and their daily returns.
struct Aligned {
    prices: PriceMatrix,
    returns: Matrix,
}

/// The prices of `tickers` from the mesh, aligned as `ultracore risk`
/// aligns a price file (common dates, then the lookback from the last
/// one), and their daily returns. `field(i)` names the argument of the
/// `i`th ticker in an error.
fn aligned_returns(
    mesh: &DataMesh,
    tickers: &[String],
    lookback_years: Option<f64>,
    field: impl Fn(usize) -> String,
) -> Result<Aligned, Failure> {
    let data_error =
        |e: ultracore_marketdata::Error| Failure::general(format!("data products: {e}"));
    let records = mesh.esg(None).map_err(data_error)?;
    let isin_of: BTreeMap<&str, &str> = records
        .iter()
        .map(|r| (r.ticker.as_str(), r.isin.as_str()))
        .collect();
    let mut isins = BTreeSet::new();
    for (i, t) in tickers.iter().enumerate() {
        let isin = isin_of.get(t.as_str()).ok_or_else(|| {
            Failure::field(
                &field(i),
                format!(
                    "{t} is not in the data products; known tickers: {}",
                    isin_of.keys().copied().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        isins.insert((*isin).to_owned());
    }
    let (series, _scan) = mesh
        .prices(&PriceFilter {
            isins: Some(isins),
            from: None,
        })
        .map_err(data_error)?;
    let provider = DataProvider::from_series(series.into_iter().map(|(_, s)| s).collect());
    let lookback = lookback_years.map_or(Lookback::All, Lookback::Years);
    // Three prices at least, as `ultracore risk` asks: two returns.
    let prices = provider.price_matrix(tickers, lookback, 3).map_err(|e| {
        Failure::field(
            "lookback_years",
            format!("not enough common price history: {e}"),
        )
    })?;
    let returns = Matrix::from_row_major(
        prices.dates.len(),
        prices.tickers.len(),
        prices.values.clone(),
    )
    .and_then(|m| returns_from_prices(&m))
    .map_err(|e| Failure::general(format!("returns: {e}")))?;
    Ok(Aligned { prices, returns })
}

/// The arguments of [`calculate_correlation`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CorrelationRequest {
    /// Two or more tickers in the data products, e.g. `["KO", "PEP"]`.
    pub tickers: Vec<String>,
    /// Use only the last N years of prices (default: all common history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback_years: Option<f64>,
}

/// What [`calculate_correlation`] answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorrelationReport {
    /// The tickers, in the order of the matrix's rows and columns.
    pub tickers: Vec<String>,
    /// Pearson correlation of daily returns, `matrix[i][j]` between
    /// `tickers[i]` and `tickers[j]` (1 on the diagonal).
    pub matrix: Vec<Vec<f64>>,
    /// First date of the prices used.
    pub start: NaiveDate,
    /// Last date of the prices used.
    pub end: NaiveDate,
    /// Daily returns the correlations are computed from.
    pub observations: usize,
    /// Where the prices come from.
    pub source: String,
}

/// The correlation matrix of the daily returns of `request.tickers`, on
/// the prices `calculate_risk_metrics` reads for them. Reads files: call it
/// off the async workers.
///
/// # Errors
///
/// A [`Failure`] naming the argument at fault (fewer than two tickers, an
/// unknown or repeated one, too little history) or the data problem.
pub fn calculate_correlation(
    mesh: &DataMesh,
    request: &CorrelationRequest,
) -> Result<CorrelationReport, Failure> {
    validate_correlation(request)?;
    let Aligned { prices, returns } =
        aligned_returns(mesh, &request.tickers, request.lookback_years, |i| {
            format!("tickers[{i}]")
        })?;
    let corr =
        correlation_matrix(&returns).map_err(|e| Failure::general(format!("correlation: {e}")))?;
    Ok(CorrelationReport {
        matrix: (0..corr.rows()).map(|i| corr.row(i).to_vec()).collect(),
        tickers: prices.tickers,
        start: prices.dates[0],
        end: prices.dates[prices.dates.len() - 1],
        observations: returns.rows(),
        source: source(mesh),
    })
}

fn validate_correlation(r: &CorrelationRequest) -> Result<(), Failure> {
    if r.tickers.len() < 2 {
        return Err(Failure::field(
            "tickers",
            "name at least two tickers, e.g. [\"KO\", \"PEP\"]",
        ));
    }
    validate(&RiskRequest {
        tickers: r.tickers.clone(),
        lookback_years: r.lookback_years,
        weights: None,
        risk_free_rate: 0.0,
        benchmark: None,
    })
}

fn validate(r: &RiskRequest) -> Result<(), Failure> {
    if r.tickers.is_empty() {
        return Err(Failure::field(
            "tickers",
            "name at least one ticker, e.g. [\"AAPL\", \"MSFT\"]",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, t) in r.tickers.iter().enumerate() {
        if !seen.insert(t) {
            return Err(Failure::field(
                &format!("tickers[{i}]"),
                format!("{t} is named twice"),
            ));
        }
    }
    if let Some(y) = r.lookback_years {
        if !(y.is_finite() && y > 0.0 && y <= 100.0) {
            return Err(Failure::field(
                "lookback_years",
                format!(
                    "{y} is not a number of years between 0 and 100 (leave it out for all history)"
                ),
            ));
        }
    }
    if !(r.risk_free_rate.is_finite() && r.risk_free_rate.abs() < 1.0) {
        return Err(Failure::field(
            "risk_free_rate",
            format!("{} is not an annual rate (e.g. 0.02)", r.risk_free_rate),
        ));
    }
    if let Some(weights) = &r.weights {
        for (t, w) in weights {
            if !r.tickers.contains(t) {
                return Err(Failure::field(
                    &format!("weights.{t}"),
                    format!(
                        "{t} is not one of the tickers; add it to `tickers` or remove its weight"
                    ),
                ));
            }
            if !w.is_finite() {
                return Err(Failure::field(
                    &format!("weights.{t}"),
                    format!("{w} is not a weight"),
                ));
            }
        }
        let sum: f64 = weights.values().sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(Failure::field(
                "weights",
                format!("the weights add up to {sum:.6}; they must add up to 1"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RiskRequest {
        RiskRequest {
            tickers: vec!["AAPL".into(), "MSFT".into()],
            lookback_years: Some(3.0),
            weights: None,
            risk_free_rate: 0.02,
            benchmark: None,
        }
    }

    #[test]
    fn a_correlation_needs_two_distinct_tickers() {
        let field = |tickers: &[&str]| {
            validate_correlation(&CorrelationRequest {
                tickers: tickers.iter().map(|t| (*t).to_owned()).collect(),
                lookback_years: None,
            })
            .err()
            .and_then(|f| f.field)
        };
        assert_eq!(field(&["KO", "PEP"]), None);
        assert_eq!(field(&["KO"]).as_deref(), Some("tickers"));
        assert_eq!(field(&["KO", "KO"]).as_deref(), Some("tickers[1]"));
    }

    #[test]
    fn bad_arguments_name_the_field() {
        let field = |r: RiskRequest| validate(&r).unwrap_err().field.unwrap();
        assert!(validate(&request()).is_ok());
        assert_eq!(
            field(RiskRequest {
                tickers: vec![],
                ..request()
            }),
            "tickers"
        );
        assert_eq!(
            field(RiskRequest {
                tickers: vec!["A".into(), "B".into(), "A".into()],
                ..request()
            }),
            "tickers[2]"
        );
        assert_eq!(
            field(RiskRequest {
                lookback_years: Some(-1.0),
                ..request()
            }),
            "lookback_years"
        );
        assert_eq!(
            field(RiskRequest {
                risk_free_rate: f64::NAN,
                ..request()
            }),
            "risk_free_rate"
        );
        assert_eq!(
            field(RiskRequest {
                weights: Some([("KO".to_owned(), 1.0)].into()),
                ..request()
            }),
            "weights.KO"
        );
        assert_eq!(
            field(RiskRequest {
                weights: Some([("AAPL".to_owned(), 0.5), ("MSFT".to_owned(), 0.4)].into()),
                ..request()
            }),
            "weights"
        );
    }
}
