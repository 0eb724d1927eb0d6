//! The customer assistant and its agents' tools as MCP tools, with the
//! caller's key: a customer's key asks only about its own customer and
//! portfolios (anything else is "not found"), staff name the customer.
//! Also the CRM's `log_customer_interaction`.

use std::sync::Arc;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Extensions};
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use ultracore_agents::assist::Assistant;
use ultracore_agents::crm::{Crm, CrmError};
use ultracore_agents::loan::{borrowing_power, lvr, monthly_repayment, schedule, Applicant};
use ultracore_auth::Permission;
use ultracore_es::EventStore;
use ultracore_esg::Failure;
use ultracore_events::external::CustomerInteraction;
use ultracore_log::EventLog;

use crate::args::Checked;
use crate::server::{caller, tool_error, McpServer};

/// What the agent tools need: the assistant, the accounts' store and the
/// CRM publisher.
#[derive(Clone)]
pub struct AgentTools<L: EventLog> {
    pub assistant: Arc<Assistant<L>>,
    pub store: EventStore<L>,
    pub crm: Arc<Crm<L>>,
}

impl<L: EventLog> std::fmt::Debug for AgentTools<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentTools")
            .field("tools", &AGENT_TOOLS)
            .finish_non_exhaustive()
    }
}

/// The names of the agent tools, in the order they are listed.
pub const AGENT_TOOLS: [&str; 7] = [
    "assist",
    "get_card_account",
    "recommend_cards",
    "calculate_loan_repayment",
    "calculate_borrowing_power",
    "calculate_lvr",
    "log_customer_interaction",
];

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssistArgs {
    /// The customer's question, as asked.
    query: String,
    /// The customer asking (a customer key's own by default).
    #[serde(default)]
    customer_id: Option<String>,
    /// Portfolios the wealth agent may consider (the key's own by default).
    #[serde(default)]
    portfolios: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CustomerArgs {
    /// The customer (a customer key's own by default).
    #[serde(default)]
    customer_id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RepaymentArgs {
    /// The amount borrowed, dollars.
    amount: f64,
    /// The annual interest rate (0.0609 for 6.09 %).
    annual_rate: f64,
    /// The term in years (1 to 40).
    years: u32,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BorrowingArgs {
    /// Each applicant's gross annual income, dollars.
    incomes: Vec<f64>,
    /// Living expenses a month, dollars (a floor by household applies).
    #[serde(default)]
    monthly_expenses: f64,
    /// Repayments of other loans a month.
    #[serde(default)]
    other_repayments: f64,
    /// Credit card limits in total.
    #[serde(default)]
    card_limits: f64,
    /// Other debt outstanding (for the debt-to-income cap).
    #[serde(default)]
    other_debt: f64,
    #[serde(default)]
    dependants: u32,
    /// The product's annual rate (0.0609 for 6.09 %).
    annual_rate: f64,
    /// The term in years [default 30].
    #[serde(default)]
    years: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LvrArgs {
    /// The property's price, dollars.
    price: f64,
    /// The deposit, dollars.
    deposit: f64,
}

/// A finite non-negative amount, or the field's failure.
fn amount(field: &str, v: f64, max: f64) -> Result<f64, Failure> {
    if v.is_finite() && (0.0..=max).contains(&v) {
        Ok(v)
    } else {
        Err(Failure::field(
            field,
            format!("{v} is not an amount between 0 and {max}"),
        ))
    }
}

fn rate(field: &str, v: f64) -> Result<f64, Failure> {
    if v.is_finite() && (0.0..0.5).contains(&v) {
        Ok(v)
    } else {
        Err(Failure::field(
            field,
            format!("{v} is not an annual rate: write 6.09 % as 0.0609"),
        ))
    }
}

fn years(field: &str, v: u32) -> Result<u32, Failure> {
    if (1..=40).contains(&v) {
        Ok(v)
    } else {
        Err(Failure::field(field, format!("{v} years: 1 to 40")))
    }
}

/// The caller, if allowed `permission`, and the parsed arguments; or the
/// tool error to answer.
pub(crate) fn begin<T: serde::de::DeserializeOwned>(
    context: &Extensions,
    permission: Permission,
    args: Checked<T>,
    hint: &str,
) -> Result<(ultracore_auth::Principal, T), CallToolResult> {
    let who = caller(context, permission).map_err(|f| tool_error(&f, ""))?;
    let a = args.parse().map_err(|f| tool_error(&f, hint))?;
    Ok((who, a))
}

fn structured(v: impl serde::Serialize) -> CallToolResult {
    match serde_json::to_value(v) {
        Ok(v) => CallToolResult::structured(v),
        Err(e) => tool_error(&Failure::general(format!("encoding: {e}")), ""),
    }
}

fn problem(p: ultracore_http::Problem) -> Failure {
    match p.field {
        Some(f) => Failure::field(&f, p.detail),
        None => Failure::general(p.detail),
    }
}

#[tool_router(router = agent_tool_router, vis = "pub(crate)")]
impl<L: EventLog> McpServer<L> {
    /// The whole assist pipeline.
    #[tool(
        name = "assist",
        description = "Ask the customer assistant: the planner finds the intents (card, loan, wealth, \
several at once), each intent's agent runs with its tools, a critic checks every answer (tools \
succeeded, every figure from a tool, no promises) and personal data is masked. Returns each agent's \
answer, the tools it called and the critic's checks. A customer's key asks about its own customer."
    )]
    async fn assist(
        &self,
        Parameters(args): Parameters<Checked<AssistArgs>>,
        context: Extensions,
    ) -> CallToolResult {
        const HINT: &str = "Fix the argument and call assist again.";
        let (who, a) = match begin(&context, Permission::Assist, args, HINT) {
            Ok(x) => x,
            Err(answer) => return answer,
        };
        let Some(tools) = self.agents() else {
            return tool_error(&Failure::general("the agents are not running here"), "");
        };
        let (customer, portfolios) = match ultracore_agents::http::resolve(
            &who,
            a.customer_id.as_deref(),
            a.portfolios.as_deref(),
        ) {
            Ok(r) => r,
            Err(p) => return tool_error(&problem(p), HINT),
        };
        match tools
            .assistant
            .assist_as(
                &ultracore_agents::http::caller(&who),
                customer.as_deref(),
                &a.query,
                &portfolios,
            )
            .await
        {
            Ok(reply) => structured(reply),
            Err(ultracore_agents::assist::AssistError::BadInput { field, reason }) => {
                tool_error(&Failure::field(&field, reason), HINT)
            }
            Err(e) => tool_error(&Failure::general(e.to_string()), "Try again later."),
        }
    }

    /// The card agent's account tool.
    #[tool(
        name = "get_card_account",
        description = "A customer's card account from its event-sourced history: open or not, product, \
balance, limit, available credit and the five most recent transactions."
    )]
    async fn get_card_account(
        &self,
        Parameters(args): Parameters<Checked<CustomerArgs>>,
        context: Extensions,
    ) -> CallToolResult {
        const HINT: &str = "Name the customer with customer_id.";
        let (who, a) = match begin(&context, Permission::Assist, args, HINT) {
            Ok(x) => x,
            Err(answer) => return answer,
        };
        let Some(tools) = self.agents() else {
            return tool_error(&Failure::general("the agents are not running here"), "");
        };
        let customer = match ultracore_agents::http::resolve(&who, a.customer_id.as_deref(), None) {
            Ok((Some(c), _)) => c,
            Ok((None, _)) => {
                return tool_error(&Failure::field("customer_id", "name the customer"), HINT)
            }
            Err(p) => return tool_error(&problem(p), HINT),
        };
        match ultracore_agents::specialists::card_account_summary(&tools.store, &customer).await {
            Ok(v) => CallToolResult::structured(v),
            Err(e) => tool_error(&Failure::general(e), "Try again later."),
        }
    }

    /// The card agent's recommender.
    #[tool(
        name = "recommend_cards",
        description = "Every card in the shipped catalogue valued for one customer's first year: rewards, \
perks and balance-transfer savings less the annual fee and interest, eligible cards first, best first, \
ineligible ones with the reason, each with its workings."
    )]
    async fn recommend_cards(
        &self,
        Parameters(args): Parameters<Checked<ultracore_agents::cards::Profile>>,
        context: Extensions,
    ) -> CallToolResult {
        const HINT: &str = "Fix the argument and call recommend_cards again.";
        let checked = begin(&context, Permission::Assist, args, HINT).and_then(|(_, a)| {
            if !(16..=120).contains(&a.age) {
                let f = Failure::field("age", format!("{} is not an age", a.age));
                return Err(tool_error(&f, HINT));
            }
            let amounts = (|| {
                amount("annual_income", a.annual_income, 1e8)?;
                amount("monthly_spend", a.monthly_spend, 1e7)?;
                amount("revolving_balance", a.revolving_balance, 1e7)?;
                amount("transfer_balance", a.transfer_balance, 1e7)?;
                rate("transfer_from_rate", a.transfer_from_rate)
            })();
            amounts.map_err(|f| tool_error(&f, HINT))?;
            Ok(a)
        });
        match checked {
            Ok(profile) => {
                let catalogue = ultracore_agents::cards::Catalogue::shipped();
                structured(json!({
                    "cards": ultracore_agents::cards::recommend(&catalogue, &profile),
                }))
            }
            Err(answer) => answer,
        }
    }

    /// The loan agent's repayment tool.
    #[tool(
        name = "calculate_loan_repayment",
        description = "The monthly repayment of a principal-and-interest loan, the total interest, and \
the balance at the end of each year."
    )]
    async fn calculate_loan_repayment(
        &self,
        Parameters(args): Parameters<Checked<RepaymentArgs>>,
        context: Extensions,
    ) -> CallToolResult {
        const HINT: &str = "Fix the argument and call calculate_loan_repayment again.";
        if let Err(f) = caller(&context, Permission::Assist) {
            return tool_error(&f, "");
        }
        let checked = args.parse().and_then(|a| {
            Ok((
                amount("amount", a.amount, 1e9)?,
                rate("annual_rate", a.annual_rate)?,
                years("years", a.years)?,
            ))
        });
        let (principal, r, n) = match checked {
            Ok(x) => x,
            Err(f) => return tool_error(&f, HINT),
        };
        let payment = monthly_repayment(principal, r, n);
        let months = schedule(principal, r, n);
        let interest: f64 = months.iter().map(|m| m.interest).sum();
        let yearly: Vec<Value> = months
            .iter()
            .filter(|m| m.month % 12 == 0)
            .map(|m| json!({"year": m.month / 12, "balance": m.balance}))
            .collect();
        structured(json!({
            "amount": principal, "annual_rate": r, "years": n,
            "monthly_repayment": payment, "total_interest": interest,
            "total_paid": payment * f64::from(n) * 12.0, "balance_by_year": yearly,
        }))
    }

    /// The loan agent's serviceability tool.
    #[tool(
        name = "calculate_borrowing_power",
        description = "How much a household could borrow: net income after Australian tax and the \
Medicare levy, living expenses (at least the household's floor), commitments (3.8 % of card limits a \
month), the surplus assessed at the product rate plus a 3-point buffer, capped at 6 times gross income \
less other debt; says which limit binds."
    )]
    async fn calculate_borrowing_power(
        &self,
        Parameters(args): Parameters<Checked<BorrowingArgs>>,
        context: Extensions,
    ) -> CallToolResult {
        const HINT: &str = "Fix the argument and call calculate_borrowing_power again.";
        if let Err(f) = caller(&context, Permission::Assist) {
            return tool_error(&f, "");
        }
        let checked = args.parse().and_then(|a| {
            if a.incomes.is_empty() || a.incomes.len() > 4 {
                return Err(Failure::field(
                    "incomes",
                    "one income per applicant, 1 to 4",
                ));
            }
            let incomes = a
                .incomes
                .iter()
                .enumerate()
                .map(|(i, x)| amount(&format!("incomes[{i}]"), *x, 1e8))
                .collect::<Result<Vec<f64>, Failure>>()?;
            let applicant = Applicant {
                incomes,
                monthly_expenses: amount("monthly_expenses", a.monthly_expenses, 1e7)?,
                other_repayments: amount("other_repayments", a.other_repayments, 1e7)?,
                card_limits: amount("card_limits", a.card_limits, 1e8)?,
                other_debt: amount("other_debt", a.other_debt, 1e9)?,
                dependants: if a.dependants <= 20 {
                    a.dependants
                } else {
                    return Err(Failure::field("dependants", "0 to 20"));
                },
            };
            Ok((
                applicant,
                rate("annual_rate", a.annual_rate)?,
                years("years", a.years.unwrap_or(30))?,
            ))
        });
        match checked {
            Ok((applicant, r, n)) => structured(borrowing_power(&applicant, r, n)),
            Err(f) => tool_error(&f, HINT),
        }
    }

    /// The loan agent's deposit tool.
    #[tool(
        name = "calculate_lvr",
        description = "The loan-to-value ratio of a purchase from its price and deposit, the loan, and \
whether lenders' mortgage insurance applies (LVR above 80 %)."
    )]
    async fn calculate_lvr(
        &self,
        Parameters(args): Parameters<Checked<LvrArgs>>,
        context: Extensions,
    ) -> CallToolResult {
        const HINT: &str = "Fix the argument and call calculate_lvr again.";
        if let Err(f) = caller(&context, Permission::Assist) {
            return tool_error(&f, "");
        }
        let checked = args.parse().and_then(|a| {
            let price = amount("price", a.price, 1e10)?;
            let deposit = amount("deposit", a.deposit, 1e10)?;
            if price == 0.0 || deposit > price {
                return Err(Failure::field(
                    "deposit",
                    "the deposit must be less than a price above 0",
                ));
            }
            Ok((price, deposit))
        });
        match checked {
            Ok((p, d)) => structured(lvr(p, d)),
            Err(f) => tool_error(&f, HINT),
        }
    }

    /// The CRM's tool.
    #[tool(
        name = "log_customer_interaction",
        description = "Record a customer's interaction with the bank (a call, complaint, meeting…) on \
external.crm.events: {interaction_id, customer_id, channel (phone, email, chat, branch, web, app, \
letter), kind (enquiry, complaint, meeting, application, feedback, note), summary, occurred_at \
(RFC 3339), source, handled_by?}. Personal data in the summary is masked and raises a compliance \
alert; the same source and interaction_id twice is one event."
    )]
    async fn log_customer_interaction(
        &self,
        Parameters(args): Parameters<Checked<CustomerInteraction>>,
        context: Extensions,
    ) -> CallToolResult {
        const HINT: &str = "Fix the argument and call log_customer_interaction again.";
        let (who, interaction) = match begin(&context, Permission::IngestExternal, args, HINT) {
            Ok(x) => x,
            Err(answer) => return answer,
        };
        let Some(tools) = self.agents() else {
            return tool_error(&Failure::general("the CRM topic is not served here"), "");
        };
        match tools.crm.log_interaction(interaction, who.id()).await {
            Ok(logged) => structured(logged),
            Err(CrmError::Invalid(i)) => tool_error(&Failure::field(&i.field, i.reason), HINT),
            Err(e) => tool_error(&Failure::general(e.to_string()), "Try again later."),
        }
    }
}
