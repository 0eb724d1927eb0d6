//! The databases every storage scenario runs on: SQLite in a temporary
//! directory, and a fresh schema on the test PostgreSQL server (its URL in
//! `ULTRACORE_TEST_PG`, set by `scripts/test.sh`). Each test gets a
//! database of its own, so tests running in parallel never see each
//! other's rows; the database is deleted when the test ends.

use std::path::PathBuf;

use ultracore_es::{Database, PostgresStorage, SqliteStorage, Storage};

/// Which database a scenario runs on.
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

/// A schema name no other test uses.
pub fn unique_schema() -> String {
    format!("es_test_{:016x}", rand::random::<u64>())
}

/// The test server's URL with `param=value` added to its query.
pub fn pg_url_with(param: &str, value: &str) -> String {
    let url = pg_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}={value}")
}

/// Runs `f` on a connection of its own to the test server, on a thread
/// outside any tokio runtime (the sync client runs one of its own).
pub fn with_pg<T: Send>(f: impl FnOnce(&mut postgres::Client) -> T + Send) -> T {
    try_with_pg(f).unwrap_or_else(|e| panic!("{e}"))
}

/// [`with_pg`], failing with a message instead of a panic.
pub fn try_with_pg<T: Send>(
    f: impl FnOnce(&mut postgres::Client) -> T + Send,
) -> Result<T, String> {
    let url = pg_url();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut client = postgres::Client::connect(&url, postgres::NoTls)
                .map_err(|e| format!("connecting to the test PostgreSQL server: {e:?}"))?;
            Ok(f(&mut client))
        })
        .join()
        .unwrap_or_else(|_| Err("the PostgreSQL helper thread panicked".into()))
    })
}

/// Drops a PostgreSQL schema when dropped (a test's, however it ends).
pub struct SchemaGuard(pub String);

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let schema = &self.0;
        // The storage's pooled connections may still be open (clones of the
        // database live in stores and runners): dropping the schema does not
        // wait for them, as none sits inside a transaction between calls.
        let dropped = try_with_pg(|c| {
            c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .map_err(|e| e.to_string())
        });
        if let Err(e) = dropped.and_then(|r| r) {
            // Never panic in drop (it may run while a failed test unwinds).
            eprintln!("dropping test schema {schema}: {e}");
        }
    }
}

/// A database of one test.
pub struct TestDb {
    pub backend: Backend,
    pub db: Database,
    /// The data directory (SQLite's file lives there).
    pub dir: tempfile::TempDir,
    /// PostgreSQL: the URL naming this test's schema.
    pub url: Option<String>,
    // Last: the schema goes after the handle above.
    schema: Option<SchemaGuard>,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

    /// A new, empty database.
    pub fn database(self) -> TestDb {
        self.database_with("")
    }

    /// A new, empty database; PostgreSQL: with `params` (`a=1&b=2`) added to its URL.
    pub fn database_with(self, params: &str) -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (url, schema) = match self {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                let schema = unique_schema();
                let mut url = pg_url_with("schema", &schema);
                if !params.is_empty() {
                    url = format!("{url}&{params}");
                }
                (Some(url), Some(SchemaGuard(schema)))
            }
        };
        let db = Database::open(dir.path(), url.as_deref()).expect("open the test database");
        TestDb {
            backend: self,
            db,
            dir,
            url,
            schema,
        }
    }
}

impl TestDb {
    /// The same database opened again, as after a restart.
    pub fn reopen(&self) -> ultracore_es::Result<Database> {
        Database::open(self.dir.path(), self.url.as_deref())
    }

    /// A storage handle of its own on the same database.
    pub fn storage(&self) -> ultracore_es::Result<Box<dyn Storage>> {
        Ok(match &self.url {
            None => Box::new(SqliteStorage::open(self.sqlite_path())?),
            Some(url) => Box::new(PostgresStorage::open(url)?),
        })
    }

    /// The schema version, read by a new handle.
    pub fn schema_version(&self) -> ultracore_es::Result<i64> {
        match &self.url {
            None => SqliteStorage::open(self.sqlite_path())?.schema_version(),
            Some(url) => PostgresStorage::open(url)?.schema_version(),
        }
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join(SqliteStorage::FILE_NAME)
    }

    /// PostgreSQL: this test's schema.
    pub fn schema(&self) -> Option<String> {
        self.schema.as_ref().map(|s| s.0.clone())
    }
}

/// Defines each listed scenario (an `async fn name(Backend) -> TestResult`
/// at the crate root) as a test once per database: `sqlite::name` and
/// `postgres::name`.
#[allow(unused_macros)] // not every test file uses it
macro_rules! on_each_database {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() -> $crate::common::TestResult {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() -> $crate::common::TestResult {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}
pub(crate) use on_each_database;
