use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, Producer as _};
use ultracore_log::{
    Appended, ConsumerOptions, Error, EventLog, GroupLag, NewRecord, Result, TopicInfo, TopicSpec,
};

use crate::config::KafkaConfig;
use crate::consumer::KafkaConsumer;
use crate::error::map_err;

/// State shared by every clone of a [`KafkaLog`].
pub(crate) struct Inner {
    pub(crate) config: KafkaConfig,
    /// The one producer of this process: librdkafka batches concurrent
    /// appends into shared produce requests, so one is faster than many.
    /// Its client also serves metadata and watermark look-ups. Replaced by
    /// [`Inner::replace_producer`] when the brokers keep rejecting its
    /// idempotence state.
    producer: RwLock<FutureProducer>,
    /// Appends failed in a row by an error of the producer's state
    /// (see `producer::state_error`).
    pub(crate) state_errors: AtomicU32,
    pub(crate) admin: AdminClient<DefaultClientContext>,
    /// Partition count per (unprefixed) topic; partitions only ever grow,
    /// so an entry is refreshed when a record names a partition beyond it.
    pub(crate) partitions: Mutex<HashMap<String, u32>>,
    /// Spreads unkeyed records over partitions.
    pub(crate) round_robin: AtomicU32,
    /// The consumer that reads single records' timestamps.
    pub(crate) lookup: crate::timestamps::Lookup,
}

impl Inner {
    fn new(
        config: KafkaConfig,
        producer: FutureProducer,
        admin: AdminClient<DefaultClientContext>,
    ) -> Inner {
        Inner {
            config,
            producer: RwLock::new(producer),
            state_errors: AtomicU32::new(0),
            admin,
            partitions: Mutex::new(HashMap::new()),
            round_robin: AtomicU32::new(0),
            lookup: Default::default(),
        }
    }

    /// The current producer (a cheap handle).
    pub(crate) fn producer(&self) -> FutureProducer {
        self.producer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the producer with a new one, which gets a new producer id
    /// from the brokers and so starts a fresh idempotence state. For a
    /// producer whose state the brokers keep rejecting (librdkafka's fatal
    /// errors, or a broker that lost part of its producer state in a crash),
    /// which would otherwise fail every append from then on. Records the old
    /// one still holds fail at once (purged); their callers retry them, as
    /// after any failed append.
    pub(crate) fn replace_producer(&self, reason: &str) {
        let fresh: FutureProducer = match self.config.producer().create() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, reason, "cannot create a new Kafka producer; keeping the old one");
                return;
            }
        };
        let old = std::mem::replace(
            &mut *self.producer.write().unwrap_or_else(|e| e.into_inner()),
            fresh,
        );
        self.state_errors.store(0, Ordering::Relaxed);
        tracing::warn!(
            reason,
            "replaced the Kafka producer: the brokers kept rejecting its idempotence state"
        );
        // Dropping purges what it still holds and waits up to 500 ms for its
        // thread: not on an async worker.
        std::thread::spawn(move || drop(old));
    }
}

/// The event log on Apache Kafka (or any Kafka-protocol broker).
///
/// Cheap to clone; clones share one producer and one admin client.
#[derive(Clone)]
pub struct KafkaLog {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("bootstrap_servers", &self.inner.config.bootstrap_servers)
            .field("topic_prefix", &self.inner.config.topic_prefix)
            .finish()
    }
}

/// Runs a blocking librdkafka call off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Kafka(format!("a blocking Kafka call failed: {e}")))?
}

impl KafkaLog {
    /// Creates the clients without asking the brokers anything, so it
    /// succeeds while they are down. For emitters that must start during an
    /// outage and spool until the log is back; everything else uses
    /// [`KafkaLog::connect`], which fails fast on a wrong address.
    pub fn connect_lazy(config: KafkaConfig) -> Result<KafkaLog> {
        let producer: FutureProducer = config.producer().create().map_err(map_err)?;
        let admin: AdminClient<DefaultClientContext> = config.client().create().map_err(map_err)?;
        Ok(KafkaLog {
            inner: Arc::new(Inner::new(config, producer, admin)),
        })
    }

    /// Connects and checks that the brokers answer a metadata request within
    /// `config.connect_timeout`; otherwise fails with [`Error::Unreachable`]
    /// naming `config.bootstrap_servers`. Never falls back to anything else.
    pub async fn connect(config: KafkaConfig) -> Result<KafkaLog> {
        let producer: FutureProducer = config.producer().create().map_err(map_err)?;
        let admin: AdminClient<DefaultClientContext> = config.client().create().map_err(map_err)?;
        let log = KafkaLog {
            inner: Arc::new(Inner::new(config, producer, admin)),
        };
        let config = &log.inner.config;
        let timeout = config.connect_timeout;
        let probe = log.clone();
        let answer = blocking(move || {
            probe
                .inner
                .producer()
                .client()
                .fetch_metadata(None, timeout)
                .map(|md| md.brokers().len())
                .map_err(map_err)
        })
        .await;
        match answer {
            Ok(brokers) => {
                tracing::info!(
                    servers = %config.bootstrap_servers,
                    prefix = %config.topic_prefix,
                    brokers,
                    "connected to Kafka"
                );
                Ok(log)
            }
            Err(e) => Err(Error::Unreachable {
                address: config.bootstrap_servers.clone(),
                reason: format!("no metadata answer within {timeout:?}: {e}"),
            }),
        }
    }

    /// The settings this log was connected with.
    pub fn config(&self) -> &KafkaConfig {
        &self.inner.config
    }

    /// Waits until every record handed to the producer is acknowledged (or
    /// `timeout` passes). `append` already waits for its own records; this is
    /// for a clean shutdown.
    pub async fn flush(&self, timeout: Duration) -> Result<()> {
        let this = self.clone();
        blocking(move || this.inner.producer().flush(timeout).map_err(map_err)).await
    }
}

impl EventLog for KafkaLog {
    type Consumer = KafkaConsumer;

    fn physical_topic(&self, topic: &str) -> String {
        self.inner.config.full(topic)
    }

    async fn create_topic(&self, spec: &TopicSpec) -> Result<()> {
        crate::admin::create_topic(self, spec).await
    }

    async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        crate::admin::list_topics(self).await
    }

    async fn describe_topic(&self, topic: &str) -> Result<TopicInfo> {
        crate::admin::describe_topic(self, topic).await
    }

    async fn append(&self, topic: &str, records: Vec<NewRecord>) -> Result<Vec<Appended>> {
        crate::producer::append(self, topic, records).await
    }

    async fn consumer(&self, options: ConsumerOptions) -> Result<KafkaConsumer> {
        // Fail fast on a missing topic rather than waiting forever for records.
        for t in &options.topics {
            crate::producer::partition_count(self, t, false).await?;
        }
        KafkaConsumer::new(self.inner.config.clone(), options)
    }

    async fn list_groups(&self) -> Result<Vec<String>> {
        crate::groups::list_groups(self).await
    }

    async fn group_lag(&self, group: &str) -> Result<Vec<GroupLag>> {
        crate::admin::group_lag(self, group).await
    }

    async fn timestamp_at(&self, topic: &str, partition: u32, offset: u64) -> Result<Option<i64>> {
        crate::timestamps::timestamp_at(self, topic, partition, offset).await
    }
}
