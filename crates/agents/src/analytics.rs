//! The agent analytics service: consumer group `agent-analytics` on
//! `agent.executions` and `db.changes.users`. Every execution is stored
//! once, keyed by its `execution_id`, and every change to a user once,
//! keyed by its position in the source database; the figures are computed
//! from the stored rows when they are asked for: per agent the executions,
//! by status, the success rate, duration percentiles and trends per minute
//! and per hour, and the same over every agent; for users the changes by
//! operation and their trends.
//!
//! # Layout
//!
//! - this file: the service ([`spec`], [`registration`],
//!   [`AnalyticsService`]), what it reads from a record (an execution, a
//!   user change), its metrics ([`AnalyticsMetrics`]) and the percentile
//!   definition ([`nearest_rank`]).
//! - `store`: [`AnalyticsStore`], the SQLite file the service writes, and
//!   [`AgentAnalytics`], its readers and the figures' types.
//! - `users`: a user change on `db.changes.users` as it is counted
//!   ([`ChangeOp`], its position).
//! - `http`: [`router`], the three `GET` routes.
//!
//! # User changes
//!
//! `db.changes.users` carries Debezium change events (JSON, schemas
//! disabled), as the CDC relay of `ultracore serve` or Debezium itself
//! writes them: the key `{"id": "<user id>"}`, the value
//! `{before, after, source, op, ts_ms, transaction}` with `op` one of `c`
//! (created), `u` (updated), `d` (deleted) and `r` (read by the initial
//! snapshot). After each delete comes a tombstone, the same key with an
//! empty value (Kafka's null): it is not a change, and the service skips
//! it.
//!
//! A change is identified by where it is in the source database, which a
//! redelivered or re-sent record repeats:
//!
//! - SQLite (`source.connector` `sqlite`): `sqlite:<db>:<seq>`, with
//!   `source.seq` the change's place in the outbox;
//! - PostgreSQL (`postgresql`): `postgresql:<db>:<commit lsn>:<lsn>`, the
//!   commit LSN from `source.sequence` (`["<commit lsn>","<lsn>"]`), or
//!   `source.lsn` when it is null or absent.
//!
//! Every row of a snapshot is read at one position, so for `op` `r` the
//! user id (from the key, else from `after`) is added: `…:<user id>`.
//!
//! # Storage and delivery
//!
//! The rows live in a SQLite file of their own
//! ([`AnalyticsStore::FILE_NAME`] in the data directory), as the forensics
//! store does: the event store's [`Database`](ultracore_es::Database) keeps
//! JSON documents by key, while these figures need ordered scans of one
//! agent's durations and time ranges, which are indexes of a table.
//!
//! A batch (which may hold records of both topics) is written in one
//! transaction (`INSERT OR IGNORE`, fsynced) before the handler returns,
//! and the runtime commits the batch's offsets only after that. A crash
//! between the two delivers the batch again; the execution ids and change
//! positions are already stored and nothing changes, so the figures always
//! equal a recount of the distinct executions and changes on the log. When
//! one `execution_id` appears twice on the log, the first one stored
//! counts; so does the first of a change's copies (a Kafka producer's
//! retry, or Debezium restarted before it stored its offsets, sends a
//! change again, with the same position).
//!
//! Every record of a batch is read before anything is written. A record
//! that cannot be counted goes to `<topic>.dlq` with the reason: on
//! `agent.executions`, one that is not an `agent_execution`, or whose
//! execution cannot be counted (an empty `execution_id`, an `agent_id` the
//! routes could never name, a negative or non-finite duration); on
//! `db.changes.users`, a value that is not a JSON object, an `op` missing
//! or not one of `c`, `u`, `d`, `r`, or no position (no `source`,
//! `source.ts_ms`, `source.db`, a connector other than `sqlite` and
//! `postgresql`, no `source.seq` or `source.lsn`, a `source.sequence` that
//! is not two LSNs, no user id).
//!
//! # Metrics
//!
//! `agent_executions_total{agent_id,status}` (counter),
//! `agent_execution_duration_seconds{agent_id}` (histogram,
//! [`DURATION_BUCKETS`]) and `user_changes_total{op}` (counter; `op` `c`,
//! `u`, `d` or `r`), the names the platform's dashboards use. They count
//! executions and changes when their row is first stored, in the same
//! step, so a redelivered batch adds nothing. They restart from zero with
//! the process (as counters do); the stored figures do not.
//!
//! # Percentiles
//!
//! Exact, by the nearest-rank method: of `n` durations sorted ascending,
//! the `p`-th percentile is the `k`-th smallest, `k = ⌈p·n/100⌉` (at least
//! 1). It is always a duration that was observed; there is no
//! interpolation (of 1, 2, 3 and 4 s the median is 2 s, not 2.5 s). See
//! [`nearest_rank`].
//!
//! # Time
//!
//! An execution's time is when it finished: `started_at + duration_ms`
//! from the event, to the millisecond. A user change's time is
//! `source.ts_ms`, when it was committed in the database (not when the
//! relay or Debezium saw it). Trends are aligned to the clock:
//! `per_minute` holds the minute that contains `as_of` and the 59 before
//! it, `per_hour` the hour that contains `as_of` and the 23 before it,
//! oldest first, every bucket present (empty ones with `total` 0 and
//! `p95_seconds` null). Executions that finished, and changes committed,
//! after `as_of` are in the totals but in no bucket.
//!
//! A snapshot row's `source.ts_ms` is when the snapshot read it, not when
//! the user was changed: snapshot rows (`r`) are in `total` and
//! `by_op.r` but in no bucket and not in `last_changed_at`, so taking a
//! snapshot of a million users shows no burst of activity.
//!
//! # Routes and JSON
//!
//! `GET /api/v1/analytics/agents`: 200 with every agent
//! ([`Summary`]); `total` 0 and nulls before the first execution:
//!
//! ```json
//! { "total": 15,
//!   "by_status": { "succeeded": 11, "failed": 2, "timed_out": 1, "cancelled": 1 },
//!   "success_rate": 0.7333333333333333,
//!   "duration_seconds": { "p50": 0.7, "p95": 4.0, "p99": 4.0 },
//!   "last_finished_at": "2024-05-01T12:30:31Z",
//!   "agents": [
//!     { "agent_id": "card", "total": 10,
//!       "by_status": { "succeeded": 8, "failed": 1, "timed_out": 1, "cancelled": 0 },
//!       "success_rate": 0.8,
//!       "duration_seconds": { "p50": 0.5, "p95": 1.0, "p99": 1.0 },
//!       "last_finished_at": "2024-05-01T12:30:31Z" } ] }
//! ```
//!
//! Agents are listed by `agent_id`. `success_rate` is `succeeded / total`
//! (0 to 1; null when `total` is 0); durations are in seconds.
//!
//! `GET /api/v1/analytics/agents/{agent_id}`: 200 with one agent
//! ([`AgentReport`]): the fields of an entry of `agents` above, plus
//!
//! ```json
//! "trends": { "as_of": "2024-05-01T12:30:30Z",
//!   "per_minute": [ { "start": "2024-05-01T11:31:00Z", "total": 1,
//!                     "succeeded": 1, "p95_seconds": 0.6 }, … 60 buckets ],
//!   "per_hour":   [ { "start": "2024-04-30T13:00:00Z", "total": 1,
//!                     "succeeded": 1, "p95_seconds": 0.8 }, … 24 buckets ] }
//! ```
//!
//! `as_of` is the time of the request. Errors are problem+json
//! ([`ultracore_http::Problem`]): 400 `invalid_id` with `field`
//! `agent_id` when the id is not 1 to 64 of `A-Z a-z 0-9 - _ .`; 404
//! `not_found` when no execution of the agent is stored; 503 `unavailable`
//! when the store cannot be read.
//!
//! `GET /api/v1/analytics/users`: 200 with the user changes
//! ([`UserChanges`]) as of the request; `total` 0, every `by_op` 0 and
//! `last_changed_at` null before the first change:
//!
//! ```json
//! { "total": 7,
//!   "by_op": { "c": 3, "u": 2, "d": 1, "r": 1 },
//!   "last_changed_at": "2024-05-01T12:30:10Z",
//!   "trends": { "as_of": "2024-05-01T12:30:30Z",
//!     "per_minute": [ { "start": "2024-05-01T11:31:00Z", "total": 2,
//!                       "c": 1, "u": 1, "d": 0 }, … 60 buckets ],
//!     "per_hour":   [ { "start": "2024-04-30T13:00:00Z", "total": 0,
//!                       "c": 0, "u": 0, "d": 0 }, … 24 buckets ] } }
//! ```
//!
//! `total` is the sum of `by_op`; a bucket's `total` is `c + u + d`.
//! `last_changed_at` is when the last `c`, `u` or `d` was committed. 503
//! `unavailable` when the store cannot be read.

