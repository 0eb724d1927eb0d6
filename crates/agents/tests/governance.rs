//! The governance service on a real embedded log: agent answers with
//! personal data (the labelled corpus) raise one alert per value, with the
//! entity, the field and the byte offsets, never the value; near misses
//! raise nothing; a malformed record is dead-lettered; an execution handled
//! twice raises the same alerts (same ids).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use ultracore_agents::{GovernanceKey, GovernanceService, Screen};
use ultracore_events::agents::{
    AgentEvent, AgentExecution, ExecutionStatus, AGGREGATE_TYPE, TOPIC,
};
use ultracore_events::compliance::{ComplianceEvent, TOPIC as ALERTS};
use ultracore_governance::corpus::{generate, Kind};
use ultracore_log::{
    Envelope, EnvelopeBuilder, EventLog, EventLogExt, NewRecord, Record, TopicSpec,
};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_runtime::{run_standalone, Handler};
use uuid::Uuid;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn all(log: &EmbeddedLog, topic: &str) -> Vec<Record> {
    ultracore_log::testing::all_records(log, topic).await
}

fn execution(i: usize, text: &str) -> Record {
    let e = AgentExecution {
        execution_id: format!("ex-{i}"),
        agent_id: ["card", "loan", "wealth"][i % 3].into(),
        status: ExecutionStatus::Succeeded,
        duration_ms: 2.0,
        input: json!({"query": "what is on file?"}),
        output: json!({"text": text, "figures": [{"label": "note", "value": text}]}),
        tools: vec![],
        trace: vec![],
        customer_id: Some(format!("c-{}", i % 7)),
        request_id: None,
        error: None,
        started_at: Utc::now(),
    };
    let env = EnvelopeBuilder::new(AGGREGATE_TYPE, format!("c-{}", i % 7))
        .build(AgentEvent::Execution(e));
    let r = env.to_record();
    Record {
        topic: TOPIC.into(),
        partition: 0,
        offset: i as u64,
        timestamp: 0,
        key: r.key,
        value: r.value,
        headers: r.headers,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_with_personal_data_raise_one_alert_per_value() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
    log.ensure_topic(&TopicSpec::new(TOPIC, 3)).await?;
    let corpus = generate(5, 400);
    let mut expected = 0;
    let mut values = Vec::new();
    let mut records = Vec::new();
    for (i, s) in corpus.iter().enumerate() {
        if s.kind == Kind::Pii {
            // The text appears twice in the output: two alerts per value.
            expected += 2 * s.spans.len();
            values.extend(s.values.iter().cloned());
        }
        let r = execution(i, &s.text);
        records.push(NewRecord {
            key: r.key,
            value: r.value,
            headers: r.headers,
            timestamp: None,
            partition: None,
        });
    }
    records.push(NewRecord::new("c-x", "{not an envelope"));
    log.append(TOPIC, records).await?;

    let screen = Screen::new(GovernanceKey::load_or_create(dir.path())?);
    let mut service = GovernanceService::new(log.clone(), screen.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = {
        let log = log.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while all(&log, ALERTS).await.len() < expected
                || all(&log, &format!("{TOPIC}.dlq")).await.is_empty()
            {
                assert!(std::time::Instant::now() < deadline, "timed out");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = stop.send(());
        }
    };
    let spec = ultracore_agents::governance_spec();
    let (report, ()) = tokio::join!(
        run_standalone("governance", &log, &spec, &mut service, async {
            stopped.await.ok();
        }),
        watcher
    );
    let report = report?;
    assert_eq!(report.dead_lettered, 1);

    let alerts: Vec<_> = all(&log, ALERTS)
        .await
        .iter()
        .map(|r| Envelope::<ComplianceEvent>::from_record(r).map(|e| (e.event_id, e.payload)))
        .collect::<Result<_, _>>()?;
    let unique: BTreeSet<Uuid> = alerts.iter().map(|(id, _)| *id).collect();
    assert_eq!(unique.len(), expected, "{} records", alerts.len());
    // Each alert names a labelled span of its sentence, in both fields.
    for (id, ComplianceEvent::Alert(a)) in &alerts {
        assert_eq!(id.to_string(), a.alert_id);
        let i: usize = a.seen_at.execution_id.as_deref().ok_or("execution id")?[3..].parse()?;
        let s = &corpus[i];
        assert!(
            s.spans.iter().any(|l| l.entity.name() == a.entity
                && l.start == a.seen_at.start
                && l.end == a.seen_at.end),
            "{a:?} in {:?}",
            s.text
        );
        assert!(["/output/text", "/output/figures/0/value"].contains(&a.seen_at.field.as_str()));
        assert_eq!(a.fingerprint.len(), 32);
    }
    // No value anywhere in the alerts topic, nor in the DLQ's reason.
    let raw: Vec<u8> = all(&log, ALERTS)
        .await
        .iter()
        .flat_map(|r| r.value.clone())
        .collect();
    let raw = String::from_utf8(raw)?;
    for v in &values {
        assert!(!raw.contains(v.as_str()), "{v} leaked into an alert");
    }

    // Handled again (a crash before the commit): the same alert ids.
    let again: Vec<Record> = all(&log, TOPIC).await;
    let before = alerts.len();
    let mut second = GovernanceService::new(log.clone(), screen);
    let good: Vec<Record> = again
        .into_iter()
        .filter(|r| Envelope::<AgentEvent>::from_record(r).is_ok())
        .collect();
    second.handle(&good).await.map_err(|e| e.reason)?;
    let ids: BTreeSet<Uuid> = all(&log, ALERTS)
        .await
        .iter()
        .map(|r| Envelope::<ComplianceEvent>::from_record(r).map(|e| e.event_id))
        .collect::<Result<_, _>>()?;
    assert_eq!(ids.len(), before, "the same alerts, by id");
    Ok(())
}
