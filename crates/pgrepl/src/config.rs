//! [`Config`]: where and as whom the replication client connects, and
//! with which TLS settings, parsed from a libpq-style URL.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::tls::TlsSettings;

/// How long connecting and logging in may take unless the URL says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`Config::application_name`] defaults to; shows in `pg_stat_replication`.
pub const DEFAULT_APPLICATION_NAME: &str = "ultracore-pgrepl";

/// Where and as whom to connect.
///
/// Built from a libpq-style URL with [`Config::from_url`]. `Debug` never
/// prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Host name or IP address (TCP only; no Unix sockets). With TLS, the
    /// name `sslmode=verify-full` checks the server's certificate against.
    pub host: String,
    /// libpq's `hostaddr`: the address to connect to instead of resolving
    /// `host` (which then only names the server, for TLS).
    pub hostaddr: Option<IpAddr>,
    /// TCP port, 5432 unless the URL has one.
    pub port: u16,
    /// The role to log in as; it needs the REPLICATION attribute.
    pub user: String,
    /// The password, if the server asks for one.
    pub password: Option<String>,
    /// The database whose changes are decoded (logical slots belong to one
    /// database). Defaults to the user name, as in libpq.
    pub dbname: String,
    /// Reported to the server; shows as `application_name` in
    /// `pg_stat_replication` and the server log.
    pub application_name: String,
    /// Limit on TCP connect plus authentication; `None` waits as long as
    /// the operating system does.
    pub connect_timeout: Option<Duration>,
    /// `sslmode` and `sslrootcert`: whether to use TLS and what to check
    /// (see [`crate::tls`]). `prefer` unless the URL says otherwise.
    pub tls: TlsSettings,
}

impl Config {
    /// Parses `postgres://user:password@host:port/dbname?param=value&…`
    /// (`postgresql://` works too). User, password and database name are
    /// percent-decoded; IPv6 hosts go in brackets (`[::1]`).
    ///
    /// Query parameters: `application_name`, `connect_timeout` (seconds,
    /// 0 = none), `user`, `password`, `dbname`, `host`, `hostaddr`, `port`,
    /// `sslmode` (`disable`, `allow`, `prefer`, `require`, `verify-ca`,
    /// `verify-full`; libpq's meanings, see [`crate::tls`]), `sslrootcert`
    /// (a PEM file of CA certificates, or `system`), and `channel_binding`
    /// only as `disable` or `prefer` (SCRAM here never binds to the TLS
    /// channel). Any other parameter is an error, so a typo cannot go
    /// unnoticed.
    pub fn from_url(url: &str) -> Result<Config> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| config("the URL must start with postgres:// or postgresql://"))?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((authority, path)) => (authority, path),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };

        let mut user = None;
        let mut password = None;
        if let Some(userinfo) = userinfo {
            let (u, p) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !u.is_empty() {
                user = Some(percent_decode(u, "user name")?);
            }
            password = p.map(|p| percent_decode(p, "password")).transpose()?;
        }
        let (mut host, mut port) = split_host_port(hostport)?;
        let mut dbname = (!path.is_empty())
            .then(|| percent_decode(path, "database name"))
            .transpose()?;
        let mut application_name = None;
        let mut connect_timeout = Some(DEFAULT_CONNECT_TIMEOUT);
        let mut hostaddr = None;
        let mut sslmode = None;
        let mut sslrootcert = None;

        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(key, "parameter name")?;
            let value = percent_decode(value, "parameter value")?;
            match key.as_str() {
                "application_name" => application_name = Some(value),
                "user" => user = Some(value),
                "password" => password = Some(value),
                "dbname" => dbname = Some(value),
                "host" => host = value,
                "port" => port = parse_port(&value)?,
                "connect_timeout" => {
                    let secs: u64 = value.parse().map_err(|_| {
                        config(format!(
                            "connect_timeout must be whole seconds, not '{value}'"
                        ))
                    })?;
                    connect_timeout = (secs > 0).then(|| Duration::from_secs(secs));
                }
                "hostaddr" => {
                    hostaddr = Some(value.parse::<IpAddr>().map_err(|_| {
                        config(format!("hostaddr must be an IP address, not '{value}'"))
                    })?)
                }
                "sslmode" => sslmode = Some(value),
                "sslrootcert" => sslrootcert = Some(value),
                "channel_binding" => match value.as_str() {
                    "disable" | "prefer" => {}
                    _ => {
                        return Err(config(format!(
                            "channel_binding={value} is not supported by this replication \
                             client (its SCRAM login does not bind to the TLS channel): use \
                             channel_binding=prefer, and sslmode=verify-full to authenticate \
                             the server"
                        )))
                    }
                },
                _ => return Err(config(format!("unknown URL parameter '{key}'"))),
            }
        }

        if host.is_empty() {
            return Err(config(
                "the URL has no host (Unix-domain sockets are not supported; use a TCP host)",
            ));
        }
        if host.contains(',') {
            return Err(config("multiple hosts are not supported"));
        }
        let user = user.ok_or_else(|| config("the URL has no user name"))?;
        let tls = TlsSettings::from_params(sslmode.as_deref(), sslrootcert.as_deref())
            .map_err(|e| config(e.to_string()))?;
        Ok(Config {
            host,
            hostaddr,
            port,
            dbname: dbname.unwrap_or_else(|| user.clone()),
            user,
            password,
            application_name: application_name
                .unwrap_or_else(|| DEFAULT_APPLICATION_NAME.to_owned()),
            connect_timeout,
            tls,
        })
    }

    /// `host:port`, with brackets around an IPv6 address; for messages.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for Config {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Config::from_url(s)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("hostaddr", &self.hostaddr)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("dbname", &self.dbname)
            .field("application_name", &self.application_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

fn config(message: impl Into<String>) -> Error {
    Error::Config(message.into())
}

fn parse_port(text: &str) -> Result<u16> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        // Not echoed: a password with an unencoded '/' or '?' splits the
        // URL early and would land here.
        _ => Err(config(
            "invalid port: a number from 1 to 65535 (percent-encode '/', '?' and '@' in the \
             user name and password)",
        )),
    }
}

