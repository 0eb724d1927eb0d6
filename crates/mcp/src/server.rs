//! [`McpServer`]: the tools, their arguments and answers.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Extensions, Implementation, ServerCapabilities, ServerConfig,
};
use rmcp::{tool, tool_handler, tool_router, ServerHandler};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use ultracore_auth::{Permission, Principal};
use ultracore_esg::{request_envelope, validate, Failure, OptimizationRequest, TOPIC};
use ultracore_log::{EventLog, EventLogExt};
use ultracore_marketdata::mesh::DataMesh;
use uuid::Uuid;

use crate::args::{parse, Checked, RequestWithoutId};
use crate::results::{OptimizationStatus, ResultLookup};
use ultracore_esg::risk::{
    calculate_correlation, calculate_risk_metrics, CorrelationRequest, RiskRequest,
};

/// The names of the tools, in the order they are listed.
pub const TOOLS: [&str; 4] = [
    "optimize_portfolio_esg",
    "get_optimization_result",
    "calculate_risk_metrics",
    "calculate_correlation",
];

const INSTRUCTIONS: &str = "UltraCore, an event-sourced wealth and trading core. \
optimize_portfolio_esg submits an ESG-aware rebalancing of a portfolio and returns a request_id at once; \
poll get_optimization_result with it until the status is completed (new weights, trade list, figures \
before and after, an explanation) or failed (the reason and the field at fault). \
calculate_risk_metrics computes return and risk metrics of tickers or a weighted portfolio from the \
platform's price data. The ESG data shipped with UltraCore is synthetic unless the operator replaced it.";

/// The MCP server of one UltraCore deployment: submits requests to `log`,
/// reads prices and ESG data from `mesh`, answers result queries through
/// `results`.
///
/// Cheap to clone (the HTTP transport makes one per session).
#[derive(Clone)]
pub struct McpServer<L: EventLog> {
    log: L,
    mesh: DataMesh,
    results: Arc<dyn ResultLookup>,
    agents: Option<crate::agent_tools::AgentTools<L>>,
    tool_router: ToolRouter<Self>,
}

impl<L: EventLog> std::fmt::Debug for McpServer<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("mesh", &self.mesh.dir())
            .field("tools", &TOOLS)
            .finish_non_exhaustive()
    }
}

/// The argument of `get_optimization_result`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ResultQuery {
    /// The `request_id` that `optimize_portfolio_esg` returned (a UUID).
    request_id: String,
}

#[tool_router]
impl<L: EventLog> McpServer<L> {
    /// A server over `log` (where requests go; the optimization service
    /// must consume it, in this process or elsewhere), `mesh` (the data
    /// products) and `results` (where answers are looked up).
    pub fn new(log: L, mesh: DataMesh, results: Arc<dyn ResultLookup>) -> Self {
        McpServer {
            log,
            mesh,
            results,
            agents: None,
            tool_router: Self::tool_router(),
        }
    }

    /// Adds the assistant, its agents' tools and the CRM tool
    /// ([`crate::AGENT_TOOLS`]), and the ESG tools that read and record a
    /// portfolio's preferences ([`crate::ESG_TOOLS`]).
    pub fn with_agents(mut self, tools: crate::agent_tools::AgentTools<L>) -> Self {
        self.agents = Some(tools);
        self.tool_router += Self::agent_tool_router();
        self.tool_router += Self::esg_tool_router();
        self
    }

    pub(crate) fn agents(&self) -> Option<&crate::agent_tools::AgentTools<L>> {
        self.agents.as_ref()
    }

