//! `ultracore demo`: the headline flow end to end on the configured log
//! (the embedded one by default). It starts the optimization, reporting,
//! execution and notification services in this process, publishes an ESG
//! optimization request for a sample portfolio, waits for the completion,
//! and prints the result and every event the request caused.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use ultracore_esg::{EsgPortfolioEvent, OptimizationResult};
use ultracore_flow::setup::sample_request;
use ultracore_flow::{await_answer, submit, Flow, FlowOptions};
use ultracore_log::{Consumer, ConsumerOptions, EventLog, RawEnvelope, Record};
use ultracore_log_any::{Access, AnyLog};

use crate::cmd::serve::{open_database, open_mesh};
use crate::output::{clip, table};
use crate::LogArgs;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print only the `portfolio_optimization_completed` envelope, as one JSON line.
    #[arg(long)]
    json: bool,
    /// The sample portfolio's id (runs accumulate history on it).
    #[arg(long, default_value = "pf-demo")]
    portfolio: String,
}

pub async fn run(args: &LogArgs, demo: DemoArgs) -> Result<()> {
    let config = args.config();
    let log = AnyLog::open(&config, Access::Write).await?;
    let db = open_database(&config)?;
    let mesh = open_mesh(&config.data_dir().join("mesh"))?;
    let flow = Flow::start(log.clone(), db, FlowOptions::all(mesh)).await?;
    let outcome = run_flow(&log, &flow, &demo).await;
    flow.stop().await?;
    outcome
}

