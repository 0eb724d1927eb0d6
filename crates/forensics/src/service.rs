//! The forensics service: a consumer group on `trading_decisions` that
//! explains every decision and stores the explanation.
//!
//! # Pipeline
//!
//! ```text
//! runtime loop ──batch──▶ pipeline ──chunks──▶ workers (one thread per core) ──results──▶ writer (one thread, SQLite)
//!        ▲                                                                                      │
//!        └────── batch durable + its dead letters ◀── dispatcher ◀── "durable through chunk n" ─┘
//! ```
//!
//! - The service runtime's pipelined loop ([`ultracore_runtime::run_pipelined`])
//!   polls batches and submits each at once, with a few batches in flight;
//!   the pipeline cuts a batch into numbered chunks and hands them to the
//!   workers through a bounded channel (the backpressure: when the workers
//!   fall behind, the batches in flight wait, and so does polling).
//! - Workers decode, explain (SHAP, a chunk's rows together) and pass results to the
//!   writer. Explaining is pure CPU, so it runs on dedicated threads, never
//!   on the async workers.
//! - The writer stores chunks in chunk order, as many as are ready in one
//!   transaction (`synchronous=FULL`: durable on commit), then reports.
//! - On a report the dispatcher settles every batch whose chunks are all
//!   stored; the runtime appends the batch's malformed records to
//!   `trading_decisions.dlq` and only then commits the batch's offsets, in
//!   the order the batches were polled. So a crash anywhere re-delivers at
//!   most what was not yet committed, and the unique decision id makes
//!   storing it again a no-op: no duplicates, no gaps.
//!
//! On shutdown the runtime stops polling; the batches in flight are stored
//! and committed before `run` returns.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use ultracore_log::{now_millis, EventLog, EventLogExt, Record, TopicSpec};
use ultracore_runtime::{
    run_pipelined, ConsumerConfig, ConsumerSpec, HandlerError, Pipeline, ServiceContext, Settled,
    Subscription,
};

use crate::metrics::PartitionLag;
use crate::store::{ModelSet, NewExplanation};
use crate::{
    decode, DecisionHead, Error, ForensicsConfig, ForensicsMetrics, ForensicsStore, Inputs, Result,
    Specialists, StoreReader,
};

/// Partitions of `trading_decisions` when the service creates it.
pub const TOPIC_PARTITIONS: u32 = 6;
/// How long one poll waits for records.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// Batches in flight at once: enough to keep every worker busy while the
/// writer stores and the runtime commits the batches before (with
/// 4,096-record polls, up to about 100,000 decisions, some 270 MB with
/// their rows). On 2 cores with 100,000 decisions/s offered for 20 s
/// (`ultracore bench forensics --no-shap --pipeline --rate 100000
/// --seconds 20`), with transactions of up to 32,768 rows: 24 stored
/// 93,300 – 97,200/s with the lag p99 at 0.9 – 1.7 s (6 runs), 16:
/// 93,200 – 93,300/s and 1.7 – 2.7 s; with 8,192-row transactions, 8
/// stored 87,600 – 89,400/s and left the lag p99 at 4.2 – 5.7 s. (Before
/// the symbol index and the decisions' latency, 8 did best: the drain
/// about 110,000/s, and 4 had left the sustained lag at twice that.)
const PIPELINE_DEPTH: usize = 24;

/// What one run of the service did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServiceStats {
    /// Decisions explained (including ones found already stored).
    pub explained: u64,
    /// New rows stored.
    pub stored: u64,
    /// Decisions already stored (redelivered or published twice).
    pub duplicates: u64,
    /// Malformed records sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// Rows deleted by retention.
    pub purged: u64,
}

/// The forensics service. Build it, take its [`metrics`](Self::metrics) and
/// a [`reader`](Self::reader) for the HTTP router, then [`run`](Self::run) it.
#[derive(Debug)]
pub struct ForensicsService<L: EventLog> {
    log: L,
    config: ForensicsConfig,
    specialists: Arc<Specialists>,
    metrics: Arc<ForensicsMetrics>,
    store: ForensicsStore,
}

