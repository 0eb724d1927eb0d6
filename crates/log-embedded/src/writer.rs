//! The writer thread: the only code that appends to segment files.
//!
//! Appends from every task queue up on one channel. The thread takes
//! everything queued, writes it (one `write` per partition), then makes it
//! durable with one `fdatasync` per touched file, and only then publishes the
//! new high watermarks and acknowledges. Concurrent appends therefore share
//! one fsync (group commit): under load the batch grows and the per-record
//! cost of durability falls, while a lone append still waits for one fsync.
//!
//! fsync runs on this dedicated thread, never on the async runtime.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use ultracore_log::{now_millis, Appended, Error, NewRecord, Result};

use crate::log::TopicState;
use crate::partition::Partition;

pub enum Command {
    Append {
        topic: Arc<TopicState>,
        records: Vec<NewRecord>,
        /// The partition of each record.
        partitions: Vec<u32>,
        reply: oneshot::Sender<Result<Vec<Appended>>>,
    },
}

pub struct Writer {
    pub rx: Receiver<Command>,
    pub topics: Arc<dyn Fn() -> Vec<Arc<TopicState>> + Send + Sync>,
    pub changes: watch::Sender<u64>,
    pub failed: Arc<AtomicBool>,
    pub segment_bytes: u64,
    pub retention_interval: Duration,
}

/// Most commands taken into one group commit.
const MAX_BATCH: usize = 4096;

impl Writer {
    pub fn run(self) {
        let mut last_retention = Instant::now();
        let mut batch = Vec::new();
        loop {
            let wait = self
                .retention_interval
                .saturating_sub(last_retention.elapsed());
            match self.rx.recv_timeout(wait) {
                Ok(cmd) => batch.push(cmd),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.commit(std::mem::take(&mut batch));
            }
            if last_retention.elapsed() >= self.retention_interval {
                self.retention();
                last_retention = Instant::now();
            }
        }
    }

    fn commit(&self, batch: Vec<Command>) {
        if self.failed.load(Ordering::Acquire) {
            for Command::Append { reply, .. } in batch {
                let _ = reply.send(Err(failed_error()));
            }
            return;
        }
        let now = now_millis();
        let mut dirty: Vec<Arc<Partition>> = Vec::new();
        let mut results = Vec::with_capacity(batch.len());
        for Command::Append {
            topic,
            records,
            partitions,
            reply,
        } in batch
        {
            let r = stage(
                &topic,
                &records,
                &partitions,
                now,
                self.segment_bytes,
                &mut dirty,
            );
            results.push((r, reply));
        }
        let durable = self.make_durable(&dirty);
        match durable {
            Ok(()) => {
                for p in &dirty {
                    p.publish();
                }
                self.changes.send_modify(|v| *v = v.wrapping_add(1));
                for (r, reply) in results {
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                // After a failed write or fsync the page cache may hold data the
                // disk does not: nothing staged may ever be acknowledged, and
                // retrying fsync can falsely succeed. Refuse all further writes;
                // a restart recovers from what is really on disk.
                self.failed.store(true, Ordering::Release);
                tracing::error!(error = %e, "write or fsync failed; the log refuses further appends until restarted");
                let msg = e.to_string();
                for (_, reply) in results {
                    let _ = reply.send(Err(Error::Unavailable(format!(
                        "append not durable: {msg}"
                    ))));
                }
            }
        }
    }

    fn make_durable(&self, dirty: &[Arc<Partition>]) -> Result<()> {
        let mut files: Vec<(File, &Partition)> = Vec::with_capacity(dirty.len());
        for p in dirty {
            if let Some(f) = p.flush()? {
                files.push((f, p));
            }
        }
        let sync = |(f, p): &(File, &Partition)| f.sync_data().map_err(|e| Error::io(&p.dir, e));
        if files.len() <= 1 {
            return files.iter().try_for_each(sync);
        }
        // Several files: fsync them in parallel, they are independent.
        std::thread::scope(|s| {
            let handles: Vec<_> = files.iter().map(|f| s.spawn(move || sync(f))).collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().unwrap_or(Err(Error::Closed)))
        })
    }

    fn retention(&self) {
        let now = now_millis();
        for topic in (self.topics)() {
            for p in &topic.partitions {
                if let Err(e) = p.apply_retention(&topic.retention, now) {
                    tracing::warn!(topic = %topic.name, partition = p.id, error = %e, "retention failed");
                }
            }
        }
    }
}

fn stage(
    topic: &TopicState,
    records: &[NewRecord],
    partitions: &[u32],
    now: i64,
    segment_bytes: u64,
    dirty: &mut Vec<Arc<Partition>>,
) -> Result<Vec<Appended>> {
    let mut out = vec![
        Appended {
            partition: 0,
            offset: 0,
            timestamp: 0
        };
        records.len()
    ];
    // Group by partition, keeping input order within each.
    let mut by_partition: Vec<Vec<usize>> = vec![Vec::new(); topic.partitions.len()];
    for (i, &p) in partitions.iter().enumerate() {
        by_partition[p as usize].push(i);
    }
    let mut acks = Vec::new();
    for (p, idx) in by_partition.iter().enumerate() {
        if idx.is_empty() {
            continue;
        }
        let part = &topic.partitions[p];
        let recs: Vec<&NewRecord> = idx.iter().map(|&i| &records[i]).collect();
        acks.clear();
        part.stage(&recs, now, segment_bytes, &mut acks)?;
        for (&i, a) in idx.iter().zip(&acks) {
            out[i] = *a;
        }
        if !dirty.iter().any(|d| Arc::ptr_eq(d, part)) {
            dirty.push(part.clone());
        }
    }
    Ok(out)
}

pub fn failed_error() -> Error {
    Error::Unavailable("the embedded log stopped accepting appends after a write failure; restart the process to recover".into())
}
