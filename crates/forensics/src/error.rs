//! The crate's one error type.

use std::path::PathBuf;

/// What can stop the forensics service or fail a store operation.
///
/// A malformed decision is not an error: it is dead-lettered with a
/// [`crate::Rejection`] and the service goes on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The specialists could not be loaded.
    #[error("cannot load the specialist model {path}: {source}")]
    Model {
        path: PathBuf,
        #[source]
        source: ultracore_models::Error,
    },
    /// The specialists do not form one ensemble (different features, none at all).
    #[error("the specialists do not form an ensemble: {0}")]
    Specialists(String),
    /// A setting is out of range; the message names it and the valid range.
    #[error("invalid forensics configuration: {0}")]
    Config(String),
    /// The store failed; `operation` says what it was doing.
    #[error("forensics store {path}: {operation} failed: {source}")]
    Store {
        path: String,
        operation: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// The store's schema is newer than this build knows.
    #[error("forensics store {path} has schema version {found}, newer than the {known} this build knows: upgrade ultracore, or point --db at another file")]
    SchemaTooNew {
        path: String,
        found: i64,
        known: i64,
    },
    /// A reader was asked for what the store's schema does not hold yet:
    /// only the writer migrates, when the service opens the store.
    #[error("forensics store {path} has schema version {found}, this needs {needed}: start the forensics service (`ultracore service forensics`) once on it, which migrates it in place")]
    SchemaTooOld {
        path: String,
        found: i64,
        needed: i64,
    },
    /// A stored row that cannot be read back (a damaged or foreign file).
    #[error("forensics store {path}: the row of decision {decision_id} is unreadable: {reason}")]
    Corrupt {
        path: String,
        decision_id: String,
        reason: String,
    },
    /// The event log failed (poll, commit, dead-letter append).
    #[error("event log: {0}")]
    Log(#[from] ultracore_log::Error),
    /// A worker or writer thread stopped unexpectedly.
    #[error("forensics pipeline: {0}")]
    Pipeline(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
