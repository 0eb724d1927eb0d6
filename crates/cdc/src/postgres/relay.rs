//! Change capture on PostgreSQL the way Debezium does it: logical
//! replication with the built-in `pgoutput` plugin, a publication of the
//! captured tables and a replication slot, over the streaming replication
//! protocol (`ultracore-pgrepl`).
//!
//! - **Snapshot.** The slot is created with an exported snapshot; in a
//!   `REPEATABLE READ` transaction that imports it, every row is copied to
//!   `ultracore_cdc_snapshot` with the slot's consistent point, in one
//!   commit. The staged rows are then sent as `op: r` (the last one
//!   `snapshot: "last"`) resumably, and streaming starts at the consistent
//!   point: the rows show exactly the changes committed before it, the
//!   stream exactly those after it, so there is no gap and no overlap, and
//!   a relay stopped half-way resumes the same snapshot.
//! - **Streaming.** Changes are gathered per transaction and sent at its
//!   commit, in commit order, with Debezium's `source` (`txId`, `lsn`,
//!   `sequence` = [last commit LSN, this LSN], commit time). Only once the
//!   log says they are durable is the position stored and the slot
//!   confirmed (`confirmed_flush_lsn`), so the slot never lets go of WAL
//!   whose changes are not on the log.
//! - **Exactly once on the embedded log.** Every record carries
//!   `<commit LSN>:<LSN>` in a header. A crash between the append and the
//!   confirmation leaves records the slot sends again: at start the relay
//!   reads what it wrote since its last stored position and skips those.
//!   On Kafka a producer retry can still duplicate a record; both copies
//!   carry the same `source.sequence`.
//! - **Heartbeats.** An idle slot pins WAL: the server's keepalives carry
//!   the WAL end, and when nothing is buffered or in flight the relay
//!   confirms it, at least every `status_interval`, so the slot follows the
//!   server even when the captured tables do not change.
//! - `wal_level` other than `logical` is refused at start with the setting
//!   named and how to change it.
//! - **TLS.** Both connections (the replication one and the plain SQL one)
//!   follow the URL's `sslmode` and `sslrootcert` with libpq's meanings,
//!   through the one implementation in [`ultracore_pgrepl::tls`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio_postgres::Client;
use ultracore_log::{now_millis, EventLog, NewRecord};
use ultracore_pgrepl::pgoutput::{self, Relation, Tuple};
use ultracore_pgrepl::url;
use ultracore_pgrepl::{sqlstate, Lsn, ReplicationConnection, StreamMessage};
use ultracore_runtime::CancellationToken;

use crate::envelope::{record_key, ChangeEvent, Op, Row, SnapshotMark, Source};
use crate::postgres::values;
use crate::relay::{append, ensure_topics, header_number, read_window};
use crate::tables::{self, Table, TABLES};
use crate::{Error, RelayOptions, RelayProgress, Result, SNAPSHOT_HEADER, SOURCE_HEADER};

pub use ultracore_pgrepl::url::client_url;

/// How long a committed transaction waits for others to share its append.
const FLUSH_DELAY: Duration = Duration::from_millis(2);

/// How long a start waits for a replication slot another connection still
/// holds (PostgreSQL's default `wal_sender_timeout`, after which the server
/// lets go of a walsender whose client is gone), and how often it asks.
const SLOT_BUSY_WAIT: Duration = Duration::from_secs(60);
const SLOT_BUSY_RETRY: Duration = Duration::from_millis(500);

/// How long a stopping relay waits for the server to end the stream.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The header of streamed PostgreSQL records: `<commit LSN>:<LSN>` (decimal).
pub const LSN_HEADER: &str = "ultracore.cdc.lsn";

/// How the PostgreSQL relay runs.
#[derive(Debug, Clone)]
pub struct PgRelayOptions {
    /// The replication slot (default `ultracore_<database>`; slot names
    /// are per cluster, so one per database).
    pub slot: Option<String>,
    /// The publication of the captured tables.
    pub publication: String,
    /// Confirm the slot's position at least this often.
    pub status_interval: Duration,
    pub relay: RelayOptions,
}

impl Default for PgRelayOptions {
    fn default() -> Self {
        PgRelayOptions {
            slot: None,
            publication: "ultracore_cdc".into(),
            status_interval: Duration::from_secs(10),
            relay: RelayOptions::default(),
        }
    }
}

/// The relay of one PostgreSQL database onto one log.
#[derive(Debug)]
pub struct PgRelay<L: EventLog> {
    log: L,
    url: String,
    options: PgRelayOptions,
    progress: Arc<Mutex<RelayProgress>>,
}

