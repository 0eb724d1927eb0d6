//! The emitter: a bounded queue in front of a delivery task that appends to
//! the target log through the breaker, spools what it cannot deliver, and
//! forwards the spool in order when the target answers again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use ultracore_log::{
    Consumer, ConsumerOptions, EventLog, EventLogExt, Header, NewRecord, Position, Record,
    TopicSpec,
};
use ultracore_log_embedded::{EmbeddedConsumer, EmbeddedLog};

use crate::{Breaker, BreakerConfig, BreakerState};

/// The spool's topic in the embedded log (one partition: one order).
pub const SPOOL_TOPIC: &str = "spool";
/// The spool's consumer group: its committed position is what was forwarded.
const SPOOL_GROUP: &str = "spool-forwarder";
/// The header carrying a spooled record's destination topic.
pub const TOPIC_HEADER: &str = "spool.topic";

#[derive(Debug, Clone)]
pub struct EmitterOptions {
    pub breaker: BreakerConfig,
    /// An append without acknowledgement after this long counts as a failure.
    pub append_timeout: Duration,
    /// Records waiting in memory; beyond this `emit` refuses.
    pub queue_capacity: usize,
    /// Most records per append.
    pub max_batch: usize,
    /// How long the delivery task waits after the first record of a batch
    /// for more to join it (as Kafka's `linger.ms`). A short wait turns a
    /// steady trickle of events into a few appends per millisecond instead
    /// of one append (and one fsync or round trip) per event, which keeps
    /// the log's threads off the cores the callers of `emit` run on. It
    /// delays delivery, never the caller. Zero sends at once.
    pub linger: Duration,
}

impl Default for EmitterOptions {
    fn default() -> Self {
        EmitterOptions {
            breaker: BreakerConfig::default(),
            append_timeout: Duration::from_secs(2),
            queue_capacity: 100_000,
            max_batch: 1_000,
            linger: Duration::from_millis(1),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    #[error("{0} events are waiting to be emitted; this one was refused (the log and the spool are not keeping up)")]
    QueueFull(usize),
    #[error("the emitter has shut down")]
    Closed,
}

/// Counters and gauges, for logs and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmitterStats {
    /// Accepted by `emit`.
    pub emitted: u64,
    /// Appended to the target directly.
    pub delivered: u64,
    /// Written to the spool.
    pub spooled: u64,
    /// Forwarded from the spool to the target.
    pub forwarded: u64,
    /// In the spool, not yet forwarded.
    pub spool_backlog: u64,
    /// In memory, not yet delivered or spooled.
    pub queued: u64,
    /// Refused by `emit` (queue full).
    pub refused: u64,
    /// Failed appends to the target, in total.
    pub target_failures: u64,
    pub consecutive_failures: u64,
    pub breaker: BreakerState,
    pub breaker_transitions: u64,
}

#[derive(Debug, Default)]
struct Counters {
    emitted: AtomicU64,
    delivered: AtomicU64,
    spooled: AtomicU64,
    forwarded: AtomicU64,
    backlog: AtomicU64,
    refused: AtomicU64,
    target_failures: AtomicU64,
    consecutive_failures: AtomicU64,
    breaker: AtomicU8,
    transitions: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> EmitterStats {
        let emitted = self.emitted.load(Ordering::Relaxed);
        let delivered = self.delivered.load(Ordering::Relaxed);
        let spooled = self.spooled.load(Ordering::Relaxed);
        EmitterStats {
            emitted,
            delivered,
            spooled,
            forwarded: self.forwarded.load(Ordering::Relaxed),
            spool_backlog: self.backlog.load(Ordering::Relaxed),
            queued: emitted.saturating_sub(delivered + spooled),
            refused: self.refused.load(Ordering::Relaxed),
            target_failures: self.target_failures.load(Ordering::Relaxed),
            consecutive_failures: self.consecutive_failures.load(Ordering::Relaxed),
            breaker: match self.breaker.load(Ordering::Relaxed) {
                1 => BreakerState::Open,
                2 => BreakerState::HalfOpen,
                _ => BreakerState::Closed,
            },
            breaker_transitions: self.transitions.load(Ordering::Relaxed),
        }
    }
}

/// Emits records to a target log without blocking the caller and without
/// losing any while the target is down. See the crate documentation.
#[derive(Debug)]
pub struct SpooledEmitter {
    tx: mpsc::Sender<(String, NewRecord)>,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
    capacity: usize,
}

impl SpooledEmitter {
    /// Starts the delivery task. `spool` is an embedded log used only for
    /// this (its own directory); records a previous run spooled and did not
    /// forward are forwarded first. Must be called within a Tokio runtime.
    pub async fn start<L: EventLog>(
        target: L,
        spool: EmbeddedLog,
        options: EmitterOptions,
    ) -> ultracore_log::Result<SpooledEmitter> {
        spool.ensure_topic(&TopicSpec::new(SPOOL_TOPIC, 1)).await?;
        let lag = spool.group_lag(SPOOL_GROUP).await?;
        let backlog = if lag.is_empty() {
            // Never committed: everything in the spool is pending.
            spool.describe_topic(SPOOL_TOPIC).await?.records()
        } else {
            lag.iter().map(|l| l.lag()).sum()
        };
        let consumer = spool
            .consumer(ConsumerOptions::new(SPOOL_GROUP, [SPOOL_TOPIC]))
            .await?;
        let capacity = options.queue_capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let counters = Arc::new(Counters::default());
        counters.backlog.store(backlog, Ordering::Relaxed);
        if backlog > 0 {
            tracing::info!(
                backlog,
                "spool holds records from an earlier run; forwarding them first"
            );
        }
        let worker = Worker {
            breaker: Breaker::new(options.breaker),
            target,
            spool,
            consumer,
            rx,
            counters: counters.clone(),
            options,
            unforwarded: VecDeque::new(),
        };
        let task = tokio::spawn(worker.run());
        Ok(SpooledEmitter {
            tx,
            counters,
            task,
            capacity,
        })
    }

