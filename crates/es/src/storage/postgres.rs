//! [`Storage`] on PostgreSQL: the tables, migrations and semantics of
//! [`super::SqliteStorage`], in one schema of a PostgreSQL database.
//!
//! # URL
//!
//! `postgres://USER:PASSWORD@HOST:PORT/DATABASE?schema=NAME` (or
//! `postgresql://`). `schema` (default `ultracore_es`) is the PostgreSQL
//! schema that holds every table of this storage: it is created when
//! missing, and every connection's `search_path` is that schema alone. So
//! tables of other components in the same database (`users`,
//! `conversations`, …, in `public` or their own schema) never clash with
//! these, and deployments or tests sharing one database each take their own
//! schema. It is a lowercase identifier (letters, digits, `_`). Every other
//! parameter is libpq's (`connect_timeout`, default 10 s here;
//! `application_name`, default `ultracore`; `sslmode` and `sslrootcert`
//! with libpq's meanings, see `ultracore_pgrepl::tls`).
//! [`Storage::location`] is the URL without user and password.
//!
//! # Threads and connections
//!
//! [`Storage`] is synchronous and is called from tokio tasks, where the
//! sync `postgres` client (which blocks on a runtime of its own) would
//! panic. The connections therefore live on worker threads of a pool
//! (`pool`, at most [`PostgresStorage::POOL_SIZE`] connections, opened on
//! demand): a call ships a closure to a worker and waits on a std channel,
//! as a SQLite call waits on its file. This keeps every method plain
//! sequential code with real transactions, and costs one thread hop per
//! call, small beside the network round trip. A broken connection is
//! reopened; a call that failed because its connection broke is retried
//! once on a new one, except [`Storage::reset`], which must not run twice.
//!
//! # Tables
//!
//! Those of SQLite, with PostgreSQL types: versions, offsets and partitions
//! `bigint`, ids `uuid`, envelopes and snapshot states `bytea` (byte for
//! byte). Text keys are `COLLATE "C"`: keys sort by their UTF-8 bytes as in
//! SQLite, whatever the database's collation, in `ORDER BY` and in the
//! primary-key indexes, so a page of documents is one range of the
//! `documents` key index. Documents are `text`, not `jsonb` (which would
//! rewrite numbers and drop duplicate keys): [`Storage::document`] parses
//! exactly the text SQLite would hold. PostgreSQL text cannot hold the NUL
//! character: a key, topic or id containing one is an error here.
//!
//! # Durability
//!
//! Each batch, reset and migration is one transaction, committed with the
//! server's `synchronous_commit`. As with SQLite, everything here is derived
//! from the log and rebuilt from its checkpoints.
//!
//! # Layout
//!
//! - `config`: the URL, its `schema`, the location without credentials,
//!   what a failed connection means.
//! - `pool`: the connections and the worker threads that own them.
//! - `schema`: the tables and their versioned migrations.
//! - `batch`: a follower's batch in one transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use super::{Batch, Snapshot, Storage, Watermark, INDEX_FOLLOWER};
use crate::{Error, Result};

mod batch;
mod config;
mod pool;
mod schema;

use batch::Columns;
use config::pg;
use pool::{Conn, Pool, Retry};

/// PostgreSQL storage: a handle to a connection pool. Clones share the pool.
#[derive(Debug, Clone)]
pub struct PostgresStorage {
    pool: Arc<Pool>,
    instance_id: String,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_u32(v: i64) -> u32 {
    // Written from u32s only.
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl PostgresStorage {
    /// At most this many connections per storage (and its clones).
    pub const POOL_SIZE: usize = 4;

    /// The schema of the tables when the URL names none.
    pub const DEFAULT_SCHEMA: &'static str = config::DEFAULT_SCHEMA;

    /// Connects to the database of a `postgres://` URL and creates and
    /// migrates its schema as needed (see the module docs for the URL).
    pub fn open(url: &str) -> Result<PostgresStorage> {
        let target = config::parse(url)?;
        let pool = Arc::new(Pool::new(target, Self::POOL_SIZE));
        schema::migrate(&pool)?;
        let instance_id = pool.run(
            "reading the instance id",
            Retry::Idempotent,
            |c: &mut Conn| {
                let op = "reading the instance id";
                c.query_one("SELECT value FROM meta WHERE key = 'instance_id'", &[])
                    .and_then(|r| r.try_get(0))
                    .map_err(pg(op))
            },
        )?;
        tracing::debug!(location = %pool.target().location, "read-model database opened");
        Ok(PostgresStorage { pool, instance_id })
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.pool.target().schema
    }

    /// The schema version this database is at.
    pub fn schema_version(&self) -> Result<i64> {
        self.pool.run(
            "reading the schema version",
            Retry::Idempotent,
            |c: &mut Conn| {
                c.query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                    &[],
                )
                .and_then(|r| r.try_get(0))
                .map_err(pg("reading the schema version"))
            },
        )
    }

    /// Runs `f` on a pooled connection (tests).
    #[cfg(test)]
    fn run<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Conn) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.pool.run("a test query", Retry::Never, f)
    }
}

