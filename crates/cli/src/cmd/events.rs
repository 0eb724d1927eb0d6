//! `ultracore events …`: the event log from the shell.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use ultracore_log::{
    Consumer, ConsumerOptions, EnvelopeBuilder, EventLog, EventLogExt, NewRecord, RawEnvelope,
    Record, Retention, Seek, StartFrom, TopicSpec,
};
use ultracore_log_any::{Access, AnyLog, Backend};
use ultracore_log_embedded::RepairReport;

use crate::output::{clip, table};
use crate::LogArgs;

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List topics: partitions, records, retention.
    ///
    /// Example: ultracore events topics --json
    Topics {
        #[arg(long)]
        json: bool,
    },
    /// Create a topic.
    ///
    /// Example: ultracore events create portfolio-events --partitions 6 --retention-days 30
    Create {
        topic: String,
        #[arg(long, default_value_t = 3)]
        partitions: u32,
        /// Delete records older than this many days (default: EVENT_STORE_RETENTION_DAYS, else keep forever).
        #[arg(long)]
        retention_days: Option<u64>,
        /// Keep at most this many bytes per partition.
        #[arg(long)]
        retention_bytes: Option<u64>,
    },
    /// Append JSON lines from stdin; each line is wrapped in an event envelope unless it is one.
    ///
    /// Example: echo '{"ticker":"QUAL","rows":2264}' | ultracore events produce etf-data-events --key QUAL --event-type etf_data_collected
    Produce(ProduceArgs),
    /// Print records of a topic as they arrive (Ctrl-C to stop).
    ///
    /// Example: ultracore events tail esg-portfolio-events --from-beginning --json
    Tail(TailArgs),
    /// An aggregate's state and the events that built it, now or at a point in the past.
    ///
    /// Example: ultracore events replay --aggregate Account/acc-1 --as-of 2026-01-02T00:00:00Z --json
    #[command(disable_version_flag = true)]
    Replay(crate::cmd::es::ReplayArgs),
    /// Consumer lag per group and partition.
    ///
    /// Example: ultracore events lag --group reporting
    Lag {
        /// Only this group (default: every group with committed offsets).
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Find corrupt records in the embedded log (after power loss or disk
    /// damage, when it refuses to open) and cut each damaged segment at
    /// its first bad record. Only reports what it would cut unless
    /// --apply; a copy of every cut is kept beside its segment as
    /// <segment>.corrupt-<millis>. Refuses while a server or any other
    /// writer holds the log: stop it first.
    ///
    /// Example: ultracore --data-dir /var/lib/ultracore events repair --apply
    Repair {
        /// Make the cuts (default: only report them).
        #[arg(long)]
        apply: bool,
        /// One JSON object: what was checked, and each cut.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    topic: String,
    /// Record key (and aggregate id of wrapped lines). Default: the envelope's aggregate id, or a new id per line.
    #[arg(long)]
    key: Option<String>,
    /// Event type of wrapped lines.
    #[arg(long, default_value = "json_message")]
    event_type: String,
    /// Aggregate type of wrapped lines.
    #[arg(long, default_value = "Stream")]
    aggregate_type: String,
    /// Partitions of the topic if it has to be created.
    #[arg(long, default_value_t = 3)]
    partitions: u32,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    topic: String,
    /// Start at the oldest record (default: only new records).
    #[arg(long, conflicts_with = "since")]
    from_beginning: bool,
    /// Start at the first record at or after this time (RFC 3339, e.g. 2026-01-31T09:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Read as this consumer group and commit what was printed (needs the writer: not beside a running server).
    #[arg(long)]
    group: Option<String>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    max: Option<usize>,
    /// Stop when there is nothing more to read instead of following.
    #[arg(long)]
    no_follow: bool,
}

pub async fn run(args: &LogArgs, command: EventsCommand) -> Result<()> {
    let config = args.config();
    match command {
        EventsCommand::Topics { json } => {
            topics(&AnyLog::open(&config, Access::ReadOnly).await?, json).await
        }
        EventsCommand::Create {
            topic,
            partitions,
            retention_days,
            retention_bytes,
        } => {
            let log = AnyLog::open(&config, Access::Write).await?;
            let mut spec = TopicSpec::new(topic.clone(), partitions);
            if retention_days.is_some() || retention_bytes.is_some() {
                let max_age = retention_days.map(|d| Duration::from_secs(d.saturating_mul(86_400)));
                spec = spec.with_retention(Retention::limited(max_age, retention_bytes));
            }
            log.create_topic(&spec).await?;
            eprintln!("created topic {topic} with {partitions} partitions");
            Ok(())
        }
        EventsCommand::Produce(p) => produce(&AnyLog::open(&config, Access::Write).await?, p).await,
        EventsCommand::Tail(t) => {
            let access = if t.group.is_some() {
                Access::Write
            } else {
                Access::ReadOnly
            };
            tail(&AnyLog::open(&config, access).await?, t).await
        }
        EventsCommand::Replay(r) => crate::cmd::es::replay(args, r).await,
        EventsCommand::Lag { group, json } => {
            lag(&AnyLog::open(&config, Access::ReadOnly).await?, group, json).await
        }
        EventsCommand::Repair { apply, json } => {
            let dir = match config.backend()? {
                Backend::Embedded { dir } => dir,
                kafka @ Backend::Kafka { .. } => {
                    bail!("repair works on the embedded log, and the log configured is {kafka}; Kafka brokers recover their own logs")
                }
            };
            // Reading and copying whole segments is blocking work.
            let report = {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || ultracore_log_embedded::repair(&dir, apply))
                    .await??
            };
            print_repair(&dir, &report, json)
        }
    }
}

fn print_repair(dir: &Path, report: &RepairReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    if report.cuts.is_empty() {
        println!(
            "no damage found: {} segments in {} partitions checked",
            report.segments_checked, report.partitions_checked
        );
        return Ok(());
    }
    let name = |p: &Path| p.strip_prefix(dir).unwrap_or(p).display().to_string();
    let mut header = vec![
        "segment",
        ">cut at byte",
        ">bytes",
        ">first offset",
        ">records",
        "why",
    ];
    if report.applied {
        header.push("kept as");
    }
    let rows: Vec<Vec<String>> = report
        .cuts
        .iter()
        .map(|c| {
            let mut row = vec![
                name(&c.segment),
                c.position.to_string(),
                c.bytes.to_string(),
                c.first_offset.to_string(),
                c.records.to_string(),
                c.reason.clone(),
            ];
            if let Some(kept) = &c.kept_at {
                row.push(
                    kept.file_name()
                        .map_or_else(|| name(kept), |n| n.to_string_lossy().into_owned()),
                );
            }
            row
        })
        .collect();
    print!("{}", table(&header, &rows));
    let n = report.cuts.len();
    if report.applied {
        println!(
            "cut {n} damaged segment(s); the cut bytes are kept beside each segment (kept as). Start the log again."
        );
    } else {
        println!(
            "would cut {n} damaged segment(s), dropping the records listed; run again with --apply to cut them (a copy of each cut is kept beside its segment)"
        );
    }
    Ok(())
}

async fn topics(log: &AnyLog, json: bool) -> Result<()> {
    let topics = log.list_topics().await?;
    if json {
        let out: Vec<Value> = topics
            .iter()
            .map(|t| {
                json!({
                    "topic": t.name,
                    "partitions": t.partitions.iter().map(|p| json!({
                        "partition": p.partition, "log_start_offset": p.log_start_offset, "high_watermark": p.high_watermark,
                    })).collect::<Vec<_>>(),
                    "records": t.records(),
                    "retention": retention_kind(t.retention),
                    "retention_ms": t.retention.and_then(|r| r.max_age()).map(|d| d.as_millis() as u64),
                    "retention_bytes": t.retention.and_then(|r| r.max_bytes()),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.partitions.len().to_string(),
                t.records().to_string(),
                retention_text(t.retention),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["topic", ">partitions", ">records", "retention"], &rows)
    );
    Ok(())
}

/// `forever`, `limited` (see `retention_ms` and `retention_bytes`) or
/// `unknown` (a broker that does not describe topic configs).
fn retention_kind(r: Option<Retention>) -> &'static str {
    match r {
        Some(r) if r.is_forever() => "forever",
        Some(_) => "limited",
        None => "unknown",
    }
}

fn retention_text(r: Option<Retention>) -> String {
    let Some(r) = r else {
        return "unknown".into();
    };
    let age = r.max_age().map(|d| {
        let days = d.as_secs_f64() / 86_400.0;
        if days >= 1.0 {
            format!("{days:.0} days")
        } else {
            format!("{} s", d.as_secs())
        }
    });
    let size = r
        .max_bytes()
        .map(|b| format!("{:.1} MiB", b as f64 / 1_048_576.0));
    match (age, size) {
        (None, None) => "forever".into(),
        (Some(a), None) => a,
        (None, Some(s)) => s,
        (Some(a), Some(s)) => format!("{a} or {s}"),
    }
}

async fn produce(log: &AnyLog, args: ProduceArgs) -> Result<()> {
    if log
        .ensure_topic(&TopicSpec::new(args.topic.clone(), args.partitions))
        .await?
    {
        eprintln!(
            "created topic {} with {} partitions",
            args.topic, args.partitions
        );
    }
    let stdin = std::io::stdin();
    let mut batch = Vec::new();
    let (mut produced, mut rejected) = (0usize, 0usize);
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        match wrap_line(&line, &args) {
            Ok(record) => batch.push(record),
            Err(e) => {
                rejected += 1;
                eprintln!("line {}: {e}; line skipped", n + 1);
            }
        }
        if batch.len() >= 1000 {
            produced += log
                .append(&args.topic, std::mem::take(&mut batch))
                .await?
                .len();
        }
    }
    if !batch.is_empty() {
        produced += log.append(&args.topic, batch).await?.len();
    }
    eprintln!("produced {produced} records to {}", args.topic);
    if rejected > 0 {
        bail!("{rejected} lines were not valid JSON and were skipped");
    }
    Ok(())
}

/// An envelope line goes as it is; any other JSON becomes the payload of a new envelope.
fn wrap_line(line: &str, args: &ProduceArgs) -> Result<NewRecord> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| anyhow::anyhow!("not valid JSON ({e})"))?;
    let mut record = match RawEnvelope::from_bytes(line.as_bytes()) {
        Ok(envelope) => envelope.to_record(),
        Err(_) => {
            let id = args
                .key
                .clone()
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
            EnvelopeBuilder::new(args.aggregate_type.clone(), id)
                .build_raw(args.event_type.clone(), 1, value)
                .to_record()
        }
    };
    if let Some(key) = &args.key {
        record.key = Some(key.clone().into_bytes());
    }
    Ok(record)
}

