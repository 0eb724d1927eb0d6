//! Change capture onto Kafka (the test broker from `scripts/kafka-up.sh`,
//! address in `ULTRACORE_TEST_KAFKA`).

mod common;

use common::TestResult;
use ultracore_log_kafka::{KafkaConfig, KafkaLog};

/// The test broker. Unset is a failure, not a skip: this suite is part of the tests.
fn broker() -> String {
    std::env::var("ULTRACORE_TEST_KAFKA").unwrap_or_else(|_| {
        panic!(
            "ULTRACORE_TEST_KAFKA is not set: run scripts/test.sh, which starts a local \
             Kafka-protocol broker on 127.0.0.1:19092 and sets it"
        )
    })
}

/// A log under a topic prefix no other run uses.
async fn connect() -> KafkaLog {
    let prefix = format!("cdc{:08x}.", rand::random::<u32>());
    KafkaLog::connect(
        KafkaConfig::new(broker())
            .with_prefix(&prefix)
            .with_connect_timeout(std::time::Duration::from_secs(30)),
    )
    .await
    .expect("connect to the test broker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_streams_every_change() -> TestResult {
    common::streams_every_change(connect().await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_another_process_is_captured() -> TestResult {
    common::another_process_is_captured(connect().await).await
}
