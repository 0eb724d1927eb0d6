//! [`TraceContext`]: the W3C Trace Context (level 1) `traceparent`.
//!
//! ```text
//! traceparent = version "-" trace-id "-" parent-id "-" trace-flags
//!               00      - 32 HEXDIGLC - 16 HEXDIGLC   - 2 HEXDIGLC
//! ```
//!
//! Parsing follows the specification's rules for receivers: lowercase hex
//! only, trace-id and parent-id not all zeros, version `ff` invalid,
//! version `00` exactly 55 characters, and a later version parsed as far
//! as version `00` goes (its first 55 characters, followed by the end or
//! a `-`) so that a newer peer's header still continues the trace.

use std::fmt;

/// A 16-byte trace id, never all zeros once parsed or generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id (the `parent-id` of a `traceparent`), never all zeros
/// once parsed or generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    /// A random id (never all zeros).
    pub fn random() -> Self {
        loop {
            let id: [u8; 16] = rand::random();
            if id != [0; 16] {
                return TraceId(id);
            }
        }
    }

    /// Parses 32 lowercase hex digits, not all zeros.
    pub fn from_hex(hex: &str) -> Result<Self, ParseError> {
        let id = decode_hex::<16>(hex).ok_or(ParseError::TraceId)?;
        if id == [0; 16] {
            return Err(ParseError::TraceId);
        }
        Ok(TraceId(id))
    }

    /// 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl SpanId {
    /// A random id (never all zeros).
    pub fn random() -> Self {
        loop {
            let id: [u8; 8] = rand::random();
            if id != [0; 8] {
                return SpanId(id);
            }
        }
    }

    /// Parses 16 lowercase hex digits, not all zeros.
    pub fn from_hex(hex: &str) -> Result<Self, ParseError> {
        let id = decode_hex::<8>(hex).ok_or(ParseError::ParentId)?;
        if id == [0; 8] {
            return Err(ParseError::ParentId);
        }
        Ok(SpanId(id))
    }

    /// 16 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

/// The sampled bit of `trace-flags`.
pub const SAMPLED: u8 = 0x01;

/// Why a `traceparent` was not accepted. A receiver treats an invalid
/// header as absent (the specification's rule): the runtime then starts a
/// new trace rather than failing the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("traceparent is not `version-traceid-parentid-flags` of the right lengths")]
    Shape,
    #[error("traceparent version is not two lowercase hex digits other than ff")]
    Version,
    #[error("traceparent trace-id is not 32 lowercase hex digits, not all zero")]
    TraceId,
    #[error("traceparent parent-id is not 16 lowercase hex digits, not all zero")]
    ParentId,
    #[error("traceparent trace-flags are not two lowercase hex digits")]
    Flags,
}

/// Where a span sits in a trace: what a `traceparent` carries. `span_id`
/// is the id of the span that sent it (the header's `parent-id`: the
/// parent of whatever the receiver does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `trace-flags`; bit 0 is "sampled". Kept as received (other bits of a
    /// later version are not interpreted).
    pub flags: u8,
}

impl TraceContext {
    /// The header's name, as W3C Trace Context registers it (lowercase).
    pub const HEADER: &'static str = "traceparent";

    /// The start of a new trace: random ids, sampled.
    pub fn new_root() -> Self {
        TraceContext {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            flags: SAMPLED,
        }
    }

    /// A span under this one: same trace and flags, a new span id.
    pub fn child(&self) -> Self {
        TraceContext {
            trace_id: self.trace_id,
            span_id: SpanId::random(),
            flags: self.flags,
        }
    }

