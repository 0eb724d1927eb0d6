//! A bounded pool of PostgreSQL connections, each owned by a worker thread.
//!
//! The sync `postgres` client drives its connection on a private
//! current-thread tokio runtime and blocks on it. `Storage` methods run
//! inside tokio tasks (behind `Database`'s mutex), where entering another
//! runtime panics ("Cannot start a runtime from within a runtime"), and
//! where dropping a client (its runtime) panics too. So a connection never
//! leaves its worker: a plain OS thread outside any runtime, which opens
//! the connection, runs the jobs shipped to it and drops it. The caller
//! sends a closure and waits for its result on a std channel: an ordinary
//! blocking wait, as a SQLite call is, which a `Storage` call may do.
//!
//! Workers start on demand, one per job waiting with no idle worker, up to
//! the pool's size; they stay for the pool's lifetime and keep their
//! connection open. `Database` serializes its calls through one mutex, so
//! one database handle keeps one connection busy; the bound holds for every
//! clone of a `PostgresStorage` together.
//!
//! A connection that broke (server restarted, idle connection cut) is
//! dropped and reopened by the next job on that worker; a job that failed
//! because its connection broke is retried once on a new connection when it
//! is idempotent.

use std::collections::{HashMap, VecDeque};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use postgres::{Client, Row, Statement};

use super::config::{connect_error, Target};
use crate::{Error, Result};

/// How long the check of a connection after a failed job may take.
const HEALTH_CHECK: Duration = Duration::from_secs(5);

/// May a job run again after its connection broke under it?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// Running it twice leaves what running it once leaves.
    Idempotent,
    /// It must not run twice: the error goes to the caller.
    Never,
}

/// One open connection and the statements prepared on it.
pub(super) struct Conn {
    pub client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    /// `sql` prepared on this connection, once: later calls cost no round trip.
    pub fn prepare(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    pub fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.prepare(sql)?;
        self.client.query(&statement, params)
    }

    pub fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let statement = self.prepare(sql)?;
        self.client.query_opt(&statement, params)
    }

    pub fn query_one(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        let statement = self.prepare(sql)?;
        self.client.query_one(&statement, params)
    }

    pub fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let statement = self.prepare(sql)?;
        self.client.execute(&statement, params)
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("statements", &self.statements.len())
            .finish_non_exhaustive()
    }
}

/// A job as a worker runs it, its types erased: it runs the typed closure
/// and returns the delivery of its result to the waiting caller.
type Job = Box<dyn FnOnce(&mut Slot<'_>) -> Reply + Send>;
type Reply = Box<dyn FnOnce() + Send>;

/// The pool handle. Dropping it lets the workers finish the queued jobs,
/// close their connections and exit.
#[derive(Debug)]
pub(super) struct Pool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    target: Target,
    size: usize,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    idle: usize,
    workers: usize,
    started: usize,
    closed: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("queued", &self.queue.len())
            .field("idle", &self.idle)
            .field("workers", &self.workers)
            .field("closed", &self.closed)
            .finish()
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A job never runs under this lock, so a poisoned lock still holds a
        // consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Pool {
    pub fn new(target: Target, size: usize) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                target,
                size: size.max(1),
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
            }),
        }
    }

    pub fn target(&self) -> &Target {
        &self.shared.target
    }

    /// Runs `f` on a pooled connection and waits for its result.
    /// `operation` names the call in the error if no worker answers.
    pub fn run<T, F>(&self, operation: &'static str, retry: Retry, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&mut Conn) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(
            operation,
            Box::new(move |slot: &mut Slot<'_>| {
                let result = slot.run(retry, &f);
                // The caller waits for this; it is gone only if it panicked.
                Box::new(move || drop(reply.send(result)))
            }),
        )?;
        answer.recv().map_err(|_| Error::Storage {
            operation,
            reason: "the PostgreSQL worker thread stopped (a panic while running the query)".into(),
        })?
    }

    fn submit(&self, operation: &'static str, job: Job) -> Result<()> {
        let shared = &self.shared;
        let mut state = shared.state();
        state.queue.push_back(job);
        // A new worker only when every worker is busy: a caller making one
        // call after another keeps using one worker and its connection.
        if state.queue.len() <= state.idle || state.workers >= shared.size {
            shared.wake.notify_one();
            return Ok(());
        }
        let worker = Arc::clone(shared);
        let name = format!("ultracore-pg-{}", state.started);
        match std::thread::Builder::new()
            .name(name)
            .spawn(move || work(worker))
        {
            Ok(_) => {
                // Idle until it takes the job: a second call before then
                // starts another worker rather than waiting for this one.
                state.workers += 1;
                state.idle += 1;
                state.started += 1;
                Ok(())
            }
            Err(e) if state.workers == 0 => {
                state.queue.pop_back();
                Err(Error::Storage {
                    operation,
                    reason: format!("cannot start a PostgreSQL worker thread: {e}"),
                })
            }
            // The running workers will take the job.
            Err(e) => {
                tracing::warn!(error = %e, "cannot start another PostgreSQL worker thread");
                shared.wake.notify_one();
                Ok(())
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.state().closed = true;
        self.shared.wake.notify_all();
    }
}

/// A worker's view of its connection while it runs a job.
struct Slot<'a> {
    target: &'a Target,
    /// The pool's connection limit, for the message when the server has
    /// none to spare.
    size: usize,
    conn: &'a mut Option<Conn>,
}

