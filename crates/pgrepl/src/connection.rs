//! [`ReplicationConnection`]: opening the connection (TCP, TLS as
//! `sslmode` says, login), then replication commands and simple queries.
//!
//! TLS is negotiated as libpq does it: an `SSLRequest` on the fresh TCP
//! connection, the server's one-byte answer, the TLS handshake over the same
//! socket, and then the startup packet inside TLS. From there the protocol
//! runs over the TLS stream exactly as over TCP ([`Wire`] sees only a byte
//! stream), cancel-safety included.

use std::sync::Arc;

use tokio::net::TcpStream;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::lsn::Lsn;
use crate::startup::{request_tls, startup, AuthMethod};
use crate::stream::ReplicationStream;
use crate::tls::{SslMode, TlsSettings};
use crate::wire::{self, tag, Transport, Wire};
use postgres_protocol::message::frontend;

/// A logical replication connection (`replication=database`): a walsender
/// that takes replication commands and plain SQL.
///
/// Commands run one at a time (`&mut self`). They are not cancel-safe: a
/// call dropped before it returns leaves the connection mid-command, and
/// every later call fails with [`Error::Protocol`]; open a new connection.
#[derive(Debug)]
pub struct ReplicationConnection {
    wire: Wire,
    auth: AuthMethod,
    parameters: Vec<(String, String)>,
    backend_pid: Option<i32>,
    /// The session runs over TLS that [`ReplicationConnection::connect`]
    /// negotiated.
    tls: bool,
    /// Set while a command is in flight; still set at the next call means
    /// the previous one was cancelled or failed half-way.
    busy: bool,
}

/// What `IDENTIFY_SYSTEM` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemInfo {
    /// The cluster's unique system identifier (decimal text, as the server
    /// sends it; a `u64` that does not fit `bigint`).
    pub systemid: String,
    /// The current timeline.
    pub timeline: u32,
    /// The current WAL flush position.
    pub xlogpos: Lsn,
    /// The connected database.
    pub dbname: Option<String>,
}

/// What `CREATE_REPLICATION_SLOT` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSlot {
    /// The slot's name.
    pub slot_name: String,
    /// The first LSN the slot can stream: every transaction committing
    /// after it is decoded, none committed before it is.
    pub consistent_point: Lsn,
    /// The exported snapshot, which sees exactly the data committed before
    /// `consistent_point`. Import it with `SET TRANSACTION SNAPSHOT` in a
    /// `REPEATABLE READ` transaction on an ordinary connection; it stays
    /// importable only until this connection runs its next command.
    pub snapshot_name: Option<String>,
    /// The output plugin, `pgoutput`.
    pub output_plugin: String,
}

impl ReplicationConnection {
    /// Opens a TCP connection (to `cfg.hostaddr`, else `cfg.host`),
    /// negotiates TLS as `cfg.tls` says and logs in, all within
    /// [`Config::connect_timeout`].
    ///
    /// TLS follows libpq's `sslmode` (see [`crate::tls`]): `disable` never;
    /// `allow` without first, and with TLS again if the server refuses that
    /// login; `prefer` with TLS if the server offers it; `require`,
    /// `verify-ca` and `verify-full` with TLS or not at all, checking the
    /// server's certificate as the mode says against `sslrootcert` (else
    /// the system's CAs). A handshake that fails is an error in every mode.
    ///
    /// Authentication: trust, cleartext password, md5 and SCRAM-SHA-256
    /// (without channel binding).
    ///
    /// Errors: [`Error::Connect`] when the TCP connection fails;
    /// [`Error::Tls`] when the server does not offer TLS a mode requires or
    /// the handshake fails (an untrusted certificate, one that does not
    /// name the host), saying what to change; [`Error::Config`] when
    /// `sslrootcert` cannot be read; [`Error::Auth`] when the server
    /// refuses the login (wrong password, no `pg_hba.conf` line for
    /// replication, role without REPLICATION); [`Error::AuthMethod`] when
    /// the client cannot do what the server asks; [`Error::Timeout`].
    pub async fn connect(cfg: &Config) -> Result<Self> {
        let address = cfg.address();
        let login = async {
            match cfg.tls.mode {
                SslMode::Disable => Self::connect_once(cfg, false).await,
                // libpq's allow: TLS only for a server that refuses the
                // login without it (a hostssl-only pg_hba.conf).
                SslMode::Allow => match Self::connect_once(cfg, false).await {
                    Err(Error::Auth { .. }) => Self::connect_once(cfg, true).await,
                    other => other,
                },
                _ => Self::connect_once(cfg, true).await,
            }
        };
        match cfg.connect_timeout {
            Some(after) => tokio::time::timeout(after, login)
                .await
                .map_err(|_| Error::Timeout { address, after })?,
            None => login.await,
        }
    }

