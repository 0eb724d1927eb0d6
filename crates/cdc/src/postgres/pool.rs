//! The `postgres://` URL and a small bounded pool of connections to it.
//! Connections use TLS as the URL's `sslmode` and `sslrootcert` say
//! ([`ultracore_pgrepl::tls`], libpq's meanings).
//!
//! The pool is a semaphore of [`POOL_SIZE`] permits and a stack of idle
//! clients. A caller takes a permit first, so at most `POOL_SIZE`
//! connections exist and callers beyond that wait their turn in order
//! (tokio's semaphore is fair) instead of opening more. With a permit it
//! reuses the most recently returned client that is still open, or opens a
//! new one. A client whose connection has closed (the server restarted, a
//! network failure, an administrator's `pg_terminate_backend`) is dropped
//! instead of reused, so the call after a failure reconnects. A call that
//! fails because its connection broke is not retried: its write may have
//! committed, and only the caller knows whether repeating it is safe.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, Statement};
use ultracore_pgrepl::url::{self, chain, Target};

use crate::{Error, Result};

/// Connections per database handle: enough for the API's concurrent
/// requests (each call holds one connection for one or two statements),
/// few enough that many processes fit the server's `max_connections`.
pub const POOL_SIZE: usize = 8;

/// Session settings every connection starts with, as startup options (no
/// extra round trip, and in force before the first statement). Column
/// values are read as `::text`, and `values` parses timestamps as they
/// print in UTC with the ISO date style. Appended after any `options` the
/// URL gives, so ours win.
const SESSION_OPTIONS: &str = "-c TimeZone=UTC -c DateStyle=ISO";

/// Parses `postgres://USER:PASSWORD@HOST:PORT/DATABASE?…` (or
/// `postgresql://`; see [`ultracore_pgrepl::url`]). The read models'
/// `schema` parameter (the same `DATABASE_URL` configures both) is ignored:
/// these tables live in the database's `public` schema. Errors never repeat
/// the URL, which holds the password.
pub(super) fn parse(url: &str) -> Result<Target> {
    let mut target = url::parse(url).map_err(|e| Error::Postgres {
        location: "DATABASE_URL".into(),
        message: e.to_string(),
    })?;
    let options = match target.config.get_options() {
        Some(given) if !given.trim().is_empty() => format!("{given} {SESSION_OPTIONS}"),
        _ => SESSION_OPTIONS.to_owned(),
    };
    target.config.options(options);
    Ok(target)
}

/// An open connection and the statements prepared on it.
struct Pooled {
    client: Client,
    /// Prepared once per connection: the SQL of these tables is a handful
    /// of fixed strings, and a prepared statement saves a round trip per call.
    statements: HashMap<String, Statement>,
}

/// At most [`POOL_SIZE`] connections to one database.
pub(super) struct Pool {
    target: Target,
    permits: Semaphore,
    /// Open clients nobody holds. A std mutex: held for a push or pop only,
    /// never across an await.
    idle: Mutex<Vec<Pooled>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("location", &self.target.location)
            .field("available", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Pool {
    pub fn new(target: Target) -> Pool {
        Pool {
            target,
            permits: Semaphore::new(POOL_SIZE),
            idle: Mutex::new(Vec::with_capacity(POOL_SIZE)),
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A connection for one call: an idle open one, or a new one. Waits
    /// while all [`POOL_SIZE`] are in use.
    pub async fn get(&self) -> Result<Conn<'_>> {
        let permit = self
            .permits
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            // Connections closed while idle are dropped here: this is where
            // the pool reconnects after a failure.
            std::iter::from_fn(|| idle.pop()).find(|c| !c.client.is_closed())
        };
        let pooled = match reused {
            Some(pooled) => pooled,
            None => self.connect().await?,
        };
        Ok(Conn {
            pool: self,
            pooled: Some(pooled),
            _permit: permit,
        })
    }

    async fn connect(&self) -> Result<Pooled> {
        let (client, connection) = self.target.connect().await.map_err(|e| Error::Postgres {
            location: self.target.location.clone(),
            message: self.target.connect_error(&e, POOL_SIZE),
        })?;
        // The connection's I/O runs as its own task; it ends when the
        // client is dropped or the socket closes, which `is_closed` then shows.
        let location = self.target.location.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%location, %error, "PostgreSQL connection closed");
            }
        });
        tracing::debug!(location = %self.target.location, "PostgreSQL connection opened");
        Ok(Pooled {
            client,
            statements: HashMap::new(),
        })
    }

    /// Maps a statement's error into [`Error::Postgres`].
    pub fn err(&self) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
        move |e| Error::Postgres {
            location: self.target.location.clone(),
            message: chain(&e),
        }
    }
}

/// A connection held for one call; back to the pool when dropped, unless
/// it has closed.
pub(super) struct Conn<'a> {
    pool: &'a Pool,
    pooled: Option<Pooled>,
    /// Released after the client is back in `idle` (fields drop after
    /// `Drop::drop`), so the next caller finds it there.
    _permit: SemaphorePermit<'a>,
}

impl std::fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("location", &self.pool.target.location)
            .finish_non_exhaustive()
    }
}

impl Conn<'_> {
    fn pooled(&mut self) -> &mut Pooled {
        self.pooled
            .as_mut()
            .expect("a held connection has a client")
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.pooled().client
    }

    /// `sql` prepared on this connection, once.
    pub async fn prepare(&mut self, sql: &str) -> Result<Statement> {
        let err = self.pool.err();
        let pooled = self
            .pooled
            .as_mut()
            .expect("a held connection has a client");
        if let Some(statement) = pooled.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = pooled.client.prepare(sql).await.map_err(err)?;
        pooled.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        // A call cancelled mid-statement leaves the client usable: its
        // requests are queued in order, and a dropped transaction queues its
        // ROLLBACK before anything the next holder sends.
        if let Some(pooled) = self.pooled.take() {
            if !pooled.client.is_closed() {
                let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
                idle.push(pooled);
            }
        }
    }
}
