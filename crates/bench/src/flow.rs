//! `ultracore bench flow`: request → completed latency of the ESG
//! optimization flow and sustained optimizations per second.
//!
//! Every service runs in this process (as in `ultracore serve`) on a fresh
//! embedded log in a temporary directory, or on the configured Kafka. The
//! request is the demo's: 20 stocks, maximum Sharpe with ESG, carbon,
//! exclusion, weight, turnover and cost constraints. Latency is measured
//! from just before the request is appended to the moment a consumer of
//! `esg-portfolio-events` reads its completion.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::oneshot;
use ultracore_esg::{EsgPortfolioEvent, TOPIC};
use ultracore_flow::{submit, Flow, FlowOptions};
use ultracore_log::{Consumer, ConsumerOptions, Envelope, EventLog, Seek};
use ultracore_log_any::{Access, AnyLog, Backend};
use uuid::Uuid;

use ultracore_flow::setup::{open_mesh, sample_request};
use ultracore_log_any::LogConfig;
use ultracore_term::table;

#[derive(Debug, Args)]
pub struct FlowBench {
    /// Requests sent one at a time for the latency figures.
    #[arg(long, default_value_t = 300)]
    requests: usize,
    /// Concurrent clients of the throughput phase.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Length of the throughput phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Run the optimization service alone (no reporting, execution or
    /// notification competing for the cores and the log).
    #[arg(long)]
    only_optimization: bool,
    #[arg(long)]
    json: bool,
}

type Waiters = Arc<Mutex<HashMap<Uuid, oneshot::Sender<Instant>>>>;

/// Reads answers and wakes the client waiting for each.
async fn route_answers(log: AnyLog, waiters: Waiters, since_millis: i64) -> Result<()> {
    let mut consumer = log
        .consumer(ConsumerOptions::new(
            format!("bench-flow-{}", Uuid::now_v7()),
            [TOPIC],
        ))
        .await?;
    consumer.seek(Seek::Timestamp(since_millis)).await?;
    loop {
        for record in consumer.poll(1024, Duration::from_millis(100)).await? {
            let Ok(env) = Envelope::<EsgPortfolioEvent>::from_record(&record) else {
                continue;
            };
            let id = match &env.payload {
                EsgPortfolioEvent::Completed(c) => c.request_id,
                EsgPortfolioEvent::Failed(f) => f.request_id,
                EsgPortfolioEvent::Requested(_) => continue,
            };
            let now = Instant::now();
            if let Some(tx) = waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id)
            {
                let _ = tx.send(now);
            }
        }
    }
}

/// One request, timed from before its append to its answer.
async fn one(log: &AnyLog, waiters: &Waiters, portfolio: &str) -> Result<Duration> {
    let request = sample_request(portfolio);
    let (tx, rx) = oneshot::channel();
    waiters
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(request.request_id, tx);
    let started = Instant::now();
    submit(log, request).await?;
    let answered = tokio::time::timeout(Duration::from_secs(60), rx).await??;
    Ok(answered - started)
}

fn micros(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

pub async fn run(config: &LogConfig, b: FlowBench) -> Result<()> {
    if b.requests == 0 || b.clients == 0 {
        bail!("--requests and --clients must be at least 1");
    }
    let mut config = config.clone();
    let scratch = tempfile::Builder::new()
        .prefix("ultracore-bench-flow-")
        .tempdir()?;
    let embedded = matches!(config.backend()?, Backend::Embedded { .. });
    if embedded {
        config.url = None;
        config.data_dir = Some(scratch.path().to_path_buf());
    }
    let log = AnyLog::open(&config, Access::Write).await?;
    // The read models: SQLite in the scratch directory, or `DATABASE_URL`.
    let database_url = std::env::var("DATABASE_URL").ok();
    let db = ultracore_es::Database::open(scratch.path(), database_url.as_deref())?;
    let (mesh, _) = open_mesh(&scratch.path().join("mesh"))?;
    let options = if b.only_optimization {
        FlowOptions::only(&[ultracore_flow::Service::Optimization], Some(mesh))
    } else {
        FlowOptions::all(mesh)
    };
    let services = options.services.len();
    let flow = Flow::start(log.clone(), db, options).await?;
    let waiters: Waiters = Arc::default();
    let since = chrono::Utc::now().timestamp_millis() - 1000;
    let router = tokio::spawn(route_answers(log.clone(), waiters.clone(), since));

    // Warm-up: data products cached, topics and groups settled.
    for _ in 0..10 {
        one(&log, &waiters, "pf-bench-warmup").await?;
    }
    let mut sequential = Histogram::<u64>::new(3)?;
    for i in 0..b.requests {
        let d = one(&log, &waiters, &format!("pf-bench-{}", i % 16)).await?;
        sequential.record(d.as_micros() as u64)?;
    }

    let deadline = Instant::now() + Duration::from_secs(b.seconds);
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..b.clients {
        let log = log.clone();
        let waiters = waiters.clone();
        clients.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3)?;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let d = one(&log, &waiters, &format!("pf-bench-c{c}-{}", n % 4)).await?;
                h.record(d.as_micros() as u64)?;
                n += 1;
            }
            anyhow::Ok(h)
        }));
    }
    let mut loaded = Histogram::<u64>::new(3)?;
    for c in clients {
        loaded.add(c.await??)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    router.abort();
    flow.stop().await?;

    let per_sec = loaded.len() as f64 / elapsed;
    let out = json!({
        "backend": log.kind(),
        "assets": 20,
        "services": services,
        "requests": b.requests,
        "p50_ms": micros(&sequential, 0.5),
        "p99_ms": micros(&sequential, 0.99),
        "max_ms": sequential.max() as f64 / 1000.0,
        "clients": b.clients,
        "seconds": elapsed,
        "optimizations_per_sec": per_sec,
        "loaded_p50_ms": micros(&loaded, 0.5),
        "loaded_p99_ms": micros(&loaded, 0.99),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
    });
    if b.json {
        println!("{out}");
        return Ok(());
    }
    println!(
        "ESG optimization flow on the {} log, 20 assets, {} in this process:",
        log.kind(),
        if b.only_optimization {
            "the optimization service alone"
        } else {
            "every service"
        }
    );
    let rows = vec![
        vec![
            format!("one at a time ({} requests)", b.requests),
            format!("{:.2}", micros(&sequential, 0.5)),
            format!("{:.2}", micros(&sequential, 0.99)),
            "-".into(),
        ],
        vec![
            format!("{} concurrent clients ({:.0} s)", b.clients, elapsed),
            format!("{:.2}", micros(&loaded, 0.5)),
            format!("{:.2}", micros(&loaded, 0.99)),
            format!("{per_sec:.0}"),
        ],
    ];
    print!(
        "{}",
        table(&["phase", ">p50 ms", ">p99 ms", ">optimizations/s"], &rows)
    );
    Ok(())
}