    /// Submits an ESG optimization request (an event) and answers at once.
    #[tool(
        name = "optimize_portfolio_esg",
        description = "Rebalance a portfolio under ESG constraints (minimum ESG score, maximum carbon \
intensity, excluded sectors/issuers/tickers, asset and sector bounds, turnover limit, transaction costs, \
minimum trade size) with an objective (max_sharpe, min_volatility, max_return at a volatility budget, \
an esg_tradeoff, or epsilon: the Epsilon Agent's learned mix of base portfolios, each solved under the \
constraints). Holdings are given in units (with cash) or as weights (with the portfolio's value), by \
ticker or ISIN. The request is queued as an event and this tool returns at once \
{status: \"pending\", message, request_id}; call get_optimization_result with the request_id for the \
new weights, trade list, figures before/after and an explanation."
    )]
    async fn optimize_portfolio_esg(
        &self,
        Parameters(args): Parameters<Checked<RequestWithoutId>>,
        context: Extensions,
    ) -> CallToolResult {
        let caller = match caller(&context, Permission::RequestOptimization) {
            Ok(p) => p,
            Err(f) => return tool_error(&f, ""),
        };
        let request = match self.check_request(args).await {
            Ok(r) if !caller.can_access_portfolio(&r.portfolio_id) => {
                return tool_error(
                    &Failure::field(
                        "portfolio_id",
                        format!("portfolio '{}' is not found for this key", r.portfolio_id),
                    ),
                    "Use one of the portfolios your key covers.",
                )
            }
            Ok(r) => r,
            Err(f) => {
                return tool_error(
                    &f,
                    "Fix the argument and call optimize_portfolio_esg again.",
                )
            }
        };
        let request_id = request.request_id;
        let portfolio_id = request.portfolio_id.clone();
        let mut envelope = request_envelope(request);
        envelope.principal = Some(caller.id().to_owned());
        let record = envelope.to_record();
        if let Err(e) = self.log.append_one(TOPIC, record).await {
            tracing::warn!(error = %e, %request_id, "could not append an optimization request");
            return tool_error(
                &Failure::general(format!("the event log did not accept the request: {e}")),
                "Nothing was submitted; try again later.",
            );
        }
        tracing::info!(%request_id, portfolio_id, "optimization requested");
        CallToolResult::structured(json!({
            "status": "pending",
            "message": format!(
                "Optimization of portfolio {portfolio_id} requested. Call get_optimization_result \
                 with request_id {request_id} to get the result (usually within a few seconds)."
            ),
            "request_id": request_id,
            "portfolio_id": portfolio_id,
        }))
    }

    /// Where a request stands.
    #[tool(
        name = "get_optimization_result",
        description = "The state of an optimization requested with optimize_portfolio_esg: \
{status: \"pending\"} while the optimization service works on it, {status: \"completed\", result} with \
the new weights, trade list (ticker, side, units, notional, estimated cost), figures before and after \
(expected return, volatility, Sharpe, ESG score, carbon intensity, turnover), binding constraints and an \
explanation, or {status: \"failed\", reason, field} naming the input at fault."
    )]
    async fn get_optimization_result(
        &self,
        Parameters(args): Parameters<Checked<ResultQuery>>,
        context: Extensions,
    ) -> CallToolResult {
        const HINT: &str =
            "Pass the request_id that optimize_portfolio_esg returned, e.g. \"0190f5a0-...\".";
        let caller = match caller(&context, Permission::ReadPortfolios) {
            Ok(p) => p,
            Err(f) => return tool_error(&f, ""),
        };
        let query = match args.parse() {
            Ok(q) => q,
            Err(f) => return tool_error(&f, HINT),
        };
        let Ok(request_id) = Uuid::parse_str(query.request_id.trim()) else {
            return tool_error(
                &Failure::field(
                    "request_id",
                    format!("{:?} is not a UUID", query.request_id),
                ),
                HINT,
            );
        };
        let status = match self.results.status(request_id).await {
            Ok(Some(s)) if caller.can_access_portfolio(s.portfolio_id()) => s,
            Ok(_) => {
                return tool_error(
                    &Failure::field(
                        "request_id",
                        format!("no optimization request {request_id} is known on {TOPIC}"),
                    ),
                    HINT,
                )
            }
            Err(e) => {
                return tool_error(
                    &Failure::general(format!("results are unavailable: {e}")),
                    "Try again later.",
                )
            }
        };
        CallToolResult::structured(status_json(request_id, status))
    }

    /// Risk and return metrics from the data mesh's prices.
    #[tool(
        name = "calculate_risk_metrics",
        description = "Risk and return metrics of tickers, and of a portfolio when weights are given, \
from the platform's daily prices (empyrical's definitions, annualised over 252 days): CAGR, mean return, \
volatility, Sharpe, Sortino, max drawdown, Calmar, 95% VaR and CVaR (daily returns, negative = loss), \
and beta against an optional benchmark. The same figures as `ultracore risk --json`."
    )]
    async fn calculate_risk_metrics(
        &self,
        Parameters(args): Parameters<Checked<RiskRequest>>,
        context: Extensions,
    ) -> CallToolResult {
        const HINT: &str = "Fix the argument and call calculate_risk_metrics again.";
        if let Err(f) = caller(&context, Permission::ReadPortfolios) {
            return tool_error(&f, "");
        }
        let request = match args.parse() {
            Ok(r) => r,
            Err(f) => return tool_error(&f, HINT),
        };
        // Parquet reads and the metrics: off the async workers.
        self.on_mesh(HINT, move |mesh| calculate_risk_metrics(mesh, &request))
            .await
    }

    /// The wealth agent's correlation tool.
    #[tool(
        name = "calculate_correlation",
        description = "The correlation matrix of the daily returns of two or more tickers over their common price history (or the last lookback_years), from the platform's prices."
    )]
    async fn calculate_correlation(
        &self,
        Parameters(args): Parameters<Checked<CorrelationRequest>>,
        context: Extensions,
    ) -> CallToolResult {
        const HINT: &str = "Fix the argument and call calculate_correlation again.";
        if let Err(f) = caller(&context, Permission::ReadPortfolios) {
            return tool_error(&f, "");
        }
        let request = match args.parse() {
            Ok(r) => r,
            Err(f) => return tool_error(&f, HINT),
        };
        self.on_mesh(HINT, move |mesh| calculate_correlation(mesh, &request))
            .await
    }
}