/// `(key, doc)` rows parsed as JSON; a row that is not JSON is an error naming it.
fn parse_documents(
    rows: Vec<postgres::Row>,
    op: &'static str,
    projection: &str,
    view: &str,
) -> Result<Vec<(String, Value)>> {
    rows.into_iter()
        .map(|row| {
            let key: String = row.try_get(0).map_err(pg(op))?;
            let doc: &str = row.try_get(1).map_err(pg(op))?;
            let doc = parse_document(doc, op, projection, view, &key)?;
            Ok((key, doc))
        })
        .collect()
}

fn parse_document(
    doc: &str,
    op: &'static str,
    projection: &str,
    view: &str,
    key: &str,
) -> Result<Value> {
    serde_json::from_str(doc).map_err(|e| Error::Storage {
        operation: op,
        reason: format!("document {projection}/{view}/{key} is not JSON: {e}"),
    })
}

/// The `documents_page` query: from `$3` (inclusive or not), below `$4`
/// when the prefix has an end; one range of the `(projection, view, key)`
/// primary key either way, in its order.
fn page_sql(inclusive: bool, bounded: bool) -> &'static str {
    match (inclusive, bounded) {
        (true, true) => "SELECT key, doc FROM documents WHERE projection = $1 AND view = $2 AND key >= $3 AND key < $4 ORDER BY key LIMIT $5",
        (false, true) => "SELECT key, doc FROM documents WHERE projection = $1 AND view = $2 AND key > $3 AND key < $4 ORDER BY key LIMIT $5",
        (true, false) => "SELECT key, doc FROM documents WHERE projection = $1 AND view = $2 AND key >= $3 ORDER BY key LIMIT $4",
        (false, false) => "SELECT key, doc FROM documents WHERE projection = $1 AND view = $2 AND key > $3 ORDER BY key LIMIT $4",
    }
}

impl Storage for PostgresStorage {
    fn location(&self) -> String {
        self.pool.target().location.clone()
    }

    fn instance_id(&self) -> Result<String> {
        Ok(self.instance_id.clone())
    }

    fn checkpoints(&mut self, follower: &str) -> Result<BTreeMap<(String, u32), u64>> {
        let op = "reading checkpoints";
        let follower = follower.to_owned();
        self.pool.run(op, Retry::Idempotent, move |c: &mut Conn| {
            c.query(
                "SELECT topic, partition, next_offset FROM checkpoints WHERE follower = $1",
                &[&follower],
            )
            .map_err(pg(op))?
            .into_iter()
            .map(|r| {
                let topic: String = r.try_get(0)?;
                let partition: i64 = r.try_get(1)?;
                let next: i64 = r.try_get(2)?;
                Ok(((topic, to_u32(partition)), to_u64(next)))
            })
            .collect::<Result<_, postgres::Error>>()
            .map_err(pg(op))
        })
    }

