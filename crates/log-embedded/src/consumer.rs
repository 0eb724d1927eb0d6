//! A member of a consumer group on the embedded log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use ultracore_log::{
    Consumer, ConsumerOptions, Error, Position, Record, Result, Seek, StartFrom, TopicPartition,
};

use crate::log::EmbeddedLog;
use crate::partition::Partition;

/// How often a read-only consumer looks for records the writer process appended.
const READ_ONLY_POLL: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct EmbeddedConsumer {
    log: EmbeddedLog,
    options: ConsumerOptions,
    member: u64,
    generation: u64,
    /// Assigned partitions and the next offset to read from each.
    positions: BTreeMap<TopicPartition, u64>,
    partitions: BTreeMap<TopicPartition, Arc<Partition>>,
    /// A seek also applies to partitions assigned later, until records are returned.
    pending_seek: Option<Seek>,
    changes: watch::Receiver<u64>,
    /// Which partition to read first next time, so none starves.
    next_first: usize,
}

impl EmbeddedConsumer {
    pub(crate) fn join(log: EmbeddedLog, options: ConsumerOptions) -> Result<EmbeddedConsumer> {
        let mut counts = BTreeMap::new();
        for t in &options.topics {
            counts.insert(t.clone(), log.topic(t)?.partitions.len() as u32);
        }
        let member = log.groups().join(&options.group, &options.topics, |t| {
            counts.get(t).copied().unwrap_or(0)
        })?;
        log.notify_changes(); // other members pick up the rebalance
        let changes = log.subscribe_changes();
        let mut c = EmbeddedConsumer {
            log,
            options,
            member,
            generation: 0,
            positions: BTreeMap::new(),
            partitions: BTreeMap::new(),
            pending_seek: None,
            changes,
            next_first: 0,
        };
        c.sync_assignment()?;
        Ok(c)
    }

    /// Follows a rebalance: drops revoked partitions, starts new ones at the
    /// group's committed offset (or `StartFrom`), then applies a pending seek.
    fn sync_assignment(&mut self) -> Result<()> {
        let (generation, assigned) = self
            .log
            .groups()
            .assignment(&self.options.group, self.member);
        if generation == self.generation {
            return Ok(());
        }
        self.generation = generation;
        let mut positions = BTreeMap::new();
        let mut partitions = BTreeMap::new();
        for tp in assigned {
            let part = self.log.topic(&tp.topic)?.partitions[tp.partition as usize].clone();
            let pos = match self.positions.get(&tp) {
                Some(&p) => p,
                None => match self.log.groups().committed(
                    &self.options.group,
                    &tp.topic,
                    tp.partition,
                )? {
                    Some(c) => c,
                    None => match self.options.start {
                        StartFrom::Earliest => part.log_start(),
                        StartFrom::Latest => part.high_watermark(),
                    },
                },
            };
            partitions.insert(tp.clone(), part);
            positions.insert(tp, pos);
        }
        self.positions = positions;
        self.partitions = partitions;
        if let Some(seek) = self.pending_seek {
            self.apply_seek(seek)?;
        }
        Ok(())
    }

    fn apply_seek(&mut self, seek: Seek) -> Result<()> {
        for (tp, pos) in self.positions.iter_mut() {
            let part = &self.partitions[tp];
            *pos = match seek {
                Seek::Beginning => part.log_start(),
                Seek::End => part.high_watermark(),
                Seek::Offset(o) => o.clamp(part.log_start(), part.high_watermark()),
                Seek::Timestamp(ts) => part.offset_for_timestamp(ts)?,
            };
        }
        Ok(())
    }

    /// Reads what is available now, round-robin over partitions.
    fn read_available(&mut self, max: usize) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let tps: Vec<TopicPartition> = self.positions.keys().cloned().collect();
        if tps.is_empty() {
            return Ok(out);
        }
        let first = self.next_first % tps.len();
        self.next_first = self.next_first.wrapping_add(1);
        for tp in tps[first..].iter().chain(&tps[..first]) {
            if out.len() >= max {
                break;
            }
            let part = &self.partitions[tp];
            if self.log.is_read_only() {
                part.refresh()?;
            }
            let pos = self.positions[tp];
            let batch = match part.read(pos, max - out.len()) {
                Ok(b) => b,
                Err(Error::OffsetOutOfRange { start, .. }) if pos < start => {
                    // Retention removed what we had not read yet: go on from the oldest kept.
                    tracing::warn!(topic = %tp.topic, partition = tp.partition, from = pos, to = start,
                        "records deleted by retention before they were consumed");
                    part.read(start, max - out.len())?
                }
                Err(e) => return Err(e),
            };
            if let Some(last) = batch.last() {
                self.positions.insert(tp.clone(), last.offset + 1);
            }
            out.extend(batch);
        }
        Ok(out)
    }
}

impl Consumer for EmbeddedConsumer {
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Record>> {
        let deadline = Instant::now() + timeout;
        loop {
            // Mark the current state seen *before* reading, so an append that
            // lands after the read wakes the wait below instead of being missed.
            self.changes.borrow_and_update();
            self.sync_assignment()?;
            let records = self.read_available(max)?;
            if !records.is_empty() {
                self.pending_seek = None;
                return Ok(records);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(records);
            }
            if self.log.is_read_only() {
                tokio::time::sleep(READ_ONLY_POLL.min(deadline - now)).await;
            } else if tokio::time::timeout_at(deadline, self.changes.changed())
                .await
                .is_err()
            {
                return Ok(Vec::new());
            }
        }
    }

    async fn commit(&mut self, positions: &[Position]) -> Result<()> {
        if positions.is_empty() {
            return Ok(());
        }
        let log = self.log.clone();
        let group = self.options.group.clone();
        let positions = positions.to_vec();
        // Commits fsync: keep them off the async workers.
        tokio::task::spawn_blocking(move || log.groups().commit(&group, &positions))
            .await
            .map_err(|_| Error::Closed)?
    }

    async fn seek(&mut self, target: Seek) -> Result<()> {
        self.sync_assignment()?;
        self.apply_seek(target)?;
        self.pending_seek = Some(target);
        Ok(())
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.positions.keys().cloned().collect()
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        let log = &self.log;
        let counts = |t: &str| log.topic(t).map_or(0, |t| t.partitions.len() as u32);
        log.groups().leave(&self.options.group, self.member, counts);
        log.notify_changes();
    }
}
