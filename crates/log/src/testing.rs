//! The conformance suite every [`EventLog`] backend runs.
//!
//! A backend's `tests/conformance.rs` implements [`Harness`] and invokes
//! [`conformance_tests!`](crate::conformance_tests), which expands to one
//! `#[tokio::test]` per scenario. Scenarios use unique topic and group
//! names, so they can share one broker or data directory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

use crate::{
    decode_or_dead_letter, dlq_topic, payload_as, Consumer, ConsumerOptions, DecodeError,
    EnvelopeBuilder, Error, EventFamily, EventLog, EventLogExt, NewRecord, Record, Retention, Seek,
    TopicPartition, TopicSpec,
};

/// What a backend provides to the suite.
pub trait Harness: Send + Sync {
    type Log: EventLog;

    /// A handle on the backend's store.
    fn open(&self) -> impl Future<Output = Self::Log> + Send;

    /// Simulates a process restart: everything `log` held is released and a
    /// new handle on the same store is returned.
    fn restart(&self, log: Self::Log) -> impl Future<Output = Self::Log> + Send;

    /// Writes a record with a client that is not UltraCore's (raw bytes for
    /// the embedded backend, a plain Kafka client for Kafka).
    fn write_foreign(
        &self,
        topic: &str,
        key: &[u8],
        value: &[u8],
    ) -> impl Future<Output = ()> + Send;
}

/// A name no other scenario (or earlier run against the same broker) uses.
pub fn unique(base: &str) -> String {
    format!("{base}-{:08x}", rand::random::<u32>())
}

const DEADLINE: Duration = Duration::from_secs(60);

/// Polls until `n` records arrived (or fails after a generous deadline).
pub async fn drain<C: Consumer>(consumer: &mut C, n: usize) -> Vec<Record> {
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            start.elapsed() < DEADLINE,
            "expected {n} records, got {} after {DEADLINE:?}",
            out.len()
        );
        out.extend(
            consumer
                .poll(n - out.len(), Duration::from_millis(500))
                .await
                .expect("poll"),
        );
    }
    out
}

/// Every record stored in `topic` now (none when it does not exist), read
/// by a consumer group of its own.
pub async fn all_records<L: EventLog>(log: &L, topic: &str) -> Vec<Record> {
    let Ok(info) = log.describe_topic(topic).await else {
        return Vec::new();
    };
    let mut c = log
        .consumer(ConsumerOptions::new(unique("check"), [topic]))
        .await
        .expect("a consumer");
    drain(&mut c, info.records() as usize).await
}

/// Polls for a while and asserts nothing more arrives.
pub async fn assert_quiet<C: Consumer>(consumer: &mut C, wait: Duration) {
    let start = Instant::now();
    while start.elapsed() < wait {
        let got = consumer
            .poll(100, Duration::from_millis(200))
            .await
            .expect("poll");
        assert!(
            got.is_empty(),
            "expected no records, got offsets {:?}",
            got.iter().map(|r| r.offset).collect::<Vec<_>>()
        );
    }
}

fn value(i: usize) -> Vec<u8> {
    format!("value-{i}").into_bytes()
}

fn index(r: &Record) -> usize {
    std::str::from_utf8(&r.value)
        .unwrap()
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap()
}

async fn topic<L: EventLog>(log: &L, base: &str, partitions: u32) -> String {
    let name = unique(base);
    log.create_topic(&TopicSpec::new(name.clone(), partitions))
        .await
        .expect("create topic");
    name
}

/// Topics can be created, listed and described; duplicates and unknown names are errors.
pub async fn topic_admin<H: Harness>(h: &H) {
    let log = h.open().await;
    let name = unique("conf-admin");
    let spec = TopicSpec::new(name.clone(), 3).with_retention(Retention::days(7));
    log.create_topic(&spec).await.unwrap();
    assert!(matches!(
        log.create_topic(&spec).await,
        Err(Error::TopicExists(_))
    ));
    assert!(!log.ensure_topic(&spec).await.unwrap());
    let info = log.describe_topic(&name).await.unwrap();
    assert_eq!(info.partitions.len(), 3);
    assert!(info.partitions.iter().all(|p| p.high_watermark == 0));
    assert_eq!(info.retention, Some(Retention::days(7)));
    log.append(
        &name,
        (0..5).map(|i| NewRecord::new("k", value(i))).collect(),
    )
    .await
    .unwrap();
    let info = log.describe_topic(&name).await.unwrap();
    assert_eq!(info.records(), 5);
    assert!(log
        .list_topics()
        .await
        .unwrap()
        .iter()
        .any(|t| t.name == name && t.partitions.len() == 3));
    assert!(matches!(
        log.describe_topic(&unique("conf-missing")).await,
        Err(Error::UnknownTopic(_))
    ));
    assert!(matches!(
        log.append(&unique("conf-missing"), vec![NewRecord::unkeyed("x")])
            .await,
        Err(Error::UnknownTopic(_))
    ));
}

