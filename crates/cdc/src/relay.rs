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
//! First start: a snapshot. Under SQLite's write lock, every row of every
//! table is copied to a staging table together with the outbox position at
//! that instant; the staged rows are sent as `op: r` (the very last with
//! `snapshot: "last"`), resumably and exactly once like the outbox; then
//! streaming starts after that position, so no change is missed or sent
//! twice across the hand-over, however often the relay is stopped.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use ultracore_log::{now_millis, read_to_end, EventLog, NewRecord, Seek};
use ultracore_runtime::CancellationToken;

use crate::envelope::{record_key, ChangeEvent, Op, SnapshotMark, Source};
use crate::sqlite::{OutboxRow, RelayState, SqliteDb};
use crate::tables::{Table, TABLES};
use crate::{Error, Result};

/// The header every streamed record carries: its outbox `seq` (decimal).
pub const SEQ_HEADER: &str = "ultracore.cdc.seq";
/// The header every snapshot record carries: its row's place in the snapshot.
pub const SNAPSHOT_HEADER: &str = "ultracore.cdc.snapshot";
/// The header naming the database a record came from (its relay instance id).
pub const SOURCE_HEADER: &str = "ultracore.cdc.source";

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
    /// How long after its change was made the last batch became durable
    /// (milliseconds): how far behind the database the relay runs.
    pub last_lag_ms: Option<i64>,
}

