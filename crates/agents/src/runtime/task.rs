//! What the runtime runs: tasks, their priorities, agents and answers.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ultracore_events::agents::{ToolCall, TraceStep};

/// How urgent a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Critical,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }
}

/// What an agent is asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub agent_id: String,
    pub input: Value,
    pub customer_id: Option<String>,
    pub request_id: Option<String>,
    pub priority: Priority,
    /// The version of the data the agent will read (part of the cache key).
    pub data_version: String,
}

/// What an agent answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentOutput {
    pub output: Value,
    pub tools: Vec<ToolCall>,
    pub trace: Vec<TraceStep>,
}

/// One remembered exchange of a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub agent_id: String,
    pub input: Value,
    pub output: Value,
}

/// An agent the runtime can run.
pub trait Agent: Send + Sync + 'static {
    fn id(&self) -> &str;
    fn run<'a>(
        &'a self,
        task: &'a Task,
        memory: &'a [Exchange],
    ) -> BoxFuture<'a, Result<AgentOutput, String>>;
}
