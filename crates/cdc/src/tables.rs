//! The tables UltraCore owns and captures, defined once: the SQL of both
//! databases, the capture triggers and the envelopes are generated from
//! these definitions.

/// How a column's value travels in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A JSON string.
    Text,
    /// A JSON number.
    Integer,
    /// A JSON document, carried as a string (Debezium's `io.debezium.data.Json`).
    Json,
    /// An instant, as an RFC 3339 string in UTC with milliseconds
    /// (Debezium's `io.debezium.time.ZonedTimestamp`).
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
}

const fn col(name: &'static str, kind: Kind, nullable: bool) -> Column {
    Column {
        name,
        kind,
        nullable,
    }
}

/// A captured table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    /// Where its changes go.
    pub topic: &'static str,
    /// The primary key column (one text column).
    pub key: &'static str,
    pub columns: &'static [Column],
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The columns as a comma-separated SQL list.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub const USERS: Table = Table {
    name: "users",
    topic: "db.changes.users",
    key: "id",
    columns: &[
        col("id", Kind::Text, false),
        col("name", Kind::Text, false),
        col("email", Kind::Text, false),
        col("phone", Kind::Text, true),
        col("country", Kind::Text, false),
        col("risk_profile", Kind::Text, false),
        col("status", Kind::Text, false),
        col("created_at", Kind::Timestamp, false),
        col("updated_at", Kind::Timestamp, false),
    ],
};

pub const CONVERSATIONS: Table = Table {
    name: "conversations",
    topic: "db.changes.conversations",
    key: "id",
    columns: &[
        col("id", Kind::Text, false),
        col("customer_id", Kind::Text, false),
        col("subject", Kind::Text, true),
        col("status", Kind::Text, false),
        col("messages", Kind::Json, false),
        col("message_count", Kind::Integer, false),
        col("created_at", Kind::Timestamp, false),
        col("updated_at", Kind::Timestamp, false),
    ],
};

/// Every captured table, in snapshot order.
pub const TABLES: [&Table; 2] = [&USERS, &CONVERSATIONS];

/// The captured table of this name.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.into_iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_in_the_catalogue() {
        for t in TABLES {
            assert!(
                ultracore_runtime::catalogue::TOPICS
                    .iter()
                    .any(|d| d.name == t.topic),
                "{} is not in the topic catalogue",
                t.topic
            );
            assert!(t.column(t.key).is_some_and(|c| !c.nullable));
        }
        assert_eq!(table("users"), Some(&USERS));
        assert_eq!(table("nope"), None);
    }
}
