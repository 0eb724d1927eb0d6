//! [`Storage`] on SQLite: one file in the data directory, WAL mode.
//!
//! Durability: `synchronous=NORMAL` in WAL mode survives a process crash
//! (every committed transaction is in the WAL) and may lose the last
//! transactions on power loss. That is enough here because everything in
//! this database is derived from the log, which fsyncs every append: a lost
//! tail is re-derived from the checkpoints that were kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::Value;
use ultracore_log::files;
use uuid::Uuid;

use super::{Batch, Snapshot, Storage, Watermark};
use crate::{Error, Result};

/// Versioned migrations, applied in order, each in its own transaction and
/// recorded in `schema_migrations`. Never edit a released one: add the next.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE es_events (
        aggregate_type TEXT NOT NULL,
        aggregate_id   TEXT NOT NULL,
        version        INTEGER NOT NULL,
        event_id       BLOB NOT NULL,
        ts             INTEGER NOT NULL,
        topic          TEXT NOT NULL,
        partition      INTEGER NOT NULL,
        "offset"       INTEGER NOT NULL,
        envelope       BLOB NOT NULL
    );
    CREATE UNIQUE INDEX es_events_by_version ON es_events (aggregate_type, aggregate_id, version);
    CREATE UNIQUE INDEX es_events_by_id ON es_events (event_id);
    CREATE INDEX es_events_by_time ON es_events (aggregate_type, aggregate_id, ts);
    CREATE TABLE es_snapshots (
        aggregate_type TEXT NOT NULL,
        aggregate_id   TEXT NOT NULL,
        version        INTEGER NOT NULL,
        state_schema   INTEGER NOT NULL,
        state          BLOB NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id)
    );
    CREATE TABLE followers (name TEXT PRIMARY KEY, generation INTEGER NOT NULL);
    CREATE TABLE checkpoints (
        follower    TEXT NOT NULL,
        topic       TEXT NOT NULL,
        partition   INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (follower, topic, partition)
    ) WITHOUT ROWID;
    CREATE TABLE watermarks (
        follower       TEXT NOT NULL,
        aggregate_type TEXT NOT NULL,
        aggregate_id   TEXT NOT NULL,
        version        INTEGER NOT NULL,
        commit_id      BLOB,
        PRIMARY KEY (follower, aggregate_type, aggregate_id)
    ) WITHOUT ROWID;
    CREATE TABLE documents (
        projection TEXT NOT NULL,
        view       TEXT NOT NULL,
        key        TEXT NOT NULL,
        doc        TEXT NOT NULL,
        PRIMARY KEY (projection, view, key)
    ) WITHOUT ROWID;
    "#,
)];

/// The follower name of the stream index (its rows are `es_events`).
pub(crate) const INDEX_FOLLOWER: &str = "es-index";

/// SQLite storage. One connection; callers serialize access (the event
/// store holds it behind a mutex).
#[derive(Debug)]
pub struct SqliteStorage {
    conn: Connection,
    path: PathBuf,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl SqliteStorage {
    /// The file name in the data directory.
    pub const FILE_NAME: &'static str = "ultracore.sqlite";

    /// Opens (creating and migrating as needed) the database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStorage> {
        let path = path.as_ref().to_owned();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            files::create_dir_all(dir).map_err(|e| Error::Storage {
                operation: "creating the data directory",
                reason: format!("{}: {e}", dir.display()),
            })?;
        }
        // Read models hold client data: the file is created owner-only here
        // (SQLite would use the umask), and SQLite gives its -wal and -shm
        // files the database file's mode.
        files::create_if_missing(&path).map_err(|e| Error::Storage {
            operation: "creating the database file",
            reason: format!("{}: {e}", path.display()),
        })?;
        let conn = Connection::open(&path).map_err(Error::storage("opening the database"))?;
        Self::setup(conn, path)
    }

    /// A private in-memory database (tests, read-only tools).
    pub fn in_memory() -> Result<SqliteStorage> {
        let conn = Connection::open_with_flags(
            ":memory:",
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .map_err(Error::storage("opening the database"))?;
        Self::setup(conn, PathBuf::from(":memory:"))
    }

    fn setup(conn: Connection, path: PathBuf) -> Result<SqliteStorage> {
        // Another process (a CLI beside the server) may hold the write lock briefly.
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(Error::storage("setting the busy timeout"))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(Error::storage("enabling WAL mode"))?;
        tracing::debug!(path = %path.display(), %mode, "read-model database opened");
        conn.execute_batch(
            "PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536;",
        )
        .map_err(Error::storage("setting pragmas"))?;
        let mut s = SqliteStorage { conn, path };
        s.migrate()?;
        Ok(s)
    }

    /// The schema version this database is at.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )
            .map_err(Error::storage("reading the schema version"))
    }

    fn migrate(&mut self) -> Result<()> {
        self.conn
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
            )
            .map_err(Error::storage("creating schema_migrations"))?;
        let current = self.schema_version()?;
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if current > known {
            return Err(Error::SchemaTooNew {
                path: self.location(),
                found: current,
                known,
            });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
            let tx = self
                .conn
                .transaction()
                .map_err(Error::storage("starting a migration"))?;
            tx.execute_batch(sql)
                .map_err(Error::storage("applying a migration"))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![version, chrono::Utc::now().to_rfc3339()],
            )
            .map_err(Error::storage("recording a migration"))?;
            if *version == 1 {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('instance_id', ?1)",
                    params![Uuid::now_v7().to_string()],
                )
                .map_err(Error::storage("recording the instance id"))?;
            }
            tx.commit()
                .map_err(Error::storage("committing a migration"))?;
            tracing::info!(path = %self.path.display(), version, "read-model schema migrated");
        }
        Ok(())
    }
}

