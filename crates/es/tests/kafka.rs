//! The event store on Kafka (the test broker from `scripts/kafka-up.sh`,
//! address in `ULTRACORE_TEST_KAFKA`). No transactions are used: the broker
//! serves none. The read models are in SQLite here: `tests/embedded.rs`
//! runs the same scenarios on both databases.

mod common;

use common::{Backend, TestResult};
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

/// A topic prefix no other run uses.
fn prefix() -> String {
    format!("es{:08x}.", rand::random::<u32>())
}

async fn connect(prefix: &str) -> KafkaLog {
    // The test broker shares two cores with the whole suite.
    KafkaLog::connect(
        KafkaConfig::new(broker())
            .with_prefix(prefix)
            .with_connect_timeout(std::time::Duration::from_secs(30)),
    )
    .await
    .expect("connect to the test broker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_concurrent_saves_one_wins() -> TestResult {
    common::concurrent_saves_one_wins(connect(&prefix()).await, Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_two_writers_one_wins() -> TestResult {
    // Two connections, two stores, two databases: as two processes.
    let p = prefix();
    common::two_writers_one_wins(
        connect(&p).await,
        connect(&p).await,
        "acc-k2",
        Backend::Sqlite,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_idempotent_appends_and_upcasting() -> TestResult {
    let log = connect(&prefix()).await;
    common::idempotent_appends(log.clone(), Backend::Sqlite).await?;
    common::upcasts_v1_events(log, Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_load_snapshots_time_travel() -> TestResult {
    let log = connect(&prefix()).await;
    common::load_handle_save(log.clone(), Backend::Sqlite).await?;
    common::time_travel(log, Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_writer_ownership_follows_the_group() -> TestResult {
    let p = prefix();
    common::ownership_splits_partitions(connect(&p).await, connect(&p).await, Backend::Sqlite).await
}