/// A chunk of records handed to a worker: `records[range]` of a batch.
struct Job {
    seq: u64,
    records: Arc<[Record]>,
    range: std::ops::Range<usize>,
}

/// A worker's result for one chunk.
struct Done {
    seq: u64,
    rows: Vec<NewExplanation>,
    dead: Vec<(Record, String)>,
}

/// Records of a chunk to dead-letter, with the chunk's number.
type Dead = Vec<(u64, Record, String)>;

enum ToWriter {
    Done(Done),
    Purge { cutoff_millis: i64 },
    Failed(String),
}

enum Report {
    Stored { through_seq: u64, dead: Dead },
    Purged,
    Failed(Error),
}

/// A submitted batch waiting for its chunks `first..=last` to be stored.
struct Waiter {
    first: u64,
    last: u64,
    dead: Vec<(Record, String)>,
    oldest_ts: i64,
    newest_ts: i64,
    done: oneshot::Sender<std::result::Result<Settled, HandlerError>>,
}

/// The batches in flight, in submission (and chunk) order, and the
/// pipeline's failure once it has failed.
#[derive(Default)]
struct Waiting {
    batches: VecDeque<Waiter>,
    failed: Option<String>,
}

/// The forensics pipeline as the runtime sees it (see the module docs).
struct ForensicsPipeline {
    /// To the feeder, which hands chunks to the workers in chunk order.
    jobs: mpsc::UnboundedSender<Job>,
    chunk_size: usize,
    seq: u64,
    waiting: Arc<Mutex<Waiting>>,
    metrics: Arc<ForensicsMetrics>,
}

impl Pipeline for ForensicsPipeline {
    fn submit(
        &mut self,
        batch: Arc<[Record]>,
    ) -> impl Future<Output = std::result::Result<Settled, HandlerError>> + Send + 'static {
        let chunks: Vec<Job> = (0..batch.len())
            .step_by(self.chunk_size.max(1))
            .map(|start| {
                self.seq += 1;
                Job {
                    seq: self.seq,
                    records: batch.clone(),
                    range: start..(start + self.chunk_size.max(1)).min(batch.len()),
                }
            })
            .collect();
        let (tx, rx) = oneshot::channel();
        let failed = {
            let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            if w.failed.is_none() && !chunks.is_empty() {
                let oldest_ts = batch.iter().map(|r| r.timestamp).min().unwrap_or(0);
                if w.batches.is_empty() {
                    self.metrics
                        .oldest_in_flight_ts
                        .store(oldest_ts, Ordering::Relaxed);
                }
                w.batches.push_back(Waiter {
                    first: chunks[0].seq,
                    last: self.seq,
                    dead: Vec::new(),
                    oldest_ts,
                    newest_ts: batch.iter().map(|r| r.timestamp).max().unwrap_or(0),
                    done: tx,
                });
                None
            } else {
                Some(w.failed.clone().unwrap_or_default())
            }
        };
        let mut stopped = false;
        if failed.is_none() {
            for job in chunks {
                stopped |= self.jobs.send(job).is_err();
            }
        }
        async move {
            if let Some(why) = failed {
                if why.is_empty() {
                    return Ok(Settled::default()); // an empty batch
                }
                return Err(HandlerError::infra(why));
            }
            if stopped {
                return Err(HandlerError::infra("the forensics worker threads stopped"));
            }
            rx.await.map_err(|_| {
                HandlerError::infra("the forensics writer stopped before storing the batch")
            })?
        }
    }
}