async fn tail(log: &AnyLog, args: TailArgs) -> Result<()> {
    log.describe_topic(&args.topic).await?;
    let since = match &args.since {
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .with_context(|| {
                    format!("--since '{s}' is not an RFC 3339 time such as 2026-01-31T09:00:00Z")
                })?
                .timestamp_millis(),
        ),
        None => None,
    };
    let committing = args.group.is_some();
    let group = args
        .group
        .clone()
        .unwrap_or_else(|| format!("ultracore-tail-{}", uuid::Uuid::now_v7().simple()));
    let start = if args.from_beginning {
        StartFrom::Earliest
    } else {
        StartFrom::Latest
    };
    let mut consumer = log
        .consumer(ConsumerOptions::new(group, [args.topic.clone()]).start(start))
        .await?;
    if let Some(ts) = since {
        consumer.seek(Seek::Timestamp(ts)).await?;
    }
    let mut printed = 0usize;
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(
            out,
            "{:>4}  {:>8}  {:<24}  {:<14}  {:<34}  {:<24}  payload",
            "part", "offset", "time", "key", "event_type", "aggregate"
        )?;
    }
    loop {
        let want = args.max.map_or(500, |m| (m - printed).min(500));
        let records = consumer.poll(want, Duration::from_secs(1)).await?;
        if records.is_empty() && args.no_follow {
            break;
        }
        for r in &records {
            writeln!(
                out,
                "{}",
                if args.json {
                    record_json(r).to_string()
                } else {
                    record_row(r)
                }
            )?;
        }
        out.flush()?;
        printed += records.len();
        if committing && !records.is_empty() {
            let positions: Vec<_> = records.iter().map(Record::next_position).collect();
            consumer.commit(&positions).await?;
        }
        if args.max.is_some_and(|m| printed >= m) {
            break;
        }
    }
    Ok(())
}

