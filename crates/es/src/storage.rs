//! The storage seam: everything the event store and the projections keep
//! outside the log goes through [`Storage`], implemented on SQLite
//! ([`SqliteStorage`]) and PostgreSQL ([`PostgresStorage`]) without
//! touching aggregate or projection code.
//!
//! What is stored, all of it derived from the log and rebuildable:
//! - the stream index: every accepted event of every aggregate, by
//!   (aggregate type, aggregate id, version), so a load reads one
//!   aggregate's events without scanning its topic;
//! - snapshots of aggregate state, with the state schema they were written in;
//! - per follower (the index, each projection): checkpoints (next offset per
//!   partition) and watermarks (last applied version per aggregate);
//! - read models: JSON documents per projection, view and key.
//!
//! A follower's batch (its changes, watermarks and checkpoints) is written
//! in one transaction, so a crash leaves either all or none of it.

use std::collections::BTreeMap;

use serde_json::Value;
use uuid::Uuid;

use crate::Result;

mod postgres;
mod sqlite;

pub use postgres::PostgresStorage;
pub use sqlite::SqliteStorage;
pub(crate) use sqlite::INDEX_FOLLOWER;

/// The last event a follower accepted for one aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Watermark {
    /// The aggregate version after that event (0: none yet).
    pub version: u64,
    /// The save (commit id) that event belonged to.
    pub commit: Option<Uuid>,
}

/// One accepted event, as the stream index keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedEvent {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub version: u64,
    pub event_id: Uuid,
    /// The envelope timestamp, milliseconds since the epoch.
    pub timestamp: i64,
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    /// The record value: the envelope JSON, byte for byte.
    pub envelope: Vec<u8>,
}

/// A stored snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub version: u64,
    /// [`crate::Aggregate::STATE_SCHEMA`] of the code that wrote it.
    pub state_schema: u32,
    /// The state as JSON.
    pub state: Vec<u8>,
}

/// Where the event store and the projections keep what they derive from the log.
pub trait Storage: Send + std::fmt::Debug + 'static {
    /// Where it is, for messages (a path or a URL without credentials).
    fn location(&self) -> String;

    /// An id generated when the database was created; names the consumer
    /// groups of its followers, so two databases never share a group.
    fn instance_id(&self) -> Result<String>;

    /// A follower's checkpoints: (topic, partition) → next offset to apply.
    fn checkpoints(&mut self, follower: &str) -> Result<BTreeMap<(String, u32), u64>>;

    /// A follower's watermark for one aggregate.
    fn watermark(
        &mut self,
        follower: &str,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Watermark>;

    /// Writes one batch of a follower atomically: its index events and
    /// document changes, then its watermarks and checkpoints.
    fn commit(&mut self, follower: &str, batch: &Batch) -> Result<()>;

    /// The indexed events of one aggregate with `after < version <= upto`, in version order.
    fn stream(
        &mut self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        upto: u64,
    ) -> Result<Vec<Vec<u8>>>;

    /// The version of the last indexed event of an aggregate stamped at or before `millis`.
    fn version_at(&mut self, aggregate_type: &str, aggregate_id: &str, millis: i64) -> Result<u64>;

    /// The aggregate and version of an indexed event, if it is indexed.
    fn find_event(&mut self, event_id: Uuid) -> Result<Option<(String, String, u64)>>;

    /// Aggregate ids of a type that have events, in id order (at most `limit`).
    fn aggregate_ids(&mut self, aggregate_type: &str, limit: usize) -> Result<Vec<String>>;

    fn snapshot(&mut self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<Snapshot>>;

    /// Replaces the aggregate's snapshot.
    fn put_snapshot(
        &mut self,
        aggregate_type: &str,
        aggregate_id: &str,
        snapshot: &Snapshot,
    ) -> Result<()>;

    /// The generation of a projection: bumped by every rebuild, it names the
    /// consumer group, so a rebuild starts from offset 0 in a fresh group.
    fn generation(&mut self, follower: &str) -> Result<u64>;

    /// Deletes a follower's documents, index events, watermarks and
    /// checkpoints and bumps its generation, in one transaction.
    fn reset(&mut self, follower: &str) -> Result<u64>;

    /// One read-model document.
    fn document(&mut self, projection: &str, view: &str, key: &str) -> Result<Option<Value>>;

    /// Every document of a view, in key order.
    fn documents(&mut self, projection: &str, view: &str) -> Result<Vec<(String, Value)>>;

    /// At most `limit` documents of a view whose keys start with `prefix`
    /// and sort after `after` (when given), in key order: one range of the
    /// documents' key index, however many documents the view holds.
    fn documents_page(
        &mut self,
        projection: &str,
        view: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>>;
}

/// The smallest string above every string that starts with `prefix`
/// (`pf-1/` gives `pf-10`), or `None` when there is none (an empty prefix,
/// or one ending in the largest character).
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = char::from_u32(last as u32 + 1) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// What one follower batch writes.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub events: Vec<IndexedEvent>,
    /// (view, key) → new document, or `None` to delete it.
    pub documents: BTreeMap<(String, String), Option<Value>>,
    /// (aggregate type, aggregate id) → watermark.
    pub watermarks: BTreeMap<(String, String), Watermark>,
    /// (topic, partition) → next offset.
    pub checkpoints: BTreeMap<(String, u32), u64>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.documents.is_empty()
            && self.watermarks.is_empty()
            && self.checkpoints.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_prefix_ends_at_its_next_string() {
        assert_eq!(super::prefix_end("pf-1/").as_deref(), Some("pf-10"));
        assert_eq!(super::prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(super::prefix_end(""), None);
    }
}
