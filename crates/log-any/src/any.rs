use std::time::Duration;

use ultracore_log::{
    Appended, Consumer, ConsumerOptions, Error, EventLog, GroupLag, NewRecord, Position, Record,
    Result, Seek, TopicInfo, TopicPartition, TopicSpec,
};
use ultracore_log_embedded::{EmbeddedConsumer, EmbeddedLog, EmbeddedOptions, SyncMode};
use ultracore_log_kafka::{KafkaConfig, KafkaConsumer, KafkaLog};

use crate::config::{Access, Backend, LogConfig};

/// The log a process uses, whichever backend configuration chose.
#[derive(Clone, Debug)]
pub enum AnyLog {
    Embedded(EmbeddedLog),
    Kafka(KafkaLog),
}

/// A consumer of an [`AnyLog`].
#[derive(Debug)]
pub enum AnyConsumer {
    Embedded(EmbeddedConsumer),
    Kafka(KafkaConsumer),
}

/// Calls the same method on whichever backend is inside.
macro_rules! dispatch {
    ($self:expr, $log:ident => $call:expr) => {
        match $self {
            AnyLog::Embedded($log) => $call,
            AnyLog::Kafka($log) => $call,
        }
    };
}

macro_rules! dispatch_consumer {
    ($self:expr, $c:ident => $call:expr) => {
        match $self {
            AnyConsumer::Embedded($c) => $call,
            AnyConsumer::Kafka($c) => $call,
        }
    };
}

/// The embedded log's options as the environment sets them:
/// `ULTRACORE_SYNC_MODE` (`auto` | `per-file`) and `ULTRACORE_LOG_CACHE_MB`
/// (0 leaves caching to the kernel); defaults otherwise.
pub fn embedded_options_from_env() -> Result<EmbeddedOptions> {
    let sync = match std::env::var("ULTRACORE_SYNC_MODE") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|e: String| Error::InvalidArgument(format!("ULTRACORE_SYNC_MODE: {e}")))?,
        _ => SyncMode::default(),
    };
    let defaults = EmbeddedOptions::default();
    let page_cache_window = match std::env::var("ULTRACORE_LOG_CACHE_MB") {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<u64>() {
            Ok(0) => None,
            Ok(mb) => Some(mb.saturating_mul(1024 * 1024)),
            Err(_) => {
                return Err(Error::InvalidArgument(format!(
                    "ULTRACORE_LOG_CACHE_MB: '{v}' is not a whole number of MiB (0 leaves caching to the kernel)"
                )))
            }
        },
        _ => defaults.page_cache_window,
    };
    Ok(EmbeddedOptions {
        sync,
        page_cache_window,
        ..defaults
    })
}

impl AnyLog {
    /// Opens the configured backend. A configured Kafka that cannot be
    /// reached is an error naming its address; there is no fallback.
    pub async fn open(config: &LogConfig, access: Access) -> Result<AnyLog> {
        let backend = config
            .backend()
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        tracing::debug!(%backend, ?access, "opening event log");
        match backend {
            Backend::Embedded { dir } => {
                let options = EmbeddedOptions {
                    default_retention: config.default_retention(),
                    ..embedded_options_from_env()?
                };
                let log = match access {
                    Access::Write => EmbeddedLog::open(&dir, options)?,
                    Access::ReadOnly => EmbeddedLog::open_read_only(&dir).map_err(|e| match e {
                        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Error::InvalidArgument(format!(
                            "no event log at {}: set ULTRACORE_DATA_DIR (or --data-dir) to the server's data directory, or run `ultracore demo` to create one",
                            dir.display()
                        )),
                        e => e,
                    })?,
                };
                Ok(AnyLog::Embedded(log))
            }
            Backend::Kafka { bootstrap_servers } => {
                // KAFKA_COMPRESSION_TYPE, KAFKA_LINGER_MS, KAFKA_BATCH_SIZE, KAFKA_PROPERTIES, …
                // then the prefix as resolved by the caller (flag or KAFKA_TOPIC_PREFIX).
                let mut kafka = KafkaConfig::new(bootstrap_servers).with_env()?;
                if let Some(prefix) = &config.topic_prefix {
                    kafka = kafka.with_prefix(prefix.clone());
                }
                Ok(AnyLog::Kafka(KafkaLog::connect(kafka).await?))
            }
        }
    }

    /// Why the log stopped accepting writes, if it did (the embedded log
    /// stops its writer after a failed write or fsync; a Kafka client
    /// reports broker trouble per request instead, so never here).
    pub fn stopped(&self) -> Option<String> {
        match self {
            AnyLog::Embedded(log) => log.stopped().map(str::to_owned),
            AnyLog::Kafka(_) => None,
        }
    }

    /// "embedded" or "kafka".
    pub fn kind(&self) -> &'static str {
        match self {
            AnyLog::Embedded(_) => "embedded",
            AnyLog::Kafka(_) => "kafka",
        }
    }
}

impl EventLog for AnyLog {
    type Consumer = AnyConsumer;

    fn physical_topic(&self, topic: &str) -> String {
        match self {
            AnyLog::Embedded(log) => log.physical_topic(topic),
            AnyLog::Kafka(log) => log.physical_topic(topic),
        }
    }

    async fn create_topic(&self, spec: &TopicSpec) -> Result<()> {
        dispatch!(self, l => l.create_topic(spec).await)
    }

    async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        dispatch!(self, l => l.list_topics().await)
    }

    async fn describe_topic(&self, topic: &str) -> Result<TopicInfo> {
        dispatch!(self, l => l.describe_topic(topic).await)
    }

    async fn append(&self, topic: &str, records: Vec<NewRecord>) -> Result<Vec<Appended>> {
        dispatch!(self, l => l.append(topic, records).await)
    }

    async fn consumer(&self, options: ConsumerOptions) -> Result<AnyConsumer> {
        match self {
            AnyLog::Embedded(l) => Ok(AnyConsumer::Embedded(l.consumer(options).await?)),
            AnyLog::Kafka(l) => Ok(AnyConsumer::Kafka(l.consumer(options).await?)),
        }
    }

    async fn list_groups(&self) -> Result<Vec<String>> {
        dispatch!(self, l => l.list_groups().await)
    }

    async fn group_lag(&self, group: &str) -> Result<Vec<GroupLag>> {
        dispatch!(self, l => l.group_lag(group).await)
    }

    async fn timestamp_at(&self, topic: &str, partition: u32, offset: u64) -> Result<Option<i64>> {
        dispatch!(self, l => l.timestamp_at(topic, partition, offset).await)
    }
}

impl Consumer for AnyConsumer {
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Record>> {
        dispatch_consumer!(self, c => c.poll(max, timeout).await)
    }

    async fn commit(&mut self, positions: &[Position]) -> Result<()> {
        dispatch_consumer!(self, c => c.commit(positions).await)
    }

    async fn seek(&mut self, target: Seek) -> Result<()> {
        dispatch_consumer!(self, c => c.seek(target).await)
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        dispatch_consumer!(self, c => c.assignment())
    }
}
