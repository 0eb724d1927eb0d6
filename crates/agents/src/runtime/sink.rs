//! Where finished runs go: the [`ExecutionSink`] seam and [`LogSink`], its
//! implementation on `agent.executions`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::future::BoxFuture;
use ultracore_events::agents::{AgentEvent, AgentExecution, AGGREGATE_TYPE, TOPIC};
use ultracore_log::{
    Consumer, ConsumerOptions, Envelope, EnvelopeBuilder, EventLog, EventLogExt, StartFrom,
};

/// Where finished runs go.
pub trait ExecutionSink: Send + Sync + 'static {
    /// Hands `execution` over, reporting a failure only as telemetry.
    fn record(&self, execution: AgentExecution) -> BoxFuture<'_, ()>;

    /// Hands `execution` over and says whether it is durably published.
    /// The runtime calls this one; a journaled task leaves the journal only
    /// after it returns `Ok`. By default, [`ExecutionSink::record`] and `Ok`.
    fn publish(&self, execution: AgentExecution) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.record(execution).await;
            Ok(())
        })
    }

    /// Which of `execution_ids` are already published. Called once, when a
    /// journaled runtime starts with tasks left in its journal: a task whose
    /// execution is already published is not run again. By default none (a
    /// sink that cannot tell): such tasks run again and publish their
    /// execution again under the same id.
    fn already_published<'a>(
        &'a self,
        execution_ids: &'a HashSet<String>,
    ) -> BoxFuture<'a, Result<HashSet<String>, String>> {
        let _ = execution_ids;
        Box::pin(async { Ok(HashSet::new()) })
    }
}

/// Finished runs appended to `agent.executions`, keyed by customer (or
/// agent), so one customer's executions keep their order. The envelope's
/// `event_id` is the execution id, so an execution published twice (a
/// crash between publishing it and recording so) is one event to every
/// consumer that deduplicates by `event_id`.
#[derive(Debug, Clone)]
pub struct LogSink<L: EventLog> {
    log: L,
}

impl<L: EventLog> LogSink<L> {
    pub fn new(log: L) -> Self {
        LogSink { log }
    }
}

/// Consecutive empty polls (of half a second) after which reading
/// `agent.executions` up to its end is given up.
const STALLED_POLLS: u32 = 20;

impl<L: EventLog> ExecutionSink for LogSink<L> {
    fn record(&self, execution: AgentExecution) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let execution_id = execution.execution_id.clone();
            if let Err(e) = self.publish(execution).await {
                tracing::error!(%execution_id, error = %e, "an agent execution could not be published");
            }
        })
    }

    fn publish(&self, execution: AgentExecution) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let key = execution
                .customer_id
                .clone()
                .unwrap_or_else(|| execution.agent_id.clone());
            let event_id = uuid::Uuid::parse_str(&execution.execution_id).ok();
            let mut envelope =
                EnvelopeBuilder::new(AGGREGATE_TYPE, key).build(AgentEvent::Execution(execution));
            if let Some(id) = event_id {
                envelope.event_id = id;
            }
            self.log
                .append_one(TOPIC, envelope.to_record())
                .await
                .map(|_| ())
                .map_err(|e| format!("appending to {TOPIC}: {e}"))
        })
    }

    /// Reads `agent.executions` from its start to its end at the call (the
    /// whole retained topic: time and reads grow with its size; memory only
    /// with `execution_ids`). An execution past retention counts as not
    /// published.
    fn already_published<'a>(
        &'a self,
        execution_ids: &'a HashSet<String>,
    ) -> BoxFuture<'a, Result<HashSet<String>, String>> {
        Box::pin(async move {
            let info = match self.log.describe_topic(TOPIC).await {
                Ok(info) => info,
                Err(ultracore_log::Error::UnknownTopic(_)) => return Ok(HashSet::new()),
                Err(e) => return Err(format!("describing {TOPIC}: {e}")),
            };
            // The end of each non-empty partition now: every execution of
            // an earlier run of this runtime lies before it.
            let mut ends: HashMap<u32, u64> = info
                .partitions
                .iter()
                .filter(|p| p.high_watermark > p.log_start_offset)
                .map(|p| (p.partition, p.high_watermark))
                .collect();
            let mut found = HashSet::new();
            if ends.is_empty() {
                return Ok(found);
            }
            // A fresh group that never commits: it reads from the start and
            // leaves no trace among the groups.
            let group = format!(
                "ultracore-agents-recovery-{}",
                uuid::Uuid::now_v7().simple()
            );
            let mut consumer = self
                .log
                .consumer(ConsumerOptions::new(group, [TOPIC]).start(StartFrom::Earliest))
                .await
                .map_err(|e| format!("reading {TOPIC}: {e}"))?;
            let mut empty = 0;
            while !ends.is_empty() {
                let records = consumer
                    .poll(1_000, Duration::from_millis(500))
                    .await
                    .map_err(|e| format!("reading {TOPIC}: {e}"))?;
                if records.is_empty() {
                    empty += 1;
                    if empty >= STALLED_POLLS {
                        return Err(format!(
                            "reading {TOPIC}: no records for {STALLED_POLLS} polls before its end \
                             (partitions left: {:?})",
                            ends.keys().collect::<Vec<_>>()
                        ));
                    }
                    continue;
                }
                empty = 0;
                for r in &records {
                    if let Ok(env) = Envelope::<AgentEvent>::from_record(r) {
                        let AgentEvent::Execution(e) = env.payload;
                        if execution_ids.contains(&e.execution_id) {
                            found.insert(e.execution_id);
                        }
                    }
                    if ends
                        .get(&r.partition)
                        .is_some_and(|end| r.offset + 1 >= *end)
                    {
                        ends.remove(&r.partition);
                    }
                }
            }
            Ok(found)
        })
    }
}
