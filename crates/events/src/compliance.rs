//! `compliance.alerts`: what governance found and where, never the value:
//! personal data in an agent's answer is reported with its entity, how
//! likely the match is, where it was seen and a keyed fingerprint of the
//! value (the same value gives the same fingerprint under one key, so
//! alerts can be correlated; the value cannot be recovered from it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event_family_v1;

pub const TOPIC: &str = "compliance.alerts";

/// The aggregate type of alerts; the aggregate id is the customer (or the
/// agent) the data was seen for.
pub const AGGREGATE_TYPE: &str = "ComplianceAlert";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ComplianceEvent {
    Alert(ComplianceAlert),
}

event_family_v1!(ComplianceEvent {
    Alert => "compliance_alert",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Where a finding was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenAt {
    /// The topic and event the text came from.
    pub topic: String,
    pub event_id: String,
    /// The JSON pointer of the text in the event's payload (`/output/text`).
    pub field: String,
    /// Byte offsets of the finding in that text.
    pub start: usize,
    pub end: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
}

/// One finding of personal data where it should not be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceAlert {
    /// Derived from the source event, the field and the offsets: the same
    /// finding reported twice has one id.
    pub alert_id: String,
    /// `pii_detected`.
    pub alert_type: String,
    pub severity: Severity,
    /// `CREDIT_CARD`, `AU_TFN`, … (the recognizers' entity names).
    pub entity: String,
    /// `possible`, `likely` or `very_likely`.
    pub likelihood: String,
    pub recognizer: String,
    /// HMAC-SHA-256 of the entity and the normalised value under the
    /// deployment's governance key, 32 hex digits.
    pub fingerprint: String,
    pub seen_at: SeenAt,
    /// `reported` (the text went out as it was) or `masked` (blocking
    /// mode replaced the value before the text left).
    pub action: String,
    pub detected_at: DateTime<Utc>,
}
