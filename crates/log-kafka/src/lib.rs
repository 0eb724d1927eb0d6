//! The Kafka backend of the event log, through librdkafka (`rdkafka`): the
//! client most Kafka users run. This is the only crate that links it.
//!
//! - Producer: idempotent, `acks=all`, compression and batching configurable.
//!   The partition is computed here with Kafka's murmur2 (as the Java client
//!   does), so every producer agrees on where a key lives; an append returns
//!   only once every record of the batch is acknowledged.
//! - Consumers: one librdkafka consumer per member, auto-commit off: offsets
//!   are committed only when the caller says the records are handled. Seek by
//!   offset or time, applied to partitions as the group assigns them.
//! - Topic names carry `KAFKA_TOPIC_PREFIX` transparently: callers use the
//!   unprefixed names and never see other deployments' topics.
//! - A broker that cannot be reached is [`ultracore_log::Error::Unreachable`]
//!   at [`KafkaLog::connect`], naming the address; there is no fallback.
//!
//! Blocking librdkafka calls (metadata, watermarks, commits, offset
//! and timestamp look-ups, group listing) run on `spawn_blocking`, never on the async workers.
//!
//! Tested against Tansu 0.6 (`scripts/kafka-up.sh`); where it differs from
//! Apache Kafka the workaround is documented at the call site (timestamp
//! look-ups past the end in `consumer`, group listing in `groups`).
//!
//! # Layout
//!
//! - `config`: [`KafkaConfig`] (defaults, `KAFKA_*` variables, librdkafka properties).
//! - `log`: [`KafkaLog`]: connect, and the [`ultracore_log::EventLog`] impl.
//! - `producer`: the append path and the partition-count cache.
//! - `admin`: topic creation and description, consumer lag.
//! - `groups`: listing consumer groups.
//! - `consumer`: [`KafkaConsumer`], a consumer group member.
//! - `timestamps`: the timestamp of one record, through a consumer outside any group.
//! - `error`: librdkafka errors mapped onto [`ultracore_log::Error`].
//! - `bench`: a bare rdkafka producer to compare our append path against.

mod admin;
mod bench;
mod config;
mod consumer;
mod error;
// The one module with `unsafe`: a librdkafka admin call rdkafka does not wrap.
#[allow(unsafe_code)]
mod groups;
mod log;
mod producer;
mod timestamps;

pub use bench::bare_producer_rate;
pub use config::{Compression, KafkaConfig, LOOKUP_GROUP};
pub use consumer::KafkaConsumer;
pub use log::KafkaLog;
