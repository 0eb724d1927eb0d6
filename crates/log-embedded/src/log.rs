//! [`EmbeddedLog`]: the handle services use, and the [`EventLog`] impl.
//!
//! Layout of the data directory:
//!
//! ```text
//! LOCK                          single-writer lock, holds the owner's pid
//! topics/<topic>/topic.json     partitions and retention
//! topics/<topic>/<partition>/   segments: 000…000.log, .index, .timeindex
//! groups/<group>.json           committed offsets of a consumer group
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};
use ultracore_log::{
    files, partition_for_key, Appended, ConsumerOptions, Error, EventLog, GroupLag, NewRecord,
    PartitionInfo, Result, Retention, TopicInfo, TopicSpec,
};

use crate::codec::MAX_RECORD_BYTES;
use crate::consumer::EmbeddedConsumer;
use crate::groups::Groups;
use crate::lock::DirLock;
use crate::partition::{Mode, Partition};
use crate::segment::sync_dir;
use crate::writer::{Command, Halt, Writer};

/// Settings of the embedded log.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// A segment is sealed and a new one started past this size.
    pub segment_bytes: u64,
    /// Retention of topics created without one (`EVENT_STORE_RETENTION_DAYS`).
    pub default_retention: Retention,
    /// How often the writer deletes segments past retention.
    pub retention_interval: Duration,
    /// How a group commit that touched several files is made durable.
    pub sync: SyncMode,
    /// Page cache kept per partition: the newest this many bytes stay
    /// cached for consumers at the tail, older ones are released once
    /// durable (`None` leaves it all to the kernel). Appends then reuse
    /// pages just released instead of taking fresh ones, which keeps the
    /// cost of writing flat over long runs.
    pub page_cache_window: Option<u64>,
}

/// How the writer makes a group commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// One `syncfs` for a commit that touched several files (Linux ≥ 5.8,
    /// which reports writeback errors from `syncfs`); `fdatasync` for one
    /// file, and everywhere else. `syncfs` costs one journal commit where
    /// parallel `fdatasync`s cost several, but it also flushes other
    /// programs' dirty data on the same filesystem: give the data directory
    /// its own filesystem for steady latency, or choose [`SyncMode::PerFile`].
    #[default]
    Auto,
    /// One `fdatasync` per touched file, in parallel.
    PerFile,
}

impl std::str::FromStr for SyncMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(SyncMode::Auto),
            "per-file" => Ok(SyncMode::PerFile),
            other => Err(format!(
                "sync mode '{other}' is not known: use 'auto' or 'per-file'"
            )),
        }
    }
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            segment_bytes: 128 * 1024 * 1024,
            default_retention: Retention::Forever,
            retention_interval: Duration::from_secs(60),
            sync: SyncMode::Auto,
            page_cache_window: Some(32 * 1024 * 1024),
        }
    }
}

/// `topic.json`. No age and no size limit means every record is kept: the
/// log's default retention is resolved when the topic is created, so the
/// file never says "default".
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicMeta {
    partitions: u32,
    #[serde(default)]
    retention_ms: Option<u64>,
    #[serde(default)]
    retention_bytes: Option<u64>,
}

impl TopicMeta {
    fn new(partitions: u32, retention: Retention) -> Self {
        TopicMeta {
            partitions,
            retention_ms: retention
                .max_age()
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            retention_bytes: retention.max_bytes(),
        }
    }

    fn retention(&self) -> Retention {
        // Earlier versions wrote a size limit of i64::MAX bytes for topics
        // kept forever (event-sourced ones). No partition reaches 8 EiB, so
        // such a limit is no limit and those topics read back as `Forever`.
        let max_bytes = self.retention_bytes.filter(|b| *b < i64::MAX as u64);
        Retention::limited(self.retention_ms.map(Duration::from_millis), max_bytes)
    }
}

#[derive(Debug)]
pub struct TopicState {
    pub name: String,
    pub partitions: Vec<Arc<Partition>>,
    pub retention: Retention,
    /// Spreads unkeyed records over partitions.
    round_robin: AtomicU32,
}

