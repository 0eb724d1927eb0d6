//! The on-disk record frame.
//!
//! ```text
//! u32 LE  body length
//! u32 LE  CRC32C of the body
//! body:   u64 LE offset
//!         i64 LE timestamp (ms since the epoch)
//!         i32 LE key length (-1: no key), key bytes
//!         u32 LE value length, value bytes
//!         u16 LE header count, then per header:
//!             u16 LE key length, key (UTF-8), u32 LE value length, value
//! ```
//!
//! Every frame carries its own checksum so a torn or flipped record is
//! detected before any of its bytes are returned as data.

use ultracore_log::{Header, Record};

/// Bytes before the body: length and CRC.
pub const FRAME_HEADER: usize = 8;
/// The smallest body: offset, timestamp, key length, value length, header count.
pub const MIN_BODY: usize = 8 + 8 + 4 + 4 + 2;
/// Largest value accepted by an append (the body may add keys and headers).
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;
/// Largest body a frame may claim; anything larger is corruption.
pub const MAX_BODY: usize = MAX_RECORD_BYTES + 1024 * 1024;

/// Why bytes are not a valid frame. Cheap to build: no allocation on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The buffer ends inside the frame: a torn tail, or more bytes to read.
    Incomplete,
    /// The length field is impossible.
    BadLength(u32),
    /// The body does not match its checksum.
    Checksum,
    /// The checksum matched but the body's fields do not add up.
    Malformed,
}

impl FrameError {
    pub fn describe(self) -> String {
        match self {
            FrameError::Incomplete => "frame is cut short".into(),
            FrameError::BadLength(n) => format!("impossible frame length {n}"),
            FrameError::Checksum => "CRC32C mismatch".into(),
            FrameError::Malformed => "record fields overrun the frame".into(),
        }
    }
}

/// Encoded size of a record's frame.
pub fn frame_len(key: Option<&[u8]>, value: &[u8], headers: &[Header]) -> usize {
    FRAME_HEADER
        + MIN_BODY
        + key.map_or(0, <[u8]>::len)
        + value.len()
        + headers
            .iter()
            .map(|h| 2 + h.key.len() + 4 + h.value.len())
            .sum::<usize>()
}

/// Appends one frame to `buf`.
pub fn encode(
    buf: &mut Vec<u8>,
    offset: u64,
    timestamp: i64,
    key: Option<&[u8]>,
    value: &[u8],
    headers: &[Header],
) {
    let start = buf.len();
    let total = frame_len(key, value, headers);
    buf.reserve(total);
    buf.extend_from_slice(&((total - FRAME_HEADER) as u32).to_le_bytes());
    buf.extend_from_slice(&[0; 4]); // CRC, filled in below
    buf.extend_from_slice(&offset.to_le_bytes());
    buf.extend_from_slice(&timestamp.to_le_bytes());
    match key {
        Some(k) => {
            buf.extend_from_slice(&(k.len() as i32).to_le_bytes());
            buf.extend_from_slice(k);
        }
        None => buf.extend_from_slice(&(-1i32).to_le_bytes()),
    }
    buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
    buf.extend_from_slice(value);
    buf.extend_from_slice(&(headers.len() as u16).to_le_bytes());
    for h in headers {
        buf.extend_from_slice(&(h.key.len() as u16).to_le_bytes());
        buf.extend_from_slice(h.key.as_bytes());
        buf.extend_from_slice(&(h.value.len() as u32).to_le_bytes());
        buf.extend_from_slice(&h.value);
    }
    let crc = crc32c::crc32c(&buf[start + FRAME_HEADER..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A frame whose checksum was verified, not yet turned into a [`Record`].
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub offset: u64,
    pub timestamp: i64,
    /// Total bytes of the frame including its 8-byte header.
    pub len: usize,
    body: &'a [u8],
}

/// Reads the frame at the start of `buf`.
pub fn decode(buf: &[u8]) -> Result<Frame<'_>, FrameError> {
    if buf.len() < FRAME_HEADER {
        return Err(FrameError::Incomplete);
    }
    let body_len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if (body_len as usize) < MIN_BODY || body_len as usize > MAX_BODY {
        return Err(FrameError::BadLength(body_len));
    }
    let end = FRAME_HEADER + body_len as usize;
    if buf.len() < end {
        return Err(FrameError::Incomplete);
    }
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let body = &buf[FRAME_HEADER..end];
    if crc32c::crc32c(body) != crc {
        return Err(FrameError::Checksum);
    }
    let offset = u64::from_le_bytes(body[0..8].try_into().map_err(|_| FrameError::Malformed)?);
    let timestamp = i64::from_le_bytes(body[8..16].try_into().map_err(|_| FrameError::Malformed)?);
    Ok(Frame {
        offset,
        timestamp,
        len: end,
        body,
    })
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let end = self.pos.checked_add(n).ok_or(FrameError::Malformed)?;
        let s = self.buf.get(self.pos..end).ok_or(FrameError::Malformed)?;
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, FrameError> {
        Ok(u16::from_le_bytes(
            self.take(2)?
                .try_into()
                .map_err(|_| FrameError::Malformed)?,
        ))
    }
    fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_le_bytes(
            self.take(4)?
                .try_into()
                .map_err(|_| FrameError::Malformed)?,
        ))
    }
}

