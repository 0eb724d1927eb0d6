//! The service on the embedded log: every decision stored once, whatever
//! the redeliveries; a restart continues from the committed offset; bad
//! records dead-lettered; retention deletes old rows.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use common::{
    config, decision, decision_id, record, reference_decisions, specialists, start, TestResult,
};
use ultracore_events::trading::DECISIONS_TOPIC;
use ultracore_forensics::{
    encode_values, narrative, ForensicsStore, ModelSet, StoredExplanation, SERVICE_GROUP,
};
use ultracore_log::{dlq_topic, ConsumerOptions, EventLog, EventLogExt, NewRecord, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

async fn all(log: &EmbeddedLog, topic: &str) -> Vec<ultracore_log::Record> {
    let total = log
        .describe_topic(topic)
        .await
        .map(|t| t.records())
        .unwrap_or(0) as usize;
    let mut c = log
        .consumer(ConsumerOptions::new(
            format!("check-{}", uuid::Uuid::now_v7()),
            [topic],
        ))
        .await
        .expect("consumer");
    ultracore_log::testing::drain(&mut c, total).await
}

async fn committed_total(log: &EmbeddedLog, group: &str) -> TestResult<(u64, u64)> {
    let lag = log.group_lag(group).await?;
    Ok((
        lag.iter().map(|l| l.committed.unwrap_or(0)).sum(),
        lag.iter().map(|l| l.lag()).sum(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_stored_once_and_bad_records_dead_lettered() -> TestResult {
    let logdir = tempfile::tempdir()?;
    let data = tempfile::tempdir()?;
    let log = EmbeddedLog::open(logdir.path(), EmbeddedOptions::default())?;
    log.ensure_topic(&TopicSpec::new(DECISIONS_TOPIC, 3))
        .await?;
    let now = Utc::now();
    let mut records: Vec<NewRecord> = (0..500).map(|i| record(&decision(i, now))).collect();
    // The same decision published twice (an emitter retry), three bad records.
    records.push(record(&decision(7, now)));
    records.push(NewRecord::new("AAPL", "{not json"));
    let mut bad_id = decision(10_000, now);
    bad_id.decision_id = "decision-42".into();
    records.push(record(&bad_id));
    let mut bad_weights = decision(10_001, now);
    bad_weights.strategy_weights.insert("momentum".into(), 1.0);
    records.push(record(&bad_weights));
    log.append(DECISIONS_TOPIC, records).await?;

    let db = data.path().join(ForensicsStore::FILE_NAME);
    let running = start(log.clone(), config(&db))?;
    running.wait_rows(500, Duration::from_secs(60)).await?;
    // The commit follows the rows: wait for the group to catch up.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while committed_total(&log, SERVICE_GROUP).await?.1 > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "offsets never committed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reader = running.reader.clone();
    let metrics = running.metrics.clone();
    let stats = running.stop().await?;
    assert_eq!(stats.stored, 500, "{stats:?}");
    assert_eq!(stats.duplicates, 1, "{stats:?}");
    assert_eq!(stats.dead_lettered, 3, "{stats:?}");
    assert_eq!(reader.count()?, 500);
    assert_eq!(committed_total(&log, SERVICE_GROUP).await?, (504, 0));
    assert!(metrics.explain.count() >= 500);

    let dlq = all(&log, &dlq_topic(DECISIONS_TOPIC)).await;
    assert_eq!(dlq.len(), 3);
    let reasons: BTreeSet<String> = dlq
        .iter()
        .map(|r| String::from_utf8_lossy(r.header("dlq.reason").unwrap_or_default()).into_owned())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("forensics: value is not valid JSON")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("decision_id 'decision-42' is not a UUID")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("'momentum', which is not a specialist")),
        "{reasons:?}"
    );

    // A stored row is the decision it came from.
    let stored = reader.get(decision_id(3))?.expect("stored");
    assert_eq!(stored.decision_id, decision_id(3));
    assert_eq!(stored.source_topic, DECISIONS_TOPIC);
    let d = decision(3, now);
    assert_eq!(stored.symbol, d.symbol);
    assert_eq!(stored.action, d.action.as_str());
    assert_eq!(stored.decided_at, now.timestamp_millis());
    assert!(stored.narrative.starts_with(d.action.as_str()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_never_duplicates_and_a_restart_continues_without_gaps() -> TestResult {
    let logdir = tempfile::tempdir()?;
    let data = tempfile::tempdir()?;
    let log = EmbeddedLog::open(logdir.path(), EmbeddedOptions::default())?;
    log.ensure_topic(&TopicSpec::new(DECISIONS_TOPIC, 4))
        .await?;
    let db = data.path().join(ForensicsStore::FILE_NAME);
    let now = Utc::now();
    let append = |from: u64, to: u64| {
        let log = log.clone();
        async move {
            log.append(
                DECISIONS_TOPIC,
                (from..to).map(|i| record(&decision(i, now))).collect(),
            )
            .await
        }
    };

    // First run: 3,000 decisions, then stop.
    append(0, 3_000).await?;
    let running = start(log.clone(), config(&db))?;
    running.wait_rows(3_000, Duration::from_secs(60)).await?;
    let first = running.stop().await?;
    assert_eq!((first.stored, first.duplicates), (3_000, 0), "{first:?}");
    assert_eq!(committed_total(&log, SERVICE_GROUP).await?, (3_000, 0));

    // While it is down, 2,000 more arrive; the restart takes only those.
    append(3_000, 5_000).await?;
    let running = start(log.clone(), config(&db))?;
    running.wait_rows(5_000, Duration::from_secs(60)).await?;
    let reader = running.reader.clone();
    let second = running.stop().await?;
    assert_eq!((second.stored, second.duplicates), (2_000, 0), "{second:?}");
    assert_eq!(committed_total(&log, SERVICE_GROUP).await?, (5_000, 0));

    // A crash after storing and before committing delivers everything
    // again: as a group that never committed does. Nothing is duplicated.
    let mut replay = config(&db);
    replay.group = "forensics-replay".into();
    let running = start(log.clone(), replay)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while running
        .metrics
        .duplicates
        .load(std::sync::atomic::Ordering::Relaxed)
        < 5_000
    {
        assert!(std::time::Instant::now() < deadline, "redelivery not seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let third = running.stop().await?;
    assert_eq!((third.stored, third.duplicates), (0, 5_000), "{third:?}");

    // No gaps: every decision is there, once.
    assert_eq!(reader.count()?, 5_000);
    for i in (0..5_000).step_by(7) {
        assert!(
            reader.get(decision_id(i))?.is_some(),
            "decision {i} missing"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_explanations_of_old_decisions() -> TestResult {
    let logdir = tempfile::tempdir()?;
    let data = tempfile::tempdir()?;
    let log = EmbeddedLog::open(logdir.path(), EmbeddedOptions::default())?;
    log.ensure_topic(&TopicSpec::new(DECISIONS_TOPIC, 2))
        .await?;
    let db = data.path().join(ForensicsStore::FILE_NAME);
    let now = Utc::now();
    let old = now - chrono::Duration::days(40);
    let mut records: Vec<NewRecord> = (0..300).map(|i| record(&decision(i, old))).collect();
    records.extend((300..500).map(|i| record(&decision(i, now))));
    log.append(DECISIONS_TOPIC, records).await?;

    // Kept for the default seven years: all stored.
    let running = start(log.clone(), config(&db))?;
    running.wait_rows(500, Duration::from_secs(60)).await?;
    running.stop().await?;

    // 30 days: the restart's purge deletes the 300 old ones, for good.
    let mut short = config(&db);
    short.retention_days = 30;
    let running = start(log.clone(), short)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while running.reader.count()? != 200 {
        assert!(std::time::Instant::now() < deadline, "purge did not run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reader = running.reader.clone();
    let stats = running.stop().await?;
    assert_eq!(stats.purged, 300);
    assert!(reader.get(decision_id(0))?.is_none());
    assert!(reader.get(decision_id(499))?.is_some());
    // Deleted rows are gone from the file, not just hidden.
    let conn = rusqlite_count(&db)?;
    assert_eq!(conn, 200);
    Ok(())
}

fn rusqlite_count(db: &std::path::Path) -> TestResult<u64> {
    let store = ForensicsStore::open(db, DECISIONS_TOPIC)?;
    Ok(store.count()?)
}

#[test]
fn a_store_refuses_a_newer_schema() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("f.sqlite");
    let store = ForensicsStore::open(&db, DECISIONS_TOPIC)?;
    assert_eq!(store.schema_version()?, 7);
    drop(store);
    let conn = rusqlite::Connection::open(&db)?;
    conn.execute(
        "INSERT INTO schema_migrations (version, applied_at) VALUES (99, 'later')",
        [],
    )?;
    drop(conn);
    let err = ForensicsStore::open(&db, DECISIONS_TOPIC).expect_err("newer schema");
    assert!(err.to_string().contains("schema version 99"), "{err}");
    Ok(())
}

/// Bit for bit: stored SHAP values, margins and expected values.
fn assert_same_numbers(
    got: &ultracore_forensics::Explanation,
    want: &ultracore_forensics::Explanation,
    what: &str,
) {
    assert_eq!(got.num_parts(), want.num_parts(), "{what}");
    for p in 0..want.num_parts() {
        let (a, b) = (got.part(p), want.part(p));
        assert_eq!(a.margin.to_bits(), b.margin.to_bits(), "{what} part {p}");
        assert_eq!(
            a.expected_value.to_bits(),
            b.expected_value.to_bits(),
            "{what} part {p}"
        );
        assert!(
            a.shap
                .iter()
                .zip(b.shap)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{what} part {p}: {:?} vs {:?}",
            a.shap,
            b.shap
        );
    }
    assert!(got
        .row()
        .iter()
        .zip(want.row())
        .all(|(x, y)| x.to_bits() == y.to_bits()));
    assert_eq!(got.weights(), want.weights(), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_explanation_reads_back_as_explained() -> TestResult {
    // The reference decisions (missing features, values on split conditions,
    // an unknown feature, weights apart from the probabilities, a specialist
    // without weight; every other one with its latency) through the
    // service: the batched pipeline stores compact rows; reading one gives
    // back the decision as published, the explanation one decision at a
    // time gives, bit for bit, and its words; the latency column holds the
    // decision's.
    let logdir = tempfile::tempdir()?;
    let data = tempfile::tempdir()?;
    let log = EmbeddedLog::open(logdir.path(), EmbeddedOptions::default())?;
    log.ensure_topic(&TopicSpec::new(DECISIONS_TOPIC, 2))
        .await?;
    let now = Utc::now();
    let decisions: Vec<_> = reference_decisions()
        .into_iter()
        .zip(0u64..)
        .map(|(mut d, i)| {
            d.timestamp = now;
            d.latency_us = (i % 2 == 0).then_some(17 + 1000 * i);
            d
        })
        .collect();
    assert!(decisions.len() >= 2);
    log.append(DECISIONS_TOPIC, decisions.iter().map(record).collect())
        .await?;
    let db = data.path().join(ForensicsStore::FILE_NAME);
    let running = start(log.clone(), config(&db))?;
    running
        .wait_rows(decisions.len() as u64, Duration::from_secs(60))
        .await?;
    let reader = running.reader.clone();
    running.stop().await?;

    let specialists = specialists();
    let set = ModelSet::of(&specialists);
    let mut ws = specialists.workspace();
    for d in &decisions {
        let id = uuid::Uuid::parse_str(&d.decision_id)?;
        let stored: StoredExplanation = reader.get(id)?.expect("stored");
        assert_eq!(&stored.decision, d);
        let want = specialists.explain(d, &mut ws)?;
        assert_same_numbers(&stored.explanation, &want, &d.decision_id);
        assert_eq!(stored.narrative, narrative(&set, d, &want));
        let json = stored.to_json();
        assert_eq!(json["decision"], serde_json::to_value(d)?);
        let latency: Option<i64> = rusqlite::Connection::open(&db)?.query_row(
            "SELECT latency_us FROM explanations WHERE decision_id = ?1",
            [id.as_bytes().as_slice()],
            |r| r.get(0),
        )?;
        assert_eq!(latency, d.latency_us.map(|us| us as i64), "{id}");
    }
    Ok(())
}

#[test]
fn a_schema_1_store_is_migrated_and_its_rows_still_read() -> TestResult {
    // A store as schema 1 wrote it: the decision as JSON text, every number
    // (format 1), the words.
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("f.sqlite");
    let specialists = specialists();
    let set = ModelSet::of(&specialists);
    let d = decision(1, Utc::now());
    let e = specialists.explain(&d, &mut specialists.workspace())?;
    {
        let conn = rusqlite::Connection::open(&db)?;
        conn.execute_batch(
            r#"
            CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
            INSERT INTO schema_migrations VALUES (1, 'then');
            CREATE TABLE model_sets (
                version TEXT PRIMARY KEY, specialists TEXT NOT NULL,
                features TEXT NOT NULL, registered_at INTEGER NOT NULL);
            CREATE TABLE explanations (
                id INTEGER PRIMARY KEY, decision_id BLOB NOT NULL UNIQUE, event_id BLOB NOT NULL,
                decided_at INTEGER NOT NULL, symbol TEXT NOT NULL, action TEXT NOT NULL,
                model_version TEXT NOT NULL, explained_with TEXT NOT NULL, explained_at INTEGER NOT NULL,
                source_topic TEXT NOT NULL, source_partition INTEGER NOT NULL, source_offset INTEGER NOT NULL,
                decision TEXT NOT NULL, shap BLOB NOT NULL, narrative TEXT NOT NULL);
            CREATE INDEX explanations_by_time ON explanations (decided_at);
            "#,
        )?;
        conn.execute(
            "INSERT INTO model_sets VALUES (?1, ?2, ?3, 0)",
            rusqlite::params![
                set.version,
                serde_json::to_string(&set.specialists)?,
                serde_json::to_string(&set.features)?
            ],
        )?;
        conn.execute(
            "INSERT INTO explanations (decision_id, event_id, decided_at, symbol, action, model_version, \
             explained_with, explained_at, source_topic, source_partition, source_offset, decision, shap, narrative) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, 7, ?10, ?11, 'words written then')",
            rusqlite::params![
                decision_id(1).as_bytes().as_slice(),
                decision_id(2).as_bytes().as_slice(),
                d.timestamp.timestamp_millis(),
                d.symbol,
                d.action.as_str(),
                d.model_version,
                set.version,
                d.timestamp.timestamp_millis(),
                DECISIONS_TOPIC,
                serde_json::to_string(&d)?,
                encode_values(&e),
            ],
        )?;
    }
    let store = ForensicsStore::open(&db, DECISIONS_TOPIC)?;
    assert_eq!(store.schema_version()?, 7);
    assert_eq!(store.count()?, 1);
    // Migration 4 read the JSON text for the listing's columns.
    let (confidence, regime): (f64, Option<String>) = rusqlite::Connection::open(&db)?.query_row(
        "SELECT confidence, dominant_regime FROM explanations",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    assert_eq!(confidence, d.confidence);
    let most = d
        .regime_probs
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(k, _)| k.clone());
    assert_eq!(regime, most);
    let stored = store.get(decision_id(1))?.expect("the old row");
    assert_eq!(stored.decision, d);
    assert_eq!(stored.narrative, "words written then");
    assert_eq!(stored.source_offset, 7);
    assert_same_numbers(&stored.explanation, &e, "schema 1 row");
    Ok(())
}