impl Slot<'_> {
    /// The connection, opened (again) if there is none or it broke.
    fn connection(&mut self) -> Result<&mut Conn> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            *self.conn = None;
        }
        if self.conn.is_none() {
            *self.conn = Some(connect(self.target, self.size)?);
        }
        Ok(self.conn.as_mut().expect("a connection was just opened"))
    }

    /// After a failed job: is the connection unusable? The client learns
    /// that the server closed it (a restart, an administrator's kill) only
    /// while it waits for an answer, so an error with the connection still
    /// marked open is checked with one round trip.
    fn broken(&mut self) -> bool {
        match self.conn.as_mut() {
            None => true,
            Some(c) => c.client.is_closed() || c.client.is_valid(HEALTH_CHECK).is_err(),
        }
    }

    fn run<T>(&mut self, retry: Retry, f: &dyn Fn(&mut Conn) -> Result<T>) -> Result<T> {
        let first = f(self.connection()?);
        if first.is_ok() || !self.broken() {
            return first;
        }
        *self.conn = None;
        match retry {
            Retry::Idempotent => {
                tracing::warn!(location = %self.target.location, "PostgreSQL connection lost; retrying on a new connection");
                f(self.connection()?)
            }
            Retry::Never => {
                tracing::warn!(location = %self.target.location, "PostgreSQL connection lost");
                first
            }
        }
    }
}

/// Opens a connection whose `search_path` is the storage's schema alone,
/// with TLS as the URL's `sslmode` and `sslrootcert` say.
fn connect(target: &Target, size: usize) -> Result<Conn> {
    let tls = target.server.connector.clone();
    let mut client = match target.config().connect(tls.clone()) {
        // sslmode=allow: a login refused without TLS is tried with it.
        Err(e) if target.server.retry_with_tls(&e) => target
            .config()
            .ssl_mode(postgres::config::SslMode::Prefer)
            .connect(tls),
        connected => connected,
    }
    .map_err(|e| connect_error(target, size, &e))?;
    client
        .query_one(
            "SELECT set_config('search_path', quote_ident($1), false)",
            &[&target.schema],
        )
        .map_err(|e| connect_error(target, size, &e))?;
    tracing::debug!(location = %target.location, "PostgreSQL connection opened");
    Ok(Conn {
        client,
        statements: HashMap::new(),
    })
}

/// Keeps the worker count right however the worker ends (a panicking job
/// included: it was not counted idle).
struct Leaving(Arc<Shared>);

impl Drop for Leaving {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.workers -= 1;
    }
}

fn work(shared: Arc<Shared>) {
    let leaving = Leaving(shared);
    let shared = &leaving.0;
    let mut conn: Option<Conn> = None;
    // Counted idle from its start (see `submit`) and whenever no job runs.
    let mut state = shared.state();
    loop {
        if let Some(job) = state.queue.pop_front() {
            state.idle -= 1;
            drop(state);
            let reply = job(&mut Slot {
                target: &shared.target,
                size: shared.size,
                conn: &mut conn,
            });
            // Idle again before the caller hears back, so that the caller's
            // next call finds this worker instead of starting another.
            shared.state().idle += 1;
            reply();
            state = shared.state();
            continue;
        }
        if state.closed {
            state.idle -= 1;
            return;
        }
        state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
    }
}