/// Settles the batches the writer's reports cover, until the writer stops.
async fn dispatch(
    mut reports: mpsc::UnboundedReceiver<Report>,
    waiting: Arc<Mutex<Waiting>>,
    metrics: Arc<ForensicsMetrics>,
) {
    while let Some(report) = reports.recv().await {
        let mut w = waiting.lock().unwrap_or_else(|p| p.into_inner());
        match report {
            Report::Purged => {}
            Report::Failed(e) => {
                let why = format!("the forensics pipeline failed: {e}");
                tracing::error!(error = %e, "the forensics pipeline failed");
                for b in w.batches.drain(..) {
                    let _ = b.done.send(Err(HandlerError::infra(why.clone())));
                }
                w.failed = Some(why);
            }
            Report::Stored { through_seq, dead } => {
                for (seq, record, reason) in dead {
                    if let Some(b) = w
                        .batches
                        .iter_mut()
                        .find(|b| b.first <= seq && seq <= b.last)
                    {
                        b.dead.push((record, reason));
                    }
                }
                while w.batches.front().is_some_and(|b| b.last <= through_seq) {
                    let b = w.batches.pop_front().expect("checked");
                    let n = b.dead.len() as u64;
                    metrics.dead_lettered.fetch_add(n, Ordering::Relaxed);
                    metrics
                        .last_committed_ts
                        .fetch_max(b.newest_ts, Ordering::Relaxed);
                    let _ = b.done.send(Ok(Settled { rejected: b.dead }));
                }
                metrics.oldest_in_flight_ts.store(
                    w.batches.front().map_or(-1, |b| b.oldest_ts),
                    Ordering::Relaxed,
                );
            }
        }
    }
    // The writer is gone: nothing in flight will be stored.
    let mut w = waiting.lock().unwrap_or_else(|p| p.into_inner());
    for b in w.batches.drain(..) {
        let _ = b
            .done
            .send(Err(HandlerError::infra("the forensics writer stopped")));
    }
    w.failed
        .get_or_insert_with(|| "the forensics writer stopped".into());
}

impl<L: EventLog> ForensicsService<L> {
    /// Loads the specialists from `config.models_dir` and opens the store.
    pub fn new(log: L, config: ForensicsConfig) -> Result<Self> {
        let specialists = Specialists::load(&config.models_dir)?;
        Self::with_specialists(log, config, Arc::new(specialists))
    }

    /// With specialists already loaded.
    pub fn with_specialists(
        log: L,
        config: ForensicsConfig,
        specialists: Arc<Specialists>,
    ) -> Result<Self> {
        config.validate()?;
        let mut store = ForensicsStore::open(&config.db, config.topic.clone())?;
        store.register_models(&ModelSet::of(&specialists))?;
        let metrics = Arc::new(ForensicsMetrics::default());
        metrics.store_rows.store(store.count()?, Ordering::Relaxed);
        Ok(ForensicsService {
            log,
            config,
            specialists,
            metrics,
            store,
        })
    }

    /// The metrics this service updates (for [`crate::router`]).
    pub fn metrics(&self) -> Arc<ForensicsMetrics> {
        self.metrics.clone()
    }

    /// Readers of this service's store (for [`crate::router`]).
    pub fn reader(&self) -> Result<StoreReader> {
        StoreReader::open(self.store.path())
    }

    pub fn specialists(&self) -> &Arc<Specialists> {
        &self.specialists
    }

    /// Joins the group and explains decisions until `shutdown` resolves;
    /// stores and commits everything polled before returning. Errors when
    /// the log or the store fails (nothing past the failure is committed).
    /// Runtime metrics and health go to a registry of this run's own; a
    /// server runs it with [`ForensicsService::run_in`].
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<ServiceStats> {
        let ctx = ServiceContext::standalone("forensics");
        let token = ctx.token.clone();
        let run = self.run_in(ctx);
        tokio::pin!(run);
        tokio::pin!(shutdown);
        tokio::select! {
            r = &mut run => r,
            _ = &mut shutdown => {
                token.cancel();
                run.await
            }
        }
    }

