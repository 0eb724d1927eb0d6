//! Fire-and-forget publishing: the caller hands an event over and goes on;
//! a background task opens the log, creates topics on first use, appends in
//! batches and retries transient failures.
//!
//! This is for events that record what a computation did (risk metrics,
//! optimization results, queries): the computation must not wait for the log,
//! and a log that is down must not fail it. Events that may never be lost
//! while the log is down need a durable spool in front of the log instead.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{EventLog, EventLogExt, NewRecord, Result, TopicSpec};

/// How a [`Publisher`] behaves.
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// Events waiting for the log; beyond this, [`Publisher::publish`] refuses.
    pub capacity: usize,
    /// Partitions of topics the publisher creates.
    pub partitions: u32,
    /// Attempts per batch before its events count as failed.
    pub attempts: u32,
    /// Wait before the first retry; doubles each retry.
    pub backoff: Duration,
    /// Most events appended in one call.
    pub max_batch: usize,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        PublisherOptions {
            capacity: 10_000,
            partitions: 3,
            attempts: 3,
            backoff: Duration::from_millis(50),
            max_batch: 500,
        }
    }
}

/// Why [`Publisher::publish`] did not take an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("{0} events are already waiting for the log; event dropped (raise the publisher's capacity or check the log)")]
    QueueFull(usize),
    #[error("the publisher has stopped: {0}")]
    Stopped(String),
}

/// What happened to the events handed to a [`Publisher`], returned by
/// [`Publisher::close`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Durable on the log.
    pub published: u64,
    /// Given up after every attempt failed, or never attempted because the log did not open.
    pub failed: u64,
    /// Refused by `publish` because the queue was full.
    pub dropped: u64,
    /// Still queued when `close` gave up waiting.
    pub abandoned: u64,
    /// The last error the log returned, if any.
    pub last_error: Option<String>,
}

impl PublishReport {
    /// Every event handed over is on the log.
    pub fn is_complete(&self) -> bool {
        self.failed == 0 && self.dropped == 0 && self.abandoned == 0
    }
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    published: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// Hands events to a background task that appends them to the log.
///
/// `publish` never waits: it queues the record or refuses it at once.
/// [`close`](Publisher::close) waits (up to a limit) until everything queued
/// is on the log and says what happened to each event.
#[derive(Debug)]
pub struct Publisher {
    tx: mpsc::Sender<(String, NewRecord)>,
    counters: Arc<Counters>,
    task: JoinHandle<Option<String>>,
    capacity: usize,
}

impl Publisher {
    /// Starts a publisher on an open log. Must be called within a Tokio runtime.
    pub fn new<L: EventLog>(log: L, options: PublisherOptions) -> Self {
        Self::spawn(async move { Ok::<_, crate::Error>(log) }, options)
    }

    /// Starts a publisher whose log is opened in the background, so the
    /// caller does not wait for the log to open either. If it fails to open,
    /// every event counts as failed and the report carries the reason.
    pub fn spawn<L, F, E>(open: F, options: PublisherOptions) -> Self
    where
        L: EventLog,
        F: Future<Output = std::result::Result<L, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let capacity = options.capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(run(open, rx, counters.clone(), options));
        Publisher {
            tx,
            counters,
            task,
            capacity,
        }
    }

    /// Queues `record` for `topic` without waiting.
    pub fn publish(&self, topic: &str, record: NewRecord) -> Result<(), PublishError> {
        match self.tx.try_send((topic.to_owned(), record)) {
            Ok(()) => {
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(topic, "publisher queue full; event dropped");
                Err(PublishError::QueueFull(self.capacity))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                Err(PublishError::Stopped("its task has ended".into()))
            }
        }
    }

    /// Stops taking events and waits up to `timeout` for the queued ones to
    /// reach the log.
    pub async fn close(self, timeout: Duration) -> PublishReport {
        let Publisher {
            tx, counters, task, ..
        } = self;
        drop(tx);
        let mut task = task;
        let last_error = match tokio::time::timeout(timeout, &mut task).await {
            Ok(Ok(err)) => err,
            Ok(Err(join)) => Some(format!("publisher task failed: {join}")),
            Err(_) => {
                task.abort();
                Some(format!(
                    "gave up waiting for the log after {} ms",
                    timeout.as_millis()
                ))
            }
        };
        let accepted = counters.accepted.load(Ordering::Relaxed);
        let published = counters.published.load(Ordering::Relaxed);
        let failed = counters.failed.load(Ordering::Relaxed);
        PublishReport {
            published,
            failed,
            dropped: counters.dropped.load(Ordering::Relaxed),
            abandoned: accepted.saturating_sub(published + failed),
            last_error,
        }
    }
}

async fn run<L, F, E>(
    open: F,
    mut rx: mpsc::Receiver<(String, NewRecord)>,
    counters: Arc<Counters>,
    options: PublisherOptions,
) -> Option<String>
where
    L: EventLog,
    F: Future<Output = std::result::Result<L, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let opened = open.await.map_err(|e| format!("the log did not open: {e}"));
    let log = match opened {
        Ok(log) => log,
        Err(reason) => {
            tracing::warn!("{reason}; events are not published");
            while rx.recv().await.is_some() {
                counters.failed.fetch_add(1, Ordering::Relaxed);
            }
            return Some(reason);
        }
    };
    let mut known: HashSet<String> = HashSet::new();
    let mut last_error = None;
    let mut pending = Vec::new();
    while let Some(first) = rx.recv().await {
        pending.push(first);
        while pending.len() < options.max_batch {
            match rx.try_recv() {
                Ok(item) => pending.push(item),
                Err(_) => break,
            }
        }
        // One append per run of events for the same topic keeps their order.
        let mut batch = pending.drain(..).peekable();
        while let Some((topic, record)) = batch.next() {
            let mut records = vec![record];
            while let Some((_, next)) = batch.next_if(|(t, _)| *t == topic) {
                records.push(next);
            }
            let n = records.len() as u64;
            match append(&log, &mut known, &topic, records, &options).await {
                Ok(()) => {
                    counters.published.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(topic, events = n, error = %e, "events not published");
                    counters.failed.fetch_add(n, Ordering::Relaxed);
                    last_error = Some(format!("{topic}: {e}"));
                }
            }
        }
    }
    last_error
}

async fn append<L: EventLog>(
    log: &L,
    known: &mut HashSet<String>,
    topic: &str,
    records: Vec<NewRecord>,
    options: &PublisherOptions,
) -> Result<()> {
    let mut backoff = options.backoff;
    let mut attempt = 1;
    loop {
        let result = async {
            if !known.contains(topic) {
                log.ensure_topic(&TopicSpec::new(topic, options.partitions))
                    .await?;
                known.insert(topic.to_owned());
            }
            log.append(topic, records.clone()).await.map(drop)
        }
        .await;
        match result {
            Ok(()) => return Ok(()),
            Err(e) if attempt >= options.attempts.max(1) => return Err(e),
            Err(e) => {
                tracing::debug!(topic, attempt, error = %e, "append failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
        }
    }
}
