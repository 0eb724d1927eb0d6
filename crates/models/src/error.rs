//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong loading a model or explaining a row.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file could not be read.
    #[error("cannot read model file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not JSON, or not the shape `save_model("model.json")` writes.
    #[error("not an XGBoost JSON model")]
    Json(#[from] serde_json::Error),
    /// A well-formed model that uses something this crate does not implement.
    #[error("unsupported XGBoost model: {what}")]
    Unsupported { what: String },
    /// A model whose numbers do not make a valid tree ensemble.
    #[error("invalid XGBoost model: {what}")]
    Invalid { what: String },
    /// A row with a different number of values than the model has features.
    /// Cheap to build: raised on the per-row path.
    #[error("row has {actual} values, the model has {expected} features")]
    RowLength { expected: usize, actual: usize },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
