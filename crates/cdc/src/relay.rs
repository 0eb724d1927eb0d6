//! The outbox relay: SQLite's captured changes onto `db.changes.*`, in
//! commit order, each change exactly once on the embedded log.
//!
//! A batch of outbox rows becomes Debezium change events (and a tombstone
//! after each delete), is appended, and only once the log says it is
//! durable does the relay move its position and drop the rows from the
//! outbox, in one SQLite transaction. A crash between the two leaves a batch
//! on the log that the position does not cover. So at start the relay reads
//! the records stamped since its last position move (every record carries
//! its outbox `seq` in a header, a tombstone too) and skips exactly those:
//! nothing is lost and, when that read completes, nothing is sent twice.
//! On Kafka, where an append may also be retried by the producer, a
//! duplicate can happen and carries the same `source.seq`.
//!
//! First start: a snapshot. The rows of every table are read in one read
//! transaction together with the outbox position at that instant, and sent
//! as `op: r` (the very last with `snapshot: "last"`); streaming starts
//! after that position, so no change is missed or sent twice across the
//! hand-over. A relay stopped during its snapshot takes it again (as
//! Debezium does), so `r` events can repeat then, never `c`/`u`/`d`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use ultracore_log::{now_millis, read_to_end, EventLog, NewRecord, Seek};
use ultracore_runtime::CancellationToken;

use crate::envelope::{record_key, ChangeEvent, Op, Row, SnapshotMark, Source};
use crate::sqlite::{OutboxRow, RelayState, SqliteDb};
use crate::tables::{Table, TABLES};
use crate::{Error, Result};

/// The header every relayed record carries: its outbox `seq` (decimal).
pub const SEQ_HEADER: &str = "ultracore.cdc.seq";

/// How far before its last position move the relay looks for records of a
/// batch in flight at a crash (clock steps smaller than this are covered).
const RECOVERY_SLACK_MS: i64 = 5_000;

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Outbox rows per batch.
    pub batch: usize,
    /// How often an idle relay looks at the outbox.
    pub poll: Duration,
    /// The logical server name (`source.name`).
    pub server_name: String,
    /// Rows per snapshot read.
    pub snapshot_chunk: usize,
    /// How long recovery may read the log at start.
    pub recovery_timeout: Duration,
    /// A recovery read by time is complete after this long without a record.
    pub recovery_idle: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            batch: 1_000,
            poll: Duration::from_millis(5),
            server_name: "ultracore".into(),
            snapshot_chunk: 1_000,
            recovery_timeout: Duration::from_secs(60),
            recovery_idle: Duration::from_millis(500),
        }
    }
}

/// What the relay has done, for `cdc status` and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RelayProgress {
    pub snapshot_done: bool,
    /// Every change up to this outbox position is durable on the log.
    pub position: u64,
    /// Change events appended by this process (tombstones not counted).
    pub events: u64,
    /// Records found on the log at start that a crash had left unconfirmed.
    pub recovered: u64,
    /// When the last relayed change was made in the database.
    pub last_change_ms: Option<i64>,
    /// When the last batch became durable.
    pub last_commit_ms: Option<i64>,
}

/// The relay of one SQLite database onto one log.
#[derive(Debug)]
pub struct SqliteRelay<L: EventLog> {
    log: L,
    db: Arc<SqliteDb>,
    options: RelayOptions,
    progress: Arc<Mutex<RelayProgress>>,
}

impl<L: EventLog> SqliteRelay<L> {
    /// A relay with its own connection to the database at `path`.
    pub fn open(log: L, path: impl AsRef<std::path::Path>, options: RelayOptions) -> Result<Self> {
        Ok(SqliteRelay {
            log,
            db: Arc::new(SqliteDb::open(path)?),
            options,
            progress: Arc::default(),
        })
    }

