//! Message framing on the socket and the backend messages every phase shares.
//!
//! A PostgreSQL message (after startup) is a type byte, a big-endian `i32`
//! length that counts itself but not the type byte, and the body. [`Wire`]
//! keeps partial input and unsent output in buffers it owns, which is what
//! makes [`Wire::read_frame`] cancel-safe and lets a cancelled
//! [`Wire::flush`] be resumed.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{DbError, Error, Result};
use crate::reader::Reader;

/// Backend message types this crate handles.
pub(crate) mod tag {
    pub const AUTHENTICATION: u8 = b'R';
    pub const BACKEND_KEY_DATA: u8 = b'K';
    pub const COMMAND_COMPLETE: u8 = b'C';
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const COPY_IN_RESPONSE: u8 = b'G';
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    pub const DATA_ROW: u8 = b'D';
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    pub const ERROR_RESPONSE: u8 = b'E';
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    pub const NOTICE_RESPONSE: u8 = b'N';
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    pub const PARAMETER_STATUS: u8 = b'S';
    pub const READY_FOR_QUERY: u8 = b'Z';
    pub const ROW_DESCRIPTION: u8 = b'T';
}

/// The largest message accepted: PostgreSQL cannot build a bigger one
/// (its allocations stop at 1 GiB), so a larger length is corruption, and
/// buffering it would only exhaust memory.
const MAX_MESSAGE_LEN: usize = (1 << 30) + (1 << 20);

/// How much free buffer space to offer each socket read.
const READ_CHUNK: usize = 64 * 1024;

/// A byte stream the client can speak the protocol over: a `TcpStream`,
/// or anything else (a TLS or Unix-socket stream) passed to
/// [`crate::ReplicationConnection::handshake`].
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Transport for T {}

/// One complete backend message.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) tag: u8,
    pub(crate) body: Bytes,
}

pub(crate) struct Wire {
    io: Box<dyn Transport>,
    read_buf: BytesMut,
    write_buf: BytesMut,
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wire")
            .field("buffered_in", &self.read_buf.len())
            .field("buffered_out", &self.write_buf.len())
            .finish_non_exhaustive()
    }
}

impl Wire {
    pub(crate) fn new(io: Box<dyn Transport>) -> Self {
        Wire {
            io,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            write_buf: BytesMut::with_capacity(1024),
        }
    }

    /// Where frontend messages are written before [`Wire::flush`] sends them.
    pub(crate) fn out(&mut self) -> &mut BytesMut {
        &mut self.write_buf
    }

    /// Appends one frontend message built by `write` (a
    /// `postgres_protocol::message::frontend` function). If it fails (a
    /// string with a NUL byte), the half-written message is removed, so
    /// nothing malformed is ever sent.
    pub(crate) fn write_message(
        &mut self,
        what: &str,
        write: impl FnOnce(&mut BytesMut) -> std::io::Result<()>,
    ) -> Result<()> {
        let len = self.write_buf.len();
        write(&mut self.write_buf).map_err(|err| {
            self.write_buf.truncate(len);
            Error::Config(format!("the {what} cannot be sent: {err}"))
        })
    }

