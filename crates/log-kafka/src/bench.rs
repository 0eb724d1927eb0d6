//! A bare rdkafka producer, the baseline `ultracore bench log --backend kafka`
//! measures our append path against in the same run.

use std::time::Instant;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use ultracore_log::Result;

use crate::error::map_topic_err;
use crate::KafkaConfig;

/// Records per second of a plain `FutureProducer` built from the same
/// settings as ours (idempotent, `acks=all`, same compression, linger and
/// batch size), sending `records` values of `size` bytes to `topic`
/// (unprefixed; it must exist) in windows of `batch` in-flight records, from
/// `producers` concurrent tasks each with its own key, exactly as the
/// benchmark drives our `append`.
///
/// The producer is connected and warmed up (one acknowledged record) before
/// the clock starts, as our `KafkaLog` is by `connect`.
pub async fn bare_producer_rate(
    config: &KafkaConfig,
    topic: &str,
    records: usize,
    size: usize,
    batch: usize,
    producers: usize,
) -> Result<f64> {
    let producer: FutureProducer = config.producer().create().map_err(crate::error::map_err)?;
    let full = config.full(topic);
    let value = vec![b'x'; size];
    let producers = producers.max(1);
    let batch = batch.max(1);
    producer
        .send(
            FutureRecord::to(&full).key("warm-up").payload(&value),
            Timeout::Never,
        )
        .await
        .map_err(|(e, _)| map_topic_err(e, topic))?;
    let per = records.div_ceil(producers);
    let start = Instant::now();
    // One spawned task per producer, as the benchmark drives our append, so
    // both sides get the same parallelism from the runtime.
    let tasks: Vec<_> = (0..producers)
        .map(|p| {
            let producer = producer.clone();
            let full = full.clone();
            let value = value.clone();
            let topic = topic.to_owned();
            tokio::spawn(async move {
                let key = format!("producer-{p}");
                let mut sent = 0;
                while sent < per {
                    let n = batch.min(per - sent);
                    let sends = (0..n).map(|_| {
                        producer.send(
                            FutureRecord::to(&full).key(&key).payload(&value),
                            Timeout::Never,
                        )
                    });
                    for r in futures::future::join_all(sends).await {
                        r.map_err(|(e, _)| map_topic_err(e, &topic))?;
                    }
                    sent += n;
                }
                Result::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await
            .map_err(|e| ultracore_log::Error::Kafka(format!("bench task failed: {e}")))??;
    }
    Ok((per * producers) as f64 / start.elapsed().as_secs_f64())
}