    fn watermark(
        &mut self,
        follower: &str,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Watermark> {
        let op = "reading a watermark";
        let key = [follower, aggregate_type, aggregate_id].map(str::to_owned);
        self.pool.run(op, Retry::Idempotent, move |c: &mut Conn| {
            let row = c
                .query_opt(
                    "SELECT version, commit_id FROM watermarks
                     WHERE follower = $1 AND aggregate_type = $2 AND aggregate_id = $3",
                    &[&key[0], &key[1], &key[2]],
                )
                .map_err(pg(op))?;
            row.map(|r| {
                Ok(Watermark {
                    version: to_u64(r.try_get(0)?),
                    commit: r.try_get(1)?,
                })
            })
            .transpose()
            .map(Option::unwrap_or_default)
            .map_err(pg(op))
        })
    }

    fn commit(&mut self, follower: &str, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let columns = Columns::of(batch);
        let follower = follower.to_owned();
        // Idempotent: a batch writes the same rows with the same values again.
        self.pool
            .run("writing a batch", Retry::Idempotent, move |c| {
                columns.write(c, &follower)
            })
    }

    fn stream(
        &mut self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        upto: u64,
    ) -> Result<Vec<Vec<u8>>> {
        let op = "reading an aggregate's events";
        let (ty, id) = (aggregate_type.to_owned(), aggregate_id.to_owned());
        let (after, upto) = (to_i64(after), to_i64(upto));
        self.pool.run(op, Retry::Idempotent, move |c: &mut Conn| {
            c.query(
                "SELECT envelope FROM es_events
                 WHERE aggregate_type = $1 AND aggregate_id = $2 AND version > $3 AND version <= $4
                 ORDER BY version",
                &[&ty, &id, &after, &upto],
            )
            .map_err(pg(op))?
            .into_iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(pg(op))
        })
    }

    fn version_at(&mut self, aggregate_type: &str, aggregate_id: &str, millis: i64) -> Result<u64> {
        let op = "finding the version at a time";
        let (ty, id) = (aggregate_type.to_owned(), aggregate_id.to_owned());
        self.pool.run(op, Retry::Idempotent, move |c: &mut Conn| {
            c.query_one(
                "SELECT COALESCE(MAX(version), 0) FROM es_events
                 WHERE aggregate_type = $1 AND aggregate_id = $2 AND ts <= $3",
                &[&ty, &id, &millis],
            )
            .and_then(|r| r.try_get(0))
            .map(to_u64)
            .map_err(pg(op))
        })
    }

    fn find_event(&mut self, event_id: Uuid) -> Result<Option<(String, String, u64)>> {
        let op = "looking up an event id";
        self.pool.run(op, Retry::Idempotent, move |c: &mut Conn| {
            c.query_opt(
                "SELECT aggregate_type, aggregate_id, version FROM es_events WHERE event_id = $1",
                &[&event_id],
            )
            .map_err(pg(op))?
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, to_u64(r.try_get(2)?))))
            .transpose()
            .map_err(pg(op))
        })
    }

    fn aggregate_ids(&mut self, aggregate_type: &str, limit: usize) -> Result<Vec<String>> {
        let op = "listing aggregates";
        let ty = aggregate_type.to_owned();
        let limit = to_i64(limit as u64);
        self.pool.run(op, Retry::Idempotent, move |c: &mut Conn| {
            c.query(
                "SELECT DISTINCT aggregate_id FROM es_events WHERE aggregate_type = $1
                 ORDER BY aggregate_id LIMIT $2",
                &[&ty, &limit],
            )
            .map_err(pg(op))?
            .into_iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(pg(op))
        })
    }

    fn snapshot(&mut self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<Snapshot>> {
        let op = "reading a snapshot";
        let (ty, id) = (aggregate_type.to_owned(), aggregate_id.to_owned());
        self.pool.run(op, Retry::Idempotent, move |c: &mut Conn| {
            c.query_opt(
                "SELECT version, state_schema, state FROM es_snapshots
                 WHERE aggregate_type = $1 AND aggregate_id = $2",
                &[&ty, &id],
            )
            .map_err(pg(op))?
            .map(|r| {
                Ok(Snapshot {
                    version: to_u64(r.try_get(0)?),
                    state_schema: to_u32(r.try_get(1)?),
                    state: r.try_get(2)?,
                })
            })
            .transpose()
            .map_err(pg(op))
        })
    }

    fn put_snapshot(
        &mut self,
        aggregate_type: &str,
        aggregate_id: &str,
        snapshot: &Snapshot,
    ) -> Result<()> {
        let op = "storing a snapshot";
        let (ty, id) = (aggregate_type.to_owned(), aggregate_id.to_owned());
        let snapshot = snapshot.clone();
        self.pool.run(op, Retry::Idempotent, move |c: &mut Conn| {
            c.execute(
                "INSERT INTO es_snapshots (aggregate_type, aggregate_id, version, state_schema, state)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET
                 version = excluded.version, state_schema = excluded.state_schema, state = excluded.state",
                &[
                    &ty,
                    &id,
                    &to_i64(snapshot.version),
                    &i64::from(snapshot.state_schema),
                    &snapshot.state,
                ],
            )
            .map(drop)
            .map_err(pg(op))
        })
    }

    fn generation(&mut self, follower: &str) -> Result<u64> {
        let op = "reading a projection generation";
        let follower = follower.to_owned();
        self.pool.run(op, Retry::Idempotent, move |c: &mut Conn| {
            c.query_opt(
                "SELECT generation FROM followers WHERE name = $1",
                &[&follower],
            )
            .and_then(|r| r.map(|r| r.try_get(0)).transpose())
            .map(|g: Option<i64>| g.map_or(0, to_u64))
            .map_err(pg(op))
        })
    }

    fn reset(&mut self, follower: &str) -> Result<u64> {
        let op = "resetting a projection";
        let follower = follower.to_owned();
        // Never retried: a second run would bump the generation twice.
        self.pool.run(op, Retry::Never, move |c: &mut Conn| {
            let mut tx = c.client.transaction().map_err(pg(op))?;
            for sql in [
                "DELETE FROM documents WHERE projection = $1",
                "DELETE FROM watermarks WHERE follower = $1",
                "DELETE FROM checkpoints WHERE follower = $1",
            ] {
                tx.execute(sql, &[&follower]).map_err(pg(op))?;
            }
            if follower == INDEX_FOLLOWER {
                tx.execute("DELETE FROM es_events", &[]).map_err(pg(op))?;
            }
            let generation: i64 = tx
                .query_one(
                    "INSERT INTO followers (name, generation) VALUES ($1, 1)
                     ON CONFLICT (name) DO UPDATE SET generation = followers.generation + 1
                     RETURNING generation",
                    &[&follower],
                )
                .and_then(|r| r.try_get(0))
                .map_err(pg(op))?;
            tx.commit().map_err(pg(op))?;
            Ok(to_u64(generation))
        })
    }

    fn document(&mut self, projection: &str, view: &str, key: &str) -> Result<Option<Value>> {
        let op = "reading a document";
        let k = [projection, view, key].map(str::to_owned);
        self.pool.run(op, Retry::Idempotent, move |c: &mut Conn| {
            let row = c
                .query_opt(
                    "SELECT doc FROM documents WHERE projection = $1 AND view = $2 AND key = $3",
                    &[&k[0], &k[1], &k[2]],
                )
                .map_err(pg(op))?;
            row.map(|r| {
                let doc: &str = r.try_get(0).map_err(pg(op))?;
                parse_document(doc, op, &k[0], &k[1], &k[2])
            })
            .transpose()
        })
    }

    fn documents(&mut self, projection: &str, view: &str) -> Result<Vec<(String, Value)>> {
        let op = "reading documents";
        let (projection, view) = (projection.to_owned(), view.to_owned());
        self.pool.run(op, Retry::Idempotent, move |c: &mut Conn| {
            let rows = c
                .query(
                    "SELECT key, doc FROM documents WHERE projection = $1 AND view = $2 ORDER BY key",
                    &[&projection, &view],
                )
                .map_err(pg(op))?;
            parse_documents(rows, op, &projection, &view)
        })
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
        let from = after.filter(|a| *a >= prefix).unwrap_or(prefix).to_owned();
        let inclusive = after.is_none_or(|a| a < prefix);
        let end = super::prefix_end(prefix);
        let (projection, view) = (projection.to_owned(), view.to_owned());
        let limit = to_i64(limit as u64);
        self.pool.run(op, Retry::Idempotent, move |c: &mut Conn| {
            let sql = page_sql(inclusive, end.is_some());
            let rows = match &end {
                Some(end) => c.query(sql, &[&projection, &view, &from, end, &limit]),
                None => c.query(sql, &[&projection, &view, &from, &limit]),
            }
            .map_err(pg(op))?;
            parse_documents(rows, op, &projection, &view)
        })
    }
}