impl<L: EventLog> McpServer<L> {
    /// Runs a computation over the mesh off the async workers and answers
    /// its report, or the failure with `hint`.
    pub(crate) async fn on_mesh<T, F>(&self, hint: &str, f: F) -> CallToolResult
    where
        T: serde::Serialize + Send + 'static,
        F: FnOnce(&DataMesh) -> Result<T, Failure> + Send + 'static,
    {
        let mesh = self.mesh.clone();
        match tokio::task::spawn_blocking(move || f(&mesh)).await {
            Ok(Ok(report)) => match serde_json::to_value(&report) {
                Ok(v) => CallToolResult::structured(v),
                Err(e) => tool_error(&Failure::general(format!("encoding: {e}")), ""),
            },
            Ok(Err(f)) => tool_error(&f, hint),
            Err(e) => tool_error(
                &Failure::general(format!("the computation failed: {e}")),
                "",
            ),
        }
    }

    /// Parses, validates and checks the instruments of a request; assigns
    /// its id.
    async fn check_request(
        &self,
        args: Checked<RequestWithoutId>,
    ) -> Result<OptimizationRequest, Failure> {
        let mut raw = args.into_raw();
        if raw.contains_key("request_id") {
            return Err(Failure::field(
                "request_id",
                "is assigned by the server; leave it out",
            ));
        }
        raw.insert("request_id".into(), json!(Uuid::now_v7()));
        let request: OptimizationRequest = parse(Value::Object(raw))?;
        validate(&request)?;
        let mesh = self.mesh.clone();
        tokio::task::spawn_blocking(move || check_instruments(&mesh, &request).map(|()| request))
            .await
            .map_err(|e| Failure::general(format!("the check failed: {e}")))?
    }
}

