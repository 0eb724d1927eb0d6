//! `esg-portfolio-events`: requests, completions and failures.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use ultracore_log::{payload_as, DecodeError, EventFamily};
use ultracore_portfolio::{EsgConstraints, EsgObjective, PortfolioFigures};
use uuid::Uuid;

pub const TOPIC: &str = "esg-portfolio-events";
/// The aggregate of these events; the aggregate id is the portfolio id.
pub const AGGREGATE_TYPE: &str = "Portfolio";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EsgPortfolioEvent {
    Requested(Box<OptimizationRequest>),
    Completed(Box<OptimizationResult>),
    Failed(OptimizationFailed),
}

impl EventFamily for EsgPortfolioEvent {
    fn event_type(&self) -> &'static str {
        match self {
            EsgPortfolioEvent::Requested(_) => "portfolio_optimization_requested",
            EsgPortfolioEvent::Completed(_) => "portfolio_optimization_completed",
            EsgPortfolioEvent::Failed(_) => "portfolio_optimization_failed",
        }
    }
    fn schema_version(&self) -> u32 {
        1
    }
    fn to_payload(&self) -> serde_json::Value {
        match self {
            EsgPortfolioEvent::Requested(p) => serde_json::to_value(p),
            EsgPortfolioEvent::Completed(p) => serde_json::to_value(p),
            EsgPortfolioEvent::Failed(p) => serde_json::to_value(p),
        }
        .expect("payloads always serialize")
    }
    fn decode(
        event_type: &str,
        schema_version: u32,
        payload: serde_json::Value,
    ) -> Result<Self, DecodeError> {
        if schema_version > 1 {
            return Err(DecodeError::UnsupportedVersion {
                event_type: event_type.to_owned(),
                version: schema_version,
                newest: 1,
            });
        }
        match event_type {
            "portfolio_optimization_requested" => {
                payload_as(event_type, payload).map(|r| EsgPortfolioEvent::Requested(Box::new(r)))
            }
            "portfolio_optimization_completed" => {
                payload_as(event_type, payload).map(|r| EsgPortfolioEvent::Completed(Box::new(r)))
            }
            "portfolio_optimization_failed" => {
                payload_as(event_type, payload).map(EsgPortfolioEvent::Failed)
            }
            other => Err(DecodeError::UnknownEventType(other.to_owned())),
        }
    }
}

/// One position of the current portfolio: by ticker or ISIN, in units or
/// as a weight of the portfolio's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Holding {
    /// Ticker in the data products (give the ticker or the ISIN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticker: Option<String>,
    /// ISIN in the data products (give the ticker or the ISIN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isin: Option<String>,
    /// Units held (give units or weight, the same for every holding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<f64>,
    /// Weight of the portfolio's value, 0–1 (needs `portfolio.value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

/// The current portfolio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct PortfolioInput {
    /// The positions held now.
    #[serde(default)]
    pub holdings: Vec<Holding>,
    /// Cash, in the portfolio's currency (with unit holdings).
    #[serde(default)]
    pub cash: f64,
    /// Total value; required when holdings are weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

fn default_lookback() -> f64 {
    5.0
}
fn default_rf() -> f64 {
    0.02
}
fn default_objective() -> EsgObjective {
    EsgObjective::MaxSharpe
}

/// What a `portfolio_optimization_requested` event asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct OptimizationRequest {
    /// Identifies the request and its answer.
    pub request_id: Uuid,
    /// The portfolio (the aggregate id, 1 to 128 characters).
    pub portfolio_id: String,
    /// The current portfolio.
    pub portfolio: PortfolioInput,
    /// What to optimize.
    #[serde(default = "default_objective")]
    pub objective: EsgObjective,
    /// What the new portfolio must satisfy.
    #[serde(default)]
    pub constraints: EsgConstraints,
    /// Tickers the new portfolio may hold besides the current ones (empty: every instrument in the data products).
    #[serde(default)]
    pub universe: Vec<String>,
    /// Years of price history for the estimates.
    #[serde(default = "default_lookback")]
    pub lookback_years: f64,
    /// Annual risk-free rate (e.g. 0.02).
    #[serde(default = "default_rf")]
    pub risk_free_rate: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

/// One trade to reach the new weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    pub ticker: String,
    pub isin: String,
    pub side: Side,
    /// New weight minus current weight.
    pub weight_change: f64,
    /// Units at the latest price (fractional; execution rounds).
    pub units: f64,
    pub price: f64,
    pub notional: f64,
    pub estimated_cost: f64,
}

/// `portfolio_optimization_completed`: the full result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizationResult {
    pub request_id: Uuid,
    pub portfolio_id: String,
    pub objective: EsgObjective,
    /// Ticker → new weight (assets at zero left out).
    pub weights: BTreeMap<String, f64>,
    pub trades: Vec<Trade>,
    pub portfolio_value: f64,
    pub before: PortfolioFigures,
    pub after: PortfolioFigures,
    #[serde(default)]
    pub without_esg_constraints: Option<PortfolioFigures>,
    pub binding_constraints: Vec<String>,
    pub cancelled_small_trades: Vec<String>,
    pub explanation: Vec<String>,
    /// The ESG data product says it is synthetic.
    pub esg_data_synthetic: bool,
    pub data_start: NaiveDate,
    pub data_end: NaiveDate,
    pub observations: usize,
    pub solver_status: String,
    pub solve_ms: f64,
    /// The Epsilon Agent's decision (objective `epsilon` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentDecision>,
    /// The long-only efficient frontier of the universe over the same data
    /// (without the request's ESG and weight constraints), lowest risk
    /// first, for charts: where `before` and `after` sit against it. Empty
    /// when it could not be traced (results of older versions too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frontier: Vec<FrontierPoint>,
}

/// One point of an efficient frontier (annualised).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrontierPoint {
    pub volatility: f64,
    pub expected_return: f64,
}

/// What the Epsilon Agent decided and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentDecision {
    /// SHA-256 of the model file that decided.
    pub agent_version: String,
    /// Base portfolio → its share of the mix.
    pub mix: BTreeMap<String, f64>,
    /// Why, in words.
    pub reasons: Vec<String>,
    /// The model's fold that decided (its test year; the last fold for
    /// live requests).
    pub fold: i32,
}

/// `portfolio_optimization_failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizationFailed {
    pub request_id: Uuid,
    pub portfolio_id: String,
    pub reason: String,
    /// The request field at fault, when one is (`constraints.min_esg_score`, …).
    #[serde(default)]
    pub field: Option<String>,
}

/// The event id of a request's completion or failure: derived from the
/// request id, so a request processed twice (after a crash) yields the same
/// event id and consumers that deduplicate by id see one result.
pub fn completion_event_id(request_id: Uuid) -> Uuid {
    // A UUIDv5 over the request id and a tag of its own, in the namespace
    // every derived id shares, so it equals no other derived id.
    ultracore_log::derive_event_id(request_id, b"esg-result", 0)
}
