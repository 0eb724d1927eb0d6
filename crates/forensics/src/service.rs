//! The forensics service: a consumer group on `trading_decisions` that
//! explains every decision and stores the explanation.
//!
//! # Pipeline
//!
//! ```text
//! poll (async task) ──chunks──▶ workers (one thread per core) ──results──▶ writer (one thread, SQLite)
//!        ▲                                                                        │
//!        └──────────── "durable through chunk n" + dead letters ◀────────────────┘
//! ```
//!
//! - The poll task reads batches from the log, cuts them into numbered
//!   chunks and hands them to the workers through a bounded channel (the
//!   backpressure: when the workers fall behind, polling waits).
//! - Workers decode, explain (SHAP, a chunk's rows together) and pass results to the
//!   writer. Explaining is pure CPU, so it runs on dedicated threads, never
//!   on the async workers.
//! - The writer stores chunks in chunk order, as many as are ready in one
//!   transaction (`synchronous=FULL`: durable on commit), then reports.
//! - On a report the poll task appends the chunk's malformed records to
//!   `trading_decisions.dlq` and only then commits the chunk's offsets. So
//!   a crash anywhere re-delivers at most what was not yet committed, and
//!   the unique decision id makes storing it again a no-op: no duplicates,
//!   no gaps.
//!
//! The log's `poll` is never cancelled (cancelling the Kafka consumer's poll
//! could drop records it already took), so shutdown is noticed between
//! polls, within one poll timeout.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use ultracore_log::{
    now_millis, Consumer, ConsumerOptions, DeadLetter, EventLog, EventLogExt, Position, Record,
    TopicSpec,
};

use crate::metrics::PartitionLag;
use crate::store::{ModelSet, NewExplanation};
use crate::{
    decode, Error, ForensicsConfig, ForensicsMetrics, ForensicsStore, Inputs, Result, Specialists,
    StoreReader,
};

/// Partitions of `trading_decisions` when the service creates it.
pub const TOPIC_PARTITIONS: u32 = 6;
/// How long one poll waits for records; also the longest a shutdown waits.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

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

/// A chunk of records handed to a worker.
struct Job {
    seq: u64,
    records: Vec<Record>,
}

/// A worker's result for one chunk.
struct Done {
    seq: u64,
    rows: Vec<NewExplanation>,
    dead: Vec<(Record, String)>,
}

enum ToWriter {
    Done(Done),
    Purge { cutoff_millis: i64 },
    Failed(String),
}

enum Report {
    Stored {
        through_seq: u64,
        dead: Vec<(Record, String)>,
    },
    Purged,
    Failed(Error),
}

/// A polled chunk waiting to be durable.
struct Pending {
    seq: u64,
    positions: Vec<Position>,
    oldest_ts: i64,
    newest_ts: i64,
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
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<ServiceStats> {
        let ForensicsService {
            log,
            config,
            specialists,
            metrics,
            store,
        } = self;
        log.ensure_topic(&TopicSpec::new(config.topic.clone(), TOPIC_PARTITIONS))
            .await?;
        let mut consumer = log
            .consumer(ConsumerOptions::new(
                config.group.clone(),
                [config.topic.clone()],
            ))
            .await?;

        let workers = config.worker_threads();
        // Room for several chunks per worker, so the workers keep busy
        // while the poll loop waits for a commit.
        let (job_tx, job_rx) = mpsc::channel::<Job>(workers * 8);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (writer_tx, writer_rx) = std_mpsc::channel::<ToWriter>();
        let (report_tx, mut report_rx) = mpsc::unbounded_channel::<Report>();

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

        let mut poller = Poller {
            log: log.clone(),
            metrics: metrics.clone(),
            pending: VecDeque::new(),
            seq: 0,
            stats: ServiceStats::default(),
        };
        let mut writer_tx = Some(writer_tx);
        let outcome = poller
            .run(
                &mut consumer,
                &config,
                job_tx,
                &mut writer_tx,
                &mut report_rx,
                shutdown,
            )
            .await;
        sampler.abort();
        drop(writer_tx);
        // The channels are closed now: every thread ends once its queue is drained.
        for t in threads {
            let _ = t.join();
        }
        let mut stats = outcome?;
        stats.explained = metrics.explained.load(Ordering::Relaxed);
        stats.stored = metrics.rows_stored.load(Ordering::Relaxed);
        stats.duplicates = metrics.duplicates.load(Ordering::Relaxed);
        stats.purged = metrics.purged.load(Ordering::Relaxed);
        Ok(stats)
    }
}

struct Poller<L: EventLog> {
    log: L,
    metrics: Arc<ForensicsMetrics>,
    pending: VecDeque<Pending>,
    seq: u64,
    stats: ServiceStats,
}

