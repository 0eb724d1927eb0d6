//! Compliance alerts through the notification service: stored once per
//! alert id (a redelivery adds nothing), pushed live once stored, paged
//! newest first; on SQLite and on PostgreSQL.

mod common;

use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::{Backend, TestResult};
use tokio::sync::broadcast;
use ultracore_es::Database;
use ultracore_events::compliance::{
    ComplianceAlert, ComplianceEvent, SeenAt, Severity, AGGREGATE_TYPE, TOPIC,
};
use ultracore_flow::{Alerts, Notifier};
use ultracore_log::{EnvelopeBuilder, EventLog, EventLogExt, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

fn alert(i: u32) -> ComplianceAlert {
    ComplianceAlert {
        alert_id: format!("0190f7a2-0000-5000-8000-{i:012}"),
        alert_type: "pii_detected".into(),
        severity: Severity::High,
        entity: "AU_TFN".into(),
        likelihood: "very_likely".into(),
        recognizer: "au_tfn".into(),
        fingerprint: "0".repeat(32),
        seen_at: SeenAt {
            topic: "agent.executions".into(),
            event_id: "e".into(),
            field: "/output/text".into(),
            start: 4,
            end: 15,
            agent_id: Some("card".into()),
            execution_id: Some(format!("ex-{i}")),
            customer_id: Some("c-1".into()),
        },
        action: "reported".into(),
        detected_at: Utc.timestamp_millis_opt(1_700_000_000_000).unwrap()
            + chrono::Duration::seconds(i64::from(i)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_stored_once_pushed_and_paged_newest_first() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Backend::Sqlite.open(dir.path())?;
    stored_once_pushed_and_paged(dir.path(), db.db.clone()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_stored_once_pushed_and_paged_newest_first_with_postgresql() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Backend::Postgres.open(dir.path())?;
    stored_once_pushed_and_paged(dir.path(), db.db.clone()).await
}

async fn stored_once_pushed_and_paged(dir: &Path, db: Database) -> TestResult {
    let log = EmbeddedLog::open(dir.join("log"), EmbeddedOptions::default())?;
    log.ensure_topic(&TopicSpec::new(TOPIC, 3)).await?;
    let records: Vec<_> = [1, 2, 3, 2]
        .into_iter()
        .map(|i| {
            EnvelopeBuilder::new(AGGREGATE_TYPE, "c-1")
                .build(ComplianceEvent::Alert(alert(i)))
                .to_record()
        })
        .collect();
    log.append(TOPIC, records).await?;
    let (tx, _) = broadcast::channel(16);
    let (alerts_tx, mut alerts_rx) = broadcast::channel(16);
    let notifier = Notifier::new(log.clone(), db.clone(), tx).with_alerts(alerts_tx);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(notifier.run(async {
        stopped.await.ok();
    }));
    let mut pushed = Vec::new();
    while pushed.len() < 3 {
        let a = tokio::time::timeout(Duration::from_secs(30), alerts_rx.recv()).await??;
        pushed.push(a.alert_id);
    }
    // The redelivered alert is not pushed again.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), alerts_rx.recv())
            .await
            .is_err()
    );
    stop.send(()).ok();
    task.await??;
    let alerts = Alerts::new(db);
    let first = alerts.page(None, 2)?;
    let ids: Vec<_> = first.items.iter().map(|a| a.alert_id.clone()).collect();
    assert_eq!(ids, [alert(3).alert_id, alert(2).alert_id]);
    let rest = alerts.page(first.next_cursor.as_deref(), 2)?;
    assert_eq!(rest.items, [alert(1)]);
    assert_eq!(rest.next_cursor, None);
    Ok(())
}
