use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rdkafka::ClientConfig;
use ultracore_log::{Error, Result};

/// Producer compression (`compression.type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    None,
    /// Cheap on CPU, good on JSON envelopes: the default.
    #[default]
    Lz4,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            other => Err(Error::InvalidArgument(format!(
                "compression '{other}' is not supported: use none, lz4 or zstd"
            ))),
        }
    }
}

/// Settings of the Kafka backend.
///
/// [`KafkaConfig::new`] gives defaults that suit a local or small cluster;
/// [`KafkaConfig::from_env`] reads the standard `KAFKA_*` variables. Anything
/// else librdkafka understands goes in [`KafkaConfig::extra`], applied last,
/// so it overrides what this type sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port[,host:port]` (`KAFKA_BOOTSTRAP_SERVERS`).
    pub bootstrap_servers: String,
    /// Prepended to every topic name and consumer group id
    /// (`KAFKA_TOPIC_PREFIX`), so several deployments can share a cluster
    /// without reading each other's topics or joining each other's groups.
    /// Callers always use unprefixed names.
    pub topic_prefix: String,
    /// `client.id` (`KAFKA_CLIENT_ID`), shown in broker logs and quotas.
    pub client_id: String,
    /// `compression.type` (`KAFKA_COMPRESSION_TYPE`).
    pub compression: Compression,
    /// How long the producer waits to fill a batch (`linger.ms`, `KAFKA_LINGER_MS`).
    pub linger: Duration,
    /// Largest producer batch in bytes (`batch.size`, `KAFKA_BATCH_SIZE`).
    pub batch_bytes: usize,
    /// Bound on one broker request (`request.timeout.ms`, `socket.timeout.ms`)
    /// and on an append waiting for its acknowledgement (`message.timeout.ms`)
    /// (`KAFKA_REQUEST_TIMEOUT_MS`).
    pub request_timeout: Duration,
    /// How long [`crate::KafkaLog::connect`] waits for the brokers to answer
    /// before failing with [`Error::Unreachable`] (`KAFKA_CONNECT_TIMEOUT_MS`).
    pub connect_timeout: Duration,
    /// Consumer group session timeout (`session.timeout.ms`). A member that
    /// dies without leaving loses its partitions after this long.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`; well below the session timeout so rebalances
    /// are noticed quickly.
    pub heartbeat_interval: Duration,
    /// Any other librdkafka property (`KAFKA_PROPERTIES="k=v,k=v"`), applied last.
    pub extra: Vec<(String, String)>,
}