    /// The next complete message, or `None` if the server closed the
    /// connection between messages.
    ///
    /// Cancel-safe: bytes read from the socket go into `read_buf` at once,
    /// and a frame is taken out of it only when complete, in code with no
    /// `.await` in between. A future dropped at the `.await` has consumed
    /// nothing that the next call will not see.
    pub(crate) async fn read_frame(&mut self) -> Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(Some(frame));
            }
            if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 4 {
                self.read_buf.reserve(READ_CHUNK);
            }
            let n = self.io.read_buf(&mut self.read_buf).await?;
            if n == 0 {
                return if self.read_buf.is_empty() {
                    Ok(None)
                } else {
                    Err(Error::Closed("in the middle of a message"))
                };
            }
        }
    }

    /// Like [`Wire::read_frame`], but a closed connection is an error.
    pub(crate) async fn expect_frame(&mut self, during: &'static str) -> Result<Frame> {
        self.read_frame().await?.ok_or(Error::Closed(during))
    }

    fn take_frame(&mut self) -> Result<Option<Frame>> {
        let Some(header) = self.read_buf.get(..5) else {
            return Ok(None);
        };
        let mut header = Reader::new(header, "message header");
        let tag = header.u8()?;
        let len = header.i32()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|len| (4..=MAX_MESSAGE_LEN).contains(len))
            .ok_or(Error::Malformed {
                what: "message length",
                offset: 1,
            })?;
        let total = 1 + len;
        if self.read_buf.len() < total {
            // One allocation for a large message instead of many doublings.
            self.read_buf.reserve(total - self.read_buf.len());
            return Ok(None);
        }
        let mut frame = self.read_buf.split_to(total);
        frame.advance(5);
        Ok(Some(Frame {
            tag,
            body: frame.freeze(),
        }))
    }

    /// Sends everything written to [`Wire::out`].
    ///
    /// A cancelled flush leaves the bytes the socket has not accepted in
    /// the buffer, and the next flush sends them first, so a message is
    /// never half-sent and then forgotten (which would desynchronize the
    /// protocol).
    pub(crate) async fn flush(&mut self) -> Result<()> {
        while !self.write_buf.is_empty() {
            let n = self.io.write_buf(&mut self.write_buf).await?;
            if n == 0 {
                return Err(Error::Io(std::io::ErrorKind::WriteZero.into()));
            }
        }
        self.io.flush().await?;
        Ok(())
    }
}

/// Parses the fields of an `ErrorResponse` or `NoticeResponse`.
pub(crate) fn parse_error_fields(body: &[u8]) -> Result<DbError> {
    let mut r = Reader::new(body, "ErrorResponse");
    let mut localized_severity = None;
    let mut severity = None;
    let mut code = None;
    let mut message = None;
    let mut detail = None;
    let mut hint = None;
    loop {
        let field = r.u8()?;
        if field == 0 {
            break;
        }
        // Server messages are in the client encoding (UTF-8, requested at
        // startup); be lenient with anything else rather than lose the error.
        let value = String::from_utf8_lossy(r.cstr_bytes()?).into_owned();
        match field {
            b'S' => localized_severity = Some(value),
            b'V' => severity = Some(value),
            b'C' => code = Some(value),
            b'M' => message = Some(value),
            b'D' => detail = Some(value),
            b'H' => hint = Some(value),
            _ => {}
        }
    }
    Ok(DbError {
        severity: severity
            .or(localized_severity)
            .unwrap_or_else(|| "ERROR".to_owned()),
        code: code.unwrap_or_else(|| "XX000".to_owned()),
        message: message.unwrap_or_default(),
        detail,
        hint,
    })
}

/// Logs a `NoticeResponse`; notices never change what a call returns.
pub(crate) fn log_notice(body: &[u8]) {
    match parse_error_fields(body) {
        Ok(notice) if notice.severity == "WARNING" => {
            tracing::warn!(code = %notice.code, detail = ?notice.detail, "PostgreSQL: {}", notice.message);
        }
        Ok(notice) => {
            tracing::debug!(severity = %notice.severity, code = %notice.code, "PostgreSQL: {}", notice.message);
        }
        Err(err) => tracing::debug!(error = %err, "unreadable notice from PostgreSQL"),
    }
}

/// Parses a `ParameterStatus` into (name, value).
pub(crate) fn parse_parameter_status(body: &[u8]) -> Result<(String, String)> {
    let mut r = Reader::new(body, "ParameterStatus");
    let name = r.cstr()?.to_owned();
    let value = r.cstr()?.to_owned();
    Ok((name, value))
}

