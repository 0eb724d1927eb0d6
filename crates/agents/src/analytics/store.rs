//! The analytics store: SQLite, one file ([`AnalyticsStore::FILE_NAME`] in
//! the data directory), WAL mode, one row per execution and one per user
//! change.
//!
//! # Durability
//!
//! `synchronous=FULL`: a committed transaction is fsynced. The service
//! commits its offsets on the log only after the transaction holding a
//! batch's rows has committed, so a crash or a power loss can deliver
//! executions and changes again (the `execution_id` and `position` keys
//! make that a no-op) but never skip one.
//!
//! # Schema (version 2)
//!
//! - `executions` (without rowid, keyed by `execution_id`): `agent_id`,
//!   `status` (`succeeded`, `failed`, `timed_out`, `cancelled`),
//!   `duration_s` and `finished_ms` (milliseconds since the epoch).
//!   Two covering indexes: `(agent_id, duration_s, status)` gives one
//!   agent's durations in order, and every agent's in one scan;
//!   `(agent_id, finished_ms, duration_s, status)` one agent's time range.
//! - `user_changes` (version 2; without rowid, keyed by `position`, the
//!   change's place in the source database): `user_id`, `op` (`c`, `u`,
//!   `d`, `r`) and `changed_ms` (`source.ts_ms`, milliseconds since the
//!   epoch). One covering index, `(op, changed_ms)`: the count and the
//!   last time of each operation, and the time range of the trends.
//! - `schema_migrations`: applied migrations, as in the other stores.
//!
//! Figures are exact and computed on read: an agent's report reads its
//! executions once (8 bytes each in memory) plus those of the last 24
//! hours; the summary reads every execution once; the users' figures count
//! from the index and read the changes of the last 24 hours.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use ultracore_events::agents::ExecutionStatus;
use ultracore_log::files;

use super::{nearest_rank, ChangeOp, Execution, UserChange};

/// Versioned migrations, applied in order, each in its own transaction and
/// recorded in `schema_migrations`. Never edit a released one: add the next.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
    CREATE TABLE executions (
        execution_id TEXT PRIMARY KEY,
        agent_id     TEXT NOT NULL,
        status       TEXT NOT NULL,
        duration_s   REAL NOT NULL,
        finished_ms  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX executions_by_duration ON executions (agent_id, duration_s, status);
    CREATE INDEX executions_by_time ON executions (agent_id, finished_ms, duration_s, status);
    "#,
    ),
    (
        2,
        r#"
    CREATE TABLE user_changes (
        position   TEXT PRIMARY KEY,
        user_id    TEXT NOT NULL,
        op         TEXT NOT NULL,
        changed_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX user_changes_by_op ON user_changes (op, changed_ms);
    "#,
    ),
];

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
/// Buckets of `per_minute` and `per_hour`.
const MINUTES: i64 = 60;
const HOURS: i64 = 24;

/// What can go wrong with the analytics store.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    #[error("agent analytics store {path}: {operation}: {source}")]
    Store {
        path: String,
        operation: &'static str,
        source: rusqlite::Error,
    },
    #[error("agent analytics store {path}: {reason}")]
    File { path: String, reason: String },
    #[error("agent analytics store {path} is at schema version {found}, newer than this build knows ({known}): run the newer ultracore, or point it at another data directory")]
    SchemaTooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("agent analytics store {path}: execution {execution_id} has status '{status}', which this build does not know")]
    Corrupt {
        path: String,
        execution_id: String,
        status: String,
    },
    #[error("agent analytics store {path}: user change {position} has op '{op}', which this build does not know")]
    CorruptChange {
        path: String,
        position: String,
        op: String,
    },
}

pub type Result<T, E = AnalyticsError> = std::result::Result<T, E>;

fn open_connection(path: &Path, flags: OpenFlags, operation: &'static str) -> Result<Connection> {
    let err = |source| AnalyticsError::Store {
        path: path.display().to_string(),
        operation,
        source,
    };
    let conn = Connection::open_with_flags(path, flags).map_err(err)?;
    // The service's writer and the API's readers share the file; WAL lets
    // readers run beside the writer, the timeout covers checkpoints and a
    // second writer (a service started again while its old batch finishes).
    conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
    Ok(conn)
}