impl KafkaConfig {
    /// Defaults for the given brokers (`host:port[,…]`, a `kafka://` scheme is accepted).
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        let servers: String = bootstrap_servers.into();
        let servers = servers
            .strip_prefix("kafka://")
            .unwrap_or(&servers)
            .trim_end_matches('/')
            .to_owned();
        KafkaConfig {
            bootstrap_servers: servers,
            topic_prefix: String::new(),
            client_id: "ultracore".into(),
            compression: Compression::default(),
            // A few ms of linger lets concurrent appends share a produce request
            // without adding noticeable latency to a lone append.
            linger: Duration::from_millis(2),
            batch_bytes: 1_000_000,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            // Tansu (the test broker) completes a group join after about half
            // the session timeout, so keep it short; Kafka's own default is 45 s.
            session_timeout: Duration::from_secs(6),
            heartbeat_interval: Duration::from_millis(500),
            extra: Vec::new(),
        }
    }

    /// The configuration from `KAFKA_BOOTSTRAP_SERVERS` and the other
    /// `KAFKA_*` variables (see [`KafkaConfig::with_env`]); `None` when
    /// `KAFKA_BOOTSTRAP_SERVERS` is unset or empty.
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Overrides fields from whichever of these variables are set:
    /// `KAFKA_TOPIC_PREFIX`, `KAFKA_CLIENT_ID`, `KAFKA_COMPRESSION_TYPE`
    /// (none|lz4|zstd), `KAFKA_LINGER_MS`, `KAFKA_BATCH_SIZE`,
    /// `KAFKA_REQUEST_TIMEOUT_MS`, `KAFKA_CONNECT_TIMEOUT_MS`, `KAFKA_PROPERTIES`
    /// (`k=v,k=v`).
    pub fn with_env(self) -> Result<Self> {
        self.with_vars(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        match get("KAFKA_BOOTSTRAP_SERVERS").filter(|s| !s.trim().is_empty()) {
            Some(servers) => Ok(Some(KafkaConfig::new(servers.trim()).with_vars(get)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn with_vars(mut self, get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let millis = |name: &str, v: String| -> Result<Duration> {
            v.trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| {
                    Error::InvalidArgument(format!("{name}='{v}' is not a number of milliseconds"))
                })
        };
        if let Some(v) = get("KAFKA_TOPIC_PREFIX") {
            self.topic_prefix = v;
        }
        if let Some(v) = get("KAFKA_CLIENT_ID").filter(|v| !v.is_empty()) {
            self.client_id = v;
        }
        if let Some(v) = get("KAFKA_COMPRESSION_TYPE") {
            self.compression = v.parse()?;
        }
        if let Some(v) = get("KAFKA_LINGER_MS") {
            self.linger = millis("KAFKA_LINGER_MS", v)?;
        }
        if let Some(v) = get("KAFKA_BATCH_SIZE") {
            self.batch_bytes = v.trim().parse().map_err(|_| {
                Error::InvalidArgument(format!("KAFKA_BATCH_SIZE='{v}' is not a number of bytes"))
            })?;
        }
        if let Some(v) = get("KAFKA_REQUEST_TIMEOUT_MS") {
            self.request_timeout = millis("KAFKA_REQUEST_TIMEOUT_MS", v)?;
        }
        if let Some(v) = get("KAFKA_CONNECT_TIMEOUT_MS") {
            self.connect_timeout = millis("KAFKA_CONNECT_TIMEOUT_MS", v)?;
        }
        if let Some(v) = get("KAFKA_PROPERTIES") {
            self.extra.extend(parse_properties(&v)?);
        }
        Ok(self)
    }

    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.topic_prefix = prefix.into();
        self
    }

    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    pub fn with_batch_bytes(mut self, bytes: usize) -> Self {
        self.batch_bytes = bytes;
        self
    }

    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets any librdkafka property (applied after everything else).
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((key.into(), value.into()));
        self
    }

    /// Settings every client (producer, consumer, admin) shares.
    pub(crate) fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id)
            .set(
                "socket.timeout.ms",
                millis(self.request_timeout.max(MIN_TIMEOUT)),
            )
            // A broker that went away is retried within a second, not after
            // librdkafka's default 10 s back-off.
            .set("reconnect.backoff.max.ms", "1000")
            // Topics are created explicitly; a metadata look-up or an append
            // must never create one as a side effect.
            .set("allow.auto.create.topics", "false");
        c
    }

    /// Base settings plus the caller's extra properties, for helper clients
    /// (admin, metadata, offset look-ups).
    pub(crate) fn client(&self) -> ClientConfig {
        let mut c = self.base();
        self.apply_extra(&mut c, false);
        c
    }

    pub(crate) fn producer(&self) -> ClientConfig {
        let mut c = self.base();
        let timeout = millis(self.request_timeout.max(MIN_TIMEOUT));
        // Idempotence makes librdkafka's retries safe: a record is stored once
        // and in order per partition even when an ack is lost and the batch is resent.
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", self.compression.as_str())
            .set("linger.ms", millis(self.linger))
            .set("batch.size", self.batch_bytes.to_string())
            .set("request.timeout.ms", &timeout)
            .set("message.timeout.ms", &timeout);
        self.apply_extra(&mut c, true);
        c
    }

    pub(crate) fn consumer(&self, group: &str, auto_offset_reset: &str) -> ClientConfig {
        let mut c = self.base();
        // Offsets are committed only by an explicit commit, after the handler
        // returned: neither committed nor stored automatically.
        c.set("group.id", self.full(group))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", auto_offset_reset)
            .set("session.timeout.ms", millis(self.session_timeout))
            .set("heartbeat.interval.ms", millis(self.heartbeat_interval))
            .set("enable.partition.eof", "false");
        self.apply_extra(&mut c, false);
        c
    }

    /// A consumer outside any consumer group's life, for reading single
    /// records at an offset it is assigned. librdkafka's `assign` wants a
    /// `group.id`, but an assigned consumer never joins that group, and
    /// with nothing committed the brokers never store it. It reports the
    /// end of a partition at once and keeps little queued.
    pub(crate) fn lookup(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", self.full(LOOKUP_GROUP))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("queued.min.messages", "1")
            .set("fetch.wait.max.ms", "100");
        self.apply_extra(&mut c, false);
        c
    }

    /// The largest record the producer accepts (`message.max.bytes`).
    pub(crate) fn max_record_bytes(&self) -> usize {
        self.extra
            .iter()
            .rev()
            .find(|(k, _)| k == "message.max.bytes")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(1_000_000)
    }

    /// Applies the extra properties. Producer-only properties are skipped for
    /// other clients, where librdkafka would warn about them on every start.
    fn apply_extra(&self, c: &mut ClientConfig, producer: bool) {
        for (k, v) in &self.extra {
            if producer || !PRODUCER_ONLY.contains(&k.as_str()) {
                c.set(k, v);
            }
        }
    }

    /// The broker-side name of a topic or consumer group.
    pub(crate) fn full(&self, topic: &str) -> String {
        format!("{}{topic}", self.topic_prefix)
    }

    /// The unprefixed name, or `None` for topics and groups of other deployments.
    pub(crate) fn strip<'a>(&self, topic: &'a str) -> Option<&'a str> {
        topic.strip_prefix(self.topic_prefix.as_str())
    }
}

