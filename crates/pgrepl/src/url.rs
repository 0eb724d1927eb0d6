//! `DATABASE_URL` for tokio-postgres clients: which query parameters are
//! UltraCore's rather than libpq's, TLS (`sslmode`, `sslrootcert`, read by
//! [`crate::tls`] and turned into the connector), where to connect and how
//! to name it in messages (never with credentials), and what a failed
//! connection means.
//!
//! Every component that reads `DATABASE_URL` (the read models, the
//! operational tables, the change-capture relay) parses it here, so they
//! accept the same URLs, refuse the same ones with the same words, strip
//! the same parameters before handing the URL to a PostgreSQL client, and
//! connect with the same TLS: [`Target::connect`] for tokio-postgres,
//! [`Target::connector`] for the sync `postgres` client.

use std::time::Duration;

use tokio_postgres::config::{Host, SslMode as ClientSslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::Socket;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::percent_decode;
use crate::tls::{SslMode, TlsError, TlsSettings};

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

/// The libpq TLS parameters [`crate::tls`] reads instead of tokio-postgres
/// (which knows neither `verify-ca`, `verify-full`, `allow` nor
/// `sslrootcert`).
const TLS_PARAMETERS: [&str; 2] = ["sslmode", "sslrootcert"];

/// A tokio-postgres connection made by [`Target::connect`]: TCP or TLS.
pub type Connection =
    tokio_postgres::Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>;

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
    /// `sslmode` or `sslrootcert` cannot be used (an unknown mode, a CA
    /// file that cannot be read).
    #[error("has TLS settings that cannot be used: {0}")]
    Tls(TlsError),
    /// No host, so nowhere to connect.
    #[error("names no PostgreSQL host: use postgres://USER:PASSWORD@HOST:PORT/DATABASE")]
    NoHost,
}

/// A parsed `postgres://` URL.
#[derive(Clone)]
pub struct Target {
    /// The connection settings (credentials included), with UltraCore's
    /// defaults for `connect_timeout` and `application_name`, and the
    /// `ssl_mode` tokio-postgres is to follow for [`Target::tls`].
    pub config: tokio_postgres::Config,
    /// `sslmode` and `sslrootcert`.
    pub tls: TlsSettings,
    /// Does TLS as [`Target::tls`] says; for `config.connect(…)` (prefer
    /// [`Target::connect`], which also does `sslmode=allow`'s retry).
    pub connector: MakeRustlsConnect,
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
            .field("tls", &self.tls)
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

/// The URL without the TLS parameters, and their percent-decoded values
/// (`sslmode`, `sslrootcert`; the last of each wins).
fn take_tls_parameters(url: &str) -> Result<(String, [Option<String>; 2]), UrlError> {
    let mut values = [None, None];
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), values));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match TLS_PARAMETERS.iter().position(|p| *p == key) {
            Some(i) => {
                values[i] = Some(
                    percent_decode(value, key).map_err(|e| UrlError::Unparsable(e.to_string()))?,
                )
            }
            None => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, values))
}