fn millis_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// A record as JSON: the envelope parsed when the value is one.
pub fn record_json(r: &Record) -> Value {
    let value: Value = serde_json::from_slice(&r.value)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.value).into()));
    let headers: serde_json::Map<String, Value> = r
        .headers
        .iter()
        .map(|h| {
            (
                h.key.clone(),
                Value::String(String::from_utf8_lossy(&h.value).into()),
            )
        })
        .collect();
    json!({
        "topic": r.topic, "partition": r.partition, "offset": r.offset,
        "timestamp": millis_to_rfc3339(r.timestamp),
        "key": r.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
        "headers": headers,
        "value": value,
    })
}

fn record_row(r: &Record) -> String {
    let key = r
        .key
        .as_ref()
        .map_or_else(|| "-".into(), |k| String::from_utf8_lossy(k).into_owned());
    let (event_type, aggregate, payload) = match RawEnvelope::from_bytes(&r.value) {
        Ok(e) => (
            e.event_type,
            format!("{}/{} v{}", e.aggregate_type, e.aggregate_id, e.version),
            e.payload.to_string(),
        ),
        Err(_) => (
            "(not an envelope)".into(),
            "-".into(),
            String::from_utf8_lossy(&r.value).into_owned(),
        ),
    };
    format!(
        "{:>4}  {:>8}  {:<24}  {:<14}  {:<34}  {:<24}  {}",
        r.partition,
        r.offset,
        millis_to_rfc3339(r.timestamp),
        clip(&key, 14),
        clip(&event_type, 34),
        clip(&aggregate, 24),
        clip(&payload, 70)
    )
}

