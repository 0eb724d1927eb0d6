//! [`LagConfig`]: how often the monitor samples, how much it remembers,
//! which groups it leaves alone.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::evaluator::Rules;

/// Group-name prefixes of the platform's private readers: groups of their
/// own that never commit (start-up rebuilds, live views, tools), with a
/// fresh name per run. They have no committed offsets to judge, and there
/// can be many: the monitor does not even ask for their lag.
pub const PRIVATE_GROUP_PREFIXES: &[&str] = &[
    "api-live-",
    "lineage-read",
    "mesh-rows",
    "mesh-lineage-",
    "ultracore-replay-",
    "ultracore-tail-",
    "ultracore-mcp-results-",
    "cdc-relay-recovery",
    "cdc-verify",
    "verify-all",
    "demo-events-",
    "check-",
    // The console's message browser and its tail of ops.alerts.
    "console-",
    // The Kafka backend's timestamp look-ups (assigned, never joined).
    "ultracore-lookup",
];

/// Settings of the lag monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LagConfig {
    /// Milliseconds between two samples of every group (default 5,000).
    pub interval_ms: u64,
    /// Samples kept per partition, Burrow's `intervals` (default 10): a
    /// window spans `window × interval`, and a partition is judged once
    /// its window is full.
    pub window: usize,
    /// Lag (records) at or below which a partition counts as caught up
    /// (Burrow's `allowed-lag`, default 0).
    pub allowed_lag: u64,
    /// Share of the window (0.0–1.0) a partition needs before it is judged
    /// (Burrow's `minimum-complete`, default 1.0: after a start the monitor
    /// knows nothing of the past, and a few samples would judge too early).
    pub min_complete: f32,
    /// Groups whose name starts with one of these are not monitored
    /// (default [`PRIVATE_GROUP_PREFIXES`]).
    pub skip_prefixes: Vec<String>,
    /// Partitions named in an alert, worst first (default 10).
    pub alert_partitions: usize,
    /// Record timestamps remembered for time lag, at most (default 100,000).
    pub timestamp_cache: usize,
    /// Group lag and timestamp look-ups in flight at once (default 8).
    pub concurrency: usize,
}

impl Default for LagConfig {
    fn default() -> Self {
        LagConfig {
            interval_ms: 5_000,
            window: 10,
            allowed_lag: 0,
            min_complete: 1.0,
            skip_prefixes: PRIVATE_GROUP_PREFIXES
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            alert_partitions: 10,
            timestamp_cache: 100_000,
            concurrency: 8,
        }
    }
}

impl LagConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.max(1))
    }

    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval_ms = u64::try_from(interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self
    }

    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window.max(1);
        self
    }

    /// Whether the monitor looks at `group`.
    pub fn monitors(&self, group: &str) -> bool {
        !self
            .skip_prefixes
            .iter()
            .any(|p| group.starts_with(p.as_str()))
    }

    pub fn rules(&self) -> Rules {
        Rules {
            allowed_lag: self.allowed_lag,
            min_complete: self.min_complete,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_private_groups() {
        let c = LagConfig::default();
        assert_eq!(c.interval(), Duration::from_secs(5));
        assert_eq!(c.window, 10);
        assert!(c.monitors("forensics"));
        assert!(!c.monitors("api-live-0190aa"));
        assert!(!c.monitors("lineage-read-0190aa"));
        let parsed: LagConfig =
            serde_json::from_str(r#"{"interval_ms": 50, "window": 4}"#).unwrap();
        assert_eq!(parsed.interval(), Duration::from_millis(50));
        assert_eq!(parsed.skip_prefixes, c.skip_prefixes);
        assert!(serde_json::from_str::<LagConfig>(r#"{"intervall_ms": 50}"#).is_err());
    }
}
