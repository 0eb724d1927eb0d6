use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::follower::{lock, SharedStorage};
use crate::storage::{PostgresStorage, SqliteStorage, Storage};
use crate::{Error, Result};

/// The database the event store and the projections share: a handle to a
/// [`Storage`], cheap to clone. Calls are short (sub-millisecond in SQLite
/// WAL mode, a network round trip or a few in PostgreSQL) and serialized
/// through one mutex.
#[derive(Clone, Debug)]
pub struct Database {
    pub(crate) storage: SharedStorage,
}

impl Database {
    pub fn new(storage: impl Storage) -> Database {
        let boxed: Box<dyn Storage> = Box::new(storage);
        Database {
            storage: Arc::new(Mutex::new(boxed)),
        }
    }

    /// SQLite in `data_dir` (`ultracore.sqlite`), or the database named by
    /// `database_url` when given: `sqlite:///path/file.sqlite`, or
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE?schema=NAME` (also
    /// `postgresql://`; see [`PostgresStorage`] for the schema and the other
    /// parameters).
    pub fn open(data_dir: &Path, database_url: Option<&str>) -> Result<Database> {
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(Database::new(SqliteStorage::open(
                data_dir.join(SqliteStorage::FILE_NAME),
            )?)),
            Some(url) => {
                if let Some(path) = url.strip_prefix("sqlite://") {
                    return Ok(Database::new(SqliteStorage::open(path)?));
                }
                if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    return Ok(Database::new(PostgresStorage::open(url)?));
                }
                Err(Error::InvalidArgument(format!(
                    "DATABASE_URL '{}' is not understood: use sqlite:///path/to/file.sqlite or \
                     postgres://USER:PASSWORD@HOST:PORT/DATABASE, or unset it",
                    url.split('@').next_back().unwrap_or(url)
                )))
            }
        }
    }

    /// A private in-memory SQLite database.
    pub fn in_memory() -> Result<Database> {
        Ok(Database::new(SqliteStorage::in_memory()?))
    }

    pub fn location(&self) -> String {
        lock(&self.storage).location()
    }

    /// One read-model document of a projection.
    pub fn document(&self, projection: &str, view: &str, key: &str) -> Result<Option<Value>> {
        lock(&self.storage).document(projection, view, key)
    }

    /// Every document of a projection's view, in key order.
    pub fn documents(&self, projection: &str, view: &str) -> Result<Vec<(String, Value)>> {
        lock(&self.storage).documents(projection, view)
    }

    /// A page of a view: at most `limit` documents whose keys start with
    /// `prefix` and sort after `after`, in key order (see
    /// [`Storage::documents_page`]).
    pub fn documents_page(
        &self,
        projection: &str,
        view: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>> {
        lock(&self.storage).documents_page(projection, view, prefix, after, limit)
    }

    /// Runs `f` with the storage (tools and tests).
    pub fn with<T>(&self, f: impl FnOnce(&mut dyn Storage) -> Result<T>) -> Result<T> {
        f(&mut **lock(&self.storage))
    }
}