    /// One connection attempt, asking for TLS first when `try_tls`.
    async fn connect_once(cfg: &Config, try_tls: bool) -> Result<Self> {
        let address = cfg.address();
        // A bad sslrootcert fails before anything goes to the network.
        let tls_config = try_tls
            .then(|| cfg.tls.client_config())
            .transpose()
            .map_err(|e| Error::Config(e.to_string()))?;
        let connected = match cfg.hostaddr {
            Some(ip) => TcpStream::connect((ip, cfg.port)).await,
            None => TcpStream::connect((cfg.host.as_str(), cfg.port)).await,
        };
        let mut tcp = connected.map_err(|source| Error::Connect {
            address: address.clone(),
            source,
        })?;
        // Standby status updates are small and time-sensitive.
        tcp.set_nodelay(true)?;
        let Some(tls_config) = tls_config else {
            return Self::login(Box::new(tcp), cfg, false).await;
        };
        if !request_tls(&mut tcp).await? {
            if cfg.tls.mode.requires_tls() {
                return Err(Error::Tls {
                    address,
                    reason: cfg.tls.refused(),
                });
            }
            tracing::debug!(
                %address,
                sslmode = %cfg.tls.mode,
                "the server offers no TLS; connecting without"
            );
            return Self::login(Box::new(tcp), cfg, false).await;
        }
        let name = TlsSettings::server_name(&cfg.host).map_err(|e| Error::Config(e.to_string()))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls_config))
            .connect(name, tcp)
            .await
            .map_err(|e| Error::Tls {
                address: address.clone(),
                reason: cfg
                    .tls
                    .explain(&e, &cfg.host)
                    .unwrap_or_else(|| format!("the TLS handshake failed: {e}")),
            })?;
        let session = stream.get_ref().1;
        tracing::debug!(
            %address,
            sslmode = %cfg.tls.mode,
            version = ?session.protocol_version(),
            cipher = ?session.negotiated_cipher_suite().map(|s| s.suite()),
            "TLS established"
        );
        Self::login(Box::new(stream), cfg, true).await
    }

    /// Logs in over an already open byte stream (a TLS stream of your own
    /// making, a Unix-domain socket); `cfg.host`, `hostaddr`, `port`,
    /// `connect_timeout` and `tls` are not used.
    pub async fn handshake(stream: impl Transport, cfg: &Config) -> Result<Self> {
        Self::login(Box::new(stream), cfg, false).await
    }

    async fn login(stream: Box<dyn Transport>, cfg: &Config, tls: bool) -> Result<Self> {
        let mut wire = Wire::new(stream);
        let session = startup(&mut wire, cfg).await?;
        tracing::debug!(
            user = %cfg.user,
            dbname = %cfg.dbname,
            auth = ?session.auth,
            pid = ?session.backend_pid,
            tls,
            "replication connection established"
        );
        Ok(ReplicationConnection {
            wire,
            auth: session.auth,
            parameters: session.parameters,
            backend_pid: session.backend_pid,
            tls,
            busy: false,
        })
    }

    /// The session runs over TLS that [`ReplicationConnection::connect`]
    /// negotiated (false after [`ReplicationConnection::handshake`], which
    /// cannot know what the stream it was given is).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// How the server authenticated this connection.
    pub fn auth_method(&self) -> AuthMethod {
        self.auth
    }

    /// A server parameter reported at login or since (`server_version`,
    /// `server_encoding`, `TimeZone`, …).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The server process id serving this connection (`pg_stat_replication.pid`).
    pub fn backend_pid(&self) -> Option<i32> {
        self.backend_pid
    }

    /// Runs `IDENTIFY_SYSTEM`.
    pub async fn identify_system(&mut self) -> Result<SystemInfo> {
        let rows = self.simple_query("IDENTIFY_SYSTEM").await?;
        let row = single_row(&rows, "IDENTIFY_SYSTEM", 4)?;
        let timeline = required(row, 1, "IDENTIFY_SYSTEM")?;
        Ok(SystemInfo {
            systemid: required(row, 0, "IDENTIFY_SYSTEM")?.to_owned(),
            timeline: timeline.parse().map_err(|_| {
                Error::Protocol(format!("IDENTIFY_SYSTEM returned timeline '{timeline}'"))
            })?,
            xlogpos: required(row, 2, "IDENTIFY_SYSTEM")?.parse()?,
            dbname: row.get(3).cloned().flatten(),
        })
    }

    /// Runs `sql` with the simple query protocol and returns the rows of
    /// every statement in it, each column as text (`None` for NULL).
    ///
    /// On a replication connection this takes replication commands
    /// (`SHOW wal_level`, `IDENTIFY_SYSTEM`, slot commands) and SQL. A
    /// server error is [`Error::Db`] and leaves the connection usable.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        self.begin()?;
        if let Err(err) = self
            .wire
            .write_message("query", |out| frontend::query(sql, out))
        {
            self.busy = false;
            return Err(err);
        }
        self.wire.flush().await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let frame = self.wire.expect_frame("during a query").await?;
            match frame.tag {
                tag::ROW_DESCRIPTION | tag::COMMAND_COMPLETE | tag::EMPTY_QUERY_RESPONSE => {}
                tag::DATA_ROW => rows.push(wire::parse_data_row(&frame.body)?),
                // The server skips the rest of the query and then sends
                // ReadyForQuery: read up to it so the connection stays usable.
                tag::ERROR_RESPONSE => {
                    error = Some(Error::Db(Box::new(wire::parse_error_fields(&frame.body)?)))
                }
                tag::READY_FOR_QUERY => break,
                tag::COPY_BOTH_RESPONSE | tag::COPY_OUT_RESPONSE | tag::COPY_IN_RESPONSE => {
                    // The connection is left inside COPY; `busy` stays set.
                    return Err(Error::Protocol(
                        "the query started a COPY or replication stream; use start() for \
                         START_REPLICATION"
                            .into(),
                    ));
                }
                other => self.other_message(other, &frame.body)?,
            }
        }
        self.busy = false;
        match error {
            Some(error) => Err(error),
            None => Ok(rows),
        }
    }

    /// Creates a logical replication slot for `pgoutput`
    /// (`CREATE_REPLICATION_SLOT slot LOGICAL pgoutput EXPORT_SNAPSHOT`, or
    /// `NOEXPORT_SNAPSHOT`).
    ///
    /// The slot keeps every WAL segment from its position on until changes
    /// are confirmed or the slot is dropped: a forgotten slot fills the
    /// server's disk. Waits for transactions running on the server to end
    /// (a consistent point needs them finished); do not call it while this
    /// process holds an open transaction on another connection.
    ///
    /// Errors: [`Error::Db`] with SQLSTATE 55000 when `wal_level` is not
    /// `logical`, 42710 when the slot exists.
    pub async fn create_logical_slot(
        &mut self,
        slot: &str,
        export_snapshot: bool,
    ) -> Result<CreatedSlot> {
        let snapshot = if export_snapshot {
            "EXPORT_SNAPSHOT"
        } else {
            "NOEXPORT_SNAPSHOT"
        };
        let sql = format!(
            "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput {snapshot}",
            quote_ident(slot)
        );
        let rows = self.simple_query(&sql).await?;
        let row = single_row(&rows, "CREATE_REPLICATION_SLOT", 4)?;
        Ok(CreatedSlot {
            slot_name: required(row, 0, "CREATE_REPLICATION_SLOT")?.to_owned(),
            consistent_point: required(row, 1, "CREATE_REPLICATION_SLOT")?.parse()?,
            snapshot_name: row.get(2).cloned().flatten(),
            output_plugin: row.get(3).cloned().flatten().unwrap_or_default(),
        })
    }

    /// Drops a replication slot (`DROP_REPLICATION_SLOT slot`), releasing
    /// the WAL it holds.
    ///
    /// Errors: [`Error::Db`] with SQLSTATE 42704 when there is no such
    /// slot, 55006 while another connection streams from it (retry once
    /// that walsender has exited).
    pub async fn drop_slot(&mut self, slot: &str) -> Result<()> {
        self.simple_query(&format!("DROP_REPLICATION_SLOT {}", quote_ident(slot)))
            .await?;
        Ok(())
    }

    /// Starts streaming changes of `publications` from `slot`:
    /// `START_REPLICATION SLOT slot LOGICAL start (proto_version '1',
    /// publication_names '…')`.
    ///
    /// The server sends every transaction whose commit ends after both
    /// `start` and the slot's confirmed position, in commit order, each
    /// whole. `Lsn::ZERO` starts at the slot's confirmed position.
    ///
    /// Errors: [`Error::Db`] with SQLSTATE 55000 when `wal_level` is not
    /// `logical`, 42704 for an unknown slot, 55006 when the slot is in use.
    pub async fn start(
        mut self,
        slot: &str,
        start: Lsn,
        publications: &[&str],
    ) -> Result<ReplicationStream> {
        if publications.is_empty() {
            return Err(Error::Config(
                "at least one publication is needed to start replication".into(),
            ));
        }
        let names = publications
            .iter()
            .map(|p| quote_ident(p))
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "START_REPLICATION SLOT {} LOGICAL {start} (proto_version '1', publication_names {})",
            quote_ident(slot),
            quote_literal(&names)
        );
        self.begin()?;
        self.wire
            .write_message("command", |out| frontend::query(&sql, out))?;
        self.wire.flush().await?;
        loop {
            let frame = self.wire.expect_frame("starting replication").await?;
            match frame.tag {
                tag::COPY_BOTH_RESPONSE => {
                    tracing::debug!(slot, %start, ?publications, "logical replication started");
                    return Ok(ReplicationStream::new(self));
                }
                tag::ERROR_RESPONSE => {
                    return Err(Error::Db(Box::new(wire::parse_error_fields(&frame.body)?)))
                }
                tag::ROW_DESCRIPTION | tag::DATA_ROW | tag::COMMAND_COMPLETE => {
                    return Err(Error::Protocol(
                        "START_REPLICATION answered with rows instead of a stream".into(),
                    ))
                }
                other => self.other_message(other, &frame.body)?,
            }
        }
    }

    /// Ends the session politely (`Terminate`) and closes the socket.
    pub async fn close(mut self) -> Result<()> {
        frontend::terminate(self.wire.out());
        self.wire.flush().await
    }

    /// Messages that may arrive at any time outside a stream.
    fn other_message(&mut self, tag: u8, body: &[u8]) -> Result<()> {
        match tag {
            tag::NOTICE_RESPONSE => wire::log_notice(body),
            tag::PARAMETER_STATUS => self.parameters.push(wire::parse_parameter_status(body)?),
            tag::NOTIFICATION_RESPONSE => {}
            other => {
                return Err(Error::Protocol(format!(
                    "unexpected message '{}'",
                    char::from(other)
                )))
            }
        }
        Ok(())
    }

    fn begin(&mut self) -> Result<()> {
        if self.busy {
            return Err(Error::Protocol(
                "an earlier command on this connection did not finish (cancelled, or the \
                 server broke protocol); open a new connection"
                    .into(),
            ));
        }
        self.busy = true;
        Ok(())
    }

    pub(crate) fn wire(&mut self) -> &mut Wire {
        &mut self.wire
    }

    pub(crate) fn note_parameter(&mut self, body: &[u8]) -> Result<()> {
        self.parameters.push(wire::parse_parameter_status(body)?);
        Ok(())
    }

    /// Back to idle after a stream ended with `ReadyForQuery`.
    pub(crate) fn set_idle(&mut self) {
        self.busy = false;
    }
}

