//! The optimization service: a consumer group on `esg-portfolio-events`
//! that answers every `portfolio_optimization_requested` with a completion
//! or a failure.
//!
//! The service runs on the service runtime (`ultracore-runtime`): the runtime
//! owns the consumer-group loop, retries, dead-lettering and shutdown; this
//! module is the [`Handler`] and its [`registration`].
//!
//! Delivery is at-least-once, so the service is idempotent per request id:
//! the answer's `event_id` is derived from the request id
//! ([`completion_event_id`]), so a request processed twice (a crash after
//! publishing, before committing) yields the same event twice and consumers
//! that deduplicate by `event_id` see one result; a request id already
//! answered earlier on the topic (a client retry) is not processed again.
//! A request id belongs to the portfolio that used it first: a request of
//! another portfolio under a remembered id is dead-lettered with the reason
//! (never answered with, or mixed into, the first portfolio's result).
//! Offsets are committed only after the answers are durable. Records that
//! are not valid events of the topic go to `esg-portfolio-events.dlq` and
//! the service goes on. Instances in one group share the partitions.

use std::future::Future;
use std::time::Duration;

use ultracore_log::{Envelope, EnvelopeBuilder, EventLog, EventLogExt, Record, TopicSpec};
use ultracore_marketdata::mesh::DataMesh;
use ultracore_runtime::{
    run_standalone, ConsumerSpec, Dedup, Handler, HandlerError, Registration, ServiceError,
    Subscription,
};
use uuid::Uuid;

use crate::events::{
    completion_event_id, EsgPortfolioEvent, OptimizationFailed, AGGREGATE_TYPE, TOPIC,
};
use crate::optimize::optimize;
use crate::OptimizationRequest;

/// The service's consumer group.
pub const SERVICE_GROUP: &str = "optimization-service";
/// Partitions of the topic when the service creates it (the catalogue's).
pub const TOPIC_PARTITIONS: u32 = 6;
/// The service's name (its metrics and health).
pub const SERVICE_NAME: &str = "optimization";
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

/// The consumer spec of the service: group `optimization-service` on
/// `esg-portfolio-events`, batches of up to 256 requests.
pub fn spec() -> ConsumerSpec {
    ConsumerSpec::new(SERVICE_GROUP, Subscription::topics([TOPIC])).max_batch(256)
}

/// The service as the supervisor runs it.
pub fn registration<L: EventLog>(log: L, mesh: DataMesh) -> Registration {
    let handler_log = log.clone();
    Registration::consumer(SERVICE_NAME, log, spec(), move |ctx| {
        // Its answers are recorded in the lineage as this service's.
        Ok(OptimizationService::with_dedup(
            ctx.traced(handler_log.clone()),
            mesh.clone(),
            ctx.dedup(REMEMBERED),
        ))
    })
}

/// The optimization service's handler.
#[derive(Debug)]
pub struct OptimizationService<L: EventLog> {
    log: L,
    mesh: DataMesh,
    /// Request ids seen on the topic, with the portfolio each belongs to.
    answered: Dedup<Uuid, String>,
    pub stats: ServiceStats,
}

impl<L: EventLog> OptimizationService<L> {
    pub fn new(log: L, mesh: DataMesh) -> Self {
        Self::with_dedup(log, mesh, Dedup::new(REMEMBERED))
    }

    fn with_dedup(log: L, mesh: DataMesh, answered: Dedup<Uuid, String>) -> Self {
        OptimizationService {
            log,
            mesh,
            answered,
            stats: ServiceStats::default(),
        }
    }

    /// Serves the group alone until `shutdown` resolves (what
    /// `ultracore service optimization` and tests do; `serve` runs
    /// [`registration`] under its supervisor instead).
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<ServiceStats, ServiceError> {
        ensure_topic(&self.log).await?;
        let log = self.log.clone();
        let report = run_standalone(SERVICE_NAME, &log, &spec(), &mut self, shutdown).await?;
        self.stats.dead_lettered = report.dead_lettered;
        Ok(self.stats)
    }

    /// Optimizes the requests on the blocking pool, at most one per core at a time.
    async fn optimize_all(
        &self,
        pending: &[(Box<OptimizationRequest>, String, Uuid)],
    ) -> Result<Vec<Result<crate::OptimizationResult, crate::Failure>>, HandlerError> {
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
                // A panic inside the optimizer: retried, then dead-lettered.
                out.push(
                    task.await
                        .map_err(|e| HandlerError::retry(format!("the optimizer failed: {e}")))?,
                );
            }
        }
        Ok(out)
    }
}

impl<L: EventLog> Handler for OptimizationService<L> {
    /// Answers a batch: its requests are optimized in parallel (one task
    /// per core) and the answers appended in request order. A record that
    /// is not an event of the topic fails the batch before any effect (the
    /// runtime then dead-letters just that record). Answered request ids
    /// are remembered only once the answers are durable.
    async fn handle(&mut self, records: &[Record]) -> Result<(), HandlerError> {
        let mut pending = Vec::new();
        // Request ids this batch answers or sees answered, with their
        // portfolios; remembered once the answers are durable.
        let mut answered_here: Vec<(Uuid, String)> = Vec::new();
        for record in records {
            let env = Envelope::<EsgPortfolioEvent>::from_record(record)
                .map_err(|e| HandlerError::reject(e.to_string()))?;
            let request = match env.payload {
                EsgPortfolioEvent::Requested(r) => r,
                EsgPortfolioEvent::Completed(c) => {
                    answered_here.push((c.request_id, c.portfolio_id.clone()));
                    continue;
                }
                EsgPortfolioEvent::Failed(f) => {
                    answered_here.push((f.request_id, f.portfolio_id));
                    continue;
                }
            };
            let owner = self.answered.get(&request.request_id).or_else(|| {
                answered_here
                    .iter()
                    .find(|(id, _)| *id == request.request_id)
                    .map(|(_, p)| p)
            });
            match owner {
                Some(owner) if *owner != request.portfolio_id => {
                    return Err(HandlerError::reject(format!(
                        "request id {} already belongs to a request of portfolio {owner}; \
                         send portfolio {}'s request with a fresh request id",
                        request.request_id, request.portfolio_id
                    )));
                }
                Some(_) => {
                    self.stats.duplicates_skipped += 1;
                    continue;
                }
                None => {}
            }
            answered_here.push((request.request_id, request.portfolio_id.clone()));
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
        for (id, portfolio_id) in answered_here {
            self.answered.insert_with(id, portfolio_id);
        }
        Ok(())
    }
}
