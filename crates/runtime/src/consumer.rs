//! The consumer-group loop every consumer service runs: poll a batch,
//! handle it, commit its positions once its effects are durable; retry
//! failures with backoff, dead-letter the records at fault, never crash on
//! a record.
//!
//! Shutdown cancels a poll in progress (every backend's `poll` is
//! cancel-safe: see [`ultracore_log::Consumer::poll`]) but never a batch
//! being handled: that batch finishes and is committed first.

use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{FuturesOrdered, StreamExt};
use futures::FutureExt;
use std::future::Future;
use ultracore_log::{
    now_millis, Consumer, ConsumerOptions, DeadLetter, EventLog, GroupLag, Position, Record,
    StartFrom, DLQ_SUFFIX,
};
use ultracore_metrics::{Counter, Histogram};

use crate::config::{ConsumerSpec, Subscription};
use crate::handler::{ErrorKind, Handler, HandlerError};
use crate::metrics::RuntimeMetrics;
use crate::{catalogue, ServiceContext, ServiceError};

/// How often a paused consumer looks whether it was resumed.
const PAUSED_CHECK: Duration = Duration::from_millis(50);

/// Oldest timestamp per (topic, partition) of records polled and not yet
/// committed: what the lag sampler reads for `lag_seconds`.
type InFlight = Arc<Mutex<HashMap<(String, u32), i64>>>;

/// The topics the group reads now, shared with the lag sampler so that a
/// partition the group has never committed on is still reported.
type Subscribed = Arc<Mutex<Vec<String>>>;

/// Runs `handler` as `spec.group` until the context is cancelled. Returns
/// `Ok` after a clean stop (everything handled is committed); an error when
/// the log fails or an `Infra` failure outlasts the retry policy.
///
/// What the group consumes and the dead letters it writes are recorded in
/// `ctx.lineage` under `ctx.name`: the loop runs on
/// [`ServiceContext::traced`]`(log)` (a log already traced is counted once).
pub async fn run_consumer<L: EventLog, H: Handler>(
    log: &L,
    spec: &ConsumerSpec,
    handler: &mut H,
    ctx: &ServiceContext,
) -> Result<(), ServiceError> {
    let log = ctx.traced(log.clone());
    Loop::new(&log, spec, handler, ctx).run().await
}

/// Runs `pipeline` as `spec.group` until the context is cancelled, with up
/// to `depth` batches in flight: a batch is submitted as soon as it is
/// polled, and batches are committed in the order they were polled, each
/// once it and every batch before it are durable (several at once when
/// they finish together). Records a batch's outcome rejects go to the
/// dead-letter topic before its commit. A batch that fails is handled
/// again the way [`run_consumer`] handles a failed batch (retries, then
/// record by record, the record at fault dead-lettered), through
/// single-batch submits. On shutdown, polling stops and the batches in
/// flight finish and are committed. Lineage is recorded as by
/// [`run_consumer`].
pub async fn run_pipelined<L: EventLog, P: Pipeline>(
    log: &L,
    spec: &ConsumerSpec,
    pipeline: P,
    depth: usize,
    ctx: &ServiceContext,
) -> Result<(), ServiceError> {
    let log = &ctx.traced(log.clone());
    let mut one = OneAtATime {
        pipeline,
        log: log.clone(),
    };
    Loop::new(log, spec, &mut one, ctx)
        .run_pipelined(depth.max(1))
        .await
}

/// What a pipelined batch ended with.
#[derive(Debug, Default)]
pub struct Settled {
    /// Records at fault, with the reason: dead-lettered by the runtime.
    pub rejected: Vec<(Record, String)>,
}

/// A consumer service whose batches overlap: [`Pipeline::submit`] starts
/// a batch's work (on threads of its own, or tasks) and returns a future
/// that only waits for it (or feeds it), resolving once the batch's
/// effects are durable. The runtime polls every batch's future while they
/// are in flight.
/// Use it where one batch at a time would leave the cores idle; see
/// [`run_pipelined`]. The same rules as for a [`Handler`] hold: effects
/// idempotent, in-memory state updated only once durable.
pub trait Pipeline: Send + 'static {
    fn submit(
        &mut self,
        batch: Arc<[Record]>,
    ) -> impl Future<Output = Result<Settled, HandlerError>> + Send + 'static;
}

