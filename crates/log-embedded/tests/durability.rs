//! Durability of the embedded log: crash (SIGKILL) recovery, torn and
//! bit-flipped segment files, the single-writer lock, read-only followers
//! and retention.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::segment_files;
use rand::Rng;
use ultracore_log::{
    Consumer, ConsumerOptions, Error, EventLog, EventLogExt, NewRecord, Record, Retention,
    TopicSpec,
};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions, SyncMode};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn small_segments() -> EmbeddedOptions {
    EmbeddedOptions {
        segment_bytes: 64 * 1024,
        ..EmbeddedOptions::default()
    }
}

/// Every record of a topic, per partition, by reading each partition from 0.
async fn read_all(log: &EmbeddedLog, topic: &str) -> Vec<Record> {
    let mut c = log
        .consumer(ConsumerOptions::new(
            format!("verify-{}", rand::random::<u32>()),
            [topic],
        ))
        .await
        .unwrap();
    let total = log.describe_topic(topic).await.unwrap().records() as usize;
    ultracore_log::testing::drain(&mut c, total).await
}

/// The child side of the crash test: appends forever from four tasks and
/// prints every acknowledged record. Does nothing unless the parent set
/// `ULTRACORE_CRASH_DIR`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(dir) = std::env::var("ULTRACORE_CRASH_DIR") else {
        return;
    };
    let round: usize = std::env::var("ULTRACORE_CRASH_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    // Both ways of syncing a commit that touches both partitions take turns.
    let sync = if round.is_multiple_of(2) {
        SyncMode::Auto
    } else {
        SyncMode::PerFile
    };
    let options = EmbeddedOptions {
        sync,
        ..small_segments()
    };
    let log = EmbeddedLog::open(&dir, options).unwrap();
    log.ensure_topic(&TopicSpec::new("crash", 2)).await.unwrap();
    let mut tasks = Vec::new();
    for task in 0..4 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0usize;
            loop {
                let n = rand::rng().random_range(1..20);
                let batch: Vec<NewRecord> = (i..i + n)
                    .map(|j| {
                        NewRecord::new(
                            format!("r{round}-t{task}"),
                            format!("r{round}-t{task}-{j}-{}", "x".repeat(j % 300)),
                        )
                    })
                    .collect();
                let acks = log.append("crash", batch).await.unwrap();
                let mut out = std::io::stdout().lock();
                for (k, a) in acks.iter().enumerate() {
                    writeln!(
                        out,
                        "ACK {} {} r{round}-t{task}-{}",
                        a.partition,
                        a.offset,
                        i + k
                    )
                    .unwrap();
                }
                out.flush().unwrap();
                i += n;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Kills a writing child with SIGKILL at random moments, many times; after
/// each restart every acknowledged record is present, in order, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_record() -> TestResult {
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let mut acked: Vec<(u32, u64, String)> = Vec::new();
    let rounds = 25;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("ULTRACORE_CRASH_DIR", dir.path())
            .env("ULTRACORE_CRASH_ROUND", round.to_string())
            .env("RUST_LOG", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let parts: Vec<&str> = line.split(' ').collect();
                if parts.len() == 4 && parts[0] == "ACK" {
                    lines.push((
                        parts[1].parse::<u32>().unwrap(),
                        parts[2].parse::<u64>().unwrap(),
                        parts[3].to_owned(),
                    ));
                }
            }
            lines
        });
        let wait = rand::rng().random_range(150..600);
        std::thread::sleep(Duration::from_millis(wait));
        child.kill()?; // SIGKILL
        child.wait()?;
        let round_acks = reader.join().unwrap();
        acked.extend(round_acks);

        let log = EmbeddedLog::open(dir.path(), small_segments())?;
        let records = read_all(&log, "crash").await;
        let mut by_position: HashMap<(u32, u64), String> = HashMap::new();
        let mut per_partition: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        let mut per_task: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for r in &records {
            let v = String::from_utf8(r.value.clone())?;
            let mut it = v.splitn(4, '-');
            let (rd, task, seq) = (
                it.next().unwrap(),
                it.next().unwrap(),
                it.next().unwrap().parse::<usize>()?,
            );
            by_position.insert((r.partition, r.offset), format!("{rd}-{task}-{seq}"));
            per_partition.entry(r.partition).or_default().push(r.offset);
            per_task
                .entry(format!("{rd}-{task}"))
                .or_default()
                .push(seq);
        }
        for (p, offsets) in &per_partition {
            assert_eq!(
                *offsets,
                (0..offsets.len() as u64).collect::<Vec<_>>(),
                "partition {p}: offsets not contiguous from 0"
            );
        }
        for (task, seqs) in &per_task {
            assert_eq!(
                *seqs,
                (0..seqs.len()).collect::<Vec<_>>(),
                "{task}: records missing, duplicated or out of order"
            );
        }
        for (p, off, v) in &acked {
            assert_eq!(
                by_position.get(&(*p, *off)),
                Some(v),
                "acknowledged {v} at {p}/{off} lost after round {round}"
            );
        }
    }
    assert!(
        acked.len() > 1000,
        "the child acknowledged only {} records; the test proves little",
        acked.len()
    );
    Ok(())
}

