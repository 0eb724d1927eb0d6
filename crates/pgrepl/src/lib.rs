//! A PostgreSQL logical replication client that speaks the streaming
//! replication protocol directly, and a decoder for `pgoutput`, the
//! server's built-in logical decoding output plugin. Change data capture
//! builds on it: create a slot (with a snapshot for the initial copy),
//! stream committed row changes, confirm what is durably handled.
//!
//! Why not tokio-postgres: it has no COPY BOTH mode, which replication
//! needs. This crate uses `postgres-protocol` (the version tokio-postgres
//! 0.7 builds on) for SCRAM-SHA-256 and md5 authentication and frontend
//! message encoding, and does the framing and the replication protocol
//! itself.
//!
//! TLS follows libpq: `sslmode` (`disable`, `allow`, `prefer` by default,
//! `require`, `verify-ca`, `verify-full`) and `sslrootcert` in the URL, an
//! `SSLRequest` before the startup packet, rustls underneath. [`tls`] holds
//! it all, and every other PostgreSQL client of UltraCore takes its TLS
//! from there too: `postgres://…/app?sslmode=verify-full&sslrootcert=/etc/ultracore/pg-ca.crt`.
//!
//! The plain SQL connections beside replication do use tokio-postgres, and
//! [`url`] is the one reading of `DATABASE_URL` for them: UltraCore's own
//! parameters, the TLS settings, the location without credentials, and
//! connection failures explained.
//!
//! ```no_run
//! # async fn run() -> ultracore_pgrepl::Result<()> {
//! use ultracore_pgrepl::{pgoutput::Message, Config, Lsn, ReplicationConnection, StreamMessage};
//!
//! let cfg = Config::from_url("postgres://cdc:secret@127.0.0.1:5432/app")?;
//! let mut conn = ReplicationConnection::connect(&cfg).await?;
//! let slot = conn.create_logical_slot("app_cdc", false).await?;
//! let mut stream = conn.start("app_cdc", slot.consistent_point, &["app_pub"]).await?;
//! let mut confirmed = slot.consistent_point;
//! while let Some(msg) = stream.recv().await? {
//!     match msg {
//!         StreamMessage::XLogData { message: Message::Commit { end_lsn, .. }, .. } => {
//!             // …once the transaction's changes are durably written downstream:
//!             confirmed = end_lsn;
//!             stream.send_status(confirmed, confirmed, confirmed, false).await?;
//!         }
//!         StreamMessage::XLogData { message: _change, .. } => { /* Begin, Relation, Insert, … */ }
//!         StreamMessage::Keepalive { reply_requested: true, .. } => {
//!             stream.send_status(confirmed, confirmed, confirmed, false).await?;
//!         }
//!         StreamMessage::Keepalive { .. } => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - `config`: [`Config`], parsed from a `postgres://` URL.
//! - `connection`: [`ReplicationConnection`]: TCP, TLS, login,
//!   `IDENTIFY_SYSTEM`, simple queries, slot commands, `START_REPLICATION`.
//! - [`tls`]: `sslmode` and `sslrootcert` with libpq's meanings, the rustls
//!   configuration and the tokio-postgres connector built from them, TLS
//!   failures explained; shared by every PostgreSQL client of UltraCore.
//! - `stream`: [`ReplicationStream`] and [`StreamMessage`]: receiving WAL
//!   data and keepalives, sending standby status updates.
//! - [`pgoutput`]: the decoder for the change messages inside WAL data.
//! - [`url`]: `DATABASE_URL` for tokio-postgres clients: parsing, the
//!   location without credentials, what a failed connection means.
//! - `lsn`: [`Lsn`], a WAL position.
//! - `error`: the crate's [`Error`], server errors ([`DbError`]) and the
//!   [`sqlstate`] codes callers branch on.
//! - `startup`: the `SSLRequest`, the startup packet and the
//!   authentication exchange.
//! - `wire`: message framing and the backend messages all phases share.
//! - `reader`: the bounds-checked byte cursor every parser uses.

mod config;
mod connection;
mod error;
mod lsn;
pub mod pgoutput;
mod reader;
mod startup;
mod stream;
pub mod tls;
pub mod url;
mod wire;

pub use config::{Config, DEFAULT_APPLICATION_NAME, DEFAULT_CONNECT_TIMEOUT};
pub use connection::{CreatedSlot, ReplicationConnection, SystemInfo};
pub use error::{sqlstate, DbError, Error, Result};
pub use lsn::Lsn;
pub use startup::AuthMethod;
pub use stream::{ReplicationStream, StreamMessage, POSTGRES_EPOCH_UNIX_MICROS};
pub use tls::{SslMode, TlsSettings};
pub use wire::Transport;
