//! UltraCore's tools for AI agents, over the Model Context Protocol (MCP).
//!
//! [`McpServer`] exposes these tools:
//!
//! - `optimize_portfolio_esg`: checks an ESG optimization request (the
//!   fields of `portfolio_optimization_requested` without `request_id`),
//!   appends it to `esg-portfolio-events` and answers at once
//!   `{status: "pending", message, request_id}`; the optimization service
//!   answers the event.
//! - `get_optimization_result`: where a request stands, `{status: pending |
//!   completed | failed, result | reason}`, through a [`ResultLookup`]
//!   ([`TopicResults`] reads the topic; a read model can take its place).
//! - `calculate_risk_metrics`: the metrics `ultracore risk` prints, per
//!   ticker and for a weighted portfolio, from the data mesh's prices.
//!
//! With [`McpServer::with_agents`], also the customer assistant and its
//! agents' tools ([`AGENT_TOOLS`]: `assist`, `get_card_account`,
//! `recommend_cards`, the loan calculators) under the `assist` permission
//! (a customer's key only about its own customer), the CRM's
//! `log_customer_interaction` (`ingest-external`), and the ESG tools
//! ([`ESG_TOOLS`]): `get_esg_profile`, `screen_portfolio_esg`,
//! `generate_esg_report`, and `set_esg_preferences` /
//! `update_exclusion_list`, recorded as events on the Portfolio.
//!
//! Bad input is a tool error (`isError: true`) naming the field and what to
//! do, never a protocol error: MCP clients show tool errors to the model,
//! which can then fix its call.
//!
//! Two transports: [`serve_stdio`] (what `ultracore mcp` runs) and
//! [`http_service`], a tower service for an axum `Router` at `/mcp`
//! (streamable HTTP).
//!
//! # Layout
//!
//! - `server`: [`McpServer`], the tools and the server's description.
//! - `agent_tools`: [`AgentTools`], the assistant's and agents' tools.
//! - `esg_tools`: the ESG profile, screening, report and preferences tools.
//! - `args`: tool arguments the tools check themselves, so a bad field is a
//!   tool error naming it; the request's schema without `request_id`.
//! - `results`: [`ResultLookup`], [`OptimizationStatus`] and
//!   [`TopicResults`], the lookup that follows `esg-portfolio-events`.
//! - `transport`: [`serve_stdio`] and [`http_service`].
//! - `error`: [`Error`] and [`Result`].

mod agent_tools;
mod args;
mod error;
mod esg_tools;
mod results;
mod server;
mod transport;

pub use agent_tools::{AgentTools, AGENT_TOOLS};
pub use error::{Error, Result};
pub use esg_tools::ESG_TOOLS;
pub use results::{OptimizationStatus, ResultLookup, TopicResults};
pub use server::{McpServer, TOOLS};
pub use transport::{http_service, serve_stdio, CancellationToken, HttpConfig, HttpService};
pub use ultracore_esg::risk::{calculate_risk_metrics, PortfolioRisk, RiskReport, RiskRequest};