    pub fn progress(&self) -> RelayProgress {
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A handle on the progress that stays valid while the relay runs.
    pub fn progress_handle(&self) -> Arc<Mutex<RelayProgress>> {
        self.progress.clone()
    }

    /// Recovers, takes the snapshot if none was taken, then relays until
    /// `token` is cancelled (finishing the batch at hand).
    pub async fn run(&self, token: CancellationToken) -> Result<()> {
        let mut stream = self.start().await?;
        loop {
            let relayed = self.relay_batch(&mut stream).await?;
            if relayed == 0 {
                tokio::select! {
                    _ = token.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(self.options.poll) => {}
                }
            } else if token.is_cancelled() {
                return Ok(());
            }
        }
    }

    /// Recovers and snapshots like [`SqliteRelay::run`], then relays until
    /// the outbox is empty; returns the events appended (tests, tools).
    pub async fn drain(&self) -> Result<u64> {
        let mut stream = self.start().await?;
        let before = self.progress().events;
        while self.relay_batch(&mut stream).await? > 0 {}
        Ok(self.progress().events - before)
    }

    async fn start(&self) -> Result<Streaming> {
        let topics: Vec<&str> = TABLES.iter().map(|t| t.topic).collect();
        ultracore_runtime::catalogue::ensure(&self.log, &topics)
            .await
            .map_err(|e| Error::Corrupt(format!("creating the change topics: {e}")))?;
        let db = self.db.clone();
        let mut state = blocking(move || db.relay_state()).await?;
        let present = if state.snapshot_done {
            self.recover(state).await?
        } else {
            state = self.snapshot().await?;
            HashSet::new()
        };
        self.update(|p| {
            p.snapshot_done = state.snapshot_done;
            p.position = state.position;
            p.recovered = present.len() as u64;
        });
        Ok(Streaming { state, present })
    }

    /// The (seq, tombstone) pairs on the log past `state.position`: a batch
    /// that became durable just before a crash.
    async fn recover(&self, state: RelayState) -> Result<HashSet<(u64, bool)>> {
        let from = Seek::Timestamp(state.committed_at_ms.saturating_sub(RECOVERY_SLACK_MS));
        let deadline = Instant::now() + self.options.recovery_timeout;
        let mut present = HashSet::new();
        for table in TABLES {
            let read = read_to_end(
                &self.log,
                "cdc-relay-recovery",
                table.topic,
                from,
                deadline,
                self.options.recovery_idle,
                |r| {
                    let seq = r
                        .header(SEQ_HEADER)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|s| s.parse::<u64>().ok());
                    if let Some(seq) = seq.filter(|&s| s > state.position) {
                        present.insert((seq, r.value.is_empty()));
                    }
                },
            )
            .await?;
            if !read.complete {
                tracing::warn!(
                    topic = table.topic,
                    records = read.records,
                    "the relay could not read the end of its topic in time: changes of a batch in flight at the last stop may be sent again"
                );
            }
        }
        if !present.is_empty() {
            tracing::info!(
                records = present.len(),
                position = state.position,
                "found relayed changes the last run did not confirm; they are not sent again"
            );
        }
        Ok(present)
    }