#[cfg(test)]
mod tests {
    use postgres::types::ToSql;

    use super::*;

    /// A fresh schema on the test server, dropped at the end of the test.
    struct Scratch(PostgresStorage);

    impl Scratch {
        fn new() -> Scratch {
            let url = std::env::var("ULTRACORE_TEST_PG").unwrap_or_else(|_| {
                panic!(
                    "ULTRACORE_TEST_PG is not set: run scripts/test.sh, which starts the \
                     test PostgreSQL server (scripts/pg-up.sh) and sets it"
                )
            });
            let schema = format!("es_unit_{}", Uuid::now_v7().simple());
            let sep = if url.contains('?') { '&' } else { '?' };
            let url = format!("{url}{sep}schema={schema}&application_name={schema}");
            Scratch(PostgresStorage::open(&url).unwrap())
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let schema = self.0.schema().to_owned();
            let dropped = self.0.run(move |c| {
                c.client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .map_err(pg("dropping a test schema"))
            });
            if let Err(e) = dropped {
                eprintln!("{e}");
            }
        }
    }

    #[test]
    fn a_page_is_one_range_of_the_documents_key_index() -> Result<()> {
        let s = Scratch::new();
        for (inclusive, bounded) in [(true, true), (false, true), (true, false), (false, false)] {
            let sql = page_sql(inclusive, bounded);
            let plan = s.0.run(move |c| {
                let op = "explaining the page query";
                let mut tx = c.client.transaction().map_err(pg(op))?;
                // The table is empty: without this the planner rightly
                // prefers a sequential scan, which says nothing about the index.
                tx.batch_execute(
                    "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off",
                )
                .map_err(pg(op))?;
                let explain = format!("EXPLAIN (COSTS OFF) {sql}");
                let params: Vec<&(dyn ToSql + Sync)> = if bounded {
                    vec![&"p", &"v", &"a/", &"a0", &10i64]
                } else {
                    vec![&"p", &"v", &"a/", &10i64]
                };
                let rows = tx.query(explain.as_str(), &params).map_err(pg(op))?;
                rows.iter()
                    .map(|r| r.try_get::<_, String>(0))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|lines| lines.join("\n"))
                    .map_err(pg(op))
            })?;
            assert!(plan.contains("Index Scan using documents_pkey"), "{plan}");
            assert!(
                plan.contains("Index Cond") && plan.contains("key >"),
                "{plan}"
            );
            assert!(!plan.contains("Filter") && !plan.contains("Sort"), "{plan}");
        }
        Ok(())
    }

    #[test]
    fn the_pool_opens_at_most_its_size_of_connections() -> Result<()> {
        let s = Scratch::new();
        let calls = 3 * PostgresStorage::POOL_SIZE;
        let started = std::time::Instant::now();
        let seen = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..calls)
                .map(|_| {
                    let storage = s.0.clone();
                    scope.spawn(move || {
                        storage.run(|c| {
                            c.client
                                .query_one(
                                    "SELECT count(*) FROM pg_stat_activity, pg_sleep(0.05)
                                     WHERE application_name = current_setting('application_name')",
                                    &[],
                                )
                                .and_then(|r| r.try_get::<_, i64>(0))
                                .map_err(pg("counting connections"))
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Result<Vec<_>>>()
        })?;
        let most = seen.into_iter().max().unwrap_or(0);
        assert!(most >= 2, "calls from several threads run at once: {most}");
        assert!(
            most <= PostgresStorage::POOL_SIZE as i64,
            "{most} connections"
        );
        // 12 sleeps of 50 ms on at most 4 connections: 3 rounds at least.
        assert!(started.elapsed() >= std::time::Duration::from_millis(150));
        Ok(())
    }

    #[test]
    fn a_failing_batch_leaves_nothing() -> Result<()> {
        let mut s = Scratch::new();
        let mut batch = Batch::default();
        batch
            .documents
            .insert(("v".into(), "k".into()), Some(serde_json::json!({"n": 1})));
        batch.watermarks.insert(
            ("A".into(), "a-1".into()),
            Watermark {
                version: 3,
                commit: None,
            },
        );
        // The checkpoints are written last, and PostgreSQL text cannot hold NUL.
        batch.checkpoints.insert(("bad\0topic".into(), 0), 7);
        let err = s.0.commit("p", &batch).unwrap_err();
        assert!(err.to_string().contains("writing a batch"), "{err}");
        assert_eq!(s.0.document("p", "v", "k")?, None);
        assert_eq!(s.0.watermark("p", "A", "a-1")?, Watermark::default());
        assert!(s.0.checkpoints("p")?.is_empty());
        Ok(())
    }
}
