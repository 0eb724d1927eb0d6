//! The `postgres://` URL: where to connect, which schema, how to name it in
//! messages (never with credentials), and what a failed connection means.
//! The reading of the URL is the one every UltraCore component shares
//! ([`ultracore_pgrepl::url`]); the schema and its default are this storage's.

use ultracore_pgrepl::url::{self, chain};

use crate::{Error, Result};

/// The schema of the storage's tables when the URL names none.
pub const DEFAULT_SCHEMA: &str = "ultracore_es";

/// A parsed `postgres://` URL.
#[derive(Clone, Debug)]
pub struct Target {
    /// Where and as whom (credentials included; its `Debug` leaves them out).
    pub server: url::Target,
    /// The schema holding the tables: a lowercase identifier.
    pub schema: String,
    /// The URL without credentials, with its schema, for messages.
    pub location: String,
}

/// Parses `postgres://user:password@host:port/database?schema=name&…`
/// (or `postgresql://`). `schema` is this storage's parameter; every other
/// parameter is libpq's (`connect_timeout`, `application_name`, `sslmode`, …).
pub fn parse(url: &str) -> Result<Target> {
    let server =
        url::parse(url).map_err(|e| Error::InvalidArgument(format!("DATABASE_URL {e}")))?;
    let schema = server
        .schema
        .as_deref()
        .unwrap_or(DEFAULT_SCHEMA)
        .to_owned();
    if !is_identifier(&schema) {
        return Err(Error::InvalidArgument(format!(
            "schema '{schema}' in DATABASE_URL is not a valid schema name: use 1 to 63 \
             lowercase letters, digits and '_', starting with a letter or '_'"
        )));
    }
    let location = format!("{}?schema={schema}", server.location);
    Ok(Target {
        server,
        schema,
        location,
    })
}

impl Target {
    /// The connection settings of the sync client, with this storage's
    /// handling of server notices (at DEBUG, not the client's INFO).
    pub fn config(&self) -> postgres::Config {
        let mut config = postgres::Config::from(self.server.config.clone());
        config.notice_callback(|notice| {
            tracing::debug!(
                severity = notice.severity(),
                code = notice.code().code(),
                "PostgreSQL: {}",
                notice.message()
            );
        });
        config
    }
}

/// A schema name this storage accepts: what PostgreSQL would keep as
/// written unquoted, so `psql` users type it as they read it.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// Maps a query error of `operation` into [`Error::Storage`].
pub fn pg(operation: &'static str) -> impl Fn(postgres::Error) -> Error {
    move |e| Error::Storage {
        operation,
        reason: chain(&e),
    }
}

/// What a failed connection attempt of a pool of `pool_size` means, and
/// what to check; never the password.
pub fn connect_error(target: &Target, pool_size: usize, e: &postgres::Error) -> Error {
    Error::Storage {
        operation: "connecting to PostgreSQL",
        reason: target.server.connect_error(e, pool_size),
    }
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
        assert_eq!(t.server.endpoint, "db.example:6543");
        assert_eq!(t.server.config.get_application_name(), Some("x"));
        assert_eq!(t.server.config.get_password(), Some(&b"s3cret"[..]));
        assert!(!format!("{t:?}").contains("s3cret"));
        let d = parse("postgresql://ada@localhost/core")?;
        assert_eq!(
            d.location,
            "postgres://localhost:5432/core?schema=ultracore_es"
        );
        assert_eq!(
            d.server.config.get_connect_timeout(),
            Some(&url::CONNECT_TIMEOUT)
        );
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
            (
                "postgres://u:s3cret@h/db?sslmode=verify_full",
                "sslmode=verify_full",
            ),
            ("postgres://u:s3cret@h:notaport/db", "not a PostgreSQL URL"),
            ("postgres://u:s3cret@h/db?bogus=1", "not a PostgreSQL URL"),
        ] {
            let err = parse(url).unwrap_err().to_string();
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains("s3cret"), "{url}: {err}");
        }
    }
}