fn uuid_from(bytes: Option<Vec<u8>>) -> Option<Uuid> {
    bytes.and_then(|b| Uuid::from_slice(&b).ok())
}

impl Storage for SqliteStorage {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn instance_id(&self) -> Result<String> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'instance_id'",
                [],
                |r| r.get(0),
            )
            .map_err(Error::storage("reading the instance id"))
    }

    fn checkpoints(&mut self, follower: &str) -> Result<BTreeMap<(String, u32), u64>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT topic, partition, next_offset FROM checkpoints WHERE follower = ?1",
            )
            .map_err(Error::storage("reading checkpoints"))?;
        let rows = stmt
            .query_map(params![follower], |r| {
                Ok((
                    (r.get::<_, String>(0)?, r.get::<_, u32>(1)?),
                    to_u64(r.get(2)?),
                ))
            })
            .map_err(Error::storage("reading checkpoints"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::storage("reading checkpoints"))
    }

    fn watermark(
        &mut self,
        follower: &str,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Watermark> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT version, commit_id FROM watermarks WHERE follower = ?1 AND aggregate_type = ?2 AND aggregate_id = ?3",
            )
            .map_err(Error::storage("reading a watermark"))?;
        let row = stmt
            .query_row(params![follower, aggregate_type, aggregate_id], |r| {
                Ok(Watermark {
                    version: to_u64(r.get(0)?),
                    commit: uuid_from(r.get(1)?),
                })
            })
            .optional()
            .map_err(Error::storage("reading a watermark"))?;
        Ok(row.unwrap_or_default())
    }

    fn commit(&mut self, follower: &str, batch: &Batch) -> Result<()> {
        let op = "writing a batch";
        let tx = self.conn.transaction().map_err(Error::storage(op))?;
        {
            let mut insert = tx
                .prepare_cached(
                    r#"INSERT OR IGNORE INTO es_events
                       (aggregate_type, aggregate_id, version, event_id, ts, topic, partition, "offset", envelope)
                       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"#,
                )
                .map_err(Error::storage(op))?;
            for e in &batch.events {
                insert
                    .execute(params![
                        e.aggregate_type,
                        e.aggregate_id,
                        to_i64(e.version),
                        e.event_id.as_bytes().as_slice(),
                        e.timestamp,
                        e.topic,
                        e.partition,
                        to_i64(e.offset),
                        e.envelope,
                    ])
                    .map_err(Error::storage(op))?;
            }
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO documents (projection, view, key, doc) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (projection, view, key) DO UPDATE SET doc = excluded.doc",
                )
                .map_err(Error::storage(op))?;
            let mut delete = tx
                .prepare_cached(
                    "DELETE FROM documents WHERE projection = ?1 AND view = ?2 AND key = ?3",
                )
                .map_err(Error::storage(op))?;
            for ((view, key), doc) in &batch.documents {
                match doc {
                    Some(doc) => put.execute(params![follower, view, key, doc.to_string()]),
                    None => delete.execute(params![follower, view, key]),
                }
                .map_err(Error::storage(op))?;
            }
            let mut mark = tx
                .prepare_cached(
                    "INSERT INTO watermarks (follower, aggregate_type, aggregate_id, version, commit_id)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (follower, aggregate_type, aggregate_id)
                     DO UPDATE SET version = excluded.version, commit_id = excluded.commit_id",
                )
                .map_err(Error::storage(op))?;
            for ((ty, id), w) in &batch.watermarks {
                mark.execute(params![
                    follower,
                    ty,
                    id,
                    to_i64(w.version),
                    w.commit.map(|c| c.as_bytes().to_vec()),
                ])
                .map_err(Error::storage(op))?;
            }
            let mut checkpoint = tx
                .prepare_cached(
                    "INSERT INTO checkpoints (follower, topic, partition, next_offset) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (follower, topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                )
                .map_err(Error::storage(op))?;
            for ((topic, partition), next) in &batch.checkpoints {
                checkpoint
                    .execute(params![follower, topic, partition, to_i64(*next)])
                    .map_err(Error::storage(op))?;
            }
        }
        tx.commit().map_err(Error::storage(op))
    }

    fn stream(
        &mut self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        upto: u64,
    ) -> Result<Vec<Vec<u8>>> {
        let op = "reading an aggregate's events";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT envelope FROM es_events
                 WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND version > ?3 AND version <= ?4
                 ORDER BY version",
            )
            .map_err(Error::storage(op))?;
        let rows = stmt
            .query_map(
                params![aggregate_type, aggregate_id, to_i64(after), to_i64(upto)],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .map_err(Error::storage(op))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::storage(op))
    }

    fn version_at(&mut self, aggregate_type: &str, aggregate_id: &str, millis: i64) -> Result<u64> {
        let op = "finding the version at a time";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(MAX(version), 0) FROM es_events
                 WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND ts <= ?3",
            )
            .map_err(Error::storage(op))?;
        let v: i64 = stmt
            .query_row(params![aggregate_type, aggregate_id, millis], |r| r.get(0))
            .map_err(Error::storage(op))?;
        Ok(to_u64(v))
    }

    fn find_event(&mut self, event_id: Uuid) -> Result<Option<(String, String, u64)>> {
        let op = "looking up an event id";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT aggregate_type, aggregate_id, version FROM es_events WHERE event_id = ?1",
            )
            .map_err(Error::storage(op))?;
        stmt.query_row(params![event_id.as_bytes().as_slice()], |r| {
            Ok((r.get(0)?, r.get(1)?, to_u64(r.get(2)?)))
        })
        .optional()
        .map_err(Error::storage(op))
    }

    fn aggregate_ids(&mut self, aggregate_type: &str, limit: usize) -> Result<Vec<String>> {
        let op = "listing aggregates";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT aggregate_id FROM es_events WHERE aggregate_type = ?1 ORDER BY aggregate_id LIMIT ?2",
            )
            .map_err(Error::storage(op))?;
        let rows = stmt
            .query_map(params![aggregate_type, to_i64(limit as u64)], |r| r.get(0))
            .map_err(Error::storage(op))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::storage(op))
    }

    fn snapshot(&mut self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<Snapshot>> {
        let op = "reading a snapshot";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT version, state_schema, state FROM es_snapshots WHERE aggregate_type = ?1 AND aggregate_id = ?2",
            )
            .map_err(Error::storage(op))?;
        stmt.query_row(params![aggregate_type, aggregate_id], |r| {
            Ok(Snapshot {
                version: to_u64(r.get(0)?),
                state_schema: r.get(1)?,
                state: r.get(2)?,
            })
        })
        .optional()
        .map_err(Error::storage(op))
    }

    fn put_snapshot(
        &mut self,
        aggregate_type: &str,
        aggregate_id: &str,
        snapshot: &Snapshot,
    ) -> Result<()> {
        let op = "storing a snapshot";
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO es_snapshots (aggregate_type, aggregate_id, version, state_schema, state)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (aggregate_type, aggregate_id)
                 DO UPDATE SET version = excluded.version, state_schema = excluded.state_schema, state = excluded.state",
            )
            .map_err(Error::storage(op))?;
        stmt.execute(params![
            aggregate_type,
            aggregate_id,
            to_i64(snapshot.version),
            snapshot.state_schema,
            snapshot.state,
        ])
        .map_err(Error::storage(op))?;
        Ok(())
    }

    fn generation(&mut self, follower: &str) -> Result<u64> {
        let op = "reading a projection generation";
        let g: Option<i64> = self
            .conn
            .query_row(
                "SELECT generation FROM followers WHERE name = ?1",
                params![follower],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::storage(op))?;
        Ok(g.map_or(0, to_u64))
    }

    fn reset(&mut self, follower: &str) -> Result<u64> {
        let op = "resetting a projection";
        let tx = self.conn.transaction().map_err(Error::storage(op))?;
        tx.execute(
            "DELETE FROM documents WHERE projection = ?1",
            params![follower],
        )
        .map_err(Error::storage(op))?;
        tx.execute(
            "DELETE FROM watermarks WHERE follower = ?1",
            params![follower],
        )
        .map_err(Error::storage(op))?;
        tx.execute(
            "DELETE FROM checkpoints WHERE follower = ?1",
            params![follower],
        )
        .map_err(Error::storage(op))?;
        if follower == INDEX_FOLLOWER {
            tx.execute("DELETE FROM es_events", [])
                .map_err(Error::storage(op))?;
        }
        tx.execute(
            "INSERT INTO followers (name, generation) VALUES (?1, 1)
             ON CONFLICT (name) DO UPDATE SET generation = generation + 1",
            params![follower],
        )
        .map_err(Error::storage(op))?;
        let g: i64 = tx
            .query_row(
                "SELECT generation FROM followers WHERE name = ?1",
                params![follower],
                |r| r.get(0),
            )
            .map_err(Error::storage(op))?;
        tx.commit().map_err(Error::storage(op))?;
        Ok(to_u64(g))
    }

    fn document(&mut self, projection: &str, view: &str, key: &str) -> Result<Option<Value>> {
        let op = "reading a document";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT doc FROM documents WHERE projection = ?1 AND view = ?2 AND key = ?3",
            )
            .map_err(Error::storage(op))?;
        let doc: Option<String> = stmt
            .query_row(params![projection, view, key], |r| r.get(0))
            .optional()
            .map_err(Error::storage(op))?;
        doc.map(|d| {
            serde_json::from_str(&d).map_err(|e| Error::Storage {
                operation: op,
                reason: format!("document {projection}/{view}/{key} is not JSON: {e}"),
            })
        })
        .transpose()
    }

    fn documents(&mut self, projection: &str, view: &str) -> Result<Vec<(String, Value)>> {
        let op = "reading documents";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key, doc FROM documents WHERE projection = ?1 AND view = ?2 ORDER BY key",
            )
            .map_err(Error::storage(op))?;
        let rows = stmt
            .query_map(params![projection, view], key_and_doc)
            .map_err(Error::storage(op))?;
        parse_documents(rows, op, projection, view)
    }

    fn documents_page(
        &mut self,
        projection: &str,
        view: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>> {
        let op = "reading a page of documents";
        // (projection, view, key) is the primary key: this is one range scan.
        let from = after.filter(|a| *a >= prefix).unwrap_or(prefix);
        let inclusive = after.is_none_or(|a| a < prefix);
        let end = super::prefix_end(prefix);
        let sql = match (inclusive, end.is_some()) {
            (true, true) => "SELECT key, doc FROM documents WHERE projection = ?1 AND view = ?2 AND key >= ?3 AND key < ?4 ORDER BY key LIMIT ?5",
            (false, true) => "SELECT key, doc FROM documents WHERE projection = ?1 AND view = ?2 AND key > ?3 AND key < ?4 ORDER BY key LIMIT ?5",
            (true, false) => "SELECT key, doc FROM documents WHERE projection = ?1 AND view = ?2 AND key >= ?3 AND ?4 IS NULL ORDER BY key LIMIT ?5",
            (false, false) => "SELECT key, doc FROM documents WHERE projection = ?1 AND view = ?2 AND key > ?3 AND ?4 IS NULL ORDER BY key LIMIT ?5",
        };
        let mut stmt = self.conn.prepare_cached(sql).map_err(Error::storage(op))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![projection, view, from, end, limit], key_and_doc)
            .map_err(Error::storage(op))?;
        parse_documents(rows, op, projection, view)
    }
}

