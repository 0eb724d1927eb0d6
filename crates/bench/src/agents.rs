//! `ultracore bench agents`: the customer assistant's figures.
//!
//! - `assist`: questions answered end to end (planner, card and loan
//!   agents with their tools on the runtime, critic, governance, the
//!   executions appended to a fresh embedded log), one at a time, each
//!   different (no cache hits): p50/p95/p99.
//! - `scheduling`: from submitting a task to its run starting, with a
//!   free worker (an agent that does nothing), one at a time: p50/p99.
//! - `alerts`: agent answers carrying personal data appended to
//!   `agent.executions` at `--rate` a second for `--seconds`, with the
//!   governance service running: from each execution's append to its
//!   alert's append (the records' timestamps), p50/p99.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use serde_json::json;
use ultracore_agents::assist::Assistant;
use ultracore_agents::runtime::{
    Agent, AgentOutput, AgentRuntime, Exchange, ExecutionSink, Priority, RuntimeConfig, Task,
};
use ultracore_agents::{GovernanceKey, Screen};
use ultracore_events::agents::{AgentEvent, AgentExecution, ExecutionStatus};
use ultracore_log::{
    Consumer, ConsumerOptions, Envelope, EnvelopeBuilder, EventLog, EventLogExt, Seek,
};
use ultracore_log_embedded::EmbeddedLog;
use ultracore_term::table;

use crate::Rng;

#[derive(Debug, Args)]
pub struct AgentsBench {
    /// Questions answered by `assist`.
    #[arg(long, default_value_t = 1_000)]
    questions: usize,
    /// Tasks scheduled by `scheduling`.
    #[arg(long, default_value_t = 10_000)]
    tasks: usize,
    /// Executions a second offered to the governance service.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(long)]
    json: bool,
}

fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid histogram")
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1e3
}

/// A question of the mix, different for every `i`.
fn question(rng: &mut Rng, i: usize) -> (String, &'static str) {
    let deposit = 20_000 + 1_000 * rng.below(200);
    let income = 50 + rng.below(150);
    let spend = 500 + 10 * rng.below(400);
    let customers = ["c-1", "c-2"];
    let customer = customers[i % 2];
    let q = match i % 4 {
        0 => format!("what's my card balance? also what could I borrow on {income}k a year (ref {i})"),
        1 => format!("I have ${deposit} saved for a deposit on a ${}k house", deposit / 100),
        2 => format!("which card suits me if I spend ${spend} a month, income {income}k (ref {i})"),
        _ => format!("show my recent card transactions and repayments on a home loan with ${deposit} down payment"),
    };
    (q, customer)
}

struct Idle;

impl Agent for Idle {
    fn id(&self) -> &str {
        "idle"
    }
    fn run<'a>(
        &'a self,
        _t: &'a Task,
        _m: &'a [Exchange],
    ) -> BoxFuture<'a, Result<AgentOutput, String>> {
        Box::pin(async {
            Ok(AgentOutput {
                output: json!({"text": "ok"}),
                tools: vec![],
                trace: vec![],
            })
        })
    }
}

struct Discard;

