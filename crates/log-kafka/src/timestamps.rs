//! The timestamp of one record ([`ultracore_log::EventLog::timestamp_at`]):
//! how old the oldest record a group has yet to handle is.
//!
//! Kafka has no request for "the timestamp of offset N" (ListOffsets goes
//! the other way), so the record is fetched: one helper consumer outside
//! any group (no `group.id`, nothing joined or committed) is assigned the
//! single partition at the offset, polls one message and is unassigned
//! again. It is created on first use and kept: a lag monitor asks every few
//! seconds, and a new librdkafka client per question would cost a
//! connection and a thread each time. Look-ups share it one at a time,
//! which is fine: the monitor caches answers per offset, records being
//! immutable.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::Producer as _;
use rdkafka::{Offset, TopicPartitionList};
use ultracore_log::{Error, Result};

use crate::error::{map_err, map_topic_err};
use crate::log::{blocking, KafkaLog};

/// The longest one look-up waits for its record, whatever the request timeout.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The helper consumer, created on first use.
#[derive(Default)]
pub(crate) struct Lookup(Mutex<Option<BaseConsumer>>);

pub(crate) async fn timestamp_at(
    log: &KafkaLog,
    topic: &str,
    partition: u32,
    offset: u64,
) -> Result<Option<i64>> {
    let this = log.clone();
    let topic = topic.to_owned();
    blocking(move || {
        let config = &this.inner.config;
        let full = config.full(&topic);
        let Ok(wanted) = i64::try_from(offset) else {
            return Ok(None);
        };
        // The watermarks first: an offset with no record answers `None` at
        // once instead of waiting out the timeout for a record that never comes.
        let (low, high) = this
            .inner
            .producer()
            .client()
            .fetch_watermarks(&full, partition as i32, config.request_timeout)
            .map_err(|e| map_topic_err(e, &topic))?;
        if wanted < low.max(0) || wanted >= high {
            return Ok(None);
        }
        let mut slot = this.inner.lookup.0.lock().unwrap_or_else(|e| e.into_inner());
        let consumer = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(config.lookup().create().map_err(map_err)?),
        };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&full, partition as i32, Offset::Offset(wanted))
            .map_err(map_err)?;
        consumer.assign(&tpl).map_err(map_err)?;
        let deadline = Instant::now() + config.request_timeout.min(LOOKUP_TIMEOUT);
        let found = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(Error::Unavailable(format!(
                    "the record at {topic}/{partition}@{offset} did not arrive within {:?}",
                    config.request_timeout.min(LOOKUP_TIMEOUT)
                )));
            }
            match consumer.poll(left) {
                None => {}
                // A message of an earlier assignment that was still queued
                // is not the one asked for; neither is one before it.
                Some(Ok(m)) if m.topic() != full || m.partition() != partition as i32 => {}
                Some(Ok(m)) if m.offset() < wanted => {}
                // At or after the offset: the record itself, or the first
                // one left when it is gone (compaction, a transaction marker).
                Some(Ok(m)) => break Ok(m.timestamp().to_millis()),
                Some(Err(KafkaError::PartitionEOF(p))) if p == partition as i32 => break Ok(None),
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => break Err(map_topic_err(e, &topic)),
            }
        };
        // Unassigned, so it fetches nothing in the background until the next look-up.
        if let Err(e) = consumer.unassign() {
            tracing::debug!(error = %e, "unassigning the timestamp look-up consumer failed; replacing it");
            slot.take();
        }
        found
    })
    .await
}