    /// Like [`ForensicsService::run`], as a service of a supervisor: until
    /// `ctx.token` is cancelled, with the runtime's metrics and readiness.
    pub async fn run_in(self, ctx: ServiceContext) -> Result<ServiceStats> {
        let ForensicsService {
            log,
            config,
            specialists,
            metrics,
            store,
        } = self;
        log.ensure_topic(&TopicSpec::new(config.topic.clone(), TOPIC_PARTITIONS))
            .await?;

        let workers = config.worker_threads();
        // Room for several chunks per worker, so the workers keep busy
        // while a commit is made.
        let (job_tx, job_rx) = mpsc::channel::<Job>(workers * 8);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (writer_tx, writer_rx) = std_mpsc::channel::<ToWriter>();
        let (report_tx, report_rx) = mpsc::unbounded_channel::<Report>();

        let mut threads = Vec::new();
        for i in 0..workers {
            let (rx, tx, specialists, metrics) = (
                job_rx.clone(),
                writer_tx.clone(),
                specialists.clone(),
                metrics.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name(format!("forensics-worker-{i}"))
                    .spawn(move || worker(rx, tx, specialists, metrics))
                    .map_err(|e| Error::Pipeline(format!("cannot start a worker thread: {e}")))?,
            );
        }
        let writer_metrics = metrics.clone();
        let max_rows = config.max_rows_per_transaction;
        let version = specialists.version().to_owned();
        threads.push(
            std::thread::Builder::new()
                .name("forensics-writer".into())
                .spawn(move || {
                    writer(
                        store,
                        version,
                        writer_rx,
                        report_tx,
                        writer_metrics,
                        max_rows,
                    )
                })
                .map_err(|e| Error::Pipeline(format!("cannot start the writer thread: {e}")))?,
        );

        let sampler = tokio::spawn(sample_lag(
            log.clone(),
            config.group.clone(),
            config.topic.clone(),
            metrics.clone(),
            Duration::from_millis(config.lag_interval_ms),
        ));
        let purger = tokio::spawn(purge(
            writer_tx,
            config.retention(),
            Duration::from_secs(config.purge_interval_secs),
        ));
        let waiting: Arc<Mutex<Waiting>> = Arc::default();
        let dispatcher = tokio::spawn(dispatch(report_rx, waiting.clone(), metrics.clone()));
        // Chunks reach the workers in chunk order (the writer stores in that
        // order), at the pace the bounded channel allows; the runtime's
        // depth bounds what waits here.
        let (feed_tx, mut feed_rx) = mpsc::unbounded_channel::<Job>();
        let feeder = tokio::spawn(async move {
            while let Some(job) = feed_rx.recv().await {
                if job_tx.send(job).await.is_err() {
                    return;
                }
            }
        });
        let pipeline = ForensicsPipeline {
            jobs: feed_tx,
            chunk_size: config.chunk_size,
            seq: 0,
            waiting,
            metrics: metrics.clone(),
        };
        let spec = ConsumerSpec::new(
            config.group.clone(),
            Subscription::topics([config.topic.clone()]),
        )
        .config(ConsumerConfig {
            max_batch: config.poll_max,
            poll_timeout_ms: POLL_TIMEOUT.as_millis() as u64,
            ..ConsumerConfig::default()
        });
        let outcome = run_pipelined(&log, &spec, pipeline, PIPELINE_DEPTH, &ctx).await;
        // The pipeline is dropped: the feeder drains and closes the job channel.
        let _ = feeder.await;
        sampler.abort();
        // The purger holds the last sender to the writer: once it is gone
        // and the pipeline (dropped by the runtime) closed the job channel,
        // every thread ends when its queue is drained.
        purger.abort();
        let _ = purger.await;
        let threads_done = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        });
        let _ = threads_done.await;
        let _ = dispatcher.await;
        outcome.map_err(|e| Error::Pipeline(e.to_string()))?;
        let dead = ctx
            .metrics
            .records
            .with(&[&ctx.name, "dead_lettered"])
            .get();
        Ok(ServiceStats {
            explained: metrics.explained.load(Ordering::Relaxed),
            stored: metrics.rows_stored.load(Ordering::Relaxed),
            duplicates: metrics.duplicates.load(Ordering::Relaxed),
            dead_lettered: dead,
            purged: metrics.purged.load(Ordering::Relaxed),
        })
    }
}

