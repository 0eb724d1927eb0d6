//! Where an optimization request stands: [`ResultLookup`], and
//! [`TopicResults`], which answers from `esg-portfolio-events` itself.
//!
//! `TopicResults` follows the topic from its beginning in a consumer group
//! of its own (never committed, so it reads everything on every start) and
//! keeps the latest state of the most recent requests in memory (a few KB
//! per completed request; at most [`TopicResults::DEFAULT_CAPACITY`]
//! requests, the oldest forgotten first, [`TopicResults::len`] says how
//! many). A server with a read model of optimizations (the reporting
//! service's) plugs that in instead.
//!
//! A lookup must not say "unknown" for a request appended a moment ago that
//! the follower has not read yet, so a lookup that finds nothing final
//! first waits (bounded) until the follower has read up to the topic's end
//! as it is at the time of the call.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};
use ultracore_esg::{EsgPortfolioEvent, OptimizationFailed, OptimizationResult, TOPIC};
use ultracore_log::{Consumer, ConsumerOptions, Envelope, EventLog, Record, StartFrom, TopicInfo};
use uuid::Uuid;

use crate::{Error, Result};

/// The state of one optimization request.
#[derive(Debug, Clone, PartialEq)]
pub enum OptimizationStatus {
    /// Requested, not answered yet.
    Pending {
        /// The portfolio the request is for.
        portfolio_id: String,
    },
    /// Answered with a result.
    Completed(Box<OptimizationResult>),
    /// Answered with a failure.
    Failed(OptimizationFailed),
}

impl OptimizationStatus {
    /// `pending`, `completed` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizationStatus::Pending { .. } => "pending",
            OptimizationStatus::Completed(_) => "completed",
            OptimizationStatus::Failed(_) => "failed",
        }
    }

    /// The portfolio the request is for.
    pub fn portfolio_id(&self) -> &str {
        match self {
            OptimizationStatus::Pending { portfolio_id } => portfolio_id,
            OptimizationStatus::Completed(r) => &r.portfolio_id,
            OptimizationStatus::Failed(f) => &f.portfolio_id,
        }
    }

    /// Whether the request has its answer.
    pub fn is_final(&self) -> bool {
        !matches!(self, OptimizationStatus::Pending { .. })
    }
}

/// Finds the state of an optimization request by its id.
///
/// Implementations answer from the log or from a read model; either way an
/// answer reflects at least every event durable before the call began.
pub trait ResultLookup: Send + Sync + 'static {
    /// The latest state of request `request_id`, or `None` if no such
    /// request is known.
    ///
    /// # Errors
    ///
    /// When the source cannot be read (the log is down, the read model is
    /// unavailable); a missing request is `Ok(None)`, not an error.
    fn status(&self, request_id: Uuid) -> BoxFuture<'_, Result<Option<OptimizationStatus>>>;
}

/// How far the follower has read, per partition, and its last error.
#[derive(Debug, Clone, Default)]
struct Progress {
    next: HashMap<u32, u64>,
    error: Option<String>,
}

impl Progress {
    /// Whether everything below the high watermarks of `topic` was read.
    fn covers(&self, topic: &TopicInfo) -> bool {
        topic.partitions.iter().all(|p| {
            // Records before the log start are gone (retention): nothing to wait for.
            let read = self
                .next
                .get(&p.partition)
                .copied()
                .unwrap_or(0)
                .max(p.log_start_offset);
            read >= p.high_watermark
        })
    }
}

/// The latest state per request, bounded: past `capacity` requests the
/// one first seen longest ago is forgotten.
#[derive(Debug)]
struct Index {
    states: HashMap<Uuid, OptimizationStatus>,
    order: VecDeque<Uuid>,
    capacity: usize,
}

