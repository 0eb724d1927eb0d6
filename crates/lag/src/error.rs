//! The crate's [`Error`].

/// Why a monitor round or the service failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log could not be read or written.
    #[error("the event log failed: {0}")]
    Log(#[from] ultracore_log::Error),
    /// `ops.alerts` could not be created.
    #[error("the alerts topic could not be created: {0}")]
    Catalogue(#[from] ultracore_runtime::catalogue::CatalogueError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
