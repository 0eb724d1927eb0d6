//! The sparse offset and time index files of sealed segments are derived
//! data: a truncated, torn or garbage index found on open is detected by
//! its checksum and rebuilt from the segment, never trusted.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;

use common::segment_files;
use ultracore_log::{Consumer, ConsumerOptions, EventLog, EventLogExt, NewRecord, Seek, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// About five segments of 64 KiB, each with an index entry every 4 KiB.
const RECORDS: u64 = 1500;
/// Timestamps of record `i`: far in the past, one second apart.
const T0: i64 = 1_600_000_000_000;

fn options() -> EmbeddedOptions {
    EmbeddedOptions {
        segment_bytes: 64 * 1024,
        ..EmbeddedOptions::default()
    }
}

fn value(i: u64) -> Vec<u8> {
    format!("record-{i:04}-{}", "x".repeat(200)).into_bytes()
}

async fn write(dir: &Path) -> TestResult {
    let log = EmbeddedLog::open(dir, options())?;
    log.ensure_topic(&TopicSpec::new("t", 1)).await?;
    let records = (0..RECORDS)
        .map(|i| NewRecord::new("k", value(i)).with_timestamp(T0 + 1000 * i as i64))
        .collect();
    log.append("t", records).await?;
    Ok(())
}

fn index_files(segment: &Path) -> (PathBuf, PathBuf) {
    (
        segment.with_extension("index"),
        segment.with_extension("timeindex"),
    )
}

/// The first offset of a sealed segment, from its file name.
fn base_of(segment: &Path) -> Result<u64, Box<dyn std::error::Error>> {
    let stem = segment
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("segment name")?;
    Ok(stem.parse()?)
}

/// Reads from `offset` through a consumer seeked there, checking each record.
async fn read_from(log: &EmbeddedLog, seek: Seek, expect_first: u64) -> TestResult {
    let mut c = log
        .consumer(ConsumerOptions::new(format!("g-{expect_first}"), ["t"]))
        .await?;
    c.seek(seek).await?;
    let batch = c.poll(5, Duration::from_secs(5)).await?;
    let first = batch.first().ok_or("nothing read")?;
    assert_eq!(first.offset, expect_first);
    for r in &batch {
        assert_eq!(r.value, value(r.offset), "record {}", r.offset);
        assert_eq!(r.timestamp, T0 + 1000 * r.offset as i64);
    }
    Ok(())
}

#[tokio::test]
async fn garbage_index_files_are_detected_and_rebuilt() -> TestResult {
    let dir = tempfile::tempdir()?;
    write(dir.path()).await?;
    let files = segment_files(dir.path(), "t", 0);
    assert!(files.len() > 4, "expected several sealed segments");
    let victim = &files[2];
    let base = base_of(victim)?;
    let next_base = base_of(&files[3])?;
    let (index, timeindex) = index_files(victim);

    // Plausible garbage of the same size: increasing offsets at positions
    // inside frames, and every running maximum timestamp zero (which would
    // make the segment look older than any retention, and hide it from a
    // seek by time).
    let mut bytes = std::fs::read(&index)?;
    let entries = bytes.len() / 8;
    assert!(entries > 4, "{entries} index entries");
    for i in 1..entries {
        bytes[i * 8..i * 8 + 4].copy_from_slice(&(i as u32).to_le_bytes());
        bytes[i * 8 + 4..i * 8 + 8].copy_from_slice(&(7 * i as u32).to_le_bytes());
    }
    std::fs::write(&index, &bytes)?;
    let zeros = vec![0u8; std::fs::metadata(&timeindex)?.len() as usize];
    std::fs::write(&timeindex, &zeros)?;

    let log = EmbeddedLog::open(dir.path(), options())?;
    let target = base + (next_base - base) / 2;
    read_from(&log, Seek::Offset(target), target).await?;
    read_from(&log, Seek::Timestamp(T0 + 1000 * target as i64), target).await?;
    drop(log);
    // The writer rewrote them: a second open trusts what it wrote.
    assert_ne!(std::fs::read(&timeindex)?, zeros);
    let log = EmbeddedLog::open(dir.path(), options())?;
    read_from(&log, Seek::Offset(target), target).await?;
    Ok(())
}

#[tokio::test]
async fn truncated_and_missing_index_files_are_rebuilt() -> TestResult {
    let dir = tempfile::tempdir()?;
    write(dir.path()).await?;
    let files = segment_files(dir.path(), "t", 0);
    let (index, timeindex) = index_files(&files[1]);
    let len = std::fs::metadata(&index)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&index)?
        .set_len(len - 3)?;
    let (_, other_timeindex) = index_files(&files[3]);
    std::fs::remove_file(&other_timeindex)?;
    std::fs::write(&timeindex, b"")?;

    let log = EmbeddedLog::open(dir.path(), options())?;
    for seg in [&files[1], &files[3]] {
        let base = base_of(seg)?;
        read_from(&log, Seek::Offset(base + 1), base + 1).await?;
        read_from(
            &log,
            Seek::Timestamp(T0 + 1000 * (base as i64 + 1)),
            base + 1,
        )
        .await?;
    }
    Ok(())
}