    /// The initial snapshot; returns the state it leaves.
    async fn snapshot(&self) -> Result<RelayState> {
        let (tx, mut rx) = mpsc::channel::<(u64, &'static Table, Vec<Row>)>(2);
        let db = self.db.clone();
        let chunk = self.options.snapshot_chunk.max(1);
        let reader = tokio::task::spawn_blocking(move || {
            db.snapshot(chunk, |high, table, rows| {
                tx.blocking_send((high, table, rows)).is_ok()
            })
        });
        // The last row read is held back until the reader ends, so the
        // very last can be marked `snapshot: "last"`.
        let mut held: Option<(u64, &'static Table, Row)> = None;
        let mut sent = 0u64;
        while let Some((high, table, rows)) = rx.recv().await {
            let mut batch: Vec<(&'static Table, NewRecord)> = Vec::with_capacity(rows.len());
            for row in rows {
                if let Some((h, t, r)) = held.replace((high, table, row)) {
                    batch.push((t, self.snapshot_record(h, t, r, SnapshotMark::True)));
                }
            }
            sent += batch.len() as u64;
            self.append(batch).await?;
        }
        let high = reader
            .await
            .map_err(|e| Error::Corrupt(format!("the snapshot reader failed: {e}")))??;
        if let Some((h, t, r)) = held {
            self.append(vec![(t, self.snapshot_record(h, t, r, SnapshotMark::Last))])
                .await?;
            sent += 1;
        }
        let state = RelayState {
            snapshot_done: true,
            position: high,
            committed_at_ms: now_millis(),
        };
        let db = self.db.clone();
        blocking(move || db.commit_relay(state)).await?;
        tracing::info!(rows = sent, position = high, "snapshot taken");
        self.update(|p| p.events += sent);
        Ok(state)
    }

    fn snapshot_record(&self, high: u64, table: &Table, row: Row, mark: SnapshotMark) -> NewRecord {
        let now = now_millis();
        let key = row.get(table.key).cloned().unwrap_or(Value::Null);
        let event = ChangeEvent {
            before: None,
            after: Some(row),
            source: self.source(table, now, mark, high),
            op: Op::Read,
            ts_ms: now,
            transaction: None,
        };
        NewRecord::new(record_key(table.key, &key), event.to_bytes())
            .with_header(SEQ_HEADER, high.to_string())
            .with_timestamp(now)
    }

    fn source(&self, table: &Table, ts_ms: i64, snapshot: SnapshotMark, seq: u64) -> Source {
        Source {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            connector: "sqlite".into(),
            name: self.options.server_name.clone(),
            ts_ms,
            snapshot,
            db: "operational".into(),
            sequence: None,
            schema: "main".into(),
            table: table.name.into(),
            tx_id: None,
            lsn: None,
            seq: Some(seq),
        }
    }

    /// Relays one batch; returns the outbox rows it covered (0: none waiting).
    async fn relay_batch(&self, stream: &mut Streaming) -> Result<usize> {
        let db = self.db.clone();
        let (after, limit) = (stream.state.position, self.options.batch);
        let rows = blocking(move || db.outbox_after(after, limit)).await?;
        let Some(last) = rows.last() else {
            return Ok(0);
        };
        let (last_seq, last_change) = (last.seq, last.ts_ms);
        let now = now_millis();
        let mut batch = Vec::with_capacity(rows.len() + 8);
        let mut events = 0u64;
        for row in &rows {
            let (event, tombstone) = self.records(row, now);
            if !stream.present.contains(&(row.seq, false)) {
                batch.push((row.table, event));
                events += 1;
            }
            if let Some(t) = tombstone.filter(|_| !stream.present.contains(&(row.seq, true))) {
                batch.push((row.table, t));
            }
        }
        self.append(batch).await?;
        let state = RelayState {
            snapshot_done: true,
            position: last_seq,
            committed_at_ms: now_millis(),
        };
        let db = self.db.clone();
        blocking(move || db.commit_relay(state)).await?;
        stream.state = state;
        stream.present.retain(|&(seq, _)| seq > last_seq);
        self.update(|p| {
            p.position = last_seq;
            p.events += events;
            p.last_change_ms = Some(last_change);
            p.last_commit_ms = Some(state.committed_at_ms);
        });
        Ok(rows.len())
    }

    /// The change event of an outbox row, and the tombstone after a delete.
    fn records(&self, row: &OutboxRow, now: i64) -> (NewRecord, Option<NewRecord>) {
        let table = row.table;
        let key = record_key(table.key, &Value::String(row.key.clone()));
        let event = ChangeEvent {
            before: row.before.clone(),
            after: row.after.clone(),
            source: self.source(table, row.ts_ms, SnapshotMark::False, row.seq),
            op: row.op,
            ts_ms: now,
            transaction: None,
        };
        let seq = row.seq.to_string();
        let record = NewRecord::new(key.clone(), event.to_bytes())
            .with_header(SEQ_HEADER, seq.clone())
            .with_timestamp(now);
        let tombstone = (row.op == Op::Delete).then(|| {
            NewRecord::new(key, Vec::new())
                .with_header(SEQ_HEADER, seq)
                .with_timestamp(now)
        });
        (record, tombstone)
    }

    /// Appends records to their tables' topics, in order per topic; returns
    /// once all are durable.
    async fn append(&self, batch: Vec<(&'static Table, NewRecord)>) -> Result<()> {
        let mut by_topic: Vec<(&'static str, Vec<NewRecord>)> = Vec::new();
        for (table, record) in batch {
            match by_topic.iter_mut().find(|(t, _)| *t == table.topic) {
                Some((_, records)) => records.push(record),
                None => by_topic.push((table.topic, vec![record])),
            }
        }
        let appends = by_topic
            .into_iter()
            .map(|(topic, records)| self.log.append(topic, records));
        for result in futures::future::join_all(appends).await {
            result?;
        }
        Ok(())
    }

    fn update(&self, f: impl FnOnce(&mut RelayProgress)) {
        f(&mut self.progress.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Where streaming stands.
#[derive(Debug)]
struct Streaming {
    state: RelayState,
    /// Changes already on the log past `state.position` (after a crash).
    present: HashSet<(u64, bool)>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Corrupt(format!("a database call panicked: {e}")))?
}
