//! Decoding hand-built messages, laid out as PostgreSQL's `proto.c` writes them.

use super::*;
use crate::error::Error;
use proptest::prelude::*;

/// Builds messages the way PostgreSQL's `proto.c` writes them.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn new(kind: u8) -> Self {
        Msg(vec![kind])
    }
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn i16(mut self, v: i16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn cstr(mut self, s: &str) -> Self {
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        self
    }
    fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    /// TupleData from (kind, text) pairs.
    fn tuple(mut self, values: &[Option<Option<&str>>]) -> Self {
        self = self.i16(i16::try_from(values.len()).unwrap());
        for value in values {
            self = match value {
                None => self.u8(b'u'),
                Some(None) => self.u8(b'n'),
                Some(Some(text)) => self
                    .u8(b't')
                    .i32(i32::try_from(text.len()).unwrap())
                    .raw(text.as_bytes()),
            };
        }
        self
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// Every strict prefix of a valid message must fail to decode, and
/// so must the message with a byte appended.
fn assert_truncations_fail(bytes: &[u8]) {
    for cut in 0..bytes.len() {
        match decode(&bytes[..cut]) {
            Err(Error::Malformed { .. }) => {}
            other => panic!("prefix of {cut} bytes decoded as {other:?}"),
        }
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(decode(&longer).is_err(), "trailing byte accepted");
}

fn samples() -> Vec<(Vec<u8>, Message)> {
    vec![
        (
            Msg::new(b'B')
                .u64(0x16_B374_D848)
                .i64(760_000_000_123_456)
                .u32(731)
                .0,
            Message::Begin {
                final_lsn: Lsn(0x16_B374_D848),
                commit_time_micros: 760_000_000_123_456,
                xid: 731,
            },
        ),
        (
            Msg::new(b'C').u8(0).u64(0x100).u64(0x1_0000_0128).i64(-5).0,
            Message::Commit {
                flags: 0,
                commit_lsn: Lsn(0x100),
                end_lsn: Lsn(0x1_0000_0128),
                commit_time_micros: -5,
            },
        ),
        (
            Msg::new(b'O').u64(42).cstr("node_a").0,
            Message::Origin {
                commit_lsn: Lsn(42),
                name: "node_a".into(),
            },
        ),
        (
            Msg::new(b'R')
                .u32(16_384)
                .cstr("public")
                .cstr("accounts")
                .u8(b'f')
                .i16(3)
                .u8(1)
                .cstr("id")
                .u32(20)
                .i32(-1)
                .u8(0)
                .cstr("owner")
                .u32(25)
                .i32(-1)
                .u8(0)
                .cstr("balance")
                .u32(1700)
                .i32(0x000C_0006)
                .0,
            Message::Relation(Relation {
                id: 16_384,
                namespace: "public".into(),
                name: "accounts".into(),
                replica_identity: b'f',
                columns: vec![
                    Column {
                        key: true,
                        name: "id".into(),
                        type_oid: 20,
                        type_modifier: -1,
                    },
                    Column {
                        key: false,
                        name: "owner".into(),
                        type_oid: 25,
                        type_modifier: -1,
                    },
                    Column {
                        key: false,
                        name: "balance".into(),
                        type_oid: 1700,
                        type_modifier: 0x000C_0006,
                    },
                ],
            }),
        ),
        (
            Msg::new(b'R')
                .u32(1)
                .cstr("")
                .cstr("empty")
                .u8(b'n')
                .i16(0)
                .0,
            Message::Relation(Relation {
                id: 1,
                namespace: String::new(),
                name: "empty".into(),
                replica_identity: b'n',
                columns: vec![],
            }),
        ),
        (
            Msg::new(b'Y').u32(90_000).cstr("public").cstr("mood").0,
            Message::Type {
                id: 90_000,
                namespace: "public".into(),
                name: "mood".into(),
            },
        ),
        (
            Msg::new(b'I')
                .u32(16_384)
                .u8(b'N')
                .tuple(&[
                    Some(Some("1")),
                    Some(None),
                    Some(Some("Zoë 🚀")),
                    Some(Some("")),
                ])
                .0,
            Message::Insert {
                relation_id: 16_384,
                new: vec![text("1"), Value::Null, text("Zoë 🚀"), text("")],
            },
        ),
        (
            Msg::new(b'U')
                .u32(7)
                .u8(b'N')
                .tuple(&[Some(Some("1")), None])
                .0,
            Message::Update {
                relation_id: 7,
                old: None,
                key_only: false,
                new: vec![text("1"), Value::UnchangedToast],
            },
        ),
        (
            Msg::new(b'U')
                .u32(7)
                .u8(b'K')
                .tuple(&[Some(Some("1")), Some(None)])
                .u8(b'N')
                .tuple(&[Some(Some("2")), Some(Some("x"))])
                .0,
            Message::Update {
                relation_id: 7,
                old: Some(vec![text("1"), Value::Null]),
                key_only: true,
                new: vec![text("2"), text("x")],
            },
        ),
        (
            Msg::new(b'U')
                .u32(7)
                .u8(b'O')
                .tuple(&[Some(Some("1")), Some(Some("old"))])
                .u8(b'N')
                .tuple(&[Some(Some("1")), Some(Some("new"))])
                .0,
            Message::Update {
                relation_id: 7,
                old: Some(vec![text("1"), text("old")]),
                key_only: false,
                new: vec![text("1"), text("new")],
            },
        ),
        (
            Msg::new(b'D')
                .u32(7)
                .u8(b'K')
                .tuple(&[Some(Some("1")), Some(None)])
                .0,
            Message::Delete {
                relation_id: 7,
                old: vec![text("1"), Value::Null],
                key_only: true,
            },
        ),
        (
            Msg::new(b'D')
                .u32(7)
                .u8(b'O')
                .tuple(&[Some(Some("1")), Some(Some("x"))])
                .0,
            Message::Delete {
                relation_id: 7,
                old: vec![text("1"), text("x")],
                key_only: false,
            },
        ),
        (
            Msg::new(b'T').u32(2).u8(3).u32(10).u32(11).0,
            Message::Truncate {
                cascade: true,
                restart_identity: true,
                relation_ids: vec![10, 11],
            },
        ),
        (
            Msg::new(b'T').u32(0).u8(0).0,
            Message::Truncate {
                cascade: false,
                restart_identity: false,
                relation_ids: vec![],
            },
        ),
        (
            Msg::new(b'M')
                .u8(1)
                .u64(99)
                .cstr("ultracore")
                .u32(3)
                .raw(&[0, 0xff, 1])
                .0,
            Message::Message {
                transactional: true,
                lsn: Lsn(99),
                prefix: "ultracore".into(),
                content: vec![0, 0xff, 1],
            },
        ),
    ]
}

#[test]
fn decodes_every_message_kind() {
    for (bytes, expected) in samples() {
        assert_eq!(decode(&bytes).unwrap(), expected);
    }
}

#[test]
fn truncated_or_extended_messages_are_errors_not_panics() {
    for (bytes, _) in samples() {
        assert_truncations_fail(&bytes);
    }
}

#[test]
fn inconsistent_messages_are_errors() {
    let bad = [
        // Unknown kinds, including protocol 2's stream messages.
        Msg::new(b'Z').0,
        Msg::new(b'S').u32(1).u8(1).0,
        // Insert without 'N', Update/Delete with an unknown tuple marker.
        Msg::new(b'I').u32(1).u8(b'K').tuple(&[]).0,
        Msg::new(b'U').u32(1).u8(b'X').tuple(&[]).0,
        Msg::new(b'U')
            .u32(1)
            .u8(b'K')
            .tuple(&[])
            .u8(b'K')
            .tuple(&[])
            .0,
        Msg::new(b'D').u32(1).u8(b'N').tuple(&[]).0,
        // A negative column count, a negative value length, a binary
        // value (never requested), an unknown value kind.
        Msg::new(b'I').u32(1).u8(b'N').i16(-1).0,
        Msg::new(b'I').u32(1).u8(b'N').i16(1).u8(b't').i32(-1).0,
        Msg::new(b'I').u32(1).u8(b'N').i16(1).u8(b'b').i32(0).0,
        Msg::new(b'I').u32(1).u8(b'N').i16(1).u8(b'?').0,
        // A length past the end, invalid UTF-8 in a value and a name.
        Msg::new(b'I')
            .u32(1)
            .u8(b'N')
            .i16(1)
            .u8(b't')
            .i32(i32::MAX)
            .raw(b"ab")
            .0,
        Msg::new(b'I')
            .u32(1)
            .u8(b'N')
            .i16(1)
            .u8(b't')
            .i32(2)
            .raw(&[0xc3, 0x28])
            .0,
        Msg::new(b'R')
            .u32(1)
            .cstr("public")
            .raw(&[0xff, 0])
            .u8(b'd')
            .i16(0)
            .0,
        // More columns announced than present; a huge truncate count.
        Msg::new(b'R')
            .u32(1)
            .cstr("s")
            .cstr("t")
            .u8(b'd')
            .i16(i16::MAX)
            .0,
        Msg::new(b'T').u32(u32::MAX).u8(0).u32(1).0,
        Msg::new(b'M').u8(0).u64(1).cstr("p").u32(u32::MAX).0,
    ];
    for bytes in bad {
        assert!(
            matches!(decode(&bytes), Err(Error::Malformed { .. })),
            "{bytes:?} decoded as {:?}",
            decode(&bytes)
        );
    }
    assert!(decode(&[]).is_err());
}

#[test]
fn errors_name_the_message_and_offset() {
    let bytes = Msg::new(b'B').u64(1).0;
    let err = decode(&bytes).unwrap_err();
    assert_eq!(err.to_string(), "malformed pgoutput Begin at byte 9");
}

#[test]
fn every_single_byte_corruption_is_survived() {
    for (bytes, _) in samples() {
        for i in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut mutated = bytes.clone();
                mutated[i] ^= flip;
                let _ = decode(&mutated);
            }
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        kind in proptest::sample::select(b"BCORYIUDTMN".to_vec()),
        rest in proptest::collection::vec(any::<u8>(), 0..96),
    ) {
        let mut bytes = vec![kind];
        bytes.extend(rest);
        let _ = decode(&bytes);
    }

    #[test]
    fn overwritten_messages_never_panic(
        sample in any::<proptest::sample::Index>(),
        at in any::<proptest::sample::Index>(),
        bytes in proptest::collection::vec(any::<u8>(), 1..8),
    ) {
        let samples = samples();
        let mut message = samples[sample.index(samples.len())].0.clone();
        let start = at.index(message.len());
        for (i, b) in bytes.into_iter().enumerate() {
            if let Some(slot) = message.get_mut(start + i) {
                *slot = b;
            }
        }
        let _ = decode(&message);
    }
}

#[test]
fn value_as_str() {
    assert_eq!(text("x").as_str(), Some("x"));
    assert_eq!(Value::Null.as_str(), None);
    assert_eq!(Value::UnchangedToast.as_str(), None);
}
