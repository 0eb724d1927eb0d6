//! `DATABASE_URL` for tokio-postgres clients: which query parameters are
//! UltraCore's rather than libpq's, where to connect and how to name it in
//! messages (never with credentials), and what a failed connection means.
//!
//! Every component that reads `DATABASE_URL` (the read models, the
//! operational tables, the change-capture relay) parses it here, so they
//! accept the same URLs, refuse the same ones with the same words, and
//! strip the same parameters before handing the URL to a PostgreSQL client.

use std::time::Duration;

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;

/// How long a connection attempt may take when the URL does not say
/// (`connect_timeout`): an unreachable host fails the call instead of
/// hanging it.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `application_name` when the URL does not say.
pub const APPLICATION_NAME: &str = "ultracore";

/// The query parameter UltraCore reads itself: the read models' schema.
/// PostgreSQL clients refuse parameters they do not know, so it is removed
/// before the URL reaches one.
pub const SCHEMA_PARAMETER: &str = "schema";

/// Why a `DATABASE_URL` cannot be used. Displays as what is wrong with it,
/// to follow its name (`DATABASE_URL {error}`); never repeats the URL, which
/// holds the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Neither `postgres://` nor `postgresql://`.
    #[error("is not a PostgreSQL URL: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")]
    NotPostgres,
    /// tokio-postgres refused it (a bad port, an unknown parameter, …).
    #[error(
        "is not a PostgreSQL URL this build understands ({0}): expected \
         postgres://USER:PASSWORD@HOST:PORT/DATABASE"
    )]
    Unparsable(String),
    /// `sslmode=require`: these clients have no TLS.
    #[error(
        "asks for sslmode=require, but this build connects to PostgreSQL without TLS: \
         use sslmode=disable or prefer (for example over a local TLS tunnel)"
    )]
    NeedsTls,
    /// No host, so nowhere to connect.
    #[error("names no PostgreSQL host: use postgres://USER:PASSWORD@HOST:PORT/DATABASE")]
    NoHost,
}

/// A parsed `postgres://` URL.
#[derive(Clone)]
pub struct Target {
    /// The connection settings (credentials included), with UltraCore's
    /// defaults for `connect_timeout` and `application_name`.
    pub config: tokio_postgres::Config,
    /// The `schema` parameter, if the URL has one (not validated: what a
    /// schema may be is its reader's business).
    pub schema: Option<String>,
    /// `host:port[,host:port…]`, for messages.
    pub endpoint: String,
    /// `postgres://HOST:PORT/DATABASE`: the URL without credentials or
    /// parameters, for messages.
    pub location: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tokio_postgres::Config's Debug leaves the password out, but the
        // location says it all.
        f.debug_struct("Target")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// The URL without UltraCore's parameters ([`SCHEMA_PARAMETER`]), ready for
/// a PostgreSQL client, and the schema it named (the last one, if several).
pub fn split(url: &str) -> (String, Option<&str>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((SCHEMA_PARAMETER, value)) => schema = Some(value),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, schema)
}

/// The URL without UltraCore's parameters, for a PostgreSQL client.
pub fn client_url(url: &str) -> String {
    split(url).0
}

/// Parses `postgres://USER:PASSWORD@HOST:PORT/DATABASE?…` (or
/// `postgresql://`). `schema` is UltraCore's parameter; every other one is
/// libpq's (`connect_timeout`, default [`CONNECT_TIMEOUT`];
/// `application_name`, default [`APPLICATION_NAME`]; `options`; `sslmode`
/// `disable` or `prefer`: connections are not encrypted).
pub fn parse(url: &str) -> Result<Target, UrlError> {
    let url = url.trim();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(UrlError::NotPostgres);
    }
    let (client_url, schema) = split(url);
    let mut config: tokio_postgres::Config = client_url
        .parse()
        .map_err(|e: tokio_postgres::Error| UrlError::Unparsable(chain(&e)))?;
    if config.get_ssl_mode() == SslMode::Require {
        return Err(UrlError::NeedsTls);
    }
    if config.get_hosts().is_empty() {
        return Err(UrlError::NoHost);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name(APPLICATION_NAME);
    }
    let endpoint = endpoint(&config);
    let mut location = format!("postgres://{endpoint}");
    if let Some(db) = config.get_dbname() {
        location.push('/');
        location.push_str(db);
    }
    Ok(Target {
        schema: schema.map(str::to_owned),
        config,
        endpoint,
        location,
    })
}

