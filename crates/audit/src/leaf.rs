//! The leaf of one record: the bytes the audit tree commits to.
//!
//! Nothing of a record is left out. Encoding version 1, every integer
//! big-endian, `H` = SHA-256:
//!
//! | field | bytes |
//! |---|---|
//! | tag | the 23 ASCII bytes `ultracore.audit.leaf.v1` |
//! | topic | u16 length ‖ the topic's name as the log names it (UTF-8; on Kafka without the deployment's prefix) |
//! | partition | u32 |
//! | offset | u64 |
//! | timestamp | i64, milliseconds since the epoch |
//! | key | `0x00` (no key) or `0x01` ‖ H(key) |
//! | headers | u32 count ‖ H(for each header in order: u32 length ‖ name ‖ u32 length ‖ value) |
//! | value | u32 length ‖ H(value) |
//! | principal | `0x00` (none) or `0x01` ‖ u16 length ‖ UTF-8: the `principal` of the value when it is an event envelope that names one |
//!
//! The principal is in the value already; it is also spelled out so a leaf
//! alone says who caused the record. The tree hashes a leaf as
//! `SHA-256(0x00 ‖ leaf)` ([`crate::leaf_hash`]).

use sha2::{Digest, Sha256};
use ultracore_log::Record;

/// The version tag every leaf starts with.
pub const LEAF_TAG: &[u8] = b"ultracore.audit.leaf.v1";

/// Why a record has no leaf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafError {
    #[error("the topic name is {0} bytes long; a leaf holds at most 65,535")]
    TopicTooLong(usize),
    #[error("the value is {0} bytes long; a leaf records lengths up to 4 GiB")]
    ValueTooLong(usize),
}

/// The `principal` of an envelope, if the value is one that names one.
fn principal(value: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Principal {
        principal: Option<String>,
    }
    // Only JSON objects can be envelopes; skip the parse for anything else.
    if value.first() != Some(&b'{') {
        return None;
    }
    serde_json::from_slice::<Principal>(value)
        .ok()?
        .principal
        .filter(|p| p.len() <= usize::from(u16::MAX))
}

/// The leaf of `record` (see the module docs for the encoding).
pub fn leaf(record: &Record) -> Result<Vec<u8>, LeafError> {
    leaf_at(record, record.offset)
}