/// Asks the writer to delete what is past retention, now and every `every`.
async fn purge(writer: std_mpsc::Sender<ToWriter>, retention: Duration, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let cutoff_millis =
            now_millis().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        if writer.send(ToWriter::Purge { cutoff_millis }).is_err() {
            return;
        }
    }
}

/// A worker thread's scratch memory.
struct WorkerSpace {
    shap: crate::Workspace,
    /// The chunk's model rows, one after another.
    rows: Vec<f32>,
    inputs: Inputs,
    blobs: Vec<Vec<u8>>,
}

impl WorkerSpace {
    fn new(specialists: &Specialists) -> Self {
        WorkerSpace {
            shap: specialists.workspace(),
            rows: Vec::new(),
            inputs: Inputs::default(),
            blobs: Vec::new(),
        }
    }
}

fn worker(
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    out: std_mpsc::Sender<ToWriter>,
    specialists: Arc<Specialists>,
    metrics: Arc<ForensicsMetrics>,
) {
    let mut ws = WorkerSpace::new(&specialists);
    loop {
        // One worker waits on the channel at a time; the others wait on the lock.
        let job = jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .blocking_recv();
        let Some(job) = job else { return };
        let seq = job.seq;
        let done = std::panic::catch_unwind(AssertUnwindSafe(|| {
            explain_chunk(&specialists, &metrics, &mut ws, job)
        }));
        let msg = match done {
            Ok(done) => ToWriter::Done(done),
            Err(_) => {
                ws = WorkerSpace::new(&specialists);
                ToWriter::Failed(format!("a worker panicked explaining chunk {seq}"))
            }
        };
        if out.send(msg).is_err() {
            return;
        }
    }
}

/// Decodes and explains one chunk: rows to store, records to dead-letter.
///
/// Each record is decoded and checked, its model row gathered; then the
/// SHAP values of all the chunk's rows are computed together (a tree at a
/// time for many rows, see [`Specialists::explain_rows`]).
fn explain_chunk(
    specialists: &Specialists,
    metrics: &ForensicsMetrics,
    ws: &mut WorkerSpace,
    job: Job,
) -> Done {
    let start = Instant::now();
    let explained_at = now_millis();
    let records = &job.records[job.range.clone()];
    let mut rows = Vec::with_capacity(records.len());
    let mut rejected: Vec<(usize, String)> = Vec::new();
    ws.rows.clear();
    for (i, record) in records.iter().enumerate() {
        let decoded = match decode(record) {
            Ok(d) => d,
            Err(rejection) => {
                rejected.push((i, rejection.to_string()));
                continue;
            }
        };
        let d = &decoded.decision;
        if let Err(rejection) = specialists.check(d, &mut ws.inputs) {
            rejected.push((i, rejection.to_string()));
            continue;
        }
        ws.rows.extend_from_slice(&ws.inputs.row);
        let mut decision = Vec::with_capacity(record.value.len() / 2);
        ws.inputs.encode(d, specialists.index(), &mut decision);
        rows.push(NewExplanation {
            decision_id: decoded.decision_id,
            event_id: decoded.event_id,
            decided_at: d.timestamp.timestamp_millis(),
            symbol: d.symbol.to_string(),
            action: d.action.as_str(),
            model_version: d.model_version.to_string(),
            explained_at,
            source_partition: record.partition,
            source_offset: record.offset,
            decision,
            shap: Vec::new(),
            head: Some(DecisionHead::of_view(d)),
        });
    }
    ws.blobs.clear();
    specialists.explain_rows(&ws.rows, &mut ws.shap, &mut ws.blobs);
    for (row, blob) in rows.iter_mut().zip(ws.blobs.drain(..)) {
        row.shap = blob;
    }
    let dead: Vec<(Record, String)> = rejected
        .into_iter()
        .map(|(i, reason)| (records[i].clone(), reason))
        .collect();
    if !rows.is_empty() {
        let mut hist = metrics.explain.local();
        let each = start.elapsed().as_nanos() as u64 / rows.len() as u64;
        hist.record_many(metrics.explain.bounds(), each, rows.len() as u64);
        metrics.explain.merge(&hist);
    }
    metrics
        .explained
        .fetch_add(rows.len() as u64, Ordering::Relaxed);
    Done {
        seq: job.seq,
        rows,
        dead,
    }
}

