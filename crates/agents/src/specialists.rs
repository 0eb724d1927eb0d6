//! The domain agents the assist pipeline runs: each reads the question,
//! calls its tools, and answers only with figures its tools returned
//! (every tool call is in the execution's trace).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::{json, Value};
use ultracore_es::EventStore;
use ultracore_events::agents::{ToolCall, TraceStep};
use ultracore_log::EventLog;

use crate::account::CardAccount;
use crate::cards::{recommend, Catalogue, Profile};
use crate::loan::{amounts, borrowing_power, lvr, monthly_repayment, Applicant};
use crate::runtime::{Agent, AgentOutput, Exchange, Task};

/// The question of a task (`input.query`: the part for this agent).
pub(crate) fn query(task: &Task) -> &str {
    task.input["query"].as_str().unwrap_or("")
}

/// The whole question (`input.context`), for facts stated in another part.
pub(crate) fn context(task: &Task) -> &str {
    task.input["context"]
        .as_str()
        .unwrap_or_else(|| query(task))
}

/// Records tool calls and steps while an agent works.
#[derive(Debug, Default)]
pub(crate) struct Work {
    tools: Vec<ToolCall>,
    trace: Vec<TraceStep>,
}

impl Work {
    pub(crate) fn step(&mut self, step: &str, detail: impl Into<String>) {
        self.trace.push(TraceStep {
            step: step.into(),
            detail: detail.into(),
        });
    }

    /// Calls a tool, recording its input, output and time.
    pub(crate) async fn call<F, Fut>(
        &mut self,
        tool: &str,
        input: Value,
        f: F,
    ) -> Result<Value, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Value, String>>,
    {
        let started = Instant::now();
        let result = f().await;
        self.tools.push(ToolCall {
            tool: tool.into(),
            input,
            output: result.clone().unwrap_or(Value::Null),
            ok: result.is_ok(),
            error: result.clone().err(),
            duration_ms: started.elapsed().as_secs_f64() * 1e3,
        });
        result
    }

    pub(crate) fn answer(self, text: String, data: Value) -> AgentOutput {
        AgentOutput {
            output: json!({"text": text, "data": data}),
            tools: self.tools,
            trace: self.trace,
        }
    }
}

pub(crate) fn dollars(x: f64) -> String {
    crate::money::dollars(x, true)
}

/// Whether the lower-cased `q` contains any of `words` (lower case).
pub(crate) fn has_any(q: &str, words: &[&str]) -> bool {
    let q = q.to_lowercase();
    words.iter().any(|w| q.contains(w))
}

/// The card agent's account tool: open or not, product, balance, limit,
/// available credit and the five most recent transactions of
/// `customer_id`'s card account.
pub async fn card_account_summary<L: EventLog>(
    store: &EventStore<L>,
    customer_id: &str,
) -> Result<Value, String> {
    let id = CardAgent::<L>::account_id(customer_id);
    let loaded = store
        .load::<CardAccount>(&id)
        .await
        .map_err(|e| format!("the card account could not be read: {e}"))?;
    let a = loaded.state;
    if !a.open {
        return Ok(json!({"open": false}));
    }
    let recent: Vec<Value> = a
        .recent
        .iter()
        .rev()
        .take(5)
        .map(|t| json!({"merchant": t.merchant, "amount": t.amount, "posted_at": t.posted_at}))
        .collect();
    Ok(
        json!({"open": true, "product_id": a.product_id, "balance": a.balance,
              "limit": a.limit, "available": a.available(), "recent": recent}),
    )
}

/// The card agent: balance, available credit and recent transactions
/// from the customer's card account; card products valued for them.
pub struct CardAgent<L: EventLog> {
    store: EventStore<L>,
    catalogue: Arc<Catalogue>,
}

impl<L: EventLog> std::fmt::Debug for CardAgent<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardAgent")
    }
}

impl<L: EventLog> CardAgent<L> {
    pub fn new(store: EventStore<L>, catalogue: Catalogue) -> Self {
        CardAgent {
            store,
            catalogue: Arc::new(catalogue),
        }
    }

    /// The id of a customer's card account.
    pub fn account_id(customer_id: &str) -> String {
        format!("card-{customer_id}")
    }
}

impl<L: EventLog> Agent for CardAgent<L> {
    fn id(&self) -> &str {
        "card"
    }