/// librdkafka rejects timeouts below this many milliseconds for some properties.
/// The `group.id` of the timestamp look-up consumer (assigned, never joined).
pub const LOOKUP_GROUP: &str = "ultracore-lookup";

const MIN_TIMEOUT: Duration = Duration::from_millis(1000);

const PRODUCER_ONLY: &[&str] = &[
    "acks",
    "linger.ms",
    "batch.size",
    "batch.num.messages",
    "compression.type",
    "compression.codec",
    "compression.level",
    "enable.idempotence",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "request.timeout.ms",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.ms",
    "retries",
    "partitioner",
];

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

/// Parses `k=v` pairs separated by commas or newlines; blank entries are ignored.
pub(crate) fn parse_properties(s: &str) -> Result<Vec<(String, String)>> {
    s.split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
            _ => Err(Error::InvalidArgument(format!(
                "Kafka property '{p}' is not of the form key=value"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn prefix_is_applied_and_stripped() {
        let c = KafkaConfig::new("h:1").with_prefix("prod.");
        assert_eq!(c.full("orders"), "prod.orders");
        assert_eq!(c.strip("prod.orders"), Some("orders"));
        assert_eq!(c.strip("staging.orders"), None);
        let none = KafkaConfig::new("h:1");
        assert_eq!(none.full("orders"), "orders");
        assert_eq!(none.strip("orders"), Some("orders"));
    }

    #[test]
    fn producer_is_idempotent_with_all_acks() {
        let c = KafkaConfig::new("h:1").producer();
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("compression.type"), Some("lz4"));
        assert_eq!(c.get("linger.ms"), Some("2"));
        assert_eq!(c.get("message.timeout.ms"), Some("30000"));
    }

    #[test]
    fn consumer_commits_only_when_told() {
        let c = KafkaConfig::new("h:1").consumer("g", "earliest");
        assert_eq!(c.get("group.id"), Some("g"));
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(c.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(c.get("session.timeout.ms"), Some("6000"));
        assert_eq!(c.get("heartbeat.interval.ms"), Some("500"));
    }

    #[test]
    fn groups_take_the_prefix() {
        let c = KafkaConfig::new("h:1").with_prefix("prod.");
        assert_eq!(
            c.consumer("optimization-service", "earliest")
                .get("group.id"),
            Some("prod.optimization-service")
        );
        assert_eq!(
            c.strip("prod.optimization-service"),
            Some("optimization-service")
        );
        assert_eq!(c.strip("staging.optimization-service"), None);
    }

    #[test]
    fn kafka_scheme_is_accepted() {
        assert_eq!(
            KafkaConfig::new("kafka://b1:9092,b2:9092/").bootstrap_servers,
            "b1:9092,b2:9092"
        );
    }

    #[test]
    fn compression_parses() {
        assert_eq!("LZ4".parse::<Compression>().unwrap(), Compression::Lz4);
        assert_eq!(" zstd ".parse::<Compression>().unwrap(), Compression::Zstd);
        assert_eq!("none".parse::<Compression>().unwrap(), Compression::None);
        let err = "gzip".parse::<Compression>().unwrap_err();
        assert!(err.to_string().contains("none, lz4 or zstd"), "{err}");
    }

    #[test]
    fn env_sets_every_field() {
        let c = KafkaConfig::from_vars(vars(&[
            ("KAFKA_BOOTSTRAP_SERVERS", " b:9092 "),
            ("KAFKA_TOPIC_PREFIX", "staging."),
            ("KAFKA_CLIENT_ID", "svc"),
            ("KAFKA_COMPRESSION_TYPE", "zstd"),
            ("KAFKA_LINGER_MS", "7"),
            ("KAFKA_BATCH_SIZE", "65536"),
            ("KAFKA_REQUEST_TIMEOUT_MS", "12000"),
            ("KAFKA_CONNECT_TIMEOUT_MS", "30000"),
            (
                "KAFKA_PROPERTIES",
                "security.protocol=ssl, fetch.wait.max.ms=50",
            ),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.bootstrap_servers, "b:9092");
        assert_eq!(c.topic_prefix, "staging.");
        assert_eq!(c.client_id, "svc");
        assert_eq!(c.compression, Compression::Zstd);
        assert_eq!(c.linger, Duration::from_millis(7));
        assert_eq!(c.batch_bytes, 65536);
        assert_eq!(c.request_timeout, Duration::from_secs(12));
        assert_eq!(c.connect_timeout, Duration::from_secs(30));
        assert_eq!(
            c.extra,
            vec![
                ("security.protocol".into(), "ssl".into()),
                ("fetch.wait.max.ms".into(), "50".into())
            ]
        );
        let p = c.producer();
        assert_eq!(p.get("security.protocol"), Some("ssl"));
        assert_eq!(p.get("request.timeout.ms"), Some("12000"));
    }

    #[test]
    fn env_without_servers_is_none() {
        assert_eq!(KafkaConfig::from_vars(vars(&[])).unwrap(), None);
        assert_eq!(
            KafkaConfig::from_vars(vars(&[("KAFKA_BOOTSTRAP_SERVERS", "  ")])).unwrap(),
            None
        );
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let err = KafkaConfig::new("h:1")
            .with_vars(vars(&[("KAFKA_LINGER_MS", "soon")]))
            .unwrap_err();
        assert!(err.to_string().contains("KAFKA_LINGER_MS='soon'"), "{err}");
        let err = KafkaConfig::new("h:1")
            .with_vars(vars(&[("KAFKA_PROPERTIES", "a=1,oops")]))
            .unwrap_err();
        assert!(err.to_string().contains("'oops'"), "{err}");
    }

    #[test]
    fn extra_properties_override_and_skip_other_clients() {
        let c = KafkaConfig::new("h:1")
            .with_property("linger.ms", "20")
            .with_property("client.rack", "r1")
            .with_property("message.max.bytes", "2000000");
        assert_eq!(c.producer().get("linger.ms"), Some("20"));
        assert_eq!(c.consumer("g", "latest").get("linger.ms"), None);
        assert_eq!(c.consumer("g", "latest").get("client.rack"), Some("r1"));
        assert_eq!(c.max_record_bytes(), 2_000_000);
        assert_eq!(KafkaConfig::new("h:1").max_record_bytes(), 1_000_000);
    }
}
