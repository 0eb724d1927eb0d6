//! The shared conformance suite against a real Kafka-protocol broker.
//!
//! The broker address comes from `ULTRACORE_TEST_KAFKA` and the Python with
//! confluent-kafka from `ULTRACORE_TEST_PYTHON`; `scripts/test.sh` starts and
//! sets both. Without them these tests fail: the Kafka run is not optional.

use std::time::Duration;

use ultracore_log::testing::Harness;
use ultracore_log::Error;
use ultracore_log_kafka::{KafkaConfig, KafkaLog};

fn broker() -> String {
    std::env::var("ULTRACORE_TEST_KAFKA")
        .expect("ULTRACORE_TEST_KAFKA is not set: run scripts/test.sh, which starts a local broker and sets it")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Kafka {
    prefix: String,
}

impl Kafka {
    fn new() -> Self {
        // A per-run prefix also exercises KAFKA_TOPIC_PREFIX end to end.
        Kafka {
            prefix: format!("conf{:06x}.", rand::random::<u32>() & 0xff_ffff),
        }
    }
}

impl Harness for Kafka {
    type Log = KafkaLog;

    async fn open(&self) -> KafkaLog {
        KafkaLog::connect(KafkaConfig::new(broker()).with_prefix(self.prefix.clone()))
            .await
            .expect("connect to the test broker")
    }

    async fn restart(&self, log: KafkaLog) -> KafkaLog {
        drop(log);
        self.open().await
    }

    /// Tansu 0.6 with sqlite storage fails ListGroups (it cannot decode the
    /// group state it stored itself); a real Kafka cluster lists them.
    fn lists_groups(&self) -> bool {
        false
    }

    async fn write_foreign(&self, topic: &str, key: &[u8], value: &[u8]) {
        let python = std::env::var("ULTRACORE_TEST_PYTHON")
            .expect("ULTRACORE_TEST_PYTHON is not set: run scripts/test.sh, which prepares a Python with confluent-kafka");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/foreign_producer.py");
        let status = tokio::process::Command::new(python)
            .args([
                script,
                &broker(),
                &format!("{}{topic}", self.prefix),
                &hex(key),
                &hex(value),
            ])
            .status()
            .await
            .expect("run the Python producer");
        assert!(status.success(), "the confluent-kafka producer failed");
    }
}

ultracore_log::conformance_tests!(Kafka::new());

#[tokio::test]
async fn unreachable_broker_is_a_clear_error() {
    let mut config = KafkaConfig::new("127.0.0.1:1");
    config.connect_timeout = Duration::from_secs(2);
    let started = std::time::Instant::now();
    match KafkaLog::connect(config).await {
        Err(e @ Error::Unreachable { .. }) => assert!(e.to_string().contains("127.0.0.1:1"), "{e}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}
