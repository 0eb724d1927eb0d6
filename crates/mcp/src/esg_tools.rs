//! The ESG tools beside `optimize_portfolio_esg`: an issuer's profile, a
//! portfolio screened against criteria, a report; and the portfolio's ESG
//! preferences and exclusion list, recorded as events on its Portfolio
//! aggregate (`esg_preference_set`, `exclusion_list_updated`), which
//! screening and reports use when a call names the portfolio alone.

use std::collections::BTreeMap;

use chrono::Utc;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Extensions};
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use ultracore_auth::{Permission, Principal};
use ultracore_esg::screening::{esg_profile, esg_report, screen_portfolio, ScreeningCriteria};
use ultracore_esg::Failure;
use ultracore_flow::{
    EsgPreferenceSet, ExclusionsUpdate, Portfolio, PortfolioCommand, PortfolioError,
};
use ultracore_log::EventLog;

use crate::agent_tools::begin;
use crate::args::Checked;
use crate::server::{tool_error, McpServer};

/// The names of the ESG tools, in the order they are listed.
pub const ESG_TOOLS: [&str; 5] = [
    "get_esg_profile",
    "screen_portfolio_esg",
    "generate_esg_report",
    "set_esg_preferences",
    "update_exclusion_list",
];

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileArgs {
    /// A ticker (`XOM`), an ISIN, or the company's name as the data has it.
    issuer: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScreenArgs {
    /// A portfolio: its weights (of its latest completed optimization) and
    /// its ESG preferences and exclusion list stand in for those left out.
    #[serde(default)]
    portfolio_id: Option<String>,
    /// Weights by ticker or ISIN, adding up to 1.
    #[serde(default)]
    weights: Option<BTreeMap<String, f64>>,
    /// What to screen against (the portfolio's preferences by default).
    #[serde(default)]
    criteria: Option<ScreeningCriteria>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportArgs {
    #[serde(default)]
    portfolio_id: Option<String>,
    #[serde(default)]
    weights: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    criteria: Option<ScreeningCriteria>,
    /// `json` (default) or `markdown` (tables, for people).
    #[serde(default)]
    format: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreferencesArgs {
    portfolio_id: String,
    /// The criteria the portfolio should meet from now on.
    criteria: ScreeningCriteria,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExclusionArgs {
    portfolio_id: String,
    /// Issuers (tickers or ISINs) to exclude.
    #[serde(default)]
    add: Vec<String>,
    /// Issuers to exclude no longer.
    #[serde(default)]
    remove: Vec<String>,
    /// Why, for the record.
    #[serde(default)]
    reason: Option<String>,
}

/// What a portfolio-level call screens: the weights and criteria given,
/// or the portfolio's.
struct Subject {
    weights: BTreeMap<String, f64>,
    criteria: ScreeningCriteria,
}

fn not_found(id: &str) -> Failure {
    Failure::field(
        "portfolio_id",
        format!("portfolio '{id}' is not found for this key"),
    )
}

fn rejected(e: ultracore_es::CommandError<PortfolioError>) -> Failure {
    match e {
        ultracore_es::CommandError::Rejected(PortfolioError::Invalid { field, reason }) => {
            Failure::field(&field, reason)
        }
        other => Failure::general(other.to_string()),
    }
}

#[tool_router(router = esg_tool_router, vis = "pub(crate)")]
impl<L: EventLog> McpServer<L> {
    /// An issuer's ESG data.
    #[tool(
        name = "get_esg_profile",
        description = "An issuer's ESG data by ticker, ISIN or name: sector, ESG score with its \
environmental, social and governance pillars, carbon intensity, controversy flag, and its rank and \
percentile for each within its sector and the whole universe."
    )]
    async fn get_esg_profile(
        &self,
        Parameters(args): Parameters<Checked<ProfileArgs>>,
        context: Extensions,
    ) -> CallToolResult {
        const HINT: &str = "Name a ticker, an ISIN or a company.";
        let (_, a) = match begin(&context, Permission::ReadPortfolios, args, HINT) {
            Ok(x) => x,
            Err(answer) => return answer,
        };
        self.on_mesh(HINT, move |mesh| esg_profile(mesh, &a.issuer))
            .await
    }

    /// A portfolio against criteria.
    #[tool(
        name = "screen_portfolio_esg",
        description = "Screen a portfolio against ESG criteria (minimum weighted and per-holding ESG \
score, maximum weighted carbon intensity, excluded sectors and issuers, controversies): compliant or \
not, each violation with its kind, severity (low to critical), the weight and the limit, the \
portfolio-weighted figures, and recommendations with the figures they rest on. Name a portfolio to use \
its weights and its recorded ESG preferences and exclusions, or give weights and criteria."
    )]
    async fn screen_portfolio_esg(
        &self,
        Parameters(args): Parameters<Checked<ScreenArgs>>,
        context: Extensions,
    ) -> CallToolResult {
        const HINT: &str = "Fix the argument and call screen_portfolio_esg again.";
        let (who, a) = match begin(&context, Permission::ReadPortfolios, args, HINT) {
            Ok(x) => x,
            Err(answer) => return answer,
        };
        let s = match self
            .subject(&who, a.portfolio_id.as_deref(), a.weights, a.criteria)
            .await
        {
            Ok(s) => s,
            Err(f) => return tool_error(&f, HINT),
        };
        self.on_mesh(HINT, move |mesh| {
            screen_portfolio(mesh, &s.weights, &s.criteria)
        })
        .await
    }

    /// A report for people and programs.
    #[tool(
        name = "generate_esg_report",
        description = "An ESG report of a portfolio: each holding's figures and contribution, the \
weighted figures, a sector breakdown, the best and worst contributors, and the screening when \
criteria apply; as JSON, or Markdown tables with format \"markdown\". Name a portfolio or give weights."
    )]
    async fn generate_esg_report(
        &self,
        Parameters(args): Parameters<Checked<ReportArgs>>,
        context: Extensions,
    ) -> CallToolResult {
        const HINT: &str = "Fix the argument and call generate_esg_report again.";
        let (who, a) = match begin(&context, Permission::ReadPortfolios, args, HINT) {
            Ok(x) => x,
            Err(answer) => return answer,
        };
        let markdown = match a.format.as_deref() {
            None | Some("json") => false,
            Some("markdown") => true,
            Some(other) => {
                return tool_error(
                    &Failure::field("format", format!("{other:?}: json or markdown")),
                    HINT,
                )
            }
        };
        let s = match self
            .subject(&who, a.portfolio_id.as_deref(), a.weights, a.criteria)
            .await
        {
            Ok(s) => s,
            Err(f) => return tool_error(&f, HINT),
        };
        self.on_mesh(HINT, move |mesh| {
            let criteria = (!s.criteria.is_empty()).then_some(&s.criteria);
            let report = esg_report(mesh, &s.weights, criteria)?;
            Ok(if markdown {
                json!({"format": "markdown", "markdown": report.to_markdown()})
            } else {
                serde_json::to_value(&report)
                    .map_err(|e| Failure::general(format!("encoding: {e}")))?
            })
        })
        .await
    }

    /// Records the portfolio's ESG preferences.
    #[tool(
        name = "set_esg_preferences",
        description = "Record a portfolio's ESG preferences (the screening criteria it should meet) \
as an esg_preference_set event on the portfolio; screen_portfolio_esg and generate_esg_report use \
them when called with the portfolio alone. The same preferences again record nothing."
    )]
    async fn set_esg_preferences(
        &self,
        Parameters(args): Parameters<Checked<PreferencesArgs>>,
        context: Extensions,
    ) -> CallToolResult {
        const HINT: &str = "Fix the argument and call set_esg_preferences again.";
        let (who, a) = match begin(&context, Permission::RequestOptimization, args, HINT) {
            Ok(x) => x,
            Err(answer) => return answer,
        };
        let command = PortfolioCommand::SetEsgPreferences(Box::new(EsgPreferenceSet {
            preferences: a.criteria,
            set_by: Some(who.id().to_owned()),
            set_at: Utc::now(),
        }));
        match self.record(&who, &a.portfolio_id, command, HINT).await {
            Ok((saved, _)) => CallToolResult::structured(json!({
                "portfolio_id": a.portfolio_id,
                "recorded": saved.stored > 0,
                "version": saved.version,
            })),
            Err(answer) => answer,
        }
    }

    /// Changes the portfolio's exclusion list.
    #[tool(
        name = "update_exclusion_list",
        description = "Add issuers to, or remove them from, a portfolio's exclusion list, recorded as \
an exclusion_list_updated event on the portfolio (only real changes are recorded); screening and \
reports of the portfolio exclude them."
    )]
    async fn update_exclusion_list(
        &self,
        Parameters(args): Parameters<Checked<ExclusionArgs>>,
        context: Extensions,
    ) -> CallToolResult {
        const HINT: &str = "Fix the argument and call update_exclusion_list again.";
        let (who, a) = match begin(&context, Permission::RequestOptimization, args, HINT) {
            Ok(x) => x,
            Err(answer) => return answer,
        };
        let command = PortfolioCommand::UpdateExclusions(ExclusionsUpdate {
            add: a.add,
            remove: a.remove,
            reason: a.reason,
            updated_at: Utc::now(),
        });
        match self.record(&who, &a.portfolio_id, command, HINT).await {
            Ok((saved, store)) => {
                let exclusions = match store.load::<Portfolio>(&a.portfolio_id).await {
                    Ok(l) => l.state.exclusions.into_iter().collect::<Vec<_>>(),
                    Err(_) => Vec::new(),
                };
                CallToolResult::structured(json!({
                    "portfolio_id": a.portfolio_id,
                    "recorded": saved.stored > 0,
                    "version": saved.version,
                    "exclusions": exclusions,
                }))
            }
            Err(answer) => answer,
        }
    }
}

