//! `ultracore events repair` on a log that refuses to open after a record
//! in the middle of a segment was damaged.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use ultracore_log::{Consumer, ConsumerOptions, EventLog, EventLogExt, NewRecord, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const RECORDS: usize = 100;
const CORRUPT: usize = 40;

fn ultracore(dir: &Path, args: &[&str]) -> std::io::Result<Output> {
    common::in_data_dir(dir).args(args).output()
}

fn stdout(out: &Output) -> Result<String, Box<dyn std::error::Error>> {
    if !out.status.success() {
        return Err(format!("failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout.clone())?)
}

fn value(i: usize) -> Vec<u8> {
    format!("record-{i:04}").into_bytes()
}

fn segment(dir: &Path) -> PathBuf {
    dir.join("topics/t/0/00000000000000000000.log")
}

#[tokio::test]
async fn repair_reports_then_cuts_a_corrupt_record_and_the_log_opens() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");
    {
        let log = EmbeddedLog::open(&dir, EmbeddedOptions::default())?;
        log.ensure_topic(&TopicSpec::new("t", 1)).await?;
        log.append(
            "t",
            (0..RECORDS)
                .map(|i| NewRecord::new("k", value(i)))
                .collect(),
        )
        .await?;
    }
    // A flipped bit in record 40 of 100 equal-sized records.
    let mut bytes = std::fs::read(segment(&dir))?;
    let size = bytes.len();
    let position = CORRUPT * size / RECORDS;
    bytes[position + 20] ^= 0x10;
    std::fs::write(segment(&dir), &bytes)?;

    // The log refuses to open, naming the file and the position.
    let refused = ultracore(&dir, &["events", "topics"])?;
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("00000000000000000000.log"), "{err}");
    assert!(err.contains(&format!("byte {position}")), "{err}");
    assert!(err.contains("ultracore events repair"), "{err}");

    // Without --apply: a report, and the segment untouched.
    let report: Value =
        serde_json::from_str(&stdout(&ultracore(&dir, &["events", "repair", "--json"])?)?)?;
    assert_eq!(report["applied"], false);
    let cuts = report["cuts"].as_array().ok_or("cuts")?;
    assert_eq!(cuts.len(), 1, "{report}");
    assert_eq!(cuts[0]["topic"], "t");
    assert_eq!(cuts[0]["partition"], 0);
    assert_eq!(cuts[0]["segment"], segment(&dir).display().to_string());
    assert_eq!(cuts[0]["position"], position);
    assert_eq!(cuts[0]["bytes"], size - position);
    assert_eq!(cuts[0]["first_offset"], CORRUPT);
    assert_eq!(cuts[0]["records"], RECORDS - CORRUPT);
    assert!(
        cuts[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("CRC32C") && r.contains("middle of the segment")),
        "{report}"
    );
    let text = stdout(&ultracore(&dir, &["events", "repair"])?)?;
    for needle in [
        "topics/t/0/00000000000000000000.log",
        &position.to_string(),
        "CRC32C",
        "--apply",
    ] {
        assert!(text.contains(needle), "'{needle}' missing from:\n{text}");
    }
    assert_eq!(std::fs::metadata(segment(&dir))?.len(), size as u64);

    // With --apply: cut, with the cut bytes kept beside the segment.
    let report: Value = serde_json::from_str(&stdout(&ultracore(
        &dir,
        &["events", "repair", "--apply", "--json"],
    )?)?)?;
    assert_eq!(report["applied"], true);
    let kept = PathBuf::from(report["cuts"][0]["kept_at"].as_str().ok_or("kept_at")?);
    assert_eq!(std::fs::read(&kept)?, bytes[position..]);
    assert_eq!(std::fs::metadata(segment(&dir))?.len(), position as u64);

    // The log opens, with every record before the damaged one.
    let topics: Value =
        serde_json::from_str(&stdout(&ultracore(&dir, &["events", "topics", "--json"])?)?)?;
    assert_eq!(topics[0]["records"], CORRUPT);
    let log = EmbeddedLog::open(&dir, EmbeddedOptions::default())?;
    let mut c = log.consumer(ConsumerOptions::new("check", ["t"])).await?;
    let mut seen = Vec::new();
    while seen.len() < CORRUPT {
        let batch = c.poll(RECORDS, Duration::from_secs(5)).await?;
        assert!(!batch.is_empty(), "stopped after {} records", seen.len());
        seen.extend(batch);
    }
    for (i, r) in seen.iter().enumerate() {
        assert_eq!((r.offset, &r.value), (i as u64, &value(i)));
    }

    // Never beside a writer.
    let refused = ultracore(&dir, &["events", "repair"])?;
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains(&format!("locked by process {}", std::process::id())),
        "{err}"
    );
    drop(c);
    drop(log);
    let text = stdout(&ultracore(&dir, &["events", "repair"])?)?;
    assert!(text.contains("no damage found"), "{text}");
    Ok(())
}
