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

use ultracore_audit::AuditService;

use crate::cmd::serve::{catalogue_services, open_catalogue, open_database, open_mesh};
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
    let mesh_dir = config.data_dir().join("mesh");
    let mesh = open_mesh(&mesh_dir)?;
    // The data mesh catalogue beside the flow: the optimizations product
    // refreshed by the request's events, its lineage recorded as it runs.
    let catalogue = std::sync::Arc::new(std::sync::OnceLock::new());
    let (slot, catalogue_log, catalogue_config) = (catalogue.clone(), log.clone(), config.clone());
    let flow = Flow::start_with(
        log.clone(),
        db,
        FlowOptions::all(mesh),
        |beside| async move {
            let c = open_catalogue(&beside.store, &beside.registry, beside.lineage, &mesh_dir)
                .await
                .map_err(|e| format!("{e:#}"))?;
            let _ = slot.set(c.clone());
            Ok(catalogue_services(&catalogue_config, c, catalogue_log))
        },
    )
    .await?;
    // Sample card accounts for `ultracore assist --customer c-1`.
    ultracore_agents::demo::seed_demo_accounts(flow.store()).await?;
    let audit = start_audit(&config, &log);
    let outcome = run_flow(
        &log,
        &flow,
        &demo,
        audit.as_ref().map(|a| &a.0),
        catalogue.get(),
    )
    .await;
    if let Some((_, token, run)) = audit {
        token.cancel();
        run.await??;
    }
    flow.stop().await?;
    outcome
}

type RunningAudit = (
    AuditService,
    ultracore_runtime::CancellationToken,
    tokio::task::JoinHandle<Result<(), ultracore_runtime::Failure>>,
);

/// The audit service on the demo's log (as `serve` runs it), or `None`
/// with a note when its trail is in use.
fn start_audit(config: &ultracore_log_any::LogConfig, log: &AnyLog) -> Option<RunningAudit> {
    let mut options = crate::cmd::serve::AuditArgs::defaults().options(config);
    options.checkpoint_interval = Duration::from_millis(200);
    let (service, opened) = match AuditService::open(options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("the audit trail is left out of this run: {e}");
            return None;
        }
    };
    if let Some(vkey) = opened.new_key {
        eprintln!(
            "started the audit trail in {}/audit; its verifier key: {vkey}",
            config.data_dir().display()
        );
    }
    let mut sup = ultracore_runtime::Supervisor::new(Default::default(), Default::default());
    sup.add(service.registration(log.clone()));
    let token = sup.token();
    let run = tokio::spawn(sup.run(token.clone().cancelled_owned()));
    Some((service, token, run))
}

/// The optimizations data product once the request's events refreshed it:
/// its version, the request's row, and the lineage the services recorded.
async fn print_data_product(c: &ultracore_mesh::Catalogue<AnyLog>, rid: &str) {
    let query = ultracore_mesh::ProductQuery {
        filters: vec![ultracore_mesh::Filter {
            column: "request_id".into(),
            op: ultracore_mesh::Op::Eq,
            value: serde_json::json!(rid),
        }],
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let answer = loop {
        let answer = c.query("optimizations", query.clone()).ok().map(|(a, _)| a);
        let sharpe_known = answer.as_ref().is_some_and(|a| {
            let at = a.columns.iter().position(|c| c == "sharpe");
            a.rows.first().zip(at).is_some_and(|(r, i)| !r[i].is_null())
        });
        if sharpe_known || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let Some(answer) = answer else {
        return;
    };
    let Some(lineage) = c.product_lineage("optimizations") else {
        return;
    };
    println!(
        "\nData product 'optimizations' is at version {} ({} refreshes); the request's row:",
        answer.version,
        c.product("optimizations").map(|p| p.refreshes).unwrap_or(0)
    );
    if let Some(row) = answer.rows.first() {
        let rows: Vec<Vec<String>> = answer
            .columns
            .iter()
            .zip(row)
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                let shown = match v {
                    serde_json::Value::String(t) => t.clone(),
                    serde_json::Value::Number(n) if n.is_f64() => {
                        format!("{:.4}", n.as_f64().unwrap_or(f64::NAN))
                    }
                    other => other.to_string(),
                };
                vec![k.clone(), clip(&shown, 60)]
            })
            .collect();
        print!("{}", table(&["column", "value"], &rows));
    }
    let producers: Vec<&str> = lineage
        .producers
        .iter()
        .map(|p| p.service.as_str())
        .collect();
    println!(
        "Lineage, as the services recorded it: written by {}; read by {}",
        if producers.is_empty() {
            "-".into()
        } else {
            producers.join(", ")
        },
        lineage.downstream_groups.join(", ")
    );
}

