//! Our append path against a bare rdkafka producer with the same settings,
//! driven the way `ultracore bench log` drives them.
//!
//! ```text
//! ULTRACORE_TEST_KAFKA=127.0.0.1:19092 cargo run --release -p ultracore-log-kafka \
//!     --example append_vs_bare -- [records] [size] [batch] [producers]
//! ```

use std::time::Instant;

use ultracore_log::{EventLog, NewRecord, TopicSpec};
use ultracore_log_kafka::{bare_producer_rate, KafkaConfig, KafkaLog};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let arg = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let (records, size, batch, producers) = (arg(0, 200_000), arg(1, 200), arg(2, 1000), arg(3, 4));
    let servers = std::env::var("ULTRACORE_TEST_KAFKA")
        .or_else(|_| std::env::var("KAFKA_BOOTSTRAP_SERVERS"))
        .unwrap_or_else(|_| "127.0.0.1:19092".into());
    let log = KafkaLog::connect(KafkaConfig::new(servers).with_env()?).await?;
    let topic = format!("bench-{:08x}", std::process::id());
    log.create_topic(&TopicSpec::new(topic.clone(), 4)).await?;

    let per = records.div_ceil(producers);
    let start = Instant::now();
    let tasks: Vec<tokio::task::JoinHandle<ultracore_log::Result<()>>> = (0..producers)
        .map(|p| {
            let (log, topic) = (log.clone(), topic.clone());
            tokio::spawn(async move {
                let key = format!("producer-{p}").into_bytes();
                let mut sent = 0;
                while sent < per {
                    let n = batch.min(per - sent);
                    let recs: Vec<NewRecord> = (0..n)
                        .map(|_| NewRecord::new(key.clone(), vec![b'x'; size]))
                        .collect();
                    log.append(&topic, recs).await?;
                    sent += n;
                }
                ultracore_log::Result::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let ours = (per * producers) as f64 / start.elapsed().as_secs_f64();
    let bare = bare_producer_rate(log.config(), &topic, records, size, batch, producers).await?;
    println!(
        "ours {ours:.0} records/s, bare rdkafka {bare:.0} records/s, ratio {:.3}",
        ours / bare
    );
    Ok(())
}
