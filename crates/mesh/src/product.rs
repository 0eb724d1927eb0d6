//! A data product: its definition (what it is, who owns it, where to read
//! it, what it promises) and the [`DataProduct`] aggregate whose events —
//! `data_product_registered`, `_updated`, `_refreshed`,
//! `_quality_changed` — are the catalogue's only source of truth.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ultracore_es::Aggregate;
use ultracore_log::{payload_as, DecodeError, EventFamily};

use crate::quality::Tier;

/// What a product is, as its owner defines it (in `products.yaml` or
/// through the API). Validated by [`ProductDef::validate`] before any
/// event is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductDef {
    /// Stable id: lower-case letters, digits, `_` and `-`, at most 64.
    pub id: String,
    pub name: String,
    /// The owning domain (`markets`, `esg`, `customer`, …): a facet.
    pub domain: String,
    /// The team or person accountable for it.
    pub owner: String,
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The columns a query returns.
    #[serde(default)]
    pub schema: Vec<Column>,
    /// Where to read it. Topic ports are also what refreshes it: an event
    /// on one is a change of the product's data.
    pub output_ports: Vec<OutputPort>,
    pub contract: Contract,
    /// The definition's own version (semantic: `MAJOR.MINOR.PATCH`).
    pub version: String,
    /// Permissions a caller needs, besides `read-data-products`, to query
    /// the product's data (`read-compliance` for compliance alerts, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// A required column counts toward completeness: a row without it is
    /// incomplete.
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Where the value is in a change-feed record: JSON pointers into the
    /// record, the first that resolves wins (`/payload/after/sharpe`,
    /// `/after/email`). None: the payload's field of the column's name, then
    /// the envelope's.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "one_or_many")]
    pub source: Vec<String>,
    /// Personal data: masked in every answer (first character kept, and an
    /// e-mail's domain).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mask: bool,
}

/// `source: /a` or `source: [/a, /b]`.
mod one_or_many {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }

    pub fn serialize<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    String,
    Integer,
    Float,
    Boolean,
    Date,
    Timestamp,
    Json,
}

