//! A bounds-checked cursor over a message body.
//!
//! Every read checks the remaining length and returns
//! [`Error::Malformed`] instead of panicking, so truncated or hostile
//! input can never bring the process down.

use crate::error::{Error, Result};

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A cursor over `buf`; `what` names the message in errors.
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    pub(crate) fn malformed(&self) -> Error {
        Error::Malformed {
            what: self.what,
            offset: self.pos,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Fails unless every byte was consumed: trailing bytes mean the
    /// message does not have the layout we think it has.
    pub(crate) fn finish(&self) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.malformed())
        }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.malformed())?;
        let slice = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.malformed())?;
        self.pos = end;
        Ok(slice)
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let slice = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        slice
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let slice = self.bytes(N)?;
        // `bytes(N)` returned exactly N bytes, so this conversion cannot fail;
        // mapping the impossible error keeps the code free of panics anyway.
        slice.try_into().map_err(|_| self.malformed())
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A count that must not be negative (PostgreSQL sends counts as int16).
    pub(crate) fn count16(&mut self) -> Result<usize> {
        let at = self.pos;
        let n = self.i16()?;
        usize::try_from(n).map_err(|_| Error::Malformed {
            what: self.what,
            offset: at,
        })
    }

    /// A NUL-terminated string as raw bytes (without the NUL).
    pub(crate) fn cstr_bytes(&mut self) -> Result<&'a [u8]> {
        let rest = self.buf.get(self.pos..).ok_or_else(|| self.malformed())?;
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.malformed())?;
        let s = rest.get(..len).ok_or_else(|| self.malformed())?;
        self.pos += len + 1;
        Ok(s)
    }

    /// A NUL-terminated UTF-8 string.
    pub(crate) fn cstr(&mut self) -> Result<&'a str> {
        let at = self.pos;
        let bytes = self.cstr_bytes()?;
        std::str::from_utf8(bytes).map_err(|_| Error::Malformed {
            what: self.what,
            offset: at,
        })
    }

    /// `n` bytes that must be UTF-8.
    pub(crate) fn str(&mut self, n: usize) -> Result<&'a str> {
        let at = self.pos;
        let bytes = self.bytes(n)?;
        std::str::from_utf8(bytes).map_err(|_| Error::Malformed {
            what: self.what,
            offset: at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let mut r = Reader::new(&[0, 1, b'a', 0, 7], "test");
        assert_eq!(r.i16().unwrap(), 1);
        assert_eq!(r.cstr().unwrap(), "a");
        assert!(matches!(
            r.i32(),
            Err(Error::Malformed {
                what: "test",
                offset: 4
            })
        ));
        assert_eq!(r.u8().unwrap(), 7);
        assert!(r.u8().is_err());
        assert!(r.finish().is_ok());
        assert_eq!(r.rest(), b"");
    }

    #[test]
    fn unterminated_and_invalid_strings_fail() {
        assert!(Reader::new(b"abc", "t").cstr().is_err());
        assert!(Reader::new(&[0xff, 0], "t").cstr().is_err());
        assert!(Reader::new(&[0xff, 0xfe], "t").str(2).is_err());
        assert!(Reader::new(&[0xff, 0xff], "t").count16().is_err());
        assert!(Reader::new(&[1, 2], "t").bytes(usize::MAX).is_err());
        assert!(Reader::new(&[1, 2], "t").finish().is_err());
    }
}
