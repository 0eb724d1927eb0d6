//! The runtime's journal: every task accepted and not yet published, in a
//! SQLite file served by one dedicated thread.
//!
//! - WAL with `synchronous=FULL`: a committed insert survives a crash or a
//!   power loss.
//! - `locking_mode=EXCLUSIVE`: the first runtime to open the file keeps it
//!   until it closes, so two runtimes never take the same pending tasks.
//! - Commands waiting on the thread are written in one transaction (group
//!   commit): many concurrent submissions share one fsync.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use chrono::Utc;
use rusqlite::{params, Connection};
use tokio::sync::oneshot;

use super::{RuntimeError, Task};

/// Commands written in one transaction at most.
const BATCH: usize = 1_024;

/// How long opening waits for a previous holder of the file to let go.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A task read back from the journal.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) task_id: String,
    pub(super) task: Task,
}

enum Command {
    Insert {
        task_id: String,
        priority: &'static str,
        task: String,
        durable: oneshot::Sender<Result<(), String>>,
    },
    Done {
        task_id: String,
    },
}

/// The handle of the journal's thread; the thread ends when the last
/// handle is dropped.
#[derive(Debug, Clone)]
pub(super) struct Journal {
    path: PathBuf,
    commands: mpsc::Sender<Command>,
}

impl Journal {
    /// Opens the journal at `path` (creating it) and returns it with its
    /// pending tasks in submission order.
    pub(super) async fn open(path: &Path) -> Result<(Journal, Vec<Pending>), RuntimeError> {
        let (commands, received) = mpsc::channel();
        let (ready, opened) = oneshot::channel();
        let at = path.to_owned();
        std::thread::Builder::new()
            .name("agent-journal".into())
            .spawn(move || {
                let conn = match open_connection(&at).and_then(|c| {
                    let rows = pending(&c, &at)?;
                    Ok((c, rows))
                }) {
                    Ok((conn, rows)) => {
                        if ready.send(Ok(rows)).is_err() {
                            return;
                        }
                        conn
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                serve(conn, received, &at);
            })
            .map_err(|e| journal_error(path, format!("starting its thread: {e}")))?;
        let rows = opened
            .await
            .map_err(|_| journal_error(path, "its thread ended while opening it"))??;
        Ok((
            Journal {
                path: path.to_owned(),
                commands,
            },
            rows,
        ))
    }

    /// Records `task`; returns once the record is durable.
    pub(super) async fn insert(&self, task_id: &str, task: &Task) -> Result<(), RuntimeError> {
        let json = serde_json::to_string(task)
            .map_err(|e| journal_error(&self.path, format!("task {task_id}: {e}")))?;
        let (durable, written) = oneshot::channel();
        self.commands
            .send(Command::Insert {
                task_id: task_id.to_owned(),
                priority: task.priority.name(),
                task: json,
                durable,
            })
            .map_err(|_| journal_error(&self.path, "its thread has ended"))?;
        written
            .await
            .map_err(|_| journal_error(&self.path, "its thread ended before the write"))?
            .map_err(|e| journal_error(&self.path, e))
    }

    /// Removes a published task. Not awaited: if the removal is lost, the
    /// next start finds the execution published and removes it then.
    pub(super) fn done(&self, task_id: &str) {
        let _ = self.commands.send(Command::Done {
            task_id: task_id.to_owned(),
        });
    }
}

fn journal_error(path: &Path, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::Journal {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn open_connection(path: &Path) -> Result<Connection, RuntimeError> {
    let fail = |what: &str, e: rusqlite::Error| journal_error(path, format!("{what}: {e}"));
    // Owner-only: the journal holds customers' ids and questions (SQLite
    // gives its -wal file the same mode).
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| journal_error(path, format!("creating it: {e}")))?;
    }
    let conn = Connection::open(path).map_err(|e| fail("opening", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| fail("setting the busy timeout", e))?;
    // Before WAL: in exclusive mode WAL needs no shared-memory file.
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
        .map_err(|e| fail("taking it for this runtime", e))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| fail("reading it as SQLite", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(journal_error(path, format!("journal mode {mode}, not WAL")));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| fail("setting synchronous=FULL", e))?;
    conn.execute_batch(
        "BEGIN EXCLUSIVE;
         CREATE TABLE IF NOT EXISTS tasks (
             seq INTEGER PRIMARY KEY AUTOINCREMENT,
             task_id TEXT NOT NULL UNIQUE,
             priority TEXT NOT NULL,
             task TEXT NOT NULL,
             submitted_at TEXT NOT NULL
         );
         COMMIT;",
    )
    .map_err(|e| fail("creating its table", e))?;
    Ok(conn)
}

/// The pending tasks, oldest first.
fn pending(conn: &Connection, path: &Path) -> Result<Vec<Pending>, RuntimeError> {
    let fail = |e: rusqlite::Error| journal_error(path, format!("reading its tasks: {e}"));
    let mut select = conn
        .prepare("SELECT task_id, task FROM tasks ORDER BY seq")
        .map_err(fail)?;
    let rows = select
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(fail)?;
    let mut out = Vec::new();
    for row in rows {
        let (task_id, json) = row.map_err(fail)?;
        let task = serde_json::from_str(&json)
            .map_err(|e| journal_error(path, format!("task {task_id} does not decode: {e}")))?;
        out.push(Pending { task_id, task });
    }
    Ok(out)
}

fn serve(mut conn: Connection, commands: mpsc::Receiver<Command>, path: &Path) {
    while let Ok(first) = commands.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match commands.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        let written = write(&mut conn, &batch).map_err(|e| e.to_string());
        if let Err(e) = &written {
            tracing::warn!(path = %path.display(), error = %e, commands = batch.len(), "agent journal write failed");
        }
        for c in batch {
            if let Command::Insert { durable, .. } = c {
                let _ = durable.send(written.clone());
            }
        }
    }
}

fn write(conn: &mut Connection, batch: &[Command]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO tasks (task_id, priority, task, submitted_at) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut delete = tx.prepare_cached("DELETE FROM tasks WHERE task_id = ?1")?;
        let now = Utc::now().to_rfc3339();
        for c in batch {
            match c {
                Command::Insert {
                    task_id,
                    priority,
                    task,
                    ..
                } => {
                    insert.execute(params![task_id, priority, task, now])?;
                }
                Command::Done { task_id } => {
                    delete.execute([task_id])?;
                }
            }
        }
    }
    tx.commit()
}