impl ExecutionSink for Discard {
    fn record(&self, _e: AgentExecution) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

pub async fn run(b: AgentsBench, seed: u64) -> Result<()> {
    let (scratch, log, store) = crate::scratch_store("ultracore-bench-agents-")?;
    ultracore_agents::demo::seed_demo_accounts(&store).await?;
    ultracore_runtime::catalogue::ensure(&log, &["agent.executions", "compliance.alerts"]).await?;
    let screen = Screen::new(GovernanceKey::load_or_create(scratch.path())?);

    // Assist, end to end.
    let (mesh, _) = ultracore_flow::setup::open_mesh(&scratch.path().join("mesh"))?;
    let assistant = Assistant::with_agents(
        log.clone(),
        store,
        mesh,
        screen.clone(),
        RuntimeConfig::default(),
    );
    let mut rng = Rng::new(seed);
    let mut assist = histogram();
    let mut withheld = 0;
    let mut withheld_example: Option<serde_json::Value> = None;
    for i in 0..b.questions {
        let (q, customer) = question(&mut rng, i);
        let started = Instant::now();
        let reply = assistant
            .assist(Some(customer), &q, &[])
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        assist.record(started.elapsed().as_micros().max(1) as u64)?;
        for a in reply.answers.iter().filter(|a| !a.passed) {
            withheld += 1;
            withheld_example.get_or_insert_with(|| {
                json!({"question": q, "agent": a.agent_id, "critic": a.critic.iter().filter(|c| !c.passed).map(|c| &c.detail).collect::<Vec<_>>()})
            });
        }
    }

    // Scheduling, with a free worker.
    let runtime = AgentRuntime::start(
        RuntimeConfig {
            cache_ttl: Duration::ZERO,
            ..RuntimeConfig::default()
        },
        vec![Arc::new(Idle)],
        Arc::new(Discard),
    );
    let mut scheduling = histogram();
    for i in 0..b.tasks {
        let outcome = runtime
            .submit(Task {
                agent_id: "idle".into(),
                input: json!({"i": i}),
                customer_id: None,
                request_id: None,
                priority: Priority::Normal,
                data_version: "1".into(),
            })
            .map_err(|e| anyhow::anyhow!(e))?
            .await?;
        scheduling.record(outcome.waited.as_micros().max(1) as u64)?;
    }
    runtime.stop();

    // Agent output → compliance alert, with the governance service running.
    let alerts = alert_latency(&log, screen, b.rate, b.seconds, seed).await?;

    let doc = json!({
        "assist": {"questions": b.questions, "p50_ms": ms(&assist, 0.5), "p95_ms": ms(&assist, 0.95), "p99_ms": ms(&assist, 0.99), "withheld": withheld, "withheld_example": withheld_example},
        "scheduling": {"tasks": b.tasks, "p50_ms": ms(&scheduling, 0.5), "p99_ms": ms(&scheduling, 0.99)},
        "alerts": alerts,
    });
    if b.json {
        println!("{doc}");
        return Ok(());
    }
    let rows = vec![
        vec![
            "assist, end to end".into(),
            format!("{:.2}", ms(&assist, 0.5)),
            format!("{:.2}", ms(&assist, 0.95)),
            format!("{:.2}", ms(&assist, 0.99)),
            "p95 < 50 ms".into(),
        ],
        vec![
            "scheduling (submit → run)".into(),
            format!("{:.3}", ms(&scheduling, 0.5)),
            "".into(),
            format!("{:.3}", ms(&scheduling, 0.99)),
            "p99 < 1 ms".into(),
        ],
        vec![
            "agent output → compliance_alert".into(),
            format!("{:.1}", alerts["p50_ms"].as_f64().unwrap_or(f64::NAN)),
            "".into(),
            format!("{:.1}", alerts["p99_ms"].as_f64().unwrap_or(f64::NAN)),
            "p99 < 100 ms".into(),
        ],
    ];
    print!(
        "{}",
        table(&["figure", "p50 ms", "p95 ms", "p99 ms", "goal"], &rows)
    );
    println!(
        "{} questions ({} answers withheld by the critic), {} tasks, {} executions with personal data at {}/s",
        b.questions,
        withheld,
        b.tasks,
        alerts["executions"],
        b.rate
    );
    Ok(())
}

async fn alert_latency(
    log: &EmbeddedLog,
    screen: Screen,
    rate: u64,
    seconds: u64,
    seed: u64,
) -> Result<serde_json::Value> {
    let token = ultracore_runtime::CancellationToken::new();
    let mut service = ultracore_agents::GovernanceService::new(log.clone(), screen);
    let spec = ultracore_agents::governance_spec();
    let stop = token.clone();
    let svc_log = log.clone();
    let service_task = tokio::spawn(async move {
        ultracore_runtime::run_standalone(
            "governance",
            &svc_log,
            &spec,
            &mut service,
            stop.cancelled_owned(),
        )
        .await
    });
    // Alerts from now on.
    let mut alerts = log
        .consumer(ConsumerOptions::new(
            format!("bench-alerts-{seed}"),
            ["compliance.alerts"],
        ))
        .await?;
    alerts.seek(Seek::End).await?;
    let sentences: Vec<_> = ultracore_governance::corpus::generate(seed, 4_000)
        .into_iter()
        .filter(|s| s.kind == ultracore_governance::corpus::Kind::Pii)
        .collect();
    let total = (rate * seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let start = tokio::time::Instant::now();
    let mut appended: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut latency = histogram();
    let mut next = start;
    let mut sent = 0usize;
    let mut seen = 0usize;
    let deadline = Instant::now() + Duration::from_secs(seconds + 30);
    while (sent < total || !appended.is_empty()) && Instant::now() < deadline {
        if sent < total && tokio::time::Instant::now() >= next {
            let s = &sentences[sent % sentences.len()];
            let e = AgentExecution {
                execution_id: format!("bench-{seed}-{sent}"),
                agent_id: "card".into(),
                status: ExecutionStatus::Succeeded,
                duration_ms: 1.0,
                input: json!({"query": "?"}),
                output: json!({"text": s.text}),
                tools: vec![],
                trace: vec![],
                customer_id: Some(format!("c-{}", sent % 100)),
                request_id: None,
                error: None,
                started_at: chrono::Utc::now(),
            };
            let record = EnvelopeBuilder::new("AgentExecution", format!("c-{}", sent % 100))
                .build(AgentEvent::Execution(e))
                .to_record();
            log.append_one("agent.executions", record).await?;
            appended.insert(format!("bench-{seed}-{sent}"), ultracore_log::now_millis());
            sent += 1;
            next += interval;
            continue;
        }
        for r in alerts.poll(1024, Duration::from_millis(5)).await? {
            let Ok(env) =
                Envelope::<ultracore_events::compliance::ComplianceEvent>::from_record(&r)
            else {
                continue;
            };
            let ultracore_events::compliance::ComplianceEvent::Alert(a) = env.payload;
            if let Some(at) = a
                .seen_at
                .execution_id
                .as_ref()
                .and_then(|id| appended.remove(id))
            {
                latency.record(((r.timestamp - at).max(0) as u64 * 1000).max(1))?;
                seen += 1;
            }
        }
    }
    token.cancel();
    service_task.await??;
    Ok(
        json!({"executions": sent, "alerted": seen, "p50_ms": ms(&latency, 0.5), "p99_ms": ms(&latency, 0.99)}),
    )
}
