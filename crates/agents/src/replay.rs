//! Replaying an execution: the agent runs again on the input its
//! `agent_execution` event recorded, with no cache and no memory, and the
//! answer is compared with the recorded one — the same, or what changed
//! and why (a tool answered differently now, so the data it reads moved
//! on; or the agent called other tools, so the code changed).
//!
//! A replay has no effects: the task carries `"dry_run": true`, so a tool
//! that would publish (the wealth agent's optimization request) checks
//! its request and reports it instead of sending it. Personal data is
//! masked in the replayed answer as it was in the recorded one.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use ultracore_events::agents::{AgentEvent, AgentExecution, ToolCall, TOPIC};
use ultracore_log::{Consumer, ConsumerOptions, Envelope, EventLog, StartFrom};

use crate::runtime::{Agent, Priority, Task};
use crate::screen::{Mode, Screen};

/// One difference between the recorded and the replayed answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// JSON pointer into the output (`/text`, `/data/balance`).
    pub path: String,
    pub recorded: Value,
    pub replayed: Value,
}

/// How one tool call compares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolChange {
    pub tool: String,
    /// `same`, `output_changed` (same input, another answer: the data it
    /// reads changed), `input_changed`, `added` or `removed` (the agent
    /// decided differently), `not_rerun` (it has effects).
    pub change: &'static str,
    pub detail: String,
}

/// The outcome of a replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replay {
    pub execution_id: String,
    pub agent_id: String,
    /// Whether the answer is the same.
    pub same: bool,
    pub recorded: Value,
    pub replayed: Value,
    pub differences: Vec<Difference>,
    pub tools: Vec<ToolChange>,
    /// Why it changed, in a sentence.
    pub explanation: String,
}

/// Finds an execution on `agent.executions` (reads the topic from the
/// start; `None` when no event has that id).
pub async fn find<L: EventLog>(
    log: &L,
    execution_id: &str,
) -> Result<Option<AgentExecution>, String> {
    let info = log
        .describe_topic(TOPIC)
        .await
        .map_err(|e| format!("{TOPIC}: {e}"))?;
    let total = info.records() as usize;
    let group = format!("ultracore-replay-{}", uuid::Uuid::now_v7().simple());
    let mut consumer = log
        .consumer(ConsumerOptions::new(group, [TOPIC]).start(StartFrom::Earliest))
        .await
        .map_err(|e| e.to_string())?;
    let mut seen = 0;
    let mut idle = 0;
    while seen < total && idle < 5 {
        let records = consumer
            .poll(1_000, Duration::from_millis(500))
            .await
            .map_err(|e| e.to_string())?;
        if records.is_empty() {
            idle += 1;
            continue;
        }
        seen += records.len();
        for r in &records {
            if let Ok(env) = Envelope::<AgentEvent>::from_record(r) {
                let AgentEvent::Execution(e) = env.payload;
                if e.execution_id == execution_id {
                    return Ok(Some(e));
                }
            }
        }
    }
    Ok(None)
}

/// Runs `recorded` again with the agent of the same id among `agents`.
pub async fn replay(
    agents: &[Arc<dyn Agent>],
    screen: &Screen,
    recorded: &AgentExecution,
) -> Result<Replay, String> {
    let agent = agents
        .iter()
        .find(|a| a.id() == recorded.agent_id)
        .ok_or_else(|| {
            format!(
                "no agent '{}' in this build (agents: {})",
                recorded.agent_id,
                agents.iter().map(|a| a.id()).collect::<Vec<_>>().join(", ")
            )
        })?;
    let mut input = recorded.input.clone();
    if let Value::Object(m) = &mut input {
        m.insert("dry_run".into(), Value::Bool(true));
    }
    let task = Task {
        agent_id: recorded.agent_id.clone(),
        input,
        customer_id: recorded.customer_id.clone(),
        request_id: recorded.request_id.clone(),
        priority: Priority::Normal,
        data_version: String::new(),
    };
    let mut out = agent.run(&task, &[]).await?;
    screen.screen(&mut out.output, Mode::Block);
    let mut differences = Vec::new();
    diff("", &recorded.output, &out.output, &mut differences);
    let tools = compare_tools(&recorded.tools, &out.tools);
    let same = differences.is_empty();
    let explanation = explain(same, &tools);
    Ok(Replay {
        execution_id: recorded.execution_id.clone(),
        agent_id: recorded.agent_id.clone(),
        same,
        recorded: recorded.output.clone(),
        replayed: out.output,
        differences,
        tools,
        explanation,
    })
}

/// Tools with effects: replays report them, never call them for real.
const EFFECTS: &[&str] = &["request_optimization"];

