//! [`EventStore`]: load, decide, save, on any [`EventLog`].
//!
//! Each aggregate type has one topic, `es.<TYPE>`, keyed by aggregate id, so
//! one aggregate's events live in one partition, in order; the envelope's
//! `version` is the aggregate version. The store keeps a stream index (a
//! follower of those topics, in the [`Database`]) so a load reads one
//! aggregate's events, not the topic.
//!
//! # Concurrency
//!
//! The log has no conditional append, so a save is decided in two steps:
//! 1. Before appending, under a per-aggregate lock, the store catches its
//!    index up with the end of the topic and checks the expected version.
//!    Inside one process this already makes exactly one of two concurrent
//!    saves win (embedded: the data directory's LOCK means one writer
//!    process, so this is the whole story).
//! 2. After appending, it catches the index up past its own records and
//!    checks they were accepted. The index accepts an event only if it is
//!    the next version of its aggregate and starts a save or continues the
//!    save accepted last (`follower::accepts`). Partition order decides:
//!    of two saves from different processes that both claim version v+1,
//!    the one stored first wins; the other's events stay on the log but
//!    every reader (this index, every projection) skips them, and its
//!    writer gets [`Error::Conflict`]. No transactions needed.
//!
//! On Kafka, command handlers route the commands of an aggregate to the
//! instance that owns its partition ([`crate::Ownership`]: the
//! `es-writers.<TYPE>` consumer group), so conflicts between processes are
//! rare; during a rebalance two instances may briefly both write a
//! partition, and step 2 keeps that safe: one wins, the other gets a
//! conflict and the command is retried on the new owner.
//!
//! # Idempotency
//!
//! A save whose events' ids are all stored already is a no-op that returns
//! the stored version (a retry after a lost acknowledgement); a batch of
//! which only some ids are stored is refused ([`Error::PartlyStored`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use ultracore_log::{
    Envelope, EnvelopeBuilder, EventLog, EventLogExt, NewRecord, RawEnvelope, Record, Retention,
    TopicSpec,
};

use crate::follower::{lock, Follower, Sink, Until, COMMIT_HEADER};
use crate::storage::{Batch, IndexedEvent, Snapshot, Storage, INDEX_FOLLOWER};
use crate::{Aggregate, CommandError, Cut, Database, Error, Expected, Loaded, Result, StoredEvent};

/// The topic of an aggregate type.
pub fn topic_for(aggregate_type: &str) -> String {
    format!("es.{aggregate_type}")
}

/// Called around every append of a store's events: what a deployment adds
/// to the records on their way (a trace's `traceparent` header and its
/// send spans, as the service runtime's traced log adds them).
pub trait AppendHook: std::fmt::Debug + Send + Sync + 'static {
    /// Before `records` are appended to `topic`; may add headers. What it
    /// returns is handed to [`AppendHook::after`].
    fn before(&self, topic: &str, records: &mut [NewRecord]) -> Box<dyn std::any::Any + Send>;
    /// After the append, with its outcome.
    fn after(
        &self,
        state: Box<dyn std::any::Any + Send>,
        outcome: std::result::Result<&[ultracore_log::Appended], &ultracore_log::Error>,
    );
}

/// Settings of an [`EventStore`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Partitions of aggregate topics the store creates.
    pub partitions: u32,
    /// Snapshot interval per aggregate type, overriding `Aggregate::SNAPSHOT_EVERY` (0: never).
    pub snapshot_every: BTreeMap<String, u64>,
    /// Called around every append of events (none by default).
    pub append_hook: Option<Arc<dyn AppendHook>>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            partitions: 4,
            snapshot_every: BTreeMap::new(),
            append_hook: None,
        }
    }
}

impl StoreOptions {
    pub fn snapshot_every(mut self, aggregate_type: impl Into<String>, events: u64) -> Self {
        self.snapshot_every.insert(aggregate_type.into(), events);
        self
    }

    pub fn partitions(mut self, partitions: u32) -> Self {
        self.partitions = partitions;
        self
    }

    /// `hook` around every append of events.
    pub fn append_hook(mut self, hook: Arc<dyn AppendHook>) -> Self {
        self.append_hook = Some(hook);
        self
    }
}

/// The result of a save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    /// The aggregate version after the save.
    pub version: u64,
    /// Events stored by this call (0 for an idempotent repeat or no events).
    pub stored: usize,
}

