//! Decoder for `pgoutput`, PostgreSQL's built-in logical decoding output
//! plugin, protocol version 1 (what [`crate::ReplicationConnection::start`]
//! asks for): the "Logical Replication Message Formats" chapter of the
//! PostgreSQL documentation.
//!
//! A transaction arrives as `Begin`, then for each table touched a
//! `Relation` (the first time, and again after its schema changes) before
//! its row changes, then `Commit`. Row changes name their table by
//! [`Relation::id`] only, so a consumer keeps the latest `Relation` per id.
//!
//! Column values are in text format, as the type's output function prints
//! them (with the session settings the connection fixes: UTF-8, ISO dates,
//! UTC time zone).

use crate::error::Result;
use crate::lsn::Lsn;
use crate::reader::Reader;

/// One decoded pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A transaction starts.
    Begin {
        /// The LSN of the transaction's commit record.
        final_lsn: Lsn,
        /// Commit time, microseconds since 2000-01-01 00:00 UTC.
        commit_time_micros: i64,
        /// The transaction id.
        xid: u32,
    },
    /// The transaction ends; everything since `Begin` is committed.
    Commit {
        /// Unused by PostgreSQL so far (always 0).
        flags: u8,
        /// The LSN of the commit record.
        commit_lsn: Lsn,
        /// The LSN just past the commit record: confirm this once the
        /// transaction is durably handled, and a restart skips it.
        end_lsn: Lsn,
        /// Commit time, microseconds since 2000-01-01 00:00 UTC.
        commit_time_micros: i64,
    },
    /// The transaction came from another node (replication origin).
    Origin {
        /// The commit LSN on the origin server.
        commit_lsn: Lsn,
        /// The origin's name.
        name: String,
    },
    /// A table's current schema; precedes its first change in a session
    /// and follows every schema change.
    Relation(Relation),
    /// A user-defined type's name, sent before a relation that uses it.
    Type {
        /// The type's OID.
        id: u32,
        /// Its schema; empty for `pg_catalog`.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A row was inserted.
    Insert {
        /// The table, as in [`Relation::id`].
        relation_id: u32,
        /// The new row, one value per column of the relation.
        new: Tuple,
    },
    /// A row was updated.
    Update {
        /// The table, as in [`Relation::id`].
        relation_id: u32,
        /// The old row: only the key columns (`key_only`, when the key
        /// changed) or the whole row (with `REPLICA IDENTITY FULL`); `None`
        /// when neither applies (the key did not change).
        old: Option<Tuple>,
        /// `old` holds only the replica identity columns; the others are
        /// [`Value::Null`].
        key_only: bool,
        /// The new row. Unchanged TOASTed values are [`Value::UnchangedToast`].
        new: Tuple,
    },
    /// A row was deleted.
    Delete {
        /// The table, as in [`Relation::id`].
        relation_id: u32,
        /// The old row: the key columns (`key_only`) or, with `REPLICA
        /// IDENTITY FULL`, the whole row.
        old: Tuple,
        /// `old` holds only the replica identity columns; the others are
        /// [`Value::Null`].
        key_only: bool,
    },
    /// Tables were truncated.
    Truncate {
        /// `TRUNCATE … CASCADE`.
        cascade: bool,
        /// `TRUNCATE … RESTART IDENTITY`.
        restart_identity: bool,
        /// The tables, as in [`Relation::id`].
        relation_ids: Vec<u32>,
    },
    /// A logical decoding message (`pg_logical_emit_message`); sent only
    /// when the stream was started with the `messages` option.
    Message {
        /// Emitted inside a transaction (and delivered with it).
        transactional: bool,
        /// The LSN of the message.
        lsn: Lsn,
        /// The prefix given to `pg_logical_emit_message`.
        prefix: String,
        /// The content, raw bytes.
        content: Vec<u8>,
    },
}

/// A table's schema as pgoutput describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The table's OID; row changes refer to it.
    pub id: u32,
    /// The schema; empty for `pg_catalog`.
    pub namespace: String,
    /// The table name.
    pub name: String,
    /// `relreplident`: `b'd'` default (primary key), `b'n'` nothing,
    /// `b'f'` full (whole old row), `b'i'` a chosen index.
    pub replica_identity: u8,
    /// The published columns, in order; tuple values line up with them.
    pub columns: Vec<Column>,
}

/// One column of a [`Relation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Part of the replica identity (the key).
    pub key: bool,
    /// The column name.
    pub name: String,
    /// The type's OID (e.g. 23 `int4`, 25 `text`, 1184 `timestamptz`).
    pub type_oid: u32,
    /// `atttypmod`, e.g. length or precision; -1 when none.
    pub type_modifier: i32,
}

/// One column value of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A TOASTed value the change did not touch; its value is not sent.
    UnchangedToast,
    /// The value in the type's text format.
    Text(String),
}

impl Value {
    /// The text, if the value has one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            Value::Null | Value::UnchangedToast => None,
        }
    }
}

/// A row: one [`Value`] per column of its [`Relation`].
pub type Tuple = Vec<Value>;

