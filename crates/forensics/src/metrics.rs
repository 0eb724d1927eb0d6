//! The service's metrics and their Prometheus text exposition.
//!
//! Names are constants here so the exposition, the alert rules
//! (`deploy/prometheus/forensics-alerts.yml`) and the tests agree. Counters
//! and gauges are atomics the service updates; the lag gauges are sampled
//! by the service every second (`lag_interval`).

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ultracore_spool::EmitterStats;

/// Records on `trading_decisions` the group has not committed, per partition.
pub const CONSUMER_LAG_RECORDS: &str = "ultracore_forensics_consumer_lag_records";
/// How far behind the stored explanations are, in seconds.
pub const CONSUMER_LAG_SECONDS: &str = "ultracore_forensics_consumer_lag_seconds";
/// Decisions made but not yet explained: the log lag plus, with an emitter
/// attached, its spool backlog and queue.
pub const BACKLOG_RECORDS: &str = "ultracore_forensics_backlog_records";
/// Time to explain one decision (decoding it, SHAP for every specialist,
/// encoding the row), measured per chunk of decisions and shared out.
pub const EXPLAIN_SECONDS: &str = "ultracore_forensics_explain_seconds";
/// Time to store one batch durably.
pub const STORE_BATCH_SECONDS: &str = "ultracore_forensics_store_batch_seconds";
/// Decisions explained.
pub const EXPLAINED_TOTAL: &str = "ultracore_forensics_decisions_explained_total";
/// Rows inserted into the store.
pub const ROWS_STORED_TOTAL: &str = "ultracore_forensics_rows_stored_total";
/// Rows in the store now.
pub const STORE_ROWS: &str = "ultracore_forensics_store_rows";
/// Decisions delivered again that were already stored.
pub const DUPLICATES_TOTAL: &str = "ultracore_forensics_duplicates_total";
/// Records sent to `trading_decisions.dlq`.
pub const DEAD_LETTERED_TOTAL: &str = "ultracore_forensics_dead_lettered_total";
/// Rows deleted by retention.
pub const PURGED_TOTAL: &str = "ultracore_forensics_purged_rows_total";
/// The decision emitter's circuit breaker: 0 closed, 1 open, 2 half-open.
pub const BREAKER_STATE: &str = "ultracore_spool_breaker_state";
/// 1 while the decision emitter's breaker is open.
pub const BREAKER_OPEN: &str = "ultracore_spool_breaker_open";
/// Consecutive failed appends of the decision emitter to the log.
pub const PRODUCER_CONSECUTIVE_FAILURES: &str = "ultracore_spool_consecutive_failures";
/// Decision events in the emitter's durable spool, not yet forwarded.
pub const SPOOL_BACKLOG: &str = "ultracore_spool_backlog_records";

/// Upper bounds of the explanation-time buckets, seconds.
const EXPLAIN_BUCKETS: [f64; 12] = [
    5e-6, 1e-5, 2e-5, 3e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 2.5e-2, 0.1,
];
/// Upper bounds of the store-batch buckets, seconds.
const STORE_BUCKETS: [f64; 10] = [1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0, 5.0];

/// A histogram of durations with fixed buckets, updated without locks.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative), then +Inf.
    counts: Vec<AtomicU64>,
    /// Sum in nanoseconds.
    sum_nanos: AtomicU64,
}

/// A thread-local tally merged into a [`Histogram`] in one go, so workers
/// do not touch shared cache lines per decision.
#[derive(Debug, Clone)]
pub struct LocalHistogram {
    counts: Vec<u64>,
    sum_nanos: u64,
}

impl LocalHistogram {
    /// Records one duration in nanoseconds.
    pub fn record_nanos(&mut self, bounds: &[f64], nanos: u64) {
        let secs = nanos as f64 * 1e-9;
        let i = bounds.partition_point(|&b| b < secs);
        self.counts[i] += 1;
        self.sum_nanos += nanos;
    }

    /// Records `count` durations of `nanos` each (a batch's time shared out).
    pub fn record_many(&mut self, bounds: &[f64], nanos: u64, count: u64) {
        let secs = nanos as f64 * 1e-9;
        let i = bounds.partition_point(|&b| b < secs);
        self.counts[i] += count;
        self.sum_nanos += nanos * count;
    }
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// An empty local tally for this histogram.
    pub fn local(&self) -> LocalHistogram {
        LocalHistogram {
            counts: vec![0; self.counts.len()],
            sum_nanos: 0,
        }
    }

