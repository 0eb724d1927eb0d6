//! The service's settings.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The consumer group of the forensics service.
pub const SERVICE_GROUP: &str = "forensics-service";
/// Retention of explanations when none is configured: seven years.
pub const DEFAULT_RETENTION_DAYS: u32 = 7 * 365 + 2;

/// How the forensics service runs. Every field has a default; unknown
/// fields are an error (a misspelt setting must not be silently ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForensicsConfig {
    /// The SQLite file of the store (created with its directory).
    /// Default: `data/forensics.sqlite`.
    pub db: PathBuf,
    /// Directory holding `bull.json`, `bear.json` and `sideways.json`, the
    /// specialists the decisions were made with. Default: `models`.
    pub models_dir: PathBuf,
    /// Explanations of decisions older than this many days are deleted.
    /// Default: 7 years (2,557 days).
    pub retention_days: u32,
    /// How often retention runs, seconds (also once at start). Default: 3,600.
    pub purge_interval_secs: u64,
    /// Consumer group. Default: `forensics-service`.
    pub group: String,
    /// Topic of the decisions. Default: `trading_decisions`.
    pub topic: String,
    /// Threads explaining decisions; 0 means one per core. Default: 0.
    pub workers: usize,
    /// Most records per poll of the log. Default: 4,096.
    pub poll_max: usize,
    /// Records per unit of work handed to a worker. Default: 512.
    pub chunk_size: usize,
    /// Most rows per store transaction. Default: 32,768. A transaction
    /// writes every index page it touches once, whatever its number of
    /// rows, and waits for one flush: under load, larger ones store more
    /// per second (8,192 → 32,768: 88,000 → 94,000 decisions/s at 100,000
    /// offered on 2 cores); an idle service writes what is ready, so small
    /// ones still go at once.
    pub max_rows_per_transaction: usize,
    /// How often the consumer lag is sampled, milliseconds. Default: 1,000.
    pub lag_interval_ms: u64,
}

impl Default for ForensicsConfig {
    fn default() -> Self {
        ForensicsConfig {
            db: PathBuf::from("data").join(crate::ForensicsStore::FILE_NAME),
            models_dir: PathBuf::from("models"),
            retention_days: DEFAULT_RETENTION_DAYS,
            purge_interval_secs: 3_600,
            group: SERVICE_GROUP.to_owned(),
            topic: ultracore_events::trading::DECISIONS_TOPIC.to_owned(),
            workers: 0,
            poll_max: 4_096,
            chunk_size: 512,
            max_rows_per_transaction: 32_768,
            lag_interval_ms: 1_000,
        }
    }
}

impl ForensicsConfig {
    /// Checks every setting, naming the first one out of range.
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &str, v: u64| {
            if v == 0 {
                Err(Error::Config(format!("{name} must be at least 1")))
            } else {
                Ok(())
            }
        };
        positive("retention_days", self.retention_days.into())?;
        positive("purge_interval_secs", self.purge_interval_secs)?;
        positive("poll_max", self.poll_max as u64)?;
        positive("chunk_size", self.chunk_size as u64)?;
        positive(
            "max_rows_per_transaction",
            self.max_rows_per_transaction as u64,
        )?;
        positive("lag_interval_ms", self.lag_interval_ms)?;
        if self.group.is_empty() || self.topic.is_empty() {
            return Err(Error::Config("group and topic must not be empty".into()));
        }
        Ok(())
    }

    /// Worker threads: the setting, or one per core.
    pub fn worker_threads(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |p| p.get())
        }
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 86_400)
    }
}
