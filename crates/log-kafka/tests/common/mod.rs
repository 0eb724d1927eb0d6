//! What every Kafka test needs: the broker address and a unique topic prefix.
#![allow(dead_code)]

use ultracore_log_kafka::{KafkaConfig, KafkaLog};

/// The test broker, from `ULTRACORE_TEST_KAFKA`. Unset is a failure, not a
/// skip: the Kafka run is part of the test suite.
pub fn broker() -> String {
    std::env::var("ULTRACORE_TEST_KAFKA").unwrap_or_else(|_| {
        panic!(
            "ULTRACORE_TEST_KAFKA is not set: run scripts/test.sh, which starts a local \
             Kafka-protocol broker on 127.0.0.1:19092 and sets it (or set it to a broker's host:port)"
        )
    })
}

/// The Python interpreter with confluent-kafka, from `ULTRACORE_TEST_PYTHON`.
pub fn python() -> String {
    std::env::var("ULTRACORE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "ULTRACORE_TEST_PYTHON is not set: run scripts/test.sh, which prepares a Python \
             venv with confluent-kafka (scripts/python-env.sh prints its path)"
        )
    })
}

/// A topic prefix no other test run uses, so runs against one broker never
/// see each other's topics (and the prefix is exercised end to end).
pub fn prefix() -> String {
    format!("t{:08x}.", rand::random::<u32>())
}

pub async fn connect(prefix: &str) -> KafkaLog {
    // The test broker shares two cores with the whole suite: give its first
    // metadata answer more than the 5 s a deployment would.
    KafkaLog::connect(
        KafkaConfig::new(broker())
            .with_prefix(prefix)
            .with_connect_timeout(std::time::Duration::from_secs(30)),
    )
    .await
    .expect("connect to the test broker")
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
