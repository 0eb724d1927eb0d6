use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;
use ultracore_log::{
    Consumer, ConsumerOptions, Error, Header, Position, Record, Result, Seek, StartFrom,
    TopicPartition,
};

use crate::config::KafkaConfig;
use crate::error::{map_err, transient};

/// A member of a Kafka consumer group.
///
/// Dropping it leaves the group at once (a LeaveGroup request, on a blocking
/// thread), so the remaining members get its partitions without waiting for
/// the session timeout.
pub struct KafkaConsumer {
    /// `None` only while being dropped.
    consumer: Option<Arc<StreamConsumer>>,
    config: KafkaConfig,
    /// A seek applies to every partition assigned until records are returned,
    /// including partitions the group assigns only later.
    pending_seek: Option<Seek>,
    /// Partitions (full names) the pending seek was applied to.
    seeked: BTreeSet<(String, i32)>,
    /// Records taken from librdkafka and not yet returned by `poll`. They
    /// live here, not in a local of `poll`, so a poll cancelled at any await
    /// loses none of them: the next poll returns them first.
    taken: Vec<Record>,
}

impl std::fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConsumer")
            .field("pending_seek", &self.pending_seek)
            .finish()
    }
}

impl KafkaConsumer {
    pub(crate) fn new(config: KafkaConfig, options: ConsumerOptions) -> Result<KafkaConsumer> {
        let reset = match options.start {
            StartFrom::Earliest => "earliest",
            StartFrom::Latest => "latest",
        };
        let consumer: StreamConsumer = config
            .consumer(&options.group, reset)
            .create()
            .map_err(map_err)?;
        let full: Vec<String> = options.topics.iter().map(|t| config.full(t)).collect();
        let names: Vec<&str> = full.iter().map(String::as_str).collect();
        consumer.subscribe(&names).map_err(map_err)?;
        Ok(KafkaConsumer {
            consumer: Some(Arc::new(consumer)),
            config,
            pending_seek: None,
            seeked: BTreeSet::new(),
            taken: Vec::new(),
        })
    }

    fn member(&self) -> Result<&Arc<StreamConsumer>> {
        self.consumer.as_ref().ok_or(Error::Closed)
    }

