//! The writer keeps only the newest bytes of each partition in the page
//! cache: older, durable bytes are released (and read back from disk when a
//! reader wants them). Residency is measured with util-linux's `fincore`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ultracore_log::{Consumer, ConsumerOptions, EventLog, EventLogExt, NewRecord, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

use common::segment_files;

const MIB: u64 = 1024 * 1024;
const RECORD: usize = 16 * 1024;

/// Bytes of `path` resident in the page cache.
fn resident(path: &Path) -> u64 {
    let out = Command::new("fincore")
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(path)
        .output()
        .expect("fincore (util-linux) runs");
    assert!(
        out.status.success(),
        "fincore failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("fincore prints a byte count")
}

fn value(i: usize) -> Vec<u8> {
    let mut v = vec![(i % 251) as u8; RECORD];
    v[..8].copy_from_slice(&(i as u64).to_le_bytes());
    v
}

/// Appends `n` records of 16 KiB one commit at a time (each commit is a
/// chance to release) and returns the segment files.
async fn fill(dir: &Path, window: Option<u64>, n: usize) -> (EmbeddedLog, Vec<PathBuf>) {
    let options = EmbeddedOptions {
        segment_bytes: 4 * MIB,
        page_cache_window: window,
        ..EmbeddedOptions::default()
    };
    let log = EmbeddedLog::open(dir, options).unwrap();
    log.ensure_topic(&TopicSpec::new("t", 1)).await.unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        log.append(
            "t",
            chunk
                .iter()
                .map(|&i| NewRecord::new("k", value(i)))
                .collect(),
        )
        .await
        .unwrap();
    }
    let files = segment_files(dir, "t", 0);
    (log, files)
}

/// Inside the target directory: a disk-backed filesystem (on tmpfs the
/// page cache is the storage and cannot be released).
fn disk_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

#[tokio::test]
async fn durable_bytes_older_than_the_window_leave_the_page_cache() {
    let dir = disk_dir();
    // 11 MiB: two sealed 4 MiB segments and 3 MiB in the active one.
    let n = (11 * MIB) as usize / RECORD;
    let (log, files) = fill(dir.path(), Some(MIB), n).await;
    assert_eq!(files.len(), 3, "expected three segments: {files:?}");
    for sealed in &files[..2] {
        assert_eq!(
            resident(sealed),
            0,
            "{} is sealed and older than the window, yet cached",
            sealed.display()
        );
    }
    let active = &files[2];
    let len = std::fs::metadata(active).unwrap().len();
    let cached = resident(active);
    assert!(
        cached >= MIB && cached < len,
        "the active segment should keep its newest 1 MiB and release the rest: {cached} of {len} bytes cached"
    );

    // Released bytes are read back from disk, intact.
    let mut c = log
        .consumer(ConsumerOptions::new("g", ["t"]))
        .await
        .unwrap();
    let mut seen = 0;
    while seen < n {
        let batch = c.poll(256, Duration::from_secs(5)).await.unwrap();
        assert!(!batch.is_empty(), "only {seen} of {n} records read back");
        for r in &batch {
            assert_eq!(r.value, value(r.offset as usize), "record {}", r.offset);
        }
        seen += batch.len();
    }
    assert_eq!(seen, n);
}

#[tokio::test]
async fn without_a_window_the_kernel_keeps_everything() {
    let dir = disk_dir();
    let n = (11 * MIB) as usize / RECORD;
    let (_log, files) = fill(dir.path(), None, n).await;
    let first = &files[0];
    let len = std::fs::metadata(first).unwrap().len();
    let cached = resident(first);
    assert!(
        cached >= len,
        "nothing asked the kernel to release {}, yet only {cached} of {len} bytes are cached",
        first.display()
    );
}
