//! `ultracore bench forensics --pipeline --api`: the forensics service end
//! to end on the embedded log (log → SHAP → SQLite → committed offsets),
//! and the forensics API's latency under load from a second process.
//!
//! - Drain: `--pipeline-decisions` decisions are appended first; the
//!   service then explains and stores them all; decisions/s = N / time to
//!   the last committed offset.
//! - Sustained: a producer offers `--rate` decisions/s for `--seconds`
//!   while the service runs; reports the rate stored and the consumer lag
//!   (sampled every 100 ms: now − time of the oldest decision not yet stored).
//! - API: the store filled by the drain is served on 127.0.0.1:0; a child
//!   process (`ultracore bench forensics-load`) sends GETs from
//!   `--api-concurrency` connections for `--api-seconds` (95 % stored ids,
//!   5 % unknown) and reports latency percentiles measured on its side.
//!
//! Decisions are built from the same synthetic rows as the SHAP bench; each
//! record carries a fresh decision id spliced into a pre-serialized
//! envelope, so producing costs little CPU beside the service.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use ultracore_events::trading::{
    Action, RiskCheck, TradingDecision, TradingDecisionEvent, AGGREGATE_TYPE, DECISIONS_TOPIC,
};
use ultracore_forensics::{
    router, ApiState, ForensicsConfig, ForensicsMetrics, ForensicsService, ForensicsStore,
    Specialists, StoreReader,
};
use ultracore_log::{now_millis, Envelope, EventLog, EventLogExt, NewRecord, TopicSpec};
use ultracore_log_any::{Access, AnyLog, LogConfig};
use uuid::Uuid;

/// Distinct decision payloads; records reuse them with fresh ids.
const TEMPLATES: usize = 4_096;
const SYMBOLS: [&str; 8] = ["AAPL", "MSFT", "JNJ", "XOM", "KO", "QUAL", "USMV", "MTUM"];

/// Envelopes with their two id slots located.
#[derive(Debug)]
pub struct Templates {
    bytes: Vec<Vec<u8>>,
    /// Byte offsets of the event id and the decision id in each.
    slots: Vec<(usize, usize)>,
    keys: Vec<&'static str>,
    seed: u64,
}

impl Templates {
    /// A UUIDv7 for id number `n`: the time now, and random bits that are a
    /// bijection of `n` under this run's seed, so ids never repeat within a
    /// run. `Uuid::now_v7` asks the kernel for randomness each time, which
    /// would make the producer, not the service, what the benchmark measures.
    fn v7(&self, n: u64) -> Uuid {
        let mut z = self
            .seed
            .wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let millis = (now_millis() as u128) & ((1 << 48) - 1);
        Uuid::from_u128(
            millis << 80
                | 0x7 << 76
                | u128::from(n & 0xfff) << 64
                | 0b10 << 62
                | u128::from(z >> 2),
        )
    }

