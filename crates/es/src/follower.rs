//! A follower reads topics through a consumer group and applies what it
//! reads to [`Storage`] with a checkpoint: the machinery shared by the
//! stream index and every projection.
//!
//! Exactly-once application on an at-least-once log rests on two checks,
//! both committed in the same storage transaction as the changes:
//! - the checkpoint (next offset per partition): a record below it was
//!   applied already, so a redelivery (after a crash between the storage
//!   commit and the group commit, or after a rebalance) is skipped;
//! - the watermark per aggregate (last accepted version and save id): an
//!   event is accepted only if it is the next version of its aggregate, so a
//!   record stored twice on the log, or the losing save of two concurrent
//!   writers, is skipped — by every follower alike, because the rule only
//!   depends on partition order, which every reader sees the same.
//!
//! The consumer group's committed offsets only say where to resume reading;
//! they are committed after the storage transaction, never before.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use ultracore_log::{
    Consumer, ConsumerOptions, DeadLetter, EventLog, Position, RawEnvelope, Record, StartFrom,
};
use uuid::Uuid;

use crate::storage::{Batch, Storage, Watermark};
use crate::{Error, Result};

/// Record header carrying the id of the save an event belongs to (the
/// `event_id` of the save's first event). Absent: the event is a save of its own.
pub const COMMIT_HEADER: &str = "es.commit";

/// How long a catch-up waits without receiving anything before giving up.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) type SharedStorage = Arc<Mutex<Box<dyn Storage>>>;

pub(crate) fn lock(storage: &SharedStorage) -> std::sync::MutexGuard<'_, Box<dyn Storage>> {
    storage.lock().unwrap_or_else(|e| e.into_inner())
}

/// The save an event belongs to.
pub(crate) fn commit_of(record: &Record, env: &RawEnvelope) -> Uuid {
    record
        .header(COMMIT_HEADER)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or(env.event_id)
}

/// The acceptance rule. An event is accepted iff it is the next version of
/// its aggregate and either starts a save or continues the save accepted
/// last. Of two saves that both claim version v+1, the first in partition
/// order wins and every event of the other is skipped.
pub(crate) fn accepts(w: &Watermark, version: u64, event_id: Uuid, commit: Uuid) -> bool {
    version == w.version.saturating_add(1) && (commit == event_id || w.commit == Some(commit))
}

/// What a follower does with each accepted event.
pub(crate) trait Sink: Send {
    fn apply(
        &mut self,
        record: &Record,
        envelope: &RawEnvelope,
        batch: &mut Batch,
        storage: &mut dyn Storage,
    ) -> Result<()>;
}

/// How far a catch-up goes.
#[derive(Debug, Clone)]
pub(crate) enum Until {
    /// The end of every partition as it is now.
    End,
    /// Past these offsets: (topic, partition) → an offset that must be applied.
    Past(BTreeMap<(String, u32), u64>),
}

/// What a catch-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Records read (including skipped ones).
    pub records: u64,
    /// Events applied.
    pub applied: u64,
    /// Records skipped: redelivered, duplicate, or a losing save.
    pub skipped: u64,
}

pub(crate) struct Follower<L: EventLog> {
    pub(crate) name: String,
    group: String,
    topics: Vec<String>,
    consumer: Option<L::Consumer>,
    /// Route undecodable records to `<topic>.dlq` (the index does; projections
    /// reading the same topics then see them skipped with a warning only).
    dead_letters: bool,
    /// Commit the group's offsets after this many records (they only say
    /// where to resume reading; storage checkpoints are the truth).
    group_commit_every: u64,
    since_group_commit: u64,
    positions: BTreeMap<(String, u32), u64>,
    checkpoints: Option<BTreeMap<(String, u32), u64>>,
    pub(crate) max_batch: usize,
    /// Test hook: fail after the storage commit of the next batch, before
    /// the group commit, as a crash there would.
    pub(crate) crash_before_group_commit: bool,
}

impl<L: EventLog> std::fmt::Debug for Follower<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("name", &self.name)
            .field("group", &self.group)
            .field("topics", &self.topics)
            .finish()
    }
}

impl<L: EventLog> Follower<L> {
    pub(crate) fn new(
        name: String,
        group: String,
        topics: Vec<String>,
        dead_letters: bool,
        group_commit_every: u64,
    ) -> Self {
        Follower {
            name,
            group,
            topics,
            consumer: None,
            dead_letters,
            group_commit_every,
            since_group_commit: 0,
            positions: BTreeMap::new(),
            checkpoints: None,
            max_batch: 5_000,
            crash_before_group_commit: false,
        }
    }

