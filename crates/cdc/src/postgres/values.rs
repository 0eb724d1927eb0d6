//! Column values as PostgreSQL prints them (pgoutput's text format, and
//! `::text` casts in snapshot and verification reads) turned into the JSON
//! values of the envelope, one way for every reader, so a replayed row and
//! the table compare equal.
//!
//! The connection sets `TimeZone=UTC` and `DateStyle=ISO`, so timestamps
//! print as `2026-12-06 00:22:33.12+00`; they become RFC 3339 in UTC with
//! milliseconds (what the API writes, as SQLite holds it), or microseconds
//! when a writer stored them: Debezium's `ZonedTimestamp`. `jsonb` stays text (Debezium's `io.debezium.data.Json`).

use serde_json::Value;

use crate::tables::{Kind, Table};
use crate::{Error, Result};

/// One column's printed value as an envelope value.
pub fn to_json(table: &Table, column: &str, kind: Kind, text: Option<&str>) -> Result<Value> {
    let Some(text) = text else {
        return Ok(Value::Null);
    };
    let bad = |what: &str| {
        Error::Corrupt(format!(
            "{}.{column}: '{}' is not {what}",
            table.name,
            text.chars().take(60).collect::<String>()
        ))
    };
    Ok(match kind {
        Kind::Text | Kind::Json => Value::String(text.to_owned()),
        Kind::Integer => Value::from(text.parse::<i64>().map_err(|_| bad("an integer"))?),
        Kind::Timestamp => Value::String(timestamp(text).ok_or_else(|| bad("a timestamp"))?),
    })
}

/// `2026-12-06 00:22:33.12+00` → `2026-12-06T00:22:33.120Z`.
pub fn timestamp(text: &str) -> Option<String> {
    let parsed = chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(text))
        .ok()?;
    // Milliseconds at least (what the API writes, as on SQLite);
    // microseconds when a writer stored them.
    let format = if parsed.timestamp_subsec_nanos() % 1_000_000 == 0 {
        chrono::SecondsFormat::Millis
    } else {
        chrono::SecondsFormat::Micros
    };
    Some(
        parsed
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(format, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::USERS;

    #[test]
    fn timestamps_become_rfc3339_in_utc() {
        assert_eq!(
            timestamp("2026-12-06 00:22:33.12+00").as_deref(),
            Some("2026-12-06T00:22:33.120Z")
        );
        assert_eq!(
            timestamp("2026-12-06 00:22:33+00").as_deref(),
            Some("2026-12-06T00:22:33.000Z")
        );
        assert_eq!(
            timestamp("2026-12-06 10:22:33.123456+10").as_deref(),
            Some("2026-12-06T00:22:33.123456Z")
        );
        assert_eq!(
            timestamp("2026-12-06 05:52:33.5+05:30").as_deref(),
            Some("2026-12-06T00:22:33.500Z")
        );
        assert_eq!(timestamp("yesterday"), None);
    }

    #[test]
    fn kinds_map_to_json() {
        assert_eq!(
            to_json(&USERS, "x", Kind::Integer, Some("42")).unwrap(),
            Value::from(42)
        );
        assert_eq!(to_json(&USERS, "x", Kind::Text, None).unwrap(), Value::Null);
        assert_eq!(
            to_json(&USERS, "x", Kind::Json, Some("[{\"a\": 1}]")).unwrap(),
            Value::String("[{\"a\": 1}]".into())
        );
        assert!(to_json(&USERS, "x", Kind::Integer, Some("4x")).is_err());
    }
}