/// Parses a `DataRow` of text-format columns.
pub(crate) fn parse_data_row(body: &[u8]) -> Result<Vec<Option<String>>> {
    let mut r = Reader::new(body, "DataRow");
    let n = r.count16()?;
    let mut row = Vec::with_capacity(n.min(r.remaining() / 4));
    for _ in 0..n {
        let len = r.i32()?;
        if len < 0 {
            row.push(None);
        } else {
            let len = usize::try_from(len).map_err(|_| r.malformed())?;
            row.push(Some(r.str(len)?.to_owned()));
        }
    }
    r.finish()?;
    Ok(row)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builders for backend messages, for the unit tests that play server.

    use bytes::{BufMut, BytesMut};

    pub(crate) fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        out.put_u8(tag);
        out.put_i32(i32::try_from(body.len() + 4).unwrap());
        out.put_slice(body);
        out.to_vec()
    }

    pub(crate) fn error_response(code: &str, text: &str, hint: Option<&str>) -> Vec<u8> {
        let mut body = Vec::new();
        for (field, value) in [(b'S', "ERROR"), (b'V', "ERROR"), (b'C', code), (b'M', text)] {
            body.push(field);
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        if let Some(hint) = hint {
            body.push(b'H');
            body.extend_from_slice(hint.as_bytes());
            body.push(0);
        }
        body.push(0);
        message(super::tag::ERROR_RESPONSE, &body)
    }

    pub(crate) fn ready_for_query() -> Vec<u8> {
        message(super::tag::READY_FOR_QUERY, b"I")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use std::future::Future;

    async fn frames_of(chunks: Vec<Vec<u8>>) -> Result<Vec<Frame>> {
        let (client, mut server) = tokio::io::duplex(16);
        tokio::spawn(async move {
            for chunk in chunks {
                server.write_all(&chunk).await.unwrap();
            }
        });
        let mut wire = Wire::new(Box::new(client));
        let mut frames = Vec::new();
        while let Some(frame) = wire.read_frame().await? {
            frames.push(frame);
        }
        Ok(frames)
    }

    #[tokio::test]
    async fn frames_split_across_reads_reassemble() {
        let mut bytes = message(b'Z', b"I");
        bytes.extend(message(b'd', &[7; 100]));
        bytes.extend(message(b'c', b""));
        // One byte at a time: every boundary is a partial frame once.
        let chunks = bytes.iter().map(|b| vec![*b]).collect();
        let frames = frames_of(chunks).await.unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!((frames[0].tag, &frames[0].body[..]), (b'Z', &b"I"[..]));
        assert_eq!(frames[1].body.len(), 100);
        assert_eq!((frames[2].tag, frames[2].body.len()), (b'c', 0));
    }

    #[tokio::test]
    async fn truncated_and_impossible_frames_are_errors() {
        let mut truncated = message(b'd', &[1; 10]);
        truncated.truncate(8);
        assert!(matches!(
            frames_of(vec![truncated]).await,
            Err(Error::Closed(_))
        ));

        let bad_len = vec![b'd', 0, 0, 0, 3];
        assert!(matches!(
            frames_of(vec![bad_len]).await,
            Err(Error::Malformed {
                what: "message length",
                ..
            })
        ));
        let huge = vec![b'd', 0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            frames_of(vec![huge]).await,
            Err(Error::Malformed { .. })
        ));
    }

    #[tokio::test]
    async fn a_cancelled_read_loses_no_bytes() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut wire = Wire::new(Box::new(client));
        let whole = message(b'd', b"hello world");
        server.write_all(&whole[..7]).await.unwrap();
        // Poll once: the read takes the partial frame off the socket and
        // returns Pending; then the future is dropped, as `select!` does.
        {
            let mut read = std::pin::pin!(wire.read_frame());
            let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(read.as_mut().poll(cx)));
            assert!(polled.await.is_pending());
        }
        server.write_all(&whole[7..]).await.unwrap();
        let frame = wire.read_frame().await.unwrap().unwrap();
        assert_eq!(&frame.body[..], b"hello world");
    }

    #[test]
    fn error_fields_parse() {
        let raw = error_response(
            "55000",
            "logical decoding requires wal_level >= logical",
            None,
        );
        let err = parse_error_fields(&raw[5..]).unwrap();
        assert_eq!(err.code, "55000");
        assert_eq!(err.severity, "ERROR");
        assert_eq!(
            err.message,
            "logical decoding requires wal_level >= logical"
        );
        for cut in 0..raw.len() - 5 {
            assert!(
                parse_error_fields(&raw[5..5 + cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn data_rows_parse_and_truncations_fail() {
        let mut body = vec![0, 3];
        body.extend_from_slice(&2i32.to_be_bytes());
        body.extend_from_slice(b"hi");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(
            parse_data_row(&body).unwrap(),
            vec![Some("hi".to_owned()), None, Some(String::new())]
        );
        for cut in 0..body.len() {
            assert!(parse_data_row(&body[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = body.clone();
        trailing.push(0);
        assert!(parse_data_row(&trailing).is_err());
        assert!(parse_data_row(&[0x80, 0]).is_err());
    }
}
