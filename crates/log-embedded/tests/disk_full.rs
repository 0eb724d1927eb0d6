//! A full disk stops the embedded log's writer: nothing more is
//! acknowledged, appends say why and what to do, and a restart after space
//! is freed recovers every acknowledged record and accepts writes again.
//!
//! The disk fills up on a small tmpfs the test mounts itself, so it runs
//! only as root where mounting is permitted; elsewhere it says it skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use ultracore_log::{ConsumerOptions, Error, EventLog, EventLogExt, NewRecord, TopicSpec};
use ultracore_log_embedded::{frame, EmbeddedLog, EmbeddedOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SEGMENT_BYTES: u64 = 16 * 1024;

/// A size-limited tmpfs mounted for one test, unmounted when dropped.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// Mounts a tmpfs of `bytes`, or returns `None` after saying why when
    /// this process may not mount filesystems (not root, or a container
    /// without the capability).
    fn mount(bytes: u64) -> std::io::Result<Option<SmallFs>> {
        let dir = tempfile::tempdir()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Ok(Some(SmallFs { dir })),
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
            Err(e) => e.to_string(),
        };
        eprintln!(
            "SKIPPED: cannot mount a small tmpfs to fill it up (needs root and permission to mount): {why}"
        );
        Ok(None)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the filesystem has no page left. Returns its path.
    fn fill(&self) -> std::io::Result<PathBuf> {
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path)?;
        // Big steps first, then single bytes so the last page is full too.
        for step in [64 * 1024, 4096, 1] {
            let chunk = vec![0xAB; step];
            loop {
                match f.write(&chunk) {
                    Ok(n) if n == step => {}
                    Ok(_) => break,
                    Err(e) if e.raw_os_error() == Some(28) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(path)
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        // Lazily, so a file a failed test left open does not keep it mounted.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn record(i: usize) -> NewRecord {
    NewRecord::new("k", format!("record-{i:06}"))
}

async fn read_all(log: &EmbeddedLog, topic: &str) -> Result<Vec<Vec<u8>>, Error> {
    let mut c = log
        .consumer(ConsumerOptions::new("verify", [topic]))
        .await?;
    let total = log.describe_topic(topic).await?.records() as usize;
    let records = ultracore_log::testing::drain(&mut c, total).await;
    Ok(records.into_iter().map(|r| r.value).collect())
}

#[tokio::test]
async fn disk_full_during_a_segment_roll_stops_the_writer() -> TestResult {
    let Some(fs) = SmallFs::mount(1024 * 1024)? else {
        return Ok(());
    };
    let dir = fs.path().join("data");
    let options = EmbeddedOptions {
        segment_bytes: SEGMENT_BYTES,
        page_cache_window: None,
        ..EmbeddedOptions::default()
    };
    let sample = record(0);
    let frame_len = frame::frame_len(sample.key.as_deref(), &sample.value, &sample.headers) as u64;
    let per_segment = (SEGMENT_BYTES / frame_len) as usize;

    let log = EmbeddedLog::open(&dir, options.clone())?;
    log.ensure_topic(&TopicSpec::new("t", 1)).await?;
    // Three full segments and a fourth filled to the brim, one record per
    // append: the next append must roll to a new segment.
    let acknowledged = 4 * per_segment;
    for i in 0..acknowledged {
        log.append_one("t", record(i)).await?;
    }
    assert_eq!(log.stopped(), None);

    let filler = fs.fill()?;
    let err = log
        .append_one("t", record(acknowledged))
        .await
        .expect_err("the roll had no space left");
    assert!(
        matches!(&err, Error::Stopped { reason } if reason.contains("No space left")),
        "expected the writer to stop on ENOSPC, got {err}"
    );
    let reason = log
        .stopped()
        .ok_or("the log does not report that it stopped")?;
    assert!(reason.contains("No space left"), "{reason}");

    // Space is back, but the writer that failed mid-roll must not go on.
    std::fs::remove_file(&filler)?;
    let err = log
        .append_one("t", record(acknowledged + 1))
        .await
        .expect_err("an append was accepted after the roll failed");
    let msg = err.to_string();
    assert!(matches!(err, Error::Stopped { .. }), "{msg}");
    for needle in [
        "stopped accepting writes",
        "No space left",
        "free disk space",
        "restart",
    ] {
        assert!(msg.contains(needle), "'{needle}' missing from: {msg}");
    }
    assert_eq!(
        log.describe_topic("t").await?.partitions[0].high_watermark,
        acknowledged as u64,
        "readers see exactly the acknowledged records"
    );
    drop(log);

    // A restart recovers every acknowledged record and accepts writes.
    let log = EmbeddedLog::open(&dir, options)?;
    assert_eq!(log.stopped(), None);
    let values = read_all(&log, "t").await?;
    assert_eq!(values.len(), acknowledged);
    for (i, v) in values.iter().enumerate() {
        assert_eq!(v, &record(i).value, "record {i} after recovery");
    }
    let next = log.append_one("t", record(acknowledged)).await?;
    assert_eq!(next.offset, acknowledged as u64);
    Ok(())
}
