//! The wealth agent: UltraCore's own portfolio tools. Risk figures and
//! correlations come from the data mesh's prices
//! ([`ultracore_esg::risk`]); an ESG rebalancing is requested through the
//! asynchronous optimization flow, as the API requests it, and the answer
//! says it is pending and where its result will be.
//!
//! Which instruments: the tickers a question writes in upper case, and the
//! company names of the mesh's ESG product in any case ("Apple", "Coca-Cola",
//! "Home Depot"). Which portfolio: one of the caller's (`input.portfolios`,
//! the ids whoever authenticated the caller lets them see), its holdings
//! the weights of its latest completed optimization (the `Portfolio`
//! aggregate). A portfolio the question names that is not among the
//! caller's is never read, and the refusal reads the same whether it exists
//! or not.
//!
//! # Layout
//!
//! - this file: [`WealthAgent`], its tools and how it plans a question.
//! - `words`: what a question names (instruments, portfolio ids) and asks.
//! - `answer`: the answers' words from the tools' results.

mod answer;
mod words;

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde_json::{json, Value};
use ultracore_es::{Cut, EventStore};
use ultracore_esg::risk::{
    calculate_correlation, calculate_risk_metrics, CorrelationRequest, RiskRequest,
};
use ultracore_esg::{Holding, PortfolioInput};
use ultracore_flow::{Portfolio, PortfolioEvent};
use ultracore_log::EventLog;
use ultracore_marketdata::mesh::DataMesh;

use crate::runtime::{Agent, AgentOutput, Exchange, Task};
use crate::specialists::{query, Work};
use answer::{correlation_text, pending_text, pick, portfolio_risk_text, risk_text, HELP};
use words::{about_portfolio, asks, portfolio_ids_in, tickers_in, Instrument};

/// Years of prices behind every figure: the optimization's estimation
/// window, so figures and rebalancing look at the same history.
pub const LOOKBACK_YEARS: f64 = 5.0;

/// The annual risk-free rate of the Sharpe ratios (the optimization's default).
pub const RISK_FREE_RATE: f64 = 0.02;

/// Holdings listed by name in an answer; the rest are counted.
const LISTED_HOLDINGS: usize = 6;

/// The API path of an optimization's result.
pub fn result_link(request_id: uuid::Uuid) -> String {
    format!("/api/v1/optimizations/{request_id}")
}

/// The wealth agent: risk metrics and correlations of named shares or of
/// the caller's portfolio, and ESG rebalancing requests for it.
pub struct WealthAgent<L: EventLog> {
    log: L,
    store: EventStore<L>,
    mesh: DataMesh,
}

impl<L: EventLog> std::fmt::Debug for WealthAgent<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WealthAgent")
            .field("mesh", &self.mesh.dir())
            .finish()
    }
}

impl<L: EventLog> WealthAgent<L> {
    /// Requests go to `log`; portfolios are read from `store`; prices and
    /// instruments from `mesh`.
    pub fn new(log: L, store: EventStore<L>, mesh: DataMesh) -> Self {
        WealthAgent { log, store, mesh }
    }
}