/// What `cdc status` shows of capture on PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PgStatus {
    pub slot: String,
    pub slot_exists: bool,
    /// A relay is connected to the slot.
    pub active: bool,
    /// Where the slot stands: WAL before it may be recycled.
    pub confirmed_flush_lsn: Option<String>,
    /// The server's WAL position, and how many bytes of WAL the slot holds back.
    pub wal_lsn: String,
    pub lag_bytes: Option<i64>,
    pub snapshot_done: bool,
    /// Every transaction committed up to this LSN is durable on the log.
    pub position: Option<String>,
    pub committed_at_ms: Option<i64>,
}

/// The relay's row in `ultracore_cdc_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    instance: String,
    snapshot_done: bool,
    snapshot_lsn: Option<u64>,
    snapshot_txid: i64,
    snapshot_total: u64,
    snapshot_relayed: u64,
    /// Every transaction committed at or before this LSN is durable on the log.
    position: u64,
    committed_at_ms: i64,
}

/// One row change of a transaction.
#[derive(Debug)]
struct Change {
    lsn: u64,
    table: &'static Table,
    op: Op,
    key: String,
    before: Option<Row>,
    after: Option<Row>,
}

/// A committed transaction, waiting to be sent.
#[derive(Debug)]
struct Committed {
    xid: u32,
    commit_lsn: u64,
    end_lsn: u64,
    commit_ms: i64,
    changes: Vec<Change>,
}

/// The identifiers the relay puts in SQL must be plain: lowercase
/// letters, digits and `_`, at most 63 bytes.
fn check_identifier(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Setup(format!(
            "{what} '{name}' must be 1-63 lowercase letters, digits or '_'"
        )))
    }
}

fn pg_err(what: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| {
        let detail = e
            .as_db_error()
            .map(|d| d.message().to_owned())
            .unwrap_or_else(|| e.to_string());
        Error::Setup(format!("{what}: {detail}"))
    }
}

fn repl_err(what: &str) -> impl Fn(ultracore_pgrepl::Error) -> Error + '_ {
    move |e| Error::Setup(format!("{what}: {e}"))
}

impl<L: EventLog> PgRelay<L> {
    pub fn new(log: L, url: &str, options: PgRelayOptions) -> PgRelay<L> {
        PgRelay {
            log,
            url: client_url(url),
            options,
            progress: Arc::default(),
        }
    }

    /// A handle on the progress that stays valid while the relay runs.
    pub fn progress_handle(&self) -> Arc<Mutex<RelayProgress>> {
        self.progress.clone()
    }

