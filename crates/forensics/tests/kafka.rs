//! The service against a real Kafka-protocol broker (`ULTRACORE_TEST_KAFKA`,
//! e.g. 127.0.0.1:19092 from `scripts/kafka-up.sh`): decisions stored once,
//! a bad record dead-lettered, a restart continuing from the committed
//! offsets. Without the variable the test says so and passes.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{config, decision, decision_id, record, start, TestResult};
use ultracore_events::trading::DECISIONS_TOPIC;
use ultracore_forensics::{ForensicsStore, SERVICE_GROUP};
use ultracore_log::{
    dlq_topic, Consumer, ConsumerOptions, EventLog, EventLogExt, NewRecord, TopicSpec,
};
use ultracore_log_kafka::{KafkaConfig, KafkaLog};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_on_kafka() -> TestResult {
    let Ok(broker) = std::env::var("ULTRACORE_TEST_KAFKA") else {
        eprintln!(
            "ULTRACORE_TEST_KAFKA is not set: skipping the Kafka run (scripts/test.sh sets it)"
        );
        return Ok(());
    };
    let prefix = format!("f{:08x}.", rand::random::<u32>());
    let log = KafkaLog::connect(KafkaConfig::new(broker).with_prefix(prefix)).await?;
    log.ensure_topic(&TopicSpec::new(DECISIONS_TOPIC, 3))
        .await?;
    let data = tempfile::tempdir()?;
    let db = data.path().join(ForensicsStore::FILE_NAME);
    let now = Utc::now();

    let mut records: Vec<NewRecord> = (0..300).map(|i| record(&decision(i, now))).collect();
    records.push(NewRecord::new("AAPL", "{not an envelope"));
    records.push(record(&decision(5, now))); // published twice
    log.append(DECISIONS_TOPIC, records).await?;
    let running = start(log.clone(), config(&db))?;
    running.wait_rows(300, Duration::from_secs(120)).await?;
    // Let the commit of the last batch land before stopping.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let lag: u64 = log
            .group_lag(SERVICE_GROUP)
            .await?
            .iter()
            .map(|l| l.lag())
            .sum();
        let committed = log.group_lag(SERVICE_GROUP).await?.len();
        if lag == 0 && committed > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "offsets not committed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = running.stop().await?;
    assert_eq!(
        (first.stored, first.duplicates, first.dead_lettered),
        (300, 1, 1),
        "{first:?}"
    );

    // The restart continues where the group committed.
    log.append(
        DECISIONS_TOPIC,
        (300..400).map(|i| record(&decision(i, now))).collect(),
    )
    .await?;
    let running = start(log.clone(), config(&db))?;
    running.wait_rows(400, Duration::from_secs(120)).await?;
    let reader = running.reader.clone();
    let second = running.stop().await?;
    assert_eq!((second.stored, second.duplicates), (100, 0), "{second:?}");
    assert_eq!(reader.count()?, 400);
    assert!(reader.get(decision_id(399))?.is_some());

    // The bad record is on the dead-letter topic with its reason.
    let mut dlq = log
        .consumer(ConsumerOptions::new(
            format!("check-{}", uuid::Uuid::now_v7()),
            [dlq_topic(DECISIONS_TOPIC)],
        ))
        .await?;
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen.is_empty() && std::time::Instant::now() < deadline {
        seen = dlq.poll(10, Duration::from_millis(500)).await?;
    }
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].value, b"{not an envelope");
    assert!(
        String::from_utf8_lossy(seen[0].header("dlq.reason").unwrap_or_default())
            .starts_with("forensics: value is not valid JSON")
    );
    Ok(())
}