impl RelayProgress {
    /// The relay's figures as metrics, read from `progress` at each scrape.
    pub fn register(registry: &ultracore_metrics::Registry, progress: Arc<Mutex<RelayProgress>>) {
        use ultracore_metrics::{Exposition, FnCollector, Kind};
        let weak = Arc::downgrade(&progress);
        registry.register(
            "cdc",
            Arc::new(FnCollector(move |out: &mut Exposition| {
                let Some(p) = weak.upgrade() else {
                    return;
                };
                let p = p.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let mut gauge = |name: &str, help: &str, kind: Kind, value: f64| {
                    out.family(name, help, kind);
                    out.sample(name, &[], value);
                };
                gauge(
                    "ultracore_cdc_events_total",
                    "Change events (snapshot rows included) the relay appended to db.changes.*.",
                    Kind::Counter,
                    p.events as f64,
                );
                gauge(
                    "ultracore_cdc_snapshot_done",
                    "1 once the initial snapshot is on the log.",
                    Kind::Gauge,
                    if p.snapshot_done { 1.0 } else { 0.0 },
                );
                gauge(
                    "ultracore_cdc_recovered_records",
                    "Records of an unconfirmed batch found on the log at start (not sent again).",
                    Kind::Gauge,
                    p.recovered as f64,
                );
                if let Some(ms) = p.last_commit_ms {
                    gauge(
                        "ultracore_cdc_last_commit_timestamp_seconds",
                        "When the relay last made a batch durable.",
                        Kind::Gauge,
                        ms as f64 / 1000.0,
                    );
                }
                if let Some(ms) = p.last_lag_ms {
                    gauge(
                        "ultracore_cdc_lag_seconds",
                        "From a change's commit in the database to its event durable on the log, for the last batch.",
                        Kind::Gauge,
                        ms as f64 / 1000.0,
                    );
                }
            })),
        );
    }
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
        ensure_topics(&self.log).await?;
        let db = self.db.clone();
        let state = blocking(move || db.stage_snapshot(now_millis())).await?;
        let present = self.recover(&state).await?;
        self.update(|p| {
            p.snapshot_done = state.snapshot_done;
            p.position = state.position;
            p.recovered = present.len() as u64;
        });
        Ok(Streaming { state, present })
    }

    /// What is on the log past `state`: a batch that became durable just
    /// before a crash (records of this database only).
    async fn recover(&self, state: &RelayState) -> Result<HashSet<Sent>> {
        let mut present = HashSet::new();
        read_window(
            &self.log,
            &self.options,
            &state.instance,
            state.committed_at_ms,
            |r| {
                if let Some(seq) = header_number(r, SEQ_HEADER).filter(|&s| s > state.position) {
                    present.insert(Sent::Change(seq, r.value.is_empty()));
                } else if let Some(idx) =
                    header_number(r, SNAPSHOT_HEADER).filter(|&i| i > state.snapshot_relayed)
                {
                    present.insert(Sent::Snapshot(idx));
                }
            },
        )
        .await?;
        if !present.is_empty() {
            tracing::info!(
                records = present.len(),
                position = state.position,
                "found relayed changes the last run did not confirm; they are not sent again"
            );
        }
        Ok(present)
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

    /// Relays one batch; returns the rows it covered (0: nothing waiting).
    async fn relay_batch(&self, stream: &mut Streaming) -> Result<usize> {
        if stream.state.snapshot_done {
            self.outbox_batch(stream).await
        } else {
            self.snapshot_batch(stream).await
        }
    }

    /// One batch of the staged snapshot. An unfinished snapshot is always
    /// work at hand, so this never answers 0 until it is done.
    async fn snapshot_batch(&self, stream: &mut Streaming) -> Result<usize> {
        let db = self.db.clone();
        let (after, limit) = (
            stream.state.snapshot_relayed,
            self.options.snapshot_chunk.max(1),
        );
        let rows = blocking(move || db.snapshot_after(after, limit)).await?;
        let high = stream.state.snapshot_high.unwrap_or(0);
        let total = stream.state.snapshot_total;
        let instance = stream.state.instance.clone();
        let now = now_millis();
        let mut batch = Vec::with_capacity(rows.len());
        for row in rows
            .iter()
            .filter(|r| !stream.present.contains(&Sent::Snapshot(r.idx)))
        {
            let mark = if row.idx == total {
                SnapshotMark::Last
            } else {
                SnapshotMark::True
            };
            let event = ChangeEvent {
                before: None,
                after: Some(row.row.clone()),
                source: self.source(row.table, now, mark, high),
                op: Op::Read,
                ts_ms: now,
                transaction: None,
            };
            let key = record_key(row.table.key, &Value::String(row.key.clone()));
            let record = NewRecord::new(key, event.to_bytes())
                .with_header(SNAPSHOT_HEADER, row.idx.to_string())
                .with_header(SOURCE_HEADER, instance.clone())
                .with_timestamp(now);
            batch.push((row.table, record));
        }
        let sent = batch.len() as u64;
        self.append(batch).await?;
        let relayed = rows.last().map_or(total, |r| r.idx);
        let mut state = RelayState {
            snapshot_relayed: relayed,
            committed_at_ms: now_millis(),
            ..stream.state.clone()
        };
        if relayed >= total {
            state.snapshot_done = true;
            state.position = state.position.max(high);
            tracing::info!(rows = total, position = high, "snapshot taken");
        }
        self.commit(stream, state).await?;
        self.update(|p| p.events += sent);
        Ok(rows.len().max(1))
    }

    /// One batch of the outbox; returns its rows (0: none waiting).
    async fn outbox_batch(&self, stream: &mut Streaming) -> Result<usize> {
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
            let (event, tombstone) = self.records(row, now, &stream.state.instance);
            if !stream.present.contains(&Sent::Change(row.seq, false)) {
                batch.push((row.table, event));
                events += 1;
            }
            if let Some(t) =
                tombstone.filter(|_| !stream.present.contains(&Sent::Change(row.seq, true)))
            {
                batch.push((row.table, t));
            }
        }
        self.append(batch).await?;
        let state = RelayState {
            position: last_seq,
            committed_at_ms: now_millis(),
            ..stream.state.clone()
        };
        self.commit(stream, state).await?;
        let durable = now_millis();
        self.update(|p| {
            p.events += events;
            p.last_change_ms = Some(last_change);
            p.last_lag_ms = Some((durable - last_change).max(0));
        });
        Ok(rows.len())
    }

    /// Makes `state` durable once what it covers is on the log.
    async fn commit(&self, stream: &mut Streaming, state: RelayState) -> Result<()> {
        let db = self.db.clone();
        let commit = state.clone();
        blocking(move || db.commit_relay(&commit)).await?;
        stream.present.retain(|s| match *s {
            Sent::Change(seq, _) => seq > state.position,
            Sent::Snapshot(idx) => idx > state.snapshot_relayed,
        });
        self.update(|p| {
            p.snapshot_done = state.snapshot_done;
            p.position = state.position;
            p.last_commit_ms = Some(state.committed_at_ms);
        });
        stream.state = state;
        Ok(())
    }

    /// The change event of an outbox row, and the tombstone after a delete.
    fn records(&self, row: &OutboxRow, now: i64, instance: &str) -> (NewRecord, Option<NewRecord>) {
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
            .with_header(SOURCE_HEADER, instance)
            .with_timestamp(now);
        let tombstone = (row.op == Op::Delete).then(|| {
            NewRecord::new(key, Vec::new())
                .with_header(SEQ_HEADER, seq)
                .with_header(SOURCE_HEADER, instance)
                .with_timestamp(now)
        });
        (record, tombstone)
    }

    async fn append(&self, batch: Vec<(&'static Table, NewRecord)>) -> Result<()> {
        append(&self.log, batch).await
    }

    fn update(&self, f: impl FnOnce(&mut RelayProgress)) {
        f(&mut self.progress.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Where the relay stands.
#[derive(Debug)]
struct Streaming {
    state: RelayState,
    /// Records already on the log past `state` (after a crash).
    present: HashSet<Sent>,
}

/// A record the relay writes, by what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Sent {
    /// An outbox change (`seq`), or its tombstone (`true`).
    Change(u64, bool),
    /// A snapshot row (`idx`).
    Snapshot(u64),
}

/// Appends records to their tables' topics, in order per topic; returns
/// once all are durable.
pub(crate) async fn append<L: EventLog>(
    log: &L,
    batch: Vec<(&'static Table, NewRecord)>,
) -> Result<()> {
    let mut by_topic: Vec<(&'static str, Vec<NewRecord>)> = Vec::new();
    for (table, record) in batch {
        match by_topic.iter_mut().find(|(t, _)| *t == table.topic) {
            Some((_, records)) => records.push(record),
            None => by_topic.push((table.topic, vec![record])),
        }
    }
    let appends = by_topic
        .into_iter()
        .map(|(topic, records)| log.append(topic, records));
    for result in futures::future::join_all(appends).await {
        result?;
    }
    Ok(())
}

/// Reads every change topic from a little before `since_ms` to its end and
/// hands `visit` the records written for the database `instance`: what a
/// relay finds of the batch it had in flight when it stopped.
pub(crate) async fn read_window<L: EventLog>(
    log: &L,
    options: &RelayOptions,
    instance: &str,
    since_ms: i64,
    mut visit: impl FnMut(&ultracore_log::Record),
) -> Result<()> {
    let from = Seek::Timestamp(since_ms.saturating_sub(RECOVERY_SLACK_MS));
    let deadline = Instant::now() + options.recovery_timeout;
    for table in TABLES {
        let read = read_to_end(
            log,
            "cdc-relay-recovery",
            table.topic,
            from,
            deadline,
            options.recovery_idle,
            |r| {
                if r.header(SOURCE_HEADER) == Some(instance.as_bytes()) {
                    visit(r);
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
    Ok(())
}

/// A header holding a decimal number.
pub(crate) fn header_number(r: &ultracore_log::Record, name: &str) -> Option<u64> {
    r.header(name)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|s| s.parse::<u64>().ok())
}

/// The topics of the captured tables, created as the catalogue says.
pub(crate) async fn ensure_topics<L: EventLog>(log: &L) -> Result<()> {
    let topics: Vec<&str> = TABLES.iter().map(|t| t.topic).collect();
    ultracore_runtime::catalogue::ensure(log, &topics)
        .await
        .map_err(|e| Error::Setup(format!("creating the change topics: {e}")))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Corrupt(format!("a database call panicked: {e}")))?
}