    pub fn progress(&self) -> RelayProgress {
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut RelayProgress)) {
        f(&mut self.progress.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Sets up (publication, slot, snapshot), then relays until `token` is
    /// cancelled.
    pub async fn run(&self, token: CancellationToken) -> Result<()> {
        self.stream(token, None).await
    }

    /// Like [`PgRelay::run`], but returns once every change committed
    /// before the call is durable on the log (tests, tools); returns the
    /// events appended.
    pub async fn drain(&self) -> Result<u64> {
        let before = self.progress().events;
        let sql = self.sql().await?;
        let row = sql
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await
            .map_err(pg_err("reading the WAL position"))?;
        let target: Lsn = row
            .get::<_, String>(0)
            .parse()
            .map_err(repl_err("reading the WAL position"))?;
        self.stream(CancellationToken::new(), Some(target.as_u64()))
            .await?;
        Ok(self.progress().events - before)
    }

    /// A plain SQL connection (UTC, ISO dates, TLS as the URL says),
    /// driven on its own task.
    async fn sql(&self) -> Result<Client> {
        let mut target =
            url::parse(&self.url).map_err(|e| Error::Setup(format!("DATABASE_URL {e}")))?;
        // The relay's own state need not wait for PostgreSQL's flush: if a
        // crash loses its last update, the slot (confirmed only after it)
        // and the recovery read of the log cover the gap.
        target
            .config
            .options("-c TimeZone=UTC -c DateStyle=ISO -c synchronous_commit=off");
        target.config.application_name("ultracore-cdc");
        // The relay opens two connections: this one and the replication one.
        let (client, connection) = target
            .connect()
            .await
            .map_err(|e| Error::Setup(target.connect_error(&e, 2)))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "the relay's SQL connection ended");
            }
        });
        Ok(client)
    }

    /// Where capture stands: the slot (its confirmed position, how far the
    /// server's WAL is ahead of it) and the relay's stored state.
    pub async fn status(&self) -> Result<PgStatus> {
        let sql = self.sql().await?;
        let (_, slot) = self.names(&sql).await?;
        let wal: String = sql
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await
            .map_err(pg_err("reading the WAL position"))?
            .get(0);
        let slot_row = sql
            .query_opt(
                "SELECT active, confirmed_flush_lsn::text,
                        pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
                 FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .map_err(pg_err("reading the replication slot"))?;
        let has_state = sql
            .query_opt("SELECT to_regclass('ultracore_cdc_state') IS NOT NULL", &[])
            .await
            .map_err(pg_err("reading the relay's state"))?
            .is_some_and(|r| r.get::<_, bool>(0));
        let state = if has_state {
            let exists = sql
                .query_opt("SELECT 1 FROM ultracore_cdc_state WHERE id = 1", &[])
                .await
                .map_err(pg_err("reading the relay's state"))?
                .is_some();
            if exists {
                Some(load_state(&sql).await?)
            } else {
                None
            }
        } else {
            None
        };
        Ok(PgStatus {
            slot,
            slot_exists: slot_row.is_some(),
            active: slot_row.as_ref().is_some_and(|r| r.get::<_, bool>(0)),
            confirmed_flush_lsn: slot_row.as_ref().and_then(|r| r.get(1)),
            lag_bytes: slot_row.as_ref().and_then(|r| r.get(2)),
            wal_lsn: wal,
            snapshot_done: state.as_ref().is_some_and(|s| s.snapshot_done),
            position: state.as_ref().map(|s| Lsn(s.position).to_string()),
            committed_at_ms: state.as_ref().map(|s| s.committed_at_ms).filter(|&t| t > 0),
        })
    }

    async fn replication(&self) -> Result<ReplicationConnection> {
        let mut config = ultracore_pgrepl::Config::from_url(&self.url)
            .map_err(repl_err("DATABASE_URL is not a PostgreSQL URL"))?;
        config.application_name = "ultracore-cdc".into();
        ReplicationConnection::connect(&config)
            .await
            .map_err(repl_err("opening a replication connection"))
    }

    /// The database's name, and the slot's: the configured one, or
    /// `ultracore_<database>`.
    async fn names(&self, sql: &Client) -> Result<(String, String)> {
        let db: String = sql
            .query_one("SELECT current_database()", &[])
            .await
            .map_err(pg_err("reading the database name"))?
            .get(0);
        if let Some(slot) = &self.options.slot {
            check_identifier("the replication slot", slot)?;
            return Ok((db, slot.clone()));
        }
        let clean: String = db
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(50)
            .collect();
        Ok((db, format!("ultracore_{clean}")))
    }

    async fn stream(&self, token: CancellationToken, until: Option<u64>) -> Result<()> {
        check_identifier("the publication", &self.options.publication)?;
        ensure_topics(&self.log).await?;
        let sql = self.sql().await?;
        let mut repl = self.replication().await?;
        let wal_level = repl
            .simple_query("SHOW wal_level")
            .await
            .map_err(repl_err("reading wal_level"))?;
        let level = wal_level
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .unwrap_or_default();
        if level != "logical" {
            return Err(Error::Setup(format!(
                "PostgreSQL's wal_level is '{level}'; change data capture needs wal_level = logical: \
                 set it in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL"
            )));
        }
        let (db, slot) = self.names(&sql).await?;
        self.ensure_catalog(&sql).await?;
        let mut state = load_state(&sql).await?;
        let slot_exists = sql
            .query_opt(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .map_err(pg_err("reading the replication slots"))?
            .is_some();
        if !state.snapshot_done && state.snapshot_lsn.is_none() {
            // Nothing was sent from a slot without a staged snapshot: start afresh.
            if slot_exists {
                repl.drop_slot(&slot)
                    .await
                    .map_err(repl_err("dropping an unused replication slot"))?;
            }
            let created = repl
                .create_logical_slot(&slot, true)
                .await
                .map_err(repl_err("creating the replication slot"))?;
            let name = created.snapshot_name.ok_or_else(|| {
                Error::Setup("the server exported no snapshot with the slot".into())
            })?;
            state = stage_snapshot(&sql, &name, created.consistent_point.as_u64()).await?;
        } else if !slot_exists {
            return Err(Error::Setup(format!(
                "the replication slot '{slot}' is gone (dropped by hand?): the changes since position {} cannot be captured any more; \
                 to capture from now on, empty ultracore_cdc_state (DELETE FROM ultracore_cdc_state) and start again: a new snapshot is taken",
                Lsn(state.position)
            )));
        }
        let mut present = HashSet::new();
        read_window(
            &self.log,
            &self.options.relay,
            &state.instance,
            state.committed_at_ms,
            |r| {
                let lsn = r
                    .header(LSN_HEADER)
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|s| s.split_once(':'))
                    .and_then(|(c, l)| Some((c.parse::<u64>().ok()?, l.parse::<u64>().ok()?)));
                if let Some((commit, lsn)) = lsn.filter(|(c, _)| *c > state.position) {
                    present.insert(Sent::Change(commit, lsn, r.value.is_empty()));
                } else if let Some(idx) =
                    header_number(r, SNAPSHOT_HEADER).filter(|&i| i > state.snapshot_relayed)
                {
                    present.insert(Sent::Snapshot(idx));
                }
            },
        )
        .await?;
        self.update(|p| {
            p.snapshot_done = state.snapshot_done;
            p.position = state.position;
            p.recovered = present.len() as u64;
        });
        let mut ctx = Ctx {
            sql,
            db,
            state,
            present,
        };
        while !ctx.state.snapshot_done {
            self.snapshot_batch(&mut ctx).await?;
            if token.is_cancelled() {
                return Ok(());
            }
        }
        start_streaming(&ctx.sql).await?;
        let publication = self.options.publication.clone();
        // A slot is held by one walsender at a time. One of ours that
        // lost its client (a crash, a dropped connection) keeps it until
        // the server notices, at worst after `wal_sender_timeout` (60 s by
        // default): wait for it, as Debezium does (`slot.max.retries`
        // times `slot.retry.delay.ms`), rather than fail the start.
        let mut repl = Some(repl);
        let deadline = tokio::time::Instant::now() + SLOT_BUSY_WAIT;
        let mut stream = loop {
            let conn = match repl.take() {
                Some(conn) => conn,
                None => self.replication().await?,
            };
            match conn.start(&slot, Lsn::ZERO, &[publication.as_str()]).await {
                Ok(stream) => break stream,
                Err(e)
                    if e.code() == Some(sqlstate::OBJECT_IN_USE)
                        && tokio::time::Instant::now() < deadline =>
                {
                    tracing::info!(slot, error = %e, "the replication slot is still held by another connection; waiting for it");
                    tokio::select! {
                        _ = token.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(SLOT_BUSY_RETRY) => {}
                    }
                }
                Err(e) => return Err(repl_err("starting replication")(e)),
            }
        };
        let mut relations: HashMap<u32, Relation> = HashMap::new();
        let mut open: Option<(u32, Vec<Change>)> = None;
        let mut pending: Vec<Committed> = Vec::new();
        let mut pending_changes = 0usize;
        // When the oldest transaction in `pending` was committed.
        let mut oldest: Option<tokio::time::Instant> = None;
        let mut last_status = tokio::time::Instant::now();
        let mut confirmed = ctx.state.position;
        loop {
            // Gather what has arrived; send it when the stream pauses or
            // the batch is full.
            // Committed transactions wait at most FLUSH_DELAY for more to
            // share their append (however busy the stream), or until the
            // stream pauses.
            let wait = match (pending.is_empty(), until) {
                (false, _) => FLUSH_DELAY
                    .saturating_sub(oldest.map_or(Duration::ZERO, |t| t.elapsed()))
                    .min(Duration::from_millis(1)),
                // Draining: ask the server where its WAL ends, often.
                (true, Some(_)) => Duration::from_millis(50),
                (true, None) => self.options.status_interval,
            };
            let message = tokio::select! {
                _ = token.cancelled(), if pending.is_empty() && open.is_none() => break,
                m = tokio::time::timeout(wait, stream.recv()) => m,
            };
            let mut keepalive: Option<(u64, bool)> = None;
            let timed_out = message.is_err();
            match message {
                Err(_) => {}
                Ok(Err(e)) => return Err(repl_err("replication stream")(e)),
                Ok(Ok(None)) => {
                    return Err(Error::Setup(
                        "the server ended the replication stream".into(),
                    ))
                }
                Ok(Ok(Some(StreamMessage::Keepalive {
                    wal_end,
                    reply_requested,
                    ..
                }))) => keepalive = Some((wal_end.as_u64(), reply_requested)),
                Ok(Ok(Some(StreamMessage::XLogData {
                    wal_start, message, ..
                }))) => match message {
                    pgoutput::Message::Relation(r) => {
                        relations.insert(r.id, r);
                    }
                    pgoutput::Message::Begin { xid, .. } => open = Some((xid, Vec::new())),
                    pgoutput::Message::Commit {
                        commit_lsn,
                        end_lsn,
                        commit_time_micros,
                        ..
                    } => {
                        if let Some((xid, changes)) = open.take() {
                            pending_changes += changes.len();
                            oldest.get_or_insert_with(tokio::time::Instant::now);
                            pending.push(Committed {
                                xid,
                                commit_lsn: commit_lsn.as_u64(),
                                end_lsn: end_lsn.as_u64(),
                                commit_ms: (commit_time_micros
                                    + ultracore_pgrepl::POSTGRES_EPOCH_UNIX_MICROS)
                                    / 1000,
                                changes,
                            });
                        }
                    }
                    pgoutput::Message::Insert { relation_id, new } => {
                        let change = change(&relations, relation_id, wal_start, Op::Create, None, Some(&new))?;
                        push(&mut open, change);
                    }
                    pgoutput::Message::Update {
                        relation_id,
                        old,
                        new,
                        ..
                    } => {
                        let change = change(
                            &relations,
                            relation_id,
                            wal_start,
                            Op::Update,
                            old.as_ref(),
                            Some(&new),
                        )?;
                        push(&mut open, change);
                    }
                    pgoutput::Message::Delete {
                        relation_id, old, ..
                    } => {
                        let change = change(&relations, relation_id, wal_start, Op::Delete, Some(&old), None)?;
                        push(&mut open, change);
                    }
                    pgoutput::Message::Truncate { .. } => tracing::warn!(
                        "a captured table was truncated: TRUNCATE is not captured (Debezium skips it by default); its rows' deletes are not on the log"
                    ),
                    _ => {}
                },
            }
            let paused = timed_out || keepalive.is_some();
            let overdue = oldest.is_some_and(|t| t.elapsed() >= FLUSH_DELAY);
            if !pending.is_empty()
                && (paused || overdue || pending_changes >= self.options.relay.batch)
            {
                let end = self.flush(&mut ctx, std::mem::take(&mut pending)).await?;
                pending_changes = 0;
                oldest = None;
                stream
                    .send_status(Lsn(end), Lsn(end), Lsn(end), false)
                    .await
                    .map_err(repl_err("confirming the slot's position"))?;
                confirmed = end;
                last_status = tokio::time::Instant::now();
            }
            // Nothing buffered: the server's WAL end is safe to confirm (the
            // heartbeat that keeps an idle slot from pinning WAL).
            let idle = pending.is_empty() && open.is_none();
            let due = last_status.elapsed() >= self.options.status_interval;
            if let Some((wal_end, reply)) = keepalive {
                if idle && wal_end > confirmed {
                    confirmed = wal_end;
                }
                if reply || due {
                    stream
                        .send_status(Lsn(confirmed), Lsn(confirmed), Lsn(confirmed), false)
                        .await
                        .map_err(repl_err("confirming the slot's position"))?;
                    last_status = tokio::time::Instant::now();
                }
            } else if due || (until.is_some() && timed_out) {
                stream
                    .send_status(Lsn(confirmed), Lsn(confirmed), Lsn(confirmed), true)
                    .await
                    .map_err(repl_err("confirming the slot's position"))?;
                last_status = tokio::time::Instant::now();
            }
            if let Some(target) = until {
                if idle && confirmed >= target {
                    break;
                }
            }
        }
        // End the stream before closing: the server releases the slot when
        // START_REPLICATION ends, so a relay started right after this one
        // (a drain, then `run`) finds it free. Everything confirmed is
        // durable already: a failure here loses nothing.
        match tokio::time::timeout(STOP_WAIT, stream.stop()).await {
            Ok(Ok(conn)) => {
                if let Err(e) = conn.close().await {
                    tracing::debug!(error = %e, "closing the replication connection");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "ending the replication stream"),
            Err(_) => tracing::warn!("the server did not end the replication stream in time"),
        }
        Ok(())
    }

    async fn ensure_catalog(&self, sql: &Client) -> Result<()> {
        sql.batch_execute(
            "CREATE TABLE IF NOT EXISTS ultracore_cdc_state (
                 id integer PRIMARY KEY CHECK (id = 1),
                 instance text NOT NULL,
                 snapshot_done boolean NOT NULL,
                 snapshot_lsn bigint,
                 snapshot_txid bigint NOT NULL DEFAULT 0,
                 snapshot_total bigint NOT NULL,
                 snapshot_relayed bigint NOT NULL,
                 position bigint NOT NULL,
                 committed_at_ms bigint NOT NULL);
             CREATE TABLE IF NOT EXISTS ultracore_cdc_snapshot (
                 idx bigint PRIMARY KEY,
                 tbl text NOT NULL,
                 pk text NOT NULL,
                 row jsonb NOT NULL);",
        )
        .await
        .map_err(pg_err("creating the relay's tables"))?;
        let exists = sql
            .query_opt(
                "SELECT 1 FROM pg_publication WHERE pubname = $1",
                &[&self.options.publication],
            )
            .await
            .map_err(pg_err("reading the publications"))?
            .is_some();
        if !exists {
            let list: Vec<String> = TABLES
                .iter()
                .map(|t| format!("public.{}", t.name))
                .collect();
            sql.batch_execute(&format!(
                "CREATE PUBLICATION {} FOR TABLE {}",
                self.options.publication,
                list.join(", ")
            ))
            .await
            .map_err(pg_err("creating the publication (the tables must exist: they are made when the API opens the database)"))?;
        }
        Ok(())
    }

    fn source(&self, db: &str, table: &Table, at: At) -> Source {
        let sequence = serde_json::to_string(&[
            at.commit_lsn.map(|c| c.to_string()),
            Some(at.lsn.to_string()),
        ])
        .expect("strings serialize");
        Source {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            connector: "postgresql".into(),
            name: self.options.relay.server_name.clone(),
            ts_ms: at.ts_ms,
            snapshot: at.snapshot,
            db: db.to_owned(),
            sequence: Some(sequence),
            schema: "public".into(),
            table: table.name.into(),
            tx_id: Some(at.tx_id),
            lsn: Some(at.lsn),
            seq: None,
        }
    }

    async fn snapshot_batch(&self, ctx: &mut Ctx) -> Result<()> {
        let limit = self.options.relay.snapshot_chunk.max(1) as i64;
        let rows = ctx
            .sql
            .query(
                "SELECT idx, tbl, pk, row::text FROM ultracore_cdc_snapshot WHERE idx > $1 ORDER BY idx LIMIT $2",
                &[&(ctx.state.snapshot_relayed as i64), &limit],
            )
            .await
            .map_err(pg_err("reading the staged snapshot"))?;
        let high = ctx.state.snapshot_lsn.unwrap_or(0);
        let total = ctx.state.snapshot_total;
        let now = now_millis();
        let mut batch = Vec::with_capacity(rows.len());
        let mut last = ctx.state.snapshot_relayed;
        for r in &rows {
            let idx = r.get::<_, i64>(0) as u64;
            last = idx;
            if ctx.present.contains(&Sent::Snapshot(idx)) {
                continue;
            }
            let tbl: String = r.get(1);
            let table = tables::table(&tbl).ok_or_else(|| {
                Error::Corrupt(format!("snapshot row {idx}: unknown table {tbl}"))
            })?;
            let key: String = r.get(2);
            let texts: Vec<Option<String>> = serde_json::from_str(&r.get::<_, String>(3))
                .map_err(|e| Error::Corrupt(format!("snapshot row {idx}: {e}")))?;
            let row = row_from_texts(table, texts.iter().map(|t| t.as_deref()))?;
            let mark = if idx == total {
                SnapshotMark::Last
            } else {
                SnapshotMark::True
            };
            let event = ChangeEvent {
                before: None,
                after: Some(row),
                source: self.source(
                    &ctx.db,
                    table,
                    At {
                        ts_ms: now,
                        snapshot: mark,
                        tx_id: ctx.state.snapshot_txid,
                        commit_lsn: None,
                        lsn: high,
                    },
                ),
                op: Op::Read,
                ts_ms: now,
                transaction: None,
            };
            let record =
                NewRecord::new(record_key(table.key, &Value::String(key)), event.to_bytes())
                    .with_header(SNAPSHOT_HEADER, idx.to_string())
                    .with_header(SOURCE_HEADER, ctx.state.instance.clone())
                    .with_timestamp(now);
            batch.push((table, record));
        }
        let sent = batch.len() as u64;
        append(&self.log, batch).await?;
        if rows.is_empty() {
            last = total;
        }
        let mut state = State {
            snapshot_relayed: last,
            committed_at_ms: now_millis(),
            ..ctx.state.clone()
        };
        if last >= total {
            state.snapshot_done = true;
            state.position = state.position.max(high);
            tracing::info!(rows = total, lsn = %Lsn(high), "snapshot taken");
        }
        store_state(&ctx.sql, &state).await?;
        ctx.present
            .retain(|s| !matches!(s, Sent::Snapshot(i) if *i <= state.snapshot_relayed));
        self.update(|p| {
            p.events += sent;
            p.snapshot_done = state.snapshot_done;
            p.position = state.position;
            p.last_commit_ms = Some(state.committed_at_ms);
        });
        ctx.state = state;
        Ok(())
    }

    /// Sends committed transactions; returns the end LSN now durable.
    async fn flush(&self, ctx: &mut Ctx, committed: Vec<Committed>) -> Result<u64> {
        let now = now_millis();
        let mut batch = Vec::new();
        let mut events = 0u64;
        let mut end = ctx.state.position;
        let mut last_change = None;
        for txn in &committed {
            end = end.max(txn.end_lsn);
            // Already durable before the last stop (the slot sends from its
            // confirmed position, which may lag the stored one).
            if txn.end_lsn <= ctx.state.position {
                continue;
            }
            last_change = Some(txn.commit_ms);
            for c in &txn.changes {
                let event = ChangeEvent {
                    before: c.before.clone(),
                    after: c.after.clone(),
                    source: self.source(
                        &ctx.db,
                        c.table,
                        At {
                            ts_ms: txn.commit_ms,
                            snapshot: SnapshotMark::False,
                            tx_id: txn.xid as i64,
                            commit_lsn: Some(txn.commit_lsn),
                            lsn: c.lsn,
                        },
                    ),
                    op: c.op,
                    ts_ms: now,
                    transaction: None,
                };
                let key = record_key(c.table.key, &Value::String(c.key.clone()));
                let position = format!("{}:{}", txn.end_lsn, c.lsn);
                if !ctx
                    .present
                    .contains(&Sent::Change(txn.end_lsn, c.lsn, false))
                {
                    batch.push((
                        c.table,
                        NewRecord::new(key.clone(), event.to_bytes())
                            .with_header(LSN_HEADER, position.clone())
                            .with_header(SOURCE_HEADER, ctx.state.instance.clone())
                            .with_timestamp(now),
                    ));
                    events += 1;
                }
                if c.op == Op::Delete
                    && !ctx
                        .present
                        .contains(&Sent::Change(txn.end_lsn, c.lsn, true))
                {
                    batch.push((
                        c.table,
                        NewRecord::new(key, Vec::new())
                            .with_header(LSN_HEADER, position)
                            .with_header(SOURCE_HEADER, ctx.state.instance.clone())
                            .with_timestamp(now),
                    ));
                }
            }
        }
        append(&self.log, batch).await?;
        let state = State {
            position: end,
            committed_at_ms: now_millis(),
            ..ctx.state.clone()
        };
        store_position(&ctx.sql, &state).await?;
        ctx.present
            .retain(|s| !matches!(s, Sent::Change(c, _, _) if *c <= end));
        self.update(|p| {
            p.events += events;
            p.position = end;
            p.last_commit_ms = Some(state.committed_at_ms);
            if let Some(change) = last_change {
                p.last_change_ms = Some(change);
                p.last_lag_ms = Some((state.committed_at_ms - change).max(0));
            }
        });
        ctx.state = state;
        Ok(end)
    }
}