/// Parses `postgres://USER:PASSWORD@HOST:PORT/DATABASE?…` (or
/// `postgresql://`). `schema` is UltraCore's parameter; every other one is
/// libpq's (`connect_timeout`, default [`CONNECT_TIMEOUT`];
/// `application_name`, default [`APPLICATION_NAME`]; `options`; `sslmode`
/// and `sslrootcert` with libpq's meanings, see [`crate::tls`]).
///
/// Reads the `sslrootcert` file (or the system's CAs for `verify-ca` and
/// `verify-full` without one), so a CA file that cannot be used fails here,
/// before any connection.
pub fn parse(url: &str) -> Result<Target, UrlError> {
    let url = url.trim();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(UrlError::NotPostgres);
    }
    let (client_url, schema) = split(url);
    let (client_url, [sslmode, sslrootcert]) = take_tls_parameters(&client_url)?;
    let tls = TlsSettings::from_params(sslmode.as_deref(), sslrootcert.as_deref())
        .map_err(UrlError::Tls)?;
    let mut config: tokio_postgres::Config = client_url
        .parse()
        .map_err(|e: tokio_postgres::Error| UrlError::Unparsable(chain(&e)))?;
    config.ssl_mode(tls.client_ssl_mode());
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
        connector: tls.connector().map_err(UrlError::Tls)?,
        tls,
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
    /// Connects with tokio-postgres over TCP or TLS as `sslmode` says. The
    /// connection is the caller's to drive (`tokio::spawn` it).
    ///
    /// `sslmode=allow` connects without TLS first and, if the server
    /// refuses that login, once more with TLS (as libpq does).
    pub async fn connect(
        &self,
    ) -> Result<(tokio_postgres::Client, Connection), tokio_postgres::Error> {
        match self.config.connect(self.connector.clone()).await {
            Err(e) if self.retry_with_tls(&e) => {
                let mut config = self.config.clone();
                config.ssl_mode(ClientSslMode::Prefer);
                config.connect(self.connector.clone()).await
            }
            connected => connected,
        }
    }

    /// True when `e` ended a login without TLS that `sslmode=allow` tries
    /// again with TLS (`ssl_mode` prefer): the server refused the login
    /// (SQLSTATE class 28, which a `hostssl`-only `pg_hba.conf` gives).
    /// For clients that connect themselves (the sync `postgres` client).
    pub fn retry_with_tls(&self, e: &tokio_postgres::Error) -> bool {
        self.tls.mode == SslMode::Allow && e.code().is_some_and(|c| c.code().starts_with("28"))
    }

    /// The TCP host names, for messages about certificates.
    fn hosts(&self) -> String {
        self.config
            .get_hosts()
            .iter()
            .filter_map(|h| match h {
                Host::Tcp(h) => Some(h.as_str()),
                #[cfg(unix)]
                Host::Unix(_) => None,
            })
            .collect::<Vec<_>>()
            .join(",")
    }

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
        if let Some(reason) = self.tls.explain(e, &self.hosts()) {
            return format!("TLS with PostgreSQL at {at} failed: {reason}");
        }
        match e.code() {
            // A hostssl-only pg_hba.conf refusing a login without TLS.
            Some(c)
                if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                    && chain(e).contains("no encryption") =>
            {
                format!(
                    "PostgreSQL at {at} accepts this login{role} only over TLS ({}); connect \
                     with sslmode=verify-full and sslrootcert=PATH of its CA (or \
                     sslmode=require) in DATABASE_URL",
                    chain(e)
                )
            }
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
                "postgres://u:s3cret@h/db?sslmode=verify_full",
                UrlError::Tls(TlsError::UnknownMode("verify_full".into())),
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
        let err = parse("postgres://u:s3cret@h/db?sslmode=verify-ca&sslrootcert=%2Fno%2Fca.crt")
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sslrootcert '/no/ca.crt'"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn tls_parameters_are_ours_and_the_rest_tokio_postgres() -> Result<(), UrlError> {
        let t = parse("postgres://u:p@h/db")?;
        assert_eq!(t.tls, TlsSettings::default());
        assert_eq!(t.config.get_ssl_mode(), ClientSslMode::Prefer);

        for (mode, client) in [
            ("disable", ClientSslMode::Disable),
            ("allow", ClientSslMode::Disable),
            ("prefer", ClientSslMode::Prefer),
            ("require", ClientSslMode::Require),
        ] {
            let t = parse(&format!(
                "postgres://u:p@h/db?application_name=x&sslmode={mode}&schema=s"
            ))?;
            assert_eq!(t.tls.mode.as_str(), mode);
            assert_eq!(t.config.get_ssl_mode(), client, "{mode}");
            assert_eq!(t.config.get_application_name(), Some("x"));
            assert_eq!(t.schema.as_deref(), Some("s"));
        }
        assert_eq!(
            take_tls_parameters("postgres://h/db?sslrootcert=%2Fa%20b&sslmode=require&x=1")?,
            (
                "postgres://h/db?x=1".to_owned(),
                [Some("require".to_owned()), Some("/a b".to_owned())]
            )
        );
        Ok(())
    }
}