/// Decodes one pgoutput message (the payload of an `XLogData`).
///
/// Truncated, overlong or inconsistent input is an
/// [`Error::Malformed`](crate::Error::Malformed) naming the message and the
/// byte offset; it never panics. Messages of later protocol versions
/// (streamed and two-phase transactions) are malformed here: the stream is
/// started with version 1, which has none.
pub fn decode(bytes: &[u8]) -> Result<Message> {
    let mut r = Reader::new(bytes, "pgoutput message");
    let kind = r.u8()?;
    let message = match kind {
        b'B' => {
            let mut r = Reader::new(bytes, "pgoutput Begin");
            r.u8()?;
            let message = Message::Begin {
                final_lsn: Lsn(r.u64()?),
                commit_time_micros: r.i64()?,
                xid: r.u32()?,
            };
            r.finish()?;
            message
        }
        b'C' => {
            let mut r = Reader::new(bytes, "pgoutput Commit");
            r.u8()?;
            let message = Message::Commit {
                flags: r.u8()?,
                commit_lsn: Lsn(r.u64()?),
                end_lsn: Lsn(r.u64()?),
                commit_time_micros: r.i64()?,
            };
            r.finish()?;
            message
        }
        b'O' => {
            let mut r = Reader::new(bytes, "pgoutput Origin");
            r.u8()?;
            let message = Message::Origin {
                commit_lsn: Lsn(r.u64()?),
                name: r.cstr()?.to_owned(),
            };
            r.finish()?;
            message
        }
        b'R' => {
            let mut r = Reader::new(bytes, "pgoutput Relation");
            r.u8()?;
            let id = r.u32()?;
            let namespace = r.cstr()?.to_owned();
            let name = r.cstr()?.to_owned();
            let replica_identity = r.u8()?;
            let n = r.count16()?;
            // Each column takes at least 10 bytes: never reserve more than
            // the input could hold.
            let mut columns = Vec::with_capacity(n.min(r.remaining() / 10));
            for _ in 0..n {
                columns.push(Column {
                    key: r.u8()? & 1 != 0,
                    name: r.cstr()?.to_owned(),
                    type_oid: r.u32()?,
                    type_modifier: r.i32()?,
                });
            }
            r.finish()?;
            Message::Relation(Relation {
                id,
                namespace,
                name,
                replica_identity,
                columns,
            })
        }
        b'Y' => {
            let mut r = Reader::new(bytes, "pgoutput Type");
            r.u8()?;
            let message = Message::Type {
                id: r.u32()?,
                namespace: r.cstr()?.to_owned(),
                name: r.cstr()?.to_owned(),
            };
            r.finish()?;
            message
        }
        b'I' => {
            let mut r = Reader::new(bytes, "pgoutput Insert");
            r.u8()?;
            let relation_id = r.u32()?;
            if r.u8()? != b'N' {
                return Err(r.malformed());
            }
            let new = tuple(&mut r)?;
            r.finish()?;
            Message::Insert { relation_id, new }
        }
        b'U' => {
            let mut r = Reader::new(bytes, "pgoutput Update");
            r.u8()?;
            let relation_id = r.u32()?;
            let (old, key_only) = match r.u8()? {
                b'N' => (None, false),
                b'K' => (Some(tuple(&mut r)?), true),
                b'O' => (Some(tuple(&mut r)?), false),
                _ => return Err(r.malformed()),
            };
            if old.is_some() && r.u8()? != b'N' {
                return Err(r.malformed());
            }
            let new = tuple(&mut r)?;
            r.finish()?;
            Message::Update {
                relation_id,
                old,
                key_only,
                new,
            }
        }
        b'D' => {
            let mut r = Reader::new(bytes, "pgoutput Delete");
            r.u8()?;
            let relation_id = r.u32()?;
            let key_only = match r.u8()? {
                b'K' => true,
                b'O' => false,
                _ => return Err(r.malformed()),
            };
            let old = tuple(&mut r)?;
            r.finish()?;
            Message::Delete {
                relation_id,
                old,
                key_only,
            }
        }
        b'T' => {
            let mut r = Reader::new(bytes, "pgoutput Truncate");
            r.u8()?;
            let n = usize::try_from(r.u32()?).map_err(|_| r.malformed())?;
            let options = r.u8()?;
            let mut relation_ids = Vec::with_capacity(n.min(r.remaining() / 4));
            for _ in 0..n {
                relation_ids.push(r.u32()?);
            }
            r.finish()?;
            Message::Truncate {
                cascade: options & 1 != 0,
                restart_identity: options & 2 != 0,
                relation_ids,
            }
        }
        b'M' => {
            let mut r = Reader::new(bytes, "pgoutput Message");
            r.u8()?;
            let transactional = r.u8()? & 1 != 0;
            let lsn = Lsn(r.u64()?);
            let prefix = r.cstr()?.to_owned();
            let len = usize::try_from(r.u32()?).map_err(|_| r.malformed())?;
            let content = r.bytes(len)?.to_vec();
            r.finish()?;
            Message::Message {
                transactional,
                lsn,
                prefix,
                content,
            }
        }
        _ => return Err(r.malformed()),
    };
    Ok(message)
}

/// `TupleData`: an int16 column count, then per column a kind byte and,
/// for text, an int32 length and the bytes.
fn tuple(r: &mut Reader<'_>) -> Result<Tuple> {
    let n = r.count16()?;
    let mut values = Vec::with_capacity(n.min(r.remaining()));
    for _ in 0..n {
        let value = match r.u8()? {
            b'n' => Value::Null,
            b'u' => Value::UnchangedToast,
            b't' => {
                let len = usize::try_from(r.i32()?).map_err(|_| r.malformed())?;
                Value::Text(r.str(len)?.to_owned())
            }
            // 'b' (binary) only comes with the `binary` option, which this
            // client never sets.
            _ => return Err(r.malformed()),
        };
        values.push(value);
    }
    Ok(values)
}

#[cfg(test)]
mod tests;