/// Locks per aggregate: saves of one aggregate in this process take turns.
const STRIPES: usize = 64;

struct Inner<L: EventLog> {
    log: L,
    db: Database,
    options: StoreOptions,
    instance: String,
    /// The stream index of each aggregate topic.
    indexes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Follower<L>>>>>,
    stripes: Vec<tokio::sync::Mutex<()>>,
}

/// The event store: aggregates loaded from and saved to the log. Cheap to
/// clone; use one per process and log (clones share the locks and index).
pub struct EventStore<L: EventLog> {
    inner: Arc<Inner<L>>,
}

impl<L: EventLog> Clone for EventStore<L> {
    fn clone(&self) -> Self {
        EventStore {
            inner: self.inner.clone(),
        }
    }
}

impl<L: EventLog> std::fmt::Debug for EventStore<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore")
            .field("instance", &self.inner.instance)
            .field("options", &self.inner.options)
            .finish()
    }
}

struct IndexSink;

impl Sink for IndexSink {
    fn apply(
        &mut self,
        record: &Record,
        env: &RawEnvelope,
        batch: &mut Batch,
        _storage: &mut dyn Storage,
    ) -> Result<()> {
        batch.events.push(IndexedEvent {
            aggregate_type: env.aggregate_type.clone(),
            aggregate_id: env.aggregate_id.clone(),
            version: env.version,
            event_id: env.event_id,
            timestamp: env.timestamp.timestamp_millis(),
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            envelope: record.value.clone(),
        });
        Ok(())
    }
}

fn check_type(aggregate_type: &str) -> Result<()> {
    TopicSpec::validate_name(&topic_for(aggregate_type)).map_err(|_| {
        Error::InvalidArgument(format!(
            "aggregate type '{aggregate_type}' is invalid: use letters, digits, '.', '_' and '-'"
        ))
    })
}

impl<L: EventLog> EventStore<L> {
    pub fn new(log: L, db: Database, options: StoreOptions) -> Result<EventStore<L>> {
        let instance = lock(&db.storage).instance_id()?;
        Ok(EventStore {
            inner: Arc::new(Inner {
                log,
                db,
                options,
                instance,
                indexes: Mutex::new(HashMap::new()),
                stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            }),
        })
    }

    pub fn log(&self) -> &L {
        &self.inner.log
    }

    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    fn snapshot_every<A: Aggregate>(&self) -> u64 {
        self.inner
            .options
            .snapshot_every
            .get(A::TYPE)
            .copied()
            .unwrap_or(A::SNAPSHOT_EVERY)
    }

    /// The index follower of an aggregate type's topic. Creates the topic
    /// if `create` (saves); otherwise a missing topic is `None`: no events.
    async fn index(
        &self,
        aggregate_type: &str,
        create: bool,
    ) -> Result<Option<Arc<tokio::sync::Mutex<Follower<L>>>>> {
        check_type(aggregate_type)?;
        let topic = topic_for(aggregate_type);
        if let Some(f) = self
            .inner
            .indexes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&topic)
        {
            return Ok(Some(f.clone()));
        }
        // Event-sourced topics keep every event: an explicit retention, so
        // a log-wide default retention does not apply to them.
        let spec = TopicSpec::new(topic.clone(), self.inner.options.partitions)
            .with_retention(Retention::Forever);
        if create {
            self.inner.log.ensure_topic(&spec).await?;
        } else {
            match self.inner.log.describe_topic(&topic).await {
                Ok(_) => {}
                Err(ultracore_log::Error::UnknownTopic(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        // The generation (bumped by a rebuild) names the group, so a rebuilt
        // index reads from offset 0 in a fresh group.
        let generation = lock(&self.inner.db.storage).generation(INDEX_FOLLOWER)?;
        let group = format!("es-index.{}.g{generation}.{topic}", self.inner.instance);
        let follower = Follower::new(
            INDEX_FOLLOWER.to_owned(),
            group,
            vec![topic.clone()],
            true,
            1_000,
        );
        let mut map = self.inner.indexes.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Some(
            map.entry(topic)
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(follower)))
                .clone(),
        ))
    }

    /// Brings the stream index of an aggregate type up to `until`.
    async fn catch_up(&self, aggregate_type: &str, until: Until) -> Result<()> {
        self.catch_up_with(aggregate_type, until, false).await
    }

