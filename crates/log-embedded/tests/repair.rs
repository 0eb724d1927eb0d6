//! `repair`: a log that refuses to open because of a corrupt record in the
//! middle of a segment is cut at that record, keeping a copy of the cut
//! bytes, and opens again with every record before it.

use std::path::Path;

mod common;

use common::segment_files;
use ultracore_log::{ConsumerOptions, Error, EventLog, EventLogExt, NewRecord, TopicSpec};
use ultracore_log_embedded::{repair, EmbeddedLog, EmbeddedOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn value(i: usize) -> Vec<u8> {
    format!("record-{i:04}").into_bytes()
}

async fn write(dir: &Path, options: EmbeddedOptions, n: usize) -> TestResult {
    let log = EmbeddedLog::open(dir, options)?;
    log.ensure_topic(&TopicSpec::new("t", 1)).await?;
    log.append("t", (0..n).map(|i| NewRecord::new("k", value(i))).collect())
        .await?;
    Ok(())
}

/// Flips a bit inside the `index`th frame of a segment of equal-sized frames.
fn corrupt_frame(segment: &Path, frames: usize, index: usize) -> Result<u64, std::io::Error> {
    let mut bytes = std::fs::read(segment)?;
    let frame = bytes.len() / frames;
    let position = index * frame;
    bytes[position + 20] ^= 0x10;
    std::fs::write(segment, &bytes)?;
    Ok(position as u64)
}

async fn values(log: &EmbeddedLog) -> Result<Vec<(u64, Vec<u8>)>, Error> {
    let total = log.describe_topic("t").await?.records() as usize;
    let mut c = log.consumer(ConsumerOptions::new("check", ["t"])).await?;
    Ok(ultracore_log::testing::drain(&mut c, total)
        .await
        .into_iter()
        .map(|r| (r.offset, r.value))
        .collect())
}

#[tokio::test]
async fn a_corrupt_record_mid_segment_is_cut_and_the_log_opens() -> TestResult {
    let dir = tempfile::tempdir()?;
    write(dir.path(), EmbeddedOptions::default(), 100).await?;
    let segment = segment_files(dir.path(), "t", 0)[0].clone();
    let size = std::fs::metadata(&segment)?.len();
    let position = corrupt_frame(&segment, 100, 40)?;
    assert!(matches!(
        EmbeddedLog::open(dir.path(), EmbeddedOptions::default()),
        Err(Error::Corrupt { .. })
    ));

    // Reported, not done.
    let report = repair(dir.path(), false)?;
    assert!(!report.applied);
    assert_eq!((report.partitions_checked, report.segments_checked), (1, 1));
    assert_eq!(report.cuts.len(), 1, "{report:?}");
    let cut = &report.cuts[0];
    assert_eq!((cut.topic.as_str(), cut.partition), ("t", 0));
    assert_eq!(cut.segment, segment);
    assert_eq!(cut.position, position);
    assert_eq!(cut.bytes, size - position);
    assert_eq!((cut.first_offset, cut.records), (40, 60));
    assert!(cut.reason.contains("CRC32C"), "{}", cut.reason);
    assert!(
        cut.reason.contains("middle of the segment"),
        "{}",
        cut.reason
    );
    assert_eq!(cut.kept_at, None);
    assert_eq!(std::fs::metadata(&segment)?.len(), size);

    // Done: the cut bytes are kept beside the segment.
    let report = repair(dir.path(), true)?;
    assert!(report.applied);
    let kept = report.cuts[0].kept_at.clone().ok_or("no copy kept")?;
    assert_eq!(kept.parent(), segment.parent());
    assert_eq!(std::fs::metadata(&segment)?.len(), position);
    assert_eq!(std::fs::metadata(&kept)?.len(), size - position);

    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
    let kept_records = values(&log).await?;
    assert_eq!(kept_records.len(), 40);
    for (i, (offset, v)) in kept_records.iter().enumerate() {
        assert_eq!((*offset, v), (i as u64, &value(i)));
    }
    let next = log.append_one("t", NewRecord::new("k", "after")).await?;
    assert_eq!(next.offset, 40);
    drop(log);

    assert!(repair(dir.path(), false)?.cuts.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_corrupt_record_in_a_sealed_segment_is_cut_leaving_a_gap() -> TestResult {
    let dir = tempfile::tempdir()?;
    let options = EmbeddedOptions {
        segment_bytes: 4096,
        ..EmbeddedOptions::default()
    };
    write(dir.path(), options.clone(), 500).await?;
    let files = segment_files(dir.path(), "t", 0);
    let sealed = &files[1];
    let first = base_of(sealed)?;
    let next = base_of(&files[2])?;
    let frames = (next - first) as usize;
    corrupt_frame(sealed, frames, 3)?;

    let report = repair(dir.path(), true)?;
    assert_eq!(report.cuts.len(), 1, "{report:?}");
    let cut = &report.cuts[0];
    assert_eq!(
        (cut.first_offset, cut.records),
        (first + 3, frames as u64 - 3)
    );
    assert!(cut.reason.contains("sealed segment"), "{}", cut.reason);

    // Every record but the cut ones reads back, past the gap.
    let log = EmbeddedLog::open(dir.path(), options)?;
    let total = log.describe_topic("t").await?.partitions[0].high_watermark;
    assert_eq!(total, 500);
    let mut c = log.consumer(ConsumerOptions::new("check", ["t"])).await?;
    let mut seen = Vec::new();
    while seen.len() < 500 - cut.records as usize {
        let batch =
            ultracore_log::Consumer::poll(&mut c, 100, std::time::Duration::from_secs(5)).await?;
        assert!(!batch.is_empty(), "reading stopped at {:?}", seen.last());
        seen.extend(batch.into_iter().map(|r| (r.offset, r.value)));
    }
    let expected: Vec<(u64, Vec<u8>)> = (0..500u64)
        .filter(|o| !(first + 3..next).contains(o))
        .map(|o| (o, value(o as usize)))
        .collect();
    assert_eq!(seen, expected);
    Ok(())
}

#[tokio::test]
async fn repair_refuses_while_a_writer_holds_the_log() -> TestResult {
    let dir = tempfile::tempdir()?;
    write(dir.path(), EmbeddedOptions::default(), 10).await?;
    let _writer = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
    match repair(dir.path(), true) {
        Err(Error::Locked { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
        other => panic!("expected Locked, got {other:?}"),
    }
    Ok(())
}

fn base_of(segment: &Path) -> Result<u64, Box<dyn std::error::Error>> {
    let stem = segment
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("segment name")?;
    Ok(stem.parse()?)
}
