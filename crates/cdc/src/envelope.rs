//! Debezium's change event envelope, as its JSON converter writes it with
//! schemas disabled (`value.converter.schemas.enable=false`): what Kafka
//! Connect sinks, Flink CDC and every other Debezium consumer read.
//!
//! - value: `{before, after, source, op, ts_ms, transaction}`; `before` is
//!   null for `c` and `r`, `after` is null for `d`;
//! - key: the primary key as an object, `{"id": "…"}`;
//! - after each delete, a tombstone: the same key, a null value (an empty
//!   record value on UltraCore's log, Kafka's null on Kafka).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Row values by column name.
pub type Row = Map<String, Value>;

/// What happened to the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "c")]
    Create,
    #[serde(rename = "u")]
    Update,
    #[serde(rename = "d")]
    Delete,
    /// A row read by the initial snapshot.
    #[serde(rename = "r")]
    Read,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
        }
    }

    pub fn from_code(code: &str) -> Option<Op> {
        match code {
            "c" => Some(Op::Create),
            "u" => Some(Op::Update),
            "d" => Some(Op::Delete),
            "r" => Some(Op::Read),
            _ => None,
        }
    }
}

/// `source.snapshot`: whether the event came from the initial snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotMark {
    /// A snapshot row, not the last.
    True,
    /// The last row of the snapshot: streaming follows.
    Last,
    /// A streamed change.
    False,
}

/// `source`: where the change came from. The fields every connector has,
/// then each connector's position fields (absent when not its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub version: String,
    /// `sqlite` or `postgresql`.
    pub connector: String,
    /// The logical server name (`ultracore`).
    pub name: String,
    /// When the change was made in the database (the commit time on
    /// PostgreSQL, the statement time on SQLite; the read time for snapshot rows).
    pub ts_ms: i64,
    pub snapshot: SnapshotMark,
    pub db: String,
    /// PostgreSQL: `["<last commit LSN>","<this event's LSN>"]` as a JSON
    /// string, Debezium's resumable position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<String>,
    pub schema: String,
    pub table: String,
    /// PostgreSQL: the transaction id.
    #[serde(rename = "txId", default, skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<i64>,
    /// PostgreSQL: the LSN of the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsn: Option<u64>,
    /// SQLite: the change's position in the outbox (strictly increasing in
    /// commit order; the snapshot's rows carry the position they were read at).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// One change event: the record value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub before: Option<Row>,
    pub after: Option<Row>,
    pub source: Source,
    pub op: Op,
    /// When the connector processed the change.
    pub ts_ms: i64,
    /// Transaction metadata (Debezium's `provide.transaction.metadata`, off).
    pub transaction: Option<Value>,
}

impl ChangeEvent {
    /// The key of the row this event is about, from `after` (or `before` for a delete).
    pub fn key(&self, key_column: &str) -> Option<Value> {
        let row = self.after.as_ref().or(self.before.as_ref())?;
        row.get(key_column).cloned()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a change event is always serializable")
    }
}

/// The record key: the primary key as a one-field object.
pub fn record_key(key_column: &str, id: &Value) -> Vec<u8> {
    let mut key = Map::new();
    key.insert(key_column.to_owned(), id.clone());
    serde_json::to_vec(&Value::Object(key)).expect("a key is always serializable")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_as_debezium_writes_it() {
        let event = ChangeEvent {
            before: None,
            after: json!({"id": "u1", "name": "Ada"}).as_object().cloned(),
            source: Source {
                version: "0.1.0".into(),
                connector: "sqlite".into(),
                name: "ultracore".into(),
                ts_ms: 5,
                snapshot: SnapshotMark::False,
                db: "operational".into(),
                sequence: None,
                schema: "main".into(),
                table: "users".into(),
                tx_id: None,
                lsn: None,
                seq: Some(7),
            },
            op: Op::Create,
            ts_ms: 6,
            transaction: None,
        };
        let value: Value = serde_json::from_slice(&event.to_bytes()).unwrap();
        assert_eq!(value["op"], "c");
        assert_eq!(value["before"], Value::Null);
        assert_eq!(value["source"]["snapshot"], "false");
        assert_eq!(value["source"]["seq"], 7);
        assert!(value["source"].get("lsn").is_none());
        assert_eq!(value["transaction"], Value::Null);
        let back: ChangeEvent = serde_json::from_value(value).unwrap();
        assert_eq!(back, event);
        assert_eq!(event.key("id"), Some(json!("u1")));
        assert_eq!(record_key("id", &json!("u1")), br#"{"id":"u1"}"#.to_vec());
    }

    #[test]
    fn op_codes_round_trip() {
        for op in [Op::Create, Op::Update, Op::Delete, Op::Read] {
            assert_eq!(Op::from_code(op.code()), Some(op));
        }
        assert_eq!(Op::from_code("x"), None);
    }
}
