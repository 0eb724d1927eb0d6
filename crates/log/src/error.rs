use std::path::PathBuf;

/// Errors from any [`crate::EventLog`] backend.
///
/// Variants separate what the caller did wrong (unknown topic, bad argument),
/// what is wrong with stored data (corruption) and what is wrong with the
/// infrastructure (I/O, broker unreachable), so callers can map them to
/// 4xx / 5xx and decide whether a retry can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("topic '{0}' does not exist; create it first (ultracore events topics lists the existing ones)")]
    UnknownTopic(String),
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("partition {partition} does not exist in topic '{topic}' ({partitions} partitions)")]
    UnknownPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("record of {size} bytes exceeds the maximum record size of {max} bytes")]
    RecordTooLarge { size: usize, max: usize },
    #[error("corrupt record in {} at byte {position}: {reason}; the data after it was not read. Restore the segment from a replica or backup, or cut it there with `ultracore events repair` (which keeps a copy of what it cuts)", segment.display())]
    Corrupt {
        segment: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("data directory {} is locked by process {pid}; stop it, or use a read-only command", dir.display())]
    Locked { dir: PathBuf, pid: String },
    #[error("the log was opened read-only; {0} needs the writer (stop the server or run it inside the server)")]
    ReadOnly(&'static str),
    #[error("offset {offset} is out of range for {topic}/{partition} (valid {start}..{end})")]
    OffsetOutOfRange {
        topic: String,
        partition: u32,
        offset: u64,
        start: u64,
        end: u64,
    },
    #[error("cannot reach Kafka at {address}: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("Kafka error: {0}")]
    Kafka(String),
    #[error("the log is unavailable: {0}")]
    Unavailable(String),
    /// A write or fsync failed (commonly: the disk is full). Nothing after
    /// it is acknowledged, and retrying cannot help until a restart
    /// recovers the log from what is really on disk.
    #[error("the log stopped accepting writes: {reason}. Nothing after that failure was acknowledged; free disk space (or fix the device) and restart the process, which recovers every acknowledged record")]
    Stopped { reason: String },
    #[error("the log is shut down")]
    Closed,
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