/// The handler of the pipelined loop: submits batches without waiting.
trait PipelineHandler: Handler {
    fn pipeline_submit(
        &mut self,
        batch: Arc<[Record]>,
    ) -> futures::future::BoxFuture<'static, Result<Settled, HandlerError>>;
}

impl<P: Pipeline, L: EventLog> PipelineHandler for OneAtATime<P, L> {
    fn pipeline_submit(
        &mut self,
        batch: Arc<[Record]>,
    ) -> futures::future::BoxFuture<'static, Result<Settled, HandlerError>> {
        self.pipeline.submit(batch).boxed()
    }
}

/// A pipeline as a handler of one batch at a time: how a failed batch is
/// handled again.
struct OneAtATime<P, L> {
    pipeline: P,
    log: L,
}

impl<P: Pipeline, L: EventLog> Handler for OneAtATime<P, L> {
    fn handle(
        &mut self,
        batch: &[Record],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        let done = self.pipeline.submit(Arc::from(batch));
        let log = self.log.clone();
        async move {
            let settled = done.await?;
            for (record, reason) in &settled.rejected {
                DeadLetter::new(record, reason.clone()).send(&log).await?;
            }
            Ok(())
        }
    }
}

struct Loop<'a, L: EventLog, H: Handler> {
    log: &'a L,
    spec: &'a ConsumerSpec,
    handler: &'a mut H,
    ctx: &'a ServiceContext,
    handled: Counter,
    dead: Counter,
    retries: Counter,
    panics: Counter,
    batch_time: Histogram,
    consumed: HashMap<String, Counter>,
}

/// How a record or batch ended.
enum Done {
    Ok,
    /// Shutdown arrived while waiting to retry: stop without committing.
    Cancelled,
}

/// The topics a spec reads now (creating catalogue topics that are missing).
async fn topics_now<L: EventLog>(
    log: &L,
    spec: &ConsumerSpec,
) -> Result<Vec<String>, ServiceError> {
    match &spec.subscription {
        Subscription::Topics(topics) => {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            catalogue::ensure(log, &names).await?;
            Ok(topics.clone())
        }
        Subscription::All {
            dead_letters,
            except,
        } => Ok(log
            .list_topics()
            .await?
            .into_iter()
            .map(|t| t.name)
            .filter(|n| *dead_letters || !n.ends_with(DLQ_SUFFIX))
            .filter(|n| {
                let base = n.strip_suffix(DLQ_SUFFIX).unwrap_or(n);
                !except.iter().any(|e| e == base)
            })
            .collect()),
    }
}

async fn join<L: EventLog>(
    log: &L,
    spec: &ConsumerSpec,
    topics: &[String],
) -> Result<L::Consumer, ServiceError> {
    let consumer = log
        .consumer(
            ConsumerOptions::new(spec.group.clone(), topics.iter().cloned()).start(spec.start),
        )
        .await?;
    tracing::debug!(group = %spec.group, topics = topics.len(), "joined");
    Ok(consumer)
}