    pub fn new(specialists: &Specialists, rows: &[Vec<f32>], seed: u64) -> Result<Templates> {
        let names = specialists.feature_names();
        let mut rng = crate::Rng::new(seed);
        let id_seed = rng.next_u64();
        let mut next = || rng.uniform();
        let mut out = Templates {
            bytes: Vec::new(),
            slots: Vec::new(),
            keys: Vec::new(),
            seed: id_seed,
        };
        for (i, row) in rows.iter().take(TEMPLATES).enumerate() {
            let raw: [f64; 3] = [next() + 0.1, next() + 0.1, next() + 0.1];
            let total: f64 = raw.iter().sum();
            let probs: std::collections::BTreeMap<String, f64> = ["bull", "bear", "sideways"]
                .iter()
                .zip(raw)
                .map(|(n, p)| (n.to_string(), p / total))
                .collect();
            let (best, confidence) = probs
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(k, v)| (k.clone(), *v))
                .unwrap_or_default();
            let action = match best.as_str() {
                "bull" => Action::Buy,
                "bear" => Action::Sell,
                _ => Action::Hold,
            };
            let decision_id = Uuid::now_v7();
            let symbol = SYMBOLS[i % SYMBOLS.len()];
            let decision = TradingDecision {
                decision_id: decision_id.to_string(),
                timestamp: chrono::Utc::now(),
                symbol: symbol.into(),
                action,
                quantity: if action == Action::Hold { 0.0 } else { 100.0 },
                confidence,
                regime_probs: probs.clone(),
                strategy_weights: probs,
                features: names
                    .iter()
                    .zip(row)
                    .filter(|(_, v)| !v.is_nan())
                    .map(|(n, v)| (n.clone(), f64::from(*v)))
                    .collect(),
                // The three checks the decision engine makes, with words of
                // the length it writes.
                risk_checks: vec![
                    RiskCheck {
                        name: "position_limit".into(),
                        passed: true,
                        value: 100.0,
                        limit: 10_000.0,
                        detail: Some("100 units held after the trade (0 before)".into()),
                    },
                    RiskCheck {
                        name: "concentration".into(),
                        passed: true,
                        value: 0.0173,
                        limit: 0.2,
                        detail: Some(
                            "position after the trade 18250.00 of portfolio value 1055000.00"
                                .into(),
                        ),
                    },
                    RiskCheck {
                        name: "correlation".into(),
                        passed: true,
                        value: 0.42,
                        limit: 0.8,
                        detail: Some("correlation with holdings 0.42".into()),
                    },
                ],
                model_version: "specialists@bench".into(),
                latency_us: Some(20), // as the decision service publishes it (p50 ~20 µs)
            };
            let env = Envelope::new(
                AGGREGATE_TYPE,
                symbol,
                1,
                TradingDecisionEvent::TradingDecision(Box::new(decision)),
            );
            let bytes = env.to_record().value;
            let find = |id: &Uuid| -> Result<usize> {
                let needle = id.to_string();
                bytes
                    .windows(needle.len())
                    .position(|w| w == needle.as_bytes())
                    .context("id not found in the envelope")
            };
            out.slots.push((find(&env.event_id)?, find(&decision_id)?));
            out.bytes.push(bytes);
            out.keys.push(symbol);
        }
        if out.bytes.is_empty() {
            bail!("no rows to build decisions from");
        }
        Ok(out)
    }

    /// Record `i` with a fresh decision id (returned) and event id.
    pub fn record(&self, i: usize) -> (Uuid, NewRecord) {
        let t = i % self.bytes.len();
        let mut value = self.bytes[t].clone();
        let (event_slot, decision_slot) = self.slots[t];
        let decision_id = self.v7(2 * i as u64);
        let mut buf = Uuid::encode_buffer();
        value[event_slot..event_slot + 36].copy_from_slice(
            self.v7(2 * i as u64 + 1)
                .hyphenated()
                .encode_lower(&mut buf)
                .as_bytes(),
        );
        value[decision_slot..decision_slot + 36]
            .copy_from_slice(decision_id.hyphenated().encode_lower(&mut buf).as_bytes());
        let mut record = NewRecord::new(self.keys[t], value);
        record.headers = vec![ultracore_log::Header::new("event_type", "trading_decision")];
        (decision_id, record)
    }
}

#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// Run the end-to-end service benchmark (drain and sustained).
    #[arg(long)]
    pub pipeline: bool,
    /// Run the API latency benchmark (after a drain that fills the store).
    #[arg(long)]
    pub api: bool,
    /// Decisions appended before the drain run.
    #[arg(long, default_value_t = 300_000)]
    pub pipeline_decisions: usize,
    /// Decisions per second offered in the sustained run (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    pub rate: u64,
    /// Length of the sustained run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Partitions of trading_decisions.
    #[arg(long, default_value_t = 6)]
    pub partitions: u32,
    /// Worker threads of the service [default: one per core].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Concurrent connections of the API load generator.
    #[arg(long, default_value_t = 8)]
    pub api_concurrency: usize,
    /// Length of the API load.
    #[arg(long, default_value_t = 10)]
    pub api_seconds: u64,
    /// Where the benchmark's log and store go, kept afterwards [default: a temp dir, deleted afterwards].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug)]
struct Bench {
    log: AnyLog,
    specialists: Arc<Specialists>,
    templates: Templates,
    dir: PathBuf,
}

fn config(b: &PipelineArgs, dir: &Path) -> ForensicsConfig {
    ForensicsConfig {
        db: dir.join(ForensicsStore::FILE_NAME),
        workers: b.workers.unwrap_or(0),
        lag_interval_ms: 100,
        ..Default::default()
    }
}

#[derive(Debug)]
struct Started {
    metrics: Arc<ForensicsMetrics>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<ultracore_forensics::Result<ultracore_forensics::ServiceStats>>,
}

