//! The `postgres://` URL: where to connect, which schema, how to name it in
//! messages (never with credentials), and what a failed connection means.

use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::error::SqlState;

use crate::{Error, Result};

/// The schema of the storage's tables when the URL names none.
pub const DEFAULT_SCHEMA: &str = "ultracore_es";

/// How long a connection attempt may take when the URL does not say
/// (`connect_timeout`): an unreachable host fails the call instead of
/// hanging it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed `postgres://` URL.
#[derive(Clone)]
pub struct Target {
    /// The connection settings (credentials included).
    pub config: postgres::Config,
    /// The schema holding the tables: a lowercase identifier.
    pub schema: String,
    /// `host:port`, for messages.
    pub endpoint: String,
    /// The URL without credentials, for messages.
    pub location: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // postgres::Config's Debug leaves the password out, but the location says it all.
        f.debug_struct("Target")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Parses `postgres://user:password@host:port/database?schema=name&…`
/// (or `postgresql://`). `schema` is this storage's parameter; every other
/// parameter is libpq's (`connect_timeout`, `application_name`, `sslmode`, …).
pub fn parse(url: &str) -> Result<Target> {
    let url = url.trim();
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut schema = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", value)) => schema = Some(value),
            _ => rest.push(pair),
        }
    }
    let schema = schema.unwrap_or(DEFAULT_SCHEMA);
    if !is_identifier(schema) {
        return Err(Error::InvalidArgument(format!(
            "schema '{schema}' in DATABASE_URL is not a valid schema name: use 1 to 63 \
             lowercase letters, digits and '_', starting with a letter or '_'"
        )));
    }
    let without_schema = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let mut config: postgres::Config = without_schema.parse().map_err(|e: postgres::Error| {
        Error::InvalidArgument(format!(
            "DATABASE_URL is not a PostgreSQL URL this build understands ({}); expected \
             postgres://USER:PASSWORD@HOST:PORT/DATABASE?schema=NAME",
            chain(&e)
        ))
    })?;
    if config.get_ssl_mode() == SslMode::Require {
        return Err(Error::InvalidArgument(
            "DATABASE_URL asks for sslmode=require, but this build connects to PostgreSQL \
             without TLS; use sslmode=disable or prefer (for example over a local TLS tunnel)"
                .into(),
        ));
    }
    if config.get_hosts().is_empty() {
        return Err(Error::InvalidArgument(
            "DATABASE_URL names no PostgreSQL host: use postgres://USER:PASSWORD@HOST:PORT/DATABASE"
                .into(),
        ));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("ultracore");
    }
    config.notice_callback(|notice| {
        tracing::debug!(
            severity = notice.severity(),
            code = notice.code().code(),
            "PostgreSQL: {}",
            notice.message()
        );
    });
    let endpoint = endpoint(&config);
    let mut location = format!("postgres://{endpoint}");
    if let Some(db) = config.get_dbname() {
        location.push('/');
        location.push_str(db);
    }
    location.push_str("?schema=");
    location.push_str(schema);
    Ok(Target {
        config,
        schema: schema.to_owned(),
        endpoint,
        location,
    })
}

/// A schema name this storage accepts: what PostgreSQL would keep as
/// written unquoted, so `psql` users type it as they read it.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// `host:port[, host:port…]`.
fn endpoint(config: &postgres::Config) -> String {
    let ports = config.get_ports();
    config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            // libpq: one port for every host, or one per host; 5432 when none.
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(h) if h.contains(':') => format!("[{h}]:{port}"),
                Host::Tcp(h) => format!("{h}:{port}"),
                #[cfg(unix)]
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A PostgreSQL error with its causes, as one line.
pub fn chain(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            s.push_str(" (");
            s.push_str(detail);
            s.push(')');
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// Maps a query error of `operation` into [`Error::Storage`].
pub fn pg(operation: &'static str) -> impl Fn(postgres::Error) -> Error {
    move |e| Error::Storage {
        operation,
        reason: chain(&e),
    }
}

/// What a failed connection attempt means, and what to check. PostgreSQL
/// never echoes the password, and neither does this.
pub fn connect_error(target: &Target, e: &postgres::Error) -> Error {
    let at = &target.endpoint;
    let role = target
        .config
        .get_user()
        .map(|u| format!(" of role '{u}'"))
        .unwrap_or_default();
    let refused = io_kind(e) == Some(std::io::ErrorKind::ConnectionRefused);
    let reason = match e.code() {
        Some(c) if *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => format!(
            "PostgreSQL at {at} refused the login{role}: authentication failed ({}); check the user and password in DATABASE_URL",
            chain(e)
        ),
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => format!(
            "PostgreSQL at {at}: {}; create the database or fix its name in DATABASE_URL",
            chain(e)
        ),
        Some(_) => format!("PostgreSQL at {at} refused the connection: {}", chain(e)),
        None if refused => format!(
            "cannot connect to PostgreSQL at {at}: connection refused; check DATABASE_URL and that the server is running and listening there"
        ),
        None if chain(e).contains("password missing") => format!(
            "PostgreSQL at {at} asks for a password{role} and DATABASE_URL has none; add it (postgres://USER:PASSWORD@HOST:PORT/DATABASE)"
        ),
        None => format!(
            "cannot connect to PostgreSQL at {at}: {}; check DATABASE_URL and that the server is reachable",
            chain(e)
        ),
    };
    Error::Storage {
        operation: "connecting to PostgreSQL",
        reason,
    }
}

/// The I/O error kind behind a connection error, if an I/O error caused it.
fn io_kind(e: &postgres::Error) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = cause.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_has_no_credentials_and_the_schema_is_ours() -> Result<()> {
        let t =
            parse("postgres://ada:s3cret@db.example:6543/core?schema=tenant_7&application_name=x")?;
        assert_eq!(
            t.location,
            "postgres://db.example:6543/core?schema=tenant_7"
        );
        assert_eq!(t.schema, "tenant_7");
        assert_eq!(t.endpoint, "db.example:6543");
        assert_eq!(t.config.get_application_name(), Some("x"));
        assert_eq!(t.config.get_password(), Some(&b"s3cret"[..]));
        assert!(!format!("{t:?}").contains("s3cret"));
        let d = parse("postgresql://ada@localhost/core")?;
        assert_eq!(
            d.location,
            "postgres://localhost:5432/core?schema=ultracore_es"
        );
        assert_eq!(d.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        Ok(())
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        for (url, says) in [
            (
                "postgres://u:s3cret@h/db?schema=Users",
                "not a valid schema name",
            ),
            (
                "postgres://u:s3cret@h/db?schema=a;drop",
                "not a valid schema name",
            ),
            (
                "postgres://u:s3cret@h/db?schema=",
                "not a valid schema name",
            ),
            ("postgres://u:s3cret@h/db?sslmode=require", "without TLS"),
            ("postgres://u:s3cret@h:notaport/db", "not a PostgreSQL URL"),
            ("postgres://u:s3cret@h/db?bogus=1", "not a PostgreSQL URL"),
        ] {
            let err = parse(url).unwrap_err().to_string();
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains("s3cret"), "{url}: {err}");
        }
    }
}