impl Frame<'_> {
    /// Turns the verified frame into a record of `topic`/`partition`.
    pub fn to_record(self, topic: &str, partition: u32) -> Result<Record, FrameError> {
        let mut c = Cursor {
            buf: self.body,
            pos: 16,
        };
        let key_len = c.u32()? as i32;
        let key = if key_len < 0 {
            None
        } else {
            Some(c.take(key_len as usize)?.to_vec())
        };
        let value_len = c.u32()? as usize;
        let value = c.take(value_len)?.to_vec();
        let count = c.u16()?;
        let mut headers = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let klen = c.u16()? as usize;
            let k = std::str::from_utf8(c.take(klen)?)
                .map_err(|_| FrameError::Malformed)?
                .to_owned();
            let vlen = c.u32()? as usize;
            headers.push(Header {
                key: k,
                value: c.take(vlen)?.to_vec(),
            });
        }
        if c.pos != self.body.len() {
            return Err(FrameError::Malformed);
        }
        Ok(Record {
            topic: topic.to_owned(),
            partition,
            offset: self.offset,
            timestamp: self.timestamp,
            key,
            value,
            headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> impl Strategy<Value = Header> {
        (
            "[a-z.]{0,12}",
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(key, value)| Header { key, value })
    }

    proptest! {
        #[test]
        fn round_trip(
            offset in any::<u64>(),
            timestamp in any::<i64>(),
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            value in proptest::collection::vec(any::<u8>(), 0..2048),
            headers in proptest::collection::vec(header(), 0..4),
        ) {
            let mut buf = Vec::new();
            encode(&mut buf, offset, timestamp, key.as_deref(), &value, &headers);
            prop_assert_eq!(buf.len(), frame_len(key.as_deref(), &value, &headers));
            let frame = decode(&buf).unwrap();
            prop_assert_eq!(frame.len, buf.len());
            let r = frame.to_record("t", 3).unwrap();
            prop_assert_eq!(r.offset, offset);
            prop_assert_eq!(r.timestamp, timestamp);
            prop_assert_eq!(r.key, key);
            prop_assert_eq!(r.value, value);
            prop_assert_eq!(r.headers, headers);
        }

        #[test]
        fn any_truncation_is_incomplete(value in proptest::collection::vec(any::<u8>(), 0..512), cut in any::<prop::sample::Index>()) {
            let mut buf = Vec::new();
            encode(&mut buf, 7, 1, Some(b"k"), &value, &[]);
            let cut = cut.index(buf.len());
            prop_assert!(decode(&buf[..cut]).is_err());
        }

        #[test]
        fn any_bit_flip_is_detected(value in proptest::collection::vec(any::<u8>(), 1..512), bit in any::<prop::sample::Index>()) {
            let mut buf = Vec::new();
            encode(&mut buf, 7, 1, Some(b"k"), &value, &[Header::new("h", "v")]);
            let bit = bit.index(buf.len() * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode(&buf).is_err(), "flipped bit {} went unnoticed", bit);
        }
    }

    #[test]
    fn empty_and_maximal_records() {
        let mut buf = Vec::new();
        encode(&mut buf, u64::from(u32::MAX) + 5, -1, None, &[], &[]);
        let r = decode(&buf).unwrap().to_record("t", 0).unwrap();
        assert_eq!(
            (r.offset, r.key, r.value.len()),
            (u64::from(u32::MAX) + 5, None, 0)
        );
        let big = vec![1u8; MAX_RECORD_BYTES];
        let mut buf = Vec::new();
        encode(&mut buf, 0, 0, Some(b""), &big, &[]);
        let r = decode(&buf).unwrap().to_record("t", 0).unwrap();
        assert_eq!((r.key, r.value.len()), (Some(Vec::new()), MAX_RECORD_BYTES));
    }
}
