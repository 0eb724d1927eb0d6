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
//!
//! The writer is fail-stop: once a write or fsync fails, on the commit path
//! or while rolling to a new segment, it acknowledges nothing more (see
//! [`Halt`]).

use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use ultracore_log::{now_millis, Appended, Error, NewRecord, Result};

use crate::log::{SyncMode, TopicState};
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
    pub halt: Arc<Halt>,
    pub segment_bytes: u64,
    pub retention_interval: Duration,
    pub sync: SyncMode,
    pub cache_window: Option<u64>,
}

/// Most commands taken into one group commit.
const MAX_BATCH: usize = 4096;

/// Why the writer stopped accepting appends, once it has. Set by the first
/// failed write or fsync and never cleared: after such a failure the page
/// cache may hold bytes the disk does not, a retried fsync can falsely
/// succeed, and a half-finished segment roll leaves the partition's state
/// unknown, so only a restart (recovering from what is really on disk) may
/// accept writes again.
#[derive(Debug, Default)]
pub struct Halt {
    reason: OnceLock<String>,
}

impl Halt {
    /// The failure that stopped the writer, if one did.
    pub fn reason(&self) -> Option<&str> {
        self.reason.get().map(String::as_str)
    }

    /// The error an append gets once the writer stopped.
    pub fn error(&self) -> Option<Error> {
        self.reason().map(stopped)
    }

    /// Records `cause` as the reason unless an earlier failure already
    /// stopped the writer; returns the reason.
    fn stop(&self, cause: &Error) -> &str {
        self.reason.get_or_init(|| cause.to_string())
    }
}

fn stopped(reason: &str) -> Error {
    Error::Stopped {
        reason: reason.to_owned(),
    }
}

impl Writer {
    pub fn run(self) {
        let mut pool = SyncPool::new(self.sync);
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
                self.commit(std::mem::take(&mut batch), &mut pool);
            }
            if last_retention.elapsed() >= self.retention_interval {
                self.retention();
                last_retention = Instant::now();
            }
        }
    }

    fn commit(&self, batch: Vec<Command>, pool: &mut SyncPool) {
        if let Some(reason) = self.halt.reason() {
            for Command::Append { reply, .. } in batch {
                let _ = reply.send(Err(stopped(reason)));
            }
            return;
        }
        let now = now_millis();
        let mut dirty: Vec<Arc<Partition>> = Vec::new();
        let mut staged = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        // Staging fails only when rolling to a new segment failed to write or
        // sync. The partition is then half rolled and earlier commands of this
        // batch sit staged in it, so the rest of the batch is not staged and
        // the failure stops the writer exactly like a failed commit.
        let mut failure = None;
        for Command::Append {
            topic,
            records,
            partitions,
            reply,
        } in batch
        {
            replies.push(reply);
            if failure.is_some() {
                continue;
            }
            match stage(
                &topic,
                &records,
                &partitions,
                now,
                self.segment_bytes,
                self.cache_window,
                &mut dirty,
            ) {
                Ok(acks) => staged.push(acks),
                Err(e) => failure = Some(e),
            }
        }
        let durable = match failure {
            Some(e) => Err(e),
            None => self.make_durable(&dirty, pool),
        };
        match durable {
            Ok(()) => {
                for p in &dirty {
                    p.publish();
                }
                self.changes.send_modify(|v| *v = v.wrapping_add(1));
                for (acks, reply) in staged.into_iter().zip(replies) {
                    let _ = reply.send(Ok(acks));
                }
                if let Some(window) = self.cache_window {
                    for p in &dirty {
                        p.release_cache(window);
                    }
                }
            }
            Err(e) => {
                // After a failed write or fsync the page cache may hold data the
                // disk does not: nothing staged may ever be acknowledged, and
                // retrying fsync can falsely succeed. Refuse all further writes;
                // a restart recovers from what is really on disk.
                let reason = self.halt.stop(&e);
                tracing::error!(error = %e, "write or fsync failed; the log refuses further appends until restarted");
                for reply in replies {
                    let _ = reply.send(Err(stopped(reason)));
                }
            }
        }
    }

    fn make_durable(&self, dirty: &[Arc<Partition>], pool: &mut SyncPool) -> Result<()> {
        let mut files: Vec<(File, PathBuf)> = Vec::with_capacity(dirty.len());
        for p in dirty {
            if let Some(f) = p.flush()? {
                files.push((f, p.dir.clone()));
            }
        }
        pool.sync_all(files)
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
    cache_window: Option<u64>,
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
        part.stage(&recs, now, segment_bytes, cache_window, &mut acks)?;
        for (&i, a) in idx.iter().zip(&acks) {
            out[i] = *a;
        }
        if !dirty.iter().any(|d| Arc::ptr_eq(d, part)) {
            dirty.push(part.clone());
        }
    }
    Ok(out)
}