use std::sync::Arc;

use chrono::TimeDelta;
use ultracore_events::agents::{AgentEvent, ExecutionStatus, TOPIC as EXECUTIONS};
use ultracore_log::{Envelope, EventLog, Record};
use ultracore_metrics::{CounterVec, HistogramVec, Registry};
use ultracore_runtime::{ConsumerSpec, Handler, HandlerError, Registration, Subscription};

mod http;
mod store;
mod users;

pub use users::ChangeOp;
use users::UserChange;

pub use http::{router, AGENT_ROUTE, SUMMARY_ROUTE, USERS_ROUTE};
pub use store::{
    AgentAnalytics, AgentFigures, AgentReport, AnalyticsError, AnalyticsStore, Bucket, ByOp,
    ByStatus, ChangeBucket, ChangeTrends, Figures, Percentiles, Result, Summary, Trends,
    UserChanges,
};

/// The service's consumer group (and name).
pub const SERVICE_GROUP: &str = "agent-analytics";

/// Executions stored, by agent and status.
pub const EXECUTIONS_TOTAL: &str = "agent_executions_total";
/// Durations of the executions stored, by agent.
pub const DURATION_SECONDS: &str = "agent_execution_duration_seconds";
/// User changes stored, by operation.
pub const USER_CHANGES_TOTAL: &str = "user_changes_total";

