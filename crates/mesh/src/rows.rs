//! A product's rows kept from its change feed: each record of one of its
//! topics becomes a row (the columns of the product's schema, taken from
//! the event), keyed by the schema's first column, newest write wins.
//!
//! Two record shapes are read: UltraCore's envelope (columns from the
//! payload, then from the envelope: `event_id`, `event_type`, `timestamp`,
//! `aggregate_id`) and Debezium's change event (columns from `after`; a
//! delete removes the row).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use ultracore_log::Record;

use crate::product::ProductDef;

/// Rows a product keeps at most (the oldest written leave first).
pub const MAX_ROWS: usize = 200_000;

/// What one record did to a product's rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Upsert(String, Map<String, Value>),
    Delete(String),
    /// Not readable, or nothing of the schema in it.
    Skip,
}

/// Reads a record as a change of `def`'s rows.
pub fn change_of(def: &ProductDef, record: &Record) -> Change {
    let Some(key_col) = def.schema.first() else {
        return Change::Skip;
    };
    let Ok(json) = serde_json::from_slice::<Value>(&record.value) else {
        return Change::Skip;
    };
    if !json.is_object() {
        return Change::Skip;
    }
    // Debezium: {before, after, op, source, …}.
    let debezium = json.get("op").is_some() && json.get("source").is_some();
    if debezium && json.get("op").and_then(Value::as_str) == Some("d") {
        // The key from the before image: the column's sources with /after
        // read as /before, or its name.
        let before = json.get("before");
        let key = key_col
            .source
            .iter()
            .find_map(|p| json.pointer(&p.replacen("/after/", "/before/", 1)))
            .or_else(|| before.and_then(|b| b.get(&key_col.name).or_else(|| b.get("id"))))
            .filter(|v| !v.is_null())
            .map(scalar_key);
        return key.map(Change::Delete).unwrap_or(Change::Skip);
    }
    let mut row = Map::new();
    for c in &def.schema {
        let value = if c.source.is_empty() {
            let image = if debezium {
                json.get("after")
            } else {
                json.get("payload")
            };
            image
                .and_then(|i| i.get(&c.name))
                .or_else(|| (!debezium).then(|| json.get(&c.name)).flatten())
                .or_else(|| {
                    (c.name == key_col.name)
                        .then(|| {
                            if debezium {
                                json.pointer("/after/id")
                            } else {
                                json.get("aggregate_id")
                            }
                        })
                        .flatten()
                })
        } else {
            c.source.iter().find_map(|p| json.pointer(p))
        };
        if let Some(v) = value {
            row.insert(c.name.clone(), if c.mask { mask(v) } else { v.clone() });
        }
    }
    match row
        .get(&key_col.name)
        .filter(|v| !v.is_null())
        .map(scalar_key)
    {
        Some(key) => Change::Upsert(key, row),
        None => Change::Skip,
    }
}

/// Personal data as answers show it: the first character, and an e-mail's
/// domain (`a***@example.com`).
pub fn mask(v: &Value) -> Value {
    let Value::String(s) = v else {
        return if v.is_null() {
            Value::Null
        } else {
            Value::String("***".into())
        };
    };
    let first: String = s.chars().take(1).collect();
    match s.rsplit_once('@') {
        Some((_, domain)) => Value::String(format!("{first}***@{domain}")),
        None => Value::String(format!("{first}***")),
    }
}

fn scalar_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether a row has every required column, and whether every value it
/// has matches the column's type.
pub fn grade(def: &ProductDef, row: &Map<String, Value>) -> (bool, bool) {
    let complete = def
        .schema
        .iter()
        .filter(|c| c.required)
        .all(|c| row.get(&c.name).is_some_and(|v| !v.is_null()));
    let conforming = def
        .schema
        .iter()
        .all(|c| row.get(&c.name).is_none_or(|v| c.kind.admits(v)));
    (complete, conforming)
}

/// A product's rows, bounded.
#[derive(Debug, Default, Clone)]
pub struct Rows {
    map: BTreeMap<String, (u64, Map<String, Value>)>,
    /// First-write sequence → key: the oldest row leaves first.
    order: BTreeMap<u64, String>,
    next: u64,
}

impl Rows {
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Upsert(k, row) => {
                // A change names the columns it knows; the others keep
                // what earlier changes set (a completion adds its figures
                // to the request's row).
                if let Some((_, existing)) = self.map.get_mut(&k) {
                    existing.extend(row);
                    return;
                }
                self.next += 1;
                self.order.insert(self.next, k.clone());
                self.map.insert(k, (self.next, row));
                while self.map.len() > MAX_ROWS {
                    let Some((_, oldest)) = self.order.pop_first() else {
                        break;
                    };
                    self.map.remove(&oldest);
                }
            }
            Change::Delete(k) => {
                if let Some((seq, _)) = self.map.remove(&k) {
                    self.order.remove(&seq);
                }
            }
            Change::Skip => {}
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn get(&self, key: &str) -> Option<&Map<String, Value>> {
        self.map.get(key).map(|(_, row)| row)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Map<String, Value>> {
        self.map.values().map(|(_, row)| row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::product::{Column, ColumnType, Contract, OutputPort, PortKind};
    use serde_json::json;

    fn def() -> ProductDef {
        let col = |n: &str, kind, required| Column {
            name: n.into(),
            kind,
            required,
            description: String::new(),
            source: vec![],
            mask: false,
        };
        ProductDef {
            id: "p".into(),
            name: "P".into(),
            domain: "d".into(),
            owner: "o".into(),
            description: "d".into(),
            tags: vec![],
            schema: vec![
                col("customer_id", ColumnType::String, true),
                col("status", ColumnType::String, true),
                col("timestamp", ColumnType::Timestamp, false),
            ],
            output_ports: vec![OutputPort {
                kind: PortKind::Topic,
                address: "db.changes.users".into(),
            }],
            contract: Contract {
                freshness_secs: 5,
                completeness: 1.0,
                schema_conformance: 1.0,
            },
            version: "1.0.0".into(),
            requires: vec![],
        }
    }

    fn record(v: Value) -> Record {
        Record {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            timestamp: 0,
            key: None,
            value: serde_json::to_vec(&v).unwrap(),
            headers: vec![],
        }
    }

    #[test]
    fn envelopes_and_debezium_changes_become_rows() {
        let d = def();
        let env = record(
            json!({"event_id": "e", "aggregate_id": "c-1", "timestamp": "2026-01-01T00:00:00Z",
            "payload": {"status": "active"}}),
        );
        let Change::Upsert(k, row) = change_of(&d, &env) else {
            panic!("an upsert")
        };
        assert_eq!(k, "c-1");
        assert_eq!(row["status"], "active");
        assert_eq!(grade(&d, &row), (true, true));
        let created = record(json!({"op": "c", "source": {}, "before": null,
            "after": {"id": "c-2", "status": 7}}));
        let Change::Upsert(k, row) = change_of(&d, &created) else {
            panic!("an upsert")
        };
        assert_eq!(k, "c-2");
        assert_eq!(grade(&d, &row), (true, false), "status is not a string");
        let deleted =
            record(json!({"op": "d", "source": {}, "before": {"id": "c-2"}, "after": null}));
        assert_eq!(change_of(&d, &deleted), Change::Delete("c-2".into()));
        assert_eq!(change_of(&d, &record(json!([1, 2]))), Change::Skip);
        let mut rows = Rows::default();
        rows.apply(change_of(&d, &created));
        rows.apply(change_of(&d, &env));
        assert_eq!(rows.len(), 2);
        rows.apply(change_of(&d, &deleted));
        assert_eq!(rows.len(), 1);
    }
}
