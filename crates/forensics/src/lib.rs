//! SHAP forensics for trading decisions: every `trading_decision` on the
//! log is explained off the trading path — exact path-dependent TreeSHAP
//! for each regime specialist and for the regime-weighted ensemble, and a
//! plain-words explanation — stored in SQLite, and served over HTTP.
//!
//! ```no_run
//! # async fn example(log: impl ultracore_log::EventLog) -> ultracore_forensics::Result<()> {
//! use ultracore_forensics::{router, ApiState, ForensicsConfig, ForensicsService};
//!
//! let config = ForensicsConfig { db: "data/forensics.sqlite".into(), ..Default::default() };
//! let service = ForensicsService::new(log, config)?;          // loads models/, opens the store
//! let api = router(ApiState::new(service.reader()?, service.metrics()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! tokio::spawn(async move { axum::serve(listener, api).await });
//! let stats = service.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - `config`: [`ForensicsConfig`], every setting with its default.
//! - `decode`: a record to a [`DecodedDecision`] or a [`Rejection`] (the
//!   dead-letter reason); [`parse_decision_id`].
//! - `explain`: [`Specialists`], the pure part: SHAP values of a decision for
//!   each specialist and for the ensemble ([`Explanation`]); the module
//!   documents why the ensemble's values are the weighted sums.
//! - `codec`: the store's binary forms of a decision and of SHAP values.
//! - `narrative`: the plain-words explanation (written on read).
//! - `store`: [`ForensicsStore`] (the writer: batched inserts, idempotent per
//!   decision id, retention purge, migrations) and [`StoreReader`] (readers
//!   for the API); `store/migrations` holds the versioned migrations.
//! - `query`: the listing ([`StoreReader::query`] with a [`ForensicsQuery`],
//!   answering a [`Page`]) and the statistics ([`StoreReader::symbol_stats`],
//!   [`StoreReader::regime_stats`]) over the store, and the parsing of their
//!   HTTP parameters (`query/params`: [`ForensicsQuery::from_params`],
//!   [`days_param`]); the module says why they stay fast on a million rows.
//! - `report`: a stored explanation as JSON.
//! - `service`: [`ForensicsService`], the consumer group and its pipeline
//!   (poll → worker threads → writer thread → dead letters → commit).
//! - `metrics`: [`ForensicsMetrics`] and the Prometheus exposition.
//! - `http`: [`router`] and [`ApiState`]: one explanation, the listing,
//!   the statistics, `/metrics`.
//! - `error`: [`Error`], [`Result`].
//!
//! # Guarantees
//!
//! - SHAP values plus the expected value equal the model's double-precision
//!   margin to rounding (tests: 1e-9), for each specialist and the ensemble;
//!   they equal shap's `TreeExplainer` within 1e-4 × (1 + |value|).
//! - One row per decision id, whatever the redeliveries; offsets are
//!   committed only after the rows are durable (fsynced).
//! - A malformed record goes to `trading_decisions.dlq` with the reason;
//!   the service goes on.

mod codec;
mod config;
mod decode;
mod error;
mod explain;
mod http;
pub mod metrics;
mod narrative;
mod query;
pub mod report;
mod service;
mod store;

pub use codec::{decode_decision, encode_decision, DecisionHead, FeatureIndex};
pub use config::{ForensicsConfig, DEFAULT_RETENTION_DAYS, SERVICE_GROUP};
pub use decode::{
    decode, parse_decision_id, DecisionView, DecodedDecision, Pairs, Rejection, Text,
};
pub use error::{Error, Result};
pub use explain::{Explanation, Inputs, Part, Specialists, Workspace, SPECIALISTS};
pub use http::{api_router, router, ApiError, ApiState};
pub use metrics::{EmitterStatsSource, ForensicsMetrics};
pub use narrative::{narrative, top_features};
pub use query::{
    days_param, since_days, ActionCounts, Contribution, DecisionSummary, ForensicsQuery,
    InvalidParameter, Page, RegimeShare, RegimeStats, Spread, SymbolStats, DEFAULT_DAYS,
    DEFAULT_LIMIT, MAX_DAYS, MAX_LIMIT, TOP_CONTRIBUTIONS,
};
pub use service::{ForensicsService, ServiceStats, TOPIC_PARTITIONS};
pub use store::{
    decode_values, encode_values, ForensicsStore, Inserted, ModelSet, NewExplanation, StoreReader,
    StoredExplanation,
};