/// The leaf `record` would have at `offset` (how a verifier tells a record
/// that moved from one that changed).
pub fn leaf_at(record: &Record, offset: u64) -> Result<Vec<u8>, LeafError> {
    let topic = record.topic.as_bytes();
    let topic_len = u16::try_from(topic.len()).map_err(|_| LeafError::TopicTooLong(topic.len()))?;
    let value_len = u32::try_from(record.value.len())
        .map_err(|_| LeafError::ValueTooLong(record.value.len()))?;
    let mut out =
        Vec::with_capacity(LEAF_TAG.len() + 2 + topic.len() + 4 + 8 + 8 + 33 + 36 + 36 + 40);
    out.extend_from_slice(LEAF_TAG);
    out.extend_from_slice(&topic_len.to_be_bytes());
    out.extend_from_slice(topic);
    out.extend_from_slice(&record.partition.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&record.timestamp.to_be_bytes());
    match &record.key {
        None => out.push(0),
        Some(key) => {
            out.push(1);
            out.extend_from_slice(&Sha256::digest(key));
        }
    }
    let mut headers = Sha256::new();
    for h in &record.headers {
        headers.update((h.key.len() as u32).to_be_bytes());
        headers.update(h.key.as_bytes());
        headers.update((h.value.len() as u32).to_be_bytes());
        headers.update(&h.value);
    }
    out.extend_from_slice(&(record.headers.len() as u32).to_be_bytes());
    out.extend_from_slice(&headers.finalize());
    out.extend_from_slice(&value_len.to_be_bytes());
    out.extend_from_slice(&Sha256::digest(&record.value));
    match principal(&record.value) {
        None => out.push(0),
        Some(p) => {
            out.push(1);
            out.extend_from_slice(&(p.len() as u16).to_be_bytes());
            out.extend_from_slice(p.as_bytes());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ultracore_log::Header;

    fn record() -> Record {
        Record {
            topic: "esg-portfolio-events".into(),
            partition: 3,
            offset: 42,
            timestamp: 1_700_000_000_123,
            key: Some(b"pf-1".to_vec()),
            value: br#"{"event_type":"x","principal":"k7dq2mzx4hfa","payload":{}}"#.to_vec(),
            headers: vec![Header::new("trace", "abc")],
        }
    }

    #[test]
    fn the_encoding_is_as_documented() {
        let r = record();
        let mut want = Vec::new();
        want.extend_from_slice(b"ultracore.audit.leaf.v1");
        want.extend_from_slice(&20u16.to_be_bytes());
        want.extend_from_slice(b"esg-portfolio-events");
        want.extend_from_slice(&3u32.to_be_bytes());
        want.extend_from_slice(&42u64.to_be_bytes());
        want.extend_from_slice(&1_700_000_000_123i64.to_be_bytes());
        want.push(1);
        want.extend_from_slice(&Sha256::digest(b"pf-1"));
        want.extend_from_slice(&1u32.to_be_bytes());
        let mut h = Sha256::new();
        h.update(5u32.to_be_bytes());
        h.update(b"trace");
        h.update(3u32.to_be_bytes());
        h.update(b"abc");
        want.extend_from_slice(&h.finalize());
        want.extend_from_slice(&(r.value.len() as u32).to_be_bytes());
        want.extend_from_slice(&Sha256::digest(&r.value));
        want.push(1);
        want.extend_from_slice(&12u16.to_be_bytes());
        want.extend_from_slice(b"k7dq2mzx4hfa");
        assert_eq!(leaf(&r).unwrap(), want);
    }

    #[test]
    fn every_part_of_a_record_changes_its_leaf() {
        let base = leaf(&record()).unwrap();
        type Change = Box<dyn Fn(&mut Record)>;
        let changes: Vec<(&str, Change)> = vec![
            ("topic", Box::new(|r| r.topic.push('x'))),
            ("partition", Box::new(|r| r.partition += 1)),
            ("offset", Box::new(|r| r.offset += 1)),
            ("timestamp", Box::new(|r| r.timestamp += 1)),
            ("key", Box::new(|r| r.key = Some(b"pf-2".to_vec()))),
            ("no key", Box::new(|r| r.key = None)),
            ("header value", Box::new(|r| r.headers[0].value[0] ^= 1)),
            ("header name", Box::new(|r| r.headers[0].key.push('x'))),
            (
                "header added",
                Box::new(|r| r.headers.push(Header::new("a", ""))),
            ),
            ("header removed", Box::new(|r| r.headers.clear())),
            ("value bit", Box::new(|r| r.value[30] ^= 1)),
            ("value grown", Box::new(|r| r.value.push(b' '))),
            (
                "principal",
                Box::new(|r| {
                    r.value = String::from_utf8(r.value.clone())
                        .unwrap()
                        .replace("k7dq2mzx4hfa", "k7dq2mzx4hfb")
                        .into_bytes()
                }),
            ),
        ];
        for (what, change) in changes {
            let mut r = record();
            change(&mut r);
            assert_ne!(leaf(&r).unwrap(), base, "{what} left the leaf unchanged");
        }
    }

    #[test]
    fn values_that_are_not_envelopes_have_no_principal() {
        let mut r = record();
        r.value = b"not json".to_vec();
        assert_eq!(*leaf(&r).unwrap().last().unwrap(), 0);
        r.value = br#"{"principal": null}"#.to_vec();
        assert_eq!(*leaf(&r).unwrap().last().unwrap(), 0);
    }
}