/// The topic of the users table's change events (Debezium's envelope).
pub const USERS_TOPIC: &str = "db.changes.users";

/// Upper bounds of the duration buckets, seconds: agent runs take from a
/// few milliseconds (a cached tool) to minutes (a slow model).
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The consumer spec: group `agent-analytics` on `agent.executions` and
/// `db.changes.users`.
pub fn spec() -> ConsumerSpec {
    ConsumerSpec::new(
        SERVICE_GROUP,
        Subscription::topics([EXECUTIONS, USERS_TOPIC]),
    )
}

/// The service as the supervisor runs it. `store` is shared by every
/// start of the service; `metrics` are registered once per registry
/// ([`AnalyticsMetrics::register`]).
pub fn registration<L: EventLog>(
    log: L,
    store: AnalyticsStore,
    metrics: Arc<AnalyticsMetrics>,
) -> Registration {
    Registration::consumer(SERVICE_GROUP, log, spec(), move |_ctx| {
        Ok(AnalyticsService::new(store.clone(), metrics.clone()))
    })
}

/// Whether `id` can name an agent: 1 to 64 of `A-Z a-z 0-9 - _ .`. Records
/// of other agents are dead-lettered, and the routes refuse other ids.
pub fn valid_agent_id(id: &str) -> bool {
    // The platform's rule for ids (portfolios, customers).
    ultracore_http::is_valid_portfolio_id(id)
}

