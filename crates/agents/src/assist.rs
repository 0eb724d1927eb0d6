//! The assist pipeline: a customer's question → the planner (intent
//! detection) → one task per intent on the agent runtime, run in parallel
//! → a critic on each answer → governance → one reply that says what each
//! agent did and which tools it called.
//!
//! The critic checks three things of every answer: its tools all
//! succeeded; every figure it states comes from a tool's input or output
//! (or the question); and it makes no promise a bank may not make
//! ("guaranteed", "risk-free", …). An answer that fails is withheld, and
//! the reply says why. The question is masked before anything sees it
//! (personal data in it raises alerts at `/query`). Governance also runs
//! in the runtime: in blocking mode,
//! personal data is masked before an answer is recorded or returned, and
//! each masked value raises a `compliance_alert` (action `masked`).
//!
//! With a language model ([`Assistant::with_model`]), each answer that
//! passed is given to the model to reword for the customer, with the
//! (masked) question and the names of the tools behind it. The rewording
//! is used only if it passes everything the answer passed — the critic
//! against the same tools, and the screen (any personal data in it
//! discards it) — and keeps every figure of the answer; otherwise, and
//! whenever the model fails or is slow, the agent's own words go out.
//! [`AgentAnswer::phrasing`] says which, and why a rewording was not
//! used. The model sees no personal data (the question and the answers
//! are masked before it) and changes nothing the runtime recorded or
//! cached: it rewords in the assistant, after the runtime.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};
use ultracore_events::agents::{ExecutionStatus, ToolCall};
use ultracore_log::EventLog;
use uuid::Uuid;

use crate::intent::{detect, Intent};
use crate::language::{ChatMessage, LanguageModel};
use crate::runtime::{AgentRuntime, Priority, Task};
use crate::screen::{Mode, Screen};

/// Longest question accepted.
pub const MAX_QUERY: usize = 2_000;

/// Most portfolios a caller may pass.
pub const MAX_PORTFOLIOS: usize = 1_000;

fn bad(field: &str, reason: impl Into<String>) -> AssistError {
    AssistError::BadInput {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Why a question was not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AssistError {
    /// A field of the question with a bad value: `query`, `customer_id`,
    /// `portfolios[i]`.
    #[error("{field}: {reason}")]
    BadInput { field: String, reason: String },
    #[error("the agents are not available: {0}")]
    Unavailable(String),
}

/// One check of the critic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// What one agent did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentAnswer {
    pub agent_id: String,
    pub execution_id: String,
    pub status: ExecutionStatus,
    pub cached: bool,
    /// The answer as the customer sees it (withheld when the critic failed it).
    pub text: String,
    pub tools: Vec<String>,
    pub critic: Vec<Check>,
    pub passed: bool,
    /// Values masked in it (blocking mode), by entity.
    pub masked: Vec<String>,
    /// Whose words `text` is: the agent's, or a model's rewording of them.
    pub phrasing: Phrasing,
}

/// Who worded an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PhrasedBy {
    Agent,
    Model,
}

/// Who worded an answer, and why a model's rewording was not used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phrasing {
    pub by: PhrasedBy,
    /// The model asked to reword the answer: none when no model is
    /// configured or the answer did not pass the critic.
    pub model: Option<String>,
    /// Why the model's rewording was not used ("timed out after 5000 ms",
    /// "the model stated 12.5, which no tool gave").
    pub note: Option<String>,
}

impl Phrasing {
    /// The agent's own words, no model asked.
    pub fn agent() -> Phrasing {
        Phrasing {
            by: PhrasedBy::Agent,
            model: None,
            note: None,
        }
    }
}

/// The reply to one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssistReply {
    pub request_id: String,
    pub customer_id: Option<String>,
    /// The question as the agents saw it: personal data masked.
    pub question: String,
    pub intents: Vec<Intent>,
    /// The words that decided each intent.
    pub cues: Vec<(Intent, String)>,
    pub answers: Vec<AgentAnswer>,
    /// The answers joined, as sent.
    pub text: String,
    pub duration_ms: f64,
}

