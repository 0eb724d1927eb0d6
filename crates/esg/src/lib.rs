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

mod events;
mod explain;
mod optimize;
mod request;
mod service;

pub use events::{
    completion_event_id, AgentDecision, EsgPortfolioEvent, Holding, OptimizationFailed,
    OptimizationRequest, OptimizationResult, PortfolioInput, Side, Trade, AGGREGATE_TYPE, TOPIC,
};
pub use optimize::{optimize, Failure};
pub use request::validate;
pub use service::{
    ensure_topic, registration, request_envelope, spec, OptimizationService, ServiceStats,
    SERVICE_GROUP, SERVICE_NAME, TOPIC_PARTITIONS,
};