struct Inner {
    dir: PathBuf,
    mode: Mode,
    topics: RwLock<BTreeMap<String, Arc<TopicState>>>,
    writer: Option<Sender<Command>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub(crate) groups: Groups,
    pub(crate) changes: watch::Sender<u64>,
    halt: Arc<Halt>,
    options: EmbeddedOptions,
    create_lock: Mutex<()>,
    _lock: Option<DirLock>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedLog")
            .field("dir", &self.dir)
            .field("mode", &self.mode)
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer after it committed what was queued.
        self.writer.take();
        if let Some(t) = self
            .writer_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = t.join();
        }
    }
}

/// The embedded, durable, single-node event log. Cheap to clone; all clones
/// share one writer thread. Dropping the last clone flushes and releases the
/// data directory.
#[derive(Clone, Debug)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

fn topics_dir(dir: &Path) -> PathBuf {
    dir.join("topics")
}

impl EmbeddedLog {
    /// Opens the data directory as its single writer, creating it if needed,
    /// and recovers every partition (a torn tail is truncated with a warning).
    /// Fails with [`Error::Locked`] if another process writes to it.
    pub fn open(dir: impl AsRef<Path>, options: EmbeddedOptions) -> Result<EmbeddedLog> {
        let dir = dir.as_ref().to_owned();
        files::create_dir_all(&topics_dir(&dir)).map_err(|e| Error::io(&dir, e))?;
        let lock = DirLock::acquire(&dir)?;
        Self::open_with(dir, options, Mode::Writer, Some(lock))
    }

    /// Opens the data directory for reading beside a running writer. Appends
    /// and commits fail with [`Error::ReadOnly`]; consumers follow new records.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<EmbeddedLog> {
        let dir = dir.as_ref().to_owned();
        if !topics_dir(&dir).is_dir() {
            return Err(Error::io(
                &dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no UltraCore data directory here",
                ),
            ));
        }
        Self::open_with(dir, EmbeddedOptions::default(), Mode::ReadOnly, None)
    }

    fn open_with(
        dir: PathBuf,
        options: EmbeddedOptions,
        mode: Mode,
        lock: Option<DirLock>,
    ) -> Result<EmbeddedLog> {
        let groups = Groups::new(dir.join("groups"), mode == Mode::Writer)?;
        let (changes, _) = watch::channel(0u64);
        let halt = Arc::new(Halt::default());
        let mut inner = Inner {
            dir: dir.clone(),
            mode,
            topics: RwLock::new(BTreeMap::new()),
            writer: None,
            writer_thread: Mutex::new(None),
            groups,
            changes,
            halt: halt.clone(),
            options: options.clone(),
            create_lock: Mutex::new(()),
            _lock: lock,
        };
        let topics = load_topics(&dir, mode)?;
        *inner.topics.write().unwrap_or_else(|e| e.into_inner()) = topics;
        if mode == Mode::Writer {
            let (tx, rx) = std::sync::mpsc::channel();
            inner.writer = Some(tx);
            let log = EmbeddedLog {
                inner: Arc::new(inner),
            };
            let weak = Arc::downgrade(&log.inner);
            let writer = Writer {
                rx,
                topics: Arc::new(move || {
                    weak.upgrade().map(|i| i.topic_list()).unwrap_or_default()
                }),
                changes: log.inner.changes.clone(),
                halt,
                segment_bytes: options.segment_bytes,
                retention_interval: options.retention_interval,
                sync: options.sync,
                cache_window: options.page_cache_window,
            };
            let handle = std::thread::Builder::new()
                .name("ultracore-log-writer".into())
                .spawn(move || writer.run())
                .map_err(|e| Error::io(&dir, e))?;
            *log.inner
                .writer_thread
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(handle);
            return Ok(log);
        }
        Ok(EmbeddedLog {
            inner: Arc::new(inner),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn is_read_only(&self) -> bool {
        self.inner.mode == Mode::ReadOnly
    }

    /// Why the log stopped accepting writes, if it did: a write or fsync
    /// failed (commonly a full disk), while committing appends or while
    /// rolling to a new segment. From then on every append fails with
    /// [`Error::Stopped`] carrying this reason, and nothing more is
    /// acknowledged; it stays so until the process restarts, and the restart
    /// recovers every record acknowledged before. A health check reports it
    /// as "the log stopped accepting writes: <reason>". Always `None` for a
    /// read-only handle.
    pub fn stopped(&self) -> Option<&str> {
        self.inner.halt.reason()
    }

    pub(crate) fn topic(&self, name: &str) -> Result<Arc<TopicState>> {
        if let Some(t) = self
            .inner
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(t.clone());
        }
        if self.is_read_only() {
            self.refresh_topics()?;
            if let Some(t) = self
                .inner
                .topics
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(name)
            {
                return Ok(t.clone());
            }
        }
        Err(Error::UnknownTopic(name.to_owned()))
    }

    /// Read-only handles: picks up topics created since opening, and new records.
    pub(crate) fn refresh_topics(&self) -> Result<()> {
        let fresh = load_topics(&self.inner.dir, Mode::ReadOnly)?;
        let mut topics = self.inner.topics.write().unwrap_or_else(|e| e.into_inner());
        for (name, t) in fresh {
            topics.entry(name).or_insert(t);
        }
        Ok(())
    }

    pub(crate) fn groups(&self) -> &Groups {
        &self.inner.groups
    }

    pub(crate) fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    pub(crate) fn notify_changes(&self) {
        self.inner.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn describe(&self, t: &TopicState) -> Result<TopicInfo> {
        if self.is_read_only() {
            for p in &t.partitions {
                p.refresh()?;
            }
        }
        Ok(TopicInfo {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.id,
                    log_start_offset: p.log_start(),
                    high_watermark: p.high_watermark(),
                })
                .collect(),
            retention: Some(t.retention),
        })
    }

    /// Bytes stored by a topic (all partitions and segments).
    pub fn topic_size_bytes(&self, topic: &str) -> Result<u64> {
        self.topic(topic)?
            .partitions
            .iter()
            .map(|p| p.size_bytes())
            .sum()
    }
}