async fn write_records(
    dir: &Path,
    options: EmbeddedOptions,
    n: usize,
) -> Vec<ultracore_log::Appended> {
    let log = EmbeddedLog::open(dir, options).unwrap();
    log.ensure_topic(&TopicSpec::new("t", 1)).await.unwrap();
    log.append(
        "t",
        (0..n)
            .map(|i| NewRecord::new("k", format!("record-{i:04}")))
            .collect(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn torn_tail_is_truncated() -> TestResult {
    let dir = tempfile::tempdir()?;
    write_records(dir.path(), EmbeddedOptions::default(), 100).await;
    let seg = &segment_files(dir.path(), "t", 0)[0];
    let len = std::fs::metadata(seg)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(seg)?
        .set_len(len - 7)?; // cut the last record
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
    let info = log.describe_topic("t").await?;
    assert_eq!(info.partitions[0].high_watermark, 99);
    let records = read_all(&log, "t").await;
    assert_eq!(records.len(), 99);
    assert_eq!(records[98].value, b"record-0098");
    let next = log.append_one("t", NewRecord::new("k", "after")).await?;
    assert_eq!(
        next.offset, 99,
        "the torn record's offset is reused by the next append"
    );
    Ok(())
}

#[tokio::test]
async fn garbage_tail_is_truncated() -> TestResult {
    let dir = tempfile::tempdir()?;
    write_records(dir.path(), EmbeddedOptions::default(), 10).await;
    let seg = &segment_files(dir.path(), "t", 0)[0];
    let clean = std::fs::metadata(seg)?.len();
    let mut f = std::fs::OpenOptions::new().append(true).open(seg)?;
    f.write_all(&[0x55; 300])?;
    drop(f);
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
    assert_eq!(
        log.describe_topic("t").await?.partitions[0].high_watermark,
        10
    );
    assert_eq!(std::fs::metadata(seg)?.len(), clean);
    Ok(())
}

#[tokio::test]
async fn bit_flip_in_the_middle_is_reported_not_read() -> TestResult {
    let dir = tempfile::tempdir()?;
    write_records(dir.path(), EmbeddedOptions::default(), 100).await;
    let seg = &segment_files(dir.path(), "t", 0)[0];
    let mut bytes = std::fs::read(seg)?;
    let frame = bytes.len() / 100;
    let position = 10 * frame;
    bytes[position + 40] ^= 0x08;
    std::fs::write(seg, &bytes)?;
    match EmbeddedLog::open(dir.path(), EmbeddedOptions::default()) {
        Err(Error::Corrupt {
            segment,
            position: at,
            reason,
        }) => {
            assert_eq!(&segment, seg);
            assert_eq!(at, position as u64);
            assert!(reason.contains("CRC32C"), "{reason}");
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn bit_flip_in_a_sealed_segment_fails_the_read() -> TestResult {
    let dir = tempfile::tempdir()?;
    let options = EmbeddedOptions {
        segment_bytes: 4096,
        ..EmbeddedOptions::default()
    };
    write_records(dir.path(), options.clone(), 500).await;
    let files = segment_files(dir.path(), "t", 0);
    assert!(
        files.len() > 3,
        "expected several segments, got {}",
        files.len()
    );
    let mut bytes = std::fs::read(&files[1])?;
    bytes[100] ^= 0x01;
    std::fs::write(&files[1], &bytes)?;
    let log = EmbeddedLog::open(dir.path(), options)?;
    let mut c = log.consumer(ConsumerOptions::new("g", ["t"])).await?;
    let mut seen = 0;
    let err = loop {
        match c.poll(50, Duration::from_millis(100)).await {
            Ok(batch) => {
                assert!(
                    !batch.is_empty(),
                    "the read went past the corrupt record silently"
                );
                for r in &batch {
                    assert_eq!(
                        r.value,
                        format!("record-{:04}", r.offset).into_bytes(),
                        "wrong data returned"
                    );
                }
                seen += batch.len();
            }
            Err(e) => break e,
        }
    };
    match err {
        Error::Corrupt { segment, .. } => assert_eq!(segment, files[1]),
        other => panic!("expected corruption, got {other}"),
    }
    assert!(seen > 0);
    Ok(())
}

#[tokio::test]
async fn second_writer_is_refused_with_the_owner_pid() -> TestResult {
    let dir = tempfile::tempdir()?;
    let _first = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
    match EmbeddedLog::open(dir.path(), EmbeddedOptions::default()) {
        Err(e @ Error::Locked { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&std::process::id().to_string()), "{msg}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn read_only_handle_follows_the_writer() -> TestResult {
    let dir = tempfile::tempdir()?;
    let writer = EmbeddedLog::open(dir.path(), small_segments())?;
    writer.ensure_topic(&TopicSpec::new("t", 2)).await?;
    writer
        .append(
            "t",
            (0..10)
                .map(|i| NewRecord::new(format!("k{i}"), format!("v{i}")))
                .collect(),
        )
        .await?;
    let reader = EmbeddedLog::open_read_only(dir.path())?;
    assert_eq!(reader.describe_topic("t").await?.records(), 10);
    let mut c = reader.consumer(ConsumerOptions::new("tail", ["t"])).await?;
    assert_eq!(ultracore_log::testing::drain(&mut c, 10).await.len(), 10);
    // Enough to roll segments while the reader follows.
    let big = "y".repeat(1000);
    writer
        .append(
            "t",
            (0..200)
                .map(|i| NewRecord::new(format!("k{i}"), big.clone()))
                .collect(),
        )
        .await?;
    assert_eq!(ultracore_log::testing::drain(&mut c, 200).await.len(), 200);
    assert!(matches!(
        reader.append("t", vec![NewRecord::unkeyed("x")]).await,
        Err(Error::ReadOnly(_))
    ));
    writer.create_topic(&TopicSpec::new("later", 1)).await?;
    assert!(reader
        .list_topics()
        .await?
        .iter()
        .any(|t| t.name == "later"));
    Ok(())
}

/// Earlier versions stored "kept forever" (event-sourced topics) as a size
/// limit of i64::MAX bytes; such a data directory still opens, and those
/// topics read back as kept forever, by the writer and by a read-only reader.
#[tokio::test]
async fn topics_written_with_an_i64_max_size_limit_read_as_forever() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
    log.create_topic(&TopicSpec::new("es.Portfolio", 2).with_retention(Retention::Forever))
        .await?;
    log.append("es.Portfolio", vec![NewRecord::new("pf-1", "{}")])
        .await?;
    drop(log);
    let meta = dir.path().join("topics/es.Portfolio/topic.json");
    // Byte for byte what the earlier versions wrote.
    std::fs::write(
        &meta,
        "{\n  \"partitions\": 2,\n  \"retention_ms\": null,\n  \"retention_bytes\": 9223372036854775807\n}",
    )?;

    let reader = EmbeddedLog::open_read_only(dir.path())?;
    assert_eq!(
        reader.describe_topic("es.Portfolio").await?.retention,
        Some(Retention::Forever)
    );
    drop(reader);
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
    let info = log.describe_topic("es.Portfolio").await?;
    assert_eq!(info.retention, Some(Retention::Forever));
    assert_eq!(info.records(), 1);
    let listed = log.list_topics().await?;
    assert_eq!(listed[0].retention, Some(Retention::Forever));
    Ok(())
}

/// A topic created without a retention takes the log's default, resolved
/// at creation: later changes of the default do not touch it.
#[tokio::test]
async fn topics_without_retention_take_the_default_at_creation() -> TestResult {
    let dir = tempfile::tempdir()?;
    let options = EmbeddedOptions {
        default_retention: Retention::days(7),
        ..EmbeddedOptions::default()
    };
    let log = EmbeddedLog::open(dir.path(), options)?;
    log.create_topic(&TopicSpec::new("d", 1)).await?;
    log.create_topic(&TopicSpec::new("f", 1).with_retention(Retention::Forever))
        .await?;
    drop(log);
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
    assert_eq!(
        log.describe_topic("d").await?.retention,
        Some(Retention::days(7))
    );
    assert_eq!(
        log.describe_topic("f").await?.retention,
        Some(Retention::Forever)
    );
    Ok(())
}

#[tokio::test]
async fn retention_deletes_old_segments_by_size() -> TestResult {
    let dir = tempfile::tempdir()?;
    let options = EmbeddedOptions {
        segment_bytes: 8 * 1024,
        retention_interval: Duration::from_millis(20),
        ..EmbeddedOptions::default()
    };
    let log = EmbeddedLog::open(dir.path(), options)?;
    let retention = Retention::limited(None, Some(32 * 1024));
    log.create_topic(&TopicSpec::new("r", 1).with_retention(retention))
        .await?;
    let value = "z".repeat(500);
    for _ in 0..10 {
        log.append(
            "r",
            (0..40)
                .map(|_| NewRecord::new("k", value.clone()))
                .collect(),
        )
        .await?;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = log.describe_topic("r").await?;
        let start = info.partitions[0].log_start_offset;
        if start > 0 && log.topic_size_bytes("r")? <= 32 * 1024 + 8 * 1024 {
            let mut c = log.consumer(ConsumerOptions::new("g", ["r"])).await?;
            let first = c.poll(1, Duration::from_secs(1)).await?;
            assert_eq!(
                first[0].offset, start,
                "reading from the beginning starts at the oldest kept record"
            );
            return Ok(());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "retention never ran: log start {start}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn retention_deletes_old_segments_by_age() -> TestResult {
    let dir = tempfile::tempdir()?;
    let options = EmbeddedOptions {
        segment_bytes: 4096,
        retention_interval: Duration::from_millis(20),
        ..EmbeddedOptions::default()
    };
    let log = EmbeddedLog::open(dir.path(), options)?;
    log.create_topic(&TopicSpec::new("a", 1).with_retention(Retention::days(1)))
        .await?;
    let old = ultracore_log::now_millis() - 3 * 86_400_000;
    log.append(
        "a",
        (0..100)
            .map(|_| NewRecord::new("k", "o".repeat(200)).with_timestamp(old))
            .collect(),
    )
    .await?;
    let fresh = log
        .append(
            "a",
            (0..30)
                .map(|_| NewRecord::new("k", "n".repeat(200)))
                .collect(),
        )
        .await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while log.describe_topic("a").await?.partitions[0].log_start_offset < 64 {
        assert!(
            std::time::Instant::now() < deadline,
            "old segments were not deleted: {:?}",
            log.describe_topic("a").await?
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let start = log.describe_topic("a").await?.partitions[0].log_start_offset;
    assert!(start <= fresh[0].offset, "fresh records were deleted");
    Ok(())
}
