//! The Kafka backend of the event log, through librdkafka (`rdkafka`): the
//! client most Kafka users run. This is the only crate that links it.
//!
//! Producer: idempotent, `acks=all`, compression and batching configurable;
//! the partition is computed here with Kafka's murmur2 (as the Java client),
//! so every producer agrees. Consumers: one librdkafka consumer per member,
//! auto-commit off (offsets are committed only when the caller says the
//! records are handled), seek by offset or time. Topic names carry
//! `KAFKA_TOPIC_PREFIX` transparently.
//!
//! Blocking librdkafka calls (metadata, watermarks, commits, offset
//! look-ups) run on `spawn_blocking`, never on the async workers.
//!
//! # Layout
//!
//! - `config`: [`KafkaConfig`].
//! - `log`: [`KafkaLog`]: connect, admin, produce, lag.
//! - `consumer`: [`KafkaConsumer`].
//! - `bench`: a bare rdkafka producer to compare our path against.

mod bench;
mod config;
mod consumer;
mod log;

pub use bench::bare_producer_rate;
pub use config::{Compression, KafkaConfig};
pub use consumer::KafkaConsumer;
pub use log::KafkaLog;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use ultracore_log::Error;

/// Maps a librdkafka error to the log's error, keeping its message.
pub(crate) fn map_err(e: KafkaError) -> Error {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            Error::UnknownTopic(e.to_string())
        }
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => Error::InvalidArgument(e.to_string()),
        _ => Error::Kafka(e.to_string()),
    }
}
