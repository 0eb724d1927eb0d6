//! Event sourcing on the UltraCore log: aggregates folded from their
//! events, optimistic concurrency without conditional appends, idempotent
//! saves, snapshots, time travel, and projections into SQL read models.
//! Generic over [`ultracore_log::EventLog`], so the same code runs on the
//! embedded log and on Kafka.
//!
//! ```ignore
//! let store = EventStore::new(log, Database::open(&data_dir, None)?, StoreOptions::default())?;
//! let account = store.load::<Account>("acc-1").await?;            // state + version
//! let events = account.state.handle(AccountCommand::Deposit { cents: 500 })?;
//! store.save(&account, events).await?;                             // Err(Conflict) if someone else saved first
//! ```
//!
//! # Layout
//!
//! - `aggregate`: the [`Aggregate`] trait, [`Expected`] versions, [`Cut`]
//!   (time travel) and [`Loaded`].
//! - `store`: [`EventStore`]: load, save, execute, history; how concurrent
//!   saves are decided on a log without conditional appends.
//! - `follower`: reading topics with checkpoints and watermarks, shared by
//!   the stream index and projections; the acceptance rule.
//! - `ownership`: [`Ownership`], which instance writes which aggregates
//!   on a shared log (the `es-writers.<TYPE>` consumer group), and what a
//!   rebalance means for saves.
//! - `projection`: [`Projection`], [`Views`] and [`ProjectionRunner`]
//!   (catch-up, run, rebuild, lag).
//! - `storage`: the [`Storage`] trait, [`SqliteStorage`] (versioned
//!   migrations, WAL mode) and [`PostgresStorage`] (the same tables in a
//!   schema of a PostgreSQL database, a pool of connections on worker
//!   threads).
//! - `database`: [`Database`], the shared handle, chosen by `DATABASE_URL`.
//! - `account`: [`account::Account`], a sample aggregate (with a v1 → v2
//!   event upcaster) and its balances projection, used by the CLI, the
//!   benchmark and the tests.
//! - `error`: [`Error`] and [`CommandError`].

pub mod account;
mod aggregate;
mod database;
mod error;
mod follower;
mod ownership;
mod projection;
mod storage;
mod store;

pub use aggregate::{Aggregate, Cut, Expected, Loaded, StoredEvent};
pub use database::Database;
pub use error::{CommandError, Error, Result};
pub use follower::{CatchUp, COMMIT_HEADER};
pub use ownership::Ownership;
pub use projection::{Projection, ProjectionRunner, ProjectionStatus, Views};
pub use storage::{
    Batch, IndexedEvent, PostgresStorage, Snapshot, SqliteStorage, Storage, Watermark,
};
pub use store::{topic_for, AppendHook, EventStore, Saved, StoreOptions};
