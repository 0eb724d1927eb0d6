use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use postgres_protocol::message::frontend;

use crate::connection::ReplicationConnection;
use crate::error::{Error, Result};
use crate::lsn::Lsn;
use crate::pgoutput;
use crate::reader::Reader;
use crate::wire::{self, tag};

/// 2000-01-01 00:00:00 UTC, PostgreSQL's epoch, in microseconds since the
/// Unix epoch: add it to a `*_micros` timestamp of this crate to get Unix
/// time.
pub const POSTGRES_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// One message of the replication stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamMessage {
    /// WAL data: one decoded pgoutput message.
    XLogData {
        /// Where this message's data starts in the WAL (0 for messages
        /// without a WAL position of their own, like `Relation`).
        wal_start: Lsn,
        /// The protocol's "current end of WAL"; for logical replication
        /// PostgreSQL sends `wal_start` here again.
        wal_end: Lsn,
        /// When the server sent it, microseconds since 2000-01-01 UTC.
        server_time_micros: i64,
        /// The decoded change or transaction boundary.
        message: pgoutput::Message,
    },
    /// The server's heartbeat.
    Keepalive {
        /// The server's current end of WAL.
        wal_end: Lsn,
        /// When the server sent it, microseconds since 2000-01-01 UTC.
        server_time_micros: i64,
        /// The server wants a status update now; without one before
        /// `wal_sender_timeout` (60 s by default) it drops the connection.
        reply_requested: bool,
    },
}

/// A running logical replication stream (the connection in COPY BOTH mode).
///
/// Receive with [`ReplicationStream::recv`]; report progress with
/// [`ReplicationStream::send_status`]. What the flushed position confirms
/// is final: the server may delete the WAL before it, and a restarted
/// stream never delivers a transaction whose commit ends at or before it.
/// So confirm a transaction's `Commit::end_lsn` only after its changes
/// are durably handled downstream.
#[derive(Debug)]
pub struct ReplicationStream {
    conn: ReplicationConnection,
    /// The server sent CopyDone: it will send no more WAL.
    server_done: bool,
    /// The socket reached end of file.
    eof: bool,
    /// We sent CopyDone.
    client_done: bool,
}

impl ReplicationStream {
    pub(crate) fn new(conn: ReplicationConnection) -> Self {
        ReplicationStream {
            conn,
            server_done: false,
            eof: false,
            client_done: false,
        }
    }

    /// The next message, or `None` once the server has ended the stream
    /// (CopyDone) or closed the connection between messages; after `None`
    /// every call returns `None`, and the caller reconnects from its last
    /// confirmed LSN.
    ///
    /// Cancel-safe: it can be a branch of `tokio::select!`. Partial input
    /// stays buffered in the stream, so a dropped call loses no message.
    /// A status update whose sending was cancelled is finished first.
    ///
    /// The server sends a keepalive on its own only after half of
    /// `wal_sender_timeout` without hearing from the client; a consumer
    /// that wants to notice a dead server sooner sends status updates with
    /// `reply_requested` and a time limit on the answer.
    ///
    /// Errors: [`Error::Db`] when the server ends the stream with an error
    /// (slot dropped, server shutting down: SQLSTATE 57P01);
    /// [`Error::Malformed`] when a message does not decode (that message
    /// is skipped, the stream stays usable, but a consumer should not
    /// confirm past it); I/O errors.
    pub async fn recv(&mut self) -> Result<Option<StreamMessage>> {
        loop {
            if self.server_done || self.eof {
                return Ok(None);
            }
            // A flush resumes where a cancelled one stopped, so this is as
            // cancel-safe as the read below.
            self.conn.wire().flush().await?;
            let Some(frame) = self.conn.wire().read_frame().await? else {
                self.eof = true;
                return Ok(None);
            };
            match frame.tag {
                tag::COPY_DATA => return parse_copy_data(&frame.body).map(Some),
                tag::COPY_DONE => self.server_done = true,
                tag::ERROR_RESPONSE => {
                    return Err(Error::Db(Box::new(wire::parse_error_fields(&frame.body)?)))
                }
                tag::NOTICE_RESPONSE => wire::log_notice(&frame.body),
                tag::PARAMETER_STATUS => self.conn.note_parameter(&frame.body)?,
                other => {
                    return Err(Error::Protocol(format!(
                        "unexpected message '{}' in the replication stream",
                        char::from(other)
                    )))
                }
            }
        }
    }

