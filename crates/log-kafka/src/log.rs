use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::FromClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header as KHeader, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use ultracore_log::{
    partition_for_key, Appended, ConsumerOptions, Error, EventLog, GroupLag, NewRecord,
    PartitionInfo, Result, Retention, TopicInfo, TopicSpec,
};

use crate::config::KafkaConfig;
use crate::consumer::KafkaConsumer;
use crate::map_err;

const META_TIMEOUT: Duration = Duration::from_secs(10);

struct Inner {
    config: KafkaConfig,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    /// A group-less client for metadata, watermarks and group listings.
    meta: BaseConsumer,
    partitions: Mutex<HashMap<String, u32>>,
    round_robin: AtomicU32,
}

/// The event log on Apache Kafka (or any Kafka-protocol broker).
#[derive(Clone)]
pub struct KafkaLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("bootstrap_servers", &self.inner.config.bootstrap_servers)
            .finish()
    }
}

/// Runs a blocking librdkafka call off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Closed)?
}

impl KafkaLog {
    /// Connects and checks that the brokers answer within
    /// `config.connect_timeout`; otherwise [`Error::Unreachable`] names them.
    pub async fn connect(config: KafkaConfig) -> Result<KafkaLog> {
        let unreachable = |reason: String| Error::Unreachable {
            address: config.bootstrap_servers.clone(),
            reason,
        };
        let producer: FutureProducer = config
            .producer()
            .create()
            .map_err(|e| unreachable(e.to_string()))?;
        let admin =
            AdminClient::from_config(&config.base()).map_err(|e| unreachable(e.to_string()))?;
        let meta =
            BaseConsumer::from_config(&config.base()).map_err(|e| unreachable(e.to_string()))?;
        let log = KafkaLog {
            inner: Arc::new(Inner {
                config: config.clone(),
                producer,
                admin,
                meta,
                partitions: Mutex::new(HashMap::new()),
                round_robin: AtomicU32::new(0),
            }),
        };
        let probe = log.clone();
        let timeout = config.connect_timeout;
        blocking(move || {
            probe
                .inner
                .meta
                .fetch_metadata(None, timeout)
                .map(|_| ())
                .map_err(|e| Error::Kafka(e.to_string()))
        })
        .await
        .map_err(|e| unreachable(format!("no answer within {timeout:?} ({e})")))?;
        tracing::info!(servers = %config.bootstrap_servers, prefix = %config.topic_prefix, "connected to Kafka");
        Ok(log)
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.inner.config
    }

    /// Partitions of a topic (cached; `refresh` re-reads the metadata).
    async fn partition_count(&self, topic: &str, refresh: bool) -> Result<u32> {
        if !refresh {
            if let Some(n) = self
                .inner
                .partitions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(topic)
            {
                return Ok(*n);
            }
        }
        let info = self.describe_partitions(topic).await?;
        let n = info.len() as u32;
        self.inner
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(topic.to_owned(), n);
        Ok(n)
    }

    /// Partition ids of a topic from the cluster metadata.
    async fn describe_partitions(&self, topic: &str) -> Result<Vec<u32>> {
        let this = self.clone();
        let full = self.inner.config.full(topic);
        let name = topic.to_owned();
        blocking(move || {
            let md = this
                .inner
                .meta
                .fetch_metadata(Some(&full), META_TIMEOUT)
                .map_err(map_err)?;
            let t = md
                .topics()
                .iter()
                .find(|t| t.name() == full)
                .ok_or_else(|| Error::UnknownTopic(name.clone()))?;
            if t.error().is_some() || t.partitions().is_empty() {
                return Err(Error::UnknownTopic(name));
            }
            let mut ids: Vec<u32> = t.partitions().iter().map(|p| p.id() as u32).collect();
            ids.sort_unstable();
            Ok(ids)
        })
        .await
    }