fn split_host_port(hostport: &str) -> Result<(String, u16)> {
    const DEFAULT_PORT: u16 = 5432;
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| config("unterminated '[' in the host"))?;
        let port = match after {
            "" => DEFAULT_PORT,
            _ => parse_port(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| config("expected ':port' after ']'"))?,
            )?,
        };
        return Ok((host.to_owned(), port));
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) => Ok((percent_decode(host, "host")?, parse_port(port)?)),
        None => Ok((percent_decode(hostport, "host")?, DEFAULT_PORT)),
    }
}

/// Decodes `%XX` escapes; the result must be UTF-8. `what` names the part
/// of the URL in the error.
pub(crate) fn percent_decode(text: &str, what: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| config(format!("invalid percent-encoding in the {what}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| config(format!("the {what} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_url() {
        let cfg = Config::from_url(
            "postgres://ultra%40core:p%3Ass%2Fw@db.example:6543/my%20db?application_name=relay&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(cfg.host, "db.example");
        assert_eq!(cfg.port, 6543);
        assert_eq!(cfg.user, "ultra@core");
        assert_eq!(cfg.password.as_deref(), Some("p:ss/w"));
        assert_eq!(cfg.dbname, "my db");
        assert_eq!(cfg.application_name, "relay");
        assert_eq!(cfg.connect_timeout, Some(Duration::from_secs(5)));
        assert_eq!(cfg.address(), "db.example:6543");
    }

    #[test]
    fn defaults_follow_libpq() {
        let cfg: Config = "postgresql://alice@127.0.0.1".parse().unwrap();
        assert_eq!(cfg.port, 5432);
        assert_eq!(cfg.dbname, "alice");
        assert_eq!(cfg.password, None);
        assert_eq!(cfg.application_name, DEFAULT_APPLICATION_NAME);
        assert_eq!(cfg.connect_timeout, Some(DEFAULT_CONNECT_TIMEOUT));

        let cfg = Config::from_url("postgres://bob:@[::1]:7000/?sslmode=disable&connect_timeout=0")
            .unwrap();
        assert_eq!(cfg.host, "::1");
        assert_eq!(cfg.port, 7000);
        assert_eq!(cfg.password.as_deref(), Some(""));
        assert_eq!(cfg.dbname, "bob");
        assert_eq!(cfg.connect_timeout, None);
        assert_eq!(cfg.address(), "[::1]:7000");

        let cfg = Config::from_url("postgres://h/db?user=carol&password=x%26y&port=1").unwrap();
        assert_eq!(cfg.user, "carol");
        assert_eq!(cfg.password.as_deref(), Some("x&y"));
        assert_eq!(cfg.port, 1);
    }

    #[test]
    fn rejects_what_it_cannot_honour() {
        for url in [
            "mysql://u@h/db",
            "postgres://h/db",
            "postgres://u@/db",
            "postgres://u@h:0/db",
            "postgres://u@h:99999/db",
            "postgres://u@h:x/db",
            "postgres://u@h1,h2/db",
            "postgres://u@[::1/db",
            "postgres://u@h/db?sslmode=verify_full",
            "postgres://u@h/db?sslmode=require&sslrootcert=system",
            "postgres://u@h/db?hostaddr=db.example",
            "postgres://u@h/db?sslcert=client.crt",
            "postgres://u@h/db?channel_binding=require",
            "postgres://u@h/db?connect_timeout=soon",
            "postgres://u@h/db?applicaton_name=typo",
            "postgres://u%zz@h/db",
            "postgres://u%ff@h/db",
            "postgres://u@h/db%",
        ] {
            assert!(
                matches!(Config::from_url(url), Err(Error::Config(_))),
                "{url} was accepted"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let cfg = Config::from_url("postgres://u:hunter2secret@h/db").unwrap();
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("hunter2secret"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        let err =
            Config::from_url("postgres://u:hunter2secret@h/db?sslmode=verify-fully").unwrap_err();
        assert!(!err.to_string().contains("hunter2secret"));
        assert!(err.to_string().contains("verify-full"), "{err}");
    }

    #[test]
    fn tls_parameters_follow_libpq() {
        use crate::tls::{RootCerts, SslMode};

        let cfg = Config::from_url("postgres://u@h/db").unwrap();
        assert_eq!(cfg.tls, TlsSettings::default());
        assert_eq!(cfg.tls.mode, SslMode::Prefer);

        let cfg = Config::from_url(
            "postgres://u@db.example/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20dir%2Fca.crt\
             &hostaddr=127.0.0.1",
        )
        .unwrap();
        assert_eq!(cfg.tls.mode, SslMode::VerifyFull);
        assert_eq!(
            cfg.tls.root_cert,
            Some(RootCerts::File("/etc/ca dir/ca.crt".into()))
        );
        assert_eq!(cfg.host, "db.example");
        assert_eq!(cfg.hostaddr, Some([127, 0, 0, 1].into()));

        let cfg = Config::from_url("postgres://u@h/db?sslrootcert=system").unwrap();
        assert_eq!(cfg.tls.mode, SslMode::VerifyFull);
        assert_eq!(cfg.tls.root_cert, Some(RootCerts::System));
        for mode in ["disable", "allow", "prefer", "require", "verify-ca"] {
            let cfg = Config::from_url(&format!(
                "postgres://u@h/db?sslmode={mode}&sslrootcert=/ca.crt"
            ))
            .unwrap();
            assert_eq!(cfg.tls.mode.as_str(), mode);
        }
        // verify-ca checks no name: without its own CA it is refused.
        let e = Config::from_url("postgres://u@h/db?sslmode=verify-ca").unwrap_err();
        assert!(e.to_string().contains("sslrootcert=PATH"), "{e}");
        // A password with an unencoded '/' does not leak through the port.
        let e = Config::from_url("postgres://u:hunter/2secret@h/db").unwrap_err();
        assert!(!e.to_string().contains("hunter"), "{e}");
    }
}
