//! The crate's error type.

/// What can go wrong outside a tool call (tool calls report their problems
/// to the client as tool errors).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The event log refused or failed an operation.
    #[error("event log: {0}")]
    Log(#[from] ultracore_log::Error),
    /// The MCP session could not start or ended with an error.
    #[error("MCP transport: {0}")]
    Transport(String),
    /// The reader of `esg-portfolio-events` keeps failing.
    #[error("reading esg-portfolio-events failed: {reason}")]
    ResultsUnavailable {
        /// The last error of the reader.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
