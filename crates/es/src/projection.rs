//! Projections: the read side. A projection is a consumer with a checkpoint
//! that maintains read-model documents in the [`Database`].
//!
//! Each batch of records is applied in one storage transaction together
//! with the projection's watermarks and checkpoints, and only then is the
//! consumer group's position committed. So a projection stopped anywhere
//! (before, during or after that transaction) applies every event exactly
//! once when it starts again; and it skips events stored twice on the log
//! or belonging to a losing concurrent save (see `follower`).
//!
//! A rebuild deletes the projection's documents, watermarks and checkpoints
//! and bumps its generation in one transaction; the generation names the
//! consumer group (`projection.<name>.<db instance>.g<generation>`), so the
//! rebuild reads from offset 0 in a fresh group, and a rebuild interrupted
//! half-way simply continues.

use std::collections::BTreeMap;
use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use ultracore_log::{EventLog, RawEnvelope, Record, TopicSpec};

use crate::follower::{lock, CatchUp, Follower, Sink, Until};
use crate::storage::{Batch, Storage, INDEX_FOLLOWER};
use crate::{Database, Error, Result};

/// A read model fed by events.
pub trait Projection: Send + 'static {
    /// The projection's name: its documents' namespace and its consumer
    /// group's stem. Letters, digits, `.`, `_`, `-`.
    fn name(&self) -> &str;

    /// The topics it reads (for aggregates: `es.<TYPE>`, see [`crate::topic_for`]).
    fn topics(&self) -> Vec<String>;

    /// Applies one event to the read model. Called once per accepted event,
    /// in partition order. An error stops the projection; nothing of the
    /// batch is stored, and the next start retries it.
    fn apply(&mut self, event: &RawEnvelope, views: &mut Views<'_>) -> Result<()>;
}

/// The read model as a projection sees it while applying a batch: JSON
/// documents by view and key. Writes are buffered and stored with the batch.
pub struct Views<'a> {
    projection: &'a str,
    batch: &'a mut Batch,
    storage: &'a mut dyn Storage,
}

impl std::fmt::Debug for Views<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Views")
            .field("projection", &self.projection)
            .finish()
    }
}

impl Views<'_> {
    /// A document, as the batch has left it so far.
    pub fn get(&mut self, view: &str, key: &str) -> Result<Option<Value>> {
        if let Some(doc) = self.batch.documents.get(&(view.to_owned(), key.to_owned())) {
            return Ok(doc.clone());
        }
        self.storage.document(self.projection, view, key)
    }

    pub fn put(&mut self, view: &str, key: &str, doc: Value) {
        self.batch
            .documents
            .insert((view.to_owned(), key.to_owned()), Some(doc));
    }

    pub fn delete(&mut self, view: &str, key: &str) {
        self.batch
            .documents
            .insert((view.to_owned(), key.to_owned()), None);
    }

    /// A document as a typed value.
    pub fn get_as<T: DeserializeOwned>(&mut self, view: &str, key: &str) -> Result<Option<T>> {
        self.get(view, key)?
            .map(|v| {
                serde_json::from_value(v).map_err(|e| Error::Storage {
                    operation: "reading a document",
                    reason: format!(
                        "{}/{view}/{key} does not match its type: {e}",
                        self.projection
                    ),
                })
            })
            .transpose()
    }

    pub fn put_as<T: Serialize>(&mut self, view: &str, key: &str, doc: &T) -> Result<()> {
        let value = serde_json::to_value(doc)
            .map_err(|e| Error::InvalidArgument(format!("document does not serialize: {e}")))?;
        self.put(view, key, value);
        Ok(())
    }
}

struct ProjectionSink<'p, P: Projection> {
    projection: &'p mut P,
}

impl<P: Projection> Sink for ProjectionSink<'_, P> {
    fn apply(
        &mut self,
        record: &Record,
        env: &RawEnvelope,
        batch: &mut Batch,
        storage: &mut dyn Storage,
    ) -> Result<()> {
        let name = self.projection.name().to_owned();
        let mut views = Views {
            projection: &name,
            batch,
            storage,
        };
        self.projection
            .apply(env, &mut views)
            .map_err(|e| Error::Projection {
                projection: name.clone(),
                topic: record.topic.clone(),
                partition: record.partition,
                offset: record.offset,
                reason: e.to_string(),
            })
    }
}