/// A topic's retention reads back as it was created, in a description, in
/// the list of topics and after a restart; keeping everything reads back as
/// [`Retention::Forever`], not as some very large limit.
pub async fn retention_round_trip<H: Harness>(h: &H) {
    let log = h.open().await;
    let cases = [
        ("conf-ret-forever", Retention::Forever),
        ("conf-ret-age", Retention::days(30)),
        ("conf-ret-size", Retention::limited(None, Some(10_000_000))),
        (
            "conf-ret-both",
            Retention::limited(Some(Duration::from_secs(3_600)), Some(20_000_000)),
        ),
    ];
    let mut created = Vec::new();
    for (base, retention) in cases {
        let name = unique(base);
        log.create_topic(&TopicSpec::new(name.clone(), 1).with_retention(retention))
            .await
            .unwrap();
        created.push((name, retention));
    }
    let log = h.restart(log).await;
    let listed = log.list_topics().await.unwrap();
    for (name, retention) in &created {
        let info = log.describe_topic(name).await.unwrap();
        assert_eq!(info.retention, Some(*retention), "describe {name}");
        let listed = listed.iter().find(|t| &t.name == name).expect("listed");
        assert_eq!(listed.retention, Some(*retention), "list {name}");
    }
    assert!(created[0].1.is_forever());
}

/// Keys map to one partition each and keep their append order; keys,
/// headers, timestamps, empty and unkeyed values round-trip.
pub async fn per_key_order<H: Harness>(h: &H) {
    let log = h.open().await;
    let topic = topic(&log, "conf-order", 3).await;
    let keys = 10;
    let mut expected: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut acks = Vec::new();
    for batch in 0..6 {
        let recs: Vec<NewRecord> = (0..50)
            .map(|j| {
                let i = batch * 50 + j;
                let key = format!("key-{}", i % keys);
                expected.entry(key.clone()).or_default().push(i);
                NewRecord::new(key, value(i)).with_header("seq", i.to_string())
            })
            .collect();
        acks.extend(log.append(&topic, recs).await.unwrap());
    }
    assert_eq!(acks.len(), 300);
    let mut consumer = log
        .consumer(ConsumerOptions::new(
            unique("conf-order-g"),
            [topic.clone()],
        ))
        .await
        .unwrap();
    let records = drain(&mut consumer, 300).await;
    let mut seen: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut partition_of: HashMap<String, u32> = HashMap::new();
    for r in &records {
        let key = String::from_utf8(r.key.clone().unwrap()).unwrap();
        assert_eq!(
            *partition_of.entry(key.clone()).or_insert(r.partition),
            r.partition,
            "key {key} in two partitions"
        );
        assert_eq!(
            r.header("seq").map(|v| v.to_vec()),
            Some(index(r).to_string().into_bytes())
        );
        assert_eq!(r.topic, topic);
        seen.entry(key).or_default().push(index(r));
    }
    assert_eq!(seen, expected, "per-key order differs");
    assert_eq!(
        partition_of["key-3"],
        crate::partition_for_key(b"key-3", 3),
        "partition is not Kafka's murmur2 partition"
    );

    // Edge cases: empty value, no key, explicit timestamp, a 256 KiB value.
    let big = vec![0xabu8; 256 * 1024];
    let ts = 1_700_000_000_123;
    let edge = vec![
        NewRecord {
            key: Some(b"e".to_vec()),
            value: Vec::new(),
            ..Default::default()
        },
        NewRecord::unkeyed("no-key").with_partition(1),
        NewRecord::new("e", "stamped").with_timestamp(ts),
        NewRecord::new("e", big.clone()),
    ];
    log.append(&topic, edge).await.unwrap();
    let got = drain(&mut consumer, 4).await;
    let by_value = |v: &[u8]| {
        got.iter()
            .find(|r| r.value == v)
            .cloned()
            .expect("record missing")
    };
    assert!(got
        .iter()
        .any(|r| r.value.is_empty() && r.key.as_deref() == Some(&b"e"[..])));
    let unkeyed = by_value(b"no-key");
    assert_eq!((unkeyed.key, unkeyed.partition), (None, 1));
    assert_eq!(by_value(b"stamped").timestamp, ts);
    assert_eq!(by_value(&big).value.len(), big.len());
}

