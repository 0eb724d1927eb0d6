use std::time::Duration;

use rdkafka::ClientConfig;

/// Producer compression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    None,
    #[default]
    Lz4,
    Zstd,
}

impl Compression {
    fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Settings of the Kafka backend.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port[,host:port]` (`KAFKA_BOOTSTRAP_SERVERS`).
    pub bootstrap_servers: String,
    /// Prepended to every topic name (`KAFKA_TOPIC_PREFIX`); callers never see it.
    pub topic_prefix: String,
    pub client_id: String,
    pub compression: Compression,
    /// How long the producer waits to fill a batch (`linger.ms`).
    pub linger: Duration,
    /// Largest producer batch in bytes (`batch.size`).
    pub batch_bytes: usize,
    /// How long start-up waits for the broker before failing.
    pub connect_timeout: Duration,
    /// Consumer group session timeout (`session.timeout.ms`).
    pub session_timeout: Duration,
    /// Any other librdkafka property, applied last.
    pub extra: Vec<(String, String)>,
}

impl KafkaConfig {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            topic_prefix: String::new(),
            client_id: "ultracore".into(),
            compression: Compression::default(),
            linger: Duration::from_millis(2),
            batch_bytes: 1_000_000,
            connect_timeout: Duration::from_secs(5),
            session_timeout: Duration::from_secs(6),
            extra: Vec::new(),
        }
    }

    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.topic_prefix = prefix.into();
        self
    }

    pub(crate) fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id)
            .set(
                "socket.timeout.ms",
                self.connect_timeout.as_millis().max(1000).to_string(),
            )
            // Brokers named in metadata must be reachable as advertised; fail fast when none is.
            .set("reconnect.backoff.max.ms", "1000");
        c
    }

    pub(crate) fn producer(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", self.compression.name())
            .set("linger.ms", self.linger.as_millis().to_string())
            .set("batch.size", self.batch_bytes.to_string())
            .set("message.timeout.ms", "30000");
        self.apply_extra(&mut c);
        c
    }

    pub(crate) fn consumer(&self, group: &str, auto_offset_reset: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", auto_offset_reset)
            .set(
                "session.timeout.ms",
                self.session_timeout.as_millis().to_string(),
            )
            .set("heartbeat.interval.ms", "500")
            .set("enable.partition.eof", "false");
        self.apply_extra(&mut c);
        c
    }

    fn apply_extra(&self, c: &mut ClientConfig) {
        for (k, v) in &self.extra {
            c.set(k, v);
        }
    }

    pub(crate) fn full(&self, topic: &str) -> String {
        format!("{}{topic}", self.topic_prefix)
    }

    /// The unprefixed name, or `None` for topics of other deployments.
    pub(crate) fn strip<'a>(&self, topic: &'a str) -> Option<&'a str> {
        topic.strip_prefix(self.topic_prefix.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_applied_and_stripped() {
        let c = KafkaConfig::new("h:1").with_prefix("prod.");
        assert_eq!(c.full("orders"), "prod.orders");
        assert_eq!(c.strip("prod.orders"), Some("orders"));
        assert_eq!(c.strip("staging.orders"), None);
    }

    #[test]
    fn producer_is_idempotent_with_all_acks() {
        let c = KafkaConfig::new("h:1").producer();
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("compression.type"), Some("lz4"));
    }
}