/// Where the request's events are in the audit trail, once a signed
/// checkpoint covers them, and one of them proven against it.
async fn print_audit(audit: &AuditService, events: &[(Record, RawEnvelope)]) -> Result<()> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let trail = audit.trail();
    let deadline = Instant::now() + Duration::from_secs(15);
    let proofs = loop {
        let attempt: Result<Vec<_>, _> = {
            let t = trail.lock().unwrap_or_else(|p| p.into_inner());
            events
                .iter()
                .map(|(r, _)| t.inclusion(&r.topic, r.partition, r.offset, None))
                .collect()
        };
        match attempt {
            Ok(p) => break p,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                println!("\nAudit trail: not signed yet ({e})");
                return Ok(());
            }
        }
    };
    let (latest, vkey) = {
        let t = trail.lock().unwrap_or_else(|p| p.into_inner());
        (t.latest().cloned(), t.verifier().to_vkey())
    };
    let Some(latest) = latest else {
        return Ok(());
    };
    let root: ultracore_audit::Hash = b64
        .decode(&latest.root_hash)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("a root is 32 bytes"))?;
    println!(
        "\nAudit trail: these {} events are leaves {} of the {}-leaf tree signed by {vkey}:",
        events.len(),
        proofs
            .iter()
            .map(|p| p.leaf_index.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        latest.tree_size
    );
    // Each record's leaf recomputed from the log, walked up its audit path
    // to the signed root.
    for ((record, envelope), proof) in events.iter().zip(&proofs) {
        let path: Vec<ultracore_audit::Hash> = proof
            .audit_path
            .iter()
            .filter_map(|h| b64.decode(h).ok()?.try_into().ok())
            .collect();
        let leaf = ultracore_audit::record_hash(record)?;
        let ok = ultracore_audit::verify_inclusion(
            &leaf,
            proof.leaf_index,
            proof.tree_size,
            &path,
            &root,
        )
        .is_ok();
        println!(
            "  {:<34} leaf {:>6}: {} hashes to the root, {}",
            envelope.event_type,
            proof.leaf_index,
            path.len(),
            if ok { "verified" } else { "DOES NOT VERIFY" }
        );
    }
    println!("Check the whole log against the trail: ultracore audit verify --key '{vkey}'");
    Ok(())
}

async fn run_flow(
    log: &AnyLog,
    flow: &Flow<AnyLog>,
    demo: &DemoArgs,
    audit: Option<&AuditService>,
    catalogue: Option<&std::sync::Arc<ultracore_mesh::Catalogue<AnyLog>>>,
) -> Result<()> {
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
    let events = correlated_events(log, &rid.to_string()).await?;
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|(r, e)| {
            vec![
                r.topic.clone(),
                r.partition.to_string(),
                r.offset.to_string(),
                e.event_type.clone(),
                clip(&format!("{}/{}", e.aggregate_type, e.aggregate_id), 30),
                e.version.to_string(),
            ]
        })
        .collect();
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
    if let Some(audit) = audit {
        print_audit(audit, &events).await?;
    }
    if let Some(c) = catalogue {
        print_data_product(c, &rid.to_string()).await;
    }
    println!(
        "\nTry: ultracore serve   then   curl -H \"Authorization: Bearer $ULTRACORE_API_KEY\" http://127.0.0.1:8080/api/v1/portfolios/{}",
        demo.portfolio
    );
    println!("     ultracore mesh search portfolio   ·   ultracore mesh lineage optimizations");
    println!("     the console: ultracore serve, then open http://127.0.0.1:8080/ and sign in with the admin key it prints (topology, request flow, portfolios)");
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

/// Every event on the flow's topics whose correlation id is `correlation`,
/// in the order they happened.
async fn correlated_events(log: &AnyLog, correlation: &str) -> Result<Vec<(Record, RawEnvelope)>> {
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
                    rows.push((r, e));
                }
            }
        }
    }
    rows.sort_by_key(|(_, e)| e.timestamp);
    Ok(rows)
}
