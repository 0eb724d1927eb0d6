//! `ultracore demo`: publishes a handful of events to the log, reads them
//! back as a consumer group and prints them.

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use serde_json::json;
use ultracore_log::{
    Consumer, ConsumerOptions, EnvelopeBuilder, EventLog, EventLogExt, RawEnvelope, Record,
    TopicSpec,
};
use ultracore_log_any::{Access, AnyLog};

use crate::output::{clip, table};
use crate::LogArgs;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print each event envelope as one JSON line instead of tables.
    #[arg(long)]
    json: bool,
}

const TOPIC: &str = "etf-data-events";

/// The five US factor ETFs of the shipped sample data (daily closes,
/// 2014-01-02 to 2022-12-28, from the skfolio data sets, compiled from Yahoo Finance).
const ETFS: [(&str, &str); 5] = [
    ("MTUM", "iShares MSCI USA Momentum Factor ETF"),
    ("QUAL", "iShares MSCI USA Quality Factor ETF"),
    ("SIZE", "iShares MSCI USA Size Factor ETF"),
    ("USMV", "iShares MSCI USA Min Vol Factor ETF"),
    ("VLUE", "iShares MSCI USA Value Factor ETF"),
];

pub async fn run(args: &LogArgs, demo: DemoArgs) -> Result<()> {
    let config = args.config();
    let log = AnyLog::open(&config, Access::Write).await?;
    log.ensure_topic(&TopicSpec::new(TOPIC, 3)).await?;
    let correlation = uuid::Uuid::now_v7().to_string();
    let records = ETFS
        .iter()
        .map(|(ticker, name)| {
            EnvelopeBuilder::new("Etf", *ticker)
                .correlation_id(correlation.clone())
                .build_raw(
                    "etf_data_collected",
                    1,
                    json!({
                        "ticker": ticker, "name": name, "source": "skfolio factors dataset (Yahoo Finance)",
                        "first_date": "2014-01-02", "last_date": "2022-12-28", "rows": 2264, "field": "close",
                    }),
                )
                .to_record()
        })
        .collect();
    let acks = log.append(TOPIC, records).await?;
    if !demo.json {
        println!("Published {} etf_data_collected events to '{TOPIC}' on the {} log (durable before acknowledged).\n", acks.len(), log.kind());
    }

    // Read them back as a consumer group: committed offsets make a rerun print only new events.
    let mut consumer = log
        .consumer(ConsumerOptions::new("demo-reader", [TOPIC]))
        .await?;
    let mut mine: Vec<Record> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while mine.len() < acks.len() && tokio::time::Instant::now() < deadline {
        for r in consumer.poll(100, Duration::from_millis(500)).await? {
            consumer.commit(&[r.next_position()]).await?;
            let ours = RawEnvelope::from_bytes(&r.value)
                .is_ok_and(|e| e.correlation_id.as_deref() == Some(correlation.as_str()));
            if ours {
                mine.push(r);
            }
        }
    }
    if demo.json {
        for r in &mine {
            println!("{}", String::from_utf8_lossy(&r.value));
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = mine
        .iter()
        .filter_map(|r| RawEnvelope::from_bytes(&r.value).ok().map(|e| (r, e)))
        .map(|(r, e)| {
            vec![
                r.partition.to_string(),
                r.offset.to_string(),
                e.event_type,
                format!("{}/{}", e.aggregate_type, e.aggregate_id),
                clip(e.payload["name"].as_str().unwrap_or(""), 40),
                e.payload["rows"].to_string(),
                e.event_id.to_string(),
            ]
        })
        .collect();
    println!("Consumed by group 'demo-reader':");
    print!(
        "{}",
        table(
            &[
                ">partition",
                ">offset",
                "event_type",
                "aggregate",
                "name",
                ">rows",
                "event_id"
            ],
            &rows
        )
    );
    let topics = log.list_topics().await?;
    println!("\nTopics:");
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.partitions.len().to_string(),
                t.records().to_string(),
            ]
        })
        .collect();
    print!("{}", table(&["topic", ">partitions", ">records"], &rows));
    println!(
        "\nTry: ultracore events tail {TOPIC} --from-beginning   (works beside a running server)"
    );
    Ok(())
}
