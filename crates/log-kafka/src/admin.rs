//! Topic administration and consumer lag, through librdkafka's AdminClient,
//! cluster metadata, watermarks and committed offsets.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{
    AdminOptions, NewTopic, OwnedResourceSpecifier, ResourceSpecifier, TopicReplication,
};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::Producer as _;
use rdkafka::{Offset, TopicPartitionList};
use ultracore_log::{Error, GroupLag, PartitionInfo, Result, Retention, TopicInfo, TopicSpec};

use crate::error::{map_err, map_topic_err};
use crate::log::{blocking, KafkaLog};
use crate::producer::partition_ids;

/// How long `create_topic` waits for the new topic to show in the metadata.
const CREATE_VISIBLE_WITHIN: Duration = Duration::from_secs(5);

pub(crate) async fn create_topic(log: &KafkaLog, spec: &TopicSpec) -> Result<()> {
    TopicSpec::validate_name(&spec.name)?;
    let full = log.inner.config.full(&spec.name);
    TopicSpec::validate_name(&full)?;
    if spec.partitions == 0 || spec.partitions > i32::MAX as u32 {
        return Err(Error::InvalidArgument(format!(
            "topic '{}' needs at least one partition",
            spec.name
        )));
    }
    let retention = spec.retention.map(retention_configs);
    // Replication -1: the broker's default.replication.factor.
    let mut topic = NewTopic::new(&full, spec.partitions as i32, TopicReplication::Fixed(-1));
    if let Some((ms, bytes)) = &retention {
        topic = topic.set("retention.ms", ms).set("retention.bytes", bytes);
    }
    let timeout = log.inner.config.request_timeout;
    let opts = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    let results = log
        .inner
        .admin
        .create_topics([&topic], &opts)
        .await
        .map_err(map_err)?;
    for r in results {
        match r {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                return Err(Error::TopicExists(spec.name.clone()))
            }
            Err((
                _,
                code @ (RDKafkaErrorCode::InvalidPartitions
                | RDKafkaErrorCode::InvalidReplicationFactor
                | RDKafkaErrorCode::InvalidConfig
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::PolicyViolation),
            )) => {
                return Err(Error::InvalidArgument(format!(
                    "the broker refused topic '{}': {code}",
                    spec.name
                )))
            }
            Err((name, code)) => {
                return Err(Error::Kafka(format!("creating topic {name}: {code}")))
            }
        }
    }
    // Metadata propagates to the brokers asynchronously; wait until it shows
    // the topic, so an append right after creation works.
    let start = tokio::time::Instant::now();
    loop {
        match partition_ids(log, &spec.name).await {
            Ok(p) if p.len() == spec.partitions as usize => break,
            _ if start.elapsed() >= CREATE_VISIBLE_WITHIN => {
                tracing::warn!(topic = %spec.name, "created topic not yet visible in the metadata");
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    log.inner
        .partitions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(spec.name.clone(), spec.partitions);
    tracing::debug!(topic = %spec.name, partitions = spec.partitions, "topic created");
    Ok(())
}

pub(crate) async fn describe_topic(log: &KafkaLog, topic: &str) -> Result<TopicInfo> {
    let ids = partition_ids(log, topic).await?;
    let mut partitions = watermarks(log, vec![(topic.to_owned(), ids)]).await?;
    let retention = retentions(log, &[topic.to_owned()]).await.remove(topic);
    Ok(TopicInfo {
        name: topic.to_owned(),
        partitions: partitions.pop().unwrap_or_default(),
        retention,
    })
}

pub(crate) async fn list_topics(log: &KafkaLog) -> Result<Vec<TopicInfo>> {
    let topics = topics_with_partitions(log).await?;
    let names: Vec<String> = topics.iter().map(|(n, _)| n.clone()).collect();
    let marks = watermarks(log, topics).await?;
    let mut retention = retentions(log, &names).await;
    let mut out: Vec<TopicInfo> = names
        .into_iter()
        .zip(marks)
        .map(|(name, partitions)| TopicInfo {
            retention: retention.remove(&name),
            name,
            partitions,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Every topic of this deployment (prefix stripped; internal `__` topics
/// skipped) with its sorted partition ids, from one metadata request.
async fn topics_with_partitions(log: &KafkaLog) -> Result<Vec<(String, Vec<u32>)>> {
    let this = log.clone();
    blocking(move || {
        let config = &this.inner.config;
        let md = this
            .inner
            .producer()
            .client()
            .fetch_metadata(None, config.request_timeout)
            .map_err(map_err)?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.name().starts_with("__"))
            .filter_map(|t| {
                let name = config.strip(t.name())?;
                let mut ids: Vec<u32> = t.partitions().iter().map(|p| p.id() as u32).collect();
                ids.sort_unstable();
                Some((name.to_owned(), ids))
            })
            .collect())
    })
    .await
}

/// Low and high watermarks of the given partitions, topic by topic.
async fn watermarks(
    log: &KafkaLog,
    topics: Vec<(String, Vec<u32>)>,
) -> Result<Vec<Vec<PartitionInfo>>> {
    let this = log.clone();
    blocking(move || {
        let config = &this.inner.config;
        let producer = this.inner.producer();
        let client = producer.client();
        topics
            .iter()
            .map(|(topic, ids)| {
                let full = config.full(topic);
                ids.iter()
                    .map(|&p| {
                        let (low, high) = client
                            .fetch_watermarks(&full, p as i32, config.request_timeout)
                            .map_err(|e| map_topic_err(e, topic))?;
                        Ok(PartitionInfo {
                            partition: p,
                            log_start_offset: low.max(0) as u64,
                            high_watermark: high.max(0) as u64,
                        })
                    })
                    .collect()
            })
            .collect()
    })
    .await
}

/// `retention.ms` and `retention.bytes` of a topic with this retention. Both
/// are always set, -1 for "no limit", so the broker's defaults (7 days on
/// a stock Kafka) never shorten what the caller asked for.
fn retention_configs(retention: Retention) -> (String, String) {
    let ms = retention
        .max_age()
        .map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let bytes = retention
        .max_bytes()
        .map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX));
    (ms.to_string(), bytes.to_string())
}

/// The retention described by a topic's `retention.ms` and
/// `retention.bytes`. A negative value (Kafka's -1) is no limit, and so is
/// i64::MAX, which earlier versions set for topics kept forever; a missing
/// entry is no limit too.
fn retention_from_configs<'a>(
    entries: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Retention {
    let (mut max_age, mut max_bytes) = (None, None);
    for (name, value) in entries {
        let limit = value
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| (0..i64::MAX).contains(v))
            .map(|v| v as u64);
        match name {
            "retention.ms" => max_age = limit.map(Duration::from_millis),
            "retention.bytes" => max_bytes = limit,
            _ => {}
        }
    }
    Retention::limited(max_age, max_bytes)
}

/// Retention of the given topics, read back with one DescribeConfigs
/// request. A broker that does not serve DescribeConfigs (or refuses it for
/// lack of ACLs) leaves them out rather than failing the description:
/// retention is informational here, and the caller shows it as unknown.
async fn retentions(log: &KafkaLog, topics: &[String]) -> HashMap<String, Retention> {
    let mut out = HashMap::new();
    if topics.is_empty() {
        return out;
    }
    let full: Vec<String> = topics.iter().map(|t| log.inner.config.full(t)).collect();
    let resources: Vec<ResourceSpecifier<'_>> =
        full.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let opts = AdminOptions::new().request_timeout(Some(log.inner.config.request_timeout));
    let results = match log.inner.admin.describe_configs(&resources, &opts).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(error = %e, "DescribeConfigs failed; retention unknown");
            return out;
        }
    };
    for result in results {
        let Ok(resource) = result else { continue };
        let OwnedResourceSpecifier::Topic(full) = &resource.specifier else {
            continue;
        };
        let Some(topic) = log.inner.config.strip(full) else {
            continue;
        };
        let retention = retention_from_configs(
            resource
                .entries
                .iter()
                .map(|e| (e.name.as_str(), e.value.as_deref())),
        );
        out.insert(topic.to_owned(), retention);
    }
    out
}