impl<L: EventLog> Poller<L> {
    async fn run(
        &mut self,
        consumer: &mut L::Consumer,
        config: &ForensicsConfig,
        job_tx: mpsc::Sender<Job>,
        writer_tx: &mut Option<std_mpsc::Sender<ToWriter>>,
        report_rx: &mut mpsc::UnboundedReceiver<Report>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<ServiceStats> {
        let mut shutdown = std::pin::pin!(shutdown);
        let retention = config.retention();
        let purge_every = Duration::from_secs(config.purge_interval_secs);
        let mut next_purge = Instant::now();
        loop {
            if is_ready(shutdown.as_mut()) {
                break;
            }
            if Instant::now() >= next_purge {
                let cutoff_millis = now_millis()
                    .saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
                if let Some(tx) = writer_tx.as_ref() {
                    tx.send(ToWriter::Purge { cutoff_millis })
                        .map_err(|_| Error::Pipeline("the writer thread stopped".into()))?;
                }
                next_purge = Instant::now() + purge_every;
            }
            if let Ok(report) = report_rx.try_recv() {
                self.handle(consumer, report, report_rx).await?;
            }
            let records = consumer.poll(config.poll_max, POLL_TIMEOUT).await?;
            if records.is_empty() {
                continue;
            }
            let mut records = records.into_iter();
            loop {
                let chunk: Vec<Record> = records.by_ref().take(config.chunk_size).collect();
                if chunk.is_empty() {
                    break;
                }
                self.seq += 1;
                let pending = Pending {
                    seq: self.seq,
                    positions: next_positions(&chunk),
                    oldest_ts: chunk.iter().map(|r| r.timestamp).min().unwrap_or(0),
                    newest_ts: chunk.iter().map(|r| r.timestamp).max().unwrap_or(0),
                };
                if self.pending.is_empty() {
                    self.metrics
                        .oldest_in_flight_ts
                        .store(pending.oldest_ts, Ordering::Relaxed);
                }
                self.pending.push_back(pending);
                let job = Job {
                    seq: self.seq,
                    records: chunk,
                };
                // Wait for room, storing and committing meanwhile (reserve is
                // cancel-safe: the job is sent only once a slot is ours).
                loop {
                    tokio::select! {
                        permit = job_tx.reserve() => {
                            permit
                                .map_err(|_| Error::Pipeline("the worker threads stopped".into()))?
                                .send(job);
                            break;
                        }
                        Some(report) = report_rx.recv() => self.handle(consumer, report, report_rx).await?,
                    }
                }
            }
        }
        // Shutdown: no more work; let the workers and the writer finish what
        // they have and commit it.
        drop(job_tx);
        writer_tx.take();
        while let Some(report) = report_rx.recv().await {
            self.handle(consumer, report, report_rx).await?;
        }
        if !self.pending.is_empty() {
            return Err(Error::Pipeline(format!(
                "{} chunks were polled but never stored",
                self.pending.len()
            )));
        }
        Ok(self.stats)
    }

    /// Dead-letters stored chunks' bad records, then commits their offsets:
    /// for `first` and every report already queued behind it, with one
    /// commit (a commit is durable, an fsync on the embedded log, and the
    /// poll loop waits for it: one per burst of reports, not per report).
    async fn handle(
        &mut self,
        consumer: &mut L::Consumer,
        first: Report,
        queued: &mut mpsc::UnboundedReceiver<Report>,
    ) -> Result<()> {
        let mut through = None;
        let mut dead = Vec::new();
        let mut next = Some(first);
        while let Some(report) = next {
            match report {
                Report::Failed(e) => return Err(e),
                Report::Purged => {}
                Report::Stored {
                    through_seq,
                    dead: more,
                } => {
                    through = Some(through_seq);
                    dead.extend(more);
                }
            }
            next = queued.try_recv().ok();
        }
        let Some(through_seq) = through else {
            return Ok(());
        };
        for (record, reason) in &dead {
            DeadLetter::new(record, reason.clone())
                .send(&self.log)
                .await?;
        }
        let n = dead.len() as u64;
        self.stats.dead_lettered += n;
        self.metrics.dead_lettered.fetch_add(n, Ordering::Relaxed);
        let mut positions: Vec<Position> = Vec::new();
        let mut newest = -1;
        while self.pending.front().is_some_and(|p| p.seq <= through_seq) {
            let p = self.pending.pop_front().expect("checked");
            newest = newest.max(p.newest_ts);
            merge_positions(&mut positions, p.positions);
        }
        consumer.commit(&positions).await?;
        if newest >= 0 {
            self.metrics
                .last_committed_ts
                .fetch_max(newest, Ordering::Relaxed);
        }
        self.metrics.oldest_in_flight_ts.store(
            self.pending.front().map_or(-1, |p| p.oldest_ts),
            Ordering::Relaxed,
        );
        Ok(())
    }
}

/// Whether `f` has completed, without waiting.
fn is_ready<F: Future<Output = ()>>(f: Pin<&mut F>) -> bool {
    f.poll(&mut Context::from_waker(Waker::noop())).is_ready()
}

/// The position after the last record of each partition.
fn next_positions(records: &[Record]) -> Vec<Position> {
    let mut out: Vec<Position> = Vec::new();
    merge_positions(
        &mut out,
        records
            .iter()
            .map(Record::next_position)
            .collect::<Vec<_>>(),
    );
    out
}

fn merge_positions(into: &mut Vec<Position>, from: Vec<Position>) {
    for p in from {
        match into
            .iter_mut()
            .find(|q| q.topic == p.topic && q.partition == p.partition)
        {
            Some(q) => q.offset = q.offset.max(p.offset),
            None => into.push(p),
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
    let mut rows = Vec::with_capacity(job.records.len());
    let mut rejected: Vec<(usize, String)> = Vec::new();
    ws.rows.clear();
    for (i, record) in job.records.iter().enumerate() {
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
        });
    }
    ws.blobs.clear();
    specialists.explain_rows(&ws.rows, &mut ws.shap, &mut ws.blobs);
    for (row, blob) in rows.iter_mut().zip(ws.blobs.drain(..)) {
        row.shap = blob;
    }
    let mut dead = Vec::with_capacity(rejected.len());
    if !rejected.is_empty() {
        let mut records: Vec<Option<Record>> = job.records.into_iter().map(Some).collect();
        for (i, reason) in rejected {
            if let Some(r) = records[i].take() {
                dead.push((r, reason));
            }
        }
    }
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
                dead.extend(done.dead);
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