/// Where and when a change happened, for its `source`.
#[derive(Debug, Clone, Copy)]
struct At {
    ts_ms: i64,
    snapshot: SnapshotMark,
    tx_id: i64,
    /// The transaction's commit LSN (none for snapshot rows).
    commit_lsn: Option<u64>,
    lsn: u64,
}

/// What a run works with.
struct Ctx {
    sql: Client,
    db: String,
    state: State,
    present: HashSet<Sent>,
}

/// A record already on the log past the stored state (after a crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Sent {
    /// A change: its transaction's end LSN, its own LSN, tombstone or not.
    Change(u64, u64, bool),
    Snapshot(u64),
}

fn push(open: &mut Option<(u32, Vec<Change>)>, change: Option<Change>) {
    if let (Some((_, changes)), Some(c)) = (open.as_mut(), change) {
        changes.push(c);
    }
}

/// A row change of a captured table (`None` for other tables).
fn change(
    relations: &HashMap<u32, Relation>,
    relation_id: u32,
    lsn: Lsn,
    op: Op,
    old: Option<&Tuple>,
    new: Option<&Tuple>,
) -> Result<Option<Change>> {
    let relation = relations.get(&relation_id).ok_or_else(|| {
        Error::Corrupt(format!(
            "a change of relation {relation_id} came before its description"
        ))
    })?;
    let Some(table) = tables::table(&relation.name).filter(|_| relation.namespace == "public")
    else {
        return Ok(None);
    };
    let image = |tuple: &Tuple, fallback: Option<&Tuple>| -> Result<Row> {
        let mut row = Map::new();
        for column in table.columns {
            let i = relation.columns.iter().position(|c| c.name == column.name);
            let value = i.and_then(|i| {
                match tuple.get(i) {
                    // An unchanged TOASTed value is not sent; the whole old
                    // row (REPLICA IDENTITY FULL) has it.
                    Some(pgoutput::Value::UnchangedToast) => fallback.and_then(|f| f.get(i)),
                    other => other,
                }
            });
            let text = value.and_then(pgoutput::Value::as_str);
            row.insert(
                column.name.to_owned(),
                values::to_json(table, column.name, column.kind, text)?,
            );
        }
        Ok(row)
    };
    let before = old.map(|o| image(o, None)).transpose()?;
    let after = new.map(|n| image(n, old)).transpose()?;
    let key = after
        .as_ref()
        .or(before.as_ref())
        .and_then(|r| r.get(table.key))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(Some(Change {
        lsn: lsn.as_u64(),
        table,
        op,
        key,
        before,
        after,
    }))
}

