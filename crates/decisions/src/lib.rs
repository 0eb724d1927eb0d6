//! Trading decisions: an ensemble of three regime specialists (bull, bear,
//! sideways XGBoost models) weighted by a deterministic regime model, sized
//! by confidence, checked against risk limits, and published as events
//! without waiting for the log.
//!
//! ```no_run
//! # async fn example() -> ultracore_decisions::Result<()> {
//! use std::sync::Arc;
//! use ultracore_decisions::{DecisionConfig, DecisionEngine, DecisionRequest, DecisionService, ServiceOptions, Specialists};
//!
//! let engine = DecisionEngine::new(Specialists::load_dir("models")?, DecisionConfig::default())?;
//! let log = ultracore_log_embedded::EmbeddedLog::open("data", Default::default())?;
//! let service = DecisionService::start(engine, log, "data-spool".as_ref(), ServiceOptions::default()).await?;
//! let request = DecisionRequest::from_json(&serde_json::json!({
//!     "symbol": "AAPL", "features": {"rsi_14": 61.5, "return_20d": 3.2}, "price": 190.0,
//!     "portfolio": {"position_units": 0, "value": 1e6, "correlation_with_holdings": 0.3}
//! })).map_err(ultracore_decisions::Error::Invalid)?;
//! let decision = service.decide(&request)?;       // returns without waiting for the log
//! println!("{} {} ({:.2})", decision.decision.action, decision.decision.quantity, decision.decision.confidence);
//! let router = ultracore_decisions::router(Arc::new(service)); // POST /api/v1/decisions
//! # drop(router); Ok(()) }
//! ```
//!
//! # Layout
//!
//! - `regime`: [`RegimeModel`], the regime probabilities from four features
//!   (a softmax over trend and stress scores; the formulas are there).
//! - `specialists`: [`Specialists`], the three models, their content
//!   digests (`model_version`) and the common signal space.
//! - `request`: [`DecisionRequest`] and its checks; [`InvalidRequest`] names the field.
//! - `config`: [`DecisionConfig`]: thresholds, sizing, risk limits.
//! - `risk`: the three pre-trade checks.
//! - `engine`: [`DecisionEngine::decide`], pure: request → [`Decision`].
//! - `evaluation`: [`EvaluationSet`], what a `model_update` measures.
//! - `service`: [`DecisionService`], the engine plus its events through a
//!   `SpooledEmitter`, and model reloads.
//! - `history`: each symbol's last regime rebuilt from the log at start
//!   ([`RegimeHistoryOptions`], [`RegimeHistory`]).
//! - `metrics`: the `ultracore_decisions_*` metric names and their
//!   Prometheus exposition ([`DecisionService::render_metrics`]).
//! - `http`: [`router`], `POST /api/v1/decisions`.
//! - `error`: [`Error`], [`Result`].

mod config;
mod engine;
mod error;
mod evaluation;
mod history;
mod http;
pub mod metrics;
mod regime;
mod request;
pub mod risk;
mod service;
mod specialists;

pub use config::{DecisionConfig, MissingInputs, RiskLimits, Sizing, Thresholds};
pub use engine::{Decision, DecisionEngine, SpecialistOutput};
pub use error::{Error, Result};
pub use evaluation::{EvaluationSet, StabilityBounds};
pub use history::{RegimeHistory, RegimeHistoryOptions};
pub use http::{router, ApiError};
pub use regime::{Regime, RegimeInputs, RegimeModel, RegimeProbs};
pub use request::{DecisionRequest, InvalidRequest, PortfolioContext};
pub use service::{DecisionService, ServiceOptions, TOPICS};
pub use specialists::{signal, Specialist, Specialists};