impl ColumnType {
    /// Whether a JSON value conforms to the type (null is a missing value,
    /// judged by completeness, not conformance).
    pub fn admits(self, v: &Value) -> bool {
        match (self, v) {
            (_, Value::Null) => true,
            (ColumnType::String, Value::String(_)) => true,
            (ColumnType::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (ColumnType::Float, Value::Number(_)) => true,
            (ColumnType::Boolean, Value::Bool(_)) => true,
            (ColumnType::Date, Value::String(s)) => {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
            }
            (ColumnType::Timestamp, Value::String(s)) => {
                chrono::DateTime::parse_from_rfc3339(s).is_ok()
            }
            (ColumnType::Timestamp, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (ColumnType::Json, _) => true,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputPort {
    pub kind: PortKind,
    /// A topic name, a Parquet file path (relative to the data dir) or an
    /// HTTP path.
    pub address: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortKind {
    Topic,
    Parquet,
    Query,
}

/// What the product promises: its service-level objectives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// The newest data is at most this old (seconds) while its producers run.
    pub freshness_secs: u64,
    /// Share of rows with every required column present (0–1).
    #[serde(default = "one")]
    pub completeness: f64,
    /// Share of rows whose values match the schema's types (0–1).
    #[serde(default = "one")]
    pub schema_conformance: f64,
}

fn one() -> f64 {
    1.0
}

/// A definition that cannot be registered, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("product '{id}': {field}: {reason}")]
pub struct InvalidProduct {
    pub id: String,
    pub field: String,
    pub reason: String,
}

pub const MAX_TAGS: usize = 20;

/// Whether `s` is a valid id (product ids, domains, tags).
pub fn is_slug(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

impl ProductDef {
    /// Checks every field; `known_topic` says whether a topic port names a
    /// topic of the platform.
    pub fn validate(&self, known_topic: impl Fn(&str) -> bool) -> Result<(), InvalidProduct> {
        let bad = |field: &str, reason: String| InvalidProduct {
            id: self.id.clone(),
            field: field.to_owned(),
            reason,
        };
        if !is_slug(&self.id, 64) {
            return Err(bad(
                "id",
                "use 1–64 lower-case letters, digits, '_' or '-', starting with a letter or digit"
                    .into(),
            ));
        }
        for (field, value, max) in [
            ("name", &self.name, 120),
            ("owner", &self.owner, 120),
            ("description", &self.description, 4000),
        ] {
            if value.trim().is_empty() || value.len() > max {
                return Err(bad(field, format!("must be 1–{max} characters")));
            }
        }
        if !is_slug(&self.domain, 40) {
            return Err(bad(
                "domain",
                "use 1–40 lower-case letters, digits, '_' or '-'".into(),
            ));
        }
        if self.tags.len() > MAX_TAGS {
            return Err(bad("tags", format!("at most {MAX_TAGS} tags")));
        }
        if let Some(t) = self.tags.iter().find(|t| !is_slug(t, 40)) {
            return Err(bad(
                "tags",
                format!("'{t}': use 1–40 lower-case letters, digits, '_' or '-'"),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for c in &self.schema {
            if c.name.is_empty() || c.name.len() > 64 || !names.insert(c.name.as_str()) {
                return Err(bad(
                    "schema",
                    format!("column '{}': names are 1–64 characters and unique", c.name),
                ));
            }
            if let Some(p) = c.source.iter().find(|p| !p.starts_with('/')) {
                return Err(bad(
                    "schema",
                    format!(
                        "column '{}': source '{p}' is not a JSON pointer (like /payload/field)",
                        c.name
                    ),
                ));
            }
        }
        if self.output_ports.is_empty() {
            return Err(bad("output_ports", "at least one port".into()));
        }
        for p in &self.output_ports {
            let ok = match p.kind {
                PortKind::Topic => known_topic(&p.address),
                PortKind::Parquet => {
                    p.address.ends_with(".parquet")
                        && !p.address.starts_with('/')
                        && !p.address.split('/').any(|s| s == "..")
                }
                PortKind::Query => p.address.starts_with("/api/"),
            };
            if !ok {
                let what = match p.kind {
                    PortKind::Topic => "a topic of the topic catalogue",
                    PortKind::Parquet => "a relative path to a .parquet file inside the data dir",
                    PortKind::Query => "an HTTP path starting with /api/",
                };
                return Err(bad(
                    "output_ports",
                    format!("'{}' is not {what}", p.address),
                ));
            }
        }
        let c = &self.contract;
        if c.freshness_secs == 0 {
            return Err(bad("contract.freshness_secs", "must be at least 1".into()));
        }
        for (field, v) in [
            ("contract.completeness", c.completeness),
            ("contract.schema_conformance", c.schema_conformance),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(bad(field, format!("{v} is not between 0 and 1")));
            }
        }
        if let Some(p) = self
            .requires
            .iter()
            .find(|p| p.parse::<ultracore_http::Permission>().is_err())
        {
            return Err(bad(
                "requires",
                format!("'{p}' is not a permission (read-compliance, read-forensics, admin, …)"),
            ));
        }
        let semver = self.version.split('.').collect::<Vec<_>>();
        if semver.len() != 3 || semver.iter().any(|p| p.parse::<u32>().is_err()) {
            return Err(bad(
                "version",
                format!("'{}' is not MAJOR.MINOR.PATCH", self.version),
            ));
        }
        Ok(())
    }

    /// The topics whose events change the product.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.output_ports
            .iter()
            .filter(|p| p.kind == PortKind::Topic)
            .map(|p| p.address.as_str())
    }
}

/// An event that caused a refresh: where it is on the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// The causes a refresh event lists (the rest are counted).
pub const MAX_CAUSES: usize = 32;

/// Measured quality at a point in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReading {
    pub tier: Tier,
    /// Seconds since the newest data (`None`: never refreshed).
    pub age_secs: Option<f64>,
    pub completeness: f64,
    pub schema_conformance: f64,
    /// Which objectives are missed, in words.
    pub reasons: Vec<String>,
}

/// The aggregate: one per product id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataProduct {
    pub def: Option<ProductDef>,
    /// Bumped by every registration, definition change and refresh: the
    /// version a query's answer belongs to.
    pub version: u64,
    pub refreshes: u64,
    pub last_refresh_ms: Option<i64>,
    pub last_causes: Vec<Cause>,
    /// Rows checked at the last refresh, and how many were complete and
    /// conforming (`None` before the first measured refresh).
    pub rows_checked: u64,
    pub rows_complete: u64,
    pub rows_conforming: u64,
    pub tier: Option<Tier>,
}

/// A refresh: when, what caused it, and how the rows it left graded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refresh {
    pub at_ms: i64,
    /// Events that caused it (at most [`MAX_CAUSES`]).
    pub causes: Vec<Cause>,
    /// How many events caused it in all.
    pub events: u64,
    pub rows_checked: u64,
    pub rows_complete: u64,
    pub rows_conforming: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProductEvent {
    Registered {
        def: ProductDef,
    },
    Updated {
        def: ProductDef,
    },
    Refreshed(Refresh),
    QualityChanged {
        from: Option<Tier>,
        reading: QualityReading,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProductCommand {
    /// Register or update (idempotent: the same definition stores nothing).
    Apply(ProductDef),
    Refresh {
        at_ms: i64,
        causes: Vec<Cause>,
        events: u64,
        /// Rows checked, complete, conforming (0, 0, 0: not measured).
        rows: (u64, u64, u64),
    },
    /// Store a quality reading when its tier differs from the last.
    Quality(QualityReading),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    #[error("no data product with this id is registered")]
    NotRegistered,
    #[error("the definition's id '{given}' differs from the product's '{existing}'")]
    IdMismatch { given: String, existing: String },
}

#[derive(Serialize, Deserialize)]
struct DefPayload {
    def: ProductDef,
}

#[derive(Serialize, Deserialize)]
struct QualityPayload {
    from: Option<Tier>,
    reading: QualityReading,
}

impl EventFamily for ProductEvent {
    fn event_type(&self) -> &'static str {
        match self {
            ProductEvent::Registered { .. } => "data_product_registered",
            ProductEvent::Updated { .. } => "data_product_updated",
            ProductEvent::Refreshed { .. } => "data_product_refreshed",
            ProductEvent::QualityChanged { .. } => "data_product_quality_changed",
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn to_payload(&self) -> Value {
        let v = match self {
            ProductEvent::Registered { def } | ProductEvent::Updated { def } => {
                serde_json::to_value(DefPayload { def: def.clone() })
            }
            ProductEvent::Refreshed(r) => serde_json::to_value(r),
            ProductEvent::QualityChanged { from, reading } => {
                serde_json::to_value(QualityPayload {
                    from: *from,
                    reading: reading.clone(),
                })
            }
        };
        v.unwrap_or(Value::Null)
    }

    fn decode(event_type: &str, version: u32, payload: Value) -> Result<Self, DecodeError> {
        if version != 1 {
            return Err(DecodeError::UnsupportedVersion {
                event_type: event_type.to_owned(),
                version,
                newest: 1,
            });
        }
        match event_type {
            "data_product_registered" => {
                let p: DefPayload = payload_as(event_type, payload)?;
                Ok(ProductEvent::Registered { def: p.def })
            }
            "data_product_updated" => {
                let p: DefPayload = payload_as(event_type, payload)?;
                Ok(ProductEvent::Updated { def: p.def })
            }
            "data_product_refreshed" => {
                Ok(ProductEvent::Refreshed(payload_as(event_type, payload)?))
            }
            "data_product_quality_changed" => {
                let p: QualityPayload = payload_as(event_type, payload)?;
                Ok(ProductEvent::QualityChanged {
                    from: p.from,
                    reading: p.reading,
                })
            }
            other => Err(DecodeError::UnknownEventType(other.to_owned())),
        }
    }
}

impl Aggregate for DataProduct {
    const TYPE: &'static str = "DataProduct";
    type Event = ProductEvent;
    type Command = ProductCommand;
    type Error = ProductError;

    fn handle(&self, command: ProductCommand) -> Result<Vec<ProductEvent>, ProductError> {
        match command {
            ProductCommand::Apply(def) => match &self.def {
                None => Ok(vec![ProductEvent::Registered { def }]),
                Some(existing) if existing.id != def.id => Err(ProductError::IdMismatch {
                    given: def.id,
                    existing: existing.id.clone(),
                }),
                Some(existing) if *existing == def => Ok(vec![]),
                Some(_) => Ok(vec![ProductEvent::Updated { def }]),
            },
            _ if self.def.is_none() => Err(ProductError::NotRegistered),
            ProductCommand::Refresh {
                at_ms,
                mut causes,
                events,
                rows,
            } => {
                causes.truncate(MAX_CAUSES);
                Ok(vec![ProductEvent::Refreshed(Refresh {
                    at_ms,
                    causes,
                    events,
                    rows_checked: rows.0,
                    rows_complete: rows.1,
                    rows_conforming: rows.2,
                })])
            }
            ProductCommand::Quality(reading) => {
                if self.tier == Some(reading.tier) {
                    Ok(vec![])
                } else {
                    Ok(vec![ProductEvent::QualityChanged {
                        from: self.tier,
                        reading,
                    }])
                }
            }
        }
    }

    fn apply(&mut self, event: &ProductEvent) {
        match event {
            ProductEvent::Registered { def } | ProductEvent::Updated { def } => {
                self.def = Some(def.clone());
                self.version += 1;
            }
            ProductEvent::Refreshed(r) => {
                self.version += 1;
                self.refreshes += 1;
                self.last_refresh_ms = Some(r.at_ms);
                self.last_causes.clone_from(&r.causes);
                if r.rows_checked > 0 {
                    self.rows_checked = r.rows_checked;
                    self.rows_complete = r.rows_complete;
                    self.rows_conforming = r.rows_conforming;
                }
            }
            ProductEvent::QualityChanged { reading, .. } => self.tier = Some(reading.tier),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(id: &str) -> ProductDef {
        ProductDef {
            id: id.into(),
            name: "Sample".into(),
            domain: "markets".into(),
            owner: "Markets team".into(),
            description: "Daily prices".into(),
            tags: vec!["prices".into()],
            schema: vec![Column {
                name: "close".into(),
                kind: ColumnType::Float,
                required: true,
                description: String::new(),
                source: vec![],
                mask: false,
            }],
            output_ports: vec![OutputPort {
                kind: PortKind::Topic,
                address: "external.market.data".into(),
            }],
            contract: Contract {
                freshness_secs: 60,
                completeness: 0.99,
                schema_conformance: 1.0,
            },
            version: "1.0.0".into(),
            requires: vec![],
        }
    }

    #[test]
    fn apply_is_idempotent_and_updates_bump_the_version() {
        let mut p = DataProduct::default();
        let def = sample("prices");
        for e in p.handle(ProductCommand::Apply(def.clone())).unwrap() {
            p.apply(&e);
        }
        assert_eq!(p.version, 1);
        assert!(p
            .handle(ProductCommand::Apply(def.clone()))
            .unwrap()
            .is_empty());
        let mut changed = def.clone();
        changed.description = "Daily closing prices".into();
        let events = p.handle(ProductCommand::Apply(changed)).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type(), "data_product_updated");
        let mut other = def;
        other.id = "other".into();
        assert!(matches!(
            p.handle(ProductCommand::Apply(other)),
            Err(ProductError::IdMismatch { .. })
        ));
    }

    #[test]
    fn events_round_trip_through_their_payloads() {
        let events = [
            ProductEvent::Registered { def: sample("a") },
            ProductEvent::Refreshed(Refresh {
                at_ms: 5,
                causes: vec![Cause {
                    topic: "t".into(),
                    partition: 1,
                    offset: 9,
                    event_id: Some("e".into()),
                }],
                events: 3,
                rows_checked: 10,
                rows_complete: 9,
                rows_conforming: 10,
            }),
            ProductEvent::QualityChanged {
                from: Some(Tier::Gold),
                reading: QualityReading {
                    tier: Tier::Bronze,
                    age_secs: Some(7.5),
                    completeness: 1.0,
                    schema_conformance: 1.0,
                    reasons: vec!["stale".into()],
                },
            },
        ];
        for e in events {
            let back = ProductEvent::decode(e.event_type(), 1, e.to_payload()).unwrap();
            assert_eq!(back, e);
        }
    }

    #[test]
    fn validation_names_the_field() {
        let known = |t: &str| t == "external.market.data";
        assert!(sample("ok").validate(known).is_ok());
        let mut d = sample("Bad Id");
        assert_eq!(d.validate(known).unwrap_err().field, "id");
        d = sample("ok");
        d.output_ports[0].address = "nope".into();
        assert_eq!(d.validate(known).unwrap_err().field, "output_ports");
        d = sample("ok");
        d.version = "1.0".into();
        assert_eq!(d.validate(known).unwrap_err().field, "version");
        d = sample("ok");
        d.contract.completeness = 1.5;
        assert_eq!(
            d.validate(known).unwrap_err().field,
            "contract.completeness"
        );
        d = sample("ok");
        d.output_ports[0] = OutputPort {
            kind: PortKind::Parquet,
            address: "../etc/x.parquet".into(),
        };
        assert!(d.validate(known).is_err());
    }

    #[test]
    fn refresh_before_registration_is_refused() {
        let p = DataProduct::default();
        assert_eq!(
            p.handle(ProductCommand::Refresh {
                at_ms: 1,
                causes: vec![],
                events: 1,
                rows: (0, 0, 0)
            }),
            Err(ProductError::NotRegistered)
        );
    }
}