async fn lag(log: &AnyLog, group: Option<String>, json: bool) -> Result<()> {
    let groups = match group {
        Some(g) => vec![g],
        None => log.list_groups().await?,
    };
    let mut rows = Vec::new();
    for g in &groups {
        rows.extend(log.group_lag(g).await?);
    }
    if json {
        let out: Vec<Value> = rows
            .iter()
            .map(|l| json!({"group": l.group, "topic": l.topic, "partition": l.partition, "committed": l.committed,
                "high_watermark": l.high_watermark, "lag": l.lag()}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|l| {
            vec![
                l.group.clone(),
                l.topic.clone(),
                l.partition.to_string(),
                l.committed.map_or_else(|| "-".into(), |c| c.to_string()),
                l.high_watermark.to_string(),
                l.lag().to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["group", "topic", ">partition", ">committed", ">end", ">lag"],
            &table_rows
        )
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ProduceArgs {
        ProduceArgs {
            topic: "t".into(),
            key: None,
            event_type: "x_happened".into(),
            aggregate_type: "Thing".into(),
            partitions: 1,
        }
    }

    #[test]
    fn retention_reads_forever_limited_or_unknown() {
        assert_eq!(retention_text(Some(Retention::Forever)), "forever");
        assert_eq!(retention_kind(Some(Retention::Forever)), "forever");
        let both = Retention::limited(Some(Duration::from_secs(30 * 86_400)), Some(1_048_576));
        assert_eq!(retention_text(Some(both)), "30 days or 1.0 MiB");
        assert_eq!(retention_kind(Some(both)), "limited");
        assert_eq!(retention_text(None), "unknown");
        assert_eq!(retention_kind(None), "unknown");
    }

    #[test]
    fn wraps_plain_json_and_keeps_envelopes() {
        let r = wrap_line(r#"{"a":1}"#, &args()).unwrap();
        let env = RawEnvelope::from_bytes(&r.value).unwrap();
        assert_eq!(
            (env.event_type.as_str(), env.payload["a"].as_i64()),
            ("x_happened", Some(1))
        );
        let original = EnvelopeBuilder::new("Portfolio", "pf-1").build_raw("y", 2, json!({"b": 2}));
        let line = serde_json::to_string(&original).unwrap();
        let r = wrap_line(&line, &args()).unwrap();
        assert_eq!(RawEnvelope::from_bytes(&r.value).unwrap(), original);
        assert_eq!(r.key.as_deref(), Some(&b"pf-1"[..]));
        assert!(wrap_line("{nope", &args()).is_err());
    }
}
