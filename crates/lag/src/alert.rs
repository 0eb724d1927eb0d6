//! The `ops_alert` event a group's status change becomes, on `ops.alerts`.
//!
//! An ordinary envelope (aggregate type `ConsumerGroup`, aggregate id and
//! so key the group), payload:
//!
//! ```json
//! { "kind": "consumer_lag", "group": "forensics", "status": "STALL",
//!   "previous_status": "OK", "complete": 1.0, "total_lag": 420,
//!   "max_time_lag_seconds": 63.2,
//!   "partitions": [ { "topic": "trading_decisions", "partition": 3,
//!       "status": "STALL", "committed": 1200, "high_watermark": 1620,
//!       "lag": 420, "time_lag_seconds": 63.2 } ],
//!   "evaluated_at": "2026-01-05T10:00:00.000Z" }
//! ```
//!
//! `partitions` lists the worst partitions first (status, then lag), at
//! most [`crate::LagConfig::alert_partitions`] of them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ultracore_log::{DecodeError, EnvelopeBuilder, RawEnvelope, Record};

use crate::{GroupStatus, Status};

/// The topic alerts go to (a row of the runtime's topic catalogue).
pub const TOPIC: &str = "ops.alerts";
/// The event type of every operational alert.
pub const EVENT_TYPE: &str = "ops_alert";
/// The `kind` of the monitor's alerts.
pub const KIND: &str = "consumer_lag";
/// The schema version this code writes and reads.
pub const SCHEMA_VERSION: u32 = 1;
/// The aggregate type of the envelope (its id is the group).
pub const AGGREGATE_TYPE: &str = "ConsumerGroup";

/// A group's status changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LagAlert {
    /// Always [`KIND`].
    pub kind: String,
    pub group: String,
    pub status: Status,
    pub previous_status: Status,
    pub complete: f32,
    pub total_lag: u64,
    pub max_time_lag_seconds: Option<f64>,
    pub partitions: Vec<PartitionAlert>,
    pub evaluated_at: DateTime<Utc>,
}

/// A partition as an alert names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionAlert {
    pub topic: String,
    pub partition: u32,
    pub status: Status,
    pub committed: u64,
    pub high_watermark: u64,
    pub lag: u64,
    pub time_lag_seconds: Option<f64>,
}

impl LagAlert {
    /// The alert for `group` having changed from `previous`, naming at
    /// most `partitions` of its partitions, worst first.
    pub fn new(group: &GroupStatus, previous: Status, partitions: usize) -> LagAlert {
        let mut worst: Vec<&crate::PartitionStatus> = group.partitions.iter().collect();
        worst.sort_by(|a, b| b.status.cmp(&a.status).then(b.lag.cmp(&a.lag)));
        LagAlert {
            kind: KIND.to_owned(),
            group: group.group.clone(),
            status: group.status,
            previous_status: previous,
            complete: group.complete,
            total_lag: group.total_lag,
            max_time_lag_seconds: group.max_time_lag_seconds,
            partitions: worst
                .into_iter()
                .take(partitions)
                .map(|p| PartitionAlert {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    status: p.status,
                    committed: p.committed,
                    high_watermark: p.high_watermark,
                    lag: p.lag,
                    time_lag_seconds: p.time_lag_seconds,
                })
                .collect(),
            evaluated_at: DateTime::from_timestamp_millis(group.evaluated_at_ms)
                .unwrap_or_default(),
        }
    }

    /// The envelope that goes on [`TOPIC`].
    pub fn envelope(&self) -> RawEnvelope {
        let payload = serde_json::to_value(self).expect("an alert always serializes");
        EnvelopeBuilder::new(AGGREGATE_TYPE, self.group.clone()).build_raw(
            EVENT_TYPE,
            SCHEMA_VERSION,
            payload,
        )
    }

    /// The lag alert a record of [`TOPIC`] carries; `None` for another
    /// event type or another kind of alert. Errors when it is not an
    /// envelope, or not a lag alert of a schema version this code knows.
    pub fn from_record(record: &Record) -> Result<Option<LagAlert>, DecodeError> {
        let env = RawEnvelope::from_bytes(&record.value)?;
        if env.event_type != EVENT_TYPE
            || env.payload.get("kind").and_then(|k| k.as_str()) != Some(KIND)
        {
            return Ok(None);
        }
        if env.schema_version > SCHEMA_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                event_type: env.event_type,
                version: env.schema_version,
                newest: SCHEMA_VERSION,
            });
        }
        ultracore_log::payload_as(EVENT_TYPE, env.payload).map(Some)
    }
}
