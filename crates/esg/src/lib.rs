//! ESG portfolio optimization as an asynchronous flow: a
//! `portfolio_optimization_requested` event carries the current portfolio,
//! the objective and the constraints; the optimization reads the data
//! mesh's products, rebalances with [`ultracore_portfolio::EsgOptimizer`],
//! and answers with `portfolio_optimization_completed` (weights, trade list,
//! figures before and after, an explanation in words) or
//! `portfolio_optimization_failed` (the reason and the input at fault).
//!
//! # Layout
//!
//! - `events`: the `esg-portfolio-events` family and its payloads.
//! - `request`: validation of a request against the data products.
//! - `optimize`: [`optimize`], the whole computation for one request.
//! - `explain`: the plain-words explanation.
//! - `service`: [`OptimizationService`], the consumer group that answers requests.
//! - [`risk`]: [`risk::RiskRequest`] → [`risk::RiskReport`] over the data
//!   mesh (the MCP tool `calculate_risk_metrics` and the wealth agent).
//! - [`screening`]: an issuer's ESG profile, a portfolio screened against
//!   [`screening::ScreeningCriteria`] (violations by severity,
//!   recommendations) and a portfolio's ESG report, over the data mesh's
//!   ESG product.

mod events;
mod explain;
mod optimize;
mod request;
pub mod risk;
pub mod screening;
mod service;

pub use events::{
    completion_event_id, AgentDecision, EsgPortfolioEvent, FrontierPoint, Holding,
    OptimizationFailed, OptimizationRequest, OptimizationResult, PortfolioInput, Side, Trade,
    AGGREGATE_TYPE, TOPIC,
};
pub use optimize::{optimize, Failure};
pub use request::validate;
pub use service::{
    ensure_topic, registration, request_envelope, spec, OptimizationService, ServiceStats,
    SERVICE_GROUP, SERVICE_NAME, TOPIC_PARTITIONS,
};
