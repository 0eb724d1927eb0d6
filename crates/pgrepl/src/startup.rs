//! The `SSLRequest`, the startup packet and the authentication exchange.
//!
//! Message construction and the SCRAM-SHA-256 / md5 computations come from
//! `postgres-protocol`; this module only drives the exchange.

use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::wire::{self, tag, Wire};

/// How the server had the client prove its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// No password was asked for (`trust`, or `peer`-like methods).
    Trust,
    /// The password was sent as is (`password` in `pg_hba.conf`); without
    /// TLS it crosses the network readable.
    Cleartext,
    /// The salted md5 challenge (`md5`), deprecated by PostgreSQL.
    Md5,
    /// SCRAM-SHA-256 without channel binding; the server's proof of knowing
    /// the password was verified too.
    ScramSha256,
}

/// What the server told us while logging in.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) auth: AuthMethod,
    pub(crate) parameters: Vec<(String, String)>,
    pub(crate) backend_pid: Option<i32>,
}

/// The settings sent in the startup packet besides user and database.
///
/// `replication=database` makes this a walsender for logical replication
/// that also accepts SQL. The rest fix the text form of decoded values, so
/// consumers parse the same output whatever `postgresql.conf` says: UTF-8,
/// ISO dates, timestamps with time zone in UTC, and floats that convert
/// back to the same value (already the default from PostgreSQL 12 on).
const SESSION_SETTINGS: [(&str, &str); 5] = [
    ("replication", "database"),
    ("client_encoding", "UTF8"),
    ("DateStyle", "ISO"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "3"),
];

// Authentication request codes ("AuthenticationXXX" in the protocol docs).
const AUTH_OK: i32 = 0;
const AUTH_KERBEROS_V5: i32 = 2;
const AUTH_CLEARTEXT: i32 = 3;
const AUTH_MD5: i32 = 5;
const AUTH_GSS: i32 = 7;
const AUTH_SSPI: i32 = 9;
const AUTH_SASL: i32 = 10;
const AUTH_SASL_CONTINUE: i32 = 11;
const AUTH_SASL_FINAL: i32 = 12;

/// The `SSLRequest` message: length 8, then the code 80877103 (1234 in the
/// high 16 bits, 5679 in the low), which no protocol version can be.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Asks the server for TLS on a fresh connection: true when it answers
/// `S` (start the TLS handshake now), false for `N` (go on without TLS on
/// the same connection).
///
/// Reads exactly the one answer byte from the raw socket, with no
/// buffering: bytes a man in the middle might put after the `S` would end
/// up in the TLS handshake and fail it, never be read as protocol
/// messages (the CVE-2021-23222 class of bugs).
pub(crate) async fn request_tls<S>(stream: &mut S) -> Result<bool>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.write_all(&SSL_REQUEST).await?;
    stream.flush().await?;
    let answer = match stream.read_u8().await {
        Ok(answer) => answer,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(Error::Closed("instead of answering the request for TLS"))
        }
        Err(e) => return Err(e.into()),
    };
    match answer {
        b'S' => Ok(true),
        b'N' => Ok(false),
        // A server error before any protocol was agreed: very old servers
        // did this; libpq gives up on TLS there too.
        b'E' => Err(Error::Protocol(
            "the server answered the request for TLS with an error; is it PostgreSQL 7.0 or \
             newer?"
                .into(),
        )),
        other => Err(Error::Protocol(format!(
            "the server answered the request for TLS with byte {other:#04x}, not 'S' or 'N': \
             is this port a PostgreSQL server?"
        ))),
    }
}