/// The `p`-th percentile (`p` in percent, 0 to 100) of `sorted`, ascending,
/// by the nearest-rank method: the `k`-th smallest value with
/// `k = ⌈p·n/100⌉`, at least 1 and at most `n`. `None` when `sorted` is
/// empty. The rank is computed in integers, so `p·n/100` that is a whole
/// number (the 95th of 20 values is the 19th) is never pushed to the next
/// rank by rounding.
pub fn nearest_rank(sorted: &[f64], p: u32) -> Option<f64> {
    let n = sorted.len() as u64;
    if n == 0 {
        return None;
    }
    let k = (u64::from(p.min(100)) * n).div_ceil(100).clamp(1, n);
    Some(sorted[(k - 1) as usize])
}

/// The service's metric families (see the module's `# Metrics`).
#[derive(Debug)]
pub struct AnalyticsMetrics {
    executions: Arc<CounterVec>,
    durations: Arc<HistogramVec>,
    user_changes: Arc<CounterVec>,
}

impl AnalyticsMetrics {
    /// Registers the families in `registry`. Call it once per registry: a
    /// second call returns families the registry does not export.
    pub fn register(registry: &Registry) -> Arc<Self> {
        if registry.contains(EXECUTIONS_TOTAL) {
            tracing::warn!(
                family = EXECUTIONS_TOTAL,
                "agent analytics metrics registered twice; the second set is not exported"
            );
        }
        Arc::new(AnalyticsMetrics {
            executions: registry.family(
                EXECUTIONS_TOTAL,
                CounterVec::new(
                    EXECUTIONS_TOTAL,
                    "Agent executions stored by the analytics service, by agent and status.",
                    &["agent_id", "status"],
                ),
            ),
            durations: registry.family(
                DURATION_SECONDS,
                HistogramVec::new(
                    DURATION_SECONDS,
                    "Duration of the agent executions stored by the analytics service, by agent.",
                    &["agent_id"],
                    DURATION_BUCKETS,
                ),
            ),
            user_changes: registry.family(
                USER_CHANGES_TOTAL,
                CounterVec::new(
                    USER_CHANGES_TOTAL,
                    "Changes to users (db.changes.users) stored by the analytics service, by operation.",
                    &["op"],
                ),
            ),
        })
    }

    fn record(&self, e: &Execution) {
        self.executions.with(&[&e.agent_id, e.status.name()]).inc();
        self.durations.with(&[&e.agent_id]).observe(e.duration_s);
    }

    fn record_change(&self, c: &UserChange) {
        self.user_changes.with(&[c.op.code()]).inc();
    }
}

/// One execution as it is stored.
#[derive(Debug, Clone, PartialEq)]
struct Execution {
    execution_id: String,
    agent_id: String,
    status: ExecutionStatus,
    duration_s: f64,
    /// `started_at + duration_ms`, milliseconds since the epoch.
    finished_ms: i64,
}

impl Execution {
    /// The execution of `record`, or why it cannot be counted.
    fn of(record: &Record) -> Result<Execution, String> {
        let env = Envelope::<AgentEvent>::from_record(record)
            .map_err(|e| format!("not an agent execution: {e}"))?;
        let AgentEvent::Execution(e) = env.payload;
        if e.execution_id.is_empty() {
            return Err("execution_id is empty".into());
        }
        if !valid_agent_id(&e.agent_id) {
            return Err(format!(
                "agent_id {:?} is not 1 to 64 of A-Z a-z 0-9 - _ .",
                e.agent_id.chars().take(80).collect::<String>()
            ));
        }
        if !e.duration_ms.is_finite() || e.duration_ms < 0.0 {
            return Err(format!(
                "duration_ms {} is not a finite number of at least 0",
                e.duration_ms
            ));
        }
        // `as` saturates; a duration that large fails the checked steps.
        let finished = TimeDelta::try_milliseconds(e.duration_ms.round() as i64)
            .and_then(|d| e.started_at.checked_add_signed(d))
            .ok_or_else(|| {
                format!(
                    "started_at {} plus duration_ms {} is not a time",
                    e.started_at, e.duration_ms
                )
            })?;
        Ok(Execution {
            execution_id: e.execution_id,
            agent_id: e.agent_id,
            status: e.status,
            duration_s: e.duration_ms / 1e3,
            finished_ms: finished.timestamp_millis(),
        })
    }
}

