//! The customer-side agents on the log.
//!
//! # Layout
//!
//! - `screen.rs`: [`Screen`], the governance check of an agent's answer —
//!   every string of a JSON value scanned for personal data, findings as
//!   [`ComplianceAlert`](ultracore_events::compliance::ComplianceAlert)s
//!   with keyed fingerprints (never the value), and a blocking mode that
//!   masks the values in place; [`GovernanceKey`], the deployment's
//!   fingerprint key in the data directory.
//! - `intent.rs`: [`detect`], the planner's intent detection (card, loan,
//!   wealth, general; several at once), with the cues behind each: cue
//!   rules, and a small model trained on the labelled sets that adds what
//!   they miss ([`warm_up`] trains it before the first question).
//! - [`account`]: the event-sourced card account (`es.CardAccount`):
//!   balance, available credit, recent transactions.
//! - [`cards`]: the card agent's product tools — the shipped catalogue
//!   and a recommender that values each card for one customer.
//! - [`loan`]: the loan agent's tools — amounts as written, repayments,
//!   schedules, LVR, borrowing power by serviceability.
//! - [`runtime`]: the agent runtime — a priority queue served by workers,
//!   per-agent limits, timeouts, retries with jittered backoff at the back
//!   of the queue, a result cache, customers' short memory, executions
//!   published.
//! - [`specialists`]: the card and loan agents.
//! - [`wealth`]: the wealth agent — risk metrics and correlations of named
//!   shares or the caller's portfolio from the data mesh, and ESG
//!   rebalancing requests through the asynchronous optimization flow.
//! - [`demo`]: sample card accounts for the demo customers.
//! - [`assist`]: the pipeline — planner, agents in parallel, critic,
//!   governance, one reply; optionally a language model's rephrasing of
//!   each answer, checked again by the critic and the screen.
//! - `language.rs`: [`LanguageModel`], the optional model, and
//!   [`OpenAiCompatible`], its client of an OpenAI-compatible
//!   chat-completions endpoint (vLLM, Ollama, llama.cpp, OpenAI) over
//!   plain http, configured by `ULTRACORE_MODEL_*`.
//! - [`http`]: `POST /api/v1/assist`, and who may ask about whom.
//! - [`replay`]: an execution run again from its event and compared.
//! - [`crm`]: customer interactions from the CRM, screened and published
//!   on `external.crm.events`.
//! - `governance.rs`: the governance service — a consumer of
//!   `agent.executions` that screens every answer and raises
//!   `compliance_alert`s on `compliance.alerts`.
//! - [`analytics`]: the agent analytics service — a consumer of
//!   `agent.executions` that stores every execution once (SQLite) and
//!   serves per-agent counts, success rates, duration percentiles and
//!   trends at `GET /api/v1/analytics/agents[/{agent_id}]`.

pub mod account;
pub mod analytics;
pub mod assist;
pub mod cards;
pub mod conversation;
pub mod crm;
pub mod demo;
mod governance;
pub mod http;
mod intent;
mod language;
pub mod loan;
mod money;
pub mod replay;
pub mod runtime;
mod screen;
pub mod specialists;
pub mod wealth;

pub use governance::{
    registration as governance_registration, spec as governance_spec, GovernanceService,
    SERVICE_GROUP,
};
pub use intent::{detect, warm_up, Detected, Intent, TUNING_SETS as INTENT_TUNING_SETS};
pub use language::{
    ChatMessage, Completion, LanguageModel, ModelError, OpenAiCompatible, Role, DEFAULT_MAX_TOKENS,
    DEFAULT_TIMEOUT,
};
pub use screen::{GovernanceKey, Mode, Screen, Screened};

/// What can go wrong outside a handler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("governance key {path}: {reason}")]
    Key { path: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