/// A consumer that dies before committing leaves its records to the next member.
pub async fn redelivery_without_commit<H: Harness>(h: &H) {
    let log = h.open().await;
    let topic = topic(&log, "conf-redeliver", 1).await;
    log.append(
        &topic,
        (0..5).map(|i| NewRecord::new("k", value(i))).collect(),
    )
    .await
    .unwrap();
    let group = unique("conf-redeliver-g");
    let mut first = log
        .consumer(ConsumerOptions::new(group.clone(), [topic.clone()]))
        .await
        .unwrap();
    let got = drain(&mut first, 5).await;
    first.commit(&[got[1].next_position()]).await.unwrap();
    drop(first); // killed: records 2..5 were handled but never committed
    let mut second = log
        .consumer(ConsumerOptions::new(group, [topic.clone()]))
        .await
        .unwrap();
    let again = drain(&mut second, 3).await;
    assert_eq!(again.iter().map(index).collect::<Vec<_>>(), vec![2, 3, 4]);
}

/// `poll` is cancel-safe: polls dropped at random moments (as a
/// `select!` on shutdown drops them) while records arrive lose none; every
/// record is still delivered exactly once, in order.
pub async fn poll_is_cancel_safe<H: Harness>(h: &H) {
    let log = h.open().await;
    let topic = topic(&log, "conf-cancel", 1).await;
    let group = unique("conf-cancel-g");
    let mut consumer = log
        .consumer(ConsumerOptions::new(group, [topic.clone()]))
        .await
        .unwrap();
    const N: usize = 400;
    let writer = {
        let (log, topic) = (log.clone(), topic.clone());
        tokio::spawn(async move {
            for chunk in (0..N).collect::<Vec<_>>().chunks(20) {
                let batch = chunk
                    .iter()
                    .map(|i| NewRecord::new("k", value(*i)))
                    .collect();
                log.append(&topic, batch).await.expect("append");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let start = Instant::now();
    let mut got = Vec::new();
    let mut cancelled = 0u32;
    let mut round = 0u64;
    while got.len() < N {
        assert!(
            start.elapsed() < DEADLINE,
            "expected {N} records, got {} after {DEADLINE:?}",
            got.len()
        );
        round += 1;
        // A deadline shorter than the poll's own timeout, varied so the
        // drop lands at different points of the poll.
        let cut = Duration::from_micros(200 + (round * 7919) % 3000);
        match tokio::time::timeout(cut, consumer.poll(37, Duration::from_millis(50))).await {
            Ok(batch) => got.extend(batch.expect("poll")),
            Err(_) => cancelled += 1,
        }
    }
    writer.await.unwrap();
    assert!(
        cancelled > 0,
        "no poll was cancelled: the test proved nothing"
    );
    assert_eq!(
        got.iter().map(index).collect::<Vec<_>>(),
        (0..N).collect::<Vec<_>>(),
        "records lost or repeated across {cancelled} cancelled polls"
    );
    assert_quiet(&mut consumer, Duration::from_millis(500)).await;
}

/// Committed offsets survive a restart of the log, and lag reports them.
pub async fn commits_survive_restart<H: Harness>(h: &H) {
    let log = h.open().await;
    let topic = topic(&log, "conf-restart", 2).await;
    log.append(
        &topic,
        (0..10).map(|i| NewRecord::new("k", value(i))).collect(),
    )
    .await
    .unwrap();
    let group = unique("conf-restart-g");
    let mut c = log
        .consumer(ConsumerOptions::new(group.clone(), [topic.clone()]))
        .await
        .unwrap();
    let got = drain(&mut c, 10).await;
    c.commit(&[got[5].next_position()]).await.unwrap();
    let partition = got[5].partition;
    drop(c);
    let log = h.restart(log).await;
    let lag = log.group_lag(&group).await.unwrap();
    let mine = lag
        .iter()
        .find(|l| l.topic == topic && l.partition == partition)
        .expect("lag row");
    assert_eq!(
        (mine.committed, mine.high_watermark, mine.lag()),
        (Some(6), 10, 4)
    );
    assert!(log.list_groups().await.unwrap().contains(&group));
    let mut c = log
        .consumer(ConsumerOptions::new(group, [topic.clone()]))
        .await
        .unwrap();
    let rest = drain(&mut c, 4).await;
    assert_eq!(rest.iter().map(index).collect::<Vec<_>>(), vec![6, 7, 8, 9]);
    let info = log.describe_topic(&topic).await.unwrap();
    assert_eq!(info.records(), 10, "records lost across restart");
}

/// Two groups each see every record; one's commits do not move the other.
pub async fn independent_groups<H: Harness>(h: &H) {
    let log = h.open().await;
    let topic = topic(&log, "conf-groups", 2).await;
    log.append(
        &topic,
        (0..20)
            .map(|i| NewRecord::new(format!("k{i}"), value(i)))
            .collect(),
    )
    .await
    .unwrap();
    let mut a = log
        .consumer(ConsumerOptions::new(unique("conf-ga"), [topic.clone()]))
        .await
        .unwrap();
    let got_a = drain(&mut a, 20).await;
    let positions: Vec<_> = got_a.iter().map(Record::next_position).collect();
    a.commit(&positions).await.unwrap();
    let mut b = log
        .consumer(ConsumerOptions::new(unique("conf-gb"), [topic.clone()]))
        .await
        .unwrap();
    let got_b = drain(&mut b, 20).await;
    let set = |v: &[Record]| v.iter().map(index).collect::<BTreeSet<_>>();
    assert_eq!(set(&got_a), (0..20).collect());
    assert_eq!(set(&got_b), (0..20).collect());
}

/// Members of one group split the partitions between them.
pub async fn group_members_share_partitions<H: Harness>(h: &H) {
    let log = h.open().await;
    let topic = topic(&log, "conf-share", 4).await;
    let group = unique("conf-share-g");
    let mut a = log
        .consumer(ConsumerOptions::new(group.clone(), [topic.clone()]))
        .await
        .unwrap();
    let mut b = log
        .consumer(ConsumerOptions::new(group, [topic.clone()]))
        .await
        .unwrap();
    let all: BTreeSet<TopicPartition> = (0..4)
        .map(|p| TopicPartition {
            topic: topic.clone(),
            partition: p,
        })
        .collect();
    let start = Instant::now();
    loop {
        // Polling drives group membership (joins, heartbeats, rebalances).
        let _ = a.poll(10, Duration::from_millis(100)).await.unwrap();
        let _ = b.poll(10, Duration::from_millis(100)).await.unwrap();
        let (sa, sb): (BTreeSet<_>, BTreeSet<_>) = (
            a.assignment().into_iter().collect(),
            b.assignment().into_iter().collect(),
        );
        if !sa.is_empty()
            && !sb.is_empty()
            && sa.is_disjoint(&sb)
            && sa.union(&sb).cloned().collect::<BTreeSet<_>>() == all
        {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "partitions never split: a={sa:?} b={sb:?}"
        );
    }
    log.append(
        &topic,
        (0..40)
            .map(|i| NewRecord::new(format!("k{i}"), value(i)))
            .collect(),
    )
    .await
    .unwrap();
    let mut seen = BTreeSet::new();
    let start = Instant::now();
    while seen.len() < 40 {
        assert!(start.elapsed() < DEADLINE, "got {} of 40", seen.len());
        for r in a.poll(40, Duration::from_millis(100)).await.unwrap() {
            assert!(a.assignment().contains(&TopicPartition {
                topic: r.topic.clone(),
                partition: r.partition
            }));
            assert!(
                seen.insert(index(&r)),
                "record {} delivered twice",
                index(&r)
            );
        }
        for r in b.poll(40, Duration::from_millis(100)).await.unwrap() {
            assert!(
                seen.insert(index(&r)),
                "record {} delivered twice",
                index(&r)
            );
        }
    }
}

/// Seeking by timestamp lands on the first record at or after it; seeking by
/// offset and to the beginning and end work too.
pub async fn seek<H: Harness>(h: &H) {
    let log = h.open().await;
    let topic = topic(&log, "conf-seek", 1).await;
    let t0 = crate::now_millis() - 3_600_000;
    let recs = (0..10)
        .map(|i| NewRecord::new("k", value(i)).with_timestamp(t0 + i as i64 * 1000))
        .collect();
    log.append(&topic, recs).await.unwrap();
    let mut c = log
        .consumer(ConsumerOptions::new(unique("conf-seek-g"), [topic.clone()]))
        .await
        .unwrap();
    drain(&mut c, 10).await;

    c.seek(Seek::Timestamp(t0 + 5_500)).await.unwrap();
    assert_eq!(index(&drain(&mut c, 1).await[0]), 6);
    c.seek(Seek::Timestamp(t0 + 3_000)).await.unwrap();
    let got = drain(&mut c, 7).await;
    assert_eq!(
        got.iter().map(index).collect::<Vec<_>>(),
        (3..10).collect::<Vec<_>>()
    );
    c.seek(Seek::Offset(8)).await.unwrap();
    assert_eq!(
        drain(&mut c, 2).await.iter().map(index).collect::<Vec<_>>(),
        vec![8, 9]
    );
    c.seek(Seek::Beginning).await.unwrap();
    assert_eq!(index(&drain(&mut c, 1).await[0]), 0);
    c.seek(Seek::Timestamp(t0 + 60_000)).await.unwrap();
    assert_quiet(&mut c, Duration::from_millis(600)).await;
    log.append(&topic, vec![NewRecord::new("k", value(10))])
        .await
        .unwrap();
    assert_eq!(
        index(&drain(&mut c, 1).await[0]),
        10,
        "seek past the last timestamp should wait at the end"
    );
    c.seek(Seek::End).await.unwrap();
    assert_quiet(&mut c, Duration::from_millis(600)).await;
}

/// `timestamp_at` gives the timestamp each record was appended with, on
/// every partition and past the first few kilobytes (beyond a sparse
/// index entry), and `None` at and past the high watermark.
pub async fn timestamp_at<H: Harness>(h: &H) {
    let log = h.open().await;
    let topic = topic(&log, "conf-ts", 2).await;
    let t0 = crate::now_millis() - 7_200_000;
    // 300 records of ~100 bytes on partition 0: several index intervals.
    let recs = (0..300)
        .map(|i| {
            let mut r = NewRecord::new("k", format!("{:0>100}", i).into_bytes())
                .with_timestamp(t0 + i as i64 * 1000);
            r.partition = Some(0);
            r
        })
        .collect();
    log.append(&topic, recs).await.unwrap();
    let mut one = NewRecord::new("j", value(1)).with_timestamp(t0 - 5);
    one.partition = Some(1);
    log.append(&topic, vec![one]).await.unwrap();

    for offset in [0u64, 1, 57, 150, 298, 299] {
        assert_eq!(
            log.timestamp_at(&topic, 0, offset).await.unwrap(),
            Some(t0 + offset as i64 * 1000),
            "timestamp of offset {offset}"
        );
    }
    assert_eq!(log.timestamp_at(&topic, 1, 0).await.unwrap(), Some(t0 - 5));
    assert_eq!(
        log.timestamp_at(&topic, 0, 300).await.unwrap(),
        None,
        "at the high watermark"
    );
    assert_eq!(
        log.timestamp_at(&topic, 0, 10_000).await.unwrap(),
        None,
        "past it"
    );
    assert_eq!(log.timestamp_at(&topic, 1, 1).await.unwrap(), None);
    assert_eq!(
        log.timestamp_at(&topic, 0, 1 << 40).await.unwrap(),
        None,
        "an offset past 2^31"
    );
    // Asked again, after another partition: the same answer.
    assert_eq!(
        log.timestamp_at(&topic, 0, 42).await.unwrap(),
        Some(t0 + 42_000)
    );
}

/// Many producers at once: every acknowledged record is stored once, with a
/// distinct offset, and each producer's order holds.
pub async fn concurrent_producers<H: Harness>(h: &H) {
    let log = h.open().await;
    let topic = topic(&log, "conf-concurrent", 3).await;
    let producers = 8;
    let per = 250;
    let mut tasks = Vec::new();
    for p in 0..producers {
        let log = log.clone();
        let topic = topic.clone();
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for i in 0..per {
                let rec = NewRecord::new(format!("producer-{p}"), value(p * 1000 + i));
                acks.push(log.append(&topic, vec![rec]).await.unwrap()[0]);
            }
            acks
        }));
    }
    let mut offsets = BTreeSet::new();
    for t in tasks {
        for a in t.await.unwrap() {
            assert!(
                offsets.insert((a.partition, a.offset)),
                "offset {a:?} acknowledged twice"
            );
        }
    }
    let mut c = log
        .consumer(ConsumerOptions::new(
            unique("conf-concurrent-g"),
            [topic.clone()],
        ))
        .await
        .unwrap();
    let got = drain(&mut c, producers * per).await;
    let mut by_producer: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for r in &got {
        let i = index(r);
        by_producer.entry(i / 1000).or_default().push(i % 1000);
    }
    for (p, seq) in by_producer {
        assert_eq!(
            seq,
            (0..per).collect::<Vec<_>>(),
            "producer {p} lost or reordered records"
        );
    }
    assert_quiet(&mut c, Duration::from_millis(500)).await;
}

/// A tiny event family for the dead-letter scenario.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pinged {
    pub seq: u64,
}