/// Who asks, as the agents need to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The principal's id (an API key id, `jwt:<sub>`, `local`): recorded
    /// on anything an agent publishes for it.
    pub principal: String,
    /// Whether it may request optimizations (which stage orders).
    pub may_rebalance: bool,
}

impl Caller {
    /// The local user of the CLI, who holds the data directory.
    pub fn local() -> Caller {
        Caller {
            principal: "local".into(),
            may_rebalance: true,
        }
    }
}

/// The pipeline.
#[derive(Debug, Clone)]
pub struct Assistant<L: EventLog> {
    runtime: AgentRuntime,
    screen: Screen,
    log: L,
    model: Option<Model>,
    /// The version of the data the agents read (part of the cache key).
    pub data_version: String,
}

/// The optional model, shown in `Debug` by name.
#[derive(Clone)]
struct Model(Arc<dyn LanguageModel>);

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Model").field(&self.0.name()).finish()
    }
}

/// What the model is told: it rewords, and every check the answer passed
/// is run again on what it writes.
const REPHRASE: &str = "You reword a bank assistant's answer for the customer who asked \
    the question. Only restate the facts in the answer you are given. Keep every figure \
    (amounts, rates, percentages, counts, dates) exactly as written, with its units. Add no \
    figures, no advice beyond the given text, and no promises or guarantees. Ask for and add \
    no personal details. Reply with the reworded answer only, in plain sentences.";

const GENERAL: &str = "I can help with your cards (balance, transactions, choosing a card), loans (what you could borrow, repayments, deposits) and investments (risk figures and correlations of shares or your portfolio, an ESG rebalancing). For anything else — your login, your details, opening hours — our team can help on 13 22 65.";

const PROMISES: &[&str] = &[
    "guarantee",
    "risk-free",
    "risk free",
    "can't lose",
    "cannot lose",
    "no risk",
    "definitely buy",
    "sure thing",
];

/// The card agent (accounts in `store`, the shipped catalogue), the loan
/// agent and the wealth agent (portfolios in `store`, prices in `mesh`,
/// optimization requests on `log`).
pub fn agents<L: EventLog>(
    log: L,
    store: ultracore_es::EventStore<L>,
    mesh: ultracore_marketdata::mesh::DataMesh,
) -> Vec<std::sync::Arc<dyn crate::runtime::Agent>> {
    use std::sync::Arc;
    vec![
        Arc::new(crate::specialists::CardAgent::new(
            store.clone(),
            crate::cards::Catalogue::shipped(),
        )),
        Arc::new(crate::specialists::LoanAgent::default()),
        Arc::new(crate::wealth::WealthAgent::new(log, store, mesh)),
    ]
}

impl<L: EventLog> Assistant<L> {
    /// The assistant with the card agent (accounts in `store`, the shipped
    /// catalogue), the loan agent and the wealth agent (portfolios in
    /// `store`, prices in `mesh`, optimization requests on `log`) on a
    /// runtime that masks personal data (blocking mode) and records
    /// executions on `log`.
    pub fn with_agents(
        log: L,
        store: ultracore_es::EventStore<L>,
        mesh: ultracore_marketdata::mesh::DataMesh,
        screen: Screen,
        config: crate::runtime::RuntimeConfig,
    ) -> Self {
        use std::sync::Arc;
        let agents = agents(log.clone(), store, mesh);
        let runtime = AgentRuntime::start_screened(
            config,
            agents,
            Arc::new(crate::runtime::LogSink::new(log.clone())),
            Some(screen.clone()),
        );
        Assistant::new(runtime, screen, log)
    }

    /// [`Assistant::with_agents`] on a runtime whose queue is journaled in
    /// `config.journal` (when set): questions being answered when the
    /// process stops are answered after the next start, each once.
    ///
    /// # Errors
    ///
    /// The journal cannot be opened, or the executions already published
    /// cannot be read.
    pub async fn open(
        log: L,
        store: ultracore_es::EventStore<L>,
        mesh: ultracore_marketdata::mesh::DataMesh,
        screen: Screen,
        config: crate::runtime::RuntimeConfig,
    ) -> Result<Self, crate::runtime::RuntimeError> {
        use std::sync::Arc;
        let runtime = AgentRuntime::open(
            config,
            agents(log.clone(), store, mesh),
            Arc::new(crate::runtime::LogSink::new(log.clone())),
            Some(screen.clone()),
        )
        .await?;
        Ok(Assistant::new(runtime, screen, log))
    }

