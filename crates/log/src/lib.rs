//! The event log: one small, Kafka-shaped trait that every UltraCore service
//! reads and writes through, and the record and envelope types that travel on it.
//!
//! Two backends implement [`EventLog`]: the embedded, durable single-node log
//! (`ultracore-log-embedded`, the default) and Apache Kafka through librdkafka
//! (`ultracore-log-kafka`). Both pass the same conformance suite, exported
//! from this crate under the `testing` feature.
//!
//! # Layout
//!
//! - `record`: what goes in ([`NewRecord`]) and what comes out ([`Record`]),
//!   headers, timestamps, topic specs and descriptions.
//! - `log`: the [`EventLog`] and [`Consumer`] traits and their guarantees.
//! - `partition`: the key → partition hash (Kafka's murmur2, so Java, Python and
//!   Rust producers agree on where a key lives).
//! - `envelope`: the JSON [`Envelope`] every record's value carries, and the
//!   [`EventFamily`] trait for typed payloads with upcasting.
//! - `publish`: fire-and-forget [`Publisher`] for events a caller must not wait for.
//! - `read`: [`read_to_end`], a topic up to the end it had when the read began.
//! - `dlq`: routing undecodable records to `<topic>.dlq` with the reason.
//! - `error`: the crate's [`Error`].
//! - `files`: creating data files and directories only their owner can read.
//! - `testing` (feature): the conformance suite.

mod dlq;
mod envelope;
mod error;
pub mod files;
mod log;
mod partition;
mod publish;
mod read;
mod record;
#[cfg(feature = "testing")]
pub mod testing;

pub use dlq::{decode_or_dead_letter, dlq_topic, DeadLetter, DLQ_SUFFIX};
pub use envelope::{
    derive_event_id, payload_as, DecodeError, Envelope, EnvelopeBuilder, EventFamily, RawEnvelope,
    EVENT_ID_NAMESPACE,
};
pub use error::{Error, Result};
pub use log::{Consumer, ConsumerOptions, EventLog, EventLogExt};
pub use partition::{murmur2, partition_for_key};
pub use publish::{PublishError, PublishReport, Publisher, PublisherOptions};
pub use read::{read_to_end, ReadToEnd};
pub use record::{
    now_millis, Appended, GroupLag, Header, NewRecord, PartitionInfo, Position, Record, Retention,
    Seek, StartFrom, TopicInfo, TopicPartition, TopicSpec,
};
