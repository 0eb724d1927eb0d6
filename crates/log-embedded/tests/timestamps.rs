//! `timestamp_at` on the embedded log beyond what the shared suite covers:
//! many small segments, a record larger than the look-up's read chunk,
//! after a restart (index files loaded from disk), and on a read-only handle.

use ultracore_log::{EventLog, NewRecord, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn record(i: usize, t0: i64) -> NewRecord {
    // Record 77 is 40 KiB: larger than one read of the look-up.
    let size = if i == 77 { 40 * 1024 } else { 150 };
    NewRecord::new(format!("k{}", i % 3), vec![b'x'; size]).with_timestamp(t0 + i as i64 * 10)
}

async fn check(log: &EmbeddedLog, topic: &str, n: usize, t0: i64) -> TestResult {
    for i in 0..n {
        let partition = ultracore_log::partition_for_key(format!("k{}", i % 3).as_bytes(), 1);
        assert_eq!(partition, 0);
        assert_eq!(
            log.timestamp_at(topic, 0, i as u64).await?,
            Some(t0 + i as i64 * 10),
            "offset {i}"
        );
    }
    assert_eq!(log.timestamp_at(topic, 0, n as u64).await?, None);
    Ok(())
}

#[tokio::test]
async fn across_segments_big_records_and_restarts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let options = EmbeddedOptions {
        segment_bytes: 16 * 1024,
        ..EmbeddedOptions::default()
    };
    let t0 = 1_700_000_000_000;
    let n = 400;
    {
        let log = EmbeddedLog::open(dir.path(), options.clone())?;
        log.create_topic(&TopicSpec::new("ts", 1)).await?;
        for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
            log.append("ts", chunk.iter().map(|&i| record(i, t0)).collect())
                .await?;
        }
        check(&log, "ts", n, t0).await?;
        let reader = EmbeddedLog::open_read_only(dir.path())?;
        check(&reader, "ts", n, t0).await?;
        assert!(matches!(
            log.timestamp_at("ts", 3, 0).await,
            Err(ultracore_log::Error::UnknownPartition { .. })
        ));
        assert!(matches!(
            log.timestamp_at("nope", 0, 0).await,
            Err(ultracore_log::Error::UnknownTopic(_))
        ));
    }
    let log = EmbeddedLog::open(dir.path(), options)?;
    check(&log, "ts", n, t0).await
}