    /// Sends a standby status update: the positions written, flushed
    /// (durably handled: the slot's `confirmed_flush_lsn` becomes this)
    /// and applied, and whether the server should answer with a keepalive
    /// at once. The timestamp is the local clock.
    ///
    /// Cancel-safe in the sense that matters for the protocol: the update
    /// is buffered whole before anything is sent, and a cancelled send is
    /// finished by the next `send_status` or `recv`.
    pub async fn send_status(
        &mut self,
        written: Lsn,
        flushed: Lsn,
        applied: Lsn,
        reply_requested: bool,
    ) -> Result<()> {
        let mut body = BytesMut::with_capacity(34);
        body.put_u8(b'r');
        body.put_u64(written.0);
        body.put_u64(flushed.0);
        body.put_u64(applied.0);
        body.put_i64(postgres_now_micros());
        body.put_u8(u8::from(reply_requested));
        frontend::CopyData::new(body)?.write(self.conn.wire().out());
        self.conn.wire().flush().await
    }

    /// Ends the stream (CopyDone), waits for the server to finish it and
    /// returns the connection, ready for commands again (to drop the slot,
    /// say). Changes still in flight are discarded unread.
    ///
    /// Not cancel-safe: a dropped call leaves the connection unusable.
    pub async fn stop(mut self) -> Result<ReplicationConnection> {
        if self.eof {
            return Err(Error::Closed("before the replication stream was stopped"));
        }
        if !self.client_done {
            frontend::copy_done(self.conn.wire().out());
            self.client_done = true;
        }
        self.conn.wire().flush().await?;
        let mut error = None;
        loop {
            let frame = self
                .conn
                .wire()
                .expect_frame("while stopping replication")
                .await?;
            match frame.tag {
                tag::COPY_DATA | tag::ROW_DESCRIPTION | tag::DATA_ROW | tag::COMMAND_COMPLETE => {}
                tag::COPY_DONE => self.server_done = true,
                tag::ERROR_RESPONSE => {
                    error = Some(Error::Db(Box::new(wire::parse_error_fields(&frame.body)?)))
                }
                tag::NOTICE_RESPONSE => wire::log_notice(&frame.body),
                tag::PARAMETER_STATUS => self.conn.note_parameter(&frame.body)?,
                tag::READY_FOR_QUERY => {
                    self.conn.set_idle();
                    return match error {
                        Some(error) => Err(error),
                        None => Ok(self.conn),
                    };
                }
                other => {
                    return Err(Error::Protocol(format!(
                        "unexpected message '{}' while stopping replication",
                        char::from(other)
                    )))
                }
            }
        }
    }
}

/// Parses the body of a CopyData message from the server.
fn parse_copy_data(body: &[u8]) -> Result<StreamMessage> {
    let mut r = Reader::new(body, "replication message");
    match r.u8()? {
        b'w' => {
            let mut r = Reader::new(body, "XLogData");
            r.u8()?;
            let wal_start = Lsn(r.u64()?);
            let wal_end = Lsn(r.u64()?);
            let server_time_micros = r.i64()?;
            Ok(StreamMessage::XLogData {
                wal_start,
                wal_end,
                server_time_micros,
                message: pgoutput::decode(r.rest())?,
            })
        }
        b'k' => {
            let mut r = Reader::new(body, "primary keepalive");
            r.u8()?;
            let message = StreamMessage::Keepalive {
                wal_end: Lsn(r.u64()?),
                server_time_micros: r.i64()?,
                reply_requested: r.u8()? != 0,
            };
            r.finish()?;
            Ok(message)
        }
        _ => Err(r.malformed()),
    }
}

