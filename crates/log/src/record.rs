use std::time::Duration;

/// Milliseconds since the Unix epoch, the timestamp unit of every record (as in Kafka).
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A record header: a string key and opaque bytes, as in Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Vec<u8>,
}

impl Header {
    pub fn new(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Header {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A record to append. It has no offset yet: the log assigns one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRecord {
    /// Decides the partition (murmur2, as Kafka) unless `partition` is set.
    /// One key, one partition: records with the same key keep their order.
    pub key: Option<Vec<u8>>,
    /// The value; empty is a tombstone (Kafka's null value, which
    /// compaction and change-data-capture consumers read as a delete).
    pub value: Vec<u8>,
    pub headers: Vec<Header>,
    /// Milliseconds since the epoch; `None` means "now" at append time.
    pub timestamp: Option<i64>,
    /// An explicit partition, overriding the key hash.
    pub partition: Option<u32>,
}

impl NewRecord {
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        NewRecord {
            key: Some(key.into()),
            value: value.into(),
            ..Default::default()
        }
    }

    pub fn unkeyed(value: impl Into<Vec<u8>>) -> Self {
        NewRecord {
            value: value.into(),
            ..Default::default()
        }
    }

    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }

    pub fn with_timestamp(mut self, millis: i64) -> Self {
        self.timestamp = Some(millis);
        self
    }

    pub fn with_partition(mut self, partition: u32) -> Self {
        self.partition = Some(partition);
        self
    }
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<Header>,
}

impl Record {
    /// The first header with this key.
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.key == key)
            .map(|h| h.value.as_slice())
    }

    /// The position to commit once this record is handled: the next offset.
    pub fn next_position(&self) -> Position {
        Position {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset + 1,
        }
    }
}

/// Where an appended record landed. Returned only once the record is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub partition: u32,
    pub offset: u64,
    pub timestamp: i64,
}

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

/// A consumer position: `offset` is the next offset to read (Kafka's convention).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

impl Position {
    /// The positions to commit after handling `records`: per topic and
    /// partition, the offset after the last record of the batch.
    pub fn after(records: &[Record]) -> Vec<Position> {
        let mut out: Vec<Position> = Vec::new();
        for r in records {
            match out
                .iter_mut()
                .find(|p| p.topic == r.topic && p.partition == r.partition)
            {
                Some(p) => p.offset = p.offset.max(r.offset + 1),
                None => out.push(Position {
                    topic: r.topic.clone(),
                    partition: r.partition,
                    offset: r.offset + 1,
                }),
            }
        }
        out
    }
}

/// How long a topic keeps records.
///
/// Keeping everything is a state of its own rather than "no limit given",
/// because a topic spec without a retention takes the log's default
/// (`EVENT_STORE_RETENTION_DAYS`, or the broker's on Kafka), and topics that
/// must never lose a record (event-sourced ones) need to say so explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Every record is kept as long as the topic exists.
    Forever,
    /// Whole segments are deleted once every record in them is older than
    /// `max_age`, or while the partition is larger than `max_bytes`; the
    /// active segment is never deleted. With neither set nothing is deleted,
    /// as with [`Retention::Forever`]; [`Retention::limited`] returns
    /// `Forever` then.
    Limited {
        max_age: Option<Duration>,
        max_bytes: Option<u64>,
    },
}

impl Retention {
    /// Records older than `days` days are deleted; no size limit.
    pub fn days(days: u64) -> Self {
        Retention::limited(Some(Duration::from_secs(days.saturating_mul(86_400))), None)
    }

    /// Age and size limits; `Forever` when neither is set.
    pub fn limited(max_age: Option<Duration>, max_bytes: Option<u64>) -> Self {
        if max_age.is_none() && max_bytes.is_none() {
            Retention::Forever
        } else {
            Retention::Limited { max_age, max_bytes }
        }
    }

    /// Whether no record is ever deleted.
    pub fn is_forever(&self) -> bool {
        self.max_age().is_none() && self.max_bytes().is_none()
    }

    /// Records older than this are deleted; `None`: no age limit.
    pub fn max_age(&self) -> Option<Duration> {
        match self {
            Retention::Forever => None,
            Retention::Limited { max_age, .. } => *max_age,
        }
    }