    /// Whether the sampled flag is set.
    pub fn is_sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// Parses a `traceparent` value (surrounding spaces and tabs allowed,
    /// as HTTP header values may carry them).
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let v = value.trim_matches([' ', '\t']);
        // version(2) - trace-id(32) - parent-id(16) - flags(2) = 55.
        if v.len() < 55 || !v.is_ascii() {
            return Err(ParseError::Shape);
        }
        let b = v.as_bytes();
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return Err(ParseError::Shape);
        }
        let version = decode_hex::<1>(&v[0..2]).ok_or(ParseError::Version)?[0];
        if version == 0xff {
            return Err(ParseError::Version);
        }
        match version {
            // Version 00 is exactly 55 characters.
            0 if v.len() != 55 => return Err(ParseError::Shape),
            // A later version may append fields, after a `-`.
            0 => {}
            _ if v.len() > 55 && b[55] != b'-' => return Err(ParseError::Shape),
            _ => {}
        }
        let trace_id = TraceId::from_hex(&v[3..35])?;
        let span_id = SpanId::from_hex(&v[36..52])?;
        let flags = decode_hex::<1>(&v[53..55]).ok_or(ParseError::Flags)?[0];
        Ok(TraceContext {
            trace_id,
            span_id,
            flags,
        })
    }

    /// Parses a header value's bytes (`None` when not valid).
    pub fn from_header(value: &[u8]) -> Option<Self> {
        std::str::from_utf8(value)
            .ok()
            .and_then(|s| TraceContext::parse(s).ok())
    }

    /// The `traceparent` value, version `00` (what this code writes,
    /// whatever version it read).
    pub fn to_header(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

impl std::str::FromStr for TraceContext {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceContext::parse(s)
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        let pair = [DIGITS[(b >> 4) as usize], DIGITS[(b & 0xf) as usize]];
        f.write_str(std::str::from_utf8(&pair).map_err(|_| fmt::Error)?)?;
    }
    Ok(())
}

/// `N` bytes from exactly `2N` lowercase hex digits.
fn decode_hex<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let b = hex.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (digit(b[2 * i])? << 4) | digit(b[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's examples (section 3.2.4 of Trace Context level 1).
    const SAMPLED_EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const UNSAMPLED_EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

    #[test]
    fn parses_and_formats_the_specification_examples() {
        let c = TraceContext::parse(SAMPLED_EXAMPLE).unwrap();
        assert_eq!(c.trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(c.span_id.to_hex(), "00f067aa0ba902b7");
        assert!(c.is_sampled());
        assert_eq!(c.to_header(), SAMPLED_EXAMPLE);
        let u = TraceContext::parse(UNSAMPLED_EXAMPLE).unwrap();
        assert!(!u.is_sampled());
        assert_eq!(u.to_string(), UNSAMPLED_EXAMPLE);
        assert_eq!(
            UNSAMPLED_EXAMPLE.parse::<TraceContext>().unwrap().flags,
            0x00
        );
        assert_eq!(
            TraceContext::parse(&format!(" {SAMPLED_EXAMPLE}\t")),
            Ok(c),
            "optional whitespace around a header value"
        );
    }

    #[test]
    fn rejects_what_the_specification_rejects() {
        let cases = [
            // Uppercase hex.
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                ParseError::TraceId,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
                ParseError::ParentId,
            ),
            (
                "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ParseError::Version,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
                ParseError::Flags,
            ),
            // All-zero ids.
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                ParseError::TraceId,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                ParseError::ParentId,
            ),
            // Version ff is invalid.
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ParseError::Version,
            ),
            // Version 00 with more fields, or too short, or wrong separators.
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                ParseError::Shape,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
                ParseError::Shape,
            ),
            (
                "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ParseError::Shape,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
                ParseError::Shape,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bg-01",
                ParseError::ParentId,
            ),
            ("", ParseError::Shape),
        ];
        for (header, why) in cases {
            assert_eq!(TraceContext::parse(header), Err(why), "{header}");
        }
        assert_eq!(TraceContext::from_header(&[0xff; 55]), None);
    }

    #[test]
    fn a_later_version_is_parsed_as_far_as_version_00_goes() {
        let longer =
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds";
        let c = TraceContext::parse(longer).unwrap();
        assert_eq!(c.trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(c.span_id.to_hex(), "00f067aa0ba902b7");
        assert_eq!(c.flags, 0x01);
        // Written back as version 00.
        assert_eq!(c.to_header(), SAMPLED_EXAMPLE);
        let same_length = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09";
        assert_eq!(TraceContext::parse(same_length).unwrap().flags, 0x09);
        // After the 55 characters of version 00 comes a `-` or nothing.
        assert_eq!(
            TraceContext::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what"),
            Err(ParseError::Shape)
        );
    }

    #[test]
    fn roots_and_children() {
        let root = TraceContext::new_root();
        assert!(root.is_sampled());
        assert_ne!(root.trace_id.0, [0; 16]);
        let child = root.child();
        assert_eq!(child.trace_id, root.trace_id);
        assert_ne!(child.span_id, root.span_id);
        assert_eq!(child.flags, root.flags);
        assert_eq!(TraceContext::parse(&child.to_header()), Ok(child));
        assert_ne!(TraceContext::new_root().trace_id, root.trace_id);
    }
}
