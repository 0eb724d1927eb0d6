//! The operational tables on SQLite (the embedded default), captured by
//! triggers.
//!
//! `operational.sqlite` in the data directory holds `users` and
//! `conversations` (the source of truth, unlike the read models, which are
//! derived from the log and can be rebuilt), the outbox `cdc_outbox` and the
//! relay's position `cdc_relay`.
//!
//! Capture: generated `AFTER INSERT/UPDATE/DELETE` triggers write each
//! change, with the whole row before and after as JSON, to the outbox in
//! the same transaction as the change. Triggers live in the database file,
//! so a writer in another process (the `sqlite3` shell, a migration
//! script) is captured exactly like the API. SQLite runs one write
//! transaction at a time, so the outbox's `seq` (AUTOINCREMENT: never
//! reused, even after the relay deletes rows) is the commit order. An
//! update that changes a primary key is captured as a delete and a create,
//! as Debezium does.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::{Map, Value};
use ultracore_log::files;

use crate::envelope::{Op, Row};
use crate::model::{
    self, Conversation, Message, NewConversation, NewMessage, NewUser, User, UserPatch,
};
use crate::tables::{Kind, Table, CONVERSATIONS, TABLES, USERS};
use crate::{Error, Result};

/// The file in the data directory.
pub const FILE_NAME: &str = "operational.sqlite";

/// Milliseconds since the epoch, in SQL (no `unixepoch('subsec')`: the
/// triggers also run in older `sqlite3` shells).
const NOW_MS: &str = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";

/// One captured change, as the outbox holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub seq: u64,
    pub table: &'static Table,
    pub op: Op,
    pub key: String,
    pub before: Option<Row>,
    pub after: Option<Row>,
    /// When the change was made.
    pub ts_ms: i64,
}

/// The relay's durable state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RelayState {
    /// Names this database in the records the relay writes, so records of
    /// another (an earlier, deleted) database are never taken for its own.
    pub instance: String,
    pub snapshot_done: bool,
    /// The staged snapshot: the outbox position it was read at, how many
    /// rows it holds and how many of them are durable on the log.
    pub snapshot_high: Option<u64>,
    pub snapshot_total: u64,
    pub snapshot_relayed: u64,
    /// Every outbox change up to this `seq` is durable on the log.
    pub position: u64,
    /// When the state last moved (milliseconds since the epoch): the
    /// records of a batch in flight at a crash are stamped after it.
    pub committed_at_ms: i64,
}

/// One row of the staged snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRow {
    /// 1-based, in snapshot order (table by table, in key order).
    pub idx: u64,
    pub table: &'static Table,
    pub key: String,
    pub row: Row,
}