/// A row from its columns' printed values, in the table's column order.
pub(crate) fn row_from_texts<'a>(
    table: &Table,
    texts: impl Iterator<Item = Option<&'a str>>,
) -> Result<Row> {
    let mut row = Map::new();
    for (column, text) in table.columns.iter().zip(texts) {
        row.insert(
            column.name.to_owned(),
            values::to_json(table, column.name, column.kind, text)?,
        );
    }
    Ok(row)
}

async fn load_state(sql: &Client) -> Result<State> {
    sql.execute(
        "INSERT INTO ultracore_cdc_state (id, instance, snapshot_done, snapshot_lsn, snapshot_total, snapshot_relayed, position, committed_at_ms)
         VALUES (1, $1, false, NULL, 0, 0, 0, 0) ON CONFLICT (id) DO NOTHING",
        &[&uuid::Uuid::now_v7().simple().to_string()],
    )
    .await
    .map_err(pg_err("initialising the relay's state"))?;
    let r = sql
        .query_one(
            "SELECT instance, snapshot_done, snapshot_lsn, snapshot_txid, snapshot_total, snapshot_relayed, position, committed_at_ms
             FROM ultracore_cdc_state WHERE id = 1",
            &[],
        )
        .await
        .map_err(pg_err("reading the relay's state"))?;
    Ok(State {
        instance: r.get(0),
        snapshot_done: r.get(1),
        snapshot_lsn: r.get::<_, Option<i64>>(2).map(|v| v as u64),
        snapshot_txid: r.get(3),
        snapshot_total: r.get::<_, i64>(4) as u64,
        snapshot_relayed: r.get::<_, i64>(5) as u64,
        position: r.get::<_, i64>(6) as u64,
        committed_at_ms: r.get(7),
    })
}