    /// `runtime` should screen answers (see [`AgentRuntime::start_screened`]);
    /// alerts of masked values go to `log`.
    pub fn new(runtime: AgentRuntime, screen: Screen, log: L) -> Self {
        // The planner's model trains in the background, not on the first
        // question's async worker.
        crate::intent::warm_up();
        Assistant {
            runtime,
            screen,
            log,
            model: None,
            data_version: "1".into(),
        }
    }

    /// The assistant with `model` rewording the answers that passed the
    /// critic; a rewording is used only if it passes the critic and the
    /// screen again (see the module's documentation). Each call is bounded
    /// by [`LanguageModel::timeout`], and no failure of the model fails a
    /// question.
    pub fn with_model(mut self, model: Arc<dyn LanguageModel>) -> Self {
        self.model = Some(Model(model));
        self
    }

    /// Answers `query` of `customer_id`, who may see the portfolios
    /// `portfolios` (the ids their login gives them; the wealth agent reads
    /// and rebalances no other).
    pub async fn assist(
        &self,
        customer_id: Option<&str>,
        query: &str,
        portfolios: &[String],
    ) -> Result<AssistReply, AssistError> {
        self.assist_as(&Caller::local(), customer_id, query, portfolios)
            .await
    }

    /// [`Assistant::assist`] for `caller`: the agents act with the caller's
    /// rights (a rebalancing is requested only for a caller who may
    /// request optimizations) and name it in what they publish.
    pub async fn assist_as(
        &self,
        caller: &Caller,
        customer_id: Option<&str>,
        query: &str,
        portfolios: &[String],
    ) -> Result<AssistReply, AssistError> {
        let started = Instant::now();
        let query = query.trim();
        if query.is_empty() {
            return Err(bad("query", "it is empty: ask a question"));
        }
        if query.len() > MAX_QUERY {
            return Err(bad(
                "query",
                format!(
                    "{} bytes, at most {MAX_QUERY}: ask one question at a time",
                    query.len()
                ),
            ));
        }
        if let Some(c) = customer_id {
            if !ultracore_http::is_valid_customer_id(c) {
                return Err(bad(
                    "customer_id",
                    format!("{c:?} is not a customer id: 1 to 64 letters, digits, '-', '_' or '.'"),
                ));
            }
        }
        if portfolios.len() > MAX_PORTFOLIOS {
            return Err(bad(
                "portfolios",
                format!("{} portfolios, at most {MAX_PORTFOLIOS}", portfolios.len()),
            ));
        }
        if let Some((i, p)) = portfolios
            .iter()
            .enumerate()
            .find(|(_, p)| !ultracore_http::is_valid_portfolio_id(p))
        {
            return Err(bad(
                &format!("portfolios[{i}]"),
                format!("{p:?} is not a portfolio id: 1 to 64 letters, digits, '-', '_' or '.'"),
            ));
        }
        let request = Uuid::now_v7();
        let request_id = request.to_string();
        // The question itself may carry personal data ("my TFN is …"): it
        // is masked before any agent, record or log sees it, and each value
        // raises an alert.
        let mut asked = Value::String(query.to_owned());
        let found = self.screen.screen(&mut asked, Mode::Block);
        for s in &found {
            let alert = self.screen.alert(
                s,
                ultracore_events::agents::TOPIC,
                request,
                "/query",
                Mode::Block,
                (None, None, customer_id.map(str::to_owned)),
            );
            if let Err(e) = crate::screen::publish_alert(&self.log, alert).await {
                tracing::error!(error = %e, "an alert of the question could not be published");
            }
        }
        let query = asked.as_str().unwrap_or_default();
        let detected = detect(query);
        let urgent = ["lost", "stolen", "fraud", "scam"]
            .iter()
            .any(|w| query.to_lowercase().contains(w));
        let mut waiting = Vec::new();
        for (intent, part) in detected.parts.iter().filter(|(i, _)| *i != Intent::General) {
            let task = Task {
                agent_id: intent.name().into(),
                input: json!({"query": part, "context": query, "portfolios": portfolios,
                              "caller": caller.principal, "may_rebalance": caller.may_rebalance}),
                customer_id: customer_id.map(str::to_owned),
                request_id: Some(request_id.clone()),
                priority: if urgent {
                    Priority::Critical
                } else {
                    Priority::High
                },
                data_version: self.data_version.clone(),
            };
            let rx = self
                .runtime
                .enqueue(task)
                .await
                .map_err(|e| AssistError::Unavailable(e.to_string()))?
                .outcome;
            waiting.push((*intent, rx));
        }
        let mut answers = Vec::new();
        // What each answer was checked against, for its rewording.
        let mut sources = Vec::new();
        for (intent, rx) in waiting {
            let outcome = rx.await.map_err(|_| {
                AssistError::Unavailable(format!("the {} agent stopped", intent.name()))
            })?;
            let text = outcome.output["text"].as_str().unwrap_or("").to_owned();
            let critic = critique(
                &text,
                query,
                &outcome.output,
                &outcome.tools,
                outcome.status,
            );
            let passed = critic.iter().all(|c| c.passed);
            for s in &outcome.masked {
                self.alert(s, &outcome.execution_id, intent, customer_id)
                    .await;
            }
            answers.push(AgentAnswer {
                agent_id: intent.name().into(),
                execution_id: outcome.execution_id,
                status: outcome.status,
                cached: outcome.cached,
                text: if passed {
                    text
                } else {
                    format!("I couldn't check my {} answer, so I won't guess: please ask again, or talk to us.", intent.name())
                },
                tools: outcome.tools.iter().map(|t| t.tool.clone()).collect(),
                critic,
                passed,
                masked: outcome.masked.iter().map(|s| s.finding.entity.name().to_owned()).collect(),
                phrasing: Phrasing::agent(),
            });
            sources.push(Checked {
                output: outcome.output,
                tools: outcome.tools,
                status: outcome.status,
            });
        }
        if let Some(Model(model)) = &self.model {
            self.reword_all(model.as_ref(), query, &mut answers, &sources)
                .await;
        }
        let text = if answers.is_empty() {
            GENERAL.to_owned()
        } else {
            answers
                .iter()
                .map(|a| a.text.as_str())
                .collect::<Vec<_>>()
                .join("\n\n")
        };
        Ok(AssistReply {
            request_id,
            customer_id: customer_id.map(str::to_owned),
            question: query.to_owned(),
            intents: detected.intents,
            cues: detected.cues,
            answers,
            text,
            duration_ms: started.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Each answer that passed, in `model`'s words if they pass too;
    /// [`AgentAnswer::phrasing`] says which. `sources[i]` is what
    /// `answers[i]` was checked against.
    async fn reword_all(
        &self,
        model: &dyn LanguageModel,
        query: &str,
        answers: &mut [AgentAnswer],
        sources: &[Checked],
    ) {
        // The answers are reworded at once: a question of two agents waits
        // for one model call, not two in a row.
        let reworded =
            futures::future::join_all(answers.iter().zip(sources).map(|(a, checked)| async move {
                if !a.passed {
                    return None;
                }
                Some(self.reword(model, query, a, checked).await)
            }))
            .await;
        for (a, r) in answers.iter_mut().zip(reworded) {
            let Some(r) = r else { continue };
            let name = Some(model.name().to_owned());
            a.phrasing = match r {
                Ok(text) => {
                    a.text = text;
                    Phrasing {
                        by: PhrasedBy::Model,
                        model: name,
                        note: None,
                    }
                }
                Err(note) => {
                    tracing::debug!(agent = %a.agent_id, model = model.name(), %note,
                        "the model's rewording was not used");
                    Phrasing {
                        by: PhrasedBy::Agent,
                        model: name,
                        note: Some(note),
                    }
                }
            };
        }
    }

    /// `model`'s rewording of `answer`, if it passes the screen and every
    /// check `answer` passed; otherwise why not.
    async fn reword(
        &self,
        model: &dyn LanguageModel,
        query: &str,
        answer: &AgentAnswer,
        checked: &Checked,
    ) -> Result<String, String> {
        let tools = if answer.tools.is_empty() {
            "none".to_owned()
        } else {
            answer.tools.join(", ")
        };
        let messages = [
            ChatMessage::system(REPHRASE),
            ChatMessage::user(format!(
                "The customer asked:\n{}\n\nThe {} agent answered, from the tools {tools}:\n{}",
                query, answer.agent_id, answer.text
            )),
        ];
        // Bounded here as well as in the client: a model of another kind
        // may not bound itself.
        let limit = model.timeout();
        let text = match tokio::time::timeout(limit, model.complete(&messages)).await {
            Err(_) => return Err(format!("timed out after {} ms", limit.as_millis())),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(text)) => text.trim().to_owned(),
        };
        // Personal data in it discards it: the model saw none, so it made
        // it up or was told to by the question.
        let found = self
            .screen
            .screen(&mut Value::String(text.clone()), Mode::Block);
        if !found.is_empty() {
            let mut entities: Vec<&str> = found.iter().map(|s| s.finding.entity.name()).collect();
            entities.sort_unstable();
            entities.dedup();
            return Err(format!(
                "the model's text had personal data ({}), so it was discarded",
                entities.join(", ")
            ));
        }
        let checks = critique(
            &text,
            query,
            &checked.output,
            &checked.tools,
            checked.status,
        );
        if let Some(c) = checks.iter().find(|c| !c.passed) {
            return Err(match c.check {
                "figures_from_tools" => {
                    let stated = unsourced(&text, query, &checked.output, &checked.tools);
                    format!("the model stated {}, which no tool gave", figures(&stated))
                }
                "policy" => format!("the model's text makes a promise ({})", c.detail),
                "answered" => "the model's text is empty".to_owned(),
                _ => format!(
                    "the model's text failed the {} check: {}",
                    c.check, c.detail
                ),
            });
        }
        // Told to keep every figure as written: a rewording that drops one
        // says less than the answer did.
        let kept = numbers_in(&text);
        let dropped: Vec<f64> = numbers_in(&answer.text)
            .into_iter()
            .filter(|x| !kept.contains(x))
            .collect();
        if !dropped.is_empty() {
            return Err(format!(
                "the model left out {}, which the answer gave",
                figures(&dropped)
            ));
        }
        Ok(text)
    }

    async fn alert(
        &self,
        s: &crate::Screened,
        execution_id: &str,
        intent: Intent,
        customer: Option<&str>,
    ) {
        let Ok(event_id) = execution_id.parse::<Uuid>() else {
            return;
        };
        let alert = self.screen.alert(
            s,
            ultracore_events::agents::TOPIC,
            event_id,
            "",
            Mode::Block,
            (
                Some(intent.name().into()),
                Some(execution_id.into()),
                customer.map(str::to_owned),
            ),
        );
        if let Err(e) = crate::screen::publish_alert(&self.log, alert).await {
            tracing::error!(error = %e, "a compliance alert could not be published");
        }
    }
}

/// What the critic checked an answer against (with the question).
struct Checked {
    output: Value,
    tools: Vec<ToolCall>,
    status: ExecutionStatus,
}

/// `[12.5, 99]` → `12.5 and 99`.
fn figures(xs: &[f64]) -> String {
    let all: Vec<String> = xs.iter().map(f64::to_string).collect();
    match all.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => all.join(""),
    }
}

/// Numbers as a text writes them: `$1,234.50` → 1234.5, `6.09 %` → 6.09.
fn numbers_in(text: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() || (c == '.' && !cur.is_empty()) || (c == ',' && !cur.is_empty()) {
            cur.push(c);
        } else if !cur.is_empty() {
            let clean: String = cur.trim_end_matches(['.', ',']).replace(',', "");
            if let Ok(v) = clean.parse::<f64>() {
                out.push(v);
            }
            cur.clear();
        }
    }
    out
}