/// A handle on `operational.sqlite`: one connection, calls serialized.
/// Calls block (sub-millisecond in WAL mode): async callers go through
/// `spawn_blocking`.
#[derive(Debug)]
pub struct SqliteDb {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteDb {
    /// Opens (creating if needed) the database and brings its schema, outbox
    /// and triggers up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteDb> {
        let path = path.as_ref().to_path_buf();
        let err = sqlite_err(&path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            files::create_dir_all(dir).map_err(io_err(dir))?;
        }
        files::create_if_missing(&path).map_err(io_err(&path))?;
        let conn = Connection::open(&path).map_err(&err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(&err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(&err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(&err)?;
        migrate(&conn).map_err(&err)?;
        drop(err);
        Ok(SqliteDb {
            path,
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(sqlite_err(&self.path))
    }

    // ---- users ----

    pub fn create_user(&self, new: &NewUser) -> Result<User> {
        let new = new.validate()?;
        let now = model::now_rfc3339();
        let user = User {
            id: new.id.clone().unwrap_or_else(|| model::new_id("usr")),
            name: new.name,
            email: new.email,
            phone: new.phone,
            country: new.country,
            risk_profile: new.risk_profile,
            status: new.status,
            created_at: now.clone(),
            updated_at: now,
        };
        let inserted = self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(conflict) = user_conflict(&tx, &user.id, &user.email, None)? {
                return Ok(Err(conflict));
            }
            tx.execute(
                "INSERT INTO users (id, name, email, phone, country, risk_profile, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    user.id, user.name, user.email, user.phone, user.country,
                    user.risk_profile, user.status, user.created_at, user.updated_at
                ],
            )?;
            tx.commit()?;
            Ok(Ok(()))
        })?;
        inserted.map(|()| user)
    }

    pub fn user(&self, id: &str) -> Result<Option<User>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {} FROM users WHERE id = ?1", USERS.column_list()),
                [id],
                user_from_row,
            )
            .optional()
        })
    }

    /// Users in id order after `after`, at most `limit`.
    pub fn users(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {} FROM users WHERE id > ?1 ORDER BY id LIMIT ?2",
                USERS.column_list()
            ))?;
            let rows = stmt.query_map(params![after.unwrap_or(""), limit as i64], user_from_row)?;
            rows.collect()
        })
    }

    /// Applies a patch; `None` if there is no such user.
    pub fn update_user(&self, id: &str, patch: &UserPatch) -> Result<Option<User>> {
        let patch = patch.validate()?;
        let updated = self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current = tx
                .query_row(
                    &format!("SELECT {} FROM users WHERE id = ?1", USERS.column_list()),
                    [id],
                    user_from_row,
                )
                .optional()?;
            let Some(current) = current else {
                return Ok(Ok(None));
            };
            let mut user = patch.apply(&current);
            if user.email != current.email {
                if let Some(conflict) = user_conflict(&tx, "", &user.email, Some(id))? {
                    return Ok(Err(conflict));
                }
            }
            user.updated_at = model::now_rfc3339();
            tx.execute(
                "UPDATE users SET name = ?2, email = ?3, phone = ?4, country = ?5,
                 risk_profile = ?6, status = ?7, updated_at = ?8 WHERE id = ?1",
                params![
                    id,
                    user.name,
                    user.email,
                    user.phone,
                    user.country,
                    user.risk_profile,
                    user.status,
                    user.updated_at
                ],
            )?;
            tx.commit()?;
            Ok(Ok(Some(user)))
        })?;
        updated
    }

    /// Deletes a user; whether there was one.
    pub fn delete_user(&self, id: &str) -> Result<bool> {
        self.with(|c| Ok(c.execute("DELETE FROM users WHERE id = ?1", [id])? == 1))
    }

    // ---- conversations ----

    pub fn create_conversation(&self, new: &NewConversation) -> Result<Conversation> {
        new.validate()?;
        let now = model::now_rfc3339();
        let conversation = Conversation {
            id: new.id.clone().unwrap_or_else(|| model::new_id("conv")),
            customer_id: new.customer_id.clone(),
            subject: new.subject.as_ref().map(|s| s.trim().to_owned()),
            status: "open".into(),
            messages: Vec::new(),
            message_count: 0,
            created_at: now.clone(),
            updated_at: now,
        };
        let inserted = self.with(|c| {
            let n = c.execute(
                "INSERT INTO conversations (id, customer_id, subject, status, messages, message_count, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, '[]', 0, ?5, ?6) ON CONFLICT (id) DO NOTHING",
                params![
                    conversation.id, conversation.customer_id, conversation.subject,
                    conversation.status, conversation.created_at, conversation.updated_at
                ],
            )?;
            Ok(n == 1)
        })?;
        if inserted {
            Ok(conversation)
        } else {
            Err(Error::Conflict(format!(
                "a conversation with id '{}' exists: choose another id or leave it out to have one generated",
                conversation.id
            )))
        }
    }

    pub fn conversation(&self, id: &str) -> Result<Option<Conversation>> {
        let row = self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {} FROM conversations WHERE id = ?1",
                    CONVERSATIONS.column_list()
                ),
                [id],
                conversation_columns,
            )
            .optional()
        })?;
        row.map(conversation_from_columns).transpose()
    }

    /// Conversations in id order after `after` (of one customer when given), at most `limit`.
    pub fn conversations(
        &self,
        customer_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Conversation>> {
        let rows = self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {} FROM conversations WHERE id > ?1 AND (?2 IS NULL OR customer_id = ?2)
                 ORDER BY id LIMIT ?3",
                CONVERSATIONS.column_list()
            ))?;
            let rows = stmt.query_map(
                params![after.unwrap_or(""), customer_id, limit as i64],
                conversation_columns,
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter().map(conversation_from_columns).collect()
    }

    /// Appends a message; `None` if there is no such conversation.
    pub fn add_message(&self, id: &str, message: &NewMessage) -> Result<Option<Conversation>> {
        message.validate()?;
        let entry = Message {
            role: message.role.clone(),
            text: message.text.clone(),
            at: model::now_rfc3339(),
        };
        let json = serde_json::to_string(&entry).expect("a message is serializable");
        // One statement: the append and the bound are checked atomically.
        let changed = self.with(|c| {
            c.execute(
                "UPDATE conversations SET messages = json_insert(messages, '$[#]', json(?2)),
                 message_count = message_count + 1, updated_at = ?3
                 WHERE id = ?1 AND message_count < ?4",
                params![id, json, entry.at, model::MAX_MESSAGES as i64],
            )
        })?;
        if changed == 0 {
            return match self.conversation(id)? {
                None => Ok(None),
                Some(_) => Err(Error::Conflict(format!(
                    "conversation '{id}' holds {} messages, the most one conversation keeps: start a new conversation",
                    model::MAX_MESSAGES
                ))),
            };
        }
        self.conversation(id)
    }

    // ---- capture ----

    /// At most `limit` outbox changes after `seq`, in commit order.
    pub fn outbox_after(&self, seq: u64, limit: usize) -> Result<Vec<OutboxRow>> {
        let raw = self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, tbl, op, pk, before, after, ts_ms FROM cdc_outbox
                 WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![seq as i64, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        raw.into_iter()
            .map(|(seq, tbl, op, key, before, after, ts_ms)| {
                let corrupt = |what: &str| Error::Corrupt(format!("outbox row {seq}: {what}"));
                let table = crate::tables::table(&tbl).ok_or_else(|| corrupt("unknown table"))?;
                let op = Op::from_code(&op).ok_or_else(|| corrupt("unknown op"))?;
                let parse = |text: Option<String>| -> Result<Option<Row>> {
                    text.map(|t| match serde_json::from_str::<Value>(&t) {
                        Ok(Value::Object(row)) => Ok(normalize(table, row)),
                        _ => Err(corrupt("a row image is not a JSON object")),
                    })
                    .transpose()
                };
                Ok(OutboxRow {
                    seq: seq as u64,
                    table,
                    op,
                    key,
                    before: parse(before)?,
                    after: parse(after)?,
                    ts_ms,
                })
            })
            .collect()
    }

    /// The highest outbox `seq` ever assigned (0: none).
    pub fn outbox_high(&self) -> Result<u64> {
        self.with(|c| outbox_high(c).map(|v| v as u64))
    }

    /// Changes waiting in the outbox after `position`, and when the oldest was made.
    pub fn outbox_backlog(&self, position: u64) -> Result<(u64, Option<i64>)> {
        self.with(|c| {
            c.query_row(
                "SELECT count(*), min(ts_ms) FROM cdc_outbox WHERE seq > ?1",
                [position as i64],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Option<i64>>(1)?)),
            )
        })
    }

    pub fn relay_state(&self) -> Result<RelayState> {
        self.with(|c| relay_state(c))
    }

    /// Records how far the relay got, and drops what that covers from the
    /// outbox and the staged snapshot, in one transaction.
    pub fn commit_relay(&self, state: &RelayState) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE cdc_relay SET snapshot_done = ?1, snapshot_high = ?2, snapshot_total = ?3,
                 snapshot_relayed = ?4, position = ?5, committed_at_ms = ?6 WHERE id = 1",
                params![
                    state.snapshot_done as i64,
                    state.snapshot_high.map(|h| h as i64),
                    state.snapshot_total as i64,
                    state.snapshot_relayed as i64,
                    state.position as i64,
                    state.committed_at_ms
                ],
            )?;
            tx.execute(
                "DELETE FROM cdc_outbox WHERE seq <= ?1",
                [state.position as i64],
            )?;
            if state.snapshot_done {
                tx.execute("DELETE FROM cdc_snapshot", [])?;
            } else {
                tx.execute(
                    "DELETE FROM cdc_snapshot WHERE idx <= ?1",
                    [state.snapshot_relayed as i64],
                )?;
            }
            tx.commit()
        })
    }

    /// Stages the initial snapshot unless it is staged or done: under the
    /// write lock, so no change slips between them, every row of every
    /// captured table is copied to `cdc_snapshot` and the outbox position
    /// recorded. Changes after that position are exactly those the rows do
    /// not show. A relay stopped half-way resumes from the staged rows, so
    /// a snapshot is read once, whatever happens to the relay.
    pub fn stage_snapshot(&self, now_ms: i64) -> Result<RelayState> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let state = relay_state(&tx)?;
            if state.snapshot_done || state.snapshot_high.is_some() {
                return Ok(state);
            }
            let high = outbox_high(&tx)?;
            tx.execute("DELETE FROM cdc_snapshot", [])?;
            for table in TABLES {
                tx.execute(
                    &format!(
                        "INSERT INTO cdc_snapshot (tbl, pk, row) SELECT '{name}', {key}, {row} FROM {name} ORDER BY {key}",
                        name = table.name,
                        key = table.key,
                        row = row_json(table, "")
                    ),
                    [],
                )?;
            }
            let total: i64 = tx.query_row("SELECT count(*) FROM cdc_snapshot", [], |r| r.get(0))?;
            tx.execute(
                "UPDATE cdc_relay SET snapshot_high = ?1, snapshot_total = ?2, snapshot_relayed = 0,
                 committed_at_ms = ?3 WHERE id = 1",
                params![high, total, now_ms],
            )?;
            let state = relay_state(&tx)?;
            tx.commit()?;
            Ok(state)
        })
    }

    /// At most `limit` staged snapshot rows after `idx`, in order.
    pub fn snapshot_after(&self, idx: u64, limit: usize) -> Result<Vec<SnapshotRow>> {
        let raw = self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT idx, tbl, pk, row FROM cdc_snapshot WHERE idx > ?1 ORDER BY idx LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![idx as i64, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        raw.into_iter()
            .map(|(idx, tbl, key, row)| {
                let corrupt = |what: &str| Error::Corrupt(format!("snapshot row {idx}: {what}"));
                let table = crate::tables::table(&tbl).ok_or_else(|| corrupt("unknown table"))?;
                let row = match serde_json::from_str::<Value>(&row) {
                    Ok(Value::Object(row)) => normalize(table, row),
                    _ => return Err(corrupt("not a JSON object")),
                };
                Ok(SnapshotRow {
                    idx: idx as u64,
                    table,
                    key,
                    row,
                })
            })
            .collect()
    }

    /// Every row of a table, as the capture carries it (tests, `cdc verify`).
    pub fn rows(&self, table: &Table) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {} FROM {} ORDER BY {}",
                row_json(table, ""),
                table.name,
                table.key
            ))?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            for text in rows {
                out.push(text?);
            }
            Ok(())
        })?;
        out.into_iter()
            .map(|t| match serde_json::from_str::<Value>(&t) {
                Ok(Value::Object(row)) => Ok(normalize(table, row)),
                _ => Err(Error::Corrupt(format!(
                    "a row of {} is not an object",
                    table.name
                ))),
            })
            .collect()
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| Error::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