impl Inner {
    fn topic_list(&self) -> Vec<Arc<TopicState>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

fn load_topics(dir: &Path, mode: Mode) -> Result<BTreeMap<String, Arc<TopicState>>> {
    let root = topics_dir(dir);
    let mut topics = BTreeMap::new();
    let entries = std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&root, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let meta_path = entry.path().join("topic.json");
        let Ok(bytes) = std::fs::read(&meta_path) else {
            continue;
        }; // a topic still being created
        let meta: TopicMeta = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            segment: meta_path.clone(),
            position: 0,
            reason: format!("topic metadata is not valid: {e}"),
        })?;
        let topic = open_topic(&entry.path(), &name, &meta, mode)?;
        topics.insert(name, Arc::new(topic));
    }
    Ok(topics)
}

fn open_topic(dir: &Path, name: &str, meta: &TopicMeta, mode: Mode) -> Result<TopicState> {
    let shared: Arc<str> = Arc::from(name);
    let partitions = (0..meta.partitions)
        .map(|p| Partition::open(shared.clone(), p, dir.join(p.to_string()), mode).map(Arc::new))
        .collect::<Result<Vec<_>>>()?;
    Ok(TopicState {
        name: name.to_owned(),
        partitions,
        retention: meta.retention(),
        round_robin: AtomicU32::new(0),
    })
}

impl EventLog for EmbeddedLog {
    type Consumer = EmbeddedConsumer;

