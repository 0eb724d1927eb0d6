//! The agent analytics service on a real embedded log, run by the
//! runtime's supervisor: hand-computed figures (counts, success rates,
//! nearest-rank percentiles, clock-aligned trends; user changes by
//! operation) from the reader and over HTTP; killed mid-stream several
//! times, once between handling a batch and committing it, its figures and
//! metrics still equal a recount of the log, executions and user changes
//! alike; duplicates and redelivered batches count once, tombstones not at
//! all; records it cannot count go to the dead-letter topic and the
//! service goes on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::{json, Value};
use ultracore_agents::analytics::{
    self, AgentAnalytics, AgentReport, AnalyticsMetrics, AnalyticsService, AnalyticsStore, Bucket,
    ByOp, ByStatus, ChangeBucket, ChangeTrends, Figures, Percentiles, Trends, UserChanges,
    SERVICE_GROUP, USERS_TOPIC,
};
use ultracore_events::agents::{
    AgentEvent, AgentExecution, ExecutionStatus, AGGREGATE_TYPE, TOPIC,
};
use ultracore_log::{
    Envelope, EnvelopeBuilder, EventLog, EventLogExt, NewRecord, Record, TopicSpec,
};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_rng::SplitMix64;
use ultracore_runtime::{
    run_standalone, Handler, HandlerError, Registration, Registry, Supervisor, SupervisorOptions,
};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const DEADLINE: Duration = Duration::from_secs(120);

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// An execution that finished at `finished` after `duration_ms`.
fn execution(
    id: &str,
    agent: &str,
    status: ExecutionStatus,
    duration_ms: f64,
    finished: DateTime<Utc>,
    customer: &str,
) -> NewRecord {
    let started_at = finished - TimeDelta::microseconds((duration_ms * 1e3).round() as i64);
    let e = AgentExecution {
        execution_id: id.into(),
        agent_id: agent.into(),
        status,
        duration_ms,
        input: json!({"query": "how am I doing?"}),
        output: json!({"text": "fine"}),
        tools: vec![],
        trace: vec![],
        customer_id: Some(customer.into()),
        request_id: None,
        error: None,
        started_at,
    };
    EnvelopeBuilder::new(AGGREGATE_TYPE, customer)
        .build(AgentEvent::Execution(e))
        .to_record()
}

/// Where a user change is in its source database.
#[derive(Debug, Clone, Copy)]
enum Src {
    /// SQLite through the outbox relay: `source.seq`.
    Sqlite(u64),
    /// PostgreSQL: the commit LSN (none on snapshot rows) and the change's.
    Postgres(Option<u64>, u64),
}

/// A change event of the users table as Debezium (and the CDC relay)
/// writes it: key `{"id": …}`, the JSON envelope without schemas.
fn user_change(user: &str, op: &str, src: Src, committed: DateTime<Utc>) -> NewRecord {
    let ms = committed.timestamp_millis();
    let row = json!({"id": user, "name": "Ada Lovelace", "email": format!("{user}@example.com"),
                     "country": "AU", "status": "active"});
    let (before, after) = match op {
        "c" | "r" => (Value::Null, row),
        "u" => (row.clone(), row),
        _ => (row, Value::Null),
    };
    let snapshot = if op == "r" { "true" } else { "false" };
    let source = match src {
        Src::Sqlite(seq) => json!({
            "version": "0.1.0", "connector": "sqlite", "name": "ultracore", "ts_ms": ms,
            "snapshot": snapshot, "db": "operational", "schema": "main", "table": "users",
            "seq": seq}),
        Src::Postgres(commit, lsn) => json!({
            "version": "0.1.0", "connector": "postgresql", "name": "ultracore", "ts_ms": ms,
            "snapshot": snapshot, "db": "bank",
            "sequence": json!([commit.map(|c| c.to_string()), lsn.to_string()]).to_string(),
            "schema": "public", "table": "users", "txId": 4711, "lsn": lsn}),
    };
    let value = json!({"before": before, "after": after, "source": source, "op": op,
                       "ts_ms": ms + 40, "transaction": null});
    NewRecord::new(json!({"id": user}).to_string(), value.to_string())
}

/// The tombstone after a delete: the key, an empty value.
fn tombstone(user: &str) -> NewRecord {
    NewRecord::new(json!({"id": user}).to_string(), Vec::new())
}

/// `record` sent again later (Debezium restarted before it stored its
/// offsets): the same change, processed at another time.
fn resent(record: &NewRecord) -> TestResult<NewRecord> {
    let mut value: Value = serde_json::from_slice(&record.value)?;
    value["ts_ms"] = json!(value["ts_ms"].as_i64().ok_or("ts_ms")? + 60_000);
    let mut again = record.clone();
    again.value = value.to_string().into_bytes();
    Ok(again)
}

async fn open_log(dir: &std::path::Path) -> TestResult<EmbeddedLog> {
    let log = EmbeddedLog::open(dir.join("log"), EmbeddedOptions::default())?;
    log.ensure_topic(&TopicSpec::new(TOPIC, 3)).await?;
    log.ensure_topic(&TopicSpec::new(USERS_TOPIC, 3)).await?;
    Ok(log)
}

/// Records the group has committed, over every topic it reads.
async fn committed_records(log: &EmbeddedLog) -> TestResult<u64> {
    Ok(log
        .group_lag(SERVICE_GROUP)
        .await?
        .iter()
        .map(|l| l.committed.unwrap_or(0))
        .sum())
}