    async fn catch_up_with(&self, aggregate_type: &str, until: Until, create: bool) -> Result<()> {
        let Some(index) = self.index(aggregate_type, create).await? else {
            return Ok(());
        };
        let mut follower = index.lock().await;
        follower
            .catch_up(
                &self.inner.log,
                &self.inner.db.storage,
                &mut IndexSink,
                until,
            )
            .await?;
        Ok(())
    }

    /// Creates the topic of an aggregate type unless it exists.
    pub async fn ensure_topic(&self, aggregate_type: &str) -> Result<()> {
        self.index(aggregate_type, true).await.map(|_| ())
    }

    /// Deletes the stream index (and its checkpoints) and re-reads every
    /// aggregate topic given from offset 0; other types re-index on first use.
    /// Snapshots are kept: they carry their own version and schema.
    pub async fn rebuild_index(&self, aggregate_types: &[&str]) -> Result<()> {
        lock(&self.inner.db.storage).reset(INDEX_FOLLOWER)?;
        self.inner
            .indexes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        for t in aggregate_types {
            self.catch_up(t, Until::End).await?;
        }
        Ok(())
    }

    /// The current version of an aggregate (0: no events).
    pub async fn version(&self, aggregate_type: &str, id: &str) -> Result<u64> {
        self.catch_up(aggregate_type, Until::End).await?;
        Ok(lock(&self.inner.db.storage)
            .watermark(INDEX_FOLLOWER, aggregate_type, id)?
            .version)
    }

    /// Loads an aggregate at its latest version.
    pub async fn load<A: Aggregate>(&self, id: &str) -> Result<Loaded<A>> {
        self.load_at(id, Cut::Latest).await
    }

    /// Loads an aggregate as it was at `cut` (time travel): the latest usable
    /// snapshot at or before the cut, then the events after it.
    pub async fn load_at<A: Aggregate>(&self, id: &str, cut: Cut) -> Result<Loaded<A>> {
        self.catch_up(A::TYPE, Until::End).await?;
        let every = self.snapshot_every::<A>();
        let storage = &self.inner.db.storage;
        let (upto, snapshot) = {
            let mut s = lock(storage);
            let upto = match cut {
                Cut::Latest => u64::MAX,
                Cut::Version(v) => v,
                Cut::AsOf(t) => s.version_at(A::TYPE, id, t.timestamp_millis())?,
            };
            let snapshot = if every > 0 {
                s.snapshot(A::TYPE, id)?
            } else {
                None
            };
            (upto, snapshot)
        };
        let mut state = A::default();
        let mut version = 0;
        let mut from_snapshot = None;
        if let Some(snap) = snapshot.filter(|s| s.version <= upto) {
            if snap.state_schema != A::STATE_SCHEMA {
                tracing::info!(
                    aggregate_type = A::TYPE,
                    aggregate_id = id,
                    stored = snap.state_schema,
                    current = A::STATE_SCHEMA,
                    "snapshot of an older state schema ignored; rebuilding it"
                );
            } else {
                match serde_json::from_slice::<A>(&snap.state) {
                    Ok(s) => {
                        state = s;
                        version = snap.version;
                        from_snapshot = Some(snap.version);
                    }
                    Err(e) => {
                        tracing::warn!(aggregate_type = A::TYPE, aggregate_id = id, error = %e,
                            "snapshot cannot be read; rebuilding it from the events");
                    }
                }
            }
        }
        let rows = lock(storage).stream(A::TYPE, id, version, upto)?;
        let mut replayed = 0;
        for bytes in rows {
            let event = decode::<A>(id, version + 1, &bytes)?;
            state.apply(&event.payload);
            version = event.version;
            replayed += 1;
        }
        if cut == Cut::Latest && every > 0 && replayed >= every {
            self.put_snapshot(id, &state, version);
        }
        Ok(Loaded {
            id: id.to_owned(),
            state,
            version,
            from_snapshot,
            events_replayed: replayed,
        })
    }

    /// The events of an aggregate up to `cut`, in version order, typed (and upcast).
    pub async fn history<A: Aggregate>(&self, id: &str, cut: Cut) -> Result<Vec<StoredEvent<A>>> {
        self.raw_history(A::TYPE, id, cut)
            .await?
            .into_iter()
            .map(|raw| {
                let version = raw.version;
                raw.typed().map_err(|source| Error::Decode {
                    aggregate_type: A::TYPE.to_owned(),
                    aggregate_id: id.to_owned(),
                    version,
                    source,
                })
            })
            .collect()
    }