fn json_numbers(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Number(n) => out.extend(n.as_f64()),
        Value::Array(a) => a.iter().for_each(|x| json_numbers(x, out)),
        Value::Object(m) => m.values().for_each(|x| json_numbers(x, out)),
        Value::String(s) => out.extend(numbers_in(s)),
        _ => {}
    }
}

/// The figures of `text` that come from no tool and not the question.
///
/// A figure is sourced when a tool's input or output, the answer's data or
/// the question has it (as is, as a percentage, rounded); small counts
/// (years, months) pass.
fn unsourced(text: &str, query: &str, output: &Value, tools: &[ToolCall]) -> Vec<f64> {
    let mut known = numbers_in(query);
    for t in tools {
        json_numbers(&t.input, &mut known);
        json_numbers(&t.output, &mut known);
    }
    json_numbers(&output["data"], &mut known);
    numbers_in(text)
        .into_iter()
        .filter(|x| *x > 60.0 || x.fract() != 0.0)
        .filter(|x| {
            !known.iter().any(|k| {
                [k.abs(), k.abs() * 100.0].iter().any(|c| {
                    let tol = (c.abs() * 0.005).max(0.01);
                    (c - x).abs() <= tol || (c.round() - x).abs() < 1e-9
                })
            })
        })
        .collect()
}