/// The store's writer: one connection, shared by every start of the
/// service in the process (cheap to clone).
#[derive(Debug, Clone)]
pub struct AnalyticsStore {
    inner: Arc<Writer>,
}

#[derive(Debug)]
struct Writer {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl AnalyticsStore {
    /// The file name in the data directory.
    pub const FILE_NAME: &'static str = "agent_analytics.sqlite";

    /// Opens (creating and migrating as needed) the store at `path`.
    /// Blocks (file system, fsync): call it at start-up or off the async
    /// workers.
    pub fn open(path: impl AsRef<Path>) -> Result<AnalyticsStore> {
        let path = path.as_ref().to_owned();
        let file_err = |reason: String| AnalyticsError::File {
            path: path.display().to_string(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            files::create_dir_all(dir)
                .map_err(|e| file_err(format!("cannot create its directory: {e}")))?;
        }
        // Owner-only, like every file of the data directory (SQLite gives
        // its -wal and -shm files the database file's mode).
        files::create_if_missing(&path).map_err(|e| file_err(format!("cannot create it: {e}")))?;
        let mut conn = open_connection(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            "opening the database",
        )?;
        let err = |operation| {
            let path = path.display().to_string();
            move |source| AnalyticsError::Store {
                path,
                operation,
                source,
            }
        };
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(err("enabling WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(file_err(format!(
                "cannot use WAL mode (got '{mode}'): put it on a local file system"
            )));
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY;")
            .map_err(err("setting pragmas"))?;
        migrate(&mut conn, &path)?;
        Ok(AnalyticsStore {
            inner: Arc::new(Writer {
                path,
                conn: Mutex::new(conn),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Readers of this store.
    pub fn reader(&self) -> Result<AgentAnalytics> {
        AgentAnalytics::open(&self.inner.path)
    }

    /// Stores `rows` and `changes` in one transaction, skipping execution
    /// ids and change positions already stored (and repeats within the
    /// batch). Returns the indices of the rows and of the changes stored
    /// now; when it returns, they are durable. Blocks.
    pub(super) fn insert(
        &self,
        rows: &[Execution],
        changes: &[UserChange],
    ) -> Result<(Vec<usize>, Vec<usize>)> {
        let path = self.inner.path.display().to_string();
        let err = |operation| {
            let path = path.clone();
            move |source| AnalyticsError::Store {
                path,
                operation,
                source,
            }
        };
        // A writer that panicked mid-transaction rolled it back when the
        // transaction dropped: the connection is usable.
        let mut conn = self.inner.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(err("starting a transaction"))?;
        let mut fresh = Vec::new();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO executions \
                     (execution_id, agent_id, status, duration_s, finished_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err("preparing the insert"))?;
            for (i, row) in rows.iter().enumerate() {
                let changed = insert
                    .execute(params![
                        row.execution_id,
                        row.agent_id,
                        row.status.name(),
                        row.duration_s,
                        row.finished_ms,
                    ])
                    .map_err(err("inserting an execution"))?;
                if changed == 1 {
                    fresh.push(i);
                }
            }
        }
        let mut fresh_changes = Vec::new();
        if !changes.is_empty() {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO user_changes (position, user_id, op, changed_ms) \
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(err("preparing the insert of user changes"))?;
            for (i, c) in changes.iter().enumerate() {
                let changed = insert
                    .execute(params![c.position, c.user_id, c.op.code(), c.changed_ms])
                    .map_err(err("inserting a user change"))?;
                if changed == 1 {
                    fresh_changes.push(i);
                }
            }
        }
        tx.commit()
            .map_err(err("committing executions and user changes"))?;
        Ok((fresh, fresh_changes))
    }
}

fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let err = |operation| {
        let path = path.display().to_string();
        move |source| AnalyticsError::Store {
            path,
            operation,
            source,
        }
    };
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    .map_err(err("creating schema_migrations"))?;
    let current = schema_version(conn).map_err(err("reading the schema version"))?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > known {
        return Err(AnalyticsError::SchemaTooNew {
            path: path.display().to_string(),
            found: current,
            known,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = conn.transaction().map_err(err("starting a migration"))?;
        tx.execute_batch(sql).map_err(err("applying a migration"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, Utc::now().to_rfc3339()],
        )
        .map_err(err("recording a migration"))?;
        tx.commit().map_err(err("committing a migration"))?;
        tracing::info!(path = %path.display(), version, "agent analytics store schema migrated");
    }
    Ok(())
}

/// Executions by how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByStatus {
    pub succeeded: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub cancelled: u64,
}

impl ByStatus {
    pub fn add(&mut self, status: ExecutionStatus) {
        *match status {
            ExecutionStatus::Succeeded => &mut self.succeeded,
            ExecutionStatus::Failed => &mut self.failed,
            ExecutionStatus::TimedOut => &mut self.timed_out,
            ExecutionStatus::Cancelled => &mut self.cancelled,
        } += 1;
    }

    pub fn total(&self) -> u64 {
        self.succeeded + self.failed + self.timed_out + self.cancelled
    }
}

/// Duration percentiles in seconds, by nearest rank ([`nearest_rank`]);
/// `None` (null) without executions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

impl Percentiles {
    /// The percentiles of `sorted` (ascending).
    pub fn of(sorted: &[f64]) -> Percentiles {
        Percentiles {
            p50: nearest_rank(sorted, 50),
            p95: nearest_rank(sorted, 95),
            p99: nearest_rank(sorted, 99),
        }
    }
}

/// The figures of a set of executions (one agent's, or every agent's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub total: u64,
    pub by_status: ByStatus,
    /// `succeeded / total`; `None` (null) when `total` is 0.
    pub success_rate: Option<f64>,
    pub duration_seconds: Percentiles,
    /// When the last of them finished.
    pub last_finished_at: Option<DateTime<Utc>>,
}

impl Figures {
    fn of(by_status: ByStatus, sorted: &[f64], last_finished_ms: Option<i64>) -> Figures {
        let total = by_status.total();
        Figures {
            total,
            by_status,
            success_rate: (total > 0).then(|| by_status.succeeded as f64 / total as f64),
            duration_seconds: Percentiles::of(sorted),
            last_finished_at: last_finished_ms.and_then(time),
        }
    }
}

/// One agent's figures, as listed in the [`Summary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentFigures {
    pub agent_id: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// Every agent: `GET /api/v1/analytics/agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Over every execution of every agent.
    #[serde(flatten)]
    pub all: Figures,
    /// By `agent_id`.
    pub agents: Vec<AgentFigures>,
}

/// Executions of one clock-aligned minute or hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub total: u64,
    pub succeeded: u64,
    /// By nearest rank; `None` (null) when `total` is 0.
    pub p95_seconds: Option<f64>,
}

/// One agent's trends up to `as_of` (see the module's `# Time`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trends {
    pub as_of: DateTime<Utc>,
    /// 60 buckets, oldest first; the last holds `as_of`.
    pub per_minute: Vec<Bucket>,
    /// 24 buckets, oldest first; the last holds `as_of`.
    pub per_hour: Vec<Bucket>,
}

/// One agent: `GET /api/v1/analytics/agents/{agent_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    pub agent_id: String,
    #[serde(flatten)]
    pub figures: Figures,
    pub trends: Trends,
}

