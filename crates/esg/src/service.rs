//! The optimization service: a consumer group on `esg-portfolio-events`
//! that answers every `portfolio_optimization_requested` with a completion
//! or a failure.
//!
//! Delivery is at-least-once, so the service is idempotent per request id:
//! the answer's `event_id` is derived from the request id
//! ([`completion_event_id`]), so a request processed twice (a crash after
//! publishing, before committing) yields the same event twice and consumers
//! that deduplicate by `event_id` see one result; a request id already
//! answered earlier on the topic (a client retry) is not processed again.
//! Offsets are committed only after the answers are durable. Records that
//! are not valid events of the topic go to `esg-portfolio-events.dlq` and
//! the service goes on. Instances in one group share the partitions.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::time::Duration;

use ultracore_log::{
    decode_or_dead_letter, Consumer, ConsumerOptions, Envelope, EnvelopeBuilder, EventLog,
    EventLogExt, Position, Record, TopicSpec,
};
use ultracore_marketdata::mesh::DataMesh;
use uuid::Uuid;

use crate::events::{
    completion_event_id, EsgPortfolioEvent, OptimizationFailed, AGGREGATE_TYPE, TOPIC,
};
use crate::optimize::optimize;
use crate::OptimizationRequest;

/// The service's consumer group.
pub const SERVICE_GROUP: &str = "optimization-service";
/// Partitions of the topic when the service creates it.
pub const TOPIC_PARTITIONS: u32 = 6;
/// Answered request ids remembered to skip client retries.
const REMEMBERED: usize = 100_000;

/// Counters of one service instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServiceStats {
    pub completed: u64,
    pub failed: u64,
    pub duplicates_skipped: u64,
    pub dead_lettered: u64,
}

/// The envelope of a request: keyed by portfolio id, correlated by request id.
pub fn request_envelope(request: OptimizationRequest) -> Envelope<EsgPortfolioEvent> {
    EnvelopeBuilder::new(AGGREGATE_TYPE, request.portfolio_id.clone())
        .correlation_id(request.request_id.to_string())
        .build(EsgPortfolioEvent::Requested(Box::new(request)))
}

/// Creates the topic unless it exists.
pub async fn ensure_topic<L: EventLog>(log: &L) -> ultracore_log::Result<()> {
    log.ensure_topic(&TopicSpec::new(TOPIC, TOPIC_PARTITIONS))
        .await
        .map(drop)
}

/// Runs the optimizations of a batch on up to this many threads.
fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Test hook: `ULTRACORE_FAILPOINT=optimization.after_consume=MILLIS` pauses
/// the service after it has consumed and optimized a batch, before it
/// publishes the answers; `optimization.after_publish=MILLIS` after the
/// answers are durable, before the offsets are committed. A test kills the
/// service during the pause.
async fn failpoint(name: &str) {
    let Ok(spec) = std::env::var("ULTRACORE_FAILPOINT") else {
        return;
    };
    let Some(millis) = spec
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('='))
        .and_then(|m| m.trim().parse().ok())
    else {
        return;
    };
    tracing::warn!(millis, "failpoint {name}: pausing");
    eprintln!("failpoint {name}: pausing {millis} ms");
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

#[derive(Debug)]
pub struct OptimizationService<L: EventLog> {
    log: L,
    mesh: DataMesh,
    answered: HashSet<Uuid>,
    order: VecDeque<Uuid>,
    pub stats: ServiceStats,
}

impl<L: EventLog> OptimizationService<L> {
    pub fn new(log: L, mesh: DataMesh) -> Self {
        OptimizationService {
            log,
            mesh,
            answered: HashSet::new(),
            order: VecDeque::new(),
            stats: ServiceStats::default(),
        }
    }

