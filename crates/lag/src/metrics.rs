//! The monitor's metric families.
//!
//! Status gauges hold [`crate::Status::code`]: -1 NOTFOUND, 0 OK, 1 WARN,
//! 2 STALL, 3 STOP, 4 REWIND (`>= 2` is an error). Series of groups and
//! partitions that are gone are dropped.

use std::sync::Arc;

use ultracore_metrics::{GaugeVec, HistogramVec, Registry, LATENCY_BUCKETS};

/// A group's status (its worst partition's).
pub const GROUP_STATUS: &str = "ultracore_lag_group_status";
/// A partition's status.
pub const PARTITION_STATUS: &str = "ultracore_lag_partition_status";
/// Records of a partition the group has not committed.
pub const RECORDS: &str = "ultracore_lag_records";
/// Age of the oldest record of a partition the group has not committed
/// (now minus that record's timestamp; 0 when caught up).
pub const TIME_SECONDS: &str = "ultracore_lag_time_seconds";
/// Time one evaluation round took (sampling every group, judging, publishing).
pub const EVALUATION_SECONDS: &str = "ultracore_lag_evaluation_seconds";

/// Every metric name this crate exports (for dashboards' checks).
pub const ALL: &[&str] = &[
    GROUP_STATUS,
    PARTITION_STATUS,
    RECORDS,
    TIME_SECONDS,
    EVALUATION_SECONDS,
];

/// The families, registered once per monitor.
#[derive(Debug)]
pub(crate) struct LagMetrics {
    pub group_status: Arc<GaugeVec>,
    pub partition_status: Arc<GaugeVec>,
    pub records: Arc<GaugeVec>,
    pub time_seconds: Arc<GaugeVec>,
    pub evaluation_seconds: Arc<HistogramVec>,
}

impl LagMetrics {
    pub fn register(registry: &Registry) -> Self {
        LagMetrics {
            group_status: registry.family(
                GROUP_STATUS,
                GaugeVec::new(
                    GROUP_STATUS,
                    "Consumer group status by Burrow's rules, its worst partition's: -1 NOTFOUND, 0 OK, 1 WARN, 2 STALL, 3 STOP, 4 REWIND.",
                    &["group"],
                ),
            ),
            partition_status: registry.family(
                PARTITION_STATUS,
                GaugeVec::new(
                    PARTITION_STATUS,
                    "Partition status by Burrow's rules: -1 NOTFOUND, 0 OK, 1 WARN, 2 STALL, 3 STOP, 4 REWIND.",
                    &["group", "topic", "partition"],
                ),
            ),
            records: registry.family(
                RECORDS,
                GaugeVec::new(
                    RECORDS,
                    "Records of a partition the group has not committed (high watermark minus committed offset).",
                    &["group", "topic", "partition"],
                ),
            ),
            time_seconds: registry.family(
                TIME_SECONDS,
                GaugeVec::new(
                    TIME_SECONDS,
                    "Age of the oldest record of a partition the group has not committed (0 when caught up).",
                    &["group", "topic", "partition"],
                ),
            ),
            evaluation_seconds: registry.family(
                EVALUATION_SECONDS,
                HistogramVec::new(
                    EVALUATION_SECONDS,
                    "Time one lag evaluation round took: sampling every group, judging every partition.",
                    &[],
                    LATENCY_BUCKETS,
                ),
            ),
        }
    }
}
