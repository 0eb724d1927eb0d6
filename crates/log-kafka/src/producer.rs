//! The append path: partition choice, one produce call per record, and
//! waiting for every acknowledgement of the batch.

use std::sync::atomic::Ordering;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KHeader, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use ultracore_log::{partition_for_key, Appended, Error, NewRecord, Result};

use crate::error::map_topic_err;
use crate::log::{blocking, KafkaLog};

/// Appends `records` to `topic` and returns where each landed, in input order.
pub(crate) async fn append(
    log: &KafkaLog,
    topic: &str,
    records: Vec<NewRecord>,
) -> Result<Vec<Appended>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let mut n = partition_count(log, topic, false).await?;
    let highest = records.iter().filter_map(|r| r.partition).max();
    if highest.is_some_and(|p| p >= n) {
        // The topic may have grown since the count was cached.
        n = partition_count(log, topic, true).await?;
    }
    if let Some(p) = highest.filter(|p| *p >= n) {
        return Err(Error::UnknownPartition {
            topic: topic.to_owned(),
            partition: p,
            partitions: n,
        });
    }
    let inner = &log.inner;
    let producer = inner.producer();
    let full = inner.config.full(topic);
    // Every record is handed to librdkafka before any acknowledgement is
    // awaited (join_all polls each send once, in order, before waiting), so
    // the batch travels in as few produce requests as librdkafka can make,
    // and per partition in input order. Idempotence keeps that order across
    // retries.
    let sends = records.iter().map(|r| {
        let partition = match (r.partition, &r.key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for_key(k, n),
            (None, None) => inner.round_robin.fetch_add(1, Ordering::Relaxed) % n,
        };
        let mut rec = FutureRecord::<[u8], [u8]>::to(&full).partition(partition as i32);
        // An empty value is a tombstone: Kafka's null value, which compaction
        // and every Kafka client (Debezium's consumers among them) read as one.
        if !r.value.is_empty() {
            rec = rec.payload(r.value.as_slice());
        }
        if let Some(k) = &r.key {
            rec = rec.key(k.as_slice());
        }
        if let Some(ts) = r.timestamp {
            rec = rec.timestamp(ts);
        }
        // librdkafka allocates a header list per record; skip it when there is none.
        if !r.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for h in &r.headers {
                headers = headers.insert(KHeader {
                    key: h.key.as_str(),
                    value: Some(h.value.as_slice()),
                });
            }
            rec = rec.headers(headers);
        }
        // Timeout::Never: a full local queue waits (back-pressure) instead of
        // failing; message.timeout.ms still bounds each record's delivery.
        producer.send(rec, Timeout::Never)
    });
    let results = futures::future::join_all(sends).await;
    let mut out = Vec::with_capacity(results.len());
    for (result, rec) in results.into_iter().zip(&records) {
        match result {
            Ok(d) => out.push(Appended {
                partition: d.partition as u32,
                offset: d.offset as u64,
                // librdkafka stamps records without a timestamp at produce time
                // and reports that stamp here.
                timestamp: d
                    .timestamp
                    .to_millis()
                    .or(rec.timestamp)
                    .unwrap_or_else(ultracore_log::now_millis),
            }),
            Err((e, _)) => {
                note_state_error(log, &producer, &e);
                return Err(append_error(log, topic, rec, e));
            }
        }
    }
    inner.state_errors.store(0, Ordering::Relaxed);
    tracing::trace!(topic, records = out.len(), "appended");
    Ok(out)
}

/// Failed appends in a row, by errors of the producer's state, after which
/// the producer is replaced.
const STATE_ERRORS_BEFORE_REPLACING: u32 = 3;

/// Whether `e` says the producer's idempotence state is rejected, so that
/// retrying with the same producer cannot succeed: librdkafka's fatal
/// errors, a sequence, id or epoch the broker refuses, or the broker's
/// generic failure (a Kafka-protocol broker that lost part of its producer
/// state in a crash answers every produce of that producer so).
fn state_error(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Fatal
                | RDKafkaErrorCode::Unknown
                | RDKafkaErrorCode::OutOfOrderSequenceNumber
                | RDKafkaErrorCode::UnknownProducerId
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::ProducerFenced
        )
    )
}

