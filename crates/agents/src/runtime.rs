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
//! - Results are cached for a TTL, keyed by agent, customer, input and
//!   the version of the data the agent read: a hit answers without
//!   calling the agent (and is recorded as an execution), and never with
//!   another customer's answer.
//! - Each customer has a short memory of their last exchanges (bounded,
//!   and bounded in customers), handed to the agent with the task.
//! - Every finished run (succeeded, failed for good, timed out for good) is
//!   handed to an [`ExecutionSink`] (the log's `agent.executions`).
//! - With a journal ([`RuntimeConfig::journal`]), the queue survives a
//!   restart: see [`AgentRuntime::open`] for what is guaranteed.
//!
//! # Layout
//!
//! - `task.rs`: what the runtime runs — [`Task`], its [`Priority`], the
//!   [`Agent`] trait and what an agent answers.
//! - `sink.rs`: [`ExecutionSink`] and [`LogSink`], executions on
//!   `agent.executions` (and which of them are already there).
//! - `journal.rs`: the SQLite journal of accepted, unpublished tasks.

mod journal;
mod sink;
mod task;

pub use sink::{ExecutionSink, LogSink};
pub use task::{Agent, AgentOutput, Exchange, Priority, Task};

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;
use ultracore_events::agents::{AgentExecution, ExecutionStatus, ToolCall, TraceStep};
use ultracore_rng::SplitMix64;
use uuid::Uuid;

use journal::Journal;

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
    /// The SQLite file that keeps accepted tasks until their execution is
    /// published (`None`: the queue is in memory only and a restart loses
    /// it). A journaled runtime is opened with [`AgentRuntime::open`] and
    /// takes tasks through [`AgentRuntime::enqueue`].
    pub journal: Option<PathBuf>,
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
            journal: None,
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

/// A task accepted by [`AgentRuntime::enqueue`].
#[derive(Debug)]
pub struct Submitted {
    /// Assigned by the runtime (a UUIDv7); the journal's key.
    pub task_id: String,
    /// Derived from `task_id` ([`execution_id_for`]).
    pub execution_id: String,
    /// The outcome, unless the runtime stops or crashes first (a task run
    /// after a restart has no one waiting: its published execution is its
    /// outcome).
    pub outcome: oneshot::Receiver<Outcome>,
}

/// What can go wrong starting a runtime or handing it a task.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("no agent '{0}'")]
    UnknownAgent(String),
    #[error("agent journal {}: {reason}", path.display())]
    Journal { path: PathBuf, reason: String },
    #[error("the executions already published could not be read: {0}")]
    Sink(String),
    #[error(
        "this runtime journals its tasks: submit them with `enqueue`, which returns once the task is durable"
    )]
    Journaled,
}

/// The id of the execution of the task `task_id`: the UUIDv5 of the task
/// id ([`ultracore_log::derive_event_id`]), so a task run again after a
/// crash publishes its execution under the same id.
pub fn execution_id_for(task_id: &str) -> String {
    let base = Uuid::parse_str(task_id)
        .unwrap_or_else(|_| Uuid::new_v5(&ultracore_log::EVENT_ID_NAMESPACE, task_id.as_bytes()));
    ultracore_log::derive_event_id(base, b"agent-execution", 0).to_string()
}

struct Queued {
    task: Task,
    task_id: String,
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
    /// Tasks accepted and not yet finished: queued, running or waiting to
    /// be retried.
    outstanding: usize,
    stopping: bool,
}