type SyncJob = (File, PathBuf, mpsc::Sender<Result<()>>);

/// Threads that fdatasync files in parallel when one group commit touched
/// several partitions: the fsyncs are independent, and waiting for them one
/// after another would multiply the acknowledgement latency by the number of
/// partitions. The threads live as long as the writer (spawning per batch
/// costs more than the fsync saves).
struct SyncPool {
    workers: Vec<mpsc::Sender<SyncJob>>,
    /// Several files are made durable with one `syncfs`.
    whole_filesystem: bool,
}

fn sync_one(file: &File, path: &std::path::Path) -> Result<()> {
    file.sync_data().map_err(|e| Error::io(path, e))
}

impl SyncPool {
    fn new(mode: SyncMode) -> SyncPool {
        let whole_filesystem = mode == SyncMode::Auto && syncfs_reports_errors();
        tracing::debug!(
            whole_filesystem,
            "group commits touching several files use syncfs"
        );
        SyncPool {
            workers: Vec::new(),
            whole_filesystem,
        }
    }

    fn sync_all(&mut self, mut files: Vec<(File, PathBuf)>) -> Result<()> {
        if self.whole_filesystem && files.len() > 1 {
            return syncfs(&files[0].0, &files[0].1);
        }
        let Some((own_file, own_path)) = files.pop() else {
            return Ok(());
        };
        while self.workers.len() < files.len() {
            let (tx, rx) = mpsc::channel::<SyncJob>();
            std::thread::Builder::new()
                .name("ultracore-log-fsync".into())
                .spawn(move || {
                    for (file, path, done) in rx {
                        let _ = done.send(sync_one(&file, &path));
                    }
                })
                .map_err(|e| Error::io(&own_path, e))?;
            self.workers.push(tx);
        }
        let (done_tx, done_rx) = mpsc::channel();
        let mut pending = 0;
        for ((file, path), worker) in files.into_iter().zip(&self.workers) {
            worker
                .send((file, path, done_tx.clone()))
                .map_err(|_| Error::Closed)?;
            pending += 1;
        }
        let mut result = sync_one(&own_file, &own_path);
        for _ in 0..pending {
            let r = done_rx.recv().unwrap_or(Err(Error::Closed));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

/// Flushes every dirty page and the journal of the filesystem holding `file`.
#[cfg(target_os = "linux")]
fn syncfs(file: &File, path: &std::path::Path) -> Result<()> {
    rustix::fs::syncfs(file).map_err(|e| Error::io(path, std::io::Error::from(e)))
}

#[cfg(not(target_os = "linux"))]
fn syncfs(file: &File, path: &std::path::Path) -> Result<()> {
    sync_one(file, path)
}

/// `syncfs` reports writeback errors only since Linux 5.8; before, a failed
/// write could go unnoticed, so older kernels sync file by file.
#[cfg(target_os = "linux")]
fn syncfs_reports_errors() -> bool {
    let uname = rustix::system::uname();
    let release = uname.release().to_string_lossy();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    matches!((parts.next(), parts.next()), (Some(major), Some(minor)) if (major, minor) >= (5, 8))
}

#[cfg(not(target_os = "linux"))]
fn syncfs_reports_errors() -> bool {
    false
}