impl<L: EventLog> McpServer<L> {
    /// Records `command` on portfolio `id` for `who`, whose key must cover
    /// it (otherwise "not found"); the store, for reading it back.
    async fn record(
        &self,
        who: &Principal,
        id: &str,
        command: PortfolioCommand,
        hint: &str,
    ) -> Result<(ultracore_es::Saved, &ultracore_es::EventStore<L>), CallToolResult> {
        let Some(tools) = self.agents() else {
            let f = Failure::general("portfolios are not served here");
            return Err(tool_error(&f, ""));
        };
        if !who.can_access_portfolio(id) || !ultracore_auth::is_valid_portfolio_id(id) {
            return Err(tool_error(&not_found(id), hint));
        }
        match tools.store.execute::<Portfolio>(id, command).await {
            Ok(saved) => Ok((saved, &tools.store)),
            Err(e) => Err(tool_error(&rejected(e), hint)),
        }
    }

    /// The weights and criteria of a screening: as given, else the
    /// portfolio's (its latest completed weights; its preferences with its
    /// exclusion list).
    async fn subject(
        &self,
        who: &Principal,
        portfolio_id: Option<&str>,
        weights: Option<BTreeMap<String, f64>>,
        criteria: Option<ScreeningCriteria>,
    ) -> Result<Subject, Failure> {
        let Some(id) = portfolio_id else {
            return Ok(Subject {
                weights: weights
                    .ok_or_else(|| Failure::field("weights", "give weights or a portfolio_id"))?,
                criteria: criteria.unwrap_or_default(),
            });
        };
        if !who.can_access_portfolio(id) || !ultracore_auth::is_valid_portfolio_id(id) {
            return Err(not_found(id));
        }
        let store = &self
            .agents()
            .ok_or_else(|| Failure::general("portfolios are not served here: give weights"))?
            .store;
        let state = store
            .load::<Portfolio>(id)
            .await
            .map_err(|e| Failure::general(format!("the portfolio could not be read: {e}")))?
            .state;
        let weights = match weights {
            Some(w) => w,
            None if state.weights.is_empty() => {
                return Err(Failure::field(
                    "weights",
                    format!("portfolio '{id}' has no completed optimization yet: give weights"),
                ))
            }
            None => state.weights.clone(),
        };
        let criteria = match criteria {
            Some(c) => c,
            None => {
                let mut c = state
                    .esg_preferences
                    .map(|p| p.criteria)
                    .unwrap_or_default();
                for x in state.exclusions {
                    if !c.exclude_issuers.contains(&x) {
                        c.exclude_issuers.push(x);
                    }
                }
                c
            }
        };
        Ok(Subject { weights, criteria })
    }
}