/// Sends the startup packet, authenticates and reads up to the first
/// `ReadyForQuery`.
pub(crate) async fn startup(wire: &mut Wire, cfg: &Config) -> Result<Session> {
    let mut params = vec![
        ("user", cfg.user.as_str()),
        ("database", cfg.dbname.as_str()),
        ("application_name", cfg.application_name.as_str()),
    ];
    params.extend(SESSION_SETTINGS);
    wire.write_message("connection settings", |out| {
        frontend::startup_message(params, out)
    })?;
    wire.flush().await?;

    let mut session = Session {
        auth: AuthMethod::Trust,
        parameters: Vec::new(),
        backend_pid: None,
    };
    let mut scram: Option<sasl::ScramSha256> = None;
    let mut scram_verified = false;
    loop {
        let frame = wire.expect_frame("during login").await?;
        match frame.tag {
            tag::AUTHENTICATION => {
                let mut r = Reader::new(&frame.body, "Authentication request");
                match r.i32()? {
                    AUTH_OK => {
                        // A server that does not know the password could
                        // skip the SCRAM final message; it must not get past.
                        if scram.is_some() && !scram_verified {
                            return Err(auth_method(
                                cfg,
                                "the server accepted the login without proving it knows the \
                                 password (no SCRAM final message)"
                                    .into(),
                            ));
                        }
                    }
                    AUTH_CLEARTEXT => {
                        session.auth = AuthMethod::Cleartext;
                        let password = password(cfg)?;
                        wire.write_message("password", |out| {
                            frontend::password_message(password.as_bytes(), out)
                        })?;
                        wire.flush().await?;
                    }
                    AUTH_MD5 => {
                        session.auth = AuthMethod::Md5;
                        let salt: [u8; 4] = r.bytes(4)?.try_into().map_err(|_| r.malformed())?;
                        let hash = md5_hash(cfg.user.as_bytes(), password(cfg)?.as_bytes(), salt);
                        wire.write_message("password", |out| {
                            frontend::password_message(hash.as_bytes(), out)
                        })?;
                        wire.flush().await?;
                    }
                    AUTH_SASL => {
                        let mut mechanisms = Vec::new();
                        loop {
                            let mechanism = r.cstr()?;
                            if mechanism.is_empty() {
                                break;
                            }
                            mechanisms.push(mechanism);
                        }
                        if !mechanisms.contains(&sasl::SCRAM_SHA_256) {
                            return Err(auth_method(
                                cfg,
                                format!(
                                    "the server offers only SASL mechanisms {mechanisms:?}; this \
                                     client supports SCRAM-SHA-256 (without channel binding)"
                                ),
                            ));
                        }
                        session.auth = AuthMethod::ScramSha256;
                        // "n": the client does not support channel binding
                        // (with or without TLS), which a server offering
                        // SCRAM-SHA-256-PLUS accepts unless pg_hba says otherwise.
                        let state = sasl::ScramSha256::new(
                            password(cfg)?.as_bytes(),
                            sasl::ChannelBinding::unsupported(),
                        );
                        wire.write_message("SCRAM message", |out| {
                            frontend::sasl_initial_response(
                                sasl::SCRAM_SHA_256,
                                state.message(),
                                out,
                            )
                        })?;
                        scram = Some(state);
                        wire.flush().await?;
                    }
                    AUTH_SASL_CONTINUE => {
                        let state = scram.as_mut().ok_or_else(|| {
                            Error::Protocol("SASL continue without a SASL exchange".into())
                        })?;
                        state
                            .update(r.rest())
                            .map_err(|e| auth_method(cfg, format!("SCRAM exchange failed: {e}")))?;
                        wire.write_message("SCRAM message", |out| {
                            frontend::sasl_response(state.message(), out)
                        })?;
                        wire.flush().await?;
                    }
                    AUTH_SASL_FINAL => {
                        let state = scram.as_mut().ok_or_else(|| {
                            Error::Protocol("SASL final without a SASL exchange".into())
                        })?;
                        // Verifies the server signature: a server that does
                        // not know the password cannot get past this.
                        state.finish(r.rest()).map_err(|e| {
                            auth_method(cfg, format!("the server's SCRAM proof is invalid: {e}"))
                        })?;
                        scram_verified = true;
                    }
                    code @ (AUTH_KERBEROS_V5 | AUTH_GSS | AUTH_SSPI) => {
                        return Err(auth_method(
                            cfg,
                            format!(
                                "the server asks for {} authentication, which this client does \
                                 not support (use scram-sha-256 in pg_hba.conf)",
                                match code {
                                    AUTH_KERBEROS_V5 => "Kerberos V5",
                                    AUTH_GSS => "GSSAPI",
                                    _ => "SSPI",
                                }
                            ),
                        ));
                    }
                    code => {
                        return Err(auth_method(
                            cfg,
                            format!("unsupported authentication request {code}"),
                        ))
                    }
                }
            }
            tag::ERROR_RESPONSE => {
                let db = Box::new(wire::parse_error_fields(&frame.body)?);
                // Class 28 is "invalid authorization specification"; other
                // errors at login (no such database, too many connections)
                // are not about credentials.
                return Err(if db.code.starts_with("28") {
                    Error::Auth {
                        user: cfg.user.clone(),
                        db,
                    }
                } else {
                    Error::Db(db)
                });
            }
            tag::PARAMETER_STATUS => {
                session
                    .parameters
                    .push(wire::parse_parameter_status(&frame.body)?);
            }
            tag::BACKEND_KEY_DATA => {
                session.backend_pid = Some(Reader::new(&frame.body, "BackendKeyData").i32()?);
            }
            tag::NOTICE_RESPONSE => wire::log_notice(&frame.body),
            // Sent only when the client asks for protocol options it does
            // not get; harmless for the 3.0 protocol asked for here.
            tag::NEGOTIATE_PROTOCOL_VERSION => {}
            tag::READY_FOR_QUERY => return Ok(session),
            other => {
                return Err(Error::Protocol(format!(
                    "unexpected message '{}' during login",
                    char::from(other)
                )))
            }
        }
    }
}

