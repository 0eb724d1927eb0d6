//! The operational tables on PostgreSQL ([`PgDb`]), for deployments whose
//! source of truth is a PostgreSQL database (`DATABASE_URL`).
//!
//! `users` and `conversations` live in the database's `public` schema with
//! the columns and checks of the SQLite tables, so the API behaves the same
//! on either database. Their versions are recorded in
//! `ultracore_ops_migrations`. Both tables have `REPLICA IDENTITY FULL`:
//! change capture reads them by logical replication and needs each row's
//! whole image before an update or delete. Every column is read as
//! PostgreSQL prints it and converted by [`values`], one way for the API,
//! the capture and verification.
//!
//! # Layout
//!
//! - `pool`: the URL, the location without credentials, what a failed
//!   connection means, and the bounded pool of connections.
//! - `store`: [`PgDb`], its migrations and its calls.
//! - `relay`: [`PgRelay`], change capture by logical replication (pgoutput).
//! - `values`: printed column values as the envelope's JSON values.

mod pool;
mod relay;
mod store;
pub mod values;

pub use relay::{client_url, PgRelay, PgRelayOptions, PgStatus, LSN_HEADER};
pub use store::PgDb;
