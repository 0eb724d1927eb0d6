//! The crate's one error type.

use std::path::PathBuf;

use crate::InvalidRequest;

/// What can go wrong making a decision or loading what decisions need.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request cannot be decided; names the field (HTTP 422).
    #[error("invalid request: {0}")]
    Invalid(InvalidRequest),
    /// A configuration value out of range; names the field.
    #[error("invalid decision configuration: {field}: {reason}")]
    Config { field: String, reason: String },
    /// A specialist model file that cannot be used.
    #[error("model file {path}: {reason}")]
    ModelFile { path: PathBuf, reason: String },
    /// The evaluation set for model updates cannot be used.
    #[error("evaluation set {path}: {reason}")]
    Evaluation { path: PathBuf, reason: String },
    /// The decision event could not be queued (the emitter is full or
    /// stopped), so the decision was not made (HTTP 503): retry.
    #[error("the decision was not recorded, so it was not made: {0}; retry shortly")]
    NotRecorded(#[from] ultracore_spool::EmitError),
    /// The event log or the spool failed at start-up.
    #[error("event log: {0}")]
    Log(#[from] ultracore_log::Error),
    /// A bug: a model rejected a row the engine built for it.
    #[error("internal error: {0}")]
    Internal(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
