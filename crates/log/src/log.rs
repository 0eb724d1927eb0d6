use std::future::Future;
use std::time::Duration;

use crate::{
    Appended, GroupLag, NewRecord, Position, Record, Result, Seek, StartFrom, TopicInfo,
    TopicPartition, TopicSpec,
};

/// How a consumer joins the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerOptions {
    /// The consumer group. Members of one group share the partitions of the
    /// topics they subscribe to; different groups read independently.
    pub group: String,
    pub topics: Vec<String>,
    /// Where to start in partitions the group never committed.
    pub start: StartFrom,
}

impl ConsumerOptions {
    pub fn new(
        group: impl Into<String>,
        topics: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        ConsumerOptions {
            group: group.into(),
            topics: topics.into_iter().map(Into::into).collect(),
            start: StartFrom::Earliest,
        }
    }

    pub fn start(mut self, start: StartFrom) -> Self {
        self.start = start;
        self
    }
}

/// A durable, partitioned, append-only log of records: the backbone every
/// UltraCore service reads and writes.
///
/// Guarantees shared by every backend (checked by the conformance suite):
/// - Records with the same key go to the same partition and are read in the
///   order they were appended.
/// - [`EventLog::append`] returns only once every record of the call is
///   durable (fsynced / acknowledged by all in-sync replicas).
/// - Delivery to consumers is at-least-once: a record is delivered again to
///   the group until a position past it is committed. Handlers must be
///   idempotent (deduplicate by `event_id`).
///
/// The trait has no expected-version append: Kafka has no conditional write.
/// Optimistic concurrency lives one layer up, in the event store.
pub trait EventLog: Clone + Send + Sync + 'static {
    type Consumer: Consumer;

    /// Creates a topic. Fails with [`crate::Error::TopicExists`] if it exists.
    fn create_topic(&self, spec: &TopicSpec) -> impl Future<Output = Result<()>> + Send;

    /// The name `topic` has where it is stored, as an operator's own tools
    /// see it (on Kafka with a topic prefix, the prefixed name). The
    /// same name by default.
    fn physical_topic(&self, topic: &str) -> String {
        topic.to_owned()
    }

    /// Every topic with its partitions, high watermarks and retention.
    fn list_topics(&self) -> impl Future<Output = Result<Vec<TopicInfo>>> + Send;

    /// One topic, or [`crate::Error::UnknownTopic`].
    fn describe_topic(&self, topic: &str) -> impl Future<Output = Result<TopicInfo>> + Send;

    /// Appends a batch of records to one topic and returns where each landed,
    /// in input order, once all of them are durable. Records without an
    /// explicit partition go to `partition_for_key(key)`; unkeyed records are
    /// spread over the partitions. A failed call may have stored a prefix of
    /// the batch (never a record twice within the call).
    fn append(
        &self,
        topic: &str,
        records: Vec<NewRecord>,
    ) -> impl Future<Output = Result<Vec<Appended>>> + Send;

    /// Joins `options.group` as a new member. Partitions are (re)assigned
    /// among the group's live members; a member's uncommitted records are
    /// delivered again to whoever gets its partitions.
    fn consumer(
        &self,
        options: ConsumerOptions,
    ) -> impl Future<Output = Result<Self::Consumer>> + Send;

    /// Consumer groups the log knows, sorted: at least every group that has
    /// committed offsets (Kafka also lists groups that only have live members).
    fn list_groups(&self) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Lag of a group on every partition of the topics it committed on.
    fn group_lag(&self, group: &str) -> impl Future<Output = Result<Vec<GroupLag>>> + Send;

    /// The timestamp of the record at `offset` of a partition: how old the
    /// oldest record a group has yet to handle is (exact time lag). `None`
    /// when no record is stored there (before the log start, at or past the
    /// high watermark) or the backend cannot tell.
    fn timestamp_at(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> impl Future<Output = Result<Option<i64>>> + Send {
        let _ = (topic, partition, offset);
        async { Ok(None) }
    }
}

/// A member of a consumer group.
pub trait Consumer: Send + 'static {
    /// Waits up to `timeout` for records on the assigned partitions and returns
    /// at most `max` of them, in offset order per partition. An empty batch
    /// means nothing arrived in time.
    ///
    /// Cancel-safe, in every backend: dropping the future before it
    /// completes (a `tokio::select!` on shutdown, a timeout) loses no
    /// record; the next poll returns whatever the dropped one had taken.
    /// The conformance suite checks it.
    fn poll(
        &mut self,
        max: usize,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<Record>>> + Send;

    /// Durably stores the group's positions (next offsets to read). Call it
    /// only after the records before the positions are fully handled.
    fn commit(&mut self, positions: &[Position]) -> impl Future<Output = Result<()>> + Send;

    /// Moves every assigned partition (now and at later assignments of this
    /// member until the next poll returns records) to `target`.
    fn seek(&mut self, target: Seek) -> impl Future<Output = Result<()>> + Send;

    /// The partitions currently assigned to this member.
    fn assignment(&self) -> Vec<TopicPartition>;
}

/// Conveniences over any [`EventLog`].
pub trait EventLogExt: EventLog {
    /// Creates the topic unless it exists. Returns whether it was created.
    fn ensure_topic(&self, spec: &TopicSpec) -> impl Future<Output = Result<bool>> + Send {
        async move {
            match self.create_topic(spec).await {
                Ok(()) => Ok(true),
                Err(crate::Error::TopicExists(_)) => Ok(false),
                Err(e) => Err(e),
            }
        }
    }

    /// Appends one record.
    fn append_one(
        &self,
        topic: &str,
        record: NewRecord,
    ) -> impl Future<Output = Result<Appended>> + Send {
        async move {
            let mut out = self.append(topic, vec![record]).await?;
            out.pop()
                .ok_or_else(|| crate::Error::Kafka("append returned no acknowledgement".into()))
        }
    }
}

impl<L: EventLog> EventLogExt for L {}