impl Index {
    fn new(capacity: usize) -> Index {
        Index {
            states: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn get(&self, id: &Uuid) -> Option<&OptimizationStatus> {
        self.states.get(id)
    }

    /// Sets a request's state; with `only_if_new` a known request keeps
    /// its state (a request read again never overwrites its answer).
    fn set(&mut self, id: Uuid, status: OptimizationStatus, only_if_new: bool) {
        if let Some(old) = self.states.get_mut(&id) {
            if !only_if_new {
                *old = status;
            }
            return;
        }
        while self.states.len() >= self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.states.remove(&oldest);
                }
                None => break,
            }
        }
        self.states.insert(id, status);
        self.order.push_back(id);
    }
}

/// A [`ResultLookup`] that follows `esg-portfolio-events` (see the module docs).
///
/// The follower runs until this value is dropped.
#[derive(Debug)]
pub struct TopicResults<L: EventLog> {
    log: L,
    index: Arc<Mutex<Index>>,
    progress: watch::Receiver<Progress>,
    catch_up: Duration,
    _stop: DropGuard,
}

/// How long a lookup waits for the follower to reach the topic's end.
const CATCH_UP: Duration = Duration::from_secs(5);

impl<L: EventLog> TopicResults<L> {
    /// Requests remembered at most by default.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// Requests remembered now (a metric).
    pub fn len(&self) -> usize {
        lock(&self.index).states.len()
    }

    /// Whether no request is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Creates the topic if needed and starts following it from the
    /// beginning on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// When the topic cannot be created or described.
    pub async fn start(log: L) -> Result<Self> {
        Self::start_with_capacity(log, Self::DEFAULT_CAPACITY).await
    }

    /// [`TopicResults::start`], remembering at most `capacity` requests.
    ///
    /// # Errors
    ///
    /// When the topic cannot be created or described.
    pub async fn start_with_capacity(log: L, capacity: usize) -> Result<Self> {
        ultracore_esg::ensure_topic(&log).await?;
        let index = Arc::new(Mutex::new(Index::new(capacity)));
        let (tx, progress) = watch::channel(Progress::default());
        let stop = CancellationToken::new();
        tokio::spawn(follow(log.clone(), index.clone(), tx, stop.clone()));
        Ok(TopicResults {
            log,
            index,
            progress,
            catch_up: CATCH_UP,
            _stop: stop.drop_guard(),
        })
    }

    /// Sets how long a lookup waits for the follower (default 5 s).
    pub fn with_catch_up(mut self, wait: Duration) -> Self {
        self.catch_up = wait;
        self
    }

    fn get(&self, request_id: Uuid) -> Option<OptimizationStatus> {
        lock(&self.index).get(&request_id).cloned()
    }

    async fn lookup(&self, request_id: Uuid) -> Result<Option<OptimizationStatus>> {
        if let Some(found) = self.get(request_id).filter(OptimizationStatus::is_final) {
            return Ok(Some(found));
        }
        let topic = self.log.describe_topic(TOPIC).await?;
        let mut progress = self.progress.clone();
        let caught_up = tokio::time::timeout(self.catch_up, async {
            loop {
                if progress.borrow_and_update().covers(&topic) {
                    return true;
                }
                if progress.changed().await.is_err() {
                    return false; // the follower is gone
                }
            }
        })
        .await
        .unwrap_or(false);
        let found = self.get(request_id);
        if !caught_up && found.is_none() {
            if let Some(reason) = self.progress.borrow().error.clone() {
                return Err(Error::ResultsUnavailable { reason });
            }
        }
        Ok(found)
    }
}

impl<L: EventLog> ResultLookup for TopicResults<L> {
    fn status(&self, request_id: Uuid) -> BoxFuture<'_, Result<Option<OptimizationStatus>>> {
        Box::pin(self.lookup(request_id))
    }
}

fn lock(index: &Mutex<Index>) -> MutexGuard<'_, Index> {
    // The index holds plain data updated in one statement per record, so a
    // panic elsewhere cannot leave it half-written: poisoning is ignored.
    index.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads the topic until `stop`, restarting after errors with a backoff.