/// The caller's portfolio ids from the task.
fn caller_portfolios(task: &Task) -> Vec<String> {
    task.input["portfolios"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl<L: EventLog> WealthAgent<L> {
    /// The instruments of the mesh (its ESG product lists them all).
    async fn instruments(&self) -> Result<Vec<Instrument>, String> {
        let mesh = self.mesh.clone();
        let records = tokio::task::spawn_blocking(move || mesh.esg(None))
            .await
            .map_err(|e| format!("reading the instruments stopped: {e}"))?
            .map_err(|e| format!("the instruments could not be read: {e}"))?;
        let pairs: Vec<(String, String)> =
            records.into_iter().map(|r| (r.ticker, r.name)).collect();
        Ok(Instrument::all(&pairs))
    }

    /// The `portfolio_weights` tool: the weights of a portfolio's latest
    /// completed optimization, and its value then.
    async fn weights(&self, w: &mut Work, portfolio_id: &str) -> Result<Value, String> {
        let store = self.store.clone();
        let id = portfolio_id.to_owned();
        w.call(
            "portfolio_weights",
            json!({"portfolio_id": portfolio_id}),
            || async move {
                let loaded = store
                    .load::<Portfolio>(&id)
                    .await
                    .map_err(|e| format!("the portfolio could not be read: {e}"))?;
                let p = loaded.state;
                let mut value = None;
                if let Some(from) = &p.weights_from {
                    // The aggregate keeps the weights; the value they were
                    // computed at is in the completion's result.
                    let history = store
                        .history::<Portfolio>(&id, Cut::Latest)
                        .await
                        .map_err(|e| format!("the portfolio's history could not be read: {e}"))?;
                    value = history.iter().rev().find_map(|e| match &e.payload {
                        PortfolioEvent::OptimizationCompleted(c)
                            if c.result.request_id.to_string() == *from =>
                        {
                            Some(c.result.portfolio_value)
                        }
                        _ => None,
                    });
                }
                Ok(json!({
                    "portfolio_id": id,
                    "status": p.status(),
                    "weights": p.weights,
                    "weights_from": p.weights_from,
                    "value": value,
                }))
            },
        )
        .await
    }

    /// The `risk_metrics` tool.
    async fn risk(&self, w: &mut Work, request: RiskRequest) -> Result<Value, String> {
        let mesh = self.mesh.clone();
        let input = serde_json::to_value(&request).unwrap_or(Value::Null);
        w.call("risk_metrics", input, || async move {
            // Reads the price file: off the async workers.
            let report =
                tokio::task::spawn_blocking(move || calculate_risk_metrics(&mesh, &request))
                    .await
                    .map_err(|e| format!("the risk metrics stopped: {e}"))?
                    .map_err(|e| format!("risk metrics: {e}"))?;
            Ok(serde_json::to_value(report).unwrap_or(Value::Null))
        })
        .await
    }

    /// The `correlation` tool.
    async fn correlation(&self, w: &mut Work, tickers: Vec<String>) -> Result<Value, String> {
        let mesh = self.mesh.clone();
        let request = CorrelationRequest {
            tickers,
            lookback_years: Some(LOOKBACK_YEARS),
        };
        let input = serde_json::to_value(&request).unwrap_or(Value::Null);
        w.call("correlation", input, || async move {
            let report =
                tokio::task::spawn_blocking(move || calculate_correlation(&mesh, &request))
                    .await
                    .map_err(|e| format!("the correlation stopped: {e}"))?
                    .map_err(|e| format!("correlation: {e}"))?;
            Ok(serde_json::to_value(report).unwrap_or(Value::Null))
        })
        .await
    }

    /// The `request_optimization` tool: the demo's request (objective,
    /// constraints, universe) on the portfolio's current holdings,
    /// validated and published as the API publishes it, on behalf of the
    /// task's caller (or `customer`); in a replay (`dry_run`) validated only.
    async fn request_optimization(
        &self,
        w: &mut Work,
        portfolio_id: &str,
        weights: &BTreeMap<String, f64>,
        value: f64,
        customer: &str,
        task: &Task,
    ) -> Result<(Value, Value), String> {
        let principal = task.input["caller"].as_str().unwrap_or(customer);
        let asked_in = task.request_id.as_deref();
        let dry_run = task.input["dry_run"] == true;
        let mut request = ultracore_flow::setup::sample_request(portfolio_id);
        // One request per question and portfolio: a retry or a re-run
        // after a restart publishes the same request id, which the flow
        // recognises.
        if let Some(asked) = asked_in.and_then(|r| r.parse::<uuid::Uuid>().ok()) {
            request.request_id = uuid::Uuid::new_v5(&asked, portfolio_id.as_bytes());
        }
        // A solver's weights may add up to a hair above 1, which a request
        // may not.
        let total: f64 = weights.values().sum();
        let scale = if total > 1.0 { 1.0 / total } else { 1.0 };
        request.portfolio = PortfolioInput {
            holdings: weights
                .iter()
                .map(|(t, wt)| Holding {
                    ticker: Some(t.clone()),
                    isin: None,
                    units: None,
                    weight: Some(wt * scale),
                })
                .collect(),
            cash: 0.0,
            value: Some(value),
        };
        let input = json!({
            "request": serde_json::to_value(&request).unwrap_or(Value::Null),
            "principal": principal,
        });
        let log = self.log.clone();
        let principal = principal.to_owned();
        let sent = input["request"].clone();
        let output = w
            .call("request_optimization", input, || async move {
                ultracore_esg::validate(&request)
                    .map_err(|f| format!("the optimization request is not valid: {f}"))?;
                let request_id = request.request_id;
                let portfolio_id = request.portfolio_id.clone();
                if dry_run {
                    // A replay: checked, not sent.
                    return Ok(json!({
                        "status": "not_sent",
                        "request_id": request_id,
                        "portfolio_id": portfolio_id,
                        "link": result_link(request_id),
                        "topic": ultracore_esg::TOPIC,
                    }));
                }
                let at = ultracore_flow::submit_as(&log, request, &principal)
                    .await
                    .map_err(|e| format!("publishing the request failed: {e}"))?;
                Ok(json!({
                    "status": "pending",
                    "request_id": request_id,
                    "portfolio_id": portfolio_id,
                    "link": result_link(request_id),
                    "topic": ultracore_esg::TOPIC,
                    "partition": at.partition,
                    "offset": at.offset,
                }))
            })
            .await?;
        Ok((output, sent))
    }
}

impl<L: EventLog> Agent for WealthAgent<L> {
    fn id(&self) -> &str {
        "wealth"
    }

    fn run<'a>(
        &'a self,
        task: &'a Task,
        _memory: &'a [Exchange],
    ) -> BoxFuture<'a, Result<AgentOutput, String>> {
        Box::pin(async move {
            let q = query(task);
            let mut w = Work::default();
            let caller = caller_portfolios(task);
            let named = portfolio_ids_in(q, &caller);
            if let Some(unseen) = named.iter().find(|n| !caller.contains(*n)) {
                // Refused before anything is read, in words that do not
                // depend on whether the portfolio exists.
                w.step("refuse", "a portfolio outside the caller's");
                let yours = if caller.is_empty() {
                    String::new()
                } else {
                    format!(
                        " The portfolios you can ask me about: {}.",
                        caller.join(", ")
                    )
                };
                return Ok(w.answer(
                    format!("I can't see a portfolio called {unseen} among yours, so I can't look at it or change it.{yours}"),
                    json!({"refused": unseen}),
                ));
            }
            let instruments = self.instruments().await?;
            let tickers = tickers_in(q, &instruments);
            let names: BTreeMap<String, String> = instruments
                .iter()
                .map(|i| (i.ticker.clone(), i.name.clone()))
                .collect();
            let mut asked = asks(q);
            let portfolio_meant = !named.is_empty() || about_portfolio(q);
            if !asked.optimize && !asked.correlation && (!tickers.is_empty() || portfolio_meant) {
                asked.risk = true;
            }
            w.step(
                "read",
                format!("tickers {tickers:?}, portfolios named {named:?}, asks {asked:?}"),
            );
            let mut parts: Vec<String> = Vec::new();
            let mut data = json!({});
            // The portfolio's weights, read once for every tool that needs them.
            let mut holdings: Option<(String, Value)> = None;
            let needs_portfolio = asked.optimize
                || (asked.risk && tickers.is_empty() && portfolio_meant)
                || (asked.correlation && tickers.is_empty());
            if needs_portfolio {
                match pick(&named, &caller) {
                    Ok(id) => {
                        let read = self.weights(&mut w, &id).await?;
                        data["portfolio"] = read.clone();
                        holdings = Some((id, read));
                    }
                    Err(answer) => parts.push(answer),
                }
            }
            let weights_of = |read: &Value| -> BTreeMap<String, f64> {
                serde_json::from_value(read["weights"].clone()).unwrap_or_default()
            };
            let unknown_holdings = |id: &str| {
                format!("Your portfolio {id} has no completed optimization yet, so I don't know what it holds.")
            };
            if asked.risk {
                if !tickers.is_empty() {
                    let report = self
                        .risk(
                            &mut w,
                            RiskRequest {
                                tickers: tickers.clone(),
                                lookback_years: Some(LOOKBACK_YEARS),
                                weights: None,
                                risk_free_rate: RISK_FREE_RATE,
                                benchmark: None,
                            },
                        )
                        .await?;
                    parts.push(risk_text(&report, &names, &tickers));
                    data["risk"] = report;
                } else if let Some((id, read)) = &holdings {
                    let weights = weights_of(read);
                    let total: f64 = weights.values().sum();
                    if weights.is_empty() || total <= 0.0 {
                        parts.push(unknown_holdings(id));
                    } else {
                        // Weights of the invested part, adding up to 1.
                        let weights: BTreeMap<String, f64> =
                            weights.into_iter().map(|(t, x)| (t, x / total)).collect();
                        let report = self
                            .risk(
                                &mut w,
                                RiskRequest {
                                    tickers: weights.keys().cloned().collect(),
                                    lookback_years: Some(LOOKBACK_YEARS),
                                    weights: Some(weights),
                                    risk_free_rate: RISK_FREE_RATE,
                                    benchmark: None,
                                },
                            )
                            .await?;
                        parts.push(portfolio_risk_text(id, &report));
                        data["risk"] = report;
                    }
                }
            }
            if asked.correlation {
                let subject = if !tickers.is_empty() {
                    Some((tickers.clone(), "these shares".to_owned()))
                } else if let Some((id, read)) = &holdings {
                    let held: Vec<String> = weights_of(read).into_keys().collect();
                    if held.is_empty() {
                        parts.push(unknown_holdings(id));
                        None
                    } else {
                        Some((held, format!("the holdings of {id}")))
                    }
                } else {
                    None
                };
                match subject {
                    Some((list, _)) if list.len() < 2 => parts.push(
                        "A correlation needs two or more shares: name another one to compare with."
                            .into(),
                    ),
                    Some((list, of)) => {
                        let report = self.correlation(&mut w, list).await?;
                        parts.push(correlation_text(&report, &of));
                        data["correlation"] = report;
                    }
                    None => {}
                }
            }
            // Last: a request is published once the other answers are in,
            // so a failure before it cannot publish it twice on a retry.
            if asked.optimize {
                if let Some((id, read)) = &holdings {
                    let weights = weights_of(read);
                    match (task.customer_id.as_deref(), read["value"].as_f64()) {
                        _ if weights.is_empty() => parts.push(unknown_holdings(id)),
                        (None, _) => parts.push(
                            "I can only request a rebalancing for a signed-in customer.".into(),
                        ),
                        (Some(_), None) => parts.push(unknown_holdings(id)),
                        // Reading a portfolio is not changing it: only a
                        // caller who may request optimizations gets one.
                        (Some(_), Some(_)) if task.input["may_rebalance"] != true => parts.push(
                            format!("I can show you {id}, but a rebalancing needs someone who may change it: your adviser or portfolio manager can request one."),
                        ),
                        (Some(customer), Some(value)) => {
                            let (output, request) = self
                                .request_optimization(&mut w, id, &weights, value, customer, task)
                                .await?;
                            parts.push(pending_text(&output, &request));
                            data["optimization"] = output;
                        }
                    }
                }
            }
            if parts.is_empty() {
                parts.push(HELP.into());
            }
            // Two tools may miss the same holdings: say so once.
            let mut said: Vec<String> = Vec::new();
            for p in parts {
                if !said.contains(&p) {
                    said.push(p);
                }
            }
            Ok(w.answer(said.join(" "), data))
        })
    }
}