fn single_row<'a>(
    rows: &'a [Vec<Option<String>>],
    command: &str,
    columns: usize,
) -> Result<&'a [Option<String>]> {
    match rows {
        [row] if row.len() >= columns => Ok(row),
        _ => Err(Error::Protocol(format!(
            "{command} returned {} rows, expected one with {columns} columns",
            rows.len()
        ))),
    }
}

fn required<'a>(row: &'a [Option<String>], i: usize, command: &str) -> Result<&'a str> {
    row.get(i)
        .and_then(|v| v.as_deref())
        .ok_or_else(|| Error::Protocol(format!("{command} returned NULL in column {}", i + 1)))
}

/// `"name"` with embedded quotes doubled: slot and publication names
/// reach the server exactly as given.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    #[test]
    fn names_are_quoted() {
        assert_eq!(quote_ident("slot_1"), "\"slot_1\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("\"p\",\"it's\""), "'\"p\",\"it''s\"'");
    }

    /// A connection whose server side the test plays; login is trust.
    async fn connected() -> (ReplicationConnection, DuplexStream) {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let cfg = Config::from_url("postgres://alice@localhost/shop").unwrap();
        let mut ok = message(tag::AUTHENTICATION, &0i32.to_be_bytes());
        ok.extend(ready_for_query());
        server.write_all(&ok).await.unwrap();
        let conn = ReplicationConnection::handshake(client, &cfg)
            .await
            .unwrap();
        // Drop the startup packet.
        let len = server.read_i32().await.unwrap();
        let mut startup = vec![0; usize::try_from(len - 4).unwrap()];
        server.read_exact(&mut startup).await.unwrap();
        (conn, server)
    }

    async fn read_query(server: &mut DuplexStream) -> String {
        assert_eq!(server.read_u8().await.unwrap(), b'Q');
        let len = server.read_i32().await.unwrap();
        let mut body = vec![0; usize::try_from(len - 4).unwrap()];
        server.read_exact(&mut body).await.unwrap();
        body.pop();
        String::from_utf8(body).unwrap()
    }

    /// The wal_level check cannot be provoked on a cluster configured for
    /// logical decoding, so the server's answer is played here: the
    /// SQLSTATE, message and hint must reach the caller intact.
    #[tokio::test]
    async fn wal_level_error_keeps_sqlstate_55000() {
        let (conn, mut server) = connected().await;
        let server = tokio::spawn(async move {
            let query = read_query(&mut server).await;
            server
                .write_all(&error_response(
                    "55000",
                    "logical decoding requires wal_level >= logical",
                    Some("Set wal_level to logical and restart the server."),
                ))
                .await
                .unwrap();
            server.write_all(&ready_for_query()).await.unwrap();
            query
        });
        let err = conn.start("s", Lsn::ZERO, &["p"]).await.unwrap_err();
        assert_eq!(
            server.await.unwrap(),
            "START_REPLICATION SLOT \"s\" LOGICAL 0/0 (proto_version '1', publication_names '\"p\"')"
        );
        assert!(err.is_object_not_in_prerequisite_state(), "{err:?}");
        let db = err.db_error().unwrap();
        assert_eq!(db.code, crate::sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE);
        assert_eq!(db.message, "logical decoding requires wal_level >= logical");
        assert_eq!(
            db.hint.as_deref(),
            Some("Set wal_level to logical and restart the server.")
        );

        // The same for slot creation; the connection stays usable after it.
        let (mut conn, mut server) = connected().await;
        let server = tokio::spawn(async move {
            read_query(&mut server).await;
            let mut reply = error_response(
                "55000",
                "logical decoding requires wal_level >= logical",
                None,
            );
            reply.extend(ready_for_query());
            server.write_all(&reply).await.unwrap();
            assert_eq!(read_query(&mut server).await, "SHOW wal_level");
            let mut reply = message(tag::ROW_DESCRIPTION, &[0, 0]);
            reply.extend(message(
                tag::DATA_ROW,
                &[0, 1, 0, 0, 0, 7, b'r', b'e', b'p', b'l', b'i', b'c', b'a'],
            ));
            reply.extend(message(tag::COMMAND_COMPLETE, b"SHOW\0"));
            reply.extend(ready_for_query());
            server.write_all(&reply).await.unwrap();
        });
        let err = conn.create_logical_slot("s", true).await.unwrap_err();
        assert!(err.is_object_not_in_prerequisite_state(), "{err:?}");
        let rows = conn.simple_query("SHOW wal_level").await.unwrap();
        assert_eq!(rows, vec![vec![Some("replica".to_owned())]]);
        server.await.unwrap();
    }
}
