//! The runtime's metric families, one set per process, labelled by service,
//! group, topic and partition.

use std::sync::Arc;

use ultracore_metrics::{CounterVec, GaugeVec, HistogramVec, Registry, LATENCY_BUCKETS};

/// Records consumed, per group and topic.
pub const EVENTS_CONSUMED_TOTAL: &str = "ultracore_events_consumed_total";
/// Records a service finished with, by outcome (`handled`, `dead_lettered`).
pub const SERVICE_RECORDS_TOTAL: &str = "ultracore_service_records_total";
/// Retries of a failed record or batch.
pub const SERVICE_RETRIES_TOTAL: &str = "ultracore_service_retries_total";
/// Handler panics caught.
pub const SERVICE_PANICS_TOTAL: &str = "ultracore_service_panics_total";
/// Times a service was started again after failing.
pub const SERVICE_RESTARTS_TOTAL: &str = "ultracore_service_restarts_total";
/// 1 while a service runs, 0 otherwise.
pub const SERVICE_UP: &str = "ultracore_service_up";
/// Time to handle (and make durable) one batch.
pub const SERVICE_BATCH_SECONDS: &str = "ultracore_service_batch_seconds";
/// Keys a service's deduplication remembers.
pub const SERVICE_DEDUP_ENTRIES: &str = "ultracore_service_dedup_entries";
/// Records of a partition the group has not committed.
pub const CONSUMER_LAG_RECORDS: &str = "ultracore_consumer_lag_records";
/// Age of the oldest record of a partition the group has not handled.
pub const CONSUMER_LAG_SECONDS: &str = "ultracore_consumer_lag_seconds";

/// The runtime's families (registered in the process's [`Registry`]).
#[derive(Debug)]
pub struct RuntimeMetrics {
    pub consumed: Arc<CounterVec>,
    pub records: Arc<CounterVec>,
    pub retries: Arc<CounterVec>,
    pub panics: Arc<CounterVec>,
    pub restarts: Arc<CounterVec>,
    pub up: Arc<GaugeVec>,
    pub batch_seconds: Arc<HistogramVec>,
    pub dedup_entries: Arc<GaugeVec>,
    pub lag_records: Arc<GaugeVec>,
    pub lag_seconds: Arc<GaugeVec>,
}

impl RuntimeMetrics {
    pub fn register(registry: &Registry) -> Arc<Self> {
        Arc::new(RuntimeMetrics {
            consumed: registry.family(
                EVENTS_CONSUMED_TOTAL,
                CounterVec::new(
                    EVENTS_CONSUMED_TOTAL,
                    "Records consumed, per consumer group and topic.",
                    &["group", "topic"],
                ),
            ),
            records: registry.family(
                SERVICE_RECORDS_TOTAL,
                CounterVec::new(
                    SERVICE_RECORDS_TOTAL,
                    "Records a service finished with, by outcome (handled, dead_lettered).",
                    &["service", "outcome"],
                ),
            ),
            retries: registry.family(
                SERVICE_RETRIES_TOTAL,
                CounterVec::new(
                    SERVICE_RETRIES_TOTAL,
                    "Retries of a failed record or batch.",
                    &["service"],
                ),
            ),
            panics: registry.family(
                SERVICE_PANICS_TOTAL,
                CounterVec::new(
                    SERVICE_PANICS_TOTAL,
                    "Handler panics caught (the record is retried, then dead-lettered).",
                    &["service"],
                ),
            ),
            restarts: registry.family(
                SERVICE_RESTARTS_TOTAL,
                CounterVec::new(
                    SERVICE_RESTARTS_TOTAL,
                    "Times a service was started again after failing.",
                    &["service"],
                ),
            ),
            up: registry.family(
                SERVICE_UP,
                GaugeVec::new(SERVICE_UP, "1 while the service runs.", &["service"]),
            ),
            batch_seconds: registry.family(
                SERVICE_BATCH_SECONDS,
                HistogramVec::new(
                    SERVICE_BATCH_SECONDS,
                    "Time to handle one batch and make its effects durable.",
                    &["service"],
                    LATENCY_BUCKETS,
                ),
            ),
            dedup_entries: registry.family(
                SERVICE_DEDUP_ENTRIES,
                GaugeVec::new(
                    SERVICE_DEDUP_ENTRIES,
                    "Keys a service's bounded deduplication remembers.",
                    &["service"],
                ),
            ),
            lag_records: registry.family(
                CONSUMER_LAG_RECORDS,
                GaugeVec::new(
                    CONSUMER_LAG_RECORDS,
                    "Records of a partition the group has not committed.",
                    &["group", "topic", "partition"],
                ),
            ),
            lag_seconds: registry.family(
                CONSUMER_LAG_SECONDS,
                GaugeVec::new(
                    CONSUMER_LAG_SECONDS,
                    "Age of the oldest record of a partition the group has not handled, as far as its member has seen (0 when caught up).",
                    &["group", "topic", "partition"],
                ),
            ),
        })
    }
}