/// Waits `d` unless shutdown comes first (then false).
async fn pause(token: &tokio_util::sync::CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = token.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

impl<'a, L: EventLog, H: Handler> Loop<'a, L, H> {
    fn new(
        log: &'a L,
        spec: &'a ConsumerSpec,
        handler: &'a mut H,
        ctx: &'a ServiceContext,
    ) -> Self {
        Loop {
            log,
            spec,
            handler,
            ctx,
            handled: ctx.metrics.records.with(&[&ctx.name, "handled"]),
            dead: ctx.metrics.records.with(&[&ctx.name, "dead_lettered"]),
            retries: ctx.metrics.retries.with(&[&ctx.name]),
            panics: ctx.metrics.panics.with(&[&ctx.name]),
            batch_time: ctx.metrics.batch_seconds.with(&[&ctx.name]),
            consumed: HashMap::new(),
        }
    }

    async fn run(&mut self) -> Result<(), ServiceError> {
        let config = &self.spec.config;
        let mut j = start(self.log, self.spec, self.ctx).await?;
        let poll_timeout = Duration::from_millis(config.poll_timeout_ms.max(1));
        let token = self.ctx.token.clone();
        loop {
            if self.ctx.health.is_paused(&self.ctx.name) {
                tokio::select! {
                    _ = token.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(PAUSED_CHECK) => continue,
                }
            }
            let records = tokio::select! {
                // Cancel-safe: a poll interrupted here loses nothing.
                _ = token.cancelled() => return Ok(()),
                r = j.consumer().poll(config.max_batch, poll_timeout) => r?,
            };
            if records.is_empty() {
                if !j.consumer().assignment().is_empty() || j.topics.is_empty() {
                    self.ctx.health.set_ready(&self.ctx.name);
                }
            } else {
                Self::track(&j.in_flight, &records);
                self.count_consumed(&records);
                let started = Instant::now();
                match self.process(&records).await? {
                    Done::Cancelled => return Ok(()),
                    Done::Ok => {}
                }
                j.consumer().commit(&Position::after(&records)).await?;
                self.batch_time.observe(started.elapsed().as_secs_f64());
                j.in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
            }
            // Everything polled so far is committed here.
            follow_new_topics(self.log, self.spec, self.ctx, &mut j).await?;
        }
    }

    /// The pipelined loop (see [`run_pipelined`]).
    async fn run_pipelined(&mut self, depth: usize) -> Result<(), ServiceError>
    where
        H: PipelineHandler,
    {
        let config = &self.spec.config;
        let mut j = start(self.log, self.spec, self.ctx).await?;
        let poll_timeout = Duration::from_millis(config.poll_timeout_ms.max(1));
        let token = self.ctx.token.clone();
        type Flight = futures::future::BoxFuture<
            'static,
            (Arc<[Record]>, Instant, Result<Settled, HandlerError>),
        >;
        let mut flights: FuturesOrdered<Flight> = FuturesOrdered::new();
        let mut stopping = false;
        loop {
            if stopping && flights.is_empty() {
                return Ok(());
            }
            let paused = self.ctx.health.is_paused(&self.ctx.name);
            let room = !stopping && !paused && flights.len() < depth;
            tokio::select! {
                biased;
                _ = token.cancelled(), if !stopping => stopping = true,
                Some(first) = flights.next(), if !flights.is_empty() => {
                    // Every batch already finished behind it goes in the same commit.
                    let mut done = vec![first];
                    while let Some(Some(more)) = flights.next().now_or_never() {
                        done.push(more);
                    }
                    // A failed batch is handled again through new submits,
                    // which may wait on the work of the batches behind it:
                    // let those finish first (they are committed after it).
                    if done.iter().any(|(_, _, outcome)| outcome.is_err()) {
                        while let Some(more) = flights.next().await {
                            done.push(more);
                        }
                    }
                    let mut positions: Vec<Position> = Vec::new();
                    for (records, started, outcome) in done {
                        match outcome {
                            Ok(settled) => {
                                let n = settled.rejected.len() as u64;
                                for (record, reason) in &settled.rejected {
                                    let error = HandlerError::reject(reason.clone());
                                    self.dead_letter(record, &error, 1).await?;
                                }
                                self.handled.add(records.len() as u64 - n.min(records.len() as u64));
                            }
                            Err(e) => {
                                tracing::info!(service = %self.ctx.name, error = %e.reason, records = records.len(), "a pipelined batch failed; handling it again on its own");
                                if let Done::Cancelled = self.process(&records).await? {
                                    // Shutdown while retrying: nothing from here on is committed.
                                    return Ok(());
                                }
                            }
                        }
                        self.batch_time.observe(started.elapsed().as_secs_f64());
                        for p in Position::after(&records) {
                            match positions.iter_mut().find(|q| q.topic == p.topic && q.partition == p.partition) {
                                Some(q) => q.offset = q.offset.max(p.offset),
                                None => positions.push(p),
                            }
                        }
                    }
                    j.consumer().commit(&positions).await?;
                    // What is still in flight is as old as its oldest record.
                    let mut f = j.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                    f.retain(|(topic, partition), _| {
                        !positions.iter().any(|p| &p.topic == topic && p.partition == *partition)
                    });
                }
                r = j.consumer().poll(config.max_batch, poll_timeout), if room => {
                    let records = r?;
                    if records.is_empty() {
                        if flights.is_empty() && (!j.consumer().assignment().is_empty() || j.topics.is_empty()) {
                            self.ctx.health.set_ready(&self.ctx.name);
                        }
                    } else {
                        Self::track(&j.in_flight, &records);
                        self.count_consumed(&records);
                        let records: Arc<[Record]> = Arc::from(records);
                        let done = self.handler.pipeline_submit(records.clone());
                        let started = Instant::now();
                        flights.push_back(async move { (records, started, done.await) }.boxed());
                    }
                }
                _ = tokio::time::sleep(PAUSED_CHECK), if paused && !stopping => {}
            }
            if flights.is_empty() {
                // Everything polled so far is committed here.
                follow_new_topics(self.log, self.spec, self.ctx, &mut j).await?;
            }
        }
    }

    /// Notes the oldest timestamp of each partition in `records` as in flight.
    fn track(in_flight: &InFlight, records: &[Record]) {
        // Records come in runs of one partition: one map entry per run.
        let mut f = in_flight.lock().unwrap_or_else(|p| p.into_inner());
        for run in records.chunk_by(|a, b| a.partition == b.partition && a.topic == b.topic) {
            let oldest = run.iter().map(|r| r.timestamp).min().unwrap_or(i64::MAX);
            let r = &run[0];
            match f.get_mut(&(r.topic.clone(), r.partition)) {
                Some(t) => *t = (*t).min(oldest),
                None => {
                    f.insert((r.topic.clone(), r.partition), oldest);
                }
            }
        }
    }

    fn count_consumed(&mut self, records: &[Record]) {
        for run in records.chunk_by(|a, b| a.topic == b.topic) {
            let topic = &run[0].topic;
            if let Some(c) = self.consumed.get(topic) {
                c.add(run.len() as u64);
                continue;
            }
            let c = self.ctx.metrics.consumed.with(&[&self.spec.group, topic]);
            c.add(run.len() as u64);
            self.consumed.insert(topic.clone(), c);
        }
    }

    /// Calls the handler, turning a panic into a `Retry` failure.
    async fn attempt(&mut self, batch: &[Record]) -> Result<(), HandlerError> {
        match AssertUnwindSafe(self.handler.handle(batch))
            .catch_unwind()
            .await
        {
            Ok(r) => r,
            Err(panic) => {
                self.panics.inc();
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                tracing::error!(service = %self.ctx.name, panic = %what, "handler panicked");
                Err(HandlerError::retry(format!("the handler panicked: {what}")))
            }
        }
    }

    async fn process(&mut self, batch: &[Record]) -> Result<Done, ServiceError> {
        let policy = self.spec.config.retry.clone();
        let first = Instant::now();
        let mut retry = 0;
        loop {
            match self.attempt(batch).await {
                Ok(()) => {
                    self.handled.add(batch.len() as u64);
                    return Ok(Done::Ok);
                }
                Err(e) if e.kind == ErrorKind::Infra => {
                    if first.elapsed() >= Duration::from_millis(policy.infra_give_up_ms) {
                        return Err(ServiceError::Handler(e));
                    }
                    retry += 1;
                    self.retries.inc();
                    tracing::warn!(service = %self.ctx.name, error = %e.reason, retry, "batch failed on the platform; retrying");
                    if !pause(&self.ctx.token, policy.backoff(retry)).await {
                        return Ok(Done::Cancelled);
                    }
                }
                Err(e) if batch.len() == 1 => return self.settle_one(&batch[0], e).await,
                Err(e) => {
                    tracing::info!(service = %self.ctx.name, error = %e.reason, records = batch.len(), "batch failed; handling its records one by one");
                    for record in batch {
                        let outcome = match self.attempt(std::slice::from_ref(record)).await {
                            Ok(()) => {
                                self.handled.inc();
                                Done::Ok
                            }
                            Err(e) => self.settle_one(record, e).await?,
                        };
                        if let Done::Cancelled = outcome {
                            return Ok(Done::Cancelled);
                        }
                    }
                    return Ok(Done::Ok);
                }
            }
        }
    }

    /// One record whose handling failed with `first`: retry, dead-letter or stop.
    async fn settle_one(
        &mut self,
        record: &Record,
        first: HandlerError,
    ) -> Result<Done, ServiceError> {
        let policy = self.spec.config.retry.clone();
        let started = Instant::now();
        let mut error = first;
        let mut attempts = 1u32;
        loop {
            match error.kind {
                ErrorKind::Reject => return self.dead_letter(record, &error, attempts).await,
                ErrorKind::Retry if attempts >= policy.attempts.max(1) => {
                    return self.dead_letter(record, &error, attempts).await;
                }
                ErrorKind::Infra
                    if started.elapsed() >= Duration::from_millis(policy.infra_give_up_ms) =>
                {
                    return Err(ServiceError::Handler(error));
                }
                ErrorKind::Retry | ErrorKind::Infra => {}
            }
            self.retries.inc();
            tracing::warn!(
                service = %self.ctx.name,
                topic = %record.topic, partition = record.partition, offset = record.offset,
                error = %error.reason, attempt = attempts, "record failed; retrying"
            );
            if !pause(&self.ctx.token, policy.backoff(attempts)).await {
                return Ok(Done::Cancelled);
            }
            attempts += 1;
            match self.attempt(std::slice::from_ref(record)).await {
                Ok(()) => {
                    self.handled.inc();
                    return Ok(Done::Ok);
                }
                Err(e) => error = e,
            }
        }
    }

    async fn dead_letter(
        &mut self,
        record: &Record,
        error: &HandlerError,
        attempts: u32,
    ) -> Result<Done, ServiceError> {
        let reason = match error.kind {
            ErrorKind::Reject => format!("{}: {}", self.ctx.name, error.reason),
            _ => format!(
                "{}: failed {attempts} times: {}",
                self.ctx.name, error.reason
            ),
        };
        DeadLetter::new(record, reason).send(self.log).await?;
        self.dead.inc();
        Ok(Done::Ok)
    }
}

/// Joins the group on the topics of the subscription and starts the
/// lag sampler.
async fn start<L: EventLog>(
    log: &L,
    spec: &ConsumerSpec,
    ctx: &ServiceContext,
) -> Result<Joined<L::Consumer>, ServiceError> {
    let topics = topics_now(log, spec).await?;
    let consumer = join(log, spec, &topics).await?;
    let in_flight: InFlight = Arc::default();
    let subscribed: Subscribed = Arc::new(Mutex::new(topics.clone()));
    let sampler = tokio::spawn(sample_lag(
        log.clone(),
        spec.clone(),
        ctx.metrics.clone(),
        in_flight.clone(),
        subscribed.clone(),
    ));
    let refresh = Duration::from_millis(spec.config.topic_refresh_ms.max(10));
    Ok(Joined {
        topics,
        consumer: Some(consumer),
        in_flight,
        subscribed,
        _sampler: AbortOnDrop(sampler),
        refresh,
        next_refresh: Instant::now() + refresh,
    })
}

/// With [`Subscription::All`], every `topic_refresh_ms`: rejoins the
/// group when topics were created. Call it only when everything polled
/// is committed, so rejoining loses nothing and repeats nothing.
async fn follow_new_topics<L: EventLog>(
    log: &L,
    spec: &ConsumerSpec,
    ctx: &ServiceContext,
    j: &mut Joined<L::Consumer>,
) -> Result<(), ServiceError> {
    if !matches!(spec.subscription, Subscription::All { .. }) || Instant::now() < j.next_refresh {
        return Ok(());
    }
    j.next_refresh = Instant::now() + j.refresh;
    let now: Vec<String> = topics_now(log, spec).await?;
    let old: BTreeSet<&String> = j.topics.iter().collect();
    if now.iter().any(|t| !old.contains(t)) {
        tracing::info!(service = %ctx.name, topics = now.len(), "new topics; rejoining the group");
        ctx.health.set_unready(&ctx.name);
        j.topics = now;
        *j.subscribed.lock().unwrap_or_else(|p| p.into_inner()) = j.topics.clone();
        // The old member leaves first.
        j.consumer = None;
        j.consumer = Some(join(log, spec, &j.topics).await?);
    }
    Ok(())
}

/// A member of the group with what the loop keeps beside it.
struct Joined<C> {
    topics: Vec<String>,
    /// `None` only while it rejoins.
    consumer: Option<C>,
    in_flight: InFlight,
    subscribed: Subscribed,
    _sampler: AbortOnDrop,
    refresh: Duration,
    next_refresh: Instant,
}

impl<C: Consumer> Joined<C> {
    fn consumer(&mut self) -> &mut C {
        self.consumer
            .as_mut()
            .expect("a failed rejoin ends the loop before the consumer is used again")
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The group's lag on every partition it reads: the log's answer for the
/// partitions it has committed on, and for the others everything stored
/// (or nothing, for a group that starts at the latest record).
async fn group_lag<L: EventLog>(
    log: &L,
    spec: &ConsumerSpec,
    subscribed: &[String],
) -> ultracore_log::Result<Vec<GroupLag>> {
    let mut lags = log.group_lag(&spec.group).await?;
    let known: BTreeSet<String> = lags.iter().map(|l| l.topic.clone()).collect();
    for topic in subscribed.iter().filter(|t| !known.contains(*t)) {
        let Ok(info) = log.describe_topic(topic).await else {
            continue; // deleted since the last refresh
        };
        for p in info.partitions {
            lags.push(GroupLag {
                group: spec.group.clone(),
                topic: topic.clone(),
                partition: p.partition,
                committed: match spec.start {
                    StartFrom::Earliest => None,
                    StartFrom::Latest => Some(p.high_watermark),
                },
                log_start_offset: p.log_start_offset,
                high_watermark: p.high_watermark,
            });
        }
    }
    Ok(lags)
}

/// Samples the group's lag into the metrics until aborted.
async fn sample_lag<L: EventLog>(
    log: L,
    spec: ConsumerSpec,
    metrics: Arc<RuntimeMetrics>,
    in_flight: InFlight,
    subscribed: Subscribed,
) {
    let group = spec.group.clone();
    let every = Duration::from_millis(spec.config.lag_interval_ms.max(10));
    // When a partition lags and nothing of it is in flight, its oldest
    // unhandled record is at least as old as the first sample that saw it
    // lagging.
    let mut lagging_since: HashMap<(String, u32), i64> = HashMap::new();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let topics = subscribed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let lags = match group_lag(&log, &spec, &topics).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(group, error = %e, "lag sample failed");
                continue;
            }
        };
        let now = now_millis();
        let f = in_flight.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for l in lags {
            let key = (l.topic.clone(), l.partition);
            let partition = l.partition.to_string();
            let labels = [group.as_str(), l.topic.as_str(), partition.as_str()];
            metrics.lag_records.with(&labels).set(l.lag() as f64);
            let oldest = if l.lag() == 0 {
                lagging_since.remove(&key);
                None
            } else {
                let since = *lagging_since.entry(key.clone()).or_insert(now);
                Some(f.get(&key).map_or(since, |t| (*t).min(since)))
            };
            let age = oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
            metrics.lag_seconds.with(&labels).set(age);
        }
    }
}

/// What [`run_standalone`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StandaloneReport {
    /// Records the handler finished with.
    pub handled: u64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: u64,
}

/// Runs one consumer service on its own, without a supervisor, until
/// `shutdown` resolves: for tests and for embedding a single service.
/// Metrics and health go to a registry and health of its own.
pub async fn run_standalone<L: EventLog, H: Handler>(
    name: &str,
    log: &L,
    spec: &ConsumerSpec,
    handler: &mut H,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<StandaloneReport, ServiceError> {
    let ctx = ServiceContext::standalone(name);
    let token = ctx.token.clone();
    let run = run_consumer(log, spec, handler, &ctx);
    tokio::pin!(run);
    tokio::pin!(shutdown);
    let outcome = tokio::select! {
        r = &mut run => r,
        _ = &mut shutdown => {
            token.cancel();
            run.await
        }
    };
    outcome?;
    Ok(StandaloneReport {
        handled: ctx.metrics.records.with(&[name, "handled"]).get(),
        dead_lettered: ctx.metrics.records.with(&[name, "dead_lettered"]).get(),
    })
}
