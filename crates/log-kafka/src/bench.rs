//! A bare rdkafka producer, the baseline `ultracore bench log --backend kafka`
//! measures our append path against in the same run.

use std::time::Instant;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use ultracore_log::Result;

use crate::{map_err, KafkaConfig};

/// Records per second of a plain `FutureProducer` with the same settings as
/// ours, sending `records` values of `size` bytes to `topic` (unprefixed) in
/// windows of `batch` in-flight records, from `producers` concurrent tasks.
pub async fn bare_producer_rate(
    config: &KafkaConfig,
    topic: &str,
    records: usize,
    size: usize,
    batch: usize,
    producers: usize,
) -> Result<f64> {
    let producer: FutureProducer = config.producer().create().map_err(map_err)?;
    let full = config.full(topic);
    let value = vec![b'x'; size];
    let per = records.div_ceil(producers.max(1));
    let start = Instant::now();
    let tasks = (0..producers.max(1)).map(|p| {
        let producer = producer.clone();
        let full = full.clone();
        let value = value.clone();
        async move {
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
                    r.map_err(|(e, _)| map_err(e))?;
                }
                sent += n;
            }
            Result::Ok(())
        }
    });
    for r in futures::future::join_all(tasks).await {
        r?;
    }
    Ok((per * producers.max(1)) as f64 / start.elapsed().as_secs_f64())
}