    /// The first offset of [`SPOOL_TOPIC`] in `spool` not yet forwarded to
    /// the target: from there on are the records an earlier run could not
    /// deliver, each with its destination in the [`TOPIC_HEADER`] header.
    /// Readers that must know the latest events before the emitter has
    /// forwarded them (such as a service rebuilding its state at start)
    /// read the spool from here as well as the target. 0 when nothing was
    /// ever forwarded or the spool is new.
    pub async fn first_unforwarded(spool: &EmbeddedLog) -> ultracore_log::Result<u64> {
        let lag = spool.group_lag(SPOOL_GROUP).await?;
        Ok(lag
            .iter()
            .find(|l| l.topic == SPOOL_TOPIC)
            .map_or(0, |l| l.committed.unwrap_or(l.log_start_offset)))
    }

    /// Queues `record` for `topic` and returns at once.
    pub fn emit(&self, topic: &str, record: NewRecord) -> Result<(), EmitError> {
        match self.tx.try_send((topic.to_owned(), record)) {
            Ok(()) => {
                self.counters.emitted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                Err(EmitError::QueueFull(self.capacity))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(EmitError::Closed),
        }
    }

    pub fn stats(&self) -> EmitterStats {
        self.counters.snapshot()
    }

    /// Stops taking records, delivers or spools everything queued, tries
    /// once more to forward the spool, and returns the final statistics.
    /// Records still in the spool stay there for the next start.
    pub async fn shutdown(self) -> EmitterStats {
        let SpooledEmitter {
            tx, counters, task, ..
        } = self;
        drop(tx);
        if let Err(e) = task.await {
            tracing::error!(error = %e, "emitter task failed");
        }
        counters.snapshot()
    }
}

struct Worker<L> {
    breaker: Breaker,
    target: L,
    spool: EmbeddedLog,
    consumer: EmbeddedConsumer,
    rx: mpsc::Receiver<(String, NewRecord)>,
    counters: Arc<Counters>,
    options: EmitterOptions,
    /// Read from the spool, not yet forwarded (in spool order).
    unforwarded: VecDeque<Record>,
}

impl<L: EventLog> Worker<L> {
    async fn run(mut self) {
        let mut closed = false;
        while !closed {
            let mut batch = Vec::new();
            let backlog = self.backlog();
            if backlog == 0 {
                match self.rx.recv().await {
                    Some(item) => batch.push(item),
                    None => closed = true,
                }
            } else {
                // While the spool holds records, wake up to retry forwarding.
                let wait = self
                    .breaker
                    .wait(Instant::now())
                    .max(Duration::from_millis(10));
                match tokio::time::timeout(wait, self.rx.recv()).await {
                    Ok(Some(item)) => batch.push(item),
                    Ok(None) => closed = true,
                    Err(_) => {}
                }
            }
            self.drain(&mut batch);
            if !closed
                && !batch.is_empty()
                && batch.len() < self.options.max_batch
                && !self.options.linger.is_zero()
            {
                tokio::time::sleep(self.options.linger).await;
                self.drain(&mut batch);
            }
            if !batch.is_empty() {
                self.handle(batch).await;
            }
            if self.backlog() > 0 {
                self.forward().await;
            }
        }
    }