/// Before streaming: the staged snapshot, all sent, is dropped, once per
/// start (it was deleted after every batch, a second statement on the
/// path of each; see [`store_position`]).
async fn start_streaming(sql: &Client) -> Result<()> {
    sql.batch_execute("DELETE FROM ultracore_cdc_snapshot")
        .await
        .map_err(pg_err("dropping the sent snapshot"))
}

/// Stores a streaming relay's position: one short statement after each
/// batch, without waiting for the server's WAL flush (the connection's
/// `synchronous_commit=off`, see `PgRelay::sql`). Each statement is a round
/// trip the relay waits for before it reads on, to a server whose writers
/// share the machine's cores; with the whole state and the snapshot's
/// DELETE after every batch, commit → durable p99 was 10 – 41 ms at 1,000
/// changes/s, with this alone 3 – 35 ms (`ultracore bench cdc`, README).
async fn store_position(sql: &Client, s: &State) -> Result<()> {
    sql.execute(
        "UPDATE ultracore_cdc_state SET position = $1, committed_at_ms = $2 WHERE id = 1",
        &[&(s.position as i64), &s.committed_at_ms],
    )
    .await
    .map_err(pg_err("storing the relay's position"))?;
    Ok(())
}

async fn store_state(sql: &Client, s: &State) -> Result<()> {
    let tx_rows = sql
        .execute(
            "UPDATE ultracore_cdc_state SET snapshot_done = $1, snapshot_relayed = $2, position = $3, committed_at_ms = $4 WHERE id = 1",
            &[
                &s.snapshot_done,
                &(s.snapshot_relayed as i64),
                &(s.position as i64),
                &s.committed_at_ms,
            ],
        )
        .await
        .map_err(pg_err("storing the relay's position"))?;
    debug_assert_eq!(tx_rows, 1);
    if s.snapshot_done {
        sql.execute("DELETE FROM ultracore_cdc_snapshot", &[])
            .await
            .map_err(pg_err("dropping the sent snapshot"))?;
    }
    Ok(())
}

