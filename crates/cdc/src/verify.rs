//! Replaying `db.changes.*` from the beginning and comparing with the
//! database: what a Debezium consumer that applies `after` (and deletes on
//! `d`) ends up with must be the table, row for row; per key, positions only
//! grow; and each change is on the log once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use ultracore_log::{read_to_end, EventLog, Record, Seek};

use crate::envelope::{ChangeEvent, Op, Row, SnapshotMark};
use crate::tables::{Table, TABLES};
use crate::Result;

/// What replaying one table's topic found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableCheck {
    pub table: String,
    pub topic: String,
    pub records: u64,
    /// Events per op code.
    pub ops: BTreeMap<String, u64>,
    pub tombstones: u64,
    /// Snapshot events marked `last`.
    pub snapshot_last: u64,
    /// Rows the replay holds, and the table.
    pub replayed_rows: u64,
    pub table_rows: u64,
    /// Keys in the table the replay lacks / holds but the table does not /
    /// whose values differ (at most 20 of each are listed).
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub differing: Vec<String>,
    /// Streamed changes seen more than once (same position).
    pub duplicates: u64,
    /// Changes of a key whose position was not above the key's previous one.
    pub out_of_order: u64,
    /// Values that are not change events, tombstones after something other
    /// than a delete.
    pub malformed: u64,
}

impl TableCheck {
    pub fn equal(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.differing.is_empty()
    }

    pub fn ok(&self) -> bool {
        self.equal() && self.duplicates == 0 && self.out_of_order == 0 && self.malformed == 0
    }
}

/// Every captured table's check, and whether the log was read to its end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub tables: Vec<TableCheck>,
    pub complete: bool,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.complete && self.tables.iter().all(TableCheck::ok)
    }
}

/// Where a change stands in commit order: the SQLite outbox `seq`; on
/// PostgreSQL its transaction's commit LSN (the head of `sequence`), then
/// its own LSN (a change can be written before an earlier transaction's
/// commit, so its own LSN alone does not order it). A snapshot row stands
/// at the snapshot's LSN.
pub fn position(event: &ChangeEvent) -> Option<(u64, u64)> {
    if let Some(seq) = event.source.seq {
        return Some((seq, 0));
    }
    let lsn = event.source.lsn?;
    let commit = event
        .source
        .sequence
        .as_deref()
        .and_then(|s| serde_json::from_str::<Vec<Option<String>>>(s).ok())
        .and_then(|v| v.first().cloned().flatten())
        .and_then(|c| c.parse::<u64>().ok());
    Some(match commit {
        Some(commit) => (commit, lsn),
        None => (lsn, 0),
    })
}

/// Replays every captured table's topic and compares with `rows(table)`,
/// the table as it is now (read after the relay caught up).
pub async fn verify<L: EventLog>(
    log: &L,
    timeout: Duration,
    mut rows: impl FnMut(&Table) -> Result<Vec<Row>>,
) -> Result<Verification> {
    let deadline = Instant::now() + timeout;
    let mut out = Verification {
        complete: true,
        ..Default::default()
    };
    for table in TABLES {
        let mut replay = Replay::new(table);
        let read = read_to_end(
            log,
            "cdc-verify",
            table.topic,
            Seek::Beginning,
            deadline,
            Duration::from_millis(500),
            |r| replay.apply(r),
        )
        .await?;
        out.complete &= read.complete;
        out.tables.push(replay.compare(rows(table)?));
    }
    Ok(out)
}

/// One topic replayed in log order (per partition, which is per key).
struct Replay {
    table: &'static Table,
    check: TableCheck,
    state: HashMap<String, Row>,
    /// Key → the op of its last event, and its last position.
    last: HashMap<String, (Op, (u64, u64))>,
    seen: HashSet<((u64, u64), String)>,
}

impl Replay {
    fn new(table: &'static Table) -> Replay {
        Replay {
            table,
            check: TableCheck {
                table: table.name.into(),
                topic: table.topic.into(),
                ..Default::default()
            },
            state: HashMap::new(),
            last: HashMap::new(),
            seen: HashSet::new(),
        }
    }

    fn apply(&mut self, r: &Record) {
        self.check.records += 1;
        let key = r
            .key
            .as_deref()
            .and_then(|k| serde_json::from_slice::<Value>(k).ok())
            .and_then(|k| k.get(self.table.key).cloned());
        let Some(key) = key.map(|k| match k {
            Value::String(s) => s,
            other => other.to_string(),
        }) else {
            self.check.malformed += 1;
            return;
        };
        if r.value.is_empty() {
            self.check.tombstones += 1;
            if !matches!(self.last.get(&key), Some((Op::Delete, _))) {
                self.check.malformed += 1;
            }
            return;
        }
        let Ok(event) = serde_json::from_slice::<ChangeEvent>(&r.value) else {
            self.check.malformed += 1;
            return;
        };
        *self.check.ops.entry(event.op.code().into()).or_default() += 1;
        if event.source.snapshot == SnapshotMark::Last {
            self.check.snapshot_last += 1;
        }
        let pos = position(&event).unwrap_or_default();
        if event.op != Op::Read {
            if !self.seen.insert((pos, key.clone())) {
                self.check.duplicates += 1;
                return;
            }
            if self.last.get(&key).is_some_and(|&(_, last)| pos <= last) {
                self.check.out_of_order += 1;
            }
        }
        self.last.insert(key.clone(), (event.op, pos));
        match (event.op, event.after) {
            (Op::Delete, _) => {
                self.state.remove(&key);
            }
            (_, Some(after)) => {
                self.state.insert(key, after);
            }
            (_, None) => self.check.malformed += 1,
        }
    }

    fn compare(mut self, rows: Vec<Row>) -> TableCheck {
        const LISTED: usize = 20;
        self.check.replayed_rows = self.state.len() as u64;
        self.check.table_rows = rows.len() as u64;
        let key_of = |row: &Row| match row.get(self.table.key) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let mut table_keys = HashSet::with_capacity(rows.len());
        for row in &rows {
            let key = key_of(row);
            match self.state.get(&key) {
                None if self.check.missing.len() < LISTED => self.check.missing.push(key.clone()),
                Some(replayed) if replayed != row && self.check.differing.len() < LISTED => {
                    self.check.differing.push(key.clone())
                }
                _ => {}
            }
            table_keys.insert(key);
        }
        let mut extra: Vec<String> = self
            .state
            .keys()
            .filter(|k| !table_keys.contains(*k))
            .cloned()
            .collect();
        extra.sort();
        extra.truncate(LISTED);
        self.check.extra = extra;
        self.check
    }
}