/// A taken id or e-mail, as a conflict that says what to do.
fn user_conflict(
    c: &Connection,
    id: &str,
    email: &str,
    except: Option<&str>,
) -> rusqlite::Result<Option<Error>> {
    let id_taken = c
        .query_row("SELECT 1 FROM users WHERE id = ?1", [id], |_| Ok(()))
        .optional()?
        .is_some();
    if id_taken {
        return Ok(Some(Error::Conflict(format!(
            "a user with id '{id}' exists: choose another id or leave it out to have one generated"
        ))));
    }
    let email_taken = c
        .query_row(
            "SELECT 1 FROM users WHERE email = ?1 AND id IS NOT ?2",
            params![email, except],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    Ok(email_taken.then(|| {
        Error::Conflict(format!(
            "the e-mail address '{email}' belongs to another user: each user has their own"
        ))
    }))
}

fn relay_state(c: &Connection) -> rusqlite::Result<RelayState> {
    c.query_row(
        "SELECT instance, snapshot_done, snapshot_high, snapshot_total, snapshot_relayed, position,
         committed_at_ms FROM cdc_relay WHERE id = 1",
        [],
        |r| {
            Ok(RelayState {
                instance: r.get(0)?,
                snapshot_done: r.get::<_, i64>(1)? != 0,
                snapshot_high: r.get::<_, Option<i64>>(2)?.map(|h| h as u64),
                snapshot_total: r.get::<_, i64>(3)? as u64,
                snapshot_relayed: r.get::<_, i64>(4)? as u64,
                position: r.get::<_, i64>(5)? as u64,
                committed_at_ms: r.get(6)?,
            })
        },
    )
}

fn outbox_high(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row(
        "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'cdc_outbox'), 0)",
        [],
        |r| r.get(0),
    )
}

/// A row image in SQL: `json_object('id', <prefix>id, …)`. JSON columns go
/// in as text (`'' ||` drops the JSON subtype a value written by a JSON
/// function carries within its statement, which would embed it as JSON).
fn row_json(table: &Table, prefix: &str) -> String {
    let fields: Vec<String> = table
        .columns
        .iter()
        .map(|c| match c.kind {
            Kind::Json => format!("'{0}', '' || {prefix}{0}", c.name),
            _ => format!("'{0}', {prefix}{0}", c.name),
        })
        .collect();
    format!("json_object({})", fields.join(", "))
}

/// Integer columns read back from a JSON image as numbers already; text,
/// JSON and timestamp columns as strings. Columns the table does not define
/// are dropped (a column added by hand is not part of the contract).
fn normalize(table: &Table, mut row: Map<String, Value>) -> Row {
    let mut out = Map::with_capacity(table.columns.len());
    for c in table.columns {
        let v = row.remove(c.name).unwrap_or(Value::Null);
        let v = match (c.kind, v) {
            (Kind::Integer, Value::String(s)) => s
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or(Value::String(s)),
            (Kind::Text | Kind::Timestamp, Value::Number(n)) => Value::String(n.to_string()),
            (Kind::Json, v @ (Value::Array(_) | Value::Object(_) | Value::Number(_))) => {
                Value::String(v.to_string())
            }
            (_, v) => v,
        };
        out.insert(c.name.to_owned(), v);
    }
    out
}

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        email: r.get(2)?,
        phone: r.get(3)?,
        country: r.get(4)?,
        risk_profile: r.get(5)?,
        status: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

type ConversationColumns = (
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    String,
    String,
);

fn conversation_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConversationColumns> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn conversation_from_columns(c: ConversationColumns) -> Result<Conversation> {
    let (id, customer_id, subject, status, messages, count, created_at, updated_at) = c;
    let messages: Vec<Message> = serde_json::from_str(&messages).map_err(|e| {
        Error::Corrupt(format!(
            "conversation '{id}': messages are not a list of {{role, text, at}}: {e}"
        ))
    })?;
    Ok(Conversation {
        id,
        customer_id,
        subject,
        status,
        messages,
        message_count: count.max(0) as u32,
        created_at,
        updated_at,
    })
}

/// The schema, versioned by `PRAGMA user_version`.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version >= 1 {
        return Ok(());
    }
    let mut sql = String::from(
        "BEGIN IMMEDIATE;
         CREATE TABLE IF NOT EXISTS users (
             id TEXT PRIMARY KEY NOT NULL,
             name TEXT NOT NULL,
             email TEXT NOT NULL UNIQUE,
             phone TEXT,
             country TEXT NOT NULL CHECK (length(country) = 2),
             risk_profile TEXT NOT NULL CHECK (risk_profile IN ('conservative','moderate','balanced','growth','aggressive')),
             status TEXT NOT NULL CHECK (status IN ('active','suspended','closed')),
             created_at TEXT NOT NULL,
             updated_at TEXT NOT NULL
         ) STRICT;
         CREATE TABLE IF NOT EXISTS conversations (
             id TEXT PRIMARY KEY NOT NULL,
             customer_id TEXT NOT NULL,
             subject TEXT,
             status TEXT NOT NULL CHECK (status IN ('open','closed')),
             messages TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(messages)),
             message_count INTEGER NOT NULL DEFAULT 0,
             created_at TEXT NOT NULL,
             updated_at TEXT NOT NULL
         ) STRICT;
         CREATE INDEX IF NOT EXISTS conversations_customer ON conversations (customer_id, id);
         CREATE TABLE IF NOT EXISTS cdc_outbox (
             seq INTEGER PRIMARY KEY AUTOINCREMENT,
             tbl TEXT NOT NULL,
             op TEXT NOT NULL,
             pk TEXT NOT NULL,
             before TEXT,
             after TEXT,
             ts_ms INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS cdc_snapshot (
             idx INTEGER PRIMARY KEY,
             tbl TEXT NOT NULL,
             pk TEXT NOT NULL,
             row TEXT NOT NULL
         );
         CREATE TABLE IF NOT EXISTS cdc_relay (
             id INTEGER PRIMARY KEY CHECK (id = 1),
             instance TEXT NOT NULL,
             snapshot_done INTEGER NOT NULL,
             snapshot_high INTEGER,
             snapshot_total INTEGER NOT NULL,
             snapshot_relayed INTEGER NOT NULL,
             position INTEGER NOT NULL,
             committed_at_ms INTEGER NOT NULL
         );
        ",
    );
    sql.push_str(&format!(
        "INSERT OR IGNORE INTO cdc_relay (id, instance, snapshot_done, snapshot_high, snapshot_total,
         snapshot_relayed, position, committed_at_ms) VALUES (1, '{}', 0, NULL, 0, 0, 0, 0);",
        uuid::Uuid::now_v7().simple()
    ));
    for table in TABLES {
        sql.push_str(&triggers(table));
    }
    sql.push_str("PRAGMA user_version = 1; COMMIT;");
    conn.execute_batch(&sql)
}