async fn run_flow(log: &AnyLog, flow: &Flow<AnyLog>, demo: &DemoArgs) -> Result<()> {
    let request = sample_request(&demo.portfolio);
    let rid = request.request_id;
    let started = Instant::now();
    let ack = submit(log, request).await?;
    if !demo.json {
        println!(
            "Published portfolio_optimization_requested {rid} for portfolio '{}' on the {} log \
             (esg-portfolio-events:{}@{}).",
            demo.portfolio,
            log.kind(),
            ack.partition,
            ack.offset
        );
    }
    let Some(answer) = await_answer(log, rid, ack.timestamp, Duration::from_secs(60)).await? else {
        bail!("no answer to request {rid} within 60 s: see the log above for the optimization service's error");
    };
    let latency = started.elapsed();
    let result = match &answer.payload {
        EsgPortfolioEvent::Completed(r) => r.as_ref().clone(),
        EsgPortfolioEvent::Failed(f) => bail!(
            "the optimization failed: {}{}",
            f.field
                .as_ref()
                .map(|x| format!("{x}: "))
                .unwrap_or_default(),
            f.reason
        ),
        EsgPortfolioEvent::Requested(_) => unreachable!("await_answer returns answers"),
    };
    if demo.json {
        println!("{}", serde_json::to_string(&answer.to_raw())?);
        return Ok(());
    }
    println!(
        "Completed in {:.1} ms (request → completion event).\n",
        latency.as_secs_f64() * 1e3
    );
    print_result(&result);

    // Downstream: orders staged and a notification, both read models.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut orders, mut note) = (Vec::new(), None);
    while Instant::now() < deadline {
        orders = flow.orders().of(&demo.portfolio)?;
        orders.retain(|o| o.request_id == rid.to_string());
        note = flow
            .notifications()
            .latest(Some(&demo.portfolio), 20)?
            .into_iter()
            .find(|n| n.request_id == rid.to_string());
        let recorded = flow.reports().optimization(rid)?.is_some_and(|v| {
            v.status == "completed" && (v.orders_staged > 0 || result.trades.is_empty())
        });
        if note.is_some() && recorded && (!orders.is_empty() || result.trades.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("\nOrders staged by the execution service (whole units, ≥ 100 notional):");
    let rows: Vec<Vec<String>> = orders
        .iter()
        .map(|o| {
            vec![
                o.ticker.clone(),
                o.side.clone(),
                o.units.to_string(),
                format!("{:.2}", o.reference_price),
                format!("{:.2}", o.notional),
                o.status.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["ticker", "side", ">units", ">price", ">notional", "status"],
            &rows
        )
    );
    if let Some(n) = note {
        println!("\nNotification: {}", n.message);
    }

    println!("\nEvents caused by this request (correlation id {rid}):");
    let rows = correlated_events(log, &rid.to_string()).await?;
    print!(
        "{}",
        table(
            &[
                "topic",
                ">partition",
                ">offset",
                "event_type",
                "aggregate",
                ">version"
            ],
            &rows
        )
    );
    println!(
        "\nTry: ultracore serve   then   curl -H \"Authorization: Bearer $ULTRACORE_API_KEY\" http://127.0.0.1:8080/api/v1/portfolios/{}",
        demo.portfolio
    );
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

fn print_result(r: &OptimizationResult) {
    let mut before: BTreeMap<String, f64> = r.weights.clone();
    for t in &r.trades {
        *before.entry(t.ticker.clone()).or_insert(0.0) -= t.weight_change;
    }
    let rows: Vec<Vec<String>> = before
        .iter()
        .filter(|(t, w)| w.abs() > 1e-6 || r.weights.get(*t).is_some_and(|x| x.abs() > 1e-6))
        .map(|(t, w)| {
            let after = r.weights.get(t).copied().unwrap_or(0.0);
            vec![t.clone(), pct(*w), pct(after), pct(after - w)]
        })
        .collect();
    println!("Weights (portfolio value {:.2}):", r.portfolio_value);
    print!(
        "{}",
        table(&["ticker", ">before", ">after", ">change"], &rows)
    );

    println!("\nTrades:");
    let rows: Vec<Vec<String>> = r
        .trades
        .iter()
        .map(|t| {
            vec![
                t.ticker.clone(),
                format!("{:?}", t.side).to_lowercase(),
                pct(t.weight_change),
                format!("{:.2}", t.units),
                format!("{:.2}", t.notional),
                format!("{:.2}", t.estimated_cost),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "ticker",
                "side",
                ">Δ weight",
                ">units",
                ">notional",
                ">est. cost"
            ],
            &rows
        )
    );

    println!("\nBefore and after:");
    let f = |name: &str, b: String, a: String| vec![name.to_owned(), b, a];
    let rows = vec![
        f(
            "expected return",
            pct(r.before.expected_return),
            pct(r.after.expected_return),
        ),
        f(
            "volatility",
            pct(r.before.volatility),
            pct(r.after.volatility),
        ),
        f(
            "Sharpe ratio",
            format!("{:.3}", r.before.sharpe),
            format!("{:.3}", r.after.sharpe),
        ),
        f(
            "ESG score",
            format!("{:.1}", r.before.esg_score),
            format!("{:.1}", r.after.esg_score),
        ),
        f(
            "carbon intensity",
            format!("{:.1}", r.before.carbon_intensity),
            format!("{:.1}", r.after.carbon_intensity),
        ),
        f("turnover", pct(r.before.turnover), pct(r.after.turnover)),
    ];
    print!("{}", table(&["metric", ">before", ">after"], &rows));

    println!("\nWhy:");
    for line in &r.explanation {
        println!("  - {line}");
    }
}

/// Every event on the flow's topics whose correlation id is `correlation`.
async fn correlated_events(log: &AnyLog, correlation: &str) -> Result<Vec<Vec<String>>> {
    let topics = [
        ultracore_esg::TOPIC.to_owned(),
        ultracore_events::portfolio::TOPIC.to_owned(),
        ultracore_es::topic_for("Portfolio"),
    ];
    let mut rows = Vec::new();
    for topic in topics {
        let Ok(info) = log.describe_topic(&topic).await else {
            continue;
        };
        let total = info.records();
        let mut consumer = log
            .consumer(ConsumerOptions::new(
                format!("demo-events-{}", uuid::Uuid::now_v7()),
                [topic.clone()],
            ))
            .await?;
        let mut seen = 0u64;
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen < total && Instant::now() < deadline {
            let batch: Vec<Record> = consumer.poll(1024, Duration::from_millis(100)).await?;
            seen += batch.len() as u64;
            for r in batch {
                let Ok(e) = RawEnvelope::from_bytes(&r.value) else {
                    continue;
                };
                if e.correlation_id.as_deref() == Some(correlation) {
                    rows.push((
                        e.timestamp,
                        vec![
                            topic.clone(),
                            r.partition.to_string(),
                            r.offset.to_string(),
                            e.event_type,
                            clip(&format!("{}/{}", e.aggregate_type, e.aggregate_id), 30),
                            e.version.to_string(),
                        ],
                    ));
                }
            }
        }
    }
    rows.sort_by_key(|(t, _)| *t);
    Ok(rows.into_iter().map(|(_, r)| r).collect())
}
