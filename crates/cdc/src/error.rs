/// What can go wrong writing, reading or capturing the operational tables.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field the caller gave is not acceptable (HTTP 422).
    #[error("{field} {message}")]
    Invalid { field: String, message: String },
    /// No such row (HTTP 404).
    #[error("no {what} with id '{id}'")]
    NotFound { what: &'static str, id: String },
    /// The write contradicts what is stored: a taken id or e-mail, a full
    /// conversation (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// The SQLite database failed.
    #[error("operational database {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    /// The PostgreSQL database failed: it could not be reached, refused
    /// the login, or a statement failed (HTTP 503). `location` is the URL
    /// without credentials; `message` says what to check.
    #[error("operational database {location}: {message}")]
    Postgres { location: String, message: String },
    /// A file or directory could not be created.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Capture could not be set up (its topics, its replication slot).
    #[error("setting up change capture: {0}")]
    Setup(String),
    /// The log failed.
    #[error("log: {0}")]
    Log(#[from] ultracore_log::Error),
    /// Something read back is not what was written (a row edited by hand
    /// into a shape the capture cannot carry, a corrupt outbox row).
    #[error("{0}")]
    Corrupt(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the caller's request was at fault (as opposed to the system).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Error::Invalid { .. } | Error::NotFound { .. } | Error::Conflict(_)
        )
    }
}
