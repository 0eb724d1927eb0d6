//! The `postgres://` URL and a small bounded pool of connections to it.
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
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls, Statement};

use crate::{Error, Result};

/// Connections per database handle: enough for the API's concurrent
/// requests (each call holds one connection for one or two statements),
/// few enough that many processes fit the server's `max_connections`.
pub const POOL_SIZE: usize = 8;

/// How long a connection attempt may take when the URL does not say
/// (`connect_timeout`): an unreachable host fails the call instead of
/// hanging it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Session settings every connection starts with, as startup options (no
/// extra round trip, and in force before the first statement). Column
/// values are read as `::text`, and `values` parses timestamps as they
/// print in UTC with the ISO date style. Appended after any `options` the
/// URL gives, so ours win.
const SESSION_OPTIONS: &str = "-c TimeZone=UTC -c DateStyle=ISO";

/// A parsed `postgres://` URL.
#[derive(Clone)]
pub(super) struct Target {
    /// The connection settings (credentials included).
    pub config: Config,
    /// `host:port`, for messages.
    pub endpoint: String,
    /// The URL without credentials or parameters, for messages.
    pub location: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Parses `postgres://USER:PASSWORD@HOST:PORT/DATABASE?…` (or
/// `postgresql://`). The read models' `schema` parameter (the same
/// `DATABASE_URL` configures both) is removed: these tables live in the
/// database's `public` schema. Every other parameter is tokio-postgres's
/// (libpq's names: `connect_timeout`, `application_name`, `options`, …).
/// Errors never repeat the URL, which holds the password.
pub(super) fn parse(url: &str) -> Result<Target> {
    let url = url.trim();
    let invalid = |message: String| Error::Postgres {
        location: "DATABASE_URL".into(),
        message,
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(invalid(
            "is not a PostgreSQL URL: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE".into(),
        ));
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !matches!(p.split_once('='), Some(("schema", _))))
        .collect();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let mut config: Config = url.parse().map_err(|e: tokio_postgres::Error| {
        invalid(format!(
            "is not a PostgreSQL URL this build understands ({}): expected \
             postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            chain(&e)
        ))
    })?;
    if config.get_ssl_mode() == SslMode::Require {
        return Err(invalid(
            "asks for sslmode=require, but this build connects to PostgreSQL without TLS: \
             use sslmode=disable or prefer (for example over a local TLS tunnel)"
                .into(),
        ));
    }
    if config.get_hosts().is_empty() {
        return Err(invalid(
            "names no PostgreSQL host: use postgres://USER:PASSWORD@HOST:PORT/DATABASE".into(),
        ));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("ultracore");
    }
    let options = match config.get_options() {
        Some(given) if !given.trim().is_empty() => format!("{given} {SESSION_OPTIONS}"),
        _ => SESSION_OPTIONS.to_owned(),
    };
    config.options(options);
    let endpoint = endpoint(&config);
    let mut location = format!("postgres://{endpoint}");
    if let Some(db) = config.get_dbname() {
        location.push('/');
        location.push_str(db);
    }
    Ok(Target {
        config,
        endpoint,
        location,
    })
}

/// `host:port[,host:port…]`.
fn endpoint(config: &Config) -> String {
    let ports = config.get_ports();
    config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            // libpq: one port for every host, or one per host; 5432 when none.
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(h) if h.contains(':') => format!("[{h}]:{port}"),
                Host::Tcp(h) => format!("{h}:{port}"),
                #[cfg(unix)]
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A PostgreSQL error with its causes, as one line.
pub(super) fn chain(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            s.push_str(" (");
            s.push_str(detail);
            s.push(')');
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// What a failed connection attempt means, and what to check. PostgreSQL
/// never echoes the password, and neither does this.
fn connect_error(target: &Target, e: &tokio_postgres::Error) -> Error {
    let at = &target.endpoint;
    let role = target
        .config
        .get_user()
        .map(|u| format!(" of role '{u}'"))
        .unwrap_or_default();
    let refused = io_kind(e) == Some(std::io::ErrorKind::ConnectionRefused);
    let message = match e.code() {
        Some(c)
            if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            format!(
                "PostgreSQL at {at} refused the login{role}: {}; check the user and password in DATABASE_URL",
                chain(e)
            )
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => format!(
            "PostgreSQL at {at}: {}; create the database or fix its name in DATABASE_URL",
            chain(e)
        ),
        Some(c) if *c == SqlState::TOO_MANY_CONNECTIONS => format!(
            "PostgreSQL at {at} has no connection to spare: {}; raise max_connections or \
             stop idle clients (each UltraCore process opens at most {POOL_SIZE} here)",
            chain(e)
        ),
        Some(_) => format!("PostgreSQL at {at} refused the connection: {}", chain(e)),
        None if refused => format!(
            "cannot connect to PostgreSQL at {at}: connection refused; check DATABASE_URL and \
             that the server is running and listening there"
        ),
        None if chain(e).contains("password missing") => format!(
            "PostgreSQL at {at} asks for a password{role} and DATABASE_URL has none: add it \
             (postgres://USER:PASSWORD@HOST:PORT/DATABASE)"
        ),
        None => format!(
            "cannot connect to PostgreSQL at {at}: {}; check DATABASE_URL and that the server \
             is reachable",
            chain(e)
        ),
    };
    Error::Postgres {
        location: target.location.clone(),
        message,
    }
}

/// The I/O error kind behind a connection error, if an I/O error caused it.
fn io_kind(e: &tokio_postgres::Error) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = cause.source();
    }
    None
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
        let (client, connection) = self
            .target
            .config
            .connect(NoTls)
            .await
            .map_err(|e| connect_error(&self.target, &e))?;
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