    async fn retention_of(&self, topic: &str) -> Retention {
        let full = self.inner.config.full(topic);
        let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
        let Ok(results) = self
            .inner
            .admin
            .describe_configs(&[ResourceSpecifier::Topic(&full)], &opts)
            .await
        else {
            return Retention::default();
        };
        let mut retention = Retention::default();
        for r in results.into_iter().flatten() {
            for entry in r.entries {
                let value = entry
                    .value
                    .as_deref()
                    .and_then(|v| v.parse::<i64>().ok())
                    .filter(|v| *v >= 0);
                match (entry.name.as_str(), value) {
                    ("retention.ms", Some(ms)) => {
                        retention.max_age = Some(Duration::from_millis(ms as u64))
                    }
                    ("retention.bytes", Some(b)) => retention.max_bytes = Some(b as u64),
                    _ => {}
                }
            }
        }
        retention
    }

    async fn watermarks(&self, topic: &str, partitions: Vec<u32>) -> Result<Vec<PartitionInfo>> {
        let this = self.clone();
        let full = self.inner.config.full(topic);
        blocking(move || {
            partitions
                .into_iter()
                .map(|p| {
                    let (low, high) = this
                        .inner
                        .meta
                        .fetch_watermarks(&full, p as i32, META_TIMEOUT)
                        .map_err(map_err)?;
                    Ok(PartitionInfo {
                        partition: p,
                        log_start_offset: low.max(0) as u64,
                        high_watermark: high.max(0) as u64,
                    })
                })
                .collect()
        })
        .await
    }

    /// Committed offsets of `group` on the partitions of `topic`.
    async fn committed(
        &self,
        group: &str,
        topic: &str,
        partitions: &[u32],
    ) -> Result<Vec<Option<u64>>> {
        let mut cfg = self.inner.config.base();
        cfg.set("group.id", group)
            .set("enable.auto.commit", "false");
        let full = self.inner.config.full(topic);
        let partitions = partitions.to_vec();
        blocking(move || {
            let consumer: BaseConsumer = cfg.create().map_err(map_err)?;
            let mut tpl = TopicPartitionList::new();
            for p in &partitions {
                tpl.add_partition(&full, *p as i32);
            }
            let got = consumer
                .committed_offsets(tpl, META_TIMEOUT)
                .map_err(map_err)?;
            Ok(partitions
                .iter()
                .map(
                    |p| match got.find_partition(&full, *p as i32).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) if o >= 0 => Some(o as u64),
                        _ => None,
                    },
                )
                .collect())
        })
        .await
    }
}

impl EventLog for KafkaLog {
    type Consumer = KafkaConsumer;

    async fn create_topic(&self, spec: &TopicSpec) -> Result<()> {
        TopicSpec::validate_name(&spec.name)?;
        let full = self.inner.config.full(&spec.name);
        let retention_ms = spec.retention.max_age.map(|d| d.as_millis().to_string());
        let retention_bytes = spec.retention.max_bytes.map(|b| b.to_string());
        let mut topic = NewTopic::new(&full, spec.partitions as i32, TopicReplication::Fixed(-1));
        if let Some(ms) = &retention_ms {
            topic = topic.set("retention.ms", ms);
        }
        if let Some(b) = &retention_bytes {
            topic = topic.set("retention.bytes", b);
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = self
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
                Err((name, code)) => {
                    return Err(Error::Kafka(format!("creating topic {name}: {code}")))
                }
            }
        }
        // Wait until the metadata shows it, so an append right after works.
        for _ in 0..100 {
            if self
                .describe_partitions(&spec.name)
                .await
                .is_ok_and(|p| p.len() == spec.partitions as usize)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.inner
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(spec.name.clone(), spec.partitions);
        Ok(())
    }

