//! `ultracore bench decisions`: decision latency including event emission.
//!
//! Each phase makes --decisions decisions at --rate per second from one
//! thread (requests built from the rows of `models/evaluation.csv`, 50
//! symbols) and times each `DecisionService::decide` call: the ensemble,
//! sizing, risk checks, the envelopes and handing the events (2 or 3 per
//! decision) to the emitter. Phases:
//!
//! - engine only: no events (the floor);
//! - log up, embedded: a fresh embedded log (fsync on every batch);
//! - log up, Kafka: when a Kafka log is configured (`--log kafka://…` or
//!   `KAFKA_BOOTSTRAP_SERVERS`);
//! - log down: a Kafka log at an address nobody listens on; the breaker
//!   opens after 3 failed appends (200 ms each) and every event goes to the
//!   spool. Timing starts once the breaker is open.
//!
//! The ratio down / up compares the log-down phase with the embedded log-up phase.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use ultracore_decisions::{
    DecisionRequest, DecisionService, EvaluationSet, PortfolioContext, ServiceOptions,
};
use ultracore_log_any::{Access, AnyLog, Backend};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_log_kafka::{KafkaConfig, KafkaLog};
use ultracore_spool::{BreakerConfig, BreakerState, EmitterOptions};

use ultracore_log_any::LogConfig;

