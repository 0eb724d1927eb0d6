//! Compliance alerts as the notification service keeps them: namespace
//! `alerts` in the database, view `all` keyed by alert id (so an alert
//! delivered twice is stored once) and view `by_time` (newest first) for
//! pages; pushed to live clients once stored. Alerts carry no personal
//! data, only where it was seen and a keyed fingerprint.

use ultracore_es::{Batch, Database};
use ultracore_events::compliance::{ComplianceAlert, ComplianceEvent};
use ultracore_log::{Envelope, Record};

use crate::{Error, Page, Result};

/// The alerts' namespace in the database.
pub const ALERTS: &str = "alerts";

fn time_key(a: &ComplianceAlert) -> String {
    format!("{}/{}", crate::newest_first(a.detected_at), a.alert_id)
}

/// Adds the alert of `record` to `batch` unless it is stored (or already
/// in the batch). Returns it when new; `None` for a duplicate or a record
/// that is not an alert (logged and skipped, as the notifier skips what
/// it cannot read).
pub(crate) fn stage(
    db: &Database,
    batch: &mut Batch,
    record: &Record,
) -> Result<Option<ComplianceAlert>> {
    let env = match Envelope::<ComplianceEvent>::from_record(record) {
        Ok(env) => env,
        Err(e) => {
            tracing::warn!(topic = %record.topic, offset = record.offset, error = %e, "not a compliance alert; skipped");
            return Ok(None);
        }
    };
    let ComplianceEvent::Alert(a) = env.payload;
    let key = ("all".to_owned(), a.alert_id.clone());
    if batch.documents.contains_key(&key) || db.document(ALERTS, "all", &a.alert_id)?.is_some() {
        return Ok(None);
    }
    let doc = serde_json::to_value(&a).map_err(|e| Error::ReadModel(e.to_string()))?;
    batch
        .documents
        .insert(("by_time".into(), time_key(&a)), Some(doc));
    // The id view only marks the alert as stored.
    batch
        .documents
        .insert(key, Some(serde_json::json!({"stored": true})));
    Ok(Some(a))
}

/// Reads stored alerts.
#[derive(Debug, Clone)]
pub struct Alerts {
    db: Database,
}

impl Alerts {
    pub fn new(db: Database) -> Self {
        Alerts { db }
    }

    /// At most `limit` alerts, newest first, after `cursor` (the
    /// `next_cursor` of the page before): one range of the key index.
    pub fn page(&self, cursor: Option<&str>, limit: usize) -> Result<Page<ComplianceAlert>> {
        let docs = self
            .db
            .documents_page(ALERTS, "by_time", "", cursor, limit)?;
        let next_cursor = (limit > 0 && docs.len() == limit)
            .then(|| docs.last().map(|(k, _)| k.clone()))
            .flatten();
        let items = docs
            .into_iter()
            .map(|(_, doc)| {
                serde_json::from_value::<ComplianceAlert>(doc)
                    .map_err(|e| Error::ReadModel(e.to_string()))
            })
            .collect::<Result<_>>()?;
        Ok(Page { items, next_cursor })
    }
}