    /// A partition is kept under this many bytes; `None`: no size limit.
    pub fn max_bytes(&self) -> Option<u64> {
        match self {
            Retention::Forever => None,
            Retention::Limited { max_bytes, .. } => *max_bytes,
        }
    }
}

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: u32,
    /// `None`: the log's default retention for new topics.
    pub retention: Option<Retention>,
}

impl TopicSpec {
    pub fn new(name: impl Into<String>, partitions: u32) -> Self {
        TopicSpec {
            name: name.into(),
            partitions,
            retention: None,
        }
    }

    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Topic names as Kafka accepts them: 1–249 of `[A-Za-z0-9._-]`, not `.` or `..`.
    pub fn validate_name(name: &str) -> crate::Result<()> {
        let ok = !name.is_empty()
            && name.len() <= 249
            && name != "."
            && name != ".."
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
        if ok {
            Ok(())
        } else {
            Err(crate::Error::InvalidArgument(format!(
                "topic name '{name}' is invalid: use 1 to 249 characters from A-Z a-z 0-9 . _ -"
            )))
        }
    }
}

/// One partition as described by the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: u32,
    /// The first offset still stored (retention moves it forward).
    pub log_start_offset: u64,
    /// One past the last durable record: the next offset to be assigned.
    pub high_watermark: u64,
}

/// A topic as described by the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: Vec<PartitionInfo>,
    /// `None`: the log could not say (a Kafka broker that refuses
    /// DescribeConfigs); the topic is described all the same.
    pub retention: Option<Retention>,
}

impl TopicInfo {
    /// Records currently stored, summed over partitions.
    pub fn records(&self) -> u64 {
        self.partitions
            .iter()
            .map(|p| p.high_watermark - p.log_start_offset)
            .sum()
    }
}

/// Where a consumer starts in a partition its group has never committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StartFrom {
    #[default]
    Earliest,
    Latest,
}

/// Where to move a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seek {
    Beginning,
    End,
    Offset(u64),
    /// The first record whose timestamp is at or after this many milliseconds
    /// since the epoch; the end of the partition if there is none.
    Timestamp(i64),
}

/// Lag of one consumer group on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    pub group: String,
    pub topic: String,
    pub partition: u32,
    /// The committed position (next offset to read); `None` if the group never committed.
    pub committed: Option<u64>,
    pub log_start_offset: u64,
    pub high_watermark: u64,
}

impl GroupLag {
    /// Records the group has yet to commit: from its committed position (or the
    /// start of the log when it never committed) to the high watermark.
    pub fn lag(&self) -> u64 {
        let from = self
            .committed
            .unwrap_or(self.log_start_offset)
            .max(self.log_start_offset);
        self.high_watermark.saturating_sub(from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_limit_at_all_is_forever() {
        assert_eq!(Retention::limited(None, None), Retention::Forever);
        assert!(Retention::Forever.is_forever());
        // Built by hand without limits, it still deletes nothing.
        let unlimited = Retention::Limited {
            max_age: None,
            max_bytes: None,
        };
        assert!(unlimited.is_forever());
        assert!(!Retention::days(1).is_forever());
        assert!(!Retention::limited(None, Some(1)).is_forever());
    }

    #[test]
    fn limits_read_back() {
        let r = Retention::limited(Some(Duration::from_secs(60)), Some(1_000));
        assert_eq!(r.max_age(), Some(Duration::from_secs(60)));
        assert_eq!(r.max_bytes(), Some(1_000));
        assert_eq!(
            Retention::days(2).max_age(),
            Some(Duration::from_secs(172_800))
        );
        assert_eq!(Retention::days(2).max_bytes(), None);
        assert_eq!(Retention::Forever.max_age(), None);
        assert_eq!(Retention::Forever.max_bytes(), None);
    }

    #[test]
    fn a_spec_without_retention_takes_the_default() {
        let spec = TopicSpec::new("t", 1);
        assert_eq!(spec.retention, None);
        let spec = spec.with_retention(Retention::Forever);
        assert_eq!(spec.retention, Some(Retention::Forever));
    }
}