/// User changes by operation (`op`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByOp {
    pub c: u64,
    pub u: u64,
    pub d: u64,
    pub r: u64,
}

impl ByOp {
    pub fn add(&mut self, op: ChangeOp, n: u64) {
        *match op {
            ChangeOp::Create => &mut self.c,
            ChangeOp::Update => &mut self.u,
            ChangeOp::Delete => &mut self.d,
            ChangeOp::Read => &mut self.r,
        } += n;
    }

    pub fn total(&self) -> u64 {
        self.c + self.u + self.d + self.r
    }
}

/// User changes committed in one clock-aligned minute or hour (snapshot
/// rows are in none: see the module's `# Time`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeBucket {
    pub start: DateTime<Utc>,
    /// `c + u + d`.
    pub total: u64,
    pub c: u64,
    pub u: u64,
    pub d: u64,
}

/// The user changes' trends up to `as_of`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeTrends {
    pub as_of: DateTime<Utc>,
    /// 60 buckets, oldest first; the last holds `as_of`.
    pub per_minute: Vec<ChangeBucket>,
    /// 24 buckets, oldest first; the last holds `as_of`.
    pub per_hour: Vec<ChangeBucket>,
}

/// The changes to users: `GET /api/v1/analytics/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserChanges {
    /// Every change stored, snapshot rows included: the sum of `by_op`.
    pub total: u64,
    pub by_op: ByOp,
    /// When the last `c`, `u` or `d` was committed in the database.
    pub last_changed_at: Option<DateTime<Utc>>,
    pub trends: ChangeTrends,
}

