//! `ultracore bench log`: append throughput and acknowledgement latency of the event log.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use futures::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use ultracore_log::{EventLog, EventLogExt, NewRecord, TopicSpec};
use ultracore_log_any::{Access, AnyLog, LogConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    Embedded,
    Kafka,
}

#[derive(Debug, Args)]
pub struct LogBench {
    #[arg(long, value_enum, default_value = "embedded")]
    backend: BackendChoice,
    /// Records in the throughput phase.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 200)]
    size: usize,
    /// Records per append call in the throughput phase.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Concurrent producers in the throughput phase.
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// Offered single-record appends per second in the latency phase (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Length of the latency phase.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Partitions of the benchmark topic.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Embedded backend: where to write (default: a fresh directory under the data dir, deleted afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

struct Phase {
    records_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

pub async fn run(config: &LogConfig, b: LogBench) -> Result<()> {
    if b.size == 0 || b.events == 0 || b.batch == 0 || b.producers == 0 {
        bail!("--events, --size, --batch and --producers must be positive");
    }
    let mut config = config.clone();
    let mut cleanup = None;
    match b.backend {
        BackendChoice::Embedded => {
            let dir = b.dir.clone().unwrap_or_else(|| {
                config
                    .data_dir()
                    .join(format!("bench-{}", std::process::id()))
            });
            if b.dir.is_none() {
                cleanup = Some(dir.clone());
            }
            config = LogConfig {
                url: Some(format!("file://{}", std::path::absolute(&dir)?.display())),
                ..config
            };
        }
        BackendChoice::Kafka => {
            if config.bootstrap_servers.is_none()
                && !config
                    .url
                    .as_deref()
                    .is_some_and(|u| u.starts_with("kafka://"))
            {
                bail!("--backend kafka needs a broker: set KAFKA_BOOTSTRAP_SERVERS=host:port or --log kafka://host:port");
            }
            config.store_type = Some("kafka".into());
        }
    }
    let log = AnyLog::open(&config, Access::Write).await?;
    let topic = format!("bench-log-{}", uuid::Uuid::now_v7().simple());
    log.ensure_topic(&TopicSpec::new(topic.clone(), b.partitions))
        .await?;
    if !b.json {
        eprintln!(
            "bench log: {} backend, {} records of {} bytes, batches of {}, {} producers",
            log.kind(),
            b.events,
            b.size,
            b.batch,
            b.producers
        );
    }
    let throughput = throughput_phase(&log, &topic, &b).await?;
    // Kafka: a bare rdkafka producer with the same settings, same run, same topic.
    let bare = match &log {
        AnyLog::Kafka(k) => Some(
            ultracore_log_kafka::bare_producer_rate(
                k.config(),
                &topic,
                b.events,
                b.size,
                b.batch,
                b.producers,
            )
            .await?,
        ),
        AnyLog::Embedded(_) => None,
    };
    let latency = if b.rate > 0 {
        Some(latency_phase(&log, &topic, &b).await?)
    } else {
        None
    };
    let result = json!({
        "backend": log.kind(),
        "size": b.size,
        "durable": true,
        "sync": match &log {
            AnyLog::Embedded(_) => Some(std::env::var("ULTRACORE_SYNC_MODE").unwrap_or_else(|_| "auto".into())),
            AnyLog::Kafka(_) => None,
        },
        "records_per_sec": throughput.records_per_sec.round(),
        "p50_ms": latency.as_ref().map_or(throughput.p50_ms, |l| l.p50_ms),
        "p99_ms": latency.as_ref().map_or(throughput.p99_ms, |l| l.p99_ms),
        "events": b.events,
        "batch": b.batch,
        "producers": b.producers,
        "partitions": b.partitions,
        "batch_p50_ms": throughput.p50_ms,
        "batch_p99_ms": throughput.p99_ms,
        "offered_rate": b.rate,
        "achieved_rate": latency.as_ref().map(|l| l.records_per_sec.round()),
        "latency_max_ms": latency.as_ref().map(|l| l.max_ms),
        "bare_rdkafka_records_per_sec": bare.map(f64::round),
        "ratio_vs_bare": bare.map(|r| (throughput.records_per_sec / r * 1000.0).round() / 1000.0),
    });
    drop(log);
    if let Some(dir) = cleanup {
        let _ = std::fs::remove_dir_all(dir);
    }
    if b.json {
        println!("{result}");
    } else {
        println!(
            "throughput: {:>12.0} records/s  (append of {} records: p50 {:.3} ms, p99 {:.3} ms)",
            throughput.records_per_sec, b.batch, throughput.p50_ms, throughput.p99_ms
        );
        if let Some(bare) = bare {
            println!("bare rdkafka producer, same settings: {bare:>12.0} records/s  (ours / bare = {:.3})", throughput.records_per_sec / bare);
        }
        if let Some(l) = latency {
            println!("latency at {} records/s offered ({:.0} achieved): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                b.rate, l.records_per_sec, l.p50_ms, l.p99_ms, l.max_ms);
        }
    }
    Ok(())
}

async fn throughput_phase(log: &AnyLog, topic: &str, b: &LogBench) -> Result<Phase> {
    let value: Arc<Vec<u8>> = Arc::new(vec![b'x'; b.size]);
    let per_producer = b.events.div_ceil(b.producers);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..b.producers {
        let log = log.clone();
        let topic = topic.to_owned();
        let value = value.clone();
        let batch = b.batch;
        let total = per_producer.min(b.events - (p * per_producer).min(b.events));
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let mut sent = 0;
            let key = format!("producer-{p}").into_bytes();
            while sent < total {
                let n = batch.min(total - sent);
                let records: Vec<NewRecord> = (0..n)
                    .map(|_| NewRecord {
                        key: Some(key.clone()),
                        value: value.to_vec(),
                        ..Default::default()
                    })
                    .collect();
                let t = Instant::now();
                log.append(&topic, records).await?;
                hist.record(t.elapsed().as_micros() as u64).ok();
                sent += n;
            }
            anyhow::Ok(hist)
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    for t in tasks {
        hist.add(t.await??)?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(Phase {
        records_per_sec: b.events as f64 / elapsed,
        p50_ms: ms(&hist, 0.5),
        p99_ms: ms(&hist, 0.99),
        max_ms: ms(&hist, 1.0),
    })
}

/// Open loop: appends are started every millisecond whether or not earlier
/// ones finished (a stall cannot lower the offered load), and each append's
/// latency runs from the moment it was issued to its durable acknowledgement.
async fn latency_phase(log: &AnyLog, topic: &str, b: &LogBench) -> Result<Phase> {
    const PRODUCERS: u64 = 8;
    let per_ms = b.rate as f64 / 1000.0 / PRODUCERS as f64;
    let duration = Duration::from_secs(b.seconds);
    let value = vec![b'y'; b.size];
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let log = log.clone();
        let topic = topic.to_owned();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let mut inflight = FuturesUnordered::new();
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let (mut owed, mut sent) = (0.0f64, 0u64);
            let key = format!("latency-{p}").into_bytes();
            loop {
                tokio::select! {
                    _ = tick.tick(), if start.elapsed() < duration => {
                        owed += per_ms;
                        while owed >= 1.0 {
                            owed -= 1.0;
                            sent += 1;
                            let log = log.clone();
                            let topic = topic.clone();
                            let record = NewRecord { key: Some(key.clone()), value: value.clone(), ..Default::default() };
                            let issued = Instant::now();
                            inflight.push(async move {
                                log.append(&topic, vec![record]).await.map(|_| issued.elapsed())
                            });
                        }
                    }
                    Some(done) = inflight.next() => {
                        hist.record(done?.as_micros() as u64).ok();
                    }
                    else => break,
                }
            }
            anyhow::Ok((hist, sent))
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    let mut total = 0;
    for t in tasks {
        let (h, n) = t.await??;
        hist.add(h)?;
        total += n;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(Phase {
        records_per_sec: total as f64 / elapsed,
        p50_ms: ms(&hist, 0.5),
        p99_ms: ms(&hist, 0.99),
        max_ms: ms(&hist, 1.0),
    })
}
