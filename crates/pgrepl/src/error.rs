use std::fmt;
use std::time::Duration;

/// SQLSTATE codes a replication client commonly needs to tell apart.
///
/// The full list is in PostgreSQL's documentation, appendix A "PostgreSQL
/// Error Codes"; [`DbError::code`] carries whatever the server sent.
pub mod sqlstate {
    /// `object_not_in_prerequisite_state`: among others, "logical decoding
    /// requires wal_level >= logical" when creating a logical slot or
    /// starting logical replication on a server without `wal_level=logical`.
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
    /// `object_in_use`: the replication slot is active for another process.
    pub const OBJECT_IN_USE: &str = "55006";
    /// `undefined_object`: the replication slot (or publication) does not exist.
    pub const UNDEFINED_OBJECT: &str = "42704";
    /// `duplicate_object`: a replication slot with that name already exists.
    pub const DUPLICATE_OBJECT: &str = "42710";
    /// `invalid_password`: the password is wrong (or the role has none).
    pub const INVALID_PASSWORD: &str = "28P01";
    /// `invalid_authorization_specification`: no `pg_hba.conf` entry, or the
    /// role may not log in / lacks the REPLICATION attribute.
    pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
    /// `insufficient_privilege`: e.g. a role without REPLICATION asking for
    /// a replication connection.
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    /// `admin_shutdown`: the server is shutting down or the backend was terminated.
    pub const ADMIN_SHUTDOWN: &str = "57P01";
}

/// Errors from the replication client and the pgoutput decoder.
///
/// Variants separate what the server refused ([`Error::Db`], [`Error::Auth`]),
/// what the caller got wrong ([`Error::Config`], [`Error::InvalidLsn`]), bytes
/// that do not follow the protocol ([`Error::Malformed`], [`Error::Protocol`])
/// and transport failures ([`Error::Connect`], [`Error::Tls`], [`Error::Io`],
/// [`Error::Closed`], [`Error::Timeout`]), so a caller can decide whether a
/// reconnect can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection URL or a setting is invalid.
    #[error("invalid PostgreSQL connection setting: {0}")]
    Config(String),
    /// A string is not an LSN of the form `16/B374D848`.
    #[error(
        "invalid LSN '{0}': expected two hexadecimal numbers of up to 8 digits, like 16/B374D848"
    )]
    InvalidLsn(String),
    /// The TCP connection could not be opened.
    #[error("cannot connect to PostgreSQL at {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    /// TLS could not be had as `sslmode` asks: the server does not offer it
    /// though the mode requires it, or the handshake failed (a certificate
    /// not signed by a CA in `sslrootcert`, one that does not name the
    /// host). `reason` says which, and what to change.
    #[error("TLS with PostgreSQL at {address} failed: {reason}")]
    Tls { address: String, reason: String },
    /// Connecting and authenticating took longer than the configured timeout.
    #[error("connecting to PostgreSQL at {address} timed out after {after:?}")]
    Timeout { address: String, after: Duration },
    /// The server rejected the login: wrong password, no `pg_hba.conf`
    /// entry, a role that may not log in or lacks REPLICATION.
    #[error("PostgreSQL refused to authenticate user '{user}': {db}")]
    Auth { user: String, db: Box<DbError> },
    /// The login could not be carried out on the client side: the server
    /// wants a password none was given for, an unsupported method, or a
    /// SCRAM exchange the server's proof did not verify.
    #[error("cannot authenticate user '{user}' to PostgreSQL: {reason}")]
    AuthMethod { user: String, reason: String },
    /// The server answered a command with an `ErrorResponse`.
    #[error("{0}")]
    Db(Box<DbError>),
    /// The server sent a message that is valid but not expected here.
    #[error("PostgreSQL protocol violation: {0}")]
    Protocol(String),
    /// Bytes that do not parse: a truncated or inconsistent message.
    /// Cheap to build (no allocation): it is returned on the decode path.
    #[error("malformed {what} at byte {offset}")]
    Malformed { what: &'static str, offset: usize },
    /// The server closed the connection where a message was expected.
    #[error("PostgreSQL closed the connection {0}")]
    Closed(&'static str),
    /// Reading or writing the socket failed.
    #[error("I/O error on the PostgreSQL connection: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The SQLSTATE of a server error ([`Error::Db`] or [`Error::Auth`]),
    /// for comparing with the constants in [`sqlstate`].
    pub fn code(&self) -> Option<&str> {
        self.db_error().map(|db| db.code.as_str())
    }

    /// The server's error, if this is one.
    pub fn db_error(&self) -> Option<&DbError> {
        match self {
            Error::Db(db) | Error::Auth { db, .. } => Some(db),
            _ => None,
        }
    }

    /// True when the server refused because a prerequisite is missing
    /// (SQLSTATE 55000), most importantly `wal_level` not being `logical`.
    /// Retrying cannot help until the server is reconfigured and restarted.
    pub fn is_object_not_in_prerequisite_state(&self) -> bool {
        self.code() == Some(sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE)
    }
}

/// An `ErrorResponse` from the server, with the fields callers act on.
///
/// Field meanings follow the protocol's "Error and Notice Message Fields".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    /// `ERROR`, `FATAL` or `PANIC` (the non-localized `V` field when the
    /// server sends it, else the localized `S` field).
    pub severity: String,
    /// The SQLSTATE, e.g. `55000`; compare with [`sqlstate`].
    pub code: String,
    /// The primary, human-readable message.
    pub message: String,
    /// Optional secondary message with more detail.
    pub detail: Option<String>,
    /// Optional suggestion what to do about it.
    pub hint: Option<String>,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (SQLSTATE {})",
            self.severity, self.message, self.code
        )?;
        if let Some(detail) = &self.detail {
            write!(f, "; DETAIL: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; HINT: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DbError {}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn db(code: &str) -> Box<DbError> {
        Box::new(DbError {
            severity: "ERROR".into(),
            code: code.into(),
            message: "logical decoding requires wal_level >= logical".into(),
            detail: None,
            hint: Some("Set wal_level to logical.".into()),
        })
    }

    #[test]
    fn sqlstate_is_reachable_from_db_and_auth_errors() {
        let err = Error::Db(db("55000"));
        assert_eq!(err.code(), Some(sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE));
        assert!(err.is_object_not_in_prerequisite_state());
        let text = err.to_string();
        assert!(text.contains("wal_level >= logical"), "{text}");
        assert!(text.contains("SQLSTATE 55000"), "{text}");
        assert!(text.contains("HINT: Set wal_level to logical."), "{text}");

        let auth = Error::Auth {
            user: "u".into(),
            db: db(sqlstate::INVALID_PASSWORD),
        };
        assert_eq!(auth.code(), Some("28P01"));
        assert!(!auth.is_object_not_in_prerequisite_state());
        assert_eq!(Error::Closed("during startup").code(), None);
    }
}
