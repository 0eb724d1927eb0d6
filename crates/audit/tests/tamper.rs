//! The tamper suite: seeded mutations of what is stored — a flipped bit in
//! a value, key, header or timestamp, a deleted, duplicated, reordered or
//! inserted record, a truncated partition, an edited checkpoint, an edited
//! leaf of the trail — each written into a log of its own, and every one
//! must be found by `verify`, its first issue naming the position mutated.
//! On the embedded log and on Kafka (the records rewritten into topics of
//! their own).

use std::future::Future;
use std::time::Duration;

mod common;

use common::audit;
use ultracore_audit::{verify, IssueKind, SignedCheckpoint, TrailSnapshot};
use ultracore_log::{Consumer, ConsumerOptions, EventLog, NewRecord, Record, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_log_kafka::{KafkaConfig, KafkaLog};
use ultracore_rng::SplitMix64 as Rng;

type Error = Box<dyn std::error::Error>;

const TOPICS: &[(&str, u32)] = &[("orders", 3), ("trades", 2), ("orders.dlq", 1)];

/// The records of one partition, in offset order.
type Partition = (String, u32, Vec<Record>);

async fn write_original<L: EventLog>(log: &L, per_topic: usize) -> Result<(), Error> {
    for (topic, partitions) in TOPICS {
        log.create_topic(&TopicSpec::new(*topic, *partitions))
            .await?;
        let records = (0..per_topic)
            .map(|i| {
                NewRecord::new(
                    format!("account-{}", i % 11),
                    format!(
                        r#"{{"event_type":"x","n":{i},"topic":"{topic}","principal":"key-{}"}}"#,
                        i % 4
                    ),
                )
                .with_header("event_type", "x")
                .with_header("trace", format!("t{i}"))
                .with_timestamp(1_700_000_000_000 + i as i64 * 1_000)
            })
            .collect();
        log.append(topic, records).await?;
    }
    Ok(())
}

async fn read_back<L: EventLog>(log: &L) -> Result<Vec<Partition>, Error> {
    let mut c = log
        .consumer(ConsumerOptions::new(
            "tamper-reader",
            TOPICS.iter().map(|(t, _)| t.to_string()),
        ))
        .await?;
    let mut all: Vec<Record> = Vec::new();
    let mut idle = 0;
    while idle < 4 {
        let got = c.poll(1000, Duration::from_millis(300)).await?;
        if got.is_empty() {
            if !c.assignment().is_empty() {
                idle += 1;
            }
            continue;
        }
        idle = 0;
        all.extend(got);
    }
    all.sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    let mut out: Vec<Partition> = Vec::new();
    for r in all {
        match out.last_mut() {
            Some((t, p, v)) if *t == r.topic && *p == r.partition => v.push(r),
            _ => out.push((r.topic.clone(), r.partition, vec![r])),
        }
    }
    Ok(out)
}

/// Writes `partitions` into an empty log, record for record (same
/// partitions, timestamps, keys, headers, values; offsets from 0).
async fn write_copy<L: EventLog>(log: &L, partitions: &[Partition]) -> Result<(), Error> {
    for (topic, n) in TOPICS {
        log.create_topic(&TopicSpec::new(*topic, *n)).await?;
    }
    for (topic, partition, records) in partitions {
        if records.is_empty() {
            continue;
        }
        let batch = records
            .iter()
            .map(|r| NewRecord {
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r.headers.clone(),
                timestamp: Some(r.timestamp),
                partition: Some(*partition),
            })
            .collect();
        log.append(topic, batch).await?;
    }
    Ok(())
}

/// What a mutation did, and what verify must say first.
#[derive(Debug)]
struct Expect {
    what: String,
    kind: IssueKind,
    /// (topic, partition, offset) of the first issue; `None` for checkpoint issues.
    at: Option<(String, u32, u64)>,
}

fn flip(bytes: &mut [u8], rng: &mut Rng) {
    let i = rng.below(bytes.len());
    bytes[i] ^= 1 << rng.below(8);
}

/// Applies mutation number `round` to a copy of the records (or of the
/// trail's checkpoints and leaves): the kinds in turn, where and what from
/// `rng`.
fn mutate(
    rng: &mut Rng,
    round: usize,
    partitions: &mut [Partition],
    trail: &mut TrailSnapshot,
) -> Expect {
    let kinds = 11;
    let k = round % kinds;
    // A partition with at least 3 records.
    let candidates: Vec<usize> = (0..partitions.len())
        .filter(|i| partitions[*i].2.len() >= 3)
        .collect();
    let pi = candidates[rng.below(candidates.len())];
    let (topic, partition, records) = &mut partitions[pi];
    let at = |o: usize| Some((topic.clone(), *partition, o as u64));
    let n = records.len();
    match k {
        0..=3 => {
            let i = rng.below(n);
            let r = &mut records[i];
            let what = match k {
                0 => {
                    flip(&mut r.value, rng);
                    "a bit of a value"
                }
                1 => {
                    flip(r.key.as_mut().expect("every record has a key"), rng);
                    "a bit of a key"
                }
                2 => {
                    let h = rng.below(r.headers.len());
                    flip(&mut r.headers[h].value, rng);
                    "a bit of a header"
                }
                _ => {
                    r.timestamp ^= 1 << rng.below(40);
                    "a bit of a timestamp"
                }
            };
            Expect {
                what: format!("{what} at {topic}/{partition}@{i}"),
                kind: IssueKind::Changed,
                at: at(i),
            }
        }
        4 => {
            let i = rng.below(n);
            records.remove(i);
            Expect {
                what: format!("deleted {topic}/{partition}@{i}"),
                kind: if i == n - 1 {
                    IssueKind::Truncated
                } else {
                    IssueKind::Missing
                },
                at: at(i),
            }
        }
        5 => {
            // Not after the last record: a record added at the end is a new
            // record to the auditor, audited when it reads it.
            let i = rng.below(n - 1);
            let copy = records[i].clone();
            records.insert(i + 1, copy);
            Expect {
                what: format!("duplicated {topic}/{partition}@{i}"),
                kind: IssueKind::Duplicated,
                at: at(i + 1),
            }
        }
        6 => {
            let i = rng.below(n - 1);
            records.swap(i, i + 1);
            Expect {
                what: format!("swapped {topic}/{partition}@{i} and @{}", i + 1),
                kind: IssueKind::Reordered,
                at: at(i),
            }
        }
        7 => {
            let i = rng.below(n - 1);
            let mut extra = records[i].clone();
            extra.value = format!(r#"{{"forged":{}}}"#, rng.next_u64()).into_bytes();
            records.insert(i, extra);
            Expect {
                what: format!("inserted a record at {topic}/{partition}@{i}"),
                kind: IssueKind::Inserted,
                at: at(i),
            }
        }
        8 => {
            let i = 1 + rng.below(n - 1);
            records.truncate(i);
            Expect {
                what: format!("truncated {topic}/{partition} at {i}"),
                kind: IssueKind::Truncated,
                at: at(i),
            }
        }
        9 => {
            let c = rng.below(trail.checkpoints.len());
            let cp = &mut trail.checkpoints[c];
            if rng.below(2) == 0 {
                cp.note = cp.note.replacen(
                    &format!("\n{}\n", cp.tree_size),
                    &format!("\n{}\n", cp.tree_size + 1),
                    1,
                );
                cp.tree_size += 1;
            } else {
                edit_root(cp, rng);
            }
            Expect {
                what: format!("edited checkpoint {}", c + 1),
                kind: IssueKind::Checkpoint,
                at: None,
            }
        }
        _ => {
            let i = rng.below(n);
            let leaf = trail
                .index
                .leaf_of(topic, *partition, i as u64)
                .expect("every record is in the trail") as usize;
            let byte = rng.below(32);
            trail.leaves[leaf][byte] ^= 1 << rng.below(8);
            Expect {
                what: format!("a bit of the trail's leaf for {topic}/{partition}@{i}"),
                kind: IssueKind::Changed,
                at: at(i),
            }
        }
    }
}

/// Changes one base64 character of the root line of a checkpoint's note.
fn edit_root(cp: &mut SignedCheckpoint, rng: &mut Rng) {
    let lines: Vec<&str> = cp.note.splitn(4, '\n').collect();
    let mut root: Vec<u8> = lines[2].bytes().collect();
    let i = rng.below(root.len() - 2); // not the padding
    root[i] = if root[i] == b'A' { b'B' } else { b'A' };
    let root = String::from_utf8(root).unwrap_or_default();
    cp.note = format!("{}\n{}\n{}\n{}", lines[0], lines[1], root, lines[3]);
}

/// The suite: audit an original, then `rounds` mutations each written to a
/// fresh log from `fresh`.
async fn suite<L, F, Fut>(fresh: F, rounds: usize, seed: u64) -> Result<(), Error>
where
    L: EventLog,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(L, Option<tempfile::TempDir>), Error>>,
{
    let trail_dir = tempfile::tempdir()?;
    let (original, _keep) = fresh().await?;
    write_original(&original, 40).await?;
    let total = 40 * TOPICS.len() as u64;
    let verifier = audit(&original, trail_dir.path(), total).await?;
    let partitions = read_back(&original).await?;
    let trail = TrailSnapshot::read(trail_dir.path())?;
    assert_eq!(trail.leaves.len() as u64, total);

    // A faithful copy verifies: the mutations below are all that differ.
    let (copy, _keep) = fresh().await?;
    write_copy(&copy, &partitions).await?;
    let report = verify(&copy, &trail, &verifier).await?;
    assert!(report.integrity_valid, "{:#?}", report.issues);
    assert_eq!(report.verified_events, total);

    let mut rng = Rng::new(seed);
    let mut seen_kinds = std::collections::BTreeSet::new();
    for round in 0..rounds {
        let mut p = partitions.clone();
        let mut t = trail.clone();
        let expect = mutate(&mut rng, round, &mut p, &mut t);
        let (log, _keep) = fresh().await?;
        write_copy(&log, &p).await?;
        let report = verify(&log, &t, &verifier).await?;
        let first = report
            .issues
            .first()
            .ok_or_else(|| format!("round {round}: {} went unnoticed", expect.what))?;
        assert!(!report.integrity_valid);
        assert_eq!(
            first.kind, expect.kind,
            "round {round}: {}: first issue {first:?}",
            expect.what
        );
        if let Some((topic, partition, offset)) = &expect.at {
            assert_eq!(
                (&first.topic, first.partition, first.offset),
                (topic, *partition, *offset),
                "round {round}: {}: first issue {first:?}",
                expect.what
            );
        }
        seen_kinds.insert(format!("{:?}", expect.kind));
    }
    assert!(seen_kinds.len() >= 7, "{seen_kinds:?}");
    Ok(())
}

/// Where the suite's logs go: memory when the machine has it (each round
/// fsyncs a fresh log).
fn scratch() -> std::io::Result<tempfile::TempDir> {
    match std::path::Path::new("/dev/shm") {
        p if p.is_dir() => tempfile::tempdir_in(p),
        _ => tempfile::tempdir(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_mutations_of_the_embedded_log_are_each_found() -> Result<(), Error> {
    suite(
        || async {
            let dir = scratch()?;
            let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
            Ok((log, Some(dir)))
        },
        1_000,
        42,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_rewritten_into_kafka_topics_are_each_found() -> Result<(), Error> {
    let broker = std::env::var("ULTRACORE_TEST_KAFKA").map_err(|_| {
        "ULTRACORE_TEST_KAFKA is not set: run scripts/test.sh, which starts a local Kafka-protocol broker and sets it"
    })?;
    let run = format!("a{:08x}", rand_u32());
    let counter = std::sync::atomic::AtomicU32::new(0);
    suite(
        || {
            // Each log is a fresh topic prefix on the same broker.
            let prefix = format!(
                "{run}.{}.",
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            );
            let broker = broker.clone();
            async move {
                let log = KafkaLog::connect(
                    KafkaConfig::new(broker)
                        .with_prefix(prefix)
                        .with_connect_timeout(Duration::from_secs(30)),
                )
                .await?;
                Ok((log, None))
            }
        },
        30,
        7,
    )
    .await
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (t as u32) ^ std::process::id().rotate_left(16)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The segment files (`*.log`) of each partition directory, in order.
fn segments(log_dir: &std::path::Path) -> std::io::Result<Vec<Vec<std::path::PathBuf>>> {
    let mut out = Vec::new();
    for topic in std::fs::read_dir(log_dir.join("topics"))? {
        for partition in std::fs::read_dir(topic?.path())? {
            let partition = partition?.path();
            if !partition.is_dir() {
                continue;
            }
            let mut logs: Vec<_> = std::fs::read_dir(&partition)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect();
            logs.sort();
            out.push(logs);
        }
    }
    Ok(out)
}

/// Segment files cut short or swapped on disk (the log's own checksums
/// still match each record): the log refuses to open naming the file, or
/// `verify` finds the partition's records wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_files_cut_or_swapped_are_found() -> Result<(), Error> {
    let dir = scratch()?;
    let trail_dir = dir.path().join("audit");
    let original = dir.path().join("log");
    let small = EmbeddedOptions {
        segment_bytes: 1_024,
        ..EmbeddedOptions::default()
    };
    let total = 40 * TOPICS.len() as u64;
    let verifier = {
        let log = EmbeddedLog::open(&original, small.clone())?;
        write_original(&log, 40).await?;
        audit(&log, &trail_dir, total).await?
    };
    let trail = TrailSnapshot::read(&trail_dir)?;
    let mut rng = Rng::new(99);
    let mut refused = 0;
    let mut found = 0;
    for round in 0..60 {
        let copy = dir.path().join(format!("copy-{round}"));
        copy_dir(&original, &copy)?;
        let parts: Vec<Vec<std::path::PathBuf>> = segments(&copy)?
            .into_iter()
            .filter(|s| s.len() >= 2)
            .collect();
        let files = &parts[rng.below(parts.len())];
        let what = if round % 2 == 0 {
            let f = &files[rng.below(files.len())];
            let len = std::fs::metadata(f)?.len();
            let cut = rng.below(len as usize) as u64;
            std::fs::OpenOptions::new()
                .write(true)
                .open(f)?
                .set_len(cut)?;
            format!("{} cut to {cut} of {len} bytes", f.display())
        } else {
            let i = rng.below(files.len() - 1);
            let (a, b) = (&files[i], &files[i + 1]);
            let tmp = a.with_extension("swap");
            std::fs::rename(a, &tmp)?;
            std::fs::rename(b, a)?;
            std::fs::rename(&tmp, b)?;
            format!("{} and {} swapped", a.display(), b.display())
        };
        let partition_dir = files[0].parent().map(|p| p.to_owned()).unwrap_or_default();
        match EmbeddedLog::open(&copy, small.clone()) {
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&partition_dir.display().to_string()),
                    "round {round}: {what}: the log refused to open without naming the partition: {msg}"
                );
                refused += 1;
            }
            Ok(log) => {
                let report = match verify(&log, &trail, &verifier).await {
                    Ok(r) => r,
                    // Reading it: the log names the segment and the byte.
                    Err(e) => {
                        let msg = e.to_string();
                        assert!(
                            msg.contains(&partition_dir.display().to_string()),
                            "round {round}: {what}: reading failed without naming the partition: {msg}"
                        );
                        refused += 1;
                        std::fs::remove_dir_all(&copy)?;
                        continue;
                    }
                };
                let first = report
                    .issues
                    .first()
                    .ok_or_else(|| format!("round {round}: {what} went unnoticed"))?;
                let expected = format!("topics/{}/{}", first.topic, first.partition);
                assert!(
                    partition_dir.ends_with(&expected),
                    "round {round}: {what}: the first issue is elsewhere: {first:?}"
                );
                found += 1;
            }
        }
        std::fs::remove_dir_all(&copy)?;
    }
    assert_eq!(refused + found, 60);
    // Both ways of finding it happen.
    assert!(refused > 0 && found > 0, "refused {refused}, found {found}");
    Ok(())
}
