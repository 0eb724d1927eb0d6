//! UltraCore's tools for AI agents, over the Model Context Protocol (MCP).
//!
//! [`McpServer`] exposes three tools:
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
//! - `args`: tool arguments the tools check themselves, so a bad field is a
//!   tool error naming it; the request's schema without `request_id`.
//! - `results`: [`ResultLookup`], [`OptimizationStatus`] and
//!   [`TopicResults`], the lookup that follows `esg-portfolio-events`.
//! - `risk`: [`RiskRequest`] → [`RiskReport`] over the data mesh.
//! - `transport`: [`serve_stdio`] and [`http_service`].
//! - `error`: [`Error`] and [`Result`].

mod args;
mod error;
mod results;
mod risk;
mod server;
mod transport;

pub use error::{Error, Result};
pub use results::{OptimizationStatus, ResultLookup, TopicResults};
pub use risk::{calculate_risk_metrics, PortfolioRisk, RiskReport, RiskRequest};
pub use server::{McpServer, TOOLS};
pub use transport::{http_service, serve_stdio, CancellationToken, HttpConfig, HttpService};