/// The capture triggers of one table.
fn triggers(table: &Table) -> String {
    let (name, key) = (table.name, table.key);
    let old = row_json(table, "OLD.");
    let new = row_json(table, "NEW.");
    let insert = |op: &str, before: &str, after: &str, pk: &str| {
        format!(
            "INSERT INTO cdc_outbox (tbl, op, pk, before, after, ts_ms) \
             VALUES ('{name}', '{op}', {pk}, {before}, {after}, {NOW_MS});"
        )
    };
    format!(
        "CREATE TRIGGER IF NOT EXISTS cdc_{name}_insert AFTER INSERT ON {name} BEGIN {c} END;
         CREATE TRIGGER IF NOT EXISTS cdc_{name}_update AFTER UPDATE ON {name} WHEN OLD.{key} = NEW.{key} BEGIN {u} END;
         CREATE TRIGGER IF NOT EXISTS cdc_{name}_rekey AFTER UPDATE ON {name} WHEN OLD.{key} IS NOT NEW.{key} BEGIN {d} {c} END;
         CREATE TRIGGER IF NOT EXISTS cdc_{name}_delete AFTER DELETE ON {name} BEGIN {d} END;
        ",
        c = insert("c", "NULL", &new, &format!("NEW.{key}")),
        u = insert("u", &old, &new, &format!("NEW.{key}")),
        d = insert("d", &old, "NULL", &format!("OLD.{key}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, SqliteDb) {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(dir.path().join(FILE_NAME)).unwrap();
        (dir, db)
    }

    fn ada() -> NewUser {
        NewUser {
            id: Some("u1".into()),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            phone: None,
            country: "AU".into(),
            risk_profile: "growth".into(),
            status: "active".into(),
        }
    }

    #[test]
    fn every_change_lands_in_the_outbox_in_commit_order() {
        let (_dir, db) = db();
        let u = db.create_user(&ada()).unwrap();
        let patch = UserPatch {
            name: Some("Ada L".into()),
            ..Default::default()
        };
        db.update_user(&u.id, &patch).unwrap().unwrap();
        assert!(db.delete_user(&u.id).unwrap());
        let rows = db.outbox_after(0, 100).unwrap();
        let ops: Vec<Op> = rows.iter().map(|r| r.op).collect();
        assert_eq!(ops, [Op::Create, Op::Update, Op::Delete]);
        assert_eq!(rows[0].after.as_ref().unwrap()["name"], "Ada");
        assert_eq!(rows[1].before.as_ref().unwrap()["name"], "Ada");
        assert_eq!(rows[1].after.as_ref().unwrap()["name"], "Ada L");
        assert!(rows[2].after.is_none());
        assert_eq!(rows[2].before.as_ref().unwrap()["id"], "u1");
        assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq));
    }

    #[test]
    fn a_key_change_is_a_delete_and_a_create() {
        let (_dir, db) = db();
        db.create_user(&ada()).unwrap();
        db.with(|c| c.execute("UPDATE users SET id = 'u2' WHERE id = 'u1'", []))
            .unwrap();
        let rows = db.outbox_after(1, 100).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].op, rows[0].key.as_str()), (Op::Delete, "u1"));
        assert_eq!((rows[1].op, rows[1].key.as_str()), (Op::Create, "u2"));
    }

    #[test]
    fn conflicts_and_bounds_are_refused() {
        let (_dir, db) = db();
        db.create_user(&ada()).unwrap();
        assert!(matches!(db.create_user(&ada()), Err(Error::Conflict(_))));
        let other = NewUser {
            id: Some("u2".into()),
            ..ada()
        };
        assert!(matches!(db.create_user(&other), Err(Error::Conflict(m)) if m.contains("e-mail")));
        let conv = db
            .create_conversation(&NewConversation {
                id: None,
                customer_id: "u1".into(),
                subject: Some("cards".into()),
            })
            .unwrap();
        let msg = NewMessage {
            role: "customer".into(),
            text: "hi".into(),
        };
        let after = db.add_message(&conv.id, &msg).unwrap().unwrap();
        assert_eq!(after.message_count, 1);
        assert_eq!(after.messages[0].text, "hi");
        assert!(db.add_message("nope", &msg).unwrap().is_none());
        db.with(|c| {
            c.execute(
                "UPDATE conversations SET message_count = ?1 WHERE id = ?2",
                params![model::MAX_MESSAGES as i64, conv.id],
            )
        })
        .unwrap();
        assert!(matches!(
            db.add_message(&conv.id, &msg),
            Err(Error::Conflict(_))
        ));
    }

    #[test]
    fn the_staged_snapshot_and_its_position_agree() {
        let (_dir, db) = db();
        for i in 0..5 {
            db.create_user(&NewUser {
                id: Some(format!("u{i}")),
                email: format!("u{i}@example.com"),
                ..ada()
            })
            .unwrap();
        }
        let state = db.stage_snapshot(7).unwrap();
        assert_eq!((state.snapshot_high, state.snapshot_total), (Some(5), 5));
        // Staging again changes nothing, even after more writes.
        db.delete_user("u0").unwrap();
        assert_eq!(db.stage_snapshot(8).unwrap(), state);
        let rows = db.snapshot_after(0, 3).unwrap();
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["u0", "u1", "u2"]);
        assert_eq!(rows[0].row["email"], "u0@example.com");
        let mut done = RelayState {
            snapshot_relayed: 3,
            committed_at_ms: 9,
            ..state.clone()
        };
        db.commit_relay(&done).unwrap();
        assert_eq!(db.snapshot_after(0, 10).unwrap().len(), 2);
        done.snapshot_done = true;
        done.snapshot_relayed = 5;
        done.position = 5;
        db.commit_relay(&done).unwrap();
        assert!(db.snapshot_after(0, 10).unwrap().is_empty());
        let outbox = db.outbox_after(0, 10).unwrap();
        assert_eq!(
            outbox.len(),
            1,
            "only the delete after the snapshot is left"
        );
        assert_eq!(db.outbox_high().unwrap(), 6, "seq is never reused");
        assert_eq!(db.relay_state().unwrap(), done);
        assert_eq!(db.relay_state().unwrap().instance.len(), 32);
    }
}
