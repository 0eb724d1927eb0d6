//! `agent.executions`: every run of an agent — what it was asked, what it
//! answered, the tools it called and the steps it took — so analytics can
//! measure the agents, governance can screen their answers and the audit
//! trail can show who was told what.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event_family_v1;

pub const TOPIC: &str = "agent.executions";

/// The aggregate type of executions; the aggregate id is the customer the
/// agent worked for (or the agent's id when it worked for nobody), so one
/// customer's executions keep their order.
pub const AGGREGATE_TYPE: &str = "AgentExecution";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AgentEvent {
    Execution(AgentExecution),
}

event_family_v1!(AgentEvent {
    Execution => "agent_execution",
});

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
}

impl ExecutionStatus {
    pub fn name(self) -> &'static str {
        match self {
            ExecutionStatus::Succeeded => "succeeded",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::TimedOut => "timed_out",
            ExecutionStatus::Cancelled => "cancelled",
        }
    }
}

/// One tool call of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub tool: String,
    pub input: Value,
    /// The tool's result (or `null` when it failed).
    pub output: Value,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: f64,
}

/// One step of an execution's trace (planned, called a tool, checked, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    pub step: String,
    pub detail: String,
}

/// One run of one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentExecution {
    pub execution_id: String,
    pub agent_id: String,
    pub status: ExecutionStatus,
    /// From the start of the run to its end (queueing not included).
    pub duration_ms: f64,
    pub input: Value,
    /// The answer: for the customer-facing agents `{"text": …, …}`.
    pub output: Value,
    #[serde(default)]
    pub tools: Vec<ToolCall>,
    #[serde(default)]
    pub trace: Vec<TraceStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// The assist request the execution belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ultracore_log::{EnvelopeBuilder, EventFamily};

    #[test]
    fn an_execution_round_trips_through_its_envelope() {
        let e = AgentEvent::Execution(AgentExecution {
            execution_id: "ex-1".into(),
            agent_id: "card".into(),
            status: ExecutionStatus::Succeeded,
            duration_ms: 1.5,
            input: serde_json::json!({"query": "balance"}),
            output: serde_json::json!({"text": "Your balance is $12.00"}),
            tools: vec![],
            trace: vec![],
            customer_id: Some("c-1".into()),
            request_id: None,
            error: None,
            started_at: Utc::now(),
        });
        assert_eq!(e.event_type(), "agent_execution");
        let env = EnvelopeBuilder::new(AGGREGATE_TYPE, "c-1").build(e.clone());
        let back = ultracore_log::Envelope::<AgentEvent>::from_record(&{
            let r = env.to_record();
            ultracore_log::Record {
                topic: TOPIC.into(),
                partition: 0,
                offset: 0,
                timestamp: 0,
                key: r.key,
                value: r.value,
                headers: r.headers,
            }
        })
        .unwrap();
        assert_eq!(back.payload, e);
    }
}