async fn follow<L: EventLog>(
    log: L,
    index: Arc<Mutex<Index>>,
    progress: watch::Sender<Progress>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match follow_once(&log, &index, &progress, &stop).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, topic = TOPIC, "reading optimization results failed; retrying");
                progress.send_modify(|p| p.error = Some(e.to_string()));
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn follow_once<L: EventLog>(
    log: &L,
    index: &Mutex<Index>,
    progress: &watch::Sender<Progress>,
    stop: &CancellationToken,
) -> ultracore_log::Result<()> {
    // A group of its own that never commits: every start reads the whole topic.
    let group = format!("ultracore-mcp-results-{}", Uuid::now_v7());
    let mut consumer = log
        .consumer(ConsumerOptions::new(group, [TOPIC]).start(StartFrom::Earliest))
        .await?;
    loop {
        let records = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            r = consumer.poll(512, Duration::from_millis(200)) => r?,
        };
        {
            let mut index = lock(index);
            for record in &records {
                apply(&mut index, record);
            }
        }
        progress.send_modify(|p| {
            p.error = None;
            for r in &records {
                let next = p.next.entry(r.partition).or_default();
                *next = (*next).max(r.offset + 1);
            }
        });
    }
}

/// Folds one record into the index. Requests never overwrite answers (a
/// request read again after a restart, or a client's retry, stays answered).
fn apply(index: &mut Index, record: &Record) {
    let Ok(envelope) = Envelope::<EsgPortfolioEvent>::from_record(record) else {
        // Not an event of this topic: the optimization service dead-letters it.
        tracing::debug!(
            partition = record.partition,
            offset = record.offset,
            "skipping a record that is not an esg-portfolio-events envelope"
        );
        return;
    };
    match envelope.payload {
        EsgPortfolioEvent::Requested(r) => index.set(
            r.request_id,
            OptimizationStatus::Pending {
                portfolio_id: r.portfolio_id,
            },
            true,
        ),
        EsgPortfolioEvent::Completed(c) => {
            index.set(c.request_id, OptimizationStatus::Completed(c), false)
        }
        EsgPortfolioEvent::Failed(f) => {
            index.set(f.request_id, OptimizationStatus::Failed(f), false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ultracore_log::{PartitionInfo, Retention};

    fn topic(parts: &[(u32, u64, u64)]) -> TopicInfo {
        TopicInfo {
            name: TOPIC.into(),
            partitions: parts
                .iter()
                .map(
                    |&(partition, log_start_offset, high_watermark)| PartitionInfo {
                        partition,
                        log_start_offset,
                        high_watermark,
                    },
                )
                .collect(),
            retention: Some(Retention::Forever),
        }
    }

    #[test]
    fn the_index_keeps_answers_and_forgets_the_oldest_past_its_capacity() {
        let pending = || OptimizationStatus::Pending {
            portfolio_id: "pf".into(),
        };
        let mut index = Index::new(2);
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        index.set(ids[0], pending(), true);
        index.set(ids[1], pending(), true);
        index.set(ids[2], pending(), true);
        assert_eq!(index.states.len(), 2);
        assert!(index.get(&ids[0]).is_none(), "the oldest is forgotten");
        assert!(index.get(&ids[2]).is_some());
    }

    #[test]
    fn progress_covers_the_topic_only_when_every_partition_is_read() {
        let mut p = Progress::default();
        assert!(p.covers(&topic(&[(0, 0, 0), (1, 0, 0)])));
        assert!(!p.covers(&topic(&[(0, 0, 0), (1, 0, 3)])));
        p.next.insert(1, 3);
        assert!(p.covers(&topic(&[(0, 0, 0), (1, 0, 3)])));
        // Records removed by retention are not waited for.
        assert!(p.covers(&topic(&[(0, 7, 7), (1, 0, 3)])));
        assert!(!p.covers(&topic(&[(0, 7, 8), (1, 0, 3)])));
        // Offsets past 2^32.
        p.next.insert(0, (1 << 33) + 1);
        assert!(p.covers(&topic(&[(0, 0, (1 << 33) + 1), (1, 0, 3)])));
    }
}