/// Agent, customer, input, data version: an answer is only ever reused for
/// the customer it was made for.
type CacheKey = (String, Option<String>, String, String);

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
    journal: Option<Journal>,
    state: Mutex<State>,
    work: Notify,
    /// Notified when the last outstanding task finishes.
    idle: Notify,
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
    ///
    /// # Panics
    ///
    /// If `config.journal` is set: a journaled runtime is opened with
    /// [`AgentRuntime::open`], which can fail.
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
    ///
    /// # Panics
    ///
    /// If `config.journal` is set (see [`AgentRuntime::open`]).
    pub fn start_screened(
        config: RuntimeConfig,
        agents: Vec<Arc<dyn Agent>>,
        sink: Arc<dyn ExecutionSink>,
        screen: Option<crate::Screen>,
    ) -> AgentRuntime {
        assert!(
            config.journal.is_none(),
            "a journaled agent runtime is started with AgentRuntime::open"
        );
        Self::launch(config, agents, sink, screen, None, Vec::new())
    }

    /// Starts a runtime like [`AgentRuntime::start_screened`]; with
    /// `config.journal`, first opens the journal and takes back its tasks.
    ///
    /// # What a journal guarantees
    ///
    /// - Nothing lost: [`AgentRuntime::enqueue`] returns only once the task
    ///   is in the journal (committed, fsynced). It leaves the journal only
    ///   after its execution — succeeded, or failed or timed out for good —
    ///   is published ([`ExecutionSink::publish`] returned `Ok`). A crash at
    ///   any point in between leaves it in the journal, and the next `open`
    ///   queues it again, at its priority, in submission order, before any
    ///   new task.
    /// - Not run twice: each task's execution id is derived from its task
    ///   id ([`execution_id_for`]). At `open`, the sink is asked which
    ///   pending tasks' executions are already published
    ///   ([`ExecutionSink::already_published`]); those leave the journal
    ///   without running. So a task's agent runs to a published execution
    ///   once, except when the crash falls between the sink's append and
    ///   its acknowledgement (or the sink cannot tell): then it runs again
    ///   and publishes again under the same execution id (and, through
    ///   [`LogSink`], the same `event_id`), which consumers deduplicate.
    ///   Exactly once therefore means one execution id per task, published
    ///   at least once, and at most one published execution per task as
    ///   far as the sink can tell at start.
    /// - Runs that were cut short by the crash (never published) run again
    ///   from their first attempt. What an agent's tools did during such a
    ///   run — a tool with effects, like the wealth agent's optimization
    ///   request — is the tool's concern: it must be idempotent or, as the
    ///   wealth agent does, come last in the run.
    /// - A task run after a restart has no one waiting for it: its
    ///   published execution is its outcome.
    /// - The file is held exclusively while the runtime lives: a second
    ///   runtime on it waits, then fails with [`RuntimeError::Journal`].
    ///
    /// Fails with [`RuntimeError::Journal`] (naming the file) if the
    /// journal cannot be opened or read, and with [`RuntimeError::Sink`]
    /// if the sink cannot say what it already published.
    pub async fn open(
        config: RuntimeConfig,
        agents: Vec<Arc<dyn Agent>>,
        sink: Arc<dyn ExecutionSink>,
        screen: Option<crate::Screen>,
    ) -> Result<AgentRuntime, RuntimeError> {
        let Some(path) = config.journal.clone() else {
            return Ok(Self::launch(config, agents, sink, screen, None, Vec::new()));
        };
        let (journal, pending) = Journal::open(&path).await?;
        let ids: HashSet<String> = pending
            .iter()
            .map(|p| execution_id_for(&p.task_id))
            .collect();
        let published = if ids.is_empty() {
            HashSet::new()
        } else {
            sink.already_published(&ids)
                .await
                .map_err(RuntimeError::Sink)?
        };
        let known: HashSet<&str> = agents.iter().map(|a| a.id()).collect();
        let mut requeue = Vec::new();
        for p in pending {
            let execution_id = execution_id_for(&p.task_id);
            if published.contains(&execution_id) {
                tracing::debug!(task_id = %p.task_id, %execution_id, "journaled task already published");
                journal.done(&p.task_id);
            } else if !known.contains(p.task.agent_id.as_str()) {
                tracing::warn!(task_id = %p.task_id, agent = %p.task.agent_id, "journaled task for an agent this runtime lacks; it stays in the journal");
            } else {
                requeue.push(Queued {
                    task: p.task,
                    task_id: p.task_id,
                    execution_id,
                    attempt: 1,
                    submitted: Instant::now(),
                    reply: None,
                });
            }
        }
        tracing::info!(
            journal = %path.display(),
            requeued = requeue.len(),
            already_published = published.len(),
            "agent runtime opened its journal"
        );
        Ok(Self::launch(
            config,
            agents,
            sink,
            screen,
            Some(journal),
            requeue,
        ))
    }

    fn launch(
        config: RuntimeConfig,
        agents: Vec<Arc<dyn Agent>>,
        sink: Arc<dyn ExecutionSink>,
        screen: Option<crate::Screen>,
        journal: Option<Journal>,
        recovered: Vec<Queued>,
    ) -> AgentRuntime {
        let inner = Arc::new(Inner {
            rng: Mutex::new(SplitMix64::new(config.seed)),
            agents: agents.into_iter().map(|a| (a.id().to_owned(), a)).collect(),
            sink,
            journal,
            state: Mutex::new(State::default()),
            work: Notify::new(),
            idle: Notify::new(),
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
        // Queued before any worker or caller can add to the queues, so the
        // recovered tasks come first within their priority.
        for q in recovered {
            inner.accept(q);
        }
        for _ in 0..inner.config.workers.max(1) {
            tokio::spawn(worker(inner.clone()));
        }
        AgentRuntime { inner }
    }

    /// Queues `task`; the receiver gets its outcome. A cached answer
    /// comes back at once, without running the agent. Refused on a
    /// journaled runtime ([`RuntimeError::Journaled`]): there, use
    /// [`AgentRuntime::enqueue`].
    pub fn submit(&self, task: Task) -> Result<oneshot::Receiver<Outcome>, String> {
        if self.inner.journal.is_some() {
            return Err(RuntimeError::Journaled.to_string());
        }
        let (submitted, queued) = self.inner.prepare(task).map_err(|e| e.to_string())?;
        if let Some(q) = queued {
            self.inner.accept(q);
        }
        Ok(submitted.outcome)
    }

    /// Queues `task` and returns once it is accepted: with a journal, once
    /// it is durably recorded (see [`AgentRuntime::open`]). A cached answer
    /// comes back at once, without running the agent or journaling.
    ///
    /// Cancel-safe: once called, dropping the future does not withdraw the
    /// task; it is journaled and queued all the same.
    pub async fn enqueue(&self, task: Task) -> Result<Submitted, RuntimeError> {
        let (submitted, queued) = self.inner.prepare(task)?;
        let Some(q) = queued else {
            return Ok(submitted);
        };
        let inner = self.inner.clone();
        // In its own task, so that a caller giving up cannot leave a task
        // journaled but not queued.
        tokio::spawn(async move {
            if let Some(journal) = &inner.journal {
                journal.insert(&q.task_id, &q.task).await?;
            }
            inner.accept(q);
            Ok(())
        })
        .await
        .map_err(|e| RuntimeError::Journal {
            path: self.inner.config.journal.clone().unwrap_or_default(),
            reason: format!("the journaling task ended: {e}"),
        })??;
        Ok(submitted)
    }

    /// Returns once no task is queued, running or waiting to be retried
    /// (at once if none is).
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if lock(&self.inner.state).outstanding == 0 {
                return;
            }
            notified.await;
        }
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

    /// Stops the workers once the tasks they run are done (queued tasks
    /// stay queued, and with a journal stay journaled: the next
    /// [`AgentRuntime::open`] runs them).
    pub fn stop(&self) {
        lock(&self.inner.state).stopping = true;
        self.inner.work.notify_waiters();
    }
}