/// The status of a projection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectionStatus {
    pub name: String,
    pub generation: u64,
    pub group: String,
    /// Records between the checkpoints and the end of the topics.
    pub lag: u64,
    /// (topic, partition) → next offset to apply.
    pub checkpoints: BTreeMap<String, u64>,
}

/// Runs a [`Projection`] against a log.
pub struct ProjectionRunner<L: EventLog, P: Projection> {
    log: L,
    db: Database,
    projection: P,
    follower: Follower<L>,
    instance: String,
}

impl<L: EventLog, P: Projection> std::fmt::Debug for ProjectionRunner<L, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("projection", &self.projection.name())
            .field("follower", &self.follower)
            .finish()
    }
}

fn group_name(name: &str, instance: &str, generation: u64) -> String {
    format!("projection.{name}.{instance}.g{generation}")
}

impl<L: EventLog, P: Projection> ProjectionRunner<L, P> {
    pub fn new(log: L, db: Database, projection: P) -> Result<Self> {
        let name = projection.name().to_owned();
        if name == INDEX_FOLLOWER || TopicSpec::validate_name(&name).is_err() {
            return Err(Error::InvalidArgument(format!(
                "projection name '{name}' is invalid: use letters, digits, '.', '_' and '-' (and not '{INDEX_FOLLOWER}')"
            )));
        }
        let (instance, generation) = {
            let mut s = lock(&db.storage);
            (s.instance_id()?, s.generation(&name)?)
        };
        let follower = Follower::new(
            name.clone(),
            group_name(&name, &instance, generation),
            projection.topics(),
            false,
            0,
        );
        Ok(ProjectionRunner {
            log,
            db,
            projection,
            follower,
            instance,
        })
    }

    pub fn projection(&self) -> &P {
        &self.projection
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Records read per poll.
    pub fn with_max_batch(mut self, max: usize) -> Self {
        self.follower.max_batch = max.max(1);
        self
    }

    /// Applies everything up to the current end of its topics.
    pub async fn catch_up(&mut self) -> Result<CatchUp> {
        let mut sink = ProjectionSink {
            projection: &mut self.projection,
        };
        self.follower
            .catch_up(&self.log, &self.db.storage, &mut sink, Until::End)
            .await
    }

    /// Polls once and applies what arrived (for run loops and tests).
    pub async fn step(&mut self) -> Result<CatchUp> {
        let mut sink = ProjectionSink {
            projection: &mut self.projection,
        };
        let mut stats = CatchUp::default();
        self.follower
            .step(&self.log, &self.db.storage, &mut sink, &mut stats)
            .await?;
        Ok(stats)
    }

    /// Follows its topics until `shutdown` completes. Returns the first error.
    pub async fn run(&mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                r = self.step() => { r?; }
            }
        }
    }

    /// Deletes the read model and applies every event again from offset 0.
    pub async fn rebuild(&mut self) -> Result<CatchUp> {
        let name = self.projection.name().to_owned();
        let generation = lock(&self.db.storage).reset(&name)?;
        tracing::info!(projection = %name, generation, "projection reset for rebuild");
        self.follower
            .restart(group_name(&name, &self.instance, generation));
        self.catch_up().await
    }

    /// Checkpoints, lag and consumer group.
    pub async fn status(&mut self) -> Result<ProjectionStatus> {
        let ends = self.follower.ends(&self.log).await?;
        let name = self.projection.name().to_owned();
        let generation = lock(&self.db.storage).generation(&name)?;
        let cps = self.follower.checkpoints(&self.db.storage)?.clone();
        let mut lag = 0;
        let mut checkpoints = BTreeMap::new();
        for ((topic, partition), (start, end)) in ends {
            let at = cps
                .get(&(topic.clone(), partition))
                .copied()
                .unwrap_or(0)
                .max(start);
            lag += end.saturating_sub(at);
            checkpoints.insert(format!("{topic}/{partition}"), at);
        }
        Ok(ProjectionStatus {
            name,
            generation,
            group: self.follower.group().to_owned(),
            lag,
            checkpoints,
        })
    }

    /// Test hook: the next batch fails right after its storage transaction,
    /// before the consumer group commit, as a crash at that point would.
    #[doc(hidden)]
    pub fn crash_after_next_apply(&mut self) {
        self.follower.crash_before_group_commit = true;
    }
}