/// `host:port[,host:port…]`.
fn endpoint(config: &tokio_postgres::Config) -> String {
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
pub fn chain(e: &tokio_postgres::Error) -> String {
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

impl Target {
    /// What a failed connection attempt means, and what to check in
    /// `DATABASE_URL`, naming `host:port` and the role. PostgreSQL never
    /// echoes the password, and neither does this. `opens_at_most` is how
    /// many connections the caller keeps to this server, named when the
    /// server has none to spare.
    pub fn connect_error(&self, e: &tokio_postgres::Error, opens_at_most: usize) -> String {
        let at = &self.endpoint;
        let role = self
            .config
            .get_user()
            .map(|u| format!(" of role '{u}'"))
            .unwrap_or_default();
        let refused = io_kind(e) == Some(std::io::ErrorKind::ConnectionRefused);
        match e.code() {
            Some(c)
                if *c == SqlState::INVALID_PASSWORD
                    || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
            {
                format!(
                    "PostgreSQL at {at} refused the login{role}: authentication failed ({}); \
                     check the user and password in DATABASE_URL",
                    chain(e)
                )
            }
            Some(c) if *c == SqlState::INVALID_CATALOG_NAME => format!(
                "PostgreSQL at {at}: {}; create the database or fix its name in DATABASE_URL",
                chain(e)
            ),
            Some(c) if *c == SqlState::TOO_MANY_CONNECTIONS => format!(
                "PostgreSQL at {at} has no connection to spare: {}; raise max_connections or \
                 stop idle clients (this client opens at most {opens_at_most} here)",
                chain(e)
            ),
            Some(_) => format!("PostgreSQL at {at} refused the connection: {}", chain(e)),
            None if refused => format!(
                "cannot connect to PostgreSQL at {at}: connection refused; check DATABASE_URL \
                 and that the server is running and listening there"
            ),
            None if chain(e).contains("password missing") => format!(
                "PostgreSQL at {at} asks for a password{role} and DATABASE_URL has none: add it \
                 (postgres://USER:PASSWORD@HOST:PORT/DATABASE)"
            ),
            None => format!(
                "cannot connect to PostgreSQL at {at}: {}; check DATABASE_URL and that the \
                 server is reachable",
                chain(e)
            ),
        }
    }
}

/// The I/O error kind behind a connection error, if an I/O error caused it.
fn io_kind(e: &tokio_postgres::Error) -> Option<std::io::ErrorKind> {
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
    fn only_ultracore_parameters_are_stripped() {
        assert_eq!(
            split("postgres://u:p@h:1/db?schema=x&application_name=a"),
            (
                "postgres://u:p@h:1/db?application_name=a".to_owned(),
                Some("x")
            )
        );
        assert_eq!(
            split("postgres://h/db?schema=x&schema=y"),
            ("postgres://h/db".to_owned(), Some("y"))
        );
        assert_eq!(client_url("postgres://h/db?schema=x"), "postgres://h/db");
        assert_eq!(
            client_url("postgres://h/db?schemas=x"),
            "postgres://h/db?schemas=x"
        );
        assert_eq!(client_url("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn the_location_has_no_credentials_or_parameters() -> Result<(), UrlError> {
        let t = parse(
            " postgres://ada:s3cret@db.example:6543/core?schema=tenant_7&application_name=x ",
        )?;
        assert_eq!(t.location, "postgres://db.example:6543/core");
        assert_eq!(t.endpoint, "db.example:6543");
        assert_eq!(t.schema.as_deref(), Some("tenant_7"));
        assert_eq!(t.config.get_application_name(), Some("x"));
        assert_eq!(t.config.get_password(), Some(&b"s3cret"[..]));
        assert!(!format!("{t:?}").contains("s3cret"));

        let d = parse("postgresql://ada@localhost/core")?;
        assert_eq!(d.location, "postgres://localhost:5432/core");
        assert_eq!(d.schema, None);
        assert_eq!(d.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(d.config.get_application_name(), Some(APPLICATION_NAME));

        let v6 = parse("postgres://ada@[::1]:7000,db2/core?connect_timeout=3")?;
        assert_eq!(v6.endpoint, "[::1]:7000,db2:5432");
        assert_eq!(
            v6.config.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        Ok(())
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        for (url, expected) in [
            ("mysql://u:s3cret@h/db", UrlError::NotPostgres),
            ("host=h user=u password=s3cret", UrlError::NotPostgres),
            (
                "postgres://u:s3cret@h/db?sslmode=require",
                UrlError::NeedsTls,
            ),
            ("postgres://u:s3cret@/db", UrlError::NoHost),
        ] {
            assert_eq!(parse(url).unwrap_err(), expected, "{url}");
        }
        for url in [
            "postgres://u:s3cret@h:notaport/db",
            "postgres://u:s3cret@h/db?bogus=1",
        ] {
            let err = parse(url).unwrap_err();
            assert!(matches!(err, UrlError::Unparsable(_)), "{url}: {err}");
            let text = err.to_string();
            assert!(text.contains("not a PostgreSQL URL"), "{url}: {text}");
            assert!(!text.contains("s3cret"), "{url}: {text}");
        }
    }
}