async fn wait_for<F, Fut>(what: &str, mut done: F) -> TestResult
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = TestResult<bool>>,
{
    let start = Instant::now();
    while !done().await? {
        if start.elapsed() > DEADLINE {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(())
}

/// Runs `registration` under a supervisor of its own (metrics into
/// `registry`); dropping the returned task's handle does not stop it,
/// aborting it kills the service.
fn supervise(
    registry: &Registry,
    registration: Registration,
) -> (
    ultracore_runtime::CancellationToken,
    tokio::task::JoinHandle<Result<(), ultracore_runtime::Failure>>,
) {
    let mut supervisor = Supervisor::new(registry.clone(), SupervisorOptions::default());
    let token = supervisor.token();
    supervisor.add(registration);
    (
        token,
        tokio::spawn(supervisor.run(std::future::pending::<()>())),
    )
}

/// Every exported series with labels: name, labels, value.
fn series(registry: &Registry) -> Vec<(String, HashMap<String, String>, u64)> {
    let text = registry.render();
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Some((name, labels)) = series.split_once('{') else {
            continue;
        };
        let labels = labels
            .trim_end_matches('}')
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect();
        let value = value.parse::<f64>().unwrap_or(f64::NAN) as u64;
        out.push((name.to_owned(), labels, value));
    }
    out
}

/// `agent_executions_total` by (agent, status) and the duration
/// histogram's count by agent, as exported.
fn exported(registry: &Registry) -> (BTreeMap<(String, String), u64>, BTreeMap<String, u64>) {
    let mut totals = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for (name, labels, value) in series(registry) {
        match name.as_str() {
            analytics::EXECUTIONS_TOTAL => {
                totals.insert(
                    (labels["agent_id"].clone(), labels["status"].clone()),
                    value,
                );
            }
            "agent_execution_duration_seconds_count" => {
                counts.insert(labels["agent_id"].clone(), value);
            }
            _ => {}
        }
    }
    (totals, counts)
}

/// `user_changes_total` by op, as exported.
fn exported_changes(registry: &Registry) -> BTreeMap<String, u64> {
    series(registry)
        .into_iter()
        .filter(|(name, ..)| name == analytics::USER_CHANGES_TOTAL)
        .map(|(_, labels, value)| (labels["op"].clone(), value))
        .collect()
}

fn empty_buckets(first: DateTime<Utc>, width: TimeDelta, n: i32) -> Vec<Bucket> {
    (0..n)
        .map(|i| Bucket {
            start: first + width * i,
            total: 0,
            succeeded: 0,
            p95_seconds: None,
        })
        .collect()
}

fn bucket(start: DateTime<Utc>, total: u64, succeeded: u64, p95: f64) -> Bucket {
    Bucket {
        start,
        total,
        succeeded,
        p95_seconds: Some(p95),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_percentiles_and_trends_by_hand() -> TestResult {
    use ExecutionStatus::*;
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path()).await?;
    let now = at(2024, 5, 1, 12, 30, 30);
    let ms = TimeDelta::milliseconds;
    // card: 0.1 s to 1.0 s; 8 succeeded, 1 failed, 1 timed out; finished
    // across the minute and hour windows and past both ends.
    let card_finished = [
        at(2024, 5, 1, 12, 30, 10),        // this minute
        at(2024, 5, 1, 12, 30, 10),        //
        at(2024, 5, 1, 12, 30, 10),        //
        at(2024, 5, 1, 12, 30, 0) - ms(1), // the minute before
        at(2024, 5, 1, 12, 30, 0) - ms(1), //
        at(2024, 5, 1, 11, 31, 0),         // the first minute of 60
        at(2024, 5, 1, 11, 31, 0) - ms(1), // an hour, not a minute
        at(2024, 4, 30, 13, 0, 0),         // the first hour of 24
        at(2024, 4, 30, 13, 0, 0) - ms(1), // neither
        at(2024, 5, 1, 12, 30, 31),        // after now: neither
    ];
    let card_status = [
        Succeeded, Succeeded, Succeeded, Succeeded, Succeeded, Succeeded, Succeeded, Succeeded,
        Failed, TimedOut,
    ];
    let mut records = Vec::new();
    for (i, (finished, status)) in card_finished.into_iter().zip(card_status).enumerate() {
        records.push(execution(
            &format!("card-{i}"),
            "card",
            status,
            100.0 * (i + 1) as f64,
            finished,
            &format!("c-{i}"),
        ));
    }
    // loan: 1 to 4 s; the median by nearest rank is 2 s (not 2.5 s).
    for (i, status) in [Succeeded, Succeeded, Failed, Cancelled]
        .into_iter()
        .enumerate()
    {
        records.push(execution(
            &format!("loan-{i}"),
            "loan",
            status,
            1000.0 * (i + 1) as f64,
            at(2024, 5, 1, 12, 0, 0),
            "c-loan",
        ));
    }
    records.push(execution(
        "wealth-0",
        "wealth",
        Succeeded,
        250.0,
        at(2024, 5, 1, 9, 15, 0),
        "c-w",
    ));
    // The first card execution published twice: counted once.
    records.push(execution(
        "card-0",
        "card",
        Succeeded,
        100.0,
        card_finished[0],
        "c-0",
    ));
    log.append(TOPIC, records).await?;

    let store = AnalyticsStore::open(dir.path().join(AnalyticsStore::FILE_NAME))?;
    let reader = Arc::new(store.reader()?);
    let registry = Registry::new();
    let metrics = AnalyticsMetrics::register(&registry);
    let (token, running) = supervise(
        &registry,
        analytics::registration(log.clone(), store.clone(), metrics),
    );
    wait_for("15 executions", || {
        let r = reader.clone();
        async move { Ok(r.executions()? == 15) }
    })
    .await?;
    // Every record handled, the duplicate too.
    wait_for("the group to commit everything", || {
        let log = log.clone();
        async move {
            let lag = log.group_lag(SERVICE_GROUP).await?;
            Ok(!lag.is_empty() && lag.iter().all(|l| l.lag() == 0))
        }
    })
    .await?;
    token.cancel();
    running.await??;

    // card, by hand.
    let mut per_minute = empty_buckets(at(2024, 5, 1, 11, 31, 0), TimeDelta::minutes(1), 60);
    per_minute[0] = bucket(at(2024, 5, 1, 11, 31, 0), 1, 1, 0.6);
    per_minute[58] = bucket(at(2024, 5, 1, 12, 29, 0), 2, 2, 0.5); // 0.4, 0.5: rank ⌈1.9⌉
    per_minute[59] = bucket(at(2024, 5, 1, 12, 30, 0), 3, 3, 0.3); // rank ⌈2.85⌉
    let mut per_hour = empty_buckets(at(2024, 4, 30, 13, 0, 0), TimeDelta::hours(1), 24);
    per_hour[0] = bucket(at(2024, 4, 30, 13, 0, 0), 1, 1, 0.8);
    per_hour[22] = bucket(at(2024, 5, 1, 11, 0, 0), 2, 2, 0.7);
    per_hour[23] = bucket(at(2024, 5, 1, 12, 0, 0), 5, 5, 0.5);
    let card = AgentReport {
        agent_id: "card".into(),
        figures: Figures {
            total: 10,
            by_status: ByStatus {
                succeeded: 8,
                failed: 1,
                timed_out: 1,
                cancelled: 0,
            },
            success_rate: Some(0.8),
            // Ranks ⌈5⌉, ⌈9.5⌉, ⌈9.9⌉ of 0.1 … 1.0.
            duration_seconds: Percentiles {
                p50: Some(0.5),
                p95: Some(1.0),
                p99: Some(1.0),
            },
            last_finished_at: Some(at(2024, 5, 1, 12, 30, 31)),
        },
        trends: Trends {
            as_of: now,
            per_minute,
            per_hour,
        },
    };
    assert_eq!(reader.agent("card", now)?, Some(card.clone()));

    let loan = reader.agent("loan", now)?.ok_or("loan")?;
    assert_eq!(loan.figures.total, 4);
    assert_eq!(loan.figures.success_rate, Some(0.5));
    assert_eq!(
        loan.figures.duration_seconds,
        Percentiles {
            p50: Some(2.0),
            p95: Some(4.0),
            p99: Some(4.0),
        }
    );
    assert_eq!(loan.trends.per_minute[29].start, at(2024, 5, 1, 12, 0, 0));
    assert_eq!(loan.trends.per_minute[29].total, 4);
    assert_eq!(loan.trends.per_minute[29].succeeded, 2);
    assert_eq!(loan.trends.per_minute[29].p95_seconds, Some(4.0));
    assert_eq!(reader.agent("nobody", now)?, None);

    // Every agent: 15 durations, 0.1 … 1.0, 0.25, 1.0 … 4.0; p50 is the
    // 8th (0.7), p95 and p99 the 15th (4.0).
    let summary = reader.summary()?;
    assert_eq!(summary.all.total, 15);
    assert_eq!(
        summary.all.by_status,
        ByStatus {
            succeeded: 11,
            failed: 2,
            timed_out: 1,
            cancelled: 1,
        }
    );
    assert_eq!(summary.all.success_rate, Some(11.0 / 15.0));
    assert_eq!(
        summary.all.duration_seconds,
        Percentiles {
            p50: Some(0.7),
            p95: Some(4.0),
            p99: Some(4.0),
        }
    );
    assert_eq!(
        summary.all.last_finished_at,
        Some(at(2024, 5, 1, 12, 30, 31))
    );
    let agents: Vec<(&str, u64)> = summary
        .agents
        .iter()
        .map(|a| (a.agent_id.as_str(), a.figures.total))
        .collect();
    assert_eq!(agents, [("card", 10), ("loan", 4), ("wealth", 1)]);
    assert_eq!(summary.agents[0].figures, card.figures);
    assert_eq!(
        summary.agents[2].figures.duration_seconds,
        Percentiles {
            p50: Some(0.25),
            p95: Some(0.25),
            p99: Some(0.25),
        }
    );

    // The metrics count each execution once, the duplicate not again.
    let (totals, counts) = exported(&registry);
    let want: BTreeMap<(String, String), u64> = [
        ("card", "succeeded", 8),
        ("card", "failed", 1),
        ("card", "timed_out", 1),
        ("loan", "succeeded", 2),
        ("loan", "failed", 1),
        ("loan", "cancelled", 1),
        ("wealth", "succeeded", 1),
    ]
    .into_iter()
    .map(|(a, s, n)| ((a.to_owned(), s.to_owned()), n))
    .collect();
    assert_eq!(totals, want);
    assert_eq!(
        counts,
        BTreeMap::from([
            ("card".into(), 10),
            ("loan".into(), 4),
            ("wealth".into(), 1)
        ])
    );

    // Over HTTP.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server =
        tokio::spawn(async move { axum::serve(listener, analytics::router(reader.clone())).await });
    let http = reqwest::Client::new();
    let res = http
        .get(format!("{base}/api/v1/analytics/agents"))
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await?;
    assert_eq!(body, serde_json::to_value(&summary)?);
    assert_eq!(body["total"], 15);
    assert_eq!(body["by_status"]["timed_out"], 1);
    assert_eq!(body["duration_seconds"]["p50"], 0.7);
    assert_eq!(body["agents"][1]["agent_id"], "loan");
    assert_eq!(body["agents"][1]["duration_seconds"]["p50"], 2.0);
    assert_eq!(body["agents"][1]["success_rate"], 0.5);

    let res = http
        .get(format!("{base}/api/v1/analytics/agents/card"))
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let got: AgentReport = res.json().await?;
    assert_eq!(got.agent_id, "card");
    assert_eq!(got.figures, card.figures);
    assert_eq!(got.trends.per_minute.len(), 60);
    assert_eq!(got.trends.per_hour.len(), 24);

    let problem = |res: reqwest::Response, status: u16| async move {
        assert_eq!(res.status(), status);
        assert_eq!(
            res.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        res.json::<Value>().await
    };
    let body = problem(
        http.get(format!("{base}/api/v1/analytics/agents/nobody"))
            .send()
            .await?,
        404,
    )
    .await?;
    assert_eq!(body["code"], "not_found");
    assert!(body["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("no execution of agent 'nobody'"));
    let long = "a".repeat(65);
    for bad in ["card%20x", "card%2Fx", "%C3%A9", long.as_str()] {
        let body = problem(
            http.get(format!("{base}/api/v1/analytics/agents/{bad}"))
                .send()
                .await?,
            400,
        )
        .await?;
        assert_eq!(body["code"], "invalid_id", "{bad}");
        assert_eq!(body["field"], "agent_id", "{bad}");
    }
    server.abort();
    Ok(())
}

/// An execution as a recount of the log sees it.
#[derive(Debug, Clone)]
struct Counted {
    agent: String,
    status: ExecutionStatus,
    duration_s: f64,
    finished_ms: i64,
}

/// Every distinct execution on the log, by id (the first of a repeated id).
fn recount(records: &[Record]) -> TestResult<BTreeMap<String, Counted>> {
    let mut out = BTreeMap::new();
    for r in records {
        let AgentEvent::Execution(e) = Envelope::<AgentEvent>::from_record(r)?.payload;
        let finished_ms = e.started_at.timestamp_millis() + e.duration_ms.round() as i64;
        out.entry(e.execution_id).or_insert(Counted {
            agent: e.agent_id,
            status: e.status,
            duration_s: e.duration_ms / 1e3,
            finished_ms,
        });
    }
    Ok(out)
}

/// The `p`-th percentile by nearest rank, written the textbook way.
fn textbook(sorted: &[f64], p: u64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as u64) as f64 / 100.0).ceil() as usize;
    Some(sorted[rank.max(1) - 1])
}

fn figures_of(rows: &[&Counted]) -> Figures {
    let mut by_status = ByStatus::default();
    for r in rows {
        by_status.add(r.status);
    }
    let mut d: Vec<f64> = rows.iter().map(|r| r.duration_s).collect();
    d.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let total = rows.len() as u64;
    Figures {
        total,
        by_status,
        success_rate: (total > 0).then(|| by_status.succeeded as f64 / total as f64),
        duration_seconds: Percentiles {
            p50: textbook(&d, 50),
            p95: textbook(&d, 95),
            p99: textbook(&d, 99),
        },
        last_finished_at: rows
            .iter()
            .map(|r| r.finished_ms)
            .max()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
    }
}

fn buckets_of(rows: &[&Counted], now: DateTime<Utc>, width: TimeDelta, n: i32) -> Vec<Bucket> {
    let w = width.num_milliseconds();
    let now_ms = now.timestamp_millis();
    let first = now_ms / w * w - (i64::from(n) - 1) * w;
    (0..i64::from(n))
        .map(|i| {
            let start = first + i * w;
            let mut d: Vec<f64> = Vec::new();
            let mut succeeded = 0;
            for r in rows {
                if r.finished_ms >= start && r.finished_ms < start + w && r.finished_ms <= now_ms {
                    d.push(r.duration_s);
                    succeeded += u64::from(r.status == ExecutionStatus::Succeeded);
                }
            }
            d.sort_by(|a, b| a.partial_cmp(b).unwrap());
            Bucket {
                start: Utc.timestamp_millis_opt(start).unwrap(),
                total: d.len() as u64,
                succeeded,
                p95_seconds: textbook(&d, 95),
            }
        })
        .collect()
}

/// Distinct executions in the records the group has committed.
async fn committed_executions(log: &EmbeddedLog, all: &[Record]) -> TestResult<u64> {
    let committed: HashMap<u32, u64> = log
        .group_lag(SERVICE_GROUP)
        .await?
        .into_iter()
        .map(|l| (l.partition, l.committed.unwrap_or(0)))
        .collect();
    let ids: HashSet<String> = all
        .iter()
        .filter(|r| r.offset < committed.get(&r.partition).copied().unwrap_or(0))
        .map(|r| {
            Envelope::<AgentEvent>::from_record(r).map(|e| {
                let AgentEvent::Execution(e) = e.payload;
                e.execution_id
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(ids.len() as u64)
}

/// Handles batches as the service does, and after `batches` of them
/// handles one more and never returns: the runtime never commits it.
struct StallAfter {
    inner: AnalyticsService,
    batches: usize,
    stalled: Arc<tokio::sync::Notify>,
}

impl Handler for StallAfter {
    async fn handle(&mut self, records: &[Record]) -> Result<(), HandlerError> {
        self.inner.handle(records).await?;
        if self.batches == 0 {
            self.stalled.notify_one();
            std::future::pending::<()>().await;
        }
        self.batches -= 1;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_stream_the_figures_equal_a_recount() -> TestResult {
    const N: usize = 5_000;
    const AGENTS: [&str; 5] = ["card", "loan", "wealth", "planner", "critic"];
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path()).await?;
    let now = at(2024, 5, 1, 12, 30, 30);
    let mut rng = SplitMix64::new(20240501);
    let mut records = Vec::with_capacity(N + N / 50);
    let mut again = Vec::new();
    for i in 0..N {
        let agent = AGENTS[rng.below(AGENTS.len())];
        let status = match rng.below(20) {
            0..=15 => ExecutionStatus::Succeeded,
            16 | 17 => ExecutionStatus::Failed,
            18 => ExecutionStatus::TimedOut,
            _ => ExecutionStatus::Cancelled,
        };
        // Durations to the microsecond, 1 ms to 8 s; finished in the last
        // 30 hours (some before both windows), a few after `now`.
        let duration_ms = ((1.0 + rng.next_f64() * 7_999.0) * 1e3).round() / 1e3;
        let ago = TimeDelta::milliseconds(rng.below(30 * 3_600_000) as i64 - 60_000);
        let (id, customer) = (format!("ex-{i:05}"), format!("c-{}", rng.below(200)));
        records.push(execution(
            &id,
            agent,
            status,
            duration_ms,
            now - ago,
            &customer,
        ));
        // Every 50th is published again later (a producer's retry): the
        // same execution under a new event id.
        if i % 50 == 0 {
            again.push(execution(
                &id,
                agent,
                status,
                duration_ms,
                now - ago,
                &customer,
            ));
        }
    }
    records.extend(again);
    let published = records.len();
    for chunk in records.chunks(500) {
        log.append(TOPIC, chunk.to_vec()).await?;
    }

    let store = AnalyticsStore::open(dir.path().join(AnalyticsStore::FILE_NAME))?;
    let reader = store.reader()?;
    let registry = Registry::new();
    let metrics = AnalyticsMetrics::register(&registry);
    let all = ultracore_log::testing::all_records(&log, TOPIC).await;
    assert_eq!(all.len(), published);
    let expected = recount(&all)?;
    assert_eq!(expected.len(), N);

    // 1. Killed between handling a batch and committing it.
    let stalled = Arc::new(tokio::sync::Notify::new());
    let registration = {
        let (store, metrics, stalled) = (store.clone(), metrics.clone(), stalled.clone());
        Registration::consumer(
            SERVICE_GROUP,
            log.clone(),
            analytics::spec().max_batch(64),
            move |_ctx| {
                Ok(StallAfter {
                    inner: AnalyticsService::new(store.clone(), metrics.clone()),
                    batches: 5,
                    stalled: stalled.clone(),
                })
            },
        )
    };
    let (_token, running) = supervise(&registry, registration);
    tokio::time::timeout(DEADLINE, stalled.notified()).await?;
    running.abort();
    assert!(running.await.is_err_and(|e| e.is_cancelled()));
    let (stored, committed) = (
        reader.executions()?,
        committed_executions(&log, &all).await?,
    );
    assert!(
        stored > committed,
        "a batch was stored and not committed: {stored} stored, {committed} committed"
    );
    assert!(stored < N as u64, "killed part-way: {stored} of {N} stored");

    // 2. Killed at random points of the stream: as soon as a random number
    // of further executions is stored, whatever the service is doing then
    // (polling, writing a batch, committing one).
    let mut kills = vec![(stored, committed)];
    for _ in 0..4 {
        let target = reader.executions()? + 150 + rng.below(700) as u64;
        let registration = analytics::registration(log.clone(), store.clone(), metrics.clone());
        let (_token, running) = supervise(&registry, registration);
        let start = Instant::now();
        while reader.executions()? < target {
            assert!(start.elapsed() < DEADLINE, "no progress to {target}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        running.abort();
        assert!(running.await.is_err_and(|e| e.is_cancelled()));
        kills.push((
            reader.executions()?,
            committed_executions(&log, &all).await?,
        ));
    }
    assert!(
        kills.windows(2).all(|w| w[0].0 < w[1].0) && kills[4].0 < N as u64,
        "each start stored more, none all: {kills:?}"
    );

    // 3. Started again and left to catch up.
    let registration = analytics::registration(log.clone(), store.clone(), metrics.clone());
    let (token, running) = supervise(&registry, registration);
    wait_for("the group to commit everything", || {
        let log = log.clone();
        async move {
            let lag = log.group_lag(SERVICE_GROUP).await?;
            Ok(lag.len() == 3 && lag.iter().all(|l| l.lag() == 0))
        }
    })
    .await?;
    token.cancel();
    running.await??;
    assert_eq!(
        reader.executions()?,
        N as u64,
        "(stored, committed) at the kills: {kills:?}"
    );

    // Every figure equals the recount, every agent's and the summary's.
    let mut by_agent: BTreeMap<&str, Vec<&Counted>> = BTreeMap::new();
    for c in expected.values() {
        by_agent.entry(c.agent.as_str()).or_default().push(c);
    }
    assert_eq!(by_agent.len(), AGENTS.len());
    for (agent, rows) in &by_agent {
        let got = reader
            .agent(agent, now)?
            .ok_or("an agent with executions")?;
        let want = AgentReport {
            agent_id: (*agent).to_owned(),
            figures: figures_of(rows),
            trends: Trends {
                as_of: now,
                per_minute: buckets_of(rows, now, TimeDelta::minutes(1), 60),
                per_hour: buckets_of(rows, now, TimeDelta::hours(1), 24),
            },
        };
        assert_eq!(got, want, "{agent}");
        assert!(want.trends.per_minute.iter().any(|b| b.total > 0));
    }
    let summary = reader.summary()?;
    let everything: Vec<&Counted> = expected.values().collect();
    assert_eq!(summary.all, figures_of(&everything));
    for a in &summary.agents {
        assert_eq!(a.figures, figures_of(&by_agent[a.agent_id.as_str()]));
    }

    // The metrics, over every start and kill, count each execution once.
    let (totals, counts) = exported(&registry);
    let mut want_totals: BTreeMap<(String, String), u64> = BTreeMap::new();
    for c in expected.values() {
        *want_totals
            .entry((c.agent.clone(), c.status.name().to_owned()))
            .or_default() += 1;
    }
    assert_eq!(totals, want_totals);
    let want_counts: BTreeMap<String, u64> = by_agent
        .iter()
        .map(|(a, rows)| ((*a).to_owned(), rows.len() as u64))
        .collect();
    assert_eq!(counts, want_counts);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_cannot_be_counted_are_dead_lettered() -> TestResult {
    use ExecutionStatus::Succeeded;
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path()).await?;
    let t = at(2024, 5, 1, 12, 0, 0);
    let foreign = {
        let mut r = execution("ex-f", "card", Succeeded, 5.0, t, "c-1");
        r.value = String::from_utf8(r.value)?
            .replace("\"agent_execution\"", "\"agent_feedback\"")
            .into_bytes();
        r
    };
    log.append(
        TOPIC,
        vec![
            execution("ex-a", "card", Succeeded, 5.0, t, "c-1"),
            NewRecord::new("c-1", "{not an envelope"),
            foreign,
            execution("ex-b", "card/x", Succeeded, 5.0, t, "c-1"),
            execution("ex-c", "card", Succeeded, -5.0, t, "c-1"),
            execution("ex-d", "loan", Succeeded, 7.0, t, "c-1"),
        ],
    )
    .await?;
    let store = AnalyticsStore::open(dir.path().join(AnalyticsStore::FILE_NAME))?;
    let reader: AgentAnalytics = store.reader()?;
    let registry = Registry::new();
    let mut service = AnalyticsService::new(store, AnalyticsMetrics::register(&registry));
    let dlq = format!("{TOPIC}.dlq");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = async {
        let done = wait_for("4 dead letters and 2 executions", || {
            let (log, dlq, reader) = (log.clone(), dlq.clone(), &reader);
            async move {
                Ok(
                    ultracore_log::testing::all_records(&log, &dlq).await.len() == 4
                        && reader.executions()? == 2,
                )
            }
        })
        .await;
        let _ = stop.send(());
        done
    };
    let spec = analytics::spec();
    let (report, watched) = tokio::join!(
        run_standalone(SERVICE_GROUP, &log, &spec, &mut service, async {
            stopped.await.ok();
        }),
        watcher
    );
    watched?;
    let report = report?;
    assert_eq!((report.handled, report.dead_lettered), (2, 4));
    assert_eq!(service.stored, 2);

    let reasons: Vec<String> = ultracore_log::testing::all_records(&log, &dlq)
        .await
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .find(|h| h.key == "dlq.reason")
                .map(|h| String::from_utf8_lossy(&h.value).into_owned())
                .unwrap_or_default()
        })
        .collect();
    for (reason, says) in reasons.iter().zip([
        "not an agent execution: value is not valid JSON",
        "not an agent execution: unknown event type 'agent_feedback'",
        "agent_id \"card/x\" is not 1 to 64",
        "duration_ms -5 is not a finite number",
    ]) {
        assert!(
            reason.starts_with("agent-analytics: ") && reason.contains(says),
            "{reason} (wanted {says})"
        );
    }
    let summary = reader.summary()?;
    let agents: Vec<(&str, u64)> = summary
        .agents
        .iter()
        .map(|a| (a.agent_id.as_str(), a.figures.total))
        .collect();
    assert_eq!(agents, [("card", 1), ("loan", 1)]);
    let (totals, _) = exported(&registry);
    assert_eq!(totals.values().sum::<u64>(), 2);
    Ok(())
}

fn change_bucket(start: DateTime<Utc>, c: u64, u: u64, d: u64) -> ChangeBucket {
    ChangeBucket {
        start,
        total: c + u + d,
        c,
        u,
        d,
    }
}

fn empty_change_buckets(first: DateTime<Utc>, width: TimeDelta, n: i32) -> Vec<ChangeBucket> {
    (0..n)
        .map(|i| change_bucket(first + width * i, 0, 0, 0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_changes_by_hand_once_each_and_over_http() -> TestResult {
    use ExecutionStatus::Succeeded;
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path()).await?;
    let now = at(2024, 5, 1, 12, 30, 30);
    let ms = TimeDelta::milliseconds;
    let snapshot_at = at(2024, 5, 1, 9, 0, 0);
    let updated = user_change("u-2", "u", Src::Sqlite(2), at(2024, 5, 1, 12, 30, 10));
    let snapshot_row = user_change("u-0", "r", Src::Sqlite(0), snapshot_at);
    let pg_update = user_change(
        "u-5",
        "u",
        Src::Postgres(Some(100), 95),
        at(2024, 4, 30, 13, 0, 0),
    );
    let records = vec![
        // SQLite: a snapshot of two rows (one position), then changes.
        snapshot_row.clone(),
        user_change("u-1", "r", Src::Sqlite(0), snapshot_at),
        user_change("u-2", "c", Src::Sqlite(1), at(2024, 5, 1, 12, 30, 10)),
        updated.clone(),
        user_change(
            "u-0",
            "u",
            Src::Sqlite(3),
            at(2024, 5, 1, 12, 30, 0) - ms(1),
        ),
        user_change("u-1", "d", Src::Sqlite(4), at(2024, 5, 1, 11, 31, 0)),
        tombstone("u-1"),
        user_change(
            "u-3",
            "c",
            Src::Sqlite(5),
            at(2024, 5, 1, 11, 31, 0) - ms(1),
        ),
        user_change("u-4", "c", Src::Sqlite(6), at(2024, 5, 1, 12, 30, 31)), // after now
        // PostgreSQL: two changes of one transaction, one of another
        // transaction at the same LSN, and two snapshot rows.
        user_change(
            "u-5",
            "c",
            Src::Postgres(Some(100), 90),
            at(2024, 4, 30, 13, 0, 0),
        ),
        pg_update.clone(),
        user_change(
            "u-6",
            "c",
            Src::Postgres(Some(200), 90),
            at(2024, 4, 30, 13, 0, 0) - ms(1),
        ),
        user_change("u-7", "r", Src::Postgres(None, 80), snapshot_at),
        user_change("u-8", "r", Src::Postgres(None, 80), snapshot_at),
        // Sent again: counted once.
        resent(&updated)?,
        resent(&snapshot_row)?,
        pg_update.clone(),
    ];
    let published = records.len() as u64;
    log.append(USERS_TOPIC, records).await?;
    log.append(
        TOPIC,
        vec![
            execution("ex-1", "card", Succeeded, 5.0, now, "c-1"),
            execution("ex-2", "loan", Succeeded, 7.0, now, "c-2"),
        ],
    )
    .await?;

    let store = AnalyticsStore::open(dir.path().join(AnalyticsStore::FILE_NAME))?;
    let reader = Arc::new(store.reader()?);
    // Before the first change: zeros and nulls, every bucket present.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/api/v1/analytics/users", listener.local_addr()?);
    let server = {
        let reader = reader.clone();
        tokio::spawn(async move { axum::serve(listener, analytics::router(reader)).await })
    };
    let http = reqwest::Client::new();
    let res = http.get(&url).send().await?;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await?;
    assert_eq!(body["total"], 0);
    assert_eq!(body["by_op"], json!({"c": 0, "u": 0, "d": 0, "r": 0}));
    assert_eq!(body["last_changed_at"], Value::Null);
    assert_eq!(
        body["trends"]["per_minute"].as_array().map(Vec::len),
        Some(60)
    );
    assert_eq!(
        body["trends"]["per_hour"].as_array().map(Vec::len),
        Some(24)
    );

    let registry = Registry::new();
    let metrics = AnalyticsMetrics::register(&registry);
    let (token, running) = supervise(
        &registry,
        analytics::registration(log.clone(), store.clone(), metrics.clone()),
    );
    wait_for("every record committed", || {
        let log = log.clone();
        async move { Ok(committed_records(&log).await? == published + 2) }
    })
    .await?;
    token.cancel();
    running.await??;
    assert_eq!(reader.executions()?, 2);
    assert_eq!(reader.user_changes()?, 13);

    // By hand: c u-2, u-3, u-4, u-5, u-6; u u-2, u-0, u-5; d u-1; r u-0,
    // u-1, u-7, u-8. Snapshot rows in no bucket.
    let mut per_minute = empty_change_buckets(at(2024, 5, 1, 11, 31, 0), TimeDelta::minutes(1), 60);
    per_minute[0] = change_bucket(at(2024, 5, 1, 11, 31, 0), 0, 0, 1);
    per_minute[58] = change_bucket(at(2024, 5, 1, 12, 29, 0), 0, 1, 0);
    per_minute[59] = change_bucket(at(2024, 5, 1, 12, 30, 0), 1, 1, 0);
    let mut per_hour = empty_change_buckets(at(2024, 4, 30, 13, 0, 0), TimeDelta::hours(1), 24);
    per_hour[0] = change_bucket(at(2024, 4, 30, 13, 0, 0), 1, 1, 0);
    per_hour[22] = change_bucket(at(2024, 5, 1, 11, 0, 0), 1, 0, 1);
    per_hour[23] = change_bucket(at(2024, 5, 1, 12, 0, 0), 1, 2, 0);
    let want = UserChanges {
        total: 13,
        by_op: ByOp {
            c: 5,
            u: 3,
            d: 1,
            r: 4,
        },
        last_changed_at: Some(at(2024, 5, 1, 12, 30, 31)),
        trends: ChangeTrends {
            as_of: now,
            per_minute,
            per_hour,
        },
    };
    assert_eq!(reader.users(now)?, want);
    let counted = BTreeMap::from([
        ("c".to_owned(), 5),
        ("u".to_owned(), 3),
        ("d".to_owned(), 1),
        ("r".to_owned(), 4),
    ]);
    assert_eq!(exported_changes(&registry), counted);
    assert_eq!(exported(&registry).0.values().sum::<u64>(), 2);

    // Every record delivered again (a crash before the commit): nothing
    // is stored twice, the metrics do not move.
    let mut again = ultracore_log::testing::all_records(&log, USERS_TOPIC).await;
    again.extend(ultracore_log::testing::all_records(&log, TOPIC).await);
    let mut service = AnalyticsService::new(store.clone(), metrics);
    service.handle(&again).await?;
    assert_eq!((service.stored, service.stored_changes), (0, 0));
    assert_eq!(reader.users(now)?, want);
    assert_eq!(exported_changes(&registry), counted);

    // Over HTTP, as of the request.
    let res = http.get(&url).send().await?;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await?;
    let as_of: DateTime<Utc> = serde_json::from_value(body["trends"]["as_of"].clone())?;
    assert_eq!(body, serde_json::to_value(reader.users(as_of)?)?);
    assert_eq!(body["total"], 13);
    assert_eq!(body["by_op"], json!({"c": 5, "u": 3, "d": 1, "r": 4}));
    assert_eq!(body["last_changed_at"], "2024-05-01T12:30:31Z");
    let first = &body["trends"]["per_minute"][0];
    let fields: HashSet<&str> = first
        .as_object()
        .ok_or("a bucket is an object")?
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, HashSet::from(["start", "total", "c", "u", "d"]));
    server.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_changes_that_cannot_be_counted_are_dead_lettered() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path()).await?;
    let t = at(2024, 5, 1, 12, 0, 0);
    let edit = |mut r: NewRecord, f: fn(&mut Value)| -> TestResult<NewRecord> {
        let mut v: Value = serde_json::from_slice(&r.value)?;
        f(&mut v);
        r.value = v.to_string().into_bytes();
        Ok(r)
    };
    let good = user_change("u-1", "c", Src::Sqlite(1), t);
    let records = vec![
        good.clone(),
        NewRecord::new(r#"{"id":"u-2"}"#, "{not json"),
        edit(user_change("u-3", "c", Src::Sqlite(3), t), |v| {
            v.as_object_mut().map(|o| o.remove("op"));
        })?,
        edit(user_change("u-4", "c", Src::Sqlite(4), t), |v| {
            v["op"] = json!("t");
        })?,
        edit(user_change("u-5", "c", Src::Sqlite(5), t), |v| {
            v["source"].as_object_mut().map(|o| o.remove("seq"));
        })?,
        user_change("u-1", "d", Src::Sqlite(6), t),
        tombstone("u-1"),
        edit(user_change("u-7", "u", Src::Postgres(Some(9), 8), t), |v| {
            v["source"].as_object_mut().map(|o| o.remove("lsn"));
        })?,
        edit(user_change("u-8", "u", Src::Sqlite(8), t), |v| {
            v["source"]["connector"] = json!("mysql");
        })?,
        // Another copy of the first: not a second change.
        good,
    ];
    log.append(USERS_TOPIC, records).await?;
    log.append(
        TOPIC,
        vec![execution(
            "ex-1",
            "card",
            ExecutionStatus::Succeeded,
            5.0,
            t,
            "c-1",
        )],
    )
    .await?;
    let store = AnalyticsStore::open(dir.path().join(AnalyticsStore::FILE_NAME))?;
    let reader: AgentAnalytics = store.reader()?;
    let registry = Registry::new();
    let mut service = AnalyticsService::new(store, AnalyticsMetrics::register(&registry));
    let dlq = format!("{USERS_TOPIC}.dlq");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = async {
        let done = wait_for("every record handled or dead-lettered", || {
            let (log, dlq) = (log.clone(), dlq.clone());
            async move {
                Ok(
                    ultracore_log::testing::all_records(&log, &dlq).await.len() == 6
                        && committed_records(&log).await? == 11,
                )
            }
        })
        .await;
        let _ = stop.send(());
        done
    };
    let spec = analytics::spec();
    let (report, watched) = tokio::join!(
        run_standalone(SERVICE_GROUP, &log, &spec, &mut service, async {
            stopped.await.ok();
        }),
        watcher
    );
    watched?;
    let report = report?;
    // Handled: the change, the delete, its tombstone, the copy and the
    // execution.
    assert_eq!((report.handled, report.dead_lettered), (5, 6));
    assert_eq!((service.stored, service.stored_changes), (1, 2));

    let mut reasons: Vec<(String, String)> = ultracore_log::testing::all_records(&log, &dlq)
        .await
        .iter()
        .map(|r| {
            let text = |k| String::from_utf8_lossy(r.header(k).unwrap_or_default()).into_owned();
            (text("dlq.origin.logical_topic"), text("dlq.reason"))
        })
        .collect();
    // The dead-letter topic has one partition, filled from three.
    reasons.sort_by_key(|(_, reason)| reason.clone());
    let wanted = [
        "not a change event: value is not JSON",
        "op \"t\" is not c, u, d or r",
        "op is missing",
        "source.connector \"mysql\" is not sqlite or postgresql",
        "source.lsn is missing or not a whole number: a postgresql change has no position",
        "source.seq is missing or not a whole number: a sqlite change has no position",
    ];
    assert_eq!(reasons.len(), wanted.len());
    for ((topic, reason), says) in reasons.iter().zip(wanted) {
        assert_eq!(topic, USERS_TOPIC);
        assert!(
            reason.starts_with("agent-analytics: ") && reason.contains(says),
            "{reason} (wanted {says})"
        );
    }

    let now = at(2024, 5, 1, 12, 0, 0);
    let users = reader.users(now)?;
    assert_eq!(
        users.by_op,
        ByOp {
            c: 1,
            u: 0,
            d: 1,
            r: 0
        }
    );
    assert_eq!(users.last_changed_at, Some(t));
    assert_eq!(reader.executions()?, 1);
    assert_eq!(
        exported_changes(&registry),
        BTreeMap::from([("c".to_owned(), 1), ("d".to_owned(), 1)])
    );
    Ok(())
}

/// A user change as a recount of the log sees it: its op and when it was
/// committed, by position.
type ChangesByPosition = BTreeMap<String, (String, i64)>;

/// Every distinct user change on the log, by its position in the source
/// database (the first copy of a repeated position); tombstones skipped.
fn recount_changes(records: &[Record]) -> TestResult<ChangesByPosition> {
    let mut out = BTreeMap::new();
    for r in records.iter().filter(|r| !r.value.is_empty()) {
        let v: Value = serde_json::from_slice(&r.value)?;
        let (op, source) = (v["op"].as_str().ok_or("op")?, &v["source"]);
        let db = source["db"].as_str().ok_or("db")?;
        let mut position = if source["connector"] == "sqlite" {
            format!("sqlite:{db}:{}", source["seq"].as_u64().ok_or("seq")?)
        } else {
            let lsn = source["lsn"].as_u64().ok_or("lsn")?;
            let sequence: Vec<Option<String>> =
                serde_json::from_str(source["sequence"].as_str().ok_or("sequence")?)?;
            let commit = sequence[0].clone().unwrap_or_else(|| lsn.to_string());
            format!("postgresql:{db}:{commit}:{lsn}")
        };
        if op == "r" {
            let key: Value = serde_json::from_slice(r.key.as_deref().ok_or("key")?)?;
            position = format!("{position}:{}", key["id"].as_str().ok_or("id")?);
        }
        out.entry(position)
            .or_insert((op.to_owned(), source["ts_ms"].as_i64().ok_or("ts_ms")?));
    }
    Ok(out)
}

/// The figures of `changes` as of `now`, computed the long way.
fn user_figures_of(changes: &ChangesByPosition, now: DateTime<Utc>) -> UserChanges {
    let mut by_op = ByOp::default();
    for (op, _) in changes.values() {
        *match op.as_str() {
            "c" => &mut by_op.c,
            "u" => &mut by_op.u,
            "d" => &mut by_op.d,
            _ => &mut by_op.r,
        } += 1;
    }
    let buckets = |width: TimeDelta, n: i64| {
        let w = width.num_milliseconds();
        let now_ms = now.timestamp_millis();
        let first = now_ms / w * w - (n - 1) * w;
        (0..n)
            .map(|i| {
                let start = first + i * w;
                let count = |want: &str| {
                    changes
                        .values()
                        .filter(|(op, t)| {
                            op == want && *t >= start && *t < start + w && *t <= now_ms
                        })
                        .count() as u64
                };
                change_bucket(
                    Utc.timestamp_millis_opt(start).unwrap(),
                    count("c"),
                    count("u"),
                    count("d"),
                )
            })
            .collect()
    };
    UserChanges {
        total: changes.len() as u64,
        by_op,
        last_changed_at: changes
            .values()
            .filter(|(op, _)| op != "r")
            .map(|(_, t)| *t)
            .max()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        trends: ChangeTrends {
            as_of: now,
            per_minute: buckets(TimeDelta::minutes(1), 60),
            per_hour: buckets(TimeDelta::hours(1), 24),
        },
    }
}

/// Distinct executions and user changes in the records the group has
/// committed.
async fn committed_rows(log: &EmbeddedLog, all: &[Record]) -> TestResult<u64> {
    let committed: HashMap<(String, u32), u64> = log
        .group_lag(SERVICE_GROUP)
        .await?
        .into_iter()
        .map(|l| ((l.topic, l.partition), l.committed.unwrap_or(0)))
        .collect();
    let done: Vec<Record> = all
        .iter()
        .filter(|r| {
            r.offset
                < committed
                    .get(&(r.topic.clone(), r.partition))
                    .copied()
                    .unwrap_or(0)
        })
        .cloned()
        .collect();
    let (executions, changes): (Vec<Record>, Vec<Record>) =
        done.into_iter().partition(|r| r.topic == TOPIC);
    Ok((recount(&executions)?.len() + recount_changes(&changes)?.len()) as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_stream_the_user_figures_equal_a_recount() -> TestResult {
    const CHANGES: usize = 4_000;
    const EXECUTIONS: usize = 1_000;
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path()).await?;
    let now = at(2024, 5, 1, 12, 30, 30);
    let mut rng = SplitMix64::new(20240502);
    let when = |rng: &mut SplitMix64| {
        // The last 30 hours (some before both windows), a few after `now`.
        now - TimeDelta::milliseconds(rng.below(30 * 3_600_000) as i64 - 60_000)
    };
    let mut changes = Vec::new();
    let mut again = Vec::new();
    // Snapshots: 150 SQLite rows at one seq, 150 PostgreSQL rows at one LSN.
    let mut users: Vec<String> = Vec::new();
    for i in 0..300 {
        let user = format!("u-{i:05}");
        let src = if i < 150 {
            Src::Sqlite(0)
        } else {
            Src::Postgres(None, 1_000)
        };
        changes.push(user_change(&user, "r", src, when(&mut rng)));
        users.push(user);
    }
    // Then changes: SQLite by outbox seq, PostgreSQL in transactions of
    // one to four changes (LSNs past 2^32).
    let (mut seq, mut lsn, mut commit) = (0u64, 1u64 << 32, 1u64 << 32);
    let mut in_txn = 0;
    for i in 0..CHANGES {
        let src = if i % 3 == 0 {
            if in_txn == 0 {
                in_txn = 1 + rng.below(4);
                commit = lsn + 500;
            }
            in_txn -= 1;
            lsn += 8;
            Src::Postgres(Some(commit), lsn)
        } else {
            seq += 1;
            Src::Sqlite(seq)
        };
        let roll = rng.below(10);
        let t = when(&mut rng);
        let record = if roll < 3 || users.is_empty() {
            let user = format!("u-{:05}", 300 + i);
            users.push(user.clone());
            user_change(&user, "c", src, t)
        } else if roll < 9 {
            user_change(&users[rng.below(users.len())], "u", src, t)
        } else {
            let user = users.swap_remove(rng.below(users.len()));
            let deleted = user_change(&user, "d", src, t);
            changes.push(deleted.clone());
            if i % 40 == 0 {
                again.push(resent(&deleted)?);
            }
            tombstone(&user)
        };
        // Every 40th sent again later, with the same position.
        if i % 40 == 0 && !record.value.is_empty() {
            again.push(resent(&record)?);
        }
        changes.push(record);
    }
    changes.extend(again);
    let mut executions = Vec::with_capacity(EXECUTIONS);
    for i in 0..EXECUTIONS {
        executions.push(execution(
            &format!("ex-{i:05}"),
            ["card", "loan", "wealth"][rng.below(3)],
            ExecutionStatus::Succeeded,
            1.0 + rng.below(5_000) as f64,
            when(&mut rng),
            &format!("c-{}", rng.below(100)),
        ));
    }
    // Interleaved, so polls and batches hold both topics.
    let size = changes.len().div_ceil(executions.len() / 100);
    for (c, e) in changes.chunks(size).zip(executions.chunks(100)) {
        log.append(USERS_TOPIC, c.to_vec()).await?;
        log.append(TOPIC, e.to_vec()).await?;
    }
    let published = (changes.len() + executions.len()) as u64;

    let store = AnalyticsStore::open(dir.path().join(AnalyticsStore::FILE_NAME))?;
    let reader = store.reader()?;
    let registry = Registry::new();
    let metrics = AnalyticsMetrics::register(&registry);
    let mut all = ultracore_log::testing::all_records(&log, USERS_TOPIC).await;
    let expected = recount_changes(&all)?;
    all.extend(ultracore_log::testing::all_records(&log, TOPIC).await);
    assert_eq!(all.len() as u64, published);
    let distinct = expected.len() as u64 + EXECUTIONS as u64;
    assert!(
        expected.values().any(|(op, _)| op == "d") && expected.len() < changes.len(),
        "deletes, tombstones and copies on the log"
    );
    let stored = || -> TestResult<u64> { Ok(reader.executions()? + reader.user_changes()?) };

    // 1. Killed between handling a batch and committing it.
    let stalled = Arc::new(tokio::sync::Notify::new());
    let registration = {
        let (store, metrics, stalled) = (store.clone(), metrics.clone(), stalled.clone());
        Registration::consumer(
            SERVICE_GROUP,
            log.clone(),
            analytics::spec().max_batch(64),
            move |_ctx| {
                Ok(StallAfter {
                    inner: AnalyticsService::new(store.clone(), metrics.clone()),
                    batches: 5,
                    stalled: stalled.clone(),
                })
            },
        )
    };
    let (_token, running) = supervise(&registry, registration);
    tokio::time::timeout(DEADLINE, stalled.notified()).await?;
    running.abort();
    assert!(running.await.is_err_and(|e| e.is_cancelled()));
    let (first, committed) = (stored()?, committed_rows(&log, &all).await?);
    assert!(
        first > committed,
        "a batch was stored and not committed: {first} stored, {committed} committed"
    );

    // 2. Killed at random points of the stream.
    let mut kills = vec![(first, committed)];
    for _ in 0..4 {
        let target = stored()? + 150 + rng.below(700) as u64;
        let registration = analytics::registration(log.clone(), store.clone(), metrics.clone());
        let (_token, running) = supervise(&registry, registration);
        let start = Instant::now();
        while stored()? < target {
            assert!(start.elapsed() < DEADLINE, "no progress to {target}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        running.abort();
        assert!(running.await.is_err_and(|e| e.is_cancelled()));
        kills.push((stored()?, committed_rows(&log, &all).await?));
    }
    assert!(
        kills.windows(2).all(|w| w[0].0 < w[1].0) && kills[4].0 < distinct,
        "each start stored more, none all: {kills:?}"
    );

    // 3. Started again and left to catch up.
    let registration = analytics::registration(log.clone(), store.clone(), metrics.clone());
    let (token, running) = supervise(&registry, registration);
    wait_for("the group to commit everything", || {
        let log = log.clone();
        async move { Ok(committed_records(&log).await? == published) }
    })
    .await?;
    token.cancel();
    running.await??;
    assert_eq!(
        (reader.executions()?, reader.user_changes()?),
        (EXECUTIONS as u64, expected.len() as u64),
        "(stored, committed) at the kills: {kills:?}"
    );

    // The figures equal the recount; the metrics, over every start and
    // kill, count each change once.
    let want = user_figures_of(&expected, now);
    assert_eq!(reader.users(now)?, want);
    assert!(want.trends.per_minute.iter().any(|b| b.total > 0));
    assert!(want.by_op.r == 300 && want.by_op.c > 0 && want.by_op.u > 0);
    let mut want_metrics: BTreeMap<String, u64> = BTreeMap::new();
    for (op, _) in expected.values() {
        *want_metrics.entry(op.clone()).or_default() += 1;
    }
    assert_eq!(exported_changes(&registry), want_metrics);
    assert_eq!(
        exported(&registry).0.values().sum::<u64>(),
        EXECUTIONS as u64
    );
    Ok(())
}