impl Inner {
    /// Checks `task` and gives it its ids; a cache hit is answered at once
    /// (and needs no queueing).
    fn prepare(&self, task: Task) -> Result<(Submitted, Option<Queued>), RuntimeError> {
        if !self.agents.contains_key(&task.agent_id) {
            return Err(RuntimeError::UnknownAgent(task.agent_id));
        }
        let (tx, rx) = oneshot::channel();
        let task_id = Uuid::now_v7().to_string();
        let execution_id = execution_id_for(&task_id);
        let submitted = Submitted {
            task_id: task_id.clone(),
            execution_id: execution_id.clone(),
            outcome: rx,
        };
        if let Some((output, tools)) = self.cached(&task) {
            // A cached answer is still an answer given: it is recorded like
            // any other, with the step that says where it came from.
            let execution = AgentExecution {
                execution_id: execution_id.clone(),
                agent_id: task.agent_id.clone(),
                status: ExecutionStatus::Succeeded,
                duration_ms: 0.0,
                input: task.input.clone(),
                output: output.clone(),
                tools: tools.clone(),
                trace: vec![TraceStep {
                    step: "cache".into(),
                    detail: "answered from the result cache".into(),
                }],
                customer_id: task.customer_id.clone(),
                request_id: task.request_id.clone(),
                error: None,
                started_at: Utc::now(),
            };
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let sink = self.sink.clone();
                handle.spawn(async move {
                    if let Err(e) = sink.publish(execution).await {
                        tracing::error!(error = %e, "a cached answer's execution could not be recorded");
                    }
                });
            }
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
            return Ok((submitted, None));
        }
        let queued = Queued {
            task,
            task_id,
            execution_id,
            attempt: 1,
            submitted: Instant::now(),
            reply: Some(tx),
        };
        Ok((submitted, Some(queued)))
    }

    /// Queues a task new to this runtime.
    fn accept(&self, q: Queued) {
        lock(&self.state).outstanding += 1;
        self.push(q);
    }

    /// Queues a task (new, or back for a retry).
    fn push(&self, q: Queued) {
        lock(&self.state)
            .queues
            .entry(q.task.priority)
            .or_default()
            .push_back(q);
        self.work.notify_one();
    }

    /// A task is finished for good.
    fn finished(&self) {
        let mut state = lock(&self.state);
        state.outstanding = state.outstanding.saturating_sub(1);
        if state.outstanding == 0 {
            self.idle.notify_waiters();
        }
    }

    fn cache_key(task: &Task) -> CacheKey {
        (
            task.agent_id.clone(),
            task.customer_id.clone(),
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
    // A panicking agent fails its run, like an error; the worker goes on.
    let run =
        futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(agent.run(&q.task, &memory)));
    let result = tokio::time::timeout(inner.config.timeout, run)
        .await
        .map(|r| r.unwrap_or_else(|_| Err("the agent panicked".to_owned())));
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
    // Out of the journal only once published: a crash before that leaves
    // the task to the next start, which checks the sink before running it.
    match inner.sink.publish(execution).await {
        Ok(()) => {
            if let Some(journal) = &inner.journal {
                journal.done(&q.task_id);
            }
        }
        Err(e) => {
            tracing::error!(execution_id = %q.execution_id, error = %e, "an agent execution could not be published; its task stays journaled");
        }
    }
    inner.finished();
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
