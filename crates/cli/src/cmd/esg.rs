//! `ultracore esg submit` and `ultracore service optimization`: ESG
//! optimization requests as events, and the service that answers them.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use ultracore_esg::{EsgPortfolioEvent, OptimizationRequest, OptimizationService, TOPIC};
use ultracore_log_any::{Access, AnyLog};
use ultracore_marketdata::mesh::DataMesh;

use crate::LogArgs;

#[derive(Debug, Subcommand)]
pub enum EsgCommand {
    /// Publish a portfolio_optimization_requested event (a JSON request from
    /// a file or stdin; `request_id` is generated when absent) and, with
    /// --wait, print the answer once the optimization service has published it.
    ///
    /// Example: ultracore esg submit request.json --wait 30
    Submit(SubmitArgs),
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The request (JSON); `-` reads stdin.
    file: PathBuf,
    /// Wait up to this many seconds for the completion or failure.
    #[arg(long)]
    wait: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Answer ESG optimization requests (consumer group `optimization-service`) until Ctrl-C.
    ///
    /// Example: ultracore service optimization --mesh data/mesh
    Optimization {
        /// Directory of the data products (`ultracore mesh build`).
        #[arg(long, default_value = "data/mesh")]
        mesh: PathBuf,
    },
    /// Record the flow on the Portfolio aggregate and keep the reporting read
    /// model (groups `reporting-service`, `reporting-service.orders`).
    ///
    /// Example: KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 ultracore service reporting --addr 127.0.0.1:8081
    Reporting(AloneArgs),
    /// Stage trade orders for completed optimizations and keep the order
    /// status read model (group `execution-service`).
    ///
    /// Example: KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 ultracore service execution
    Execution(AloneArgs),
    /// Store a notification per completed or failed request and push it to
    /// live clients (group `notification-service`; SSE with --addr).
    ///
    /// Example: KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 ultracore service notification --addr 127.0.0.1:8082
    Notification(AloneArgs),
    /// Explain every trading decision with SHAP and store it (consumer group
    /// `forensics-service`) until Ctrl-C. `--retention-days N` keeps
    /// explanations N days (default 7 years).
    ///
    /// Example: ultracore service forensics --db data/forensics.sqlite --retention-days 2557 --listen 127.0.0.1:9464
    Forensics(super::forensics_service::ServiceArgs),
}

#[derive(Debug, Args)]
pub struct AloneArgs {
    /// Also serve the HTTP API (read models, SSE) on this address.
    #[arg(long)]
    addr: Option<std::net::SocketAddr>,
    #[command(flatten)]
    edge: crate::cmd::serve::EdgeArgs,
}

pub async fn service(args: &LogArgs, command: ServiceCommand) -> Result<()> {
    use crate::cmd::serve::run_services;
    use ultracore_flow::Service;
    use ultracore_runtime::RestartPolicy;
    match command {
        ServiceCommand::Reporting(a) => {
            run_services(
                args,
                &[Service::Reporting],
                None,
                a.addr.map(|addr| (addr, &a.edge)),
                RestartPolicy::Never,
                None,
            )
            .await
        }
        ServiceCommand::Execution(a) => {
            run_services(
                args,
                &[Service::Execution],
                None,
                a.addr.map(|addr| (addr, &a.edge)),
                RestartPolicy::Never,
                None,
            )
            .await
        }
        ServiceCommand::Notification(a) => {
            run_services(
                args,
                &[Service::Notification],
                None,
                a.addr.map(|addr| (addr, &a.edge)),
                RestartPolicy::Never,
                None,
            )
            .await
        }
        ServiceCommand::Forensics(s) => super::forensics_service::service(args, s).await,
        ServiceCommand::Optimization { mesh } => {
            let mesh = DataMesh::open(&mesh)?;
            let log = AnyLog::open(&args.config(), Access::Write).await?;
            eprintln!(
                "optimization service on the {} log; Ctrl-C stops it",
                log.kind()
            );
            let stats = OptimizationService::new(log, mesh)
                .run(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
            eprintln!(
                "stopped: {} completed, {} failed, {} duplicates skipped, {} dead-lettered",
                stats.completed, stats.failed, stats.duplicates_skipped, stats.dead_lettered
            );
            Ok(())
        }
    }
}

pub async fn run(args: &LogArgs, command: EsgCommand) -> Result<()> {
    let EsgCommand::Submit(submit) = command;
    let text = if submit.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(&submit.file)
            .with_context(|| format!("reading {}", submit.file.display()))?
    };
    let mut value: serde_json::Value =
        serde_json::from_str(&text).context("the request is not valid JSON")?;
    let Some(obj) = value.as_object_mut() else {
        bail!("the request must be a JSON object");
    };
    obj.entry("request_id")
        .or_insert_with(|| serde_json::json!(uuid::Uuid::now_v7()));
    let request: OptimizationRequest =
        serde_json::from_value(value).context("the request does not match the request schema")?;
    let request_id = request.request_id;
    let log = AnyLog::open(&args.config(), Access::Write).await?;
    let ack = ultracore_flow::submit(&log, request).await?;
    eprintln!(
        "submitted request {request_id} ({}:{}@{})",
        TOPIC, ack.partition, ack.offset
    );
    let Some(wait) = submit.wait else {
        println!(
            "{}",
            serde_json::json!({"status": "pending", "request_id": request_id})
        );
        return Ok(());
    };
    let answer =
        ultracore_flow::await_answer(&log, request_id, ack.timestamp, Duration::from_secs(wait))
            .await?;
    if let Some(env) = answer {
        println!("{}", serde_json::to_string(&env.to_raw())?);
        return match env.payload {
            EsgPortfolioEvent::Failed(f) => bail!(
                "optimization failed: {}{}",
                f.field.map(|x| format!("{x}: ")).unwrap_or_default(),
                f.reason
            ),
            _ => Ok(()),
        };
    }
    bail!("no answer to request {request_id} within {wait} s: is `ultracore service optimization` running against this log?")
}