    fn run<'a>(
        &'a self,
        task: &'a Task,
        _memory: &'a [Exchange],
    ) -> BoxFuture<'a, Result<AgentOutput, String>> {
        Box::pin(async move {
            let q = query(task);
            let mut w = Work::default();
            let mut parts = Vec::new();
            let mut data = json!({});
            let wants_products = has_any(
                q,
                &[
                    "recommend",
                    "which card",
                    "what card",
                    "should i get",
                    "suit",
                    "best card",
                    "apply",
                    "new card",
                    "reward",
                    "points",
                    "frequent flyer",
                    "low rate",
                    "balance transfer",
                    "options",
                ],
            );
            let wants_account = !wants_products
                || has_any(
                    q,
                    &[
                        "balance",
                        "owe",
                        "owing",
                        "transaction",
                        "spent",
                        "spend",
                        "available",
                        "limit",
                    ],
                );
            if wants_account {
                w.step("plan", "read the card account");
                if let Some(customer) = task.customer_id.clone() {
                    let id = Self::account_id(&customer);
                    let store = &self.store;
                    let account = w
                        .call("card_account", json!({"account_id": id}), || {
                            card_account_summary(store, &customer)
                        })
                        .await?;
                    parts.push(account_text(&account));
                    data["account"] = account;
                } else {
                    w.step("read", "no customer id: no account to read");
                    parts.push(
                        "To show your card balance and transactions I need to know who you are: ask again with your customer id."
                            .into(),
                    );
                }
            }
            if wants_products {
                w.step("plan", "value the card products for this customer");
                let stated_income = amount_near(context(task), INCOME_WORDS);
                let stated_spend = amount_near(q, &["spend", "a month", "per month", "monthly"]);
                let income = stated_income.unwrap_or(60_000.0);
                let spend = stated_spend.unwrap_or(1_500.0);
                let profile = Profile {
                    age: 30,
                    annual_income: income,
                    monthly_spend: spend,
                    revolving_balance: 0.0,
                    transfer_balance: 0.0,
                    transfer_from_rate: 0.0,
                    student: has_any(q, &["student", "uni"]),
                    travels: has_any(q, &["travel", "flyer", "overseas", "lounge"]),
                };
                let catalogue = self.catalogue.clone();
                let ranked = w
                    .call(
                        "card_products",
                        serde_json::to_value(&profile).unwrap_or(Value::Null),
                        || async move {
                            Ok(serde_json::to_value(recommend(&catalogue, &profile))
                                .unwrap_or(Value::Null))
                        },
                    )
                    .await?;
                if let Some(best) = ranked
                    .as_array()
                    .and_then(|r| r.iter().find(|v| v["eligible"] == true))
                {
                    let assumed = match (stated_spend, stated_income) {
                        (Some(_), Some(_)) => "",
                        (None, Some(_)) => {
                            " (assuming that spending; tell me yours for a closer match)"
                        }
                        (Some(_), None) => {
                            " (assuming that income; tell me yours for a closer match)"
                        }
                        (None, None) => {
                            " (assuming that spending and income; tell me yours for a closer match)"
                        }
                    };
                    parts.push(format!(
                        "For {} a month of spending on a {} income{assumed}, the {} comes out best: worth {} in the first year ({}).",
                        dollars(spend),
                        dollars(income),
                        best["name"].as_str().unwrap_or("?"),
                        dollars(best["net"].as_f64().unwrap_or(0.0)),
                        best["workings"].as_array().map(|w| w.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ")).unwrap_or_default()
                    ));
                }
                data["products"] = ranked;
            }
            Ok(w.answer(parts.join(" "), data))
        })
    }
}

/// The loan agent: borrowing power, repayments and LVR from the amounts
/// in the question, at the product rate.
#[derive(Debug, Clone)]
pub struct LoanAgent {
    /// The standard variable rate the agent quotes and assesses at.
    pub rate: f64,
    pub years: u32,
}

impl Default for LoanAgent {
    fn default() -> Self {
        LoanAgent {
            rate: 0.0609,
            years: 30,
        }
    }
}

/// What the card agent says of the `card_account` tool's answer.
fn account_text(account: &Value) -> String {
    if account["open"] != true {
        return "I can't find a card account for you.".into();
    }
    let f = |k: &str| account[k].as_f64().unwrap_or(0.0);
    let mut text = format!(
        "Your card balance is {} of a {} limit, so {} is available.",
        dollars(f("balance")),
        dollars(f("limit")),
        dollars(f("available"))
    );
    if let Some(recent) = account["recent"].as_array().filter(|r| !r.is_empty()) {
        let list: Vec<String> = recent
            .iter()
            .map(|t| {
                format!(
                    "{} {}",
                    t["merchant"].as_str().unwrap_or("?"),
                    dollars(t["amount"].as_f64().unwrap_or(0.0))
                )
            })
            .collect();
        text.push_str(&format!(" Recent transactions: {}.", list.join(", ")));
    }
    text
}

/// Words an income is stated with.
const INCOME_WORDS: &[&str] = &["income", "earn", "salary", "a year", "per year", "p.a"];

