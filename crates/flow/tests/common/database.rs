//! The read-model databases the flow's tests run on: SQLite in the test's
//! directory, or a schema of the test's own on the test PostgreSQL server
//! (its URL in `ULTRACORE_TEST_PG`, set by `scripts/test.sh`), dropped when
//! the test ends however it ends. Tests running in parallel never see each
//! other's documents.

use std::path::Path;

use ultracore_es::Database;

/// Which database a test's read models live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The test PostgreSQL server's URL. Unset is a failure, not a skip: the
/// PostgreSQL half of the suite is part of the tests.
pub fn pg_url() -> String {
    std::env::var("ULTRACORE_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "ULTRACORE_TEST_PG is not set: run scripts/test.sh, which starts the test \
             PostgreSQL server (scripts/pg-up.sh) and sets it"
        )
    })
}

/// A read-model database of one test. Hand out clones of `db`; keep this
/// until the test ends, as the PostgreSQL schema goes with it.
#[derive(Debug)]
pub struct TestDatabase {
    pub db: Database,
    // After `db`: fields drop in order, so the schema goes after this handle.
    schema: Option<Schema>,
}

impl Backend {
    /// A new, empty database: SQLite in `dir`, or PostgreSQL in a new schema
    /// `flow_test_<random>`.
    pub fn open(self, dir: &Path) -> Result<TestDatabase, Box<dyn std::error::Error>> {
        match self {
            Backend::Sqlite => Ok(TestDatabase {
                db: Database::open(dir, None)?,
                schema: None,
            }),
            Backend::Postgres => {
                let server = pg_url();
                let schema = Schema {
                    name: format!("flow_test_{:016x}", rand::random::<u64>()),
                    server: server.clone(),
                };
                let sep = if server.contains('?') { '&' } else { '?' };
                let name = &schema.name;
                let url = format!("{server}{sep}schema={name}&application_name={name}");
                // The storage creates the schema: the guard exists first, so
                // a failure halfway through still drops whatever was made.
                Ok(TestDatabase {
                    db: Database::open(dir, Some(&url))?,
                    schema: Some(schema),
                })
            }
        }
    }
}

/// Drops a PostgreSQL schema, with everything in it, when dropped.
#[derive(Debug)]
struct Schema {
    name: String,
    /// The server's URL, without the schema.
    server: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let drop_schema = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let server = self.server.clone();
        // A thread and a runtime of its own: this may run inside the test's
        // runtime (where blocking on another one panics), or while a failed
        // test unwinds with that runtime half gone.
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| format!("connecting: {e}"))?;
                tokio::spawn(connection);
                // The test's pooled connections stay open (clones of the
                // database live in services that may still be stopping); an
                // idle one holds no lock, but one left inside a transaction
                // by a failed test would make the drop wait for it: bounded.
                client
                    .batch_execute(&format!("SET lock_timeout = '30s'; {drop_schema}"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join()
        .unwrap_or_else(|_| Err("the thread dropping it panicked".into()));
        if let Err(e) = dropped {
            // Never panic in drop: it may run while a failed test unwinds.
            eprintln!("dropping test schema {}: {e}", self.name);
        }
    }
}