impl Bench {
    fn start(&self, b: &PipelineArgs) -> Result<Started> {
        let service = ForensicsService::with_specialists(
            self.log.clone(),
            config(b, &self.dir),
            self.specialists.clone(),
        )?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        Ok(Started {
            metrics: service.metrics(),
            stop,
            task: tokio::spawn(service.run(async {
                let _ = stopped.await;
            })),
        })
    }
}

impl Started {
    async fn stop(self) -> Result<ultracore_forensics::ServiceStats> {
        let _ = self.stop.send(());
        Ok(self.task.await??)
    }
}

/// Runs the parts asked for; returns `{pipeline: …, api: …}`.
pub async fn run(
    b: &PipelineArgs,
    specialists: Arc<Specialists>,
    rows: &[Vec<f32>],
    seed: u64,
    say: &dyn Fn(&str),
) -> Result<Value> {
    let dir = match &b.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("ultracore-bench-forensics-{}", Uuid::now_v7())),
    };
    std::fs::create_dir_all(&dir)?;
    let dir = std::path::absolute(&dir)?;
    let outcome = async {
        let log = AnyLog::open(
            &LogConfig {
                url: Some(format!("file://{}", dir.join("log").display())),
                ..Default::default()
            },
            Access::Write,
        )
        .await?;
        log.ensure_topic(&TopicSpec::new(DECISIONS_TOPIC, b.partitions))
            .await?;
        let bench = Bench {
            templates: Templates::new(&specialists, rows, seed)?,
            log,
            specialists,
            dir: dir.clone(),
        };
        let mut out = serde_json::Map::new();
        let mut ids = Vec::new();
        if b.pipeline || b.api {
            let (drain, stored) = drain(&bench, b, say).await?;
            ids = stored;
            out.insert("drain".into(), drain);
        }
        if b.pipeline && b.rate > 0 {
            out.insert("sustained".into(), sustained(&bench, b, say).await?);
        }
        if b.api {
            out.insert("api".into(), api(&bench, b, &ids, say).await?);
        }
        Ok::<_, anyhow::Error>(Value::Object(out))
    }
    .await;
    if b.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome
}

async fn append_all(bench: &Bench, from: usize, n: usize) -> Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(n);
    let mut i = from;
    while i < from + n {
        let batch = (from + n - i).min(2_000);
        let mut records = Vec::with_capacity(batch);
        for j in i..i + batch {
            let (id, r) = bench.templates.record(j);
            ids.push(id);
            records.push(r);
        }
        bench.log.append(DECISIONS_TOPIC, records).await?;
        i += batch;
    }
    Ok(ids)
}

