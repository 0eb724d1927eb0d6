//! Change data capture: the tables UltraCore owns (users, the agents'
//! conversations) and every change to them as a Debezium change event on
//! `db.changes.<table>`, so audit, analytics and the data mesh — and any
//! Debezium consumer (a Kafka Connect sink, Flink CDC) — see row changes as
//! events.
//!
//! # Layout
//!
//! - `tables`: the captured tables, defined once ([`tables::USERS`],
//!   [`tables::CONVERSATIONS`]).
//! - `model`: users, conversations and messages as the API sees them, with
//!   the edge's validation.
//! - `envelope`: Debezium's change event ([`ChangeEvent`]) and record key.
//! - `sqlite`: the tables on SQLite ([`SqliteDb`]) with the triggers that
//!   write every change to an outbox in the same transaction.
//! - `postgres`: the tables on PostgreSQL ([`PgDb`]), with the schema
//!   logical replication needs to capture them.
//! - `store`: [`Operational`], the tables behind one async API, whichever
//!   database holds them.
//! - `http`: the users and conversations routes.
//! - `relay`: [`SqliteRelay`], the outbox onto the log: snapshot, streaming,
//!   exactly once on the embedded log across crashes.
//! - `open`: [`open()`], the tables and their [`Relay`] on whichever database
//!   `DATABASE_URL` names.
//! - `verify`: [`verify()`], replaying the change topics against the tables.
//! - `error`: [`Error`].

pub mod envelope;
mod error;
pub mod http;
pub mod model;
mod open;
pub mod postgres;
mod relay;
pub mod sqlite;
mod store;
pub mod tables;
pub mod verify;

pub use envelope::{ChangeEvent, Op, Row, SnapshotMark, Source};
pub use error::{Error, Result};
pub use open::{is_postgres, open, Relay};
pub use postgres::PgDb;
pub use relay::{
    RelayOptions, RelayProgress, SqliteRelay, SEQ_HEADER, SNAPSHOT_HEADER, SOURCE_HEADER,
};
pub use sqlite::SqliteDb;
pub use store::Operational;
pub use verify::{verify, TableCheck, Verification};
