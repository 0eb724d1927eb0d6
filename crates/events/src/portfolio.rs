//! `portfolio-events`: results of portfolio analytics — risk metrics per
//! asset and optimized portfolios — as facts other services can react to.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::event_family_v1;

pub const TOPIC: &str = "portfolio-events";

/// The aggregate type of analytics results; the aggregate id names the
/// analysed universe (e.g. the price source) or the portfolio.
pub const AGGREGATE_TYPE: &str = "Portfolio";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PortfolioEvent {
    RiskMetricsCalculated(RiskMetricsCalculated),
    PortfolioOptimized(PortfolioOptimized),
    TradeOrdersStaged(TradeOrdersStaged),
}

event_family_v1!(PortfolioEvent {
    RiskMetricsCalculated => "risk_metrics_calculated",
    PortfolioOptimized => "portfolio_optimized",
    TradeOrdersStaged => "trade_orders_staged",
});

/// Daily-return statistics annualised over 252 days (empyrical's definitions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetRisk {
    pub cagr: f64,
    pub mean_return: f64,
    pub volatility: f64,
    pub sharpe: f64,
    pub sortino: f64,
    pub max_drawdown: f64,
    pub calmar: f64,
    pub var_95: f64,
    pub cvar_95: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
}

/// Risk metrics were computed for a set of assets over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskMetricsCalculated {
    pub source: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Daily returns used.
    pub observations: usize,
    pub risk_free_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<String>,
    /// Per ticker.
    pub metrics: BTreeMap<String, AssetRisk>,
}

/// A mean-variance optimization finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortfolioOptimized {
    pub source: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// `min_volatility`, `max_sharpe`, `efficient_risk`, `efficient_return`, `max_quadratic_utility`.
    pub objective: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_volatility: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_return: Option<f64>,
    pub risk_free_rate: f64,
    /// Lower and upper bound of every weight.
    pub weight_bounds: (f64, f64),
    pub expected_returns_method: String,
    pub covariance_method: String,
    /// Ticker → weight; the weights sum to 1.
    pub weights: BTreeMap<String, f64>,
    pub expected_return: f64,
    pub volatility: f64,
    pub sharpe: f64,
    pub solver_status: String,
    pub iterations: u32,
    pub solve_ms: f64,
}

#[cfg(test)]
mod tests {
    use ultracore_log::{DecodeError, EnvelopeBuilder, EventFamily, RawEnvelope};

    use super::*;

    fn optimized() -> PortfolioOptimized {
        PortfolioOptimized {
            source: "prices.csv".into(),
            start: NaiveDate::from_ymd_opt(2020, 1, 2).unwrap(),
            end: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
            objective: "max_sharpe".into(),
            target_volatility: None,
            target_return: None,
            risk_free_rate: 0.02,
            weight_bounds: (0.0, 1.0),
            expected_returns_method: "mean".into(),
            covariance_method: "sample".into(),
            weights: [("A".to_owned(), 0.25), ("B".to_owned(), 0.75)].into(),
            expected_return: 0.1,
            volatility: 0.2,
            sharpe: 0.4,
            solver_status: "solved".into(),
            iterations: 9,
            solve_ms: 0.2,
        }
    }

    #[test]
    fn round_trips_through_a_record() {
        let env = EnvelopeBuilder::new(AGGREGATE_TYPE, "prices.csv")
            .build(PortfolioEvent::PortfolioOptimized(optimized()));
        let record = env.to_record();
        let raw = RawEnvelope::from_bytes(&record.value).unwrap();
        assert_eq!(raw.event_type, "portfolio_optimized");
        assert_eq!(raw.payload["weights"]["B"], 0.75);
        assert_eq!(raw.payload["start"], "2020-01-02");
        let back = raw.typed::<PortfolioEvent>().unwrap();
        assert_eq!(back.payload, env.payload);
    }

    #[test]
    fn refuses_unknown_types_and_newer_versions() {
        let payload = serde_json::to_value(optimized()).unwrap();
        assert_eq!(
            PortfolioEvent::decode("portfolio_rebalanced", 1, payload.clone()),
            Err(DecodeError::UnknownEventType("portfolio_rebalanced".into()))
        );
        assert!(matches!(
            PortfolioEvent::decode("portfolio_optimized", 2, payload),
            Err(DecodeError::UnsupportedVersion { version: 2, .. })
        ));
        assert!(matches!(
            PortfolioEvent::decode("risk_metrics_calculated", 1, serde_json::json!({"x": 1})),
            Err(DecodeError::PayloadMismatch { .. })
        ));
    }
}

/// The execution service staged orders for a completed ESG optimization:
/// whole units, at least the minimum order size; nothing is sent to a
/// market yet (status `staged`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradeOrdersStaged {
    pub request_id: String,
    pub portfolio_id: String,
    pub orders: Vec<StagedOrder>,
    /// Trades of the optimization that did not become orders, and why.
    pub skipped: Vec<SkippedTrade>,
    /// Sum of the orders' notionals (buys and sells).
    pub total_notional: f64,
}

/// One staged order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagedOrder {
    /// Derived from the request id and the ticker, so staging twice yields the same id.
    pub order_id: String,
    pub ticker: String,
    pub isin: String,
    /// `buy` or `sell`.
    pub side: String,
    /// Whole units (rounded towards zero from the optimization's trade).
    pub units: u64,
    /// The latest close the optimization used.
    pub reference_price: f64,
    pub notional: f64,
    /// `staged` when published.
    pub status: String,
}

/// A trade left out of the orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedTrade {
    pub ticker: String,
    pub reason: String,
}
