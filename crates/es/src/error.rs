use ultracore_log::DecodeError;

use crate::Expected;

/// Errors of the event store and the projections.
///
/// Conflicts, stored-data problems and infrastructure failures are separate
/// variants: an API maps [`Error::Conflict`] to 409, [`Error::Log`] and
/// [`Error::Storage`] to 503, and a rejected command (see
/// [`crate::CommandError`]) to 422.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{aggregate_type}/{aggregate_id}: expected {expected}, but the aggregate is at version {actual}; load it again and retry the command")]
    Conflict {
        aggregate_type: String,
        aggregate_id: String,
        expected: Expected,
        actual: u64,
    },
    #[error("{aggregate_type}/{aggregate_id}: event {event_id} of this batch is already stored but event {missing} is not; a retried save must resend the same events with the same ids")]
    PartlyStored {
        aggregate_type: String,
        aggregate_id: String,
        event_id: uuid::Uuid,
        missing: uuid::Uuid,
    },
    #[error("{aggregate_type}/{aggregate_id}: only {accepted} of {sent} events of the save were accepted (the batch was split on the log and another writer won in between); load the aggregate again")]
    Torn {
        aggregate_type: String,
        aggregate_id: String,
        accepted: usize,
        sent: usize,
    },
    #[error(
        "{aggregate_type}/{aggregate_id} version {version}: stored event cannot be read: {source}"
    )]
    Decode {
        aggregate_type: String,
        aggregate_id: String,
        version: u64,
        source: DecodeError,
    },
    #[error("unknown projection '{0}'; the registered projections are listed by `ultracore projections list`")]
    UnknownProjection(String),
    #[error("{aggregate_type}/{aggregate_id} lives in partition {partition}, which another instance owns; route the command to the owner of that partition in the es-writers.{aggregate_type} group")]
    NotOwner {
        aggregate_type: String,
        aggregate_id: String,
        partition: u32,
    },
    #[error("projection '{projection}' failed on {topic}/{partition} offset {offset}: {reason}")]
    Projection {
        projection: String,
        topic: String,
        partition: u32,
        offset: u64,
        reason: String,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("read-model storage error during {operation}: {reason}")]
    Storage {
        operation: &'static str,
        reason: String,
    },
    #[error("the read-model database at {path} has schema version {found}, newer than this build knows ({known}); upgrade ultracore")]
    SchemaTooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("timed out after {seconds} s catching up with {topic}: the log did not deliver records up to its end; check that the broker is reachable")]
    CatchUpTimeout { topic: String, seconds: u64 },
    #[error(transparent)]
    Log(#[from] ultracore_log::Error),
}

impl Error {
    pub(crate) fn storage(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
        move |e| Error::Storage {
            operation,
            reason: e.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The outcome of a command that failed: rejected by the aggregate's
/// business rules, or not stored.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error + 'static> {
    #[error("command rejected: {0}")]
    Rejected(#[source] E),
    #[error(transparent)]
    Store(#[from] Error),
}

impl<E: std::error::Error + 'static> CommandError<E> {
    /// The store error, if the command was not simply rejected.
    pub fn store(&self) -> Option<&Error> {
        match self {
            CommandError::Store(e) => Some(e),
            CommandError::Rejected(_) => None,
        }
    }
}