/// The handler: stores each batch's executions and user changes, then
/// counts the new ones in the metrics.
#[derive(Debug)]
pub struct AnalyticsService {
    store: AnalyticsStore,
    metrics: Arc<AnalyticsMetrics>,
    /// Executions this instance stored (not counting ones stored before).
    pub stored: u64,
    /// User changes this instance stored (not counting ones stored before).
    pub stored_changes: u64,
}

impl AnalyticsService {
    pub fn new(store: AnalyticsStore, metrics: Arc<AnalyticsMetrics>) -> Self {
        AnalyticsService {
            store,
            metrics,
            stored: 0,
            stored_changes: 0,
        }
    }
}

impl Handler for AnalyticsService {
    async fn handle(&mut self, records: &[Record]) -> Result<(), HandlerError> {
        // Every record is read before anything is written: a batch with a
        // bad record writes nothing, and the runtime hands its records over
        // again one by one, so the bad one is dead-lettered alone.
        let mut rows = Vec::new();
        let mut changes = Vec::new();
        for record in records {
            match record.topic.as_str() {
                EXECUTIONS => rows.push(Execution::of(record).map_err(HandlerError::reject)?),
                USERS_TOPIC => {
                    changes.extend(UserChange::of(record).map_err(HandlerError::reject)?)
                }
                other => {
                    return Err(HandlerError::reject(format!(
                        "topic {other} is not one the service reads ({EXECUTIONS}, {USERS_TOPIC})"
                    )))
                }
            }
        }
        if rows.is_empty() && changes.is_empty() {
            return Ok(());
        }
        let (store, metrics) = (self.store.clone(), self.metrics.clone());
        // SQLite blocks (a transaction and its fsync): off the async
        // workers. The metrics are counted in the same closure, after the
        // commit: if this task is dropped while waiting, the closure still
        // runs to its end, so rows and counters never part.
        let (fresh, fresh_changes) = tokio::task::spawn_blocking(move || {
            let (fresh, fresh_changes) = store.insert(&rows, &changes)?;
            for &i in &fresh {
                metrics.record(&rows[i]);
            }
            for &i in &fresh_changes {
                metrics.record_change(&changes[i]);
            }
            Ok::<_, AnalyticsError>((fresh.len() as u64, fresh_changes.len() as u64))
        })
        .await
        .map_err(|e| HandlerError::retry(format!("the store task failed: {e}")))?
        .map_err(|e| HandlerError::infra(e.to_string()))?;
        self.stored += fresh;
        self.stored_changes += fresh_changes;
        tracing::debug!(
            records = records.len(),
            fresh,
            fresh_changes,
            "agent executions and user changes stored"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::json;
    use ultracore_events::agents::{AgentExecution, AGGREGATE_TYPE};
    use ultracore_log::EnvelopeBuilder;

    #[test]
    fn nearest_rank_is_the_kth_smallest() {
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(nearest_rank(&ten, 50), Some(5.0));
        assert_eq!(nearest_rank(&ten, 95), Some(10.0));
        assert_eq!(nearest_rank(&ten, 99), Some(10.0));
        assert_eq!(nearest_rank(&ten, 10), Some(1.0));
        assert_eq!(nearest_rank(&ten, 11), Some(2.0));
        assert_eq!(nearest_rank(&ten, 100), Some(10.0));
        assert_eq!(nearest_rank(&ten, 0), Some(1.0), "at least the first");
        // No interpolation: the median of 1, 2, 3, 4 is 2.
        assert_eq!(nearest_rank(&[1.0, 2.0, 3.0, 4.0], 50), Some(2.0));
        // p·n/100 a whole number: exactly that rank (0.95 · 20 in floating
        // point is not 19, and its ceiling would be 20).
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(nearest_rank(&twenty, 95), Some(19.0));
        let thousand: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(nearest_rank(&thousand, 99), Some(990.0));
        assert_eq!(nearest_rank(&thousand, 50), Some(500.0));
        let odd: Vec<f64> = (1..=101).map(f64::from).collect();
        assert_eq!(nearest_rank(&odd, 50), Some(51.0));
        assert_eq!(nearest_rank(&[7.5], 1), Some(7.5));
        assert_eq!(nearest_rank(&[7.5], 99), Some(7.5));
        assert_eq!(nearest_rank(&[], 50), None);
        assert_eq!(nearest_rank(&ten, 250), Some(10.0), "p above 100 is 100");
    }

    #[test]
    fn agent_ids_are_short_plain_names() {
        let (longest, too_long) = ("a".repeat(64), "a".repeat(65));
        for ok in ["card", "loan-2", "wealth_v1.3", longest.as_str()] {
            assert!(valid_agent_id(ok), "{ok}");
        }
        for bad in ["", "card/x", "card x", "carte-é", too_long.as_str(), "a\n"] {
            assert!(!valid_agent_id(bad), "{bad:?}");
        }
    }

    fn record(e: &AgentExecution) -> Record {
        let r = EnvelopeBuilder::new(AGGREGATE_TYPE, "c-1")
            .build(AgentEvent::Execution(e.clone()))
            .to_record();
        Record {
            topic: EXECUTIONS.into(),
            partition: 0,
            offset: 0,
            timestamp: 0,
            key: r.key,
            value: r.value,
            headers: r.headers,
        }
    }

    fn execution() -> AgentExecution {
        AgentExecution {
            execution_id: "ex-1".into(),
            agent_id: "card".into(),
            status: ExecutionStatus::Failed,
            duration_ms: 1234.4,
            input: json!({}),
            output: json!(null),
            tools: vec![],
            trace: vec![],
            customer_id: None,
            request_id: None,
            error: Some("no".into()),
            started_at: Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
        }
    }

    #[test]
    fn an_execution_finishes_at_its_start_plus_its_duration() {
        let row = Execution::of(&record(&execution())).unwrap();
        assert_eq!(
            row,
            Execution {
                execution_id: "ex-1".into(),
                agent_id: "card".into(),
                status: ExecutionStatus::Failed,
                duration_s: 1234.4 / 1e3,
                finished_ms: Utc
                    .with_ymd_and_hms(2024, 5, 1, 12, 0, 1)
                    .unwrap()
                    .timestamp_millis()
                    + 234,
            }
        );
    }

    #[test]
    fn executions_that_cannot_be_counted_say_why() {
        /// A change to a valid execution, and what the refusal says.
        type Case = (fn(&mut AgentExecution), &'static str);
        let cases: [Case; 4] = [
            (|e| e.execution_id.clear(), "execution_id is empty"),
            (
                |e| e.agent_id = "card/../x".into(),
                "agent_id \"card/../x\"",
            ),
            (|e| e.duration_ms = -1.0, "duration_ms -1 is not"),
            (|e| e.duration_ms = 1e300, "is not a time"),
        ];
        for (change, reason) in cases {
            let mut e = execution();
            change(&mut e);
            let err = Execution::of(&record(&e)).unwrap_err();
            assert!(err.contains(reason), "{err} (wanted {reason})");
        }
        let mut r = record(&execution());
        r.value = b"{not json".to_vec();
        assert!(Execution::of(&r)
            .unwrap_err()
            .starts_with("not an agent execution"));
    }
}
