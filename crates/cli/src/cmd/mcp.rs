//! `ultracore mcp`: the MCP server on stdio, for AI agents.
//!
//! On the embedded log this process is the log's only writer, so it also
//! runs the optimization service: a request submitted through the tool is
//! answered without another process. On Kafka it only submits and reads;
//! the services run elsewhere (`ultracore service optimization`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use ultracore_esg::{ensure_topic, OptimizationService};
use ultracore_log_any::{Access, AnyLog};
use ultracore_marketdata::mesh::DataMesh;
use ultracore_mcp::{serve_stdio, CancellationToken, McpServer, TopicResults};

use crate::LogArgs;

#[derive(Debug, Args)]
pub struct McpArgs {
    /// Directory of the data products (`ultracore mesh build`): prices for
    /// the risk metrics and, on the embedded log, for the optimizations.
    #[arg(long, env = "ULTRACORE_MESH_DIR", default_value = "data/mesh")]
    mesh: PathBuf,
}

pub async fn run(log_args: &LogArgs, args: McpArgs) -> Result<()> {
    let mesh = DataMesh::open(&args.mesh).with_context(|| {
        format!(
            "opening the data products in {} (build them with `ultracore mesh build --out {0}`, \
             or point --mesh / ULTRACORE_MESH_DIR at them)",
            args.mesh.display()
        )
    })?;
    let log = AnyLog::open(&log_args.config(), Access::Write).await?;
    ensure_topic(&log).await?;
    let stop = CancellationToken::new();
    let service = match &log {
        AnyLog::Embedded(_) => {
            let service = OptimizationService::new(log.clone(), mesh.clone());
            let stop = stop.clone();
            Some(tokio::spawn(async move {
                service.run(stop.cancelled_owned()).await
            }))
        }
        AnyLog::Kafka(_) => None,
    };
    let results = TopicResults::start(log.clone()).await?;
    tracing::info!(
        log = log.kind(),
        mesh = %args.mesh.display(),
        optimization_service = service.is_some(),
        "MCP server on stdio"
    );
    // The assistant, its agents' tools and the ESG preference tools, as
    // `serve` offers them: the local user is admin over every customer.
    let config = log_args.config();
    let store = ultracore_es::EventStore::new(
        log.clone(),
        crate::cmd::serve::open_database(&config)?,
        ultracore_es::StoreOptions::default(),
    )?;
    ultracore_runtime::catalogue::ensure(&log, &[ultracore_events::agents::TOPIC]).await?;
    let screen = ultracore_agents::Screen::new(ultracore_agents::GovernanceKey::load_or_create(
        &config.data_dir(),
    )?);
    let assistant = Arc::new(crate::cmd::assist::with_configured_model(
        ultracore_agents::assist::Assistant::with_agents(
            log.clone(),
            store.clone(),
            mesh.clone(),
            screen.clone(),
            ultracore_agents::runtime::RuntimeConfig::default(),
        ),
    )?);
    let crm = Arc::new(ultracore_agents::crm::Crm::open(log.clone(), screen).await?);
    let server =
        McpServer::new(log, mesh, Arc::new(results)).with_agents(ultracore_mcp::AgentTools {
            assistant,
            store,
            crm,
        });
    let served = serve_stdio(server, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    // The service commits what it answered before it returns.
    stop.cancel();
    if let Some(task) = service {
        let stats = task.await.context("the optimization service panicked")??;
        tracing::info!(
            completed = stats.completed,
            failed = stats.failed,
            "optimization service stopped"
        );
    }
    served?;
    Ok(())
}