/// Now, in microseconds since 2000-01-01 UTC.
fn postgres_now_micros() -> i64 {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    unix.saturating_sub(POSTGRES_EPOCH_UNIX_MICROS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::pgoutput::Message;
    use crate::wire::testing::*;
    use std::future::Future;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    fn xlog(start: u64, end: u64, time: i64, payload: &[u8]) -> Vec<u8> {
        let mut body = vec![b'w'];
        body.extend_from_slice(&start.to_be_bytes());
        body.extend_from_slice(&end.to_be_bytes());
        body.extend_from_slice(&time.to_be_bytes());
        body.extend_from_slice(payload);
        body
    }

    fn keepalive(end: u64, time: i64, reply: bool) -> Vec<u8> {
        let mut body = vec![b'k'];
        body.extend_from_slice(&end.to_be_bytes());
        body.extend_from_slice(&time.to_be_bytes());
        body.push(u8::from(reply));
        body
    }

    fn begin() -> Vec<u8> {
        let mut payload = vec![b'B'];
        payload.extend_from_slice(&0x10u64.to_be_bytes());
        payload.extend_from_slice(&7i64.to_be_bytes());
        payload.extend_from_slice(&99u32.to_be_bytes());
        payload
    }

    #[test]
    fn copy_data_parses() {
        let parsed = parse_copy_data(&xlog(1, 2, 3, &begin())).unwrap();
        assert_eq!(
            parsed,
            StreamMessage::XLogData {
                wal_start: Lsn(1),
                wal_end: Lsn(2),
                server_time_micros: 3,
                message: Message::Begin {
                    final_lsn: Lsn(0x10),
                    commit_time_micros: 7,
                    xid: 99
                },
            }
        );
        assert_eq!(
            parse_copy_data(&keepalive(5, 6, true)).unwrap(),
            StreamMessage::Keepalive {
                wal_end: Lsn(5),
                server_time_micros: 6,
                reply_requested: true
            }
        );
        for body in [xlog(1, 2, 3, &begin()), keepalive(5, 6, false)] {
            for cut in 0..body.len() {
                assert!(parse_copy_data(&body[..cut]).is_err(), "cut at {cut}");
            }
        }
        assert!(parse_copy_data(b"x").is_err());
    }

    #[test]
    fn clock_is_after_2020_in_postgres_time() {
        // 2020-01-01 is 631,152,000 s after 2000-01-01.
        assert!(postgres_now_micros() > 631_152_000_000_000);
    }

    async fn streaming() -> (ReplicationStream, DuplexStream) {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let cfg = Config::from_url("postgres://alice@localhost/shop").unwrap();
        let mut ok = message(tag::AUTHENTICATION, &0i32.to_be_bytes());
        ok.extend(ready_for_query());
        ok.extend(message(tag::COPY_BOTH_RESPONSE, &[0, 0, 0]));
        server.write_all(&ok).await.unwrap();
        let conn = ReplicationConnection::handshake(client, &cfg)
            .await
            .unwrap();
        let stream = conn.start("s", Lsn(0x10), &["p"]).await.unwrap();
        // Discard the startup packet and the START_REPLICATION query.
        let len = server.read_i32().await.unwrap();
        let mut skip = vec![0; usize::try_from(len - 4).unwrap()];
        server.read_exact(&mut skip).await.unwrap();
        assert_eq!(server.read_u8().await.unwrap(), b'Q');
        let len = server.read_i32().await.unwrap();
        let mut skip = vec![0; usize::try_from(len - 4).unwrap()];
        server.read_exact(&mut skip).await.unwrap();
        (stream, server)
    }

    #[tokio::test]
    async fn recv_is_cancel_safe() {
        let (mut stream, mut server) = streaming().await;
        let whole = message(tag::COPY_DATA, &xlog(1, 2, 3, &begin()));
        for split in 1..whole.len() {
            server.write_all(&whole[..split]).await.unwrap();
            {
                let mut recv = std::pin::pin!(stream.recv());
                let polled =
                    std::future::poll_fn(|cx| std::task::Poll::Ready(recv.as_mut().poll(cx)));
                assert!(polled.await.is_pending(), "split {split}");
            }
            server.write_all(&whole[split..]).await.unwrap();
            match stream.recv().await.unwrap() {
                Some(StreamMessage::XLogData { wal_start, .. }) => assert_eq!(wal_start, Lsn(1)),
                other => panic!("split {split}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn status_update_layout() {
        let (mut stream, mut server) = streaming().await;
        stream
            .send_status(Lsn(0x30), Lsn(0x20), Lsn(0x10), true)
            .await
            .unwrap();
        assert_eq!(server.read_u8().await.unwrap(), b'd');
        assert_eq!(server.read_i32().await.unwrap(), 4 + 34);
        assert_eq!(server.read_u8().await.unwrap(), b'r');
        assert_eq!(server.read_u64().await.unwrap(), 0x30);
        assert_eq!(server.read_u64().await.unwrap(), 0x20);
        assert_eq!(server.read_u64().await.unwrap(), 0x10);
        let sent_at = server.read_i64().await.unwrap();
        assert!((sent_at - postgres_now_micros()).abs() < 60_000_000);
        assert_eq!(server.read_u8().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn errors_copy_done_and_stop() {
        let (mut stream, mut server) = streaming().await;
        let mut reply = message(tag::COPY_DATA, &keepalive(9, 0, false));
        reply.extend(message(tag::COPY_DATA, b"w"));
        reply.extend(message(tag::COPY_DATA, &keepalive(10, 0, false)));
        reply.extend(error_response(
            "57P01",
            "terminating connection due to administrator command",
            None,
        ));
        server.write_all(&reply).await.unwrap();
        assert!(matches!(
            stream.recv().await,
            Ok(Some(StreamMessage::Keepalive { .. }))
        ));
        // A malformed message is an error, and the stream continues after it.
        assert!(matches!(
            stream.recv().await,
            Err(Error::Malformed {
                what: "XLogData",
                ..
            })
        ));
        assert!(matches!(
            stream.recv().await,
            Ok(Some(StreamMessage::Keepalive { .. }))
        ));
        assert_eq!(stream.recv().await.unwrap_err().code(), Some("57P01"));

        // stop(): CopyDone both ways, then the connection is idle again.
        let (stream, mut server) = streaming().await;
        let server = tokio::spawn(async move {
            assert_eq!(server.read_u8().await.unwrap(), b'c');
            assert_eq!(server.read_i32().await.unwrap(), 4);
            let mut reply = message(tag::COPY_DATA, &keepalive(9, 0, false));
            reply.extend(message(tag::COPY_DONE, b""));
            reply.extend(message(tag::COMMAND_COMPLETE, b"START_STREAMING\0"));
            reply.extend(ready_for_query());
            server.write_all(&reply).await.unwrap();
            server
        });
        let conn = stream.stop().await.unwrap();
        let _server = server.await.unwrap();
        drop(conn);

        // The server ending the stream: None, and None again.
        let (mut stream, mut server) = streaming().await;
        server
            .write_all(&message(tag::COPY_DONE, b""))
            .await
            .unwrap();
        assert_eq!(stream.recv().await.unwrap(), None);
        assert_eq!(stream.recv().await.unwrap(), None);

        // The server hanging up between messages: None.
        let (mut stream, server) = streaming().await;
        drop(server);
        assert_eq!(stream.recv().await.unwrap(), None);
    }
}