    async fn create_topic(&self, spec: &TopicSpec) -> Result<()> {
        TopicSpec::validate_name(&spec.name)?;
        if spec.partitions == 0 || spec.partitions > 10_000 {
            return Err(Error::InvalidArgument(format!(
                "a topic needs 1 to 10000 partitions, not {}",
                spec.partitions
            )));
        }
        if self.is_read_only() {
            return Err(Error::ReadOnly("creating a topic"));
        }
        let this = self.clone();
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || {
            let _guard = this
                .inner
                .create_lock
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if this
                .inner
                .topics
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&spec.name)
            {
                return Err(Error::TopicExists(spec.name.clone()));
            }
            let retention = spec
                .retention
                .unwrap_or(this.inner.options.default_retention);
            let meta = TopicMeta::new(spec.partitions, retention);
            let root = topics_dir(&this.inner.dir);
            let dir = root.join(&spec.name);
            files::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let topic = open_topic(&dir, &spec.name, &meta, Mode::Writer)?;
            // topic.json last, atomically: its presence means the topic is complete.
            let tmp = dir.join(".topic.json.tmp");
            let json = serde_json::to_vec_pretty(&meta)
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            files::write(&tmp, &json)
                .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
                .map_err(|e| Error::io(&tmp, e))?;
            std::fs::rename(&tmp, dir.join("topic.json")).map_err(|e| Error::io(&dir, e))?;
            sync_dir(&dir)?;
            sync_dir(&root)?;
            this.inner
                .topics
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(spec.name.clone(), Arc::new(topic));
            tracing::info!(topic = %spec.name, partitions = spec.partitions, "topic created");
            Ok(())
        })
        .await
        .map_err(|_| Error::Closed)?
    }

    async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        if self.is_read_only() {
            self.refresh_topics()?;
        }
        self.inner
            .topic_list()
            .iter()
            .map(|t| self.describe(t))
            .collect()
    }

    async fn describe_topic(&self, topic: &str) -> Result<TopicInfo> {
        let t = self.topic(topic)?;
        self.describe(&t)
    }

    async fn append(&self, topic: &str, records: Vec<NewRecord>) -> Result<Vec<Appended>> {
        let writer = self
            .inner
            .writer
            .as_ref()
            .ok_or(Error::ReadOnly("append"))?;
        if let Some(e) = self.inner.halt.error() {
            return Err(e);
        }
        let state = self.topic(topic)?;
        let n = state.partitions.len() as u32;
        let mut partitions = Vec::with_capacity(records.len());
        for r in &records {
            let size = r.value.len() + r.key.as_ref().map_or(0, Vec::len);
            if size > MAX_RECORD_BYTES {
                return Err(Error::RecordTooLarge {
                    size,
                    max: MAX_RECORD_BYTES,
                });
            }
            if r.headers.len() > u16::MAX as usize
                || r.headers.iter().any(|h| h.key.len() > u16::MAX as usize)
            {
                return Err(Error::InvalidArgument(
                    "too many headers, or a header key over 65535 bytes".into(),
                ));
            }
            let p = match (r.partition, &r.key) {
                (Some(p), _) if p < n => p,
                (Some(p), _) => {
                    return Err(Error::UnknownPartition {
                        topic: topic.to_owned(),
                        partition: p,
                        partitions: n,
                    })
                }
                (None, Some(key)) => partition_for_key(key, n),
                (None, None) => state.round_robin.fetch_add(1, Ordering::Relaxed) % n,
            };
            partitions.push(p);
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        writer
            .send(Command::Append {
                topic: state,
                records,
                partitions,
                reply,
            })
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    async fn consumer(&self, options: ConsumerOptions) -> Result<EmbeddedConsumer> {
        EmbeddedConsumer::join(self.clone(), options)
    }

    async fn list_groups(&self) -> Result<Vec<String>> {
        self.inner.groups.list()
    }

    async fn group_lag(&self, group: &str) -> Result<Vec<GroupLag>> {
        let committed = self.inner.groups.all_committed(group)?;
        let mut topics: Vec<&String> = committed.keys().map(|(t, _)| t).collect();
        topics.dedup();
        let mut out = Vec::new();
        for name in topics {
            let Ok(topic) = self.topic(name) else {
                continue;
            }; // committed on a since-deleted topic
            for p in self.describe(&topic)?.partitions {
                out.push(GroupLag {
                    group: group.to_owned(),
                    topic: name.clone(),
                    partition: p.partition,
                    committed: committed.get(&(name.clone(), p.partition)).copied(),
                    log_start_offset: p.log_start_offset,
                    high_watermark: p.high_watermark,
                });
            }
        }
        Ok(out)
    }

    async fn timestamp_at(&self, topic: &str, partition: u32, offset: u64) -> Result<Option<i64>> {
        let state = self.topic(topic)?;
        let part =
            state
                .partitions
                .get(partition as usize)
                .ok_or_else(|| Error::UnknownPartition {
                    topic: topic.to_owned(),
                    partition,
                    partitions: state.partitions.len() as u32,
                })?;
        if self.is_read_only() {
            part.refresh()?;
        }
        // A positional read of a few KiB, mostly from the page cache: the
        // same as a consumer's poll does inline, too short for a blocking thread.
        part.timestamp_at(offset)
    }
}
