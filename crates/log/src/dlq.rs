use crate::{
    Envelope, EventFamily, EventLog, EventLogExt, Header, NewRecord, Record, Result, TopicSpec,
};

/// Dead-letter topics are named `<topic>.dlq`.
pub const DLQ_SUFFIX: &str = ".dlq";

/// The dead-letter topic of `topic`.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}{DLQ_SUFFIX}")
}

/// A record that could not be handled, on its way to `<topic>.dlq`.
///
/// The original key, value and headers are kept byte for byte; headers
/// `dlq.reason`, `dlq.origin.topic` (the topic's name where it is stored,
/// e.g. with a Kafka topic prefix), `dlq.origin.logical_topic` (its name
/// in UltraCore), `dlq.origin.partition`, `dlq.origin.offset` and
/// `dlq.origin.timestamp` say why and where from, so an operator can fix
/// and replay it.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    pub record: &'a Record,
    pub reason: String,
}

impl<'a> DeadLetter<'a> {
    pub fn new(record: &'a Record, reason: impl Into<String>) -> Self {
        DeadLetter {
            record,
            reason: reason.into(),
        }
    }

    /// The record to append to the dead-letter topic, its origin named as
    /// the topic is stored: `physical_origin` (see
    /// [`EventLog::physical_topic`]).
    pub fn to_record(&self, physical_origin: &str) -> NewRecord {
        let r = self.record;
        let mut headers = r.headers.clone();
        headers.push(Header::new("dlq.reason", self.reason.clone()));
        headers.push(Header::new("dlq.origin.topic", physical_origin.to_owned()));
        headers.push(Header::new("dlq.origin.logical_topic", r.topic.clone()));
        headers.push(Header::new("dlq.origin.partition", r.partition.to_string()));
        headers.push(Header::new("dlq.origin.offset", r.offset.to_string()));
        headers.push(Header::new("dlq.origin.timestamp", r.timestamp.to_string()));
        NewRecord {
            key: r.key.clone(),
            value: r.value.clone(),
            headers,
            timestamp: None,
            partition: Some(0),
        }
    }

    /// Appends it to `<topic>.dlq` (a one-partition topic, created on first use,
    /// so dead letters keep one total order).
    pub async fn send<L: EventLog>(&self, log: &L) -> Result<()> {
        let topic = dlq_topic(&self.record.topic);
        log.ensure_topic(&TopicSpec::new(topic.clone(), 1)).await?;
        let origin = log.physical_topic(&self.record.topic);
        log.append(&topic, vec![self.to_record(&origin)]).await?;
        tracing::warn!(
            topic = %self.record.topic,
            partition = self.record.partition,
            offset = self.record.offset,
            reason = %self.reason,
            "record routed to dead-letter topic"
        );
        Ok(())
    }
}

/// Decodes a record into a typed envelope; a record that is not a valid
/// envelope of this family goes to the dead-letter topic and yields `None`,
/// so the consumer moves on. Errors only when the dead-letter append fails.
pub async fn decode_or_dead_letter<L: EventLog, E: EventFamily>(
    log: &L,
    record: &Record,
) -> Result<Option<Envelope<E>>> {
    match Envelope::<E>::from_record(record) {
        Ok(env) => Ok(Some(env)),
        Err(e) => {
            DeadLetter::new(record, e.to_string()).send(log).await?;
            Ok(None)
        }
    }
}