    fn to_record(&self, m: &BorrowedMessage<'_>) -> Record {
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| Header {
                        key: h.key.to_owned(),
                        value: h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Record {
            topic: self.config.strip(m.topic()).unwrap_or(m.topic()).to_owned(),
            partition: m.partition() as u32,
            offset: m.offset() as u64,
            timestamp: m.timestamp().to_millis().unwrap_or(0),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers,
        }
    }

    /// Applies the pending seek to assigned partitions it has not reached yet.
    async fn apply_pending_seek(&mut self) -> Result<()> {
        let Some(target) = self.pending_seek else {
            return Ok(());
        };
        let assignment = self.member()?.assignment().map_err(map_err)?;
        let fresh: Vec<(String, i32)> = assignment
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .filter(|tp| !self.seeked.contains(tp))
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let consumer = self.member()?.clone();
        let config = self.config.clone();
        let applied: Vec<(String, i32)> =
            tokio::task::spawn_blocking(move || -> Result<Vec<(String, i32)>> {
                let tpl = match target {
                    Seek::Timestamp(ts) => offsets_for_time(&consumer, &config, &fresh, ts)?,
                    other => {
                        let offset = match other {
                            Seek::Beginning => Offset::Beginning,
                            Seek::Offset(o) => Offset::Offset(i64::try_from(o).unwrap_or(i64::MAX)),
                            _ => Offset::End,
                        };
                        let mut tpl = TopicPartitionList::new();
                        for (t, p) in &fresh {
                            tpl.add_partition_offset(t, *p, offset).map_err(map_err)?;
                        }
                        tpl
                    }
                };
                // librdkafka purges what it fetched for a partition before the
                // seek, so nothing from the old position is delivered after it.
                let result = consumer
                    .seek_partitions(tpl, config.request_timeout)
                    .map_err(map_err)?;
                // A partition whose fetcher has not started yet refuses the
                // seek; it stays pending and is retried at the next poll.
                Ok(result
                    .elements()
                    .iter()
                    .filter(|e| e.error().is_ok())
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect())
            })
            .await
            .map_err(|e| Error::Kafka(format!("seek task failed: {e}")))??;
        tracing::debug!(?target, partitions = applied.len(), "seek applied");
        self.seeked.extend(applied);
        Ok(())
    }
}

impl Consumer for KafkaConsumer {
    /// Cancel-safe: every record taken from librdkafka waits in `taken`
    /// until a poll returns it, and librdkafka's `recv` takes a message only
    /// when it completes.
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Record>> {
        let deadline = Instant::now() + timeout;
        if max == 0 {
            self.apply_pending_seek().await?;
            return Ok(Vec::new());
        }
        while self.taken.len() < max {
            self.apply_pending_seek().await?;
            // A handle of its own, so a message (which borrows it) does not
            // borrow `self` while it is stored.
            let member = self.member()?.clone();
            let msg = if self.taken.is_empty() {
                // Short waits, so a seek waiting for the group's assignment is applied promptly.
                let wait = deadline
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100));
                tokio::time::timeout(wait, member.recv()).await.ok()
            } else {
                member.recv().now_or_never()
            };
            match msg {
                Some(Ok(m)) => {
                    let tp = (m.topic().to_owned(), m.partition());
                    // Fetched before the seek reached this partition: librdkafka
                    // will deliver it again from the sought position.
                    if self.pending_seek.is_some() && !self.seeked.contains(&tp) {
                        continue;
                    }
                    let record = self.to_record(&m);
                    self.taken.push(record);
                }
                // Connection trouble is reported as consumer errors while
                // librdkafka keeps retrying; the member stays in its group.
                Some(Err(e)) if e.rdkafka_error_code().is_some_and(transient) => {
                    tracing::warn!(error = %e, "Kafka consumer: transient error, retrying");
                }
                Some(Err(e)) => return Err(map_err(e)),
                None if !self.taken.is_empty() || Instant::now() >= deadline => break,
                None => {}
            }
        }
        let out: Vec<Record> = if self.taken.len() > max {
            self.taken.drain(..max).collect()
        } else {
            std::mem::take(&mut self.taken)
        };
        if !out.is_empty() {
            self.pending_seek = None;
            self.seeked.clear();
        }
        Ok(out)
    }

    async fn commit(&mut self, positions: &[Position]) -> Result<()> {
        if positions.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for p in positions {
            tpl.add_partition_offset(
                &self.config.full(&p.topic),
                p.partition as i32,
                Offset::Offset(p.offset as i64),
            )
            .map_err(map_err)?;
        }
        let consumer = self.member()?.clone();
        tokio::task::spawn_blocking(move || {
            consumer.commit(&tpl, CommitMode::Sync).map_err(map_err)
        })
        .await
        .map_err(|e| Error::Kafka(format!("commit task failed: {e}")))?
    }

    async fn seek(&mut self, target: Seek) -> Result<()> {
        // Records taken from the old position are not wanted any more.
        self.taken.clear();
        self.pending_seek = Some(target);
        self.seeked.clear();
        self.apply_pending_seek().await
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        let Some(consumer) = &self.consumer else {
            return Vec::new();
        };
        consumer
            .assignment()
            .map(|tpl| {
                tpl.elements()
                    .iter()
                    .map(|e| TopicPartition {
                        topic: self.config.strip(e.topic()).unwrap_or(e.topic()).to_owned(),
                        partition: e.partition() as u32,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        let Some(consumer) = self.consumer.take() else {
            return;
        };
        // rdkafka's drop closes the consumer: it sends LeaveGroup and waits
        // for the coordinator's answer (about 100 ms). Keep that wait off the
        // async workers when there is a runtime; without one, block here.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(move || drop(consumer));
            }
            Err(_) => drop(consumer),
        }
    }
}

/// Where `Seek::Timestamp(ts)` puts each partition: the first record at or
/// after `ts`, or the end when there is none.
///
/// Tansu 0.6 answers a time past the last record with offset 0 (Kafka says
/// "none", -1), which would replay the whole partition. So an answer at the
/// start of the partition is checked by reading that record's timestamp;
/// answers inside the log are trusted.
fn offsets_for_time(
    consumer: &StreamConsumer,
    config: &KafkaConfig,
    partitions: &[(String, i32)],
    ts: i64,
) -> Result<TopicPartitionList> {
    let mut query = TopicPartitionList::new();
    for (t, p) in partitions {
        // offsets_for_times takes the timestamp in the offset field.
        query
            .add_partition_offset(t, *p, Offset::Offset(ts))
            .map_err(map_err)?;
    }
    let found = consumer
        .offsets_for_times(query, config.request_timeout)
        .map_err(map_err)?;
    let mut probe = None;
    let mut tpl = TopicPartitionList::new();
    for e in found.elements() {
        let offset = match e.offset() {
            Offset::Offset(o) if o >= 0 => {
                let (low, high) = consumer
                    .fetch_watermarks(e.topic(), e.partition(), config.request_timeout)
                    .map_err(map_err)?;
                if o >= high {
                    Offset::End
                } else if o > low {
                    Offset::Offset(o)
                } else {
                    let probe = match &mut probe {
                        Some(p) => p,
                        None => probe.insert(Probe::new(config)?),
                    };
                    match probe.timestamp_at(e.topic(), e.partition(), o)? {
                        Some(t) if t >= ts => Offset::Offset(o),
                        _ => Offset::End,
                    }
                }
            }
            // No record at or after the time: wait at the end.
            _ => Offset::End,
        };
        tpl.add_partition_offset(e.topic(), e.partition(), offset)
            .map_err(map_err)?;
    }
    Ok(tpl)
}

/// A group-less reader of single records, to check a timestamp look-up.
struct Probe {
    consumer: BaseConsumer,
    timeout: Duration,
}

impl Probe {
    fn new(config: &KafkaConfig) -> Result<Probe> {
        let mut cfg = config.client();
        // librdkafka wants a group id on any consumer; assign() never joins it.
        cfg.set("group.id", "ultracore-timestamp-probe")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true");
        Ok(Probe {
            consumer: cfg.create().map_err(map_err)?,
            timeout: config.request_timeout,
        })
    }

    /// The timestamp of the record at `offset`, `None` if there is none.
    fn timestamp_at(&self, topic: &str, partition: i32, offset: i64) -> Result<Option<i64>> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
            .map_err(map_err)?;
        self.consumer.assign(&tpl).map_err(map_err)?;
        let deadline = std::time::Instant::now() + self.timeout;
        while std::time::Instant::now() < deadline {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) if m.topic() == topic && m.partition() == partition => {
                    return Ok(m.timestamp().to_millis())
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) if p == partition => {
                    return Ok(None)
                }
                Some(Err(e)) if !e.rdkafka_error_code().is_some_and(transient) => {
                    return Err(map_err(e))
                }
                _ => {}
            }
        }
        Err(Error::Unavailable(format!(
            "reading {topic}/{partition} at offset {offset}: no answer within {:?}",
            self.timeout
        )))
    }
}