/// The critic's checks of one answer.
pub fn critique(
    text: &str,
    query: &str,
    output: &Value,
    tools: &[ToolCall],
    status: ExecutionStatus,
) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(Check {
        check: "answered",
        passed: status == ExecutionStatus::Succeeded && !text.is_empty(),
        detail: format!("the agent {}", status.name()),
    });
    let failed: Vec<&str> = tools
        .iter()
        .filter(|t| !t.ok)
        .map(|t| t.tool.as_str())
        .collect();
    checks.push(Check {
        check: "tools_succeeded",
        passed: failed.is_empty(),
        detail: if failed.is_empty() {
            format!("{} tool calls", tools.len())
        } else {
            format!("failed: {}", failed.join(", "))
        },
    });
    let unsourced = unsourced(text, query, output, tools);
    checks.push(Check {
        check: "figures_from_tools",
        passed: unsourced.is_empty(),
        detail: if unsourced.is_empty() {
            "every figure comes from a tool or the question".into()
        } else {
            format!("no tool gave {unsourced:?}")
        },
    });
    let lower = text.to_lowercase();
    let promises: Vec<&&str> = PROMISES.iter().filter(|p| lower.contains(**p)).collect();
    checks.push(Check {
        check: "policy",
        passed: promises.is_empty(),
        detail: if promises.is_empty() {
            "no promises".into()
        } else {
            format!("promises: {promises:?}")
        },
    });
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_written() {
        assert_eq!(
            numbers_in("Your balance is $1,234.50 of $5,000.00."),
            [1234.5, 5000.0]
        );
        assert_eq!(numbers_in("at 6.09 % over 30 years"), [6.09, 30.0]);
    }

    #[test]
    fn figures_are_listed_as_written() {
        assert_eq!(figures(&[12.5]), "12.5");
        assert_eq!(figures(&[12.5, 99.0]), "12.5 and 99");
        assert_eq!(figures(&[1.0, 2.5, 3.0]), "1, 2.5 and 3");
    }

    #[test]
    fn the_critic_withholds_figures_no_tool_gave() {
        let tools = vec![ToolCall {
            tool: "lvr".into(),
            input: json!({"price": 800000.0, "deposit": 160000.0}),
            output: json!({"loan": 640000.0, "lvr": 0.8}),
            ok: true,
            error: None,
            duration_ms: 0.1,
        }];
        let ok = critique(
            "You would borrow $640,000.00 (LVR 80 %).",
            "",
            &json!({}),
            &tools,
            ExecutionStatus::Succeeded,
        );
        assert!(ok.iter().all(|c| c.passed), "{ok:?}");
        let made_up = critique(
            "You would borrow $700,000.00.",
            "",
            &json!({}),
            &tools,
            ExecutionStatus::Succeeded,
        );
        assert!(
            !made_up
                .iter()
                .find(|c| c.check == "figures_from_tools")
                .unwrap()
                .passed
        );
        let promise = critique(
            "Returns are guaranteed.",
            "",
            &json!({}),
            &tools,
            ExecutionStatus::Succeeded,
        );
        assert!(!promise.iter().find(|c| c.check == "policy").unwrap().passed);
    }
}
