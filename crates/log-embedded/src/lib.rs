//! The embedded event log: UltraCore's default backend. Durable, single
//! node, no servers to install.
//!
//! Each topic-partition is a directory of segment files. A record is a
//! length-prefixed frame with its own CRC32C; each segment has a sparse offset
//! index and a time index. Appends are acknowledged only after `fdatasync`,
//! and concurrent appends share one (group commit). On open, a torn tail
//! left by a crash is detected by checksum and truncated with a warning; a
//! corrupt record in the middle of a segment is an error naming the file and
//! position, never data ([`repair`] cuts the segment there, keeping a copy
//! of what it cuts). A failed write or fsync, while committing or while
//! rolling to a new segment, stops the writer: nothing more is acknowledged
//! until a restart recovers from what is on disk
//! ([`EmbeddedLog::stopped`] says why). One process writes a data directory
//! (a lock file says which); others may open it read-only and follow it.
//!
//! # Layout
//!
//! - `codec`: the record frame (encode, verify, decode).
//! - `segment`: one segment file and its indexes; scanning for recovery.
//! - `partition`: a partition's segments, append staging, reads, seek by
//!   time, recovery, retention.
//! - `writer`: the writer thread: group commit and fsync.
//! - `groups`: consumer-group membership, assignment, committed offsets.
//! - `consumer`: [`EmbeddedConsumer`].
//! - `lock`: the single-writer lock.
//! - `repair`: [`repair`], cutting damaged segments at their first bad record.
//! - `log`: [`EmbeddedLog`], the handle, and its `EventLog` impl.

mod codec;
mod consumer;
mod groups;
mod lock;
mod log;
mod partition;
mod repair;
mod segment;
mod writer;

pub use consumer::EmbeddedConsumer;
pub use log::{EmbeddedLog, EmbeddedOptions, SyncMode};
pub use repair::{repair, Cut, RepairReport};

/// Frame encoding, exposed for tools and tests that write raw segment bytes.
pub mod frame {
    pub use crate::codec::{decode, encode, frame_len, FrameError, MAX_RECORD_BYTES};
}