/// A `(key, doc)` row of the documents table.
fn key_and_doc(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String)> {
    Ok((r.get(0)?, r.get(1)?))
}

/// Documents rows parsed as JSON; a row that is not JSON is an error
/// naming it.
fn parse_documents(
    rows: impl Iterator<Item = rusqlite::Result<(String, String)>>,
    op: &'static str,
    projection: &str,
    view: &str,
) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for row in rows {
        let (key, doc) = row.map_err(Error::storage(op))?;
        let doc = serde_json::from_str(&doc).map_err(|e| Error::Storage {
            operation: op,
            reason: format!("document {projection}/{view}/{key} is not JSON: {e}"),
        })?;
        out.push((key, doc));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    // The storage contract runs on SQLite and PostgreSQL in tests/storage.rs;
    // what only SQLite has is tested here.
    use super::*;

    #[test]
    fn a_new_database_and_its_wal_are_owner_only(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("data");
        let storage = SqliteStorage::open(dir.join(SqliteStorage::FILE_NAME))?;
        storage.schema_version()?;
        // While the connection is open, SQLite's -wal and -shm exist.
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.join(format!("{}{suffix}", SqliteStorage::FILE_NAME));
            assert!(file.exists(), "{} missing", file.display());
        }
        assert_eq!(files::not_owner_only(&dir)?, vec![]);
        Ok(())
    }
}