/// Every instrument the request names must be in the data products, so a
/// typo is reported now rather than in the failed answer.
fn check_instruments(mesh: &DataMesh, r: &OptimizationRequest) -> Result<(), Failure> {
    let records = mesh
        .esg(None)
        .map_err(|e| Failure::general(format!("data products: {e}")))?;
    let tickers: Vec<&str> = records.iter().map(|x| x.ticker.as_str()).collect();
    let known = |t: &str| tickers.contains(&t);
    let unknown = |field: String, name: &str| {
        Failure::field(
            &field,
            format!(
                "{name} is not in the data products; known tickers: {}",
                tickers.join(", ")
            ),
        )
    };
    for (i, h) in r.portfolio.holdings.iter().enumerate() {
        match (&h.ticker, &h.isin) {
            (Some(t), _) if !known(t) => {
                return Err(unknown(format!("portfolio.holdings[{i}].ticker"), t))
            }
            (None, Some(isin)) if !records.iter().any(|x| &x.isin == isin) => {
                return Err(Failure::field(
                    &format!("portfolio.holdings[{i}].isin"),
                    format!("{isin} is not in the data products"),
                ))
            }
            _ => {}
        }
    }
    for (i, t) in r.universe.iter().enumerate() {
        if !known(t) {
            return Err(unknown(format!("universe[{i}]"), t));
        }
    }
    for (i, t) in r.constraints.exclude.iter().enumerate() {
        if !known(t) {
            return Err(unknown(format!("constraints.exclude[{i}]"), t));
        }
    }
    Ok(())
}

/// Who calls a tool, if allowed `permission`. Over HTTP the platform's
/// guard has authenticated the request and left the principal in it; a
/// request over HTTP without one is refused. Over stdio there is no HTTP
/// request: the caller is the local user, who started this process.
pub(crate) fn caller(context: &Extensions, permission: Permission) -> Result<Principal, Failure> {
    let principal = match context.get::<axum::http::request::Parts>() {
        Some(parts) => parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| {
                Failure::general("authentication required: send 'Authorization: Bearer <API key>'")
            })?,
        None => Principal::local(),
    };
    principal.require(permission).map_err(|f| {
        Failure::general(format!(
            "{f}: ask an administrator for a key with a role that does"
        ))
    })?;
    Ok(principal)
}

/// The answer of `get_optimization_result`.
fn status_json(request_id: Uuid, status: OptimizationStatus) -> Value {
    let name = status.name();
    match status {
        OptimizationStatus::Pending { portfolio_id } => json!({
            "request_id": request_id,
            "status": name,
            "portfolio_id": portfolio_id,
            "message": "The optimization service has not answered yet; call again in a moment.",
        }),
        OptimizationStatus::Completed(result) => {
            let mut out = json!({
                "request_id": request_id,
                "status": name,
                "portfolio_id": result.portfolio_id,
            });
            if result.esg_data_synthetic {
                out["note"] = json!(
                    "The ESG data is synthetic (generated for the sample universe): \
                     treat ESG scores and carbon figures as illustrations."
                );
            }
            out["result"] = serde_json::to_value(&*result).unwrap_or(Value::Null);
            out
        }
        OptimizationStatus::Failed(f) => json!({
            "request_id": request_id,
            "status": name,
            "portfolio_id": f.portfolio_id,
            "reason": f.reason,
            "field": f.field,
        }),
    }
}

/// A tool error: the text for the model, and `{error, field}` for programs.
pub(crate) fn tool_error(failure: &Failure, hint: &str) -> CallToolResult {
    let mut message = match &failure.field {
        Some(field) => format!("invalid `{field}`: {}", failure.reason),
        None => failure.reason.clone(),
    };
    if !hint.is_empty() {
        message.push_str(". ");
        message.push_str(hint);
    }
    let mut result = CallToolResult::error(vec![ContentBlock::text(message.clone())]);
    result.structured_content = Some(json!({
        "error": message,
        "field": failure.field,
    }));
    result
}

#[tool_handler(router = self.tool_router)]
impl<L: EventLog> ServerHandler for McpServer<L> {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("ultracore", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}