fn writer(
    mut store: ForensicsStore,
    version: String,
    rx: std_mpsc::Receiver<ToWriter>,
    reports: mpsc::UnboundedSender<Report>,
    metrics: Arc<ForensicsMetrics>,
    max_rows: usize,
) {
    let mut next = 1u64;
    let mut ready: BTreeMap<u64, Done> = BTreeMap::new();
    // Blocks for one message, then takes whatever else is queued, so a
    // busy service writes several chunks per transaction.
    while let Ok(first) = rx.recv() {
        let mut msgs = vec![first];
        msgs.extend(rx.try_iter());
        for msg in msgs {
            match msg {
                ToWriter::Done(done) => {
                    ready.insert(done.seq, done);
                }
                ToWriter::Purge { cutoff_millis } => match store.purge_before(cutoff_millis) {
                    Ok(n) => {
                        if n > 0 {
                            tracing::info!(
                                rows = n,
                                cutoff_millis,
                                "retention purged explanations"
                            );
                        }
                        metrics.purged.fetch_add(n, Ordering::Relaxed);
                        metrics.store_rows.fetch_sub(
                            n.min(metrics.store_rows.load(Ordering::Relaxed)),
                            Ordering::Relaxed,
                        );
                        let _ = reports.send(Report::Purged);
                    }
                    Err(e) => {
                        let _ = reports.send(Report::Failed(e));
                        return;
                    }
                },
                ToWriter::Failed(reason) => {
                    let _ = reports.send(Report::Failed(Error::Pipeline(reason)));
                    return;
                }
            }
        }
        while ready.contains_key(&next) {
            let mut rows = Vec::new();
            let mut dead = Vec::new();
            while rows.len() < max_rows {
                let Some(done) = ready.remove(&next) else {
                    break;
                };
                rows.extend(done.rows);
                dead.extend(done.dead.into_iter().map(|(r, why)| (done.seq, r, why)));
                next += 1;
            }
            let start = Instant::now();
            match store.insert(&version, &rows) {
                Ok(n) => {
                    metrics
                        .store_batch
                        .observe(start.elapsed().as_nanos() as u64);
                    metrics.rows_stored.fetch_add(n.inserted, Ordering::Relaxed);
                    metrics.store_rows.fetch_add(n.inserted, Ordering::Relaxed);
                    metrics
                        .duplicates
                        .fetch_add(n.duplicates, Ordering::Relaxed);
                    tracing::debug!(
                        rows = rows.len(),
                        inserted = n.inserted,
                        through = next - 1,
                        "explanations stored"
                    );
                    if reports
                        .send(Report::Stored {
                            through_seq: next - 1,
                            dead,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    let _ = reports.send(Report::Failed(e));
                    return;
                }
            }
        }
    }
}

/// Samples the group's lag until aborted.
///
/// Partitions the group never committed on count from their first stored
/// record, so a new group facing a backlog shows it.
async fn sample_lag<L: EventLog>(
    log: L,
    group: String,
    topic: String,
    metrics: Arc<ForensicsMetrics>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sample = async {
            let committed = log.group_lag(&group).await?;
            let info = log.describe_topic(&topic).await?;
            Ok::<_, ultracore_log::Error>(
                info.partitions
                    .iter()
                    .map(|p| {
                        let records = committed
                            .iter()
                            .find(|l| l.topic == topic && l.partition == p.partition)
                            .map_or(p.high_watermark.saturating_sub(p.log_start_offset), |l| {
                                l.lag()
                            });
                        PartitionLag {
                            topic: topic.clone(),
                            partition: p.partition,
                            records,
                        }
                    })
                    .collect::<Vec<_>>(),
            )
        };
        match sample.await {
            Ok(lags) => metrics.set_lag(lags, now_millis()),
            Err(e) => tracing::warn!(error = %e, group, "cannot read the consumer lag"),
        }
    }
}