    /// Moves queued records into `batch`, up to the batch limit.
    fn drain(&mut self, batch: &mut Vec<(String, NewRecord)>) {
        while batch.len() < self.options.max_batch {
            match self.rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
    }

    fn backlog(&self) -> u64 {
        self.counters.backlog.load(Ordering::Relaxed)
    }

    /// Delivers a batch directly when that keeps the order (nothing spooled)
    /// and the breaker allows it; spools it otherwise.
    async fn handle(&mut self, batch: Vec<(String, NewRecord)>) {
        if self.backlog() == 0 && self.acquire() {
            let batch = group_by_topic(batch);
            let mut rest = batch.as_slice();
            while let Some((topic, _)) = rest.first() {
                let run = rest.iter().take_while(|(t, _)| t == topic).count();
                let records: Vec<NewRecord> = rest[..run].iter().map(|(_, r)| r.clone()).collect();
                if self.deliver(topic, records).await {
                    self.counters
                        .delivered
                        .fetch_add(run as u64, Ordering::Relaxed);
                    rest = &rest[run..];
                } else {
                    break;
                }
            }
            if !rest.is_empty() {
                self.spool_records(rest.to_vec()).await;
            }
        } else {
            self.spool_records(batch).await;
        }
    }

    fn acquire(&mut self) -> bool {
        let (ok, change) = self.breaker.try_acquire(Instant::now());
        self.note(change);
        ok
    }

    /// One append to the target, bounded by the append timeout, through the breaker.
    async fn deliver(&mut self, topic: &str, records: Vec<NewRecord>) -> bool {
        let n = records.len();
        let result = tokio::time::timeout(
            self.options.append_timeout,
            self.target.append(topic, records),
        )
        .await;
        let error = match result {
            Ok(Ok(_)) => {
                let change = self.breaker.success();
                self.note(change);
                return true;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!(
                "no acknowledgement within {} ms",
                self.options.append_timeout.as_millis()
            ),
        };
        self.counters
            .target_failures
            .fetch_add(1, Ordering::Relaxed);
        let change = self.breaker.failure(Instant::now());
        tracing::warn!(
            topic,
            records = n,
            error,
            consecutive = self.breaker.consecutive_failures(),
            "append to the target log failed; spooling"
        );
        self.note(change);
        false
    }

    fn note(&self, change: Option<BreakerState>) {
        self.counters.consecutive_failures.store(
            u64::from(self.breaker.consecutive_failures()),
            Ordering::Relaxed,
        );
        let Some(state) = change else { return };
        self.counters
            .breaker
            .store(state.as_gauge(), Ordering::Relaxed);
        self.counters.transitions.fetch_add(1, Ordering::Relaxed);
        match state {
            BreakerState::Open => tracing::warn!(
                failures = self.breaker.consecutive_failures(),
                "circuit breaker open: the target log is not tried until the open timeout passes; events go to the spool"
            ),
            BreakerState::HalfOpen => {
                tracing::info!("circuit breaker half-open: trying the target log")
            }
            BreakerState::Closed => tracing::info!(
                backlog = self.backlog(),
                "circuit breaker closed: the target log answers again"
            ),
        }
    }

    /// Appends to the durable spool; retries until it succeeds, because the
    /// spool is the last place the records can go.
    async fn spool_records(&mut self, items: Vec<(String, NewRecord)>) {
        let n = items.len() as u64;
        let records: Vec<NewRecord> = items
            .into_iter()
            .map(|(topic, mut r)| {
                r.headers.push(Header::new(TOPIC_HEADER, topic));
                r.partition = None;
                r
            })
            .collect();
        let mut backoff = Duration::from_millis(10);
        loop {
            match self.spool.append(SPOOL_TOPIC, records.clone()).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, records = n, "cannot write the spool; retrying (records stay in memory)");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
        self.counters.spooled.fetch_add(n, Ordering::Relaxed);
        self.counters.backlog.fetch_add(n, Ordering::Relaxed);
    }

    /// Forwards the spool in order while the target accepts, committing
    /// progress after each append.
    async fn forward(&mut self) {
        while self.backlog() > 0 {
            if !self.acquire() {
                return;
            }
            if self.unforwarded.is_empty() {
                match self
                    .consumer
                    .poll(self.options.max_batch, Duration::from_millis(100))
                    .await
                {
                    Ok(records) if records.is_empty() => return,
                    Ok(records) => self.unforwarded.extend(records),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the spool");
                        return;
                    }
                }
            }
            let topic = self
                .unforwarded
                .front()
                .and_then(|r| r.header(TOPIC_HEADER))
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .unwrap_or_default();
            let run = self
                .unforwarded
                .iter()
                .take_while(|r| {
                    r.header(TOPIC_HEADER)
                        .map(|t| t == topic.as_bytes())
                        .unwrap_or(false)
                })
                .count()
                .max(1);
            let records: Vec<NewRecord> = self
                .unforwarded
                .iter()
                .take(run)
                .map(|r| NewRecord {
                    key: r.key.clone(),
                    value: r.value.clone(),
                    headers: r
                        .headers
                        .iter()
                        .filter(|h| h.key != TOPIC_HEADER)
                        .cloned()
                        .collect(),
                    timestamp: Some(r.timestamp),
                    partition: None,
                })
                .collect();
            if topic.is_empty() {
                tracing::error!(
                    offset = self.unforwarded[0].offset,
                    "spooled record without a destination topic; skipped"
                );
            } else if !self.deliver(&topic, records).await {
                return;
            }
            let last = self.unforwarded.drain(..run).next_back().map(|r| r.offset);
            self.counters
                .forwarded
                .fetch_add(run as u64, Ordering::Relaxed);
            self.counters
                .backlog
                .fetch_sub((run as u64).min(self.backlog()), Ordering::Relaxed);
            if let Some(offset) = last {
                let position = Position {
                    topic: SPOOL_TOPIC.into(),
                    partition: 0,
                    offset: offset + 1,
                };
                if let Err(e) = self.consumer.commit(&[position]).await {
                    tracing::warn!(error = %e, "cannot commit spool progress; a restart forwards these records again");
                }
            }
        }
    }
}

/// Makes each topic's records contiguous, keeping their order within the
/// topic, so a batch costs one append per topic. A producer that alternates
/// topics (a decision, its risk decision, the next decision, …) would
/// otherwise make every append a single record and the target's round trip
/// the throughput limit. There is no order across topics to keep.
fn group_by_topic(batch: Vec<(String, NewRecord)>) -> Vec<(String, NewRecord)> {
    let mut topics: Vec<String> = Vec::new();
    for (topic, _) in &batch {
        if !topics.contains(topic) {
            topics.push(topic.clone());
        }
    }
    if topics.len() <= 1 {
        return batch;
    }
    let mut groups: Vec<Vec<(String, NewRecord)>> = vec![Vec::new(); topics.len()];
    for item in batch {
        let i = topics.iter().position(|t| *t == item.0).unwrap_or(0);
        groups[i].push(item);
    }
    groups.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ultracore_log::{Appended, GroupLag, TopicInfo};
    use ultracore_log_embedded::EmbeddedOptions;

    use super::*;

    /// An embedded log that records the size of every append.
    #[derive(Clone)]
    struct Counting {
        inner: EmbeddedLog,
        appends: Arc<Mutex<Vec<usize>>>,
    }

    impl EventLog for Counting {
        type Consumer = EmbeddedConsumer;

        async fn create_topic(&self, spec: &TopicSpec) -> ultracore_log::Result<()> {
            self.inner.create_topic(spec).await
        }
        async fn list_topics(&self) -> ultracore_log::Result<Vec<TopicInfo>> {
            self.inner.list_topics().await
        }
        async fn describe_topic(&self, topic: &str) -> ultracore_log::Result<TopicInfo> {
            self.inner.describe_topic(topic).await
        }
        async fn append(
            &self,
            topic: &str,
            records: Vec<NewRecord>,
        ) -> ultracore_log::Result<Vec<Appended>> {
            self.appends.lock().unwrap().push(records.len());
            self.inner.append(topic, records).await
        }
        async fn consumer(
            &self,
            options: ConsumerOptions,
        ) -> ultracore_log::Result<EmbeddedConsumer> {
            self.inner.consumer(options).await
        }
        async fn list_groups(&self) -> ultracore_log::Result<Vec<String>> {
            self.inner.list_groups().await
        }
        async fn group_lag(&self, group: &str) -> ultracore_log::Result<Vec<GroupLag>> {
            self.inner.group_lag(group).await
        }
    }

    /// Emits one record, then four more 20 ms later, and returns the sizes
    /// of the appends the target saw.
    async fn appends_with(linger: Duration) -> Vec<usize> {
        let dir = tempfile::tempdir().unwrap();
        let open =
            |name: &str| EmbeddedLog::open(dir.path().join(name), EmbeddedOptions::default());
        let target = Counting {
            inner: open("target").unwrap(),
            appends: Arc::default(),
        };
        target.ensure_topic(&TopicSpec::new("t", 1)).await.unwrap();
        let options = EmitterOptions {
            linger,
            ..EmitterOptions::default()
        };
        let emitter = SpooledEmitter::start(target.clone(), open("spool").unwrap(), options)
            .await
            .unwrap();
        emitter.emit("t", NewRecord::new("k", "0")).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        for i in 1..5 {
            emitter
                .emit("t", NewRecord::new("k", i.to_string()))
                .unwrap();
        }
        let stats = emitter.shutdown().await;
        assert_eq!((stats.delivered, stats.spooled), (5, 0));
        let appends = target.appends.lock().unwrap().clone();
        appends
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn linger_gathers_records_into_one_append() {
        assert_eq!(appends_with(Duration::from_millis(500)).await, vec![5]);
        // Without it, the first record goes alone (the others in one or
        // more appends, as they race the delivery task).
        let appends = appends_with(Duration::ZERO).await;
        assert_eq!((appends[0], appends.iter().sum::<usize>()), (1, 5));
    }

    #[test]
    fn batches_group_by_topic_keeping_order_within_each() {
        let batch: Vec<(String, NewRecord)> =
            [("a", "1"), ("b", "2"), ("a", "3"), ("c", "4"), ("b", "5")]
                .into_iter()
                .map(|(t, v)| (t.to_owned(), NewRecord::new("k", v)))
                .collect();
        let grouped: Vec<(String, String)> = group_by_topic(batch)
            .into_iter()
            .map(|(t, r)| (t, String::from_utf8(r.value).unwrap()))
            .collect();
        let want = [("a", "1"), ("a", "3"), ("b", "2"), ("b", "5"), ("c", "4")]
            .map(|(t, v)| (t.to_owned(), v.to_owned()));
        assert_eq!(grouped, want);
    }
}