fn compare_tools(recorded: &[ToolCall], replayed: &[ToolCall]) -> Vec<ToolChange> {
    let mut out = Vec::new();
    let mut used = vec![false; replayed.len()];
    for r in recorded {
        let found = replayed
            .iter()
            .enumerate()
            .find(|(i, t)| !used[*i] && t.tool == r.tool);
        match found {
            None => out.push(ToolChange {
                tool: r.tool.clone(),
                change: "removed",
                detail: "called then, not now".into(),
            }),
            Some((i, t)) => {
                used[i] = true;
                let change = if EFFECTS.contains(&r.tool.as_str()) {
                    ToolChange {
                        tool: r.tool.clone(),
                        change: "not_rerun",
                        detail: "it has effects: checked, not sent again".into(),
                    }
                } else if t.input != r.input {
                    ToolChange {
                        tool: r.tool.clone(),
                        change: "input_changed",
                        detail: format!("input {} → {}", r.input, t.input),
                    }
                } else if t.output != r.output || t.ok != r.ok {
                    let mut d = Vec::new();
                    diff("", &r.output, &t.output, &mut d);
                    ToolChange {
                        tool: r.tool.clone(),
                        change: "output_changed",
                        detail: d
                            .iter()
                            .take(5)
                            .map(|d| format!("{}: {} → {}", d.path, d.recorded, d.replayed))
                            .collect::<Vec<_>>()
                            .join("; "),
                    }
                } else {
                    ToolChange {
                        tool: r.tool.clone(),
                        change: "same",
                        detail: String::new(),
                    }
                };
                out.push(change);
            }
        }
    }
    for (i, t) in replayed.iter().enumerate() {
        if !used[i] {
            out.push(ToolChange {
                tool: t.tool.clone(),
                change: "added",
                detail: "called now, not then".into(),
            });
        }
    }
    out
}

fn explain(same: bool, tools: &[ToolChange]) -> String {
    let of = |c: &str| -> Vec<&str> {
        tools
            .iter()
            .filter(|t| t.change == c)
            .map(|t| t.tool.as_str())
            .collect()
    };
    let (data, decided) = (
        of("output_changed"),
        [of("added"), of("removed"), of("input_changed")].concat(),
    );
    let effects = of("not_rerun");
    let mut why = Vec::new();
    if !data.is_empty() {
        why.push(format!(
            "the data changed since: {} answered differently on the same input",
            data.join(", ")
        ));
    }
    if !decided.is_empty() {
        why.push(format!(
            "the agent called its tools differently ({}): its code or configuration changed",
            decided.join(", ")
        ));
    }
    if !effects.is_empty() {
        why.push(format!(
            "{} has effects and was checked, not sent again",
            effects.join(", ")
        ));
    }
    match (same, why.is_empty()) {
        (true, true) => "The same answer, from the same tool results.".into(),
        (true, false) => format!("The same answer; {}.", why.join("; ")),
        (false, true) => {
            "The answer differs although every tool answered the same: the agent's wording or rules changed.".into()
        }
        (false, false) => format!("The answer differs: {}.", why.join("; ")),
    }
}

/// The leaves where `a` and `b` differ, as JSON pointers.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<Difference>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
                diff(
                    &p,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}/{i}"), u, v, out);
            }
        }
        _ if a != b => out.push(Difference {
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            recorded: a.clone(),
            replayed: b.clone(),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(tool: &str, input: Value, output: Value) -> ToolCall {
        ToolCall {
            tool: tool.into(),
            input,
            output,
            ok: true,
            error: None,
            duration_ms: 0.1,
        }
    }

    #[test]
    fn differences_are_json_pointers_to_the_leaves() {
        let mut d = Vec::new();
        diff(
            "",
            &json!({"text": "a", "data": {"balance": 1.0, "tx": [1, 2]}}),
            &json!({"text": "a", "data": {"balance": 2.0, "tx": [1, 3]}}),
            &mut d,
        );
        let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["/data/balance", "/data/tx/1"]);
    }

    #[test]
    fn a_tool_answering_differently_means_the_data_changed() {
        let then = [call(
            "card_balance",
            json!({"a": 1}),
            json!({"balance": 10.0}),
        )];
        let now = [call(
            "card_balance",
            json!({"a": 1}),
            json!({"balance": 12.5}),
        )];
        let t = compare_tools(&then, &now);
        assert_eq!(t[0].change, "output_changed");
        assert!(
            t[0].detail.contains("/balance: 10.0 → 12.5"),
            "{}",
            t[0].detail
        );
        let why = explain(false, &t);
        assert!(
            why.contains("the data changed since: card_balance"),
            "{why}"
        );
        let same = compare_tools(&then, &then);
        assert_eq!(same[0].change, "same");
        assert_eq!(
            explain(true, &same),
            "The same answer, from the same tool results."
        );
        let other = [call("recommend_cards", json!({}), json!({}))];
        let t = compare_tools(&then, &other);
        let changes: Vec<&str> = t.iter().map(|c| c.change).collect();
        assert_eq!(changes, ["removed", "added"]);
        assert!(explain(false, &t).contains("its code or configuration changed"));
    }
}