    async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        let this = self.clone();
        let names: Vec<String> = blocking(move || {
            let md = this
                .inner
                .meta
                .fetch_metadata(None, META_TIMEOUT)
                .map_err(map_err)?;
            Ok(md
                .topics()
                .iter()
                .filter_map(|t| this.inner.config.strip(t.name()).map(str::to_owned))
                .filter(|n| !n.starts_with("__"))
                .collect())
        })
        .await?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match self.describe_topic(&name).await {
                Ok(t) => out.push(t),
                Err(Error::UnknownTopic(_)) => {} // deleted meanwhile
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn describe_topic(&self, topic: &str) -> Result<TopicInfo> {
        let partitions = self.describe_partitions(topic).await?;
        let partitions = self.watermarks(topic, partitions).await?;
        Ok(TopicInfo {
            name: topic.to_owned(),
            partitions,
            retention: self.retention_of(topic).await,
        })
    }

    async fn append(&self, topic: &str, records: Vec<NewRecord>) -> Result<Vec<Appended>> {
        let mut n = self.partition_count(topic, false).await?;
        if records.iter().any(|r| r.partition.is_some_and(|p| p >= n)) {
            n = self.partition_count(topic, true).await?;
        }
        let full = self.inner.config.full(topic);
        let mut parts = Vec::with_capacity(records.len());
        let mut all_headers = Vec::with_capacity(records.len());
        for r in &records {
            let p = match (r.partition, &r.key) {
                (Some(p), _) if p < n => p,
                (Some(p), _) => {
                    return Err(Error::UnknownPartition {
                        topic: topic.to_owned(),
                        partition: p,
                        partitions: n,
                    })
                }
                (None, Some(k)) => partition_for_key(k, n),
                (None, None) => self.inner.round_robin.fetch_add(1, Ordering::Relaxed) % n,
            };
            parts.push(p);
            let mut h = OwnedHeaders::new_with_capacity(r.headers.len());
            for header in &r.headers {
                h = h.insert(KHeader {
                    key: &header.key,
                    value: Some(&header.value),
                });
            }
            all_headers.push(h);
        }
        // Enqueue every record before awaiting any acknowledgement, so the
        // whole batch travels in as few requests as librdkafka can make.
        let sends = records
            .iter()
            .zip(&parts)
            .zip(all_headers)
            .map(|((r, p), headers)| {
                let mut rec = FutureRecord::<[u8], [u8]>::to(&full)
                    .payload(&r.value)
                    .partition(*p as i32)
                    .headers(headers);
                if let Some(k) = &r.key {
                    rec = rec.key(k.as_slice());
                }
                if let Some(ts) = r.timestamp {
                    rec = rec.timestamp(ts);
                }
                self.inner.producer.send(rec, Timeout::Never)
            });
        let results = futures::future::join_all(sends).await;
        let mut out = Vec::with_capacity(results.len());
        for (r, rec) in results.into_iter().zip(&records) {
            match r {
                Ok(d) => out.push(Appended {
                    partition: d.partition as u32,
                    offset: d.offset as u64,
                    timestamp: rec.timestamp.unwrap_or_else(ultracore_log::now_millis),
                }),
                Err((e, _)) => return Err(map_err(e)),
            }
        }
        Ok(out)
    }

    async fn consumer(&self, options: ConsumerOptions) -> Result<KafkaConsumer> {
        for t in &options.topics {
            self.partition_count(t, false).await?;
        }
        KafkaConsumer::new(self.inner.config.clone(), options)
    }

    async fn list_groups(&self) -> Result<Vec<String>> {
        let this = self.clone();
        blocking(move || {
            let list = this
                .inner
                .meta
                .fetch_group_list(None, META_TIMEOUT)
                .map_err(map_err)?;
            let mut names: Vec<String> =
                list.groups().iter().map(|g| g.name().to_owned()).collect();
            names.sort();
            Ok(names)
        })
        .await
    }

    async fn group_lag(&self, group: &str) -> Result<Vec<GroupLag>> {
        let mut out = Vec::new();
        for topic in self.list_topics().await? {
            let ids: Vec<u32> = topic.partitions.iter().map(|p| p.partition).collect();
            let committed = self.committed(group, &topic.name, &ids).await?;
            if committed.iter().all(Option::is_none) {
                continue;
            }
            for (p, c) in topic.partitions.iter().zip(committed) {
                out.push(GroupLag {
                    group: group.to_owned(),
                    topic: topic.name.clone(),
                    partition: p.partition,
                    committed: c,
                    log_start_offset: p.log_start_offset,
                    high_watermark: p.high_watermark,
                });
            }
        }
        Ok(out)
    }
}