impl EventFamily for Pinged {
    fn event_type(&self) -> &'static str {
        "pinged"
    }
    fn schema_version(&self) -> u32 {
        1
    }
    fn to_payload(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap()
    }
    fn decode(
        event_type: &str,
        _version: u32,
        payload: serde_json::Value,
    ) -> Result<Self, DecodeError> {
        match event_type {
            "pinged" => payload_as(event_type, payload),
            other => Err(DecodeError::UnknownEventType(other.to_owned())),
        }
    }
}

/// Records written by a foreign client that are not valid envelopes go to
/// `<topic>.dlq` with the reason and origin; valid ones are handled.
pub async fn dead_letters_from_foreign_writer<H: Harness>(h: &H) {
    let log = h.open().await;
    let topic = topic(&log, "conf-dlq", 1).await;
    let good = EnvelopeBuilder::new("Ping", "p-1").build(Pinged { seq: 7 });
    let good_json = serde_json::to_vec(&good.to_raw()).unwrap();
    let wrong_payload = EnvelopeBuilder::new("Ping", "p-2").build_raw(
        "pinged",
        1,
        serde_json::json!({"seq": "seven"}),
    );
    h.write_foreign(&topic, b"p-0", b"\x00\x01 definitely not json")
        .await;
    h.write_foreign(&topic, b"p-1", &good_json).await;
    h.write_foreign(&topic, b"p-2", &serde_json::to_vec(&wrong_payload).unwrap())
        .await;
    h.write_foreign(&topic, b"p-3", br#"{"event_type":"pinged"}"#)
        .await;

    let mut c = log
        .consumer(ConsumerOptions::new(unique("conf-dlq-g"), [topic.clone()]))
        .await
        .unwrap();
    let got = drain(&mut c, 4).await;
    let mut decoded = Vec::new();
    for r in &got {
        if let Some(env) = decode_or_dead_letter::<_, Pinged>(&log, r).await.unwrap() {
            decoded.push(env);
        }
        c.commit(&[r.next_position()]).await.unwrap();
    }
    assert_eq!(decoded.len(), 1);
    assert_eq!(decoded[0].payload, Pinged { seq: 7 });
    assert_eq!(decoded[0].event_id, good.event_id);

    let mut d = log
        .consumer(ConsumerOptions::new(
            unique("conf-dlq-d"),
            [dlq_topic(&topic)],
        ))
        .await
        .unwrap();
    let dead = drain(&mut d, 3).await;
    let reasons: Vec<String> = dead
        .iter()
        .map(|r| String::from_utf8_lossy(r.header("dlq.reason").unwrap()).into_owned())
        .collect();
    assert!(reasons[0].contains("not valid JSON"), "{reasons:?}");
    assert!(reasons[1].contains("payload does not match"), "{reasons:?}");
    assert!(reasons[2].contains("not an event envelope"), "{reasons:?}");
    let origins: Vec<&[u8]> = dead
        .iter()
        .map(|r| r.header("dlq.origin.offset").unwrap())
        .collect();
    assert_eq!(origins, vec![&b"0"[..], b"2", b"3"]);
    assert_eq!(dead[0].value, b"\x00\x01 definitely not json");
    // The origin as the backend stores it (a Kafka prefix included), and
    // as UltraCore names it.
    assert_eq!(
        dead[0].header("dlq.origin.topic"),
        Some(log.physical_topic(&topic).as_bytes())
    );
    assert_eq!(
        dead[0].header("dlq.origin.logical_topic"),
        Some(topic.as_bytes())
    );
}

/// Expands to one `#[tokio::test]` per conformance scenario, given an
/// expression that builds the backend's [`Harness`].
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::conformance_tests!(@each $harness;
            topic_admin, retention_round_trip, per_key_order, redelivery_without_commit, commits_survive_restart,
            independent_groups, group_members_share_partitions, seek, concurrent_producers,
            dead_letters_from_foreign_writer, poll_is_cancel_safe, timestamp_at);
    };
    (@each $harness:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $harness;
                $crate::testing::$name(&harness).await;
            }
        )*
    };
}