    /// The events of an aggregate of any type up to `cut`, as stored.
    pub async fn raw_history(
        &self,
        aggregate_type: &str,
        id: &str,
        cut: Cut,
    ) -> Result<Vec<RawEnvelope>> {
        self.catch_up(aggregate_type, Until::End).await?;
        let mut s = lock(&self.inner.db.storage);
        let upto = match cut {
            Cut::Latest => u64::MAX,
            Cut::Version(v) => v,
            Cut::AsOf(t) => s.version_at(aggregate_type, id, t.timestamp_millis())?,
        };
        s.stream(aggregate_type, id, 0, upto)?
            .into_iter()
            .enumerate()
            .map(|(i, bytes)| {
                RawEnvelope::from_bytes(&bytes).map_err(|source| Error::Decode {
                    aggregate_type: aggregate_type.to_owned(),
                    aggregate_id: id.to_owned(),
                    version: i as u64 + 1,
                    source,
                })
            })
            .collect()
    }

    /// Aggregate ids of a type (at most `limit`), in id order.
    pub async fn aggregate_ids(&self, aggregate_type: &str, limit: usize) -> Result<Vec<String>> {
        self.catch_up(aggregate_type, Until::End).await?;
        lock(&self.inner.db.storage).aggregate_ids(aggregate_type, limit)
    }

    fn put_snapshot<A: Aggregate>(&self, id: &str, state: &A, version: u64) {
        // A snapshot only saves time: failing to store one is not an error of the save.
        let result = serde_json::to_vec(state)
            .map_err(|e| Error::InvalidArgument(format!("state does not serialize: {e}")))
            .and_then(|bytes| {
                lock(&self.inner.db.storage).put_snapshot(
                    A::TYPE,
                    id,
                    &Snapshot {
                        version,
                        state_schema: A::STATE_SCHEMA,
                        state: bytes,
                    },
                )
            });
        match result {
            Ok(()) => tracing::debug!(
                aggregate_type = A::TYPE,
                aggregate_id = id,
                version,
                "snapshot stored"
            ),
            Err(e) => {
                tracing::warn!(aggregate_type = A::TYPE, aggregate_id = id, error = %e, "snapshot not stored")
            }
        }
    }

    /// Saves the events a command produced against `loaded`, expecting the
    /// aggregate still at `loaded.version`. Stores a snapshot when the save
    /// crosses a multiple of the snapshot interval.
    pub async fn save<A: Aggregate>(
        &self,
        loaded: &Loaded<A>,
        events: Vec<A::Event>,
    ) -> Result<Saved> {
        let builder = EnvelopeBuilder::new(A::TYPE, loaded.id.clone());
        let envelopes = events.into_iter().map(|e| builder.build(e)).collect();
        let saved = self
            .append::<A>(&loaded.id, Expected::Exact(loaded.version), envelopes)
            .await?;
        let every = self.snapshot_every::<A>();
        if saved.stored > 0 && every > 0 && saved.version / every != loaded.version / every {
            // Re-fold from the loaded state: the events as stored, upcast like any read.
            let mut state = loaded.state.clone();
            let rows = lock(&self.inner.db.storage).stream(
                A::TYPE,
                &loaded.id,
                loaded.version,
                saved.version,
            )?;
            for bytes in rows {
                state.apply(&decode::<A>(&loaded.id, 0, &bytes)?.payload);
            }
            self.put_snapshot(&loaded.id, &state, saved.version);
        }
        Ok(saved)
    }

    /// Loads the aggregate, decides the command and saves the events: one
    /// attempt; a concurrent save makes it fail with [`Error::Conflict`].
    pub async fn execute<A: Aggregate>(
        &self,
        id: &str,
        command: A::Command,
    ) -> Result<Saved, CommandError<A::Error>> {
        let loaded = self.load::<A>(id).await?;
        let events = loaded
            .state
            .handle(command)
            .map_err(CommandError::Rejected)?;
        Ok(self.save(&loaded, events).await?)
    }

    /// Appends envelopes to an aggregate if its version matches `expected`.
    /// The store assigns the versions (current + 1, …) and stamps the save id
    /// header; event ids, timestamps and correlation are kept, so resending
    /// the same envelopes after an unknown outcome is safe.
    pub async fn append<A: Aggregate>(
        &self,
        id: &str,
        expected: Expected,
        envelopes: Vec<Envelope<A::Event>>,
    ) -> Result<Saved> {
        let raw = envelopes.iter().map(Envelope::to_raw).collect();
        self.append_raw(A::TYPE, id, expected, raw).await
    }

