//! A user change on `db.changes.users` (Debezium's envelope) as the
//! analytics service counts it: its op, when it was committed, and the
//! position that names it once however often it is delivered.

use chrono::{TimeZone, Utc};
use serde_json::{Map, Value};
use ultracore_log::Record;

/// What was done to a user's row: a change event's `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeOp {
    /// `c`: inserted.
    Create,
    /// `u`: updated.
    Update,
    /// `d`: deleted.
    Delete,
    /// `r`: read by the initial snapshot (there before capture began).
    Read,
}

impl ChangeOp {
    pub const ALL: [ChangeOp; 4] = [
        ChangeOp::Create,
        ChangeOp::Update,
        ChangeOp::Delete,
        ChangeOp::Read,
    ];

    /// Debezium's code: `c`, `u`, `d` or `r`.
    pub fn code(self) -> &'static str {
        match self {
            ChangeOp::Create => "c",
            ChangeOp::Update => "u",
            ChangeOp::Delete => "d",
            ChangeOp::Read => "r",
        }
    }

    pub fn from_code(code: &str) -> Option<ChangeOp> {
        ChangeOp::ALL.into_iter().find(|op| op.code() == code)
    }
}

/// One change to a user as it is stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserChange {
    /// Where the change is in the source database (see the module's
    /// `# User changes`): the same for every copy of the change.
    pub(crate) position: String,
    pub(crate) user_id: String,
    pub(crate) op: ChangeOp,
    /// `source.ts_ms`: committed, milliseconds since the epoch.
    pub(crate) changed_ms: i64,
}

impl UserChange {
    /// The change of `record`; `None` for a tombstone (an empty value,
    /// which follows a delete and is no change of its own); or why it
    /// cannot be counted.
    pub(crate) fn of(record: &Record) -> Result<Option<UserChange>, String> {
        if record.value.is_empty() {
            return Ok(None);
        }
        let value: Value = serde_json::from_slice(&record.value)
            .map_err(|e| format!("not a change event: value is not JSON: {e}"))?;
        let event = value
            .as_object()
            .ok_or("not a change event: value is not a JSON object")?;
        let op = match event.get("op") {
            None | Some(Value::Null) => return Err("op is missing".into()),
            Some(Value::String(code)) => ChangeOp::from_code(code)
                .ok_or_else(|| format!("op {:?} is not c, u, d or r", clipped(code)))?,
            Some(other) => {
                return Err(format!(
                    "op {} is not c, u, d or r",
                    clipped(&other.to_string())
                ))
            }
        };
        let source = event
            .get("source")
            .and_then(Value::as_object)
            .ok_or("source is missing or not an object: the change has no position")?;
        let changed_ms = source
            .get("ts_ms")
            .and_then(Value::as_i64)
            .ok_or("source.ts_ms is missing or not an integer")?;
        if Utc.timestamp_millis_opt(changed_ms).single().is_none() {
            return Err(format!("source.ts_ms {changed_ms} is not a time"));
        }
        let db = source
            .get("db")
            .and_then(Value::as_str)
            .ok_or("source.db is missing or not a string: the change has no position")?;
        let user_id = user_id(record, event)
            .ok_or("no user id: the key is not {\"id\": …} and the row has no id")?;
        let mut position = match source.get("connector").and_then(Value::as_str) {
            Some("sqlite") => {
                let seq = source.get("seq").and_then(Value::as_u64).ok_or(
                    "source.seq is missing or not a whole number: a sqlite change has no position without it",
                )?;
                format!("sqlite:{db}:{seq}")
            }
            Some("postgresql") => {
                let lsn = source.get("lsn").and_then(Value::as_u64).ok_or(
                    "source.lsn is missing or not a whole number: a postgresql change has no position without it",
                )?;
                let commit = match source.get("sequence") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => commit_lsn(s)?,
                    Some(other) => {
                        return Err(format!(
                            "source.sequence {} is not a string [\"<commit lsn>\",\"<lsn>\"]",
                            clipped(&other.to_string())
                        ))
                    }
                };
                format!("postgresql:{db}:{}:{lsn}", commit.unwrap_or(lsn))
            }
            Some(other) => {
                return Err(format!(
                    "source.connector {:?} is not sqlite or postgresql: its position is unknown",
                    clipped(other)
                ))
            }
            None => return Err("source.connector is missing: the change has no position".into()),
        };
        // A snapshot reads every row at one position.
        if op == ChangeOp::Read {
            position.push(':');
            position.push_str(&user_id);
        }
        Ok(Some(UserChange {
            position,
            user_id,
            op,
            changed_ms,
        }))
    }
}