fn time(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// The status named `name`, if this build knows it.
fn status_named(name: &str) -> Option<ExecutionStatus> {
    [
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed,
        ExecutionStatus::TimedOut,
        ExecutionStatus::Cancelled,
    ]
    .into_iter()
    .find(|s| s.name() == name)
}

/// Column `i` of a row as text, without copying it.
fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    row.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// What a query met: a row the build cannot read (its execution id and status).
type Unknown = Option<(String, String)>;

/// Readers of the store, for the API: a small pool of connections (WAL
/// readers never wait for the writer). Every method blocks: call it off
/// the async workers.
#[derive(Debug)]
pub struct AgentAnalytics {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// Idle connections kept for the next reads.
const IDLE_READERS: usize = 4;

impl AgentAnalytics {
    /// Opens readers of an existing store (the service creates it).
    pub fn open(path: impl AsRef<Path>) -> Result<AgentAnalytics> {
        let path = path.as_ref().to_owned();
        if !path.exists() {
            return Err(AnalyticsError::File {
                path: path.display().to_string(),
                reason: "there is none: open it with AnalyticsStore::open (the service does) first"
                    .into(),
            });
        }
        let reader = AgentAnalytics {
            path,
            idle: Mutex::new(Vec::new()),
        };
        // One connection now, so a bad file is an error at start-up, not per request.
        let conn = reader.connect()?;
        let found = schema_version(&conn).map_err(|source| AnalyticsError::Store {
            path: reader.path.display().to_string(),
            operation: "reading the schema version (is this an agent analytics store?)",
            source,
        })?;
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if found > known {
            return Err(AnalyticsError::SchemaTooNew {
                path: reader.path.display().to_string(),
                found,
                known,
            });
        }
        reader.put_back(conn);
        Ok(reader)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<Connection> {
        open_connection(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            "opening the database for reading",
        )
    }

    fn put_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
    }

    /// Runs `f` in one read transaction (one snapshot of the store).
    fn read<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = conn.unchecked_transaction().and_then(|tx| {
            let out = f(&tx)?;
            tx.finish()?;
            Ok(out)
        });
        // A connection whose read failed is dropped, not reused.
        match out {
            Ok(v) => {
                self.put_back(conn);
                Ok(v)
            }
            Err(source) => Err(AnalyticsError::Store {
                path: self.path.display().to_string(),
                operation,
                source,
            }),
        }
    }

    fn corrupt(&self, (execution_id, status): (String, String)) -> AnalyticsError {
        AnalyticsError::Corrupt {
            path: self.path.display().to_string(),
            execution_id,
            status,
        }
    }

    /// Executions stored.
    pub fn executions(&self) -> Result<u64> {
        self.read("counting executions", |c| {
            c.query_row("SELECT count(*) FROM executions", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|n| n as u64)
    }

    /// User changes stored.
    pub fn user_changes(&self) -> Result<u64> {
        self.read("counting user changes", |c| {
            c.query_row("SELECT count(*) FROM user_changes", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|n| n as u64)
    }

    /// The user changes' figures and trends up to `now`.
    pub fn users(&self, now: DateTime<Utc>) -> Result<UserChanges> {
        let now_ms = now.timestamp_millis();
        let since = bucket_start(now_ms, HOUR_MS) - (HOURS - 1) * HOUR_MS;
        type Read = (Vec<(String, u64, i64, String)>, Vec<(i64, ChangeOp)>);
        let (per_op, recent): Read = self.read("reading user changes", |c| {
            // From the (op, changed_ms) index: a count and a maximum per op,
            // and a position to name if the op is one this build does not know.
            let per_op = c
                .prepare_cached(
                    "SELECT op, count(*), MAX(changed_ms), MIN(position) FROM user_changes GROUP BY op",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut q = c.prepare_cached(
                "SELECT changed_ms, op FROM user_changes \
                 WHERE op IN ('c', 'u', 'd') AND changed_ms >= ?1 AND changed_ms <= ?2",
            )?;
            let mut rows = q.query(params![since, now_ms])?;
            let mut recent = Vec::new();
            while let Some(r) = rows.next()? {
                if let Some(op) = ChangeOp::from_code(text(r, 1)?) {
                    recent.push((r.get(0)?, op));
                }
            }
            Ok((per_op, recent))
        })?;
        let mut by_op = ByOp::default();
        let mut last = None;
        for (code, n, last_ms, position) in per_op {
            let op = ChangeOp::from_code(&code).ok_or_else(|| AnalyticsError::CorruptChange {
                path: self.path.display().to_string(),
                position,
                op: code,
            })?;
            by_op.add(op, n);
            if op != ChangeOp::Read {
                last = last.max(Some(last_ms));
            }
        }
        Ok(UserChanges {
            total: by_op.total(),
            by_op,
            last_changed_at: last.and_then(time),
            trends: ChangeTrends {
                as_of: now,
                per_minute: change_buckets(&recent, now_ms, MINUTE_MS, MINUTES),
                per_hour: change_buckets(&recent, now_ms, HOUR_MS, HOURS),
            },
        })
    }

    /// One agent's figures and trends up to `now`; `None` when no
    /// execution of the agent is stored.
    pub fn agent(&self, agent_id: &str, now: DateTime<Utc>) -> Result<Option<AgentReport>> {
        let now_ms = now.timestamp_millis();
        let since = bucket_start(now_ms, HOUR_MS) - (HOURS - 1) * HOUR_MS;
        type Read = (
            ByStatus,
            Vec<f64>,
            Option<i64>,
            Vec<(i64, f64, bool)>,
            Unknown,
        );
        let (by_status, sorted, last, recent, unknown): Read =
            self.read("reading an agent's executions", |c| {
                let mut by_status = ByStatus::default();
                let mut sorted = Vec::new();
                let mut unknown = None;
                let mut q = c.prepare_cached(
                    "SELECT status, duration_s, execution_id FROM executions \
                     WHERE agent_id = ?1 ORDER BY duration_s",
                )?;
                let mut rows = q.query(params![agent_id])?;
                while let Some(r) = rows.next()? {
                    match status_named(text(r, 0)?) {
                        Some(s) => by_status.add(s),
                        None => unknown = Some((r.get(2)?, r.get(0)?)),
                    }
                    sorted.push(r.get::<_, f64>(1)?);
                }
                if sorted.is_empty() {
                    return Ok((by_status, sorted, None, Vec::new(), unknown));
                }
                let last: Option<i64> = c
                    .prepare_cached("SELECT MAX(finished_ms) FROM executions WHERE agent_id = ?1")?
                    .query_row(params![agent_id], |r| r.get(0))?;
                let mut q = c.prepare_cached(
                    "SELECT finished_ms, duration_s, status FROM executions \
                     WHERE agent_id = ?1 AND finished_ms >= ?2 AND finished_ms <= ?3",
                )?;
                let mut rows = q.query(params![agent_id, since, now_ms])?;
                let mut recent = Vec::new();
                while let Some(r) = rows.next()? {
                    let ok = text(r, 2)? == ExecutionStatus::Succeeded.name();
                    recent.push((r.get(0)?, r.get(1)?, ok));
                }
                Ok((by_status, sorted, last, recent, unknown))
            })?;
        if let Some(u) = unknown {
            return Err(self.corrupt(u));
        }
        if sorted.is_empty() {
            return Ok(None);
        }
        Ok(Some(AgentReport {
            agent_id: agent_id.to_owned(),
            figures: Figures::of(by_status, &sorted, last),
            trends: Trends {
                as_of: now,
                per_minute: buckets(&recent, now_ms, MINUTE_MS, MINUTES),
                per_hour: buckets(&recent, now_ms, HOUR_MS, HOURS),
            },
        }))
    }

    /// Every agent's figures, and the figures over all of them.
    pub fn summary(&self) -> Result<Summary> {
        /// One agent's tally, as the scan fills it.
        #[derive(Default)]
        struct Tally {
            by_status: ByStatus,
            sorted: Vec<f64>,
        }
        let (tallies, last, unknown) = self.read("reading every execution", |c| {
            let mut tallies: Vec<(String, Tally)> = Vec::new();
            let mut unknown: Unknown = None;
            // In (agent, duration) order, from the covering index: each
            // agent's durations arrive sorted, one agent after the other.
            let mut q = c.prepare_cached(
                "SELECT agent_id, status, duration_s, execution_id FROM executions \
                 ORDER BY agent_id, duration_s",
            )?;
            let mut rows = q.query([])?;
            while let Some(r) = rows.next()? {
                let agent = text(r, 0)?;
                if tallies.last().is_none_or(|(a, _)| a != agent) {
                    tallies.push((agent.to_owned(), Tally::default()));
                }
                let t = &mut tallies.last_mut().expect("the agent's tally is last").1;
                match status_named(text(r, 1)?) {
                    Some(s) => t.by_status.add(s),
                    None => unknown = Some((r.get(3)?, r.get(1)?)),
                }
                t.sorted.push(r.get(2)?);
            }
            let last: BTreeMap<String, i64> = c
                .prepare_cached(
                    "SELECT agent_id, MAX(finished_ms) FROM executions GROUP BY agent_id",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok((tallies, last, unknown))
        })?;
        if let Some(u) = unknown {
            return Err(self.corrupt(u));
        }
        let mut all_status = ByStatus::default();
        let mut all_sorted = Vec::new();
        let mut agents = Vec::with_capacity(tallies.len());
        for (agent_id, t) in tallies {
            all_status.succeeded += t.by_status.succeeded;
            all_status.failed += t.by_status.failed;
            all_status.timed_out += t.by_status.timed_out;
            all_status.cancelled += t.by_status.cancelled;
            all_sorted.extend_from_slice(&t.sorted);
            let figures = Figures::of(t.by_status, &t.sorted, last.get(&agent_id).copied());
            agents.push(AgentFigures { agent_id, figures });
        }
        all_sorted.sort_unstable_by(f64::total_cmp);
        Ok(Summary {
            all: Figures::of(all_status, &all_sorted, last.values().max().copied()),
            agents,
        })
    }
}

/// The start of the bucket of `width` that holds `ms`.
fn bucket_start(ms: i64, width: i64) -> i64 {
    ms - ms.rem_euclid(width)
}

/// `count` buckets of `width`, the last holding `now_ms`, from (finished,
/// duration, succeeded) rows; rows outside them are left out.
fn buckets(rows: &[(i64, f64, bool)], now_ms: i64, width: i64, count: i64) -> Vec<Bucket> {
    let first = bucket_start(now_ms, width) - (count - 1) * width;
    let mut durations: Vec<Vec<f64>> = vec![Vec::new(); count as usize];
    let mut succeeded = vec![0u64; count as usize];
    for &(t, d, ok) in rows {
        if t < first || t > now_ms {
            continue;
        }
        let i = ((t - first) / width) as usize;
        durations[i].push(d);
        succeeded[i] += u64::from(ok);
    }
    durations
        .into_iter()
        .zip(succeeded)
        .zip(0..)
        .map(|((mut d, succeeded), i)| {
            d.sort_unstable_by(f64::total_cmp);
            Bucket {
                start: time(first + i * width).unwrap_or_default(),
                total: d.len() as u64,
                succeeded,
                p95_seconds: nearest_rank(&d, 95),
            }
        })
        .collect()
}

/// `count` buckets of `width`, the last holding `now_ms`, from (committed,
/// op) rows of `c`, `u` and `d`; rows outside them are left out.
fn change_buckets(
    rows: &[(i64, ChangeOp)],
    now_ms: i64,
    width: i64,
    count: i64,
) -> Vec<ChangeBucket> {
    let first = bucket_start(now_ms, width) - (count - 1) * width;
    let mut out: Vec<ChangeBucket> = (0..count)
        .map(|i| ChangeBucket {
            start: time(first + i * width).unwrap_or_default(),
            total: 0,
            c: 0,
            u: 0,
            d: 0,
        })
        .collect();
    for &(t, op) in rows {
        if t < first || t > now_ms {
            continue;
        }
        let b = &mut out[((t - first) / width) as usize];
        match op {
            ChangeOp::Create => b.c += 1,
            ChangeOp::Update => b.u += 1,
            ChangeOp::Delete => b.d += 1,
            ChangeOp::Read => continue,
        }
        b.total += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_aligned_to_the_clock() {
        let now = Utc.with_ymd_and_hms(2024, 5, 1, 12, 30, 30).unwrap();
        let ms = |h, m, s| {
            Utc.with_ymd_and_hms(2024, 5, 1, h, m, s)
                .unwrap()
                .timestamp_millis()
        };
        let rows = [
            (ms(12, 30, 0), 3.0, true),
            (ms(12, 30, 30), 1.0, false),
            (ms(12, 30, 31), 9.0, true), // after now
            (ms(11, 31, 0), 2.0, true),
            (ms(11, 31, 0) - 1, 5.0, true), // before the first minute
        ];
        let b = buckets(&rows, now.timestamp_millis(), MINUTE_MS, MINUTES);
        assert_eq!(b.len(), 60);
        assert_eq!(
            b[0].start,
            Utc.with_ymd_and_hms(2024, 5, 1, 11, 31, 0).unwrap()
        );
        assert_eq!(
            (b[0].total, b[0].succeeded, b[0].p95_seconds),
            (1, 1, Some(2.0))
        );
        assert_eq!(
            b[59].start,
            Utc.with_ymd_and_hms(2024, 5, 1, 12, 30, 0).unwrap()
        );
        assert_eq!(
            (b[59].total, b[59].succeeded, b[59].p95_seconds),
            (2, 1, Some(3.0))
        );
        assert_eq!(b.iter().map(|b| b.total).sum::<u64>(), 3);
        assert_eq!(b[30].p95_seconds, None);
        let h = buckets(&rows, now.timestamp_millis(), HOUR_MS, HOURS);
        assert_eq!(h.len(), 24);
        assert_eq!(
            h[0].start,
            Utc.with_ymd_and_hms(2024, 4, 30, 13, 0, 0).unwrap()
        );
        assert_eq!((h[22].total, h[23].total), (2, 2));
    }
    #[test]
    fn change_buckets_count_c_u_d_and_leave_snapshot_rows_out() {
        let now = Utc.with_ymd_and_hms(2024, 5, 1, 12, 30, 30).unwrap();
        let ms = |h, m, s| {
            Utc.with_ymd_and_hms(2024, 5, 1, h, m, s)
                .unwrap()
                .timestamp_millis()
        };
        let rows = [
            (ms(12, 30, 0), ChangeOp::Create),
            (ms(12, 30, 30), ChangeOp::Update),
            (ms(12, 30, 30), ChangeOp::Read),      // a snapshot row
            (ms(12, 30, 31), ChangeOp::Delete),    // after now
            (ms(11, 31, 0), ChangeOp::Delete),     // the first minute
            (ms(11, 31, 0) - 1, ChangeOp::Create), // an hour, not a minute
        ];
        let b = change_buckets(&rows, now.timestamp_millis(), MINUTE_MS, MINUTES);
        assert_eq!(b.len(), 60);
        assert_eq!(
            b[0],
            ChangeBucket {
                start: Utc.with_ymd_and_hms(2024, 5, 1, 11, 31, 0).unwrap(),
                total: 1,
                c: 0,
                u: 0,
                d: 1,
            }
        );
        assert_eq!((b[59].total, b[59].c, b[59].u, b[59].d), (2, 1, 1, 0));
        assert_eq!(b.iter().map(|b| b.total).sum::<u64>(), 3);
        let h = change_buckets(&rows, now.timestamp_millis(), HOUR_MS, HOURS);
        assert_eq!(h.len(), 24);
        assert_eq!((h[22].total, h[22].c, h[22].d), (2, 1, 1));
        assert_eq!(h[23].total, 2);
    }

    #[test]
    fn a_version_1_store_gains_user_changes_and_keeps_its_executions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AnalyticsStore::FILE_NAME);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
            )
            .unwrap();
            conn.execute_batch(MIGRATIONS[0].1).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations VALUES (1, '2024-05-01T00:00:00Z')",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO executions VALUES ('ex-1', 'card', 'succeeded', 0.5, 0)",
                [],
            )
            .unwrap();
        }
        let store = AnalyticsStore::open(&path).unwrap();
        let reader = store.reader().unwrap();
        assert_eq!(reader.executions().unwrap(), 1);
        assert_eq!(reader.user_changes().unwrap(), 0);
        let conn = Connection::open(&path).unwrap();
        assert_eq!(schema_version(&conn).unwrap(), 2);
        let now = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        let users = reader.users(now).unwrap();
        assert_eq!((users.total, users.last_changed_at), (0, None));
        assert_eq!(users.trends.per_minute.len(), 60);
        assert_eq!(users.trends.per_hour.len(), 24);
    }
}