    /// [`EventStore::append`] for untyped envelopes.
    pub async fn append_raw(
        &self,
        aggregate_type: &str,
        id: &str,
        expected: Expected,
        mut envelopes: Vec<RawEnvelope>,
    ) -> Result<Saved> {
        if id.is_empty() {
            return Err(Error::InvalidArgument(
                "an aggregate id cannot be empty".into(),
            ));
        }
        let stripe = stripe(id);
        let _turn = self.inner.stripes[stripe].lock().await;
        self.catch_up_with(aggregate_type, Until::End, true).await?;
        let storage = &self.inner.db.storage;
        let current = {
            let mut s = lock(storage);
            // Idempotency: a save whose events are all stored is a no-op.
            let mut found = Vec::with_capacity(envelopes.len());
            for e in &envelopes {
                found.push(s.find_event(e.event_id)?);
            }
            if let Some(stored) = found.iter().position(Option::is_some) {
                if let Some(missing) = found.iter().position(Option::is_none) {
                    return Err(Error::PartlyStored {
                        aggregate_type: aggregate_type.to_owned(),
                        aggregate_id: id.to_owned(),
                        event_id: envelopes[stored].event_id,
                        missing: envelopes[missing].event_id,
                    });
                }
                let version = found.iter().flatten().map(|f| f.2).max().unwrap_or(0);
                return Ok(Saved { version, stored: 0 });
            }
            s.watermark(INDEX_FOLLOWER, aggregate_type, id)?.version
        };
        if !expected.matches(current) {
            return Err(conflict(aggregate_type, id, expected, current));
        }
        if envelopes.is_empty() {
            return Ok(Saved {
                version: current,
                stored: 0,
            });
        }
        let commit = envelopes[0].event_id;
        let mut records = Vec::with_capacity(envelopes.len());
        for (i, e) in envelopes.iter_mut().enumerate() {
            e.aggregate_type = aggregate_type.to_owned();
            e.aggregate_id = id.to_owned();
            e.version = current + 1 + i as u64;
            records.push(e.to_record().with_header(COMMIT_HEADER, commit.to_string()));
        }
        let topic = topic_for(aggregate_type);
        let hook = self.inner.options.append_hook.as_ref();
        let state = hook.map(|h| h.before(&topic, &mut records));
        let appended = self.inner.log.append(&topic, records).await;
        if let (Some(h), Some(state)) = (hook, state) {
            h.after(state, appended.as_deref());
        }
        let appended = appended?;
        let mut past = BTreeMap::new();
        for a in &appended {
            let o = past.entry((topic.clone(), a.partition)).or_insert(a.offset);
            *o = (*o).max(a.offset);
        }
        self.catch_up(aggregate_type, Until::Past(past)).await?;
        // Which of our events did partition order accept?
        let mut s = lock(storage);
        let mut accepted = 0;
        for e in &envelopes {
            if s.find_event(e.event_id)?.is_some_and(|f| f.2 == e.version) {
                accepted += 1;
            }
        }
        let now = s.watermark(INDEX_FOLLOWER, aggregate_type, id)?.version;
        match accepted {
            n if n == envelopes.len() => {
                tracing::debug!(
                    aggregate_type,
                    aggregate_id = id,
                    version = now,
                    events = n,
                    "saved"
                );
                Ok(Saved {
                    version: current + n as u64,
                    stored: n,
                })
            }
            0 => Err(conflict(aggregate_type, id, expected, now)),
            n => Err(Error::Torn {
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: id.to_owned(),
                accepted: n,
                sent: envelopes.len(),
            }),
        }
    }
}

fn conflict(aggregate_type: &str, id: &str, expected: Expected, actual: u64) -> Error {
    Error::Conflict {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: id.to_owned(),
        expected,
        actual,
    }
}

fn stripe(id: &str) -> usize {
    (ultracore_log::murmur2(id.as_bytes()) as u32 as usize) % STRIPES
}

fn decode<A: Aggregate>(id: &str, version: u64, bytes: &[u8]) -> Result<Envelope<A::Event>> {
    RawEnvelope::from_bytes(bytes)
        .and_then(RawEnvelope::typed::<A::Event>)
        .map_err(|source| Error::Decode {
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: id.to_owned(),
            version,
            source,
        })
}