fn password(cfg: &Config) -> Result<&str> {
    cfg.password.as_deref().ok_or_else(|| {
        auth_method(
            cfg,
            "the server asks for a password and the connection URL has none".into(),
        )
    })
}

fn auth_method(cfg: &Config, reason: String) -> Error {
    Error::AuthMethod {
        user: cfg.user.clone(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    //! The login paths the test cluster does not offer (it only does
    //! SCRAM), played by a scripted server on an in-memory pipe.

    use super::*;
    use crate::wire::testing::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::task::JoinHandle;

    fn cfg(password: Option<&str>) -> Config {
        let mut cfg = Config::from_url("postgres://alice@localhost/shop").unwrap();
        cfg.password = password.map(str::to_owned);
        cfg
    }

    /// Reads one tagged frontend message: (tag, body).
    async fn read_message(server: &mut DuplexStream) -> (u8, Vec<u8>) {
        let tag = server.read_u8().await.unwrap();
        let len = server.read_i32().await.unwrap();
        let mut body = vec![0; usize::try_from(len - 4).unwrap()];
        server.read_exact(&mut body).await.unwrap();
        (tag, body)
    }

    async fn read_startup(server: &mut DuplexStream) -> Vec<u8> {
        let len = server.read_i32().await.unwrap();
        let mut body = vec![0; usize::try_from(len - 4).unwrap()];
        server.read_exact(&mut body).await.unwrap();
        body
    }

    fn auth(code: i32, extra: &[u8]) -> Vec<u8> {
        let mut body = code.to_be_bytes().to_vec();
        body.extend_from_slice(extra);
        message(tag::AUTHENTICATION, &body)
    }

    fn login_done() -> Vec<u8> {
        let mut out = auth(AUTH_OK, b"");
        out.extend(message(
            tag::PARAMETER_STATUS,
            b"server_version\x0015.4\x00",
        ));
        out.extend(message(tag::BACKEND_KEY_DATA, &[0, 0, 0, 42, 0, 0, 0, 7]));
        out.extend(ready_for_query());
        out
    }

    /// Starts logging in as `cfg` against a scripted server: the login
    /// task, the server's end of the pipe and the startup packet's body.
    async fn begin_login(cfg: Config) -> (JoinHandle<Result<Session>>, DuplexStream, Vec<u8>) {
        let (client, mut server) = tokio::io::duplex(4096);
        let login = tokio::spawn(async move {
            let mut wire = Wire::new(Box::new(client));
            startup(&mut wire, &cfg).await
        });
        let startup = read_startup(&mut server).await;
        (login, server, startup)
    }

    #[tokio::test]
    async fn startup_packet_asks_for_a_logical_replication_session() {
        let (login, mut server, startup) = begin_login(cfg(None)).await;
        assert_eq!(&startup[..4], &0x0003_0000i32.to_be_bytes());
        let text = String::from_utf8(startup[4..].to_vec()).unwrap();
        let fields: Vec<&str> = text.split('\0').collect();
        for pair in [
            ["user", "alice"],
            ["database", "shop"],
            ["replication", "database"],
            ["client_encoding", "UTF8"],
            ["TimeZone", "UTC"],
        ] {
            assert!(
                fields.windows(2).any(|w| w == pair),
                "{pair:?} missing in {fields:?}"
            );
        }
        server.write_all(&login_done()).await.unwrap();
        let session = login.await.unwrap().unwrap();
        assert_eq!(session.auth, AuthMethod::Trust);
        assert_eq!(session.backend_pid, Some(42));
        assert_eq!(
            session.parameters,
            vec![("server_version".to_owned(), "15.4".to_owned())]
        );
    }

    #[tokio::test]
    async fn md5_login_sends_the_salted_hash() {
        let (login, mut server, _) = begin_login(cfg(Some("secret"))).await;
        server
            .write_all(&auth(AUTH_MD5, &[1, 2, 3, 4]))
            .await
            .unwrap();
        let (tag, body) = read_message(&mut server).await;
        assert_eq!(tag, b'p');
        let expected = md5_hash(b"alice", b"secret", [1, 2, 3, 4]);
        assert_eq!(body, [expected.as_bytes(), b"\0"].concat());
        server.write_all(&login_done()).await.unwrap();
        assert_eq!(login.await.unwrap().unwrap().auth, AuthMethod::Md5);
    }

    #[tokio::test]
    async fn cleartext_login_sends_the_password() {
        let (login, mut server, _) = begin_login(cfg(Some("secret"))).await;
        server.write_all(&auth(AUTH_CLEARTEXT, b"")).await.unwrap();
        assert_eq!(
            read_message(&mut server).await,
            (b'p', b"secret\0".to_vec())
        );
        server.write_all(&login_done()).await.unwrap();
        assert_eq!(login.await.unwrap().unwrap().auth, AuthMethod::Cleartext);
    }

    #[tokio::test]
    async fn refusals_are_clear_errors() {
        // A password request without a password.
        let (login, mut server, _) = begin_login(cfg(None)).await;
        server
            .write_all(&auth(AUTH_MD5, &[1, 2, 3, 4]))
            .await
            .unwrap();
        let err = login.await.unwrap().unwrap_err();
        assert!(matches!(err, Error::AuthMethod { .. }), "{err}");
        assert!(err.to_string().contains("has none"), "{err}");

        // Only SCRAM-SHA-256-PLUS offered.
        let (login, mut server, _) = begin_login(cfg(Some("pw"))).await;
        server
            .write_all(&auth(AUTH_SASL, b"SCRAM-SHA-256-PLUS\0\0"))
            .await
            .unwrap();
        let err = login.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("SCRAM-SHA-256-PLUS"), "{err}");

        // SCRAM started, then "OK" without the server's proof.
        let (login, mut server, _) = begin_login(cfg(Some("pw"))).await;
        server
            .write_all(&auth(AUTH_SASL, b"SCRAM-SHA-256\0\0"))
            .await
            .unwrap();
        let (tag, _) = read_message(&mut server).await;
        assert_eq!(tag, b'p');
        server.write_all(&login_done()).await.unwrap();
        let err = login.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("without proving"), "{err}");

        // GSSAPI.
        let (login, mut server, _) = begin_login(cfg(Some("pw"))).await;
        server.write_all(&auth(AUTH_GSS, b"")).await.unwrap();
        let err = login.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("GSSAPI"), "{err}");

        // A wrong password is an Auth error with the server's SQLSTATE;
        // other login errors are Db errors.
        for (code, is_auth) in [("28P01", true), ("28000", true), ("3D000", false)] {
            let (login, mut server, _) = begin_login(cfg(Some("pw"))).await;
            server
                .write_all(&error_response(code, "nope", None))
                .await
                .unwrap();
            let err = login.await.unwrap().unwrap_err();
            assert_eq!(err.code(), Some(code));
            assert_eq!(matches!(err, Error::Auth { .. }), is_auth, "{err}");
        }
    }

    #[tokio::test]
    async fn the_ssl_request_is_eight_bytes_and_the_answer_one() {
        for (answer, expected) in [
            (b'S', Some(true)),
            (b'N', Some(false)),
            (b'E', None),
            (b'H', None),
        ] {
            let (mut client, mut server) = tokio::io::duplex(64);
            let ask = tokio::spawn(async move {
                let offered = request_tls(&mut client).await;
                (offered, client)
            });
            let mut request = [0; 8];
            server.read_exact(&mut request).await.unwrap();
            assert_eq!(i32::from_be_bytes(request[..4].try_into().unwrap()), 8);
            assert_eq!(
                i32::from_be_bytes(request[4..].try_into().unwrap()),
                80877103
            );
            // Whatever follows the answer stays unread, for the TLS handshake.
            server.write_all(&[answer, b'x']).await.unwrap();
            let (offered, mut client) = ask.await.unwrap();
            match expected {
                Some(expected) => assert_eq!(offered.unwrap(), expected),
                None => assert!(matches!(offered, Err(Error::Protocol(_))), "{offered:?}"),
            }
            assert_eq!(client.read_u8().await.unwrap(), b'x');
        }

        let (mut client, server) = tokio::io::duplex(64);
        drop(server);
        assert!(request_tls(&mut client).await.is_err());
    }

    #[tokio::test]
    async fn after_n_the_login_goes_on_in_the_clear_on_the_same_stream() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let login = tokio::spawn(async move {
            assert!(!request_tls(&mut client).await?);
            let mut wire = Wire::new(Box::new(client));
            startup(&mut wire, &cfg(None)).await
        });
        let mut request = [0; 8];
        server.read_exact(&mut request).await.unwrap();
        server.write_all(b"N").await.unwrap();
        let startup = read_startup(&mut server).await;
        assert_eq!(&startup[..4], &0x0003_0000i32.to_be_bytes());
        server.write_all(&login_done()).await.unwrap();
        assert_eq!(login.await.unwrap().unwrap().auth, AuthMethod::Trust);
    }

    #[tokio::test]
    async fn a_server_that_hangs_up_or_babbles_is_an_error() {
        let (login, mut server, _) = begin_login(cfg(None)).await;
        server.write_all(&auth(AUTH_MD5, &[1, 2])).await.unwrap();
        assert!(matches!(login.await.unwrap(), Err(Error::Malformed { .. })));

        let (login, server, _) = begin_login(cfg(None)).await;
        drop(server);
        assert!(matches!(login.await.unwrap(), Err(Error::Closed(_))));
    }
}