async fn wait_stored(started: &Started, rows: u64, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while started.metrics.rows_stored.load(Ordering::Relaxed) < rows
        || started.metrics.lag_records() > 0
    {
        if Instant::now() > deadline {
            bail!(
                "only {} of {rows} decisions stored after {within:?}",
                started.metrics.rows_stored.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// CPU time this process has used (every thread, user and system), from
/// `/proc/self/stat` (Linux; `None` elsewhere). Ticks are 1/100 s.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Single-thread cost of each step per decision, microseconds: where the
/// pipeline's time goes.
fn breakdown(bench: &Bench) -> Result<Value> {
    let n = 20_000;
    let records: Vec<ultracore_log::Record> = (0..n)
        .map(|i| {
            let (_, r) = bench.templates.record(i);
            ultracore_log::Record {
                topic: DECISIONS_TOPIC.into(),
                partition: 0,
                offset: i as u64,
                timestamp: now_millis(),
                key: r.key,
                value: r.value,
                headers: r.headers,
            }
        })
        .collect();
    let s = &bench.specialists;
    let t = Instant::now();
    let decoded: Vec<_> = records
        .iter()
        .map(ultracore_forensics::decode)
        .collect::<Result<_, _>>()?;
    let decode_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let mut ws = s.workspace();
    let (mut inputs, mut rows) = (ultracore_forensics::Inputs::default(), Vec::new());
    let t = Instant::now();
    for d in &decoded {
        s.check(&d.decision, &mut inputs)?;
        rows.extend_from_slice(&inputs.row);
    }
    let mut shap = Vec::with_capacity(n);
    s.explain_rows(&rows, &mut ws, &mut shap);
    let explain_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let index = ultracore_forensics::FeatureIndex::new(s.feature_names());
    let mut present = Vec::new();
    let t = Instant::now();
    let encoded: Vec<Vec<u8>> = decoded
        .iter()
        .map(|d| {
            let mut out = Vec::with_capacity(512);
            ultracore_forensics::encode_decision(&d.decision, &index, &mut present, &mut out);
            out
        })
        .collect();
    let encode_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let rows: Vec<ultracore_forensics::NewExplanation> = decoded
        .iter()
        .zip(encoded)
        .zip(shap)
        .zip(&records)
        .map(
            |(((d, decision), shap), r)| ultracore_forensics::NewExplanation {
                decision_id: d.decision_id,
                event_id: d.event_id,
                decided_at: d.decision.timestamp.timestamp_millis(),
                symbol: d.decision.symbol.to_string(),
                action: d.decision.action.as_str(),
                model_version: d.decision.model_version.to_string(),
                explained_at: now_millis(),
                source_partition: r.partition,
                source_offset: r.offset,
                decision,
                shap,
                head: None,
            },
        )
        .collect();
    let mut store = ForensicsStore::open(bench.dir.join("breakdown.sqlite"), DECISIONS_TOPIC)?;
    store.register_models(&ultracore_forensics::ModelSet::of(s))?;
    let t = Instant::now();
    for chunk in rows.chunks(4_096) {
        store.insert(s.version(), chunk)?;
    }
    let insert_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let row_bytes = rows
        .iter()
        .map(|r| r.decision.len() + r.shap.len())
        .sum::<usize>()
        / n;
    let json_bytes = records.iter().map(|r| r.value.len()).sum::<usize>() / n;
    Ok(json!({
        "decode_us": decode_us,
        "shap_us": explain_us,
        "encode_us": encode_us,
        "store_insert_us": insert_us,
        "row_bytes": row_bytes,
        "record_bytes": json_bytes,
    }))
}

async fn drain(bench: &Bench, b: &PipelineArgs, say: &dyn Fn(&str)) -> Result<(Value, Vec<Uuid>)> {
    let n = b.pipeline_decisions.max(1);
    let steps = breakdown(bench)?;
    say(&format!("single-thread cost per decision: {steps}"));
    say(&format!(
        "drain: appending {n} decisions to the embedded log"
    ));
    let ids = append_all(bench, 0, n).await?;
    say("drain: explaining and storing them");
    let cpu_before = process_cpu_seconds();
    let start = Instant::now();
    let started = bench.start(b)?;
    // Done when every row is stored and the commit shows no lag (the
    // sampler runs every 100 ms, so this can overstate by up to 0.1 s).
    let deadline = Instant::now() + Duration::from_secs(600);
    while started.metrics.rows_stored.load(Ordering::Relaxed) < n as u64 {
        if Instant::now() > deadline {
            bail!("drain did not finish in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let stored_at = start.elapsed();
    let cpu = cpu_before
        .zip(process_cpu_seconds())
        .map(|(a, b)| (b - a) * 1e6 / n as f64);
    wait_stored(&started, n as u64, Duration::from_secs(60)).await?;
    let committed_at = start.elapsed();
    let metrics = started.metrics.clone();
    let stats = started.stop().await?;
    let explain_mean_us = metrics.explain.mean_nanos() / 1000.0;
    let out = json!({
        "decisions": n,
        "seconds_to_stored": stored_at.as_secs_f64(),
        "seconds_to_committed": committed_at.as_secs_f64(),
        "decisions_per_s": n as f64 / stored_at.as_secs_f64(),
        "explain_mean_us": explain_mean_us,
        "cpu_us_per_decision": cpu,
        "store_transactions": metrics.store_batch.count(),
        "stored": stats.stored,
        "duplicates": stats.duplicates,
        "workers": config(b, &bench.dir).worker_threads(),
        "single_thread_us_per_decision": steps,
    });
    say(&format!(
        "drain: {n} decisions stored in {:.2} s = {:.0} decisions/s (explain {:.1} us/decision on a worker; {} us of CPU per decision, all threads)",
        stored_at.as_secs_f64(),
        n as f64 / stored_at.as_secs_f64(),
        explain_mean_us,
        cpu.map_or("?".to_owned(), |c| format!("{c:.1}")),
    ));
    Ok((out, ids))
}

async fn sustained(bench: &Bench, b: &PipelineArgs, say: &dyn Fn(&str)) -> Result<Value> {
    let total = (b.rate * b.seconds) as usize;
    say(&format!(
        "sustained: offering {} decisions/s for {} s while the service runs",
        b.rate, b.seconds
    ));
    let started = bench.start(b)?;
    // Let the service join and catch up with nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = started.metrics.rows_stored.load(Ordering::Relaxed);
    let offset = 10_000_000;
    let producer = {
        let log = bench.log.clone();
        let records_per_tick = (b.rate / 100).max(1) as usize;
        let ticks = total / records_per_tick;
        let mut batches = Vec::with_capacity(ticks);
        for t in 0..ticks {
            let mut batch = Vec::with_capacity(records_per_tick);
            for j in 0..records_per_tick {
                batch.push(bench.templates.record(offset + t * records_per_tick + j).1);
            }
            batches.push(batch);
        }
        say(&format!(
            "sustained: {total} records made; offering them now"
        ));
        // Each tick's batch is appended without waiting for the last one to
        // be durable (as several decision services would), up to 16 in
        // flight: the offered rate holds as long as the log absorbs it.
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut appended = 0usize;
            // Milliseconds from each batch's due time to its append being
            // durable: how long the log itself kept decisions waiting.
            let mut append_ms = Histogram::<u64>::new(3)?;
            let mut in_flight = tokio::task::JoinSet::new();
            for (t, mut batch) in batches.into_iter().enumerate() {
                let due = start + Duration::from_millis(10 * t as u64);
                tokio::time::sleep_until(due).await;
                let now = now_millis();
                for r in &mut batch {
                    r.timestamp = Some(now);
                }
                appended += batch.len();
                while in_flight.len() >= 16 {
                    let took = in_flight.join_next().await.context("an append task")???;
                    append_ms.record(took)?;
                }
                let log = log.clone();
                in_flight.spawn(async move {
                    log.append(DECISIONS_TOPIC, batch).await?;
                    Ok::<_, anyhow::Error>(due.elapsed().as_millis() as u64)
                });
            }
            while let Some(done) = in_flight.join_next().await {
                append_ms.record(done??)?;
            }
            Ok::<_, anyhow::Error>((appended, start.elapsed(), append_ms))
        })
    };
    let mut lag_ms = Histogram::<u64>::new(3)?;
    let mut max_backlog = 0u64;
    let cpu_before = process_cpu_seconds();
    let start = Instant::now();
    while !producer.is_finished() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if start.elapsed() > Duration::from_secs(1) {
            lag_ms.record(started.metrics.lag_millis.load(Ordering::Relaxed))?;
            max_backlog = max_backlog.max(started.metrics.lag_records());
        }
    }
    let (appended, produce_time, append_ms) = producer.await??;
    let stored_in_window = started.metrics.rows_stored.load(Ordering::Relaxed) - base;
    let window = start.elapsed();
    let cpu_share = cpu_before
        .zip(process_cpu_seconds())
        .map(|(a, b)| (b - a) / window.as_secs_f64());
    wait_stored(&started, base + appended as u64, Duration::from_secs(600)).await?;
    let drained = start.elapsed();
    started.stop().await?;
    let out = json!({
        "offered_per_s": b.rate,
        "offered_achieved_per_s": appended as f64 / produce_time.as_secs_f64(),
        "seconds": b.seconds,
        "decisions": appended,
        "stored_per_s_during_offer": stored_in_window as f64 / window.as_secs_f64(),
        "stored_per_s_overall": appended as f64 / drained.as_secs_f64(),
        "lag_seconds_p50": lag_ms.value_at_quantile(0.5) as f64 / 1000.0,
        "lag_seconds_p99": lag_ms.value_at_quantile(0.99) as f64 / 1000.0,
        "lag_seconds_max": lag_ms.max() as f64 / 1000.0,
        "backlog_records_max": max_backlog,
        "append_ms_p99": append_ms.value_at_quantile(0.99),
        "append_ms_max": append_ms.max(),
        "seconds_to_drain_after_offer": (drained - window).as_secs_f64(),
        "cpu_cores_used": cpu_share,
    });
    say(&format!(
        "sustained: offered {:.0}/s, stored {:.0}/s while offered; lag p50 {:.2} s, p99 {:.2} s, max {:.2} s; {} cores busy (producer and service); appends durable after p99 {} ms, max {} ms",
        appended as f64 / produce_time.as_secs_f64(),
        stored_in_window as f64 / window.as_secs_f64(),
        lag_ms.value_at_quantile(0.5) as f64 / 1000.0,
        lag_ms.value_at_quantile(0.99) as f64 / 1000.0,
        lag_ms.max() as f64 / 1000.0,
        cpu_share.map_or("?".to_owned(), |c| format!("{c:.2}")),
        append_ms.value_at_quantile(0.99),
        append_ms.max(),
    ));
    Ok(out)
}

async fn api(bench: &Bench, b: &PipelineArgs, ids: &[Uuid], say: &dyn Fn(&str)) -> Result<Value> {
    let reader = StoreReader::open(bench.dir.join(ForensicsStore::FILE_NAME))?;
    let state = ApiState::new(reader, Arc::new(ForensicsMetrics::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });
    // 95 % stored ids, 5 % unknown ones, spread over the whole store.
    let ids_file = bench.dir.join("ids.txt");
    let step = (ids.len() / 20_000).max(1);
    let mut text = String::new();
    for (k, id) in ids.iter().step_by(step).enumerate() {
        if k % 20 == 19 {
            text.push_str(&format!("{}\n", Uuid::now_v7()));
        } else {
            text.push_str(&format!("{id}\n"));
        }
    }
    std::fs::write(&ids_file, text)?;
    say(&format!(
        "api: {} connections from a second process for {} s against {url}",
        b.api_concurrency, b.api_seconds
    ));
    let exe = std::env::current_exe()?;
    let args = [
        "bench".to_owned(),
        "forensics-load".to_owned(),
        "--url".to_owned(),
        url.clone(),
        "--ids".to_owned(),
        ids_file.display().to_string(),
        "--concurrency".to_owned(),
        b.api_concurrency.to_string(),
        "--seconds".to_owned(),
        b.api_seconds.to_string(),
    ];
    // Waiting for the child blocks: do it on a blocking thread.
    let output =
        tokio::task::spawn_blocking(move || std::process::Command::new(exe).args(args).output())
            .await??;
    server.abort();
    if !output.status.success() {
        bail!(
            "the load generator failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let result: Value =
        serde_json::from_slice(&output.stdout).context("the load generator printed no JSON")?;
    say(&format!(
        "api: {:.0} requests/s, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        result["requests_per_s"].as_f64().unwrap_or(0.0),
        result["p50_ms"].as_f64().unwrap_or(0.0),
        result["p99_ms"].as_f64().unwrap_or(0.0),
        result["max_ms"].as_f64().unwrap_or(0.0)
    ));
    Ok(result)
}

/// The load generator, run as a second process by the API benchmark.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Base URL of the server.
    #[arg(long)]
    url: String,
    /// File of decision ids, one per line.
    #[arg(long)]
    ids: PathBuf,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

pub async fn load(a: LoadArgs) -> Result<()> {
    let ids: Arc<Vec<String>> = Arc::new(
        std::fs::read_to_string(&a.ids)
            .with_context(|| format!("cannot read {}", a.ids.display()))?
            .lines()
            .map(str::to_owned)
            .collect(),
    );
    if ids.is_empty() {
        bail!("{} holds no ids", a.ids.display());
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()?;
    // Warm-up: connections and the server's page cache.
    for id in ids.iter().take(200) {
        client
            .get(format!("{}/api/v1/forensics/{id}", a.url))
            .send()
            .await?
            .bytes()
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..a.concurrency.max(1) {
        let (client, ids, url) = (client.clone(), ids.clone(), a.url.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3)?;
            let (mut ok, mut not_found, mut other) = (0u64, 0u64, 0u64);
            let mut i = w * 7919;
            while Instant::now() < deadline {
                i = (i + 104_729) % ids.len();
                let t = Instant::now();
                let res = client
                    .get(format!("{url}/api/v1/forensics/{}", ids[i]))
                    .send()
                    .await?;
                let status = res.status().as_u16();
                res.bytes().await?;
                hist.record(t.elapsed().as_micros() as u64)?;
                match status {
                    200 => ok += 1,
                    404 => not_found += 1,
                    _ => other += 1,
                }
            }
            Ok::<_, anyhow::Error>((hist, ok, not_found, other))
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    let (mut ok, mut not_found, mut other) = (0, 0, 0);
    for t in tasks {
        let (h, o, n, x) = t.await??;
        hist.add(h)?;
        ok += o;
        not_found += n;
        other += x;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{}",
        json!({
            "requests": hist.len(),
            "requests_per_s": hist.len() as f64 / elapsed,
            "concurrency": a.concurrency,
            "seconds": elapsed,
            "status_200": ok,
            "status_404": not_found,
            "status_other": other,
            "p50_ms": ms(0.5),
            "p90_ms": ms(0.9),
            "p99_ms": ms(0.99),
            "p999_ms": ms(0.999),
            "max_ms": hist.max() as f64 / 1000.0,
        })
    );
    Ok(())
}
