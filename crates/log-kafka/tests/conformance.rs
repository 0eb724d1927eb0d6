//! The shared conformance suite against a real Kafka-protocol broker.
//!
//! The broker address comes from `ULTRACORE_TEST_KAFKA` and the Python with
//! confluent-kafka from `ULTRACORE_TEST_PYTHON`; `scripts/test.sh` starts and
//! sets both. Without them these tests fail: the Kafka run is not optional.

mod common;

use ultracore_log::testing::Harness;
use ultracore_log_kafka::KafkaLog;

struct Kafka {
    prefix: String,
}

impl Harness for Kafka {
    type Log = KafkaLog;

    async fn open(&self) -> KafkaLog {
        common::connect(&self.prefix).await
    }

    async fn restart(&self, log: KafkaLog) -> KafkaLog {
        drop(log);
        self.open().await
    }

    /// Writes with confluent-kafka (Python), a Kafka client that is not ours.
    async fn write_foreign(&self, topic: &str, key: &[u8], value: &[u8]) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/foreign_producer.py");
        let output = tokio::process::Command::new(common::python())
            .args([
                script,
                &common::broker(),
                &format!("{}{topic}", self.prefix),
                &common::hex(key),
                &common::hex(value),
            ])
            .output()
            .await
            .expect("run the Python producer");
        assert!(
            output.status.success(),
            "the confluent-kafka producer failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

ultracore_log::conformance_tests!(Kafka {
    prefix: common::prefix()
});