#[derive(Debug, Args)]
pub struct DecisionsBench {
    /// Directory with bull.json, bear.json, sideways.json and evaluation.csv.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// Timed decisions per phase.
    #[arg(long, default_value_t = 20_000)]
    decisions: usize,
    /// Decisions per second offered (0: back to back).
    #[arg(long, default_value_t = 5_000)]
    rate: u64,
    /// Where the embedded log and the spools go (default: a fresh directory under the data dir, deleted afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub async fn run(config: &LogConfig, b: DecisionsBench) -> Result<()> {
    if b.decisions == 0 {
        bail!("--decisions must be positive");
    }
    let dir = b.dir.clone().unwrap_or_else(|| {
        config
            .data_dir()
            .join(format!("bench-decisions-{}", std::process::id()))
    });
    let cleanup = b.dir.is_none();
    let result = phases(config, &b, &dir).await;
    if cleanup {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let out = result?;
    if b.json {
        println!("{out}");
        return Ok(());
    }
    println!(
        "decision latency with event emission: {} decisions per phase at {} per second, 3 specialists x 100 trees",
        b.decisions,
        if b.rate == 0 { "as many as possible".to_owned() } else { b.rate.to_string() }
    );
    let mut rows = Vec::new();
    for (key, name) in [
        ("engine_only", "engine only (no events)"),
        ("embedded_up", "log up: embedded"),
        ("kafka_up", "log up: Kafka"),
        ("log_down", "log down: breaker open, spool"),
    ] {
        let p = &out[key];
        if p.is_null() {
            continue;
        }
        let f = |k: &str| format!("{:.1}", p[k].as_f64().unwrap_or(f64::NAN));
        rows.push(vec![
            name.to_owned(),
            f("p50_us"),
            f("p99_us"),
            f("p999_us"),
            f("max_us"),
            p["events"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    print!(
        "{}",
        ultracore_term::table(
            &[
                "phase",
                ">p50 us",
                ">p99 us",
                ">p99.9 us",
                ">max us",
                "events"
            ],
            &rows
        )
    );
    println!(
        "down / up (embedded): p50 {:.2}x, p99 {:.2}x (goal: within 2x; p99 < 100 us)",
        out["ratio_down_vs_up_p50"].as_f64().unwrap_or(f64::NAN),
        out["ratio_down_vs_up_p99"].as_f64().unwrap_or(f64::NAN)
    );
    if out["kafka_up"].is_null() {
        println!("(no Kafka configured: set KAFKA_BOOTSTRAP_SERVERS or pass --log kafka://host:port for the Kafka phase)");
    }
    Ok(())
}

/// The service as `serve` starts it, minus the regime history: the bench
/// times decisions, not start-up, and on a shared broker the history would
/// read every earlier run's decisions first.
fn bench_options() -> ServiceOptions {
    ServiceOptions {
        regime_history: None,
        ..ServiceOptions::default()
    }
}

async fn phases(config: &LogConfig, b: &DecisionsBench, dir: &std::path::Path) -> Result<Value> {
    let specialists = ultracore_decisions::Specialists::load_dir(&b.models)
        .context("run from the repository root, or pass --models DIR")?;
    let engine = ultracore_decisions::DecisionEngine::new(
        specialists,
        ultracore_decisions::DecisionConfig::default(),
    )?;
    let set = EvaluationSet::load(
        b.models.join("evaluation.csv"),
        engine.specialists().feature_names(),
    )?;
    let names = engine.specialists().feature_names().to_vec();
    let requests: Arc<Vec<DecisionRequest>> = Arc::new(
        set.rows
            .iter()
            .enumerate()
            .map(|(i, row)| DecisionRequest {
                symbol: format!("SYM{:02}", i % 50),
                features: names
                    .iter()
                    .zip(row)
                    .filter(|(_, v)| !v.is_nan())
                    .map(|(n, v)| (n.clone(), f64::from(*v)))
                    .collect(),
                price: Some(100.0),
                portfolio: PortfolioContext {
                    position_units: 500.0,
                    value: Some(10_000_000.0),
                    correlation_with_holdings: Some(0.3),
                },
                correlation_id: None,
            })
            .collect(),
    );
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;

    let engine_only = Arc::new(DecisionService::new(engine.clone(), None));
    let (h, _) = measure(engine_only.clone(), requests.clone(), b.decisions, b.rate).await?;
    let engine_only = summary(&h, None);

    let log = EmbeddedLog::open(dir.join("log"), EmbeddedOptions::default())?;
    let service = DecisionService::start(
        engine.clone(),
        log,
        &dir.join("spool-embedded"),
        bench_options(),
    )
    .await?;
    let (embedded_h, service) =
        measure(Arc::new(service), requests.clone(), b.decisions, b.rate).await?;
    let stats = finish(service).await?;
    let embedded = summary(
        &embedded_h,
        Some(format!(
            "{} delivered, {} spooled",
            stats.delivered, stats.spooled
        )),
    );

    let kafka = match config.backend() {
        Ok(Backend::Kafka { .. }) => {
            let log = AnyLog::open(config, Access::Write).await?;
            let service = DecisionService::start(
                engine.clone(),
                log,
                &dir.join("spool-kafka"),
                bench_options(),
            )
            .await?;
            let (h, service) =
                measure(Arc::new(service), requests.clone(), b.decisions, b.rate).await?;
            let stats = finish(service).await?;
            summary(
                &h,
                Some(format!(
                    "{} delivered, {} spooled",
                    stats.delivered, stats.spooled
                )),
            )
        }
        _ => Value::Null,
    };

    // Nobody listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let unreachable = format!("127.0.0.1:{port}");
    let down_log = KafkaLog::connect_lazy(
        KafkaConfig::new(&unreachable).with_request_timeout(Duration::from_secs(1)),
    )?;
    let options = ServiceOptions {
        emitter: EmitterOptions {
            breaker: BreakerConfig {
                failure_threshold: 3,
                open_timeout: Duration::from_secs(60),
            },
            append_timeout: Duration::from_millis(200),
            ..EmitterOptions::default()
        },
        topic_timeout: Duration::from_millis(200),
        ..bench_options()
    };
    let service = Arc::new(
        DecisionService::start(engine.clone(), down_log, &dir.join("spool-down"), options).await?,
    );
    // Decide until the breaker opens, then time.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    while service.emitter_stats().map(|s| s.breaker) != Some(BreakerState::Open) {
        if Instant::now() > deadline {
            bail!("the breaker did not open within 30 s against {unreachable}");
        }
        service.decide(&requests[i % requests.len()])?;
        i += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (down_h, service) = measure(service, requests.clone(), b.decisions, b.rate).await?;
    let stats = service.emitter_stats().context("no emitter")?;
    let breaker = stats.breaker;
    let stats = finish(service).await?;
    let down = summary(
        &down_h,
        Some(format!(
            "{} spooled, {} delivered, breaker {breaker}",
            stats.spooled, stats.delivered
        )),
    );

    let ratio =
        |q: f64| down_h.value_at_quantile(q) as f64 / embedded_h.value_at_quantile(q).max(1) as f64;
    Ok(json!({
        "decisions": b.decisions,
        "rate": b.rate,
        "engine_only": engine_only,
        "embedded_up": embedded,
        "kafka_up": kafka,
        "log_down": down,
        "ratio_down_vs_up_p50": ratio(0.5),
        "ratio_down_vs_up_p99": ratio(0.99),
        "unreachable_address": unreachable,
    }))
}

/// Times `n` decisions at `rate` per second on a thread of their own (so
/// the emitter's task keeps the runtime's workers), in nanoseconds.
async fn measure(
    service: Arc<DecisionService>,
    requests: Arc<Vec<DecisionRequest>>,
    n: usize,
    rate: u64,
) -> Result<(Histogram<u64>, Arc<DecisionService>)> {
    tokio::task::spawn_blocking(move || {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
        // Warm-up: caches, allocator, the emitter's first batches.
        for r in requests.iter().take(1000.min(n)) {
            service.decide(r)?;
        }
        let gap = Duration::from_nanos(1_000_000_000u64.checked_div(rate).unwrap_or(0));
        let start = Instant::now();
        for i in 0..n {
            let due = start + gap * i as u32;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let request = &requests[i % requests.len()];
            let t = Instant::now();
            let decision = service.decide(request)?;
            let took = t.elapsed();
            std::hint::black_box(decision);
            h.record(took.as_nanos().max(1) as u64)?;
        }
        Ok((h, service))
    })
    .await
    .context("the benchmark thread panicked")?
}

async fn finish(service: Arc<DecisionService>) -> Result<ultracore_spool::EmitterStats> {
    let service = Arc::into_inner(service).context("the service is still shared")?;
    service.shutdown().await.context("no emitter")
}

fn summary(h: &Histogram<u64>, events: Option<String>) -> Value {
    let us = |v: u64| v as f64 / 1000.0;
    json!({
        "p50_us": us(h.value_at_quantile(0.5)),
        "p99_us": us(h.value_at_quantile(0.99)),
        "p999_us": us(h.value_at_quantile(0.999)),
        "max_us": us(h.max()),
        "mean_us": h.mean() / 1000.0,
        "events": events,
    })
}