/// The user a change is about: the record key's `id`, else the row's
/// (`after`, or `before` for a delete).
fn user_id(record: &Record, event: &Map<String, Value>) -> Option<String> {
    let text = |v: &Value| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let key: Option<Value> = record
        .key
        .as_deref()
        .and_then(|k| serde_json::from_slice(k).ok());
    key.as_ref()
        .and_then(|k| k.get("id"))
        .and_then(text)
        .or_else(|| {
            ["after", "before"]
                .into_iter()
                .find_map(|row| event.get(row)?.get("id").and_then(text))
        })
}

/// The commit LSN of `source.sequence`, `["<commit lsn>","<lsn>"]` as a
/// JSON string (LSNs as decimal strings); `None` when it is null, as on
/// snapshot rows.
fn commit_lsn(sequence: &str) -> Result<Option<u64>, String> {
    let bad = || {
        format!(
            "source.sequence {:?} is not [\"<commit lsn>\",\"<lsn>\"]",
            clipped(sequence)
        )
    };
    let [commit, _]: [Value; 2] = serde_json::from_str(sequence).map_err(|_| bad())?;
    match commit {
        Value::Null => Ok(None),
        Value::String(s) => s.parse().map(Some).map_err(|_| bad()),
        Value::Number(n) => n.as_u64().map(Some).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// At most 80 characters of `s`, for a reason quoting a record.
fn clipped(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(key: &str, value: serde_json::Value) -> Record {
        Record {
            topic: crate::analytics::USERS_TOPIC.into(),
            partition: 0,
            offset: 0,
            timestamp: 0,
            key: Some(key.as_bytes().to_vec()),
            value: value.to_string().into_bytes(),
            headers: vec![],
        }
    }

    fn sqlite(op: &str, seq: u64) -> serde_json::Value {
        json!({
            "before": null, "after": {"id": "u-1", "name": "Ada"},
            "source": {"version": "0.1.0", "connector": "sqlite", "name": "ultracore",
                       "ts_ms": 1_714_566_600_000_i64, "snapshot": if op == "r" { "true" } else { "false" },
                       "db": "operational", "schema": "main", "table": "users", "seq": seq},
            "op": op, "ts_ms": 1_714_566_600_050_i64, "transaction": null
        })
    }

    fn postgresql(op: &str, sequence: serde_json::Value, lsn: u64) -> serde_json::Value {
        json!({
            "before": {"id": "u-1"}, "after": null,
            "source": {"version": "0.1.0", "connector": "postgresql", "name": "ultracore",
                       "ts_ms": 1_714_566_600_000_i64, "snapshot": "false", "db": "bank",
                       "sequence": sequence, "schema": "public", "table": "users",
                       "txId": 771, "lsn": lsn},
            "op": op, "ts_ms": 1_714_566_600_050_i64, "transaction": null
        })
    }

    #[test]
    fn a_change_is_keyed_by_its_position_in_the_database() {
        let key = r#"{"id":"u-1"}"#;
        let of = |r: &Record| UserChange::of(r).unwrap().unwrap();
        let c = of(&change(key, sqlite("c", 42)));
        assert_eq!(
            c,
            UserChange {
                position: "sqlite:operational:42".into(),
                user_id: "u-1".into(),
                op: ChangeOp::Create,
                changed_ms: 1_714_566_600_000,
            }
        );
        // Snapshot rows share a position: the user id tells them apart.
        assert_eq!(
            of(&change(r#"{"id":"u-9"}"#, sqlite("r", 40))).position,
            "sqlite:operational:40:u-9"
        );
        let pg = of(&change(
            key,
            postgresql("d", json!(r#"["2301","2280"]"#), 2280),
        ));
        assert_eq!(pg.position, "postgresql:bank:2301:2280");
        assert_eq!(pg.op, ChangeOp::Delete);
        // No commit LSN (a snapshot row) or no sequence: the LSN.
        let pg = of(&change(
            key,
            postgresql("r", json!(r#"[null,"2280"]"#), 2280),
        ));
        assert_eq!(pg.position, "postgresql:bank:2280:2280:u-1");
        let pg = of(&change(key, postgresql("u", json!(null), 2290)));
        assert_eq!(pg.position, "postgresql:bank:2290:2290");
        // LSNs past 2^32 and the largest seq.
        let pg = of(&change(
            key,
            postgresql(
                "u",
                json!(r#"["18446744073709551615","8589934592"]"#),
                8_589_934_592,
            ),
        ));
        assert_eq!(
            pg.position,
            "postgresql:bank:18446744073709551615:8589934592"
        );
        assert_eq!(
            of(&change(key, sqlite("u", u64::MAX))).position,
            format!("sqlite:operational:{}", u64::MAX)
        );
        // Without a key, the row's id; an integer id as its digits.
        let mut r = change(key, sqlite("c", 1));
        r.key = None;
        assert_eq!(of(&r).user_id, "u-1");
        assert_eq!(of(&change(r#"{"id":7}"#, sqlite("c", 1))).user_id, "7");
        // A tombstone is no change.
        let mut tombstone = change(key, sqlite("c", 1));
        tombstone.value.clear();
        assert_eq!(UserChange::of(&tombstone), Ok(None));
    }

    #[test]
    fn changes_that_cannot_be_counted_say_why() {
        let key = r#"{"id":"u-1"}"#;
        let without = |mut v: serde_json::Value, field: &str| {
            v["source"].as_object_mut().unwrap().remove(field);
            v
        };
        let with = |mut v: serde_json::Value, path: &[&str], x: serde_json::Value| {
            let mut at = &mut v;
            for p in path {
                at = &mut at[*p];
            }
            *at = x;
            v
        };
        let cases = [
            (with(sqlite("c", 1), &["op"], json!(null)), "op is missing"),
            (
                with(sqlite("c", 1), &["op"], json!("t")),
                "op \"t\" is not c, u, d or r",
            ),
            (with(sqlite("c", 1), &["op"], json!(3)), "op 3 is not"),
            (
                with(sqlite("c", 1), &["source"], json!(null)),
                "source is missing",
            ),
            (without(sqlite("c", 1), "ts_ms"), "source.ts_ms is missing"),
            (
                with(sqlite("c", 1), &["source", "ts_ms"], json!(i64::MAX)),
                "is not a time",
            ),
            (without(sqlite("c", 1), "db"), "source.db is missing"),
            (without(sqlite("c", 1), "seq"), "source.seq is missing"),
            (
                with(sqlite("c", 1), &["source", "seq"], json!(-1)),
                "source.seq is missing or not a whole number",
            ),
            (
                without(sqlite("c", 1), "connector"),
                "source.connector is missing",
            ),
            (
                with(sqlite("c", 1), &["source", "connector"], json!("mysql")),
                "source.connector \"mysql\" is not sqlite or postgresql",
            ),
            (
                without(postgresql("u", json!(null), 5), "lsn"),
                "source.lsn is missing",
            ),
            (
                postgresql("u", json!("[\"x\",\"5\"]"), 5),
                "source.sequence \"[\\\"x\\\",\\\"5\\\"]\" is not",
            ),
            (
                postgresql("u", json!("5"), 5),
                "source.sequence \"5\" is not",
            ),
            (
                postgresql("u", json!(5), 5),
                "source.sequence 5 is not a string",
            ),
        ];
        for (value, reason) in cases {
            let err = UserChange::of(&change(key, value)).unwrap_err();
            assert!(err.contains(reason), "{err} (wanted {reason})");
        }
        let mut r = change("{}", with(sqlite("c", 1), &["after"], json!(null)));
        assert!(UserChange::of(&r).unwrap_err().starts_with("no user id"));
        r.value = b"{not json".to_vec();
        assert!(UserChange::of(&r)
            .unwrap_err()
            .starts_with("not a change event: value is not JSON"));
        r.value = b"[1]".to_vec();
        assert_eq!(
            UserChange::of(&r).unwrap_err(),
            "not a change event: value is not a JSON object"
        );
    }
}