/// Copies every captured row, as of the exported snapshot, to the staging
/// table with the slot's consistent point, in one transaction.
async fn stage_snapshot(sql: &Client, snapshot: &str, consistent_point: u64) -> Result<State> {
    let err = pg_err("staging the snapshot");
    sql.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .map_err(&err)?;
    let staged = async {
        // The snapshot name comes from the server; it is quoted as a literal.
        let quoted = snapshot.replace('\'', "''");
        sql.batch_execute(&format!("SET TRANSACTION SNAPSHOT '{quoted}'"))
            .await?;
        sql.execute("DELETE FROM ultracore_cdc_snapshot", &[]).await?;
        let mut offset = 0i64;
        for table in TABLES {
            let texts: Vec<String> = table
                .columns
                .iter()
                .map(|c| format!("{}::text", c.name))
                .collect();
            let n = sql
                .execute(
                    &format!(
                        "INSERT INTO ultracore_cdc_snapshot (idx, tbl, pk, row)
                         SELECT $1::bigint + row_number() OVER (ORDER BY {key} COLLATE \"C\"), '{name}', {key}, jsonb_build_array({cols})
                         FROM public.{name}",
                        key = table.key,
                        name = table.name,
                        cols = texts.join(", ")
                    ),
                    &[&offset],
                )
                .await?;
            offset += n as i64;
        }
        let txid: i64 = sql.query_one("SELECT txid_current()", &[]).await?.get(0);
        sql.execute(
            "UPDATE ultracore_cdc_state SET snapshot_lsn = $1, snapshot_txid = $2, snapshot_total = $3, snapshot_relayed = 0, committed_at_ms = $4 WHERE id = 1",
            &[&(consistent_point as i64), &txid, &offset, &now_millis()],
        )
        .await?;
        Ok::<_, tokio_postgres::Error>(())
    }
    .await;
    match staged {
        Ok(()) => sql.batch_execute("COMMIT").await.map_err(&err)?,
        Err(e) => {
            let _ = sql.batch_execute("ROLLBACK").await;
            return Err(err(e));
        }
    }
    load_state(sql).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain() {
        assert!(check_identifier("slot", "ultracore_db1").is_ok());
        assert!(check_identifier("slot", "Bad-Name").is_err());
        assert!(check_identifier("slot", "").is_err());
    }
}
