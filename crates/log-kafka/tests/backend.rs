//! Behaviour specific to the Kafka backend: connection errors, the topic
//! prefix, group listing, argument errors.

mod common;

use std::time::{Duration, Instant};

use ultracore_log::testing::{drain, unique};
use ultracore_log::{
    Consumer, ConsumerOptions, Error, EventLog, NewRecord, Record, Retention, TopicSpec,
};
use ultracore_log_kafka::{bare_producer_rate, KafkaConfig, KafkaLog};

#[tokio::test]
async fn unreachable_broker_is_a_clear_error() {
    // Bind and drop a listener: a port on which nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let config = KafkaConfig::new(address.clone()).with_connect_timeout(Duration::from_secs(2));
    let started = Instant::now();
    match KafkaLog::connect(config).await {
        Err(e @ Error::Unreachable { .. }) => {
            assert!(e.to_string().contains(&address), "{e}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn bad_property_is_an_invalid_argument() {
    let config = KafkaConfig::new(common::broker()).with_property("no.such.property", "1");
    match KafkaLog::connect(config).await {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("no.such.property"), "{m}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_hides_other_deployments() -> ultracore_log::Result<()> {
    let (pa, pb) = (common::prefix(), common::prefix());
    let (a, b) = (common::connect(&pa).await, common::connect(&pb).await);
    a.create_topic(&TopicSpec::new("orders", 2)).await?;
    // The same unprefixed name is a different topic in another deployment.
    b.create_topic(&TopicSpec::new("orders", 1)).await?;
    let topics = a.list_topics().await?;
    let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["orders"],
        "only this deployment's topics, unprefixed"
    );
    assert_eq!(topics[0].partitions.len(), 2);
    assert_eq!(b.describe_topic("orders").await?.partitions.len(), 1);
    a.append("orders", vec![NewRecord::new("k", "v")]).await?;
    assert_eq!(a.describe_topic("orders").await?.records(), 1);
    assert_eq!(b.describe_topic("orders").await?.records(), 0);
    // Group ids take the prefix too: the same group name in two deployments
    // is two groups, listed and measured unprefixed by their own deployment.
    let group = unique("orders-g");
    let mut c = a
        .consumer(ConsumerOptions::new(group.clone(), ["orders".to_owned()]))
        .await?;
    let got = drain(&mut c, 1).await;
    c.commit(&[got[0].next_position()]).await?;
    drop(c);
    assert!(a.list_groups().await?.contains(&group));
    assert!(!b.list_groups().await?.contains(&group));
    let lag = a.group_lag(&group).await?;
    assert_eq!(
        lag.iter()
            .filter(|l| l.committed.is_some())
            .map(|l| (l.group.as_str(), l.topic.as_str(), l.committed))
            .collect::<Vec<_>>(),
        vec![(group.as_str(), "orders", Some(1))]
    );
    assert!(b.group_lag(&group).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argument_errors() -> ultracore_log::Result<()> {
    let log = common::connect(&common::prefix()).await;
    log.create_topic(
        &TopicSpec::new("t", 2).with_retention(Retention::limited(None, Some(10_000_000))),
    )
    .await?;
    assert!(matches!(
        log.append("t", vec![NewRecord::new("k", "v").with_partition(5)])
            .await,
        Err(Error::UnknownPartition {
            partition: 5,
            partitions: 2,
            ..
        })
    ));
    assert!(matches!(
        log.append("t", vec![NewRecord::new("k", vec![0u8; 2_000_000])])
            .await,
        Err(Error::RecordTooLarge { max: 1_000_000, .. })
    ));
    assert!(matches!(
        log.create_topic(&TopicSpec::new("bad name", 1)).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        log.create_topic(&TopicSpec::new("zero", 0)).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        log.consumer(ConsumerOptions::new("g", ["missing"])).await,
        Err(Error::UnknownTopic(t)) if t == "missing"
    ));
    assert_eq!(
        log.describe_topic("t").await?.retention,
        Some(Retention::limited(None, Some(10_000_000)))
    );
    assert!(log.append("t", Vec::new()).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_listed_and_seek_works_before_assignment() -> ultracore_log::Result<()> {
    let log = common::connect(&common::prefix()).await;
    log.create_topic(&TopicSpec::new("g", 2)).await?;
    let recs = (0..6)
        .map(|i| NewRecord::new(format!("k{i}"), format!("v{i}")))
        .collect();
    let acks = log.append("g", recs).await?;
    let group = unique("listed");
    let mut c = log
        .consumer(ConsumerOptions::new(group.clone(), ["g"]))
        .await?;
    // Seek before the group assigned anything: applied once partitions arrive.
    c.seek(ultracore_log::Seek::End).await?;
    let got = c.poll(10, Duration::from_secs(8)).await?;
    assert!(
        got.is_empty(),
        "seek to end before assignment returned {got:?}"
    );
    assert_eq!(c.assignment().len(), 2);
    c.seek(ultracore_log::Seek::Beginning).await?;
    let all: Vec<Record> = drain(&mut c, 6).await;
    assert_eq!(all.len(), 6);
    c.commit(&[all[0].next_position()]).await?;
    assert!(log.list_groups().await?.contains(&group));
    let lag = log.group_lag(&group).await?;
    assert_eq!(lag.len(), 2, "{lag:?}");
    assert_eq!(lag.iter().map(|l| l.high_watermark).sum::<u64>(), 6);
    assert_eq!(lag.iter().map(|l| l.lag()).sum::<u64>(), 5);
    assert!(acks.iter().all(|a| a.timestamp > 0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_producer_baseline_runs() -> ultracore_log::Result<()> {
    let prefix = common::prefix();
    let log = common::connect(&prefix).await;
    log.create_topic(&TopicSpec::new("bench", 1)).await?;
    let rate = bare_producer_rate(log.config(), "bench", 2_000, 100, 500, 2).await?;
    assert!(rate > 0.0);
    // The warm-up record plus the measured ones.
    assert_eq!(log.describe_topic("bench").await?.records(), 2_001);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_name_their_origin_as_the_broker_does() -> ultracore_log::Result<()> {
    use ultracore_log::{dlq_topic, Consumer, ConsumerOptions, DeadLetter, EventLogExt, NewRecord};
    let prefix = common::prefix();
    let log = common::connect(&prefix).await;
    log.create_topic(&TopicSpec::new("esg-portfolio-events", 1))
        .await?;
    log.append_one(
        "esg-portfolio-events",
        NewRecord::new("pf-1", &b"not an envelope"[..]),
    )
    .await?;
    let mut c = log
        .consumer(ConsumerOptions::new("dlq-origin", ["esg-portfolio-events"]))
        .await?;
    let mut got = Vec::new();
    while got.is_empty() {
        got = c.poll(10, std::time::Duration::from_secs(5)).await?;
    }
    DeadLetter::new(&got[0], "not an envelope")
        .send(&log)
        .await?;
    let mut d = log
        .consumer(ConsumerOptions::new(
            "dlq-origin-reader",
            [dlq_topic("esg-portfolio-events")],
        ))
        .await?;
    let mut dead = Vec::new();
    while dead.is_empty() {
        dead = d.poll(10, std::time::Duration::from_secs(5)).await?;
    }
    // The name an operator's Kafka tools know the original by.
    let physical = format!("{prefix}esg-portfolio-events");
    assert_eq!(
        dead[0].header("dlq.origin.topic"),
        Some(physical.as_bytes())
    );
    assert_eq!(
        dead[0].header("dlq.origin.logical_topic"),
        Some(&b"esg-portfolio-events"[..])
    );
    Ok(())
}
