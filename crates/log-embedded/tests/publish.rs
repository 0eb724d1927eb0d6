//! The fire-and-forget publisher on the embedded log: everything handed over
//! is on the log after `close`, in order per topic; a full queue refuses at
//! once; a log that does not open fails the events without failing the caller.

use std::time::Duration;

use ultracore_log::{EventLog, NewRecord, PublishError, Publisher, PublisherOptions};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

async fn values(log: &EmbeddedLog, topic: &str) -> Vec<String> {
    let total = log.describe_topic(topic).await.unwrap().records() as usize;
    let mut c = log
        .consumer(ultracore_log::ConsumerOptions::new("verify", [topic]))
        .await
        .unwrap();
    ultracore_log::testing::drain(&mut c, total)
        .await
        .into_iter()
        .map(|r| String::from_utf8(r.value).unwrap())
        .collect()
}

#[tokio::test]
async fn everything_published_is_on_the_log_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap();
    let options = PublisherOptions {
        partitions: 1,
        max_batch: 7,
        ..PublisherOptions::default()
    };
    let publisher = Publisher::new(log.clone(), options);
    for i in 0..1000 {
        let topic = if i % 3 == 0 { "pub-a" } else { "pub-b" };
        publisher
            .publish(topic, NewRecord::new("k", format!("{i}")))
            .unwrap();
    }
    let report = publisher.close(Duration::from_secs(30)).await;
    assert_eq!(report.published, 1000, "{report:?}");
    assert!(report.is_complete(), "{report:?}");
    let a = values(&log, "pub-a").await;
    let b = values(&log, "pub-b").await;
    let want_a: Vec<String> = (0..1000)
        .filter(|i| i % 3 == 0)
        .map(|i| i.to_string())
        .collect();
    let want_b: Vec<String> = (0..1000)
        .filter(|i| i % 3 != 0)
        .map(|i| i.to_string())
        .collect();
    assert_eq!(a, want_a);
    assert_eq!(b, want_b);
}

#[tokio::test]
async fn a_full_queue_refuses_without_waiting_and_keeps_what_it_took() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let (open_tx, open_rx) = tokio::sync::oneshot::channel::<()>();
    let publisher = Publisher::spawn(
        async move {
            open_rx.await.ok();
            EmbeddedLog::open(&path, EmbeddedOptions::default())
        },
        PublisherOptions {
            capacity: 2,
            partitions: 1,
            ..PublisherOptions::default()
        },
    );
    publisher.publish("full", NewRecord::new("k", "1")).unwrap();
    publisher.publish("full", NewRecord::new("k", "2")).unwrap();
    assert_eq!(
        publisher.publish("full", NewRecord::new("k", "3")),
        Err(PublishError::QueueFull(2))
    );
    open_tx.send(()).unwrap();
    let report = publisher.close(Duration::from_secs(30)).await;
    assert_eq!((report.published, report.dropped), (2, 1), "{report:?}");
    assert!(!report.is_complete());
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap();
    assert_eq!(values(&log, "full").await, ["1", "2"]);
}

#[tokio::test]
async fn a_log_that_does_not_open_fails_the_events_not_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let publisher = Publisher::spawn(
        async move { EmbeddedLog::open(not_a_dir, EmbeddedOptions::default()) },
        PublisherOptions::default(),
    );
    for i in 0..5 {
        publisher
            .publish("t", NewRecord::new("k", format!("{i}")))
            .unwrap();
    }
    let report = publisher.close(Duration::from_secs(30)).await;
    assert_eq!((report.published, report.failed), (0, 5), "{report:?}");
    let reason = report.last_error.unwrap();
    assert!(reason.contains("did not open"), "{reason}");
}