    pub(crate) fn group(&self) -> &str {
        &self.group
    }

    /// Forgets the consumer and cached checkpoints (after a reset in storage).
    pub(crate) fn restart(&mut self, group: String) {
        self.consumer = None;
        self.group = group;
        self.checkpoints = None;
        self.positions.clear();
        self.since_group_commit = 0;
    }

    /// The end of every partition: (topic, partition) → (log start, high watermark).
    pub(crate) async fn ends(&mut self, log: &L) -> Result<BTreeMap<(String, u32), (u64, u64)>> {
        let mut out = BTreeMap::new();
        for t in &self.topics {
            let info = match log.describe_topic(t).await {
                Ok(info) => info,
                // Nothing written yet: nothing to wait for.
                Err(ultracore_log::Error::UnknownTopic(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            for p in info.partitions {
                out.insert(
                    (t.clone(), p.partition),
                    (p.log_start_offset, p.high_watermark),
                );
            }
        }
        Ok(out)
    }

    pub(crate) fn checkpoints(
        &mut self,
        storage: &SharedStorage,
    ) -> Result<&mut BTreeMap<(String, u32), u64>> {
        if self.checkpoints.is_none() {
            self.checkpoints = Some(lock(storage).checkpoints(&self.name)?);
        }
        Ok(self.checkpoints.get_or_insert_with(BTreeMap::new))
    }

    /// Applies records until `until` is reached.
    pub(crate) async fn catch_up(
        &mut self,
        log: &L,
        storage: &SharedStorage,
        sink: &mut dyn Sink,
        until: Until,
    ) -> Result<CatchUp> {
        let targets: BTreeMap<(String, u32), u64> = match until {
            Until::End => self
                .ends(log)
                .await?
                .into_iter()
                // A partition emptied by retention has nothing to wait for.
                .filter(|(_, (start, end))| end > start)
                .map(|(tp, (_, end))| (tp, end))
                .collect(),
            Until::Past(offsets) => offsets.into_iter().map(|(tp, o)| (tp, o + 1)).collect(),
        };
        let mut stats = CatchUp::default();
        let mut last_progress = Instant::now();
        loop {
            let cps = self.checkpoints(storage)?;
            let done = targets
                .iter()
                .all(|(tp, end)| cps.get(tp).copied().unwrap_or(0) >= *end);
            if done {
                return Ok(stats);
            }
            let n = self.step(log, storage, sink, &mut stats).await?;
            if n > 0 {
                last_progress = Instant::now();
            } else if last_progress.elapsed() > STALL_TIMEOUT {
                return Err(Error::CatchUpTimeout {
                    topic: self.topics.join(","),
                    seconds: STALL_TIMEOUT.as_secs(),
                });
            }
        }
    }

    /// Polls once and applies what arrived. Returns the records read.
    pub(crate) async fn step(
        &mut self,
        log: &L,
        storage: &SharedStorage,
        sink: &mut dyn Sink,
        stats: &mut CatchUp,
    ) -> Result<usize> {
        if self.consumer.is_none() {
            let options = ConsumerOptions::new(self.group.clone(), self.topics.clone())
                .start(StartFrom::Earliest);
            match log.consumer(options).await {
                Ok(c) => self.consumer = Some(c),
                // A topic nobody wrote to yet: look again shortly.
                Err(ultracore_log::Error::UnknownTopic(_)) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return Ok(0);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let records = match self.consumer.as_mut() {
            Some(c) => c.poll(self.max_batch, Duration::from_millis(200)).await?,
            None => return Err(Error::Log(ultracore_log::Error::Closed)),
        };
        if records.is_empty() {
            return Ok(0);
        }
        let mut batch = Batch::default();
        let mut dead: Vec<(Record, String)> = Vec::new();
        let name = self.name.clone();
        let mut cps = std::mem::take(self.checkpoints(storage)?);
        let result = {
            let mut guard = lock(storage);
            apply_records(
                &name,
                &records,
                &mut cps,
                &mut batch,
                &mut dead,
                &mut **guard,
                sink,
                stats,
            )
        };
        if let Err(e) = result {
            // Nothing of the batch was committed: drop cached state and the
            // consumer so the next attempt re-reads from the checkpoints.
            self.restart(self.group.clone());
            return Err(e);
        }
        for (record, reason) in &dead {
            tracing::warn!(follower = %name, topic = %record.topic, partition = record.partition,
                offset = record.offset, %reason, "record is not an event envelope");
            if self.dead_letters {
                // Before the commit: a crash in between sends it again (at least once).
                if let Err(e) = DeadLetter::new(record, reason.clone()).send(log).await {
                    self.restart(self.group.clone());
                    return Err(e.into());
                }
            }
        }
        if let Err(e) = lock(storage).commit(&name, &batch) {
            self.restart(self.group.clone());
            return Err(e);
        }
        self.checkpoints = Some(cps);
        for r in &records {
            self.positions
                .insert((r.topic.clone(), r.partition), r.offset + 1);
        }
        self.since_group_commit += records.len() as u64;
        if self.crash_before_group_commit {
            self.crash_before_group_commit = false;
            self.consumer = None;
            return Err(Error::InvalidArgument(
                "simulated crash after the storage commit, before the group commit".into(),
            ));
        }
        self.commit_group().await?;
        Ok(records.len())
    }

    /// Commits the group's positions once enough records were read since the last commit.
    async fn commit_group(&mut self) -> Result<()> {
        if self.positions.is_empty() || self.since_group_commit < self.group_commit_every {
            return Ok(());
        }
        let Some(consumer) = self.consumer.as_mut() else {
            return Ok(());
        };
        let positions: Vec<Position> = self
            .positions
            .iter()
            .map(|((topic, partition), offset)| Position {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
            })
            .collect();
        match consumer.commit(&positions).await {
            // A read-only log (a tool beside the server) cannot commit; the
            // storage checkpoints still say what was applied.
            Ok(()) | Err(ultracore_log::Error::ReadOnly(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.positions.clear();
        self.since_group_commit = 0;
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_records(
    name: &str,
    records: &[Record],
    cps: &mut BTreeMap<(String, u32), u64>,
    batch: &mut Batch,
    dead: &mut Vec<(Record, String)>,
    storage: &mut dyn Storage,
    sink: &mut dyn Sink,
    stats: &mut CatchUp,
) -> Result<()> {
    for record in records {
        stats.records += 1;
        let tp = (record.topic.clone(), record.partition);
        if record.offset < cps.get(&tp).copied().unwrap_or(0) {
            stats.skipped += 1; // applied before: a redelivery
            continue;
        }
        cps.insert(tp.clone(), record.offset + 1);
        batch.checkpoints.insert(tp, record.offset + 1);
        // One pass when the record is a valid envelope (the common case); the
        // two-step parse only to classify what is wrong with a bad one.
        let parsed = serde_json::from_slice::<RawEnvelope>(&record.value)
            .or_else(|_| RawEnvelope::from_bytes(&record.value));
        let env = match parsed {
            Ok(env) => env,
            Err(e) => {
                dead.push((record.clone(), e.to_string()));
                stats.skipped += 1;
                continue;
            }
        };
        let key = (env.aggregate_type.clone(), env.aggregate_id.clone());
        let mark = match batch.watermarks.get(&key) {
            Some(w) => *w,
            None => storage.watermark(name, &key.0, &key.1)?,
        };
        let commit = commit_of(record, &env);
        if !accepts(&mark, env.version, env.event_id, commit) {
            tracing::debug!(follower = name, aggregate_type = %key.0, aggregate_id = %key.1,
                version = env.version, current = mark.version, "event skipped");
            stats.skipped += 1;
            continue;
        }
        sink.apply(record, &env, batch, storage)?;
        batch.watermarks.insert(
            key,
            Watermark {
                version: env.version,
                commit: Some(commit),
            },
        );
        stats.applied += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_save_of_a_version_wins() {
        let (a1, a2, b1) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let start = Watermark {
            version: 4,
            commit: None,
        };
        // Save A (v5, v6) then save B (v5): B loses.
        assert!(accepts(&start, 5, a1, a1));
        let after_a1 = Watermark {
            version: 5,
            commit: Some(a1),
        };
        assert!(!accepts(&after_a1, 5, b1, b1));
        assert!(accepts(&after_a1, 6, a2, a1));
        // Save B (v5) first: all of A is skipped, including its v6.
        let after_b1 = Watermark {
            version: 5,
            commit: Some(b1),
        };
        assert!(!accepts(&start, 6, a2, a1));
        assert!(!accepts(&after_b1, 5, a1, a1));
        assert!(!accepts(&after_b1, 6, a2, a1));
        // Version gaps and far versions (no one-digit assumptions).
        let far = Watermark {
            version: 9_999,
            commit: None,
        };
        assert!(accepts(&far, 10_000, a1, a1));
        assert!(!accepts(&far, 10_001, a1, a1));
    }
}