/// Lag of `group` on every partition of the topics it has committed on.
///
/// Committed offsets come from an OffsetFetch by a short-lived consumer
/// carrying the group id; it only reads them and never joins the group, so
/// the group's members are not disturbed.
pub(crate) async fn group_lag(log: &KafkaLog, group: &str) -> Result<Vec<GroupLag>> {
    let topics = topics_with_partitions(log).await?;
    if topics.is_empty() {
        return Ok(Vec::new());
    }
    let mut cfg = log.inner.config.client();
    cfg.set("group.id", log.inner.config.full(group))
        .set("enable.auto.commit", "false");
    let config = log.inner.config.clone();
    let query = topics.clone();
    let committed: Vec<(String, Vec<Option<u64>>)> = blocking(move || {
        let consumer: BaseConsumer = cfg.create().map_err(map_err)?;
        let mut tpl = TopicPartitionList::new();
        for (topic, ids) in &query {
            let full = config.full(topic);
            for p in ids {
                tpl.add_partition(&full, *p as i32);
            }
        }
        let got = consumer
            .committed_offsets(tpl, config.request_timeout)
            .map_err(map_err)?;
        Ok(query
            .iter()
            .map(|(topic, ids)| {
                let full = config.full(topic);
                let offsets = ids
                    .iter()
                    .map(
                        |p| match got.find_partition(&full, *p as i32).map(|e| e.offset()) {
                            Some(Offset::Offset(o)) if o >= 0 => Some(o as u64),
                            _ => None,
                        },
                    )
                    .collect();
                (topic.clone(), offsets)
            })
            .filter(|(_, offsets): &(String, Vec<Option<u64>>)| offsets.iter().any(Option::is_some))
            .collect())
    })
    .await?;
    let ids: HashMap<String, Vec<u32>> = topics.into_iter().collect();
    let wanted: Vec<(String, Vec<u32>)> = committed
        .iter()
        .map(|(t, _)| (t.clone(), ids.get(t).cloned().unwrap_or_default()))
        .collect();
    let marks = watermarks(log, wanted).await?;
    let mut out = Vec::new();
    for ((topic, offsets), partitions) in committed.into_iter().zip(marks) {
        for (p, committed) in partitions.into_iter().zip(offsets) {
            out.push(GroupLag {
                group: group.to_owned(),
                topic: topic.clone(),
                partition: p.partition,
                committed,
                log_start_offset: p.log_start_offset,
                high_watermark: p.high_watermark,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(retention: Retention) -> Retention {
        let (ms, bytes) = retention_configs(retention);
        retention_from_configs([
            ("retention.ms", Some(ms.as_str())),
            ("retention.bytes", Some(bytes.as_str())),
        ])
    }

    #[test]
    fn forever_is_minus_one_for_both_limits() {
        assert_eq!(
            retention_configs(Retention::Forever),
            ("-1".to_owned(), "-1".to_owned())
        );
        assert_eq!(round_trip(Retention::Forever), Retention::Forever);
    }

    #[test]
    fn limits_round_trip_and_an_unset_one_is_no_limit() {
        assert_eq!(
            retention_configs(Retention::days(1)),
            ("86400000".to_owned(), "-1".to_owned())
        );
        for r in [
            Retention::days(7),
            Retention::limited(None, Some(10_000_000)),
            Retention::limited(Some(Duration::from_secs(60)), Some(1)),
        ] {
            assert_eq!(round_trip(r), r);
        }
    }

    #[test]
    fn an_i64_max_limit_or_a_missing_entry_is_no_limit() {
        // What earlier versions set on event-sourced topics.
        let r = retention_from_configs([
            ("retention.ms", Some("-1")),
            ("retention.bytes", Some("9223372036854775807")),
        ]);
        assert_eq!(r, Retention::Forever);
        assert_eq!(
            retention_from_configs([("cleanup.policy", Some("delete"))]),
            Retention::Forever
        );
        // The broker's default age limit still shows on such a topic.
        let r = retention_from_configs([
            ("retention.ms", Some("604800000")),
            ("retention.bytes", Some("9223372036854775807")),
        ]);
        assert_eq!(r, Retention::days(7));
    }
}