/// Counts an append failed by `e` on `producer`; replaces the producer at
/// once on a fatal error, or after a few state errors in a row.
fn note_state_error(log: &KafkaLog, producer: &FutureProducer, e: &KafkaError) {
    let inner = &log.inner;
    let fatal = producer.client().fatal_error();
    if fatal.is_none() && !state_error(e) {
        return;
    }
    let n = inner.state_errors.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some((code, reason)) = fatal {
        inner.replace_producer(&format!("fatal error {code:?}: {reason}"));
    } else if n >= STATE_ERRORS_BEFORE_REPLACING {
        inner.replace_producer(&format!("{n} appends in a row failed: {e}"));
    }
}

fn append_error(log: &KafkaLog, topic: &str, rec: &NewRecord, e: KafkaError) -> Error {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => Error::RecordTooLarge {
            size: rec.key.as_ref().map_or(0, Vec::len)
                + rec.value.len()
                + rec
                    .headers
                    .iter()
                    .map(|h| h.key.len() + h.value.len())
                    .sum::<usize>(),
            max: log.inner.config.max_record_bytes(),
        },
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            // Deleted (or shrunk) behind our back: forget the cached count.
            log.inner
                .partitions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(topic);
            map_topic_err(e, topic)
        }
        _ => map_topic_err(e, topic),
    }
}

/// Partitions of a topic, cached; `refresh` re-reads the cluster metadata.
/// [`Error::UnknownTopic`] when the topic does not exist.
pub(crate) async fn partition_count(log: &KafkaLog, topic: &str, refresh: bool) -> Result<u32> {
    if !refresh {
        let cached = log
            .inner
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .copied();
        if let Some(n) = cached {
            return Ok(n);
        }
    }
    let n = partition_ids(log, topic).await?.len() as u32;
    log.inner
        .partitions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(topic.to_owned(), n);
    Ok(n)
}

/// Partition ids of a topic from the cluster metadata, sorted.
pub(crate) async fn partition_ids(log: &KafkaLog, topic: &str) -> Result<Vec<u32>> {
    let this = log.clone();
    let full = log.inner.config.full(topic);
    let name = topic.to_owned();
    blocking(move || {
        let md = this
            .inner
            .producer()
            .client()
            .fetch_metadata(Some(&full), this.inner.config.request_timeout)
            .map_err(|e| map_topic_err(e, &name))?;
        let t = md
            .topics()
            .iter()
            .find(|t| t.name() == full)
            .ok_or_else(|| Error::UnknownTopic(name.clone()))?;
        if t.error().is_some() || t.partitions().is_empty() {
            return Err(Error::UnknownTopic(name));
        }
        let mut ids: Vec<u32> = t.partitions().iter().map(|p| p.id() as u32).collect();
        ids.sort_unstable();
        Ok(ids)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KafkaConfig;

    #[test]
    fn state_errors_are_told_from_transient_ones() {
        for code in [
            RDKafkaErrorCode::Unknown,
            RDKafkaErrorCode::OutOfOrderSequenceNumber,
            RDKafkaErrorCode::UnknownProducerId,
            RDKafkaErrorCode::Fatal,
        ] {
            assert!(
                state_error(&KafkaError::MessageProduction(code)),
                "{code:?}"
            );
        }
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::NotLeaderForPartition,
        ] {
            assert!(
                !state_error(&KafkaError::MessageProduction(code)),
                "{code:?}"
            );
        }
    }

    #[test]
    fn a_replaced_producer_is_a_new_client() {
        let log = KafkaLog::connect_lazy(KafkaConfig::new("127.0.0.1:1")).unwrap();
        log.inner.state_errors.store(2, Ordering::Relaxed);
        let before = log.inner.producer().client().native_ptr() as usize;
        log.inner.replace_producer("a test");
        let after = log.inner.producer().client().native_ptr() as usize;
        assert_ne!(before, after);
        assert_eq!(log.inner.state_errors.load(Ordering::Relaxed), 0);
    }
}
