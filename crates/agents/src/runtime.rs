//! The agent runtime: a priority queue of agent tasks served by a fixed
//! set of workers.
//!
//! - Four priorities (critical, high, normal, low); a free worker takes
//!   the oldest task of the highest priority whose agent has a free slot
//!   (each agent runs at most `per_agent` tasks at once).
//! - Every run has a timeout. A failed or timed-out run is retried after
//!   an exponential backoff with full jitter (AWS's "Exponential Backoff
//!   and Jitter"), and the retry goes to the back of its priority's queue,
//!   so a failing task does not hold a worker while others wait.
//! - Results are cached for a TTL, keyed by agent, input and the version
//!   of the data the agent read: a hit answers without calling the agent.
//! - Each customer has a short memory of their last exchanges (bounded,
//!   and bounded in customers), handed to the agent with the task.
//! - Every finished run (succeeded, failed for good, timed out for good) is
//!   handed to an [`ExecutionSink`] (the log's `agent.executions`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;
use ultracore_events::agents::{AgentExecution, ExecutionStatus, ToolCall, TraceStep};
use ultracore_rng::SplitMix64;

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

/// Where finished runs go.
pub trait ExecutionSink: Send + Sync + 'static {
    fn record(&self, execution: AgentExecution) -> BoxFuture<'_, ()>;
}

/// Settings of a runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub workers: usize,
    /// Most runs of one agent at once.
    pub per_agent: usize,
    pub timeout: Duration,
    /// Runs of a task at most (first run included).
    pub attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub cache_ttl: Duration,
    pub cache_capacity: usize,
    /// Exchanges remembered per customer, and customers remembered.
    pub memory_per_customer: usize,
    pub memory_customers: usize,
    pub seed: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            workers: 8,
            per_agent: 4,
            timeout: Duration::from_secs(5),
            attempts: 3,
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(60),
            cache_capacity: 10_000,
            memory_per_customer: 10,
            memory_customers: 10_000,
            seed: 42,
        }
    }
}

/// How a task ended, for its submitter.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub execution_id: String,
    pub status: ExecutionStatus,
    pub output: Value,
    pub error: Option<String>,
    /// Answered from the cache, without running the agent.
    pub cached: bool,
    /// From submission to the start of the run that ended it.
    pub waited: Duration,
    pub attempts: u32,
    /// Tool calls of the run.
    pub tools: Vec<ToolCall>,
    /// Personal data masked in the answer (blocking mode).
    pub masked: Vec<crate::Screened>,
}

struct Queued {
    task: Task,
    execution_id: String,
    attempt: u32,
    submitted: Instant,
    reply: Option<oneshot::Sender<Outcome>>,
}

#[derive(Default)]
struct State {
    /// Per priority, oldest first.
    queues: BTreeMap<Priority, VecDeque<Queued>>,
    running: HashMap<String, usize>,
    stopping: bool,
}

type CacheKey = (String, String, String);

struct Cache {
    /// The answer and the tool calls behind it (a cached answer is still
    /// checked against its tools).
    entries: HashMap<CacheKey, (Instant, Value, Vec<ToolCall>)>,
    order: VecDeque<CacheKey>,
}

struct Memory {
    by_customer: HashMap<String, VecDeque<Exchange>>,
    order: VecDeque<String>,
}

struct Inner {
    config: RuntimeConfig,
    /// In blocking mode, answers are masked before they are recorded or returned.
    screen: Option<crate::Screen>,
    agents: HashMap<String, Arc<dyn Agent>>,
    sink: Arc<dyn ExecutionSink>,
    state: Mutex<State>,
    work: Notify,
    cache: Mutex<Cache>,
    memory: Mutex<Memory>,
    rng: Mutex<SplitMix64>,
}