    /// The bucket bounds (for [`LocalHistogram::record_nanos`]).
    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    pub fn merge(&self, local: &LocalHistogram) {
        for (c, &n) in self.counts.iter().zip(&local.counts) {
            if n > 0 {
                c.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.sum_nanos.fetch_add(local.sum_nanos, Ordering::Relaxed);
    }

    pub fn observe(&self, nanos: u64) {
        let mut l = self.local();
        l.record_nanos(self.bounds, nanos);
        self.merge(&l);
    }

    /// Mean observation in nanoseconds (0 before any).
    pub fn mean_nanos(&self) -> f64 {
        let n = self.count();
        if n == 0 {
            0.0
        } else {
            self.sum_nanos.load(Ordering::Relaxed) as f64 / n as f64
        }
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0u64;
        for (bound, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_nanos.load(Ordering::Relaxed) as f64 * 1e-9
        );
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Lag of one partition, as last sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: u32,
    pub records: u64,
}

/// Every metric of one forensics service, shared between the service
/// (which updates it) and the HTTP router (which renders it).
#[derive(Debug)]
pub struct ForensicsMetrics {
    pub explain: Histogram,
    pub store_batch: Histogram,
    pub explained: AtomicU64,
    pub rows_stored: AtomicU64,
    pub store_rows: AtomicU64,
    pub duplicates: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub purged: AtomicU64,
    /// Sampled lag per partition.
    pub lag: Mutex<Vec<PartitionLag>>,
    /// Sampled lag in milliseconds.
    pub lag_millis: AtomicU64,
    /// Timestamp (ms) of the newest record whose explanation is committed; -1 none.
    pub last_committed_ts: AtomicI64,
    /// Timestamp (ms) of the oldest record polled and not yet committed; -1 none.
    pub oldest_in_flight_ts: AtomicI64,
}

impl Default for ForensicsMetrics {
    fn default() -> Self {
        ForensicsMetrics {
            explain: Histogram::new(&EXPLAIN_BUCKETS),
            store_batch: Histogram::new(&STORE_BUCKETS),
            explained: AtomicU64::new(0),
            rows_stored: AtomicU64::new(0),
            store_rows: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            purged: AtomicU64::new(0),
            lag: Mutex::new(Vec::new()),
            lag_millis: AtomicU64::new(0),
            last_committed_ts: AtomicI64::new(-1),
            oldest_in_flight_ts: AtomicI64::new(-1),
        }
    }
}

/// Where the HTTP router gets the decision emitter's statistics from (for
/// example `Arc::new(move || emitter.stats())` around a shared
/// `SpooledEmitter`).
pub type EmitterStatsSource = Arc<dyn Fn() -> EmitterStats + Send + Sync>;

impl ForensicsMetrics {
    /// Records on the log not yet committed, summed over partitions.
    pub fn lag_records(&self) -> u64 {
        self.lag
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|l| l.records)
            .sum()
    }

    /// Stores a lag sample. `lag_seconds` follows from the records' times:
    /// 0 when nothing is pending; else now minus the time of the oldest
    /// record in flight, or, when none is in flight, of the newest committed
    /// record (an upper bound: the next record is at least that recent).
    pub fn set_lag(&self, partitions: Vec<PartitionLag>, now_millis: i64) {
        let pending: u64 = partitions.iter().map(|l| l.records).sum();
        *self.lag.lock().unwrap_or_else(|p| p.into_inner()) = partitions;
        let millis = if pending == 0 {
            0
        } else {
            let oldest = self.oldest_in_flight_ts.load(Ordering::Relaxed);
            let last = self.last_committed_ts.load(Ordering::Relaxed);
            let since = if oldest >= 0 { oldest } else { last };
            if since >= 0 {
                (now_millis - since).max(0) as u64
            } else {
                0
            }
        };
        self.lag_millis.store(millis, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4) of these metrics and,
    /// when given, the decision emitter's.
    pub fn render(&self, emitter: Option<&EmitterStats>) -> String {
        let mut out = String::with_capacity(4096);
        let lag = self.lag.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let _ = writeln!(
            out,
            "# HELP {CONSUMER_LAG_RECORDS} Records on the topic the forensics-service group has not committed.\n# TYPE {CONSUMER_LAG_RECORDS} gauge"
        );
        for l in &lag {
            let _ = writeln!(
                out,
                "{CONSUMER_LAG_RECORDS}{{topic=\"{}\",partition=\"{}\"}} {}",
                escape(&l.topic),
                l.partition,
                l.records
            );
        }
        gauge(
            &mut out,
            CONSUMER_LAG_SECONDS,
            "How far behind the stored explanations are (0 when caught up).",
            self.lag_millis.load(Ordering::Relaxed) as f64 / 1000.0,
        );
        let spool_pending = emitter.map_or(0, |s| s.spool_backlog + s.queued);
        gauge(
            &mut out,
            BACKLOG_RECORDS,
            "Decisions not yet explained: uncommitted on the log, plus spooled or queued by the emitter when attached.",
            (lag.iter().map(|l| l.records).sum::<u64>() + spool_pending) as f64,
        );
        self.explain.render(
            &mut out,
            EXPLAIN_SECONDS,
            "Time to explain one decision (decoding, SHAP of every specialist, encoding the row; a chunk's time shared out over its decisions).",
        );
        self.store_batch.render(
            &mut out,
            STORE_BATCH_SECONDS,
            "Time to store one batch of explanations durably.",
        );
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        counter(
            &mut out,
            EXPLAINED_TOTAL,
            "Decisions explained.",
            load(&self.explained),
        );
        counter(
            &mut out,
            ROWS_STORED_TOTAL,
            "Explanations inserted into the store.",
            load(&self.rows_stored),
        );
        gauge(
            &mut out,
            STORE_ROWS,
            "Explanations in the store.",
            load(&self.store_rows),
        );
        counter(
            &mut out,
            DUPLICATES_TOTAL,
            "Decisions delivered again that were already stored.",
            load(&self.duplicates),
        );
        counter(
            &mut out,
            DEAD_LETTERED_TOTAL,
            "Records sent to the dead-letter topic.",
            load(&self.dead_lettered),
        );
        counter(
            &mut out,
            PURGED_TOTAL,
            "Explanations deleted by retention.",
            load(&self.purged),
        );
        if let Some(s) = emitter {
            render_emitter(&mut out, s);
        }
        out
    }
}

/// The decision emitter's metrics (breaker, failures, spool).
pub fn render_emitter(out: &mut String, s: &EmitterStats) {
    gauge(
        out,
        BREAKER_STATE,
        "Circuit breaker of the decision emitter: 0 closed, 1 open, 2 half-open.",
        f64::from(s.breaker.as_gauge()),
    );
    gauge(
        out,
        BREAKER_OPEN,
        "1 while the decision emitter's circuit breaker is open.",
        if s.breaker == ultracore_spool::BreakerState::Open {
            1.0
        } else {
            0.0
        },
    );
    gauge(
        out,
        PRODUCER_CONSECUTIVE_FAILURES,
        "Consecutive failed appends of the decision emitter to the log.",
        s.consecutive_failures as f64,
    );
    gauge(
        out,
        SPOOL_BACKLOG,
        "Decision events in the durable spool, not yet forwarded to the log.",
        s.spool_backlog as f64,
    );
    gauge(
        out,
        "ultracore_spool_queued_records",
        "Decision events in memory, not yet delivered or spooled.",
        s.queued as f64,
    );
    for (name, help, v) in [
        (
            "ultracore_spool_emitted_total",
            "Events accepted by the emitter.",
            s.emitted,
        ),
        (
            "ultracore_spool_delivered_total",
            "Events appended to the log directly.",
            s.delivered,
        ),
        (
            "ultracore_spool_spooled_total",
            "Events written to the spool.",
            s.spooled,
        ),
        (
            "ultracore_spool_forwarded_total",
            "Events forwarded from the spool to the log.",
            s.forwarded,
        ),
        (
            "ultracore_spool_refused_total",
            "Events refused because the queue was full.",
            s.refused,
        ),
        (
            "ultracore_spool_target_failures_total",
            "Failed appends to the log.",
            s.target_failures,
        ),
        (
            "ultracore_spool_breaker_transitions_total",
            "Circuit breaker state changes.",
            s.breaker_transitions,
        ),
    ] {
        counter(out, name, help, v as f64);
    }
}

fn gauge(out: &mut String, name: &str, help: &str, v: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

fn counter(out: &mut String, name: &str, help: &str, v: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}

/// Label values escape backslash, quote and newline.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