    /// Joins the group and serves until `shutdown` resolves; commits what
    /// it answered before returning.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()>,
    ) -> ultracore_log::Result<ServiceStats> {
        ensure_topic(&self.log).await?;
        let mut consumer = self
            .log
            .consumer(ConsumerOptions::new(SERVICE_GROUP, [TOPIC]))
            .await?;
        tokio::pin!(shutdown);
        loop {
            let records = tokio::select! {
                _ = &mut shutdown => break,
                r = consumer.poll(256, Duration::from_millis(200)) => r?,
            };
            if records.is_empty() {
                continue;
            }
            let positions = self.handle(&records).await?;
            consumer.commit(&positions).await?;
        }
        Ok(self.stats)
    }

    /// Optimizes the requests on the blocking pool, at most one per core at a time.
    async fn optimize_all(
        &self,
        pending: &[(Box<OptimizationRequest>, String, Uuid)],
    ) -> ultracore_log::Result<Vec<Result<crate::OptimizationResult, crate::Failure>>> {
        let mut out = Vec::with_capacity(pending.len());
        for chunk in pending.chunks(parallelism()) {
            let tasks: Vec<_> = chunk
                .iter()
                .map(|(request, _, _)| {
                    let mesh = self.mesh.clone();
                    let request = request.clone();
                    tokio::task::spawn_blocking(move || optimize(&mesh, &request))
                })
                .collect();
            for task in tasks {
                out.push(task.await.map_err(|e| {
                    ultracore_log::Error::Unavailable(format!("optimization task failed: {e}"))
                })?);
            }
        }
        Ok(out)
    }

    fn remember(&mut self, id: Uuid) {
        if self.answered.insert(id) {
            self.order.push_back(id);
            if self.order.len() > REMEMBERED {
                if let Some(old) = self.order.pop_front() {
                    self.answered.remove(&old);
                }
            }
        }
    }

    /// Handles a batch and returns the positions to commit. Errors only
    /// when the log fails (nothing is committed then). The batch's
    /// requests are optimized in parallel (one task per core); answers are
    /// appended in request order.
    pub async fn handle(&mut self, records: &[Record]) -> ultracore_log::Result<Vec<Position>> {
        let mut pending = Vec::new();
        for record in records {
            let Some(env) =
                decode_or_dead_letter::<L, EsgPortfolioEvent>(&self.log, record).await?
            else {
                self.stats.dead_lettered += 1;
                continue;
            };
            let request = match env.payload {
                EsgPortfolioEvent::Requested(r) => r,
                EsgPortfolioEvent::Completed(c) => {
                    self.remember(c.request_id);
                    continue;
                }
                EsgPortfolioEvent::Failed(f) => {
                    self.remember(f.request_id);
                    continue;
                }
            };
            if self.answered.contains(&request.request_id) {
                self.stats.duplicates_skipped += 1;
                continue;
            }
            self.remember(request.request_id);
            let correlation = env
                .correlation_id
                .clone()
                .unwrap_or_else(|| request.request_id.to_string());
            pending.push((request, correlation, env.event_id));
        }
        let outcomes = self.optimize_all(&pending).await?;
        let mut answers = Vec::with_capacity(pending.len());
        for ((request, correlation, cause), outcome) in pending.into_iter().zip(outcomes) {
            let request_id = request.request_id;
            let portfolio_id = request.portfolio_id.clone();
            let event = match outcome {
                Ok(result) => {
                    self.stats.completed += 1;
                    tracing::info!(%request_id, portfolio_id, "optimization completed");
                    EsgPortfolioEvent::Completed(Box::new(result))
                }
                Err(failure) => {
                    self.stats.failed += 1;
                    tracing::info!(%request_id, portfolio_id, reason = %failure, "optimization failed");
                    EsgPortfolioEvent::Failed(OptimizationFailed {
                        request_id,
                        portfolio_id: portfolio_id.clone(),
                        reason: failure.reason,
                        field: failure.field,
                    })
                }
            };
            let mut answer = EnvelopeBuilder::new(AGGREGATE_TYPE, portfolio_id)
                .correlation_id(correlation)
                .causation_id(cause)
                .build(event);
            answer.event_id = completion_event_id(request_id);
            answers.push(answer.to_record());
        }
        if !answers.is_empty() {
            failpoint("optimization.after_consume").await;
            self.log.append(TOPIC, answers).await?;
            failpoint("optimization.after_publish").await;
        }
        Ok(Position::after(records))
    }
}