/// The runtime: submit tasks, await their outcomes.
#[derive(Clone)]
pub struct AgentRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AgentRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentRuntime")
            .field("agents", &self.inner.agents.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AgentRuntime {
    /// Starts `config.workers` workers serving `agents`.
    pub fn start(
        config: RuntimeConfig,
        agents: Vec<Arc<dyn Agent>>,
        sink: Arc<dyn ExecutionSink>,
    ) -> AgentRuntime {
        Self::start_screened(config, agents, sink, None)
    }

    /// [`AgentRuntime::start`], with every answer screened by `screen` and
    /// its personal data masked before it is recorded, cached or returned
    /// (the findings come back in the [`Outcome`]).
    pub fn start_screened(
        config: RuntimeConfig,
        agents: Vec<Arc<dyn Agent>>,
        sink: Arc<dyn ExecutionSink>,
        screen: Option<crate::Screen>,
    ) -> AgentRuntime {
        let inner = Arc::new(Inner {
            rng: Mutex::new(SplitMix64::new(config.seed)),
            agents: agents.into_iter().map(|a| (a.id().to_owned(), a)).collect(),
            sink,
            state: Mutex::new(State::default()),
            work: Notify::new(),
            cache: Mutex::new(Cache {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
            memory: Mutex::new(Memory {
                by_customer: HashMap::new(),
                order: VecDeque::new(),
            }),
            config,
            screen,
        });
        for _ in 0..inner.config.workers.max(1) {
            tokio::spawn(worker(inner.clone()));
        }
        AgentRuntime { inner }
    }

    /// Queues `task`; the receiver gets its outcome. A cached answer
    /// comes back at once, without running the agent.
    pub fn submit(&self, task: Task) -> Result<oneshot::Receiver<Outcome>, String> {
        if !self.inner.agents.contains_key(&task.agent_id) {
            return Err(format!("no agent '{}'", task.agent_id));
        }
        let (tx, rx) = oneshot::channel();
        let execution_id = uuid::Uuid::now_v7().to_string();
        if let Some((output, tools)) = self.inner.cached(&task) {
            let _ = tx.send(Outcome {
                execution_id,
                status: ExecutionStatus::Succeeded,
                output,
                error: None,
                cached: true,
                waited: Duration::ZERO,
                attempts: 0,
                tools,
                masked: vec![],
            });
            return Ok(rx);
        }
        self.inner.push(Queued {
            task,
            execution_id,
            attempt: 1,
            submitted: Instant::now(),
            reply: Some(tx),
        });
        Ok(rx)
    }

    /// The remembered exchanges of a customer, oldest first.
    pub fn memory_of(&self, customer_id: &str) -> Vec<Exchange> {
        lock(&self.inner.memory)
            .by_customer
            .get(customer_id)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Tasks waiting, per priority.
    pub fn queued(&self) -> BTreeMap<Priority, usize> {
        lock(&self.inner.state)
            .queues
            .iter()
            .map(|(p, q)| (*p, q.len()))
            .collect()
    }

    /// Stops the workers once the tasks they run are done (queued tasks stay queued).
    pub fn stop(&self) {
        lock(&self.inner.state).stopping = true;
        self.inner.work.notify_waiters();
    }
}

impl Inner {
    fn push(&self, q: Queued) {
        lock(&self.state)
            .queues
            .entry(q.task.priority)
            .or_default()
            .push_back(q);
        self.work.notify_one();
    }

    fn cache_key(task: &Task) -> CacheKey {
        (
            task.agent_id.clone(),
            task.input.to_string(),
            task.data_version.clone(),
        )
    }

    fn cached(&self, task: &Task) -> Option<(Value, Vec<ToolCall>)> {
        let cache = lock(&self.cache);
        let (at, v, tools) = cache.entries.get(&Self::cache_key(task))?;
        (at.elapsed() < self.config.cache_ttl).then(|| (v.clone(), tools.clone()))
    }

    fn remember(&self, task: &Task, output: &Value, tools: &[ToolCall]) {
        let mut cache = lock(&self.cache);
        let key = Self::cache_key(task);
        if cache
            .entries
            .insert(
                key.clone(),
                (Instant::now(), output.clone(), tools.to_vec()),
            )
            .is_none()
        {
            cache.order.push_back(key);
        }
        while cache.order.len() > self.config.cache_capacity {
            if let Some(old) = cache.order.pop_front() {
                cache.entries.remove(&old);
            }
        }
        let Some(customer) = &task.customer_id else {
            return;
        };
        let mut memory = lock(&self.memory);
        if !memory.by_customer.contains_key(customer) {
            memory.order.push_back(customer.clone());
        }
        let per = self.config.memory_per_customer;
        let items = memory.by_customer.entry(customer.clone()).or_default();
        items.push_back(Exchange {
            agent_id: task.agent_id.clone(),
            input: task.input.clone(),
            output: output.clone(),
        });
        while items.len() > per {
            items.pop_front();
        }
        while memory.order.len() > self.config.memory_customers {
            if let Some(old) = memory.order.pop_front() {
                memory.by_customer.remove(&old);
            }
        }
    }

    /// The next task a worker may run: highest priority first, oldest
    /// first, skipping agents at their limit.
    fn take(&self) -> Option<Queued> {
        let mut state = lock(&self.state);
        let limit = self.config.per_agent.max(1);
        let State {
            queues, running, ..
        } = &mut *state;
        for p in Priority::ALL {
            let Some(q) = queues.get_mut(&p) else {
                continue;
            };
            let at = q
                .iter()
                .position(|t| running.get(&t.task.agent_id).copied().unwrap_or(0) < limit);
            if let Some(i) = at {
                let t = q.remove(i).expect("position found");
                *running.entry(t.task.agent_id.clone()).or_default() += 1;
                return Some(t);
            }
        }
        None
    }

    fn done_with(&self, agent_id: &str) {
        if let Some(n) = lock(&self.state).running.get_mut(agent_id) {
            *n = n.saturating_sub(1);
        }
        // A slot of this agent is free: a worker may take its next task.
        self.work.notify_one();
    }

    /// Full-jitter backoff before attempt `attempt + 1`.
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .config
            .backoff_base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.config.backoff_max);
        cap.mul_f64(lock(&self.rng).next_f64())
    }
}

async fn worker(inner: Arc<Inner>) {
    loop {
        let next = {
            let notified = inner.work.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if lock(&inner.state).stopping {
                return;
            }
            match inner.take() {
                Some(t) => Some(t),
                None => {
                    notified.await;
                    None
                }
            }
        };
        if let Some(q) = next {
            run_one(&inner, q).await;
        }
    }
}

async fn run_one(inner: &Arc<Inner>, mut q: Queued) {
    let agent = inner.agents[&q.task.agent_id].clone();
    let memory: Vec<Exchange> = q
        .task
        .customer_id
        .as_ref()
        .and_then(|c| {
            lock(&inner.memory)
                .by_customer
                .get(c)
                .map(|m| m.iter().cloned().collect())
        })
        .unwrap_or_default();
    let started = Instant::now();
    let started_at = Utc::now();
    let waited = started - q.submitted;
    let result = tokio::time::timeout(inner.config.timeout, agent.run(&q.task, &memory)).await;
    let duration = started.elapsed();
    inner.done_with(&q.task.agent_id);
    let (status, output, error) = match result {
        Ok(Ok(out)) => (ExecutionStatus::Succeeded, Some(out), None),
        Ok(Err(e)) => (ExecutionStatus::Failed, None, Some(e)),
        Err(_) => (
            ExecutionStatus::TimedOut,
            None,
            Some(format!("no answer within {:?}", inner.config.timeout)),
        ),
    };
    if status != ExecutionStatus::Succeeded && q.attempt < inner.config.attempts {
        // Retry at the back of the queue after the backoff; the worker moves on.
        let delay = inner.backoff(q.attempt);
        tracing::debug!(agent = %q.task.agent_id, attempt = q.attempt, ?delay, error = ?error, "agent run failed; retrying");
        q.attempt += 1;
        let inner = inner.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            inner.push(q);
        });
        return;
    }
    let mut out = output.unwrap_or(AgentOutput {
        output: Value::Null,
        tools: vec![],
        trace: vec![],
    });
    // Blocking mode: nothing recorded, cached or returned keeps personal
    // data — neither the answer nor what its tools read or returned.
    let mut masked = Vec::new();
    if let Some(screen) = &inner.screen {
        let mut found = |value: &mut Value, at: String| {
            for mut s in screen.screen(value, crate::Mode::Block) {
                s.field = format!("{at}{}", s.field);
                masked.push(s);
            }
        };
        found(&mut out.output, "/output".into());
        for (i, t) in out.tools.iter_mut().enumerate() {
            found(&mut t.input, format!("/tools/{i}/input"));
            found(&mut t.output, format!("/tools/{i}/output"));
        }
    }
    if status == ExecutionStatus::Succeeded {
        inner.remember(&q.task, &out.output, &out.tools);
    }
    let execution = AgentExecution {
        execution_id: q.execution_id.clone(),
        agent_id: q.task.agent_id.clone(),
        status,
        duration_ms: duration.as_secs_f64() * 1e3,
        input: q.task.input.clone(),
        output: out.output.clone(),
        tools: out.tools.clone(),
        trace: out.trace,
        customer_id: q.task.customer_id.clone(),
        request_id: q.task.request_id.clone(),
        error: error.clone(),
        started_at,
    };
    inner.sink.record(execution).await;
    if let Some(reply) = q.reply.take() {
        let _ = reply.send(Outcome {
            execution_id: q.execution_id,
            status,
            output: out.output,
            error,
            cached: false,
            waited,
            attempts: q.attempt,
            tools: out.tools,
            masked,
        });
    }
}

/// Finished runs appended to `agent.executions`, keyed by customer (or
/// agent), so one customer's executions keep their order.
#[derive(Debug, Clone)]
pub struct LogSink<L: ultracore_log::EventLog> {
    log: L,
}

impl<L: ultracore_log::EventLog> LogSink<L> {
    pub fn new(log: L) -> Self {
        LogSink { log }
    }
}

impl<L: ultracore_log::EventLog> ExecutionSink for LogSink<L> {
    fn record(&self, execution: AgentExecution) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            use ultracore_events::agents::{AgentEvent, AGGREGATE_TYPE, TOPIC};
            let key = execution
                .customer_id
                .clone()
                .unwrap_or_else(|| execution.agent_id.clone());
            let record = ultracore_log::EnvelopeBuilder::new(AGGREGATE_TYPE, key)
                .build(AgentEvent::Execution(execution))
                .to_record();
            if let Err(e) = ultracore_log::EventLogExt::append_one(&self.log, TOPIC, record).await {
                tracing::error!(error = %e, "an agent execution could not be published");
            }
        })
    }
}