/// The amount nearest after or before one of `words`, if any.
fn amount_near(q: &str, words: &[&str]) -> Option<f64> {
    let lower = q.to_lowercase();
    let found = amounts(q);
    let at: Vec<usize> = words.iter().filter_map(|w| lower.find(w)).collect();
    found
        .iter()
        .filter_map(|a| {
            at.iter()
                .map(|p| {
                    if a.span.start > *p {
                        a.span.start - p
                    } else {
                        (p - a.span.end) * 2
                    }
                })
                .min()
                .filter(|d| *d < 60)
                .map(|d| (d, a.value))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

impl Agent for LoanAgent {
    fn id(&self) -> &str {
        "loan"
    }

    fn run<'a>(
        &'a self,
        task: &'a Task,
        _memory: &'a [Exchange],
    ) -> BoxFuture<'a, Result<AgentOutput, String>> {
        Box::pin(async move {
            let q = query(task);
            let mut w = Work::default();
            let mut parts = Vec::new();
            let mut data = json!({});
            let deposit = amount_near(q, &["deposit", "down payment", "saved"]);
            let price = amount_near(
                q,
                &[
                    "house",
                    "home",
                    "property",
                    "apartment",
                    "unit",
                    "price",
                    "worth",
                ],
            )
            .filter(|p| Some(*p) != deposit);
            let income = amount_near(context(task), INCOME_WORDS);
            w.step(
                "read",
                format!("deposit {deposit:?}, price {price:?}, income {income:?}"),
            );
            if let Some(income) = income {
                let applicant = Applicant {
                    incomes: vec![income],
                    monthly_expenses: 0.0,
                    other_repayments: 0.0,
                    card_limits: 0.0,
                    other_debt: 0.0,
                    dependants: 0,
                };
                let (rate, years) = (self.rate, self.years);
                let b = w
                    .call(
                        "borrowing_power",
                        json!({"income": income, "rate": rate, "years": years}),
                        || async move {
                            Ok(
                                serde_json::to_value(borrowing_power(&applicant, rate, years))
                                    .unwrap_or(Value::Null),
                            )
                        },
                    )
                    .await?;
                parts.push(format!(
                    "On a {} income you could borrow about {}, assessed at {:.2} % (the {:.2} % rate plus a 3-point buffer), with repayments of {} a month at {:.2} %.",
                    dollars(income),
                    dollars(b["max_loan"].as_f64().unwrap_or(0.0)),
                    b["assessment_rate"].as_f64().unwrap_or(0.0) * 100.0,
                    self.rate * 100.0,
                    dollars(b["repayment_at_product_rate"].as_f64().unwrap_or(0.0)),
                    self.rate * 100.0
                ));
                data["borrowing_power"] = b;
            }
            if let Some(deposit) = deposit {
                let assumed = price.is_none();
                let price = price.unwrap_or(deposit / 0.2);
                let l = w
                    .call(
                        "lvr",
                        json!({"price": price, "deposit": deposit}),
                        || async move {
                            Ok(serde_json::to_value(lvr(price, deposit)).unwrap_or(Value::Null))
                        },
                    )
                    .await?;
                let loan = l["loan"].as_f64().unwrap_or(0.0);
                let (rate, years) = (self.rate, self.years);
                let repayment = w
                    .call("repayment", json!({"principal": loan, "rate": rate, "years": years}), || async move {
                        Ok(json!({"monthly": monthly_repayment(loan, rate, years)}))
                    })
                    .await?;
                parts.push(format!(
                    "With a {} deposit on a {} home{} you would borrow {} (LVR {:.0} %{}), repaying {} a month over {} years at {:.2} %.",
                    dollars(deposit),
                    dollars(price),
                    if assumed { " (assuming the deposit is 20 % of the price; tell me the price for your figures)" } else { "" },
                    dollars(loan),
                    l["lvr"].as_f64().unwrap_or(0.0) * 100.0,
                    if l["lmi"] == true { ", so lenders mortgage insurance applies" } else { ", no mortgage insurance" },
                    dollars(repayment["monthly"].as_f64().unwrap_or(0.0)),
                    self.years,
                    self.rate * 100.0
                ));
                data["lvr"] = l;
                data["repayment"] = repayment;
            }
            if parts.is_empty() {
                let (rate, years) = (self.rate, self.years);
                let product = w
                    .call("loan_product", json!({"product": "standard_variable"}), || async move {
                        Ok(json!({"product": "standard variable home loan", "rate": rate, "max_years": years}))
                    })
                    .await?;
                parts.push(format!(
                    "Our standard variable home loan is {:.2} % over up to {years} years. Tell me your income, or your deposit and the price, and I'll work out what you could borrow and repay.",
                    rate * 100.0
                ));
                data["product"] = product;
            }
            Ok(w.answer(parts.join(" "), data))
        })
    }
}
