//! `ultracore assist "QUESTION"`: the customer assistant on this data
//! directory — the planner, the card, loan and wealth agents with their
//! tools (the wealth agent on the data products in `<data-dir>/mesh`), the
//! critic and governance (personal data masked before anything is
//! recorded; each value raises a compliance alert).
//!
//! With `ULTRACORE_MODEL_URL` and `ULTRACORE_MODEL` set (and optionally
//! `ULTRACORE_MODEL_API_KEY`, `ULTRACORE_MODEL_TIMEOUT_MS`), a language
//! model at that OpenAI-compatible http endpoint rewords the answers that
//! passed; see [`with_configured_model`].

use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use ultracore_agents::assist::Assistant;
use ultracore_agents::runtime::RuntimeConfig;
use ultracore_agents::{GovernanceKey, Screen};
use ultracore_es::{EventStore, StoreOptions};
use ultracore_log::Error as LogError;
use ultracore_log_any::{Access, AnyLog};

use crate::output::table;
use crate::LogArgs;

#[derive(Debug, Args)]
pub struct AssistArgs {
    /// The question, as the customer asks it.
    query: String,
    /// The customer asking (their card account is `card-<ID>`; `ultracore
    /// demo` opens sample accounts for c-1 and c-2).
    #[arg(long, env = "ULTRACORE_CUSTOMER")]
    customer: Option<String>,
    /// A portfolio the customer may see (repeat, or comma-separate): the
    /// wealth agent reads and rebalances only these (`ultracore demo`
    /// optimizes pf-demo).
    #[arg(
        long = "portfolio",
        env = "ULTRACORE_PORTFOLIOS",
        value_delimiter = ','
    )]
    portfolios: Vec<String>,
    /// Print the whole reply as JSON: intents and their cues, each agent's
    /// answer, tools, critic checks and masked entities.
    #[arg(long)]
    json: bool,
}

/// What the agents work with on this data directory.
struct Parts {
    log: AnyLog,
    store: EventStore<AnyLog>,
    mesh: ultracore_marketdata::mesh::DataMesh,
    screen: Screen,
}

async fn open(args: &LogArgs) -> Result<Parts> {
    let config = args.config();
    let log = match AnyLog::open(&config, Access::Write).await {
        Err(LogError::Locked { .. }) => anyhow::bail!(
            "the data directory {} is in use by a running server: stop it, or ask the server",
            config.data_dir().display()
        ),
        other => other?,
    };
    let db = crate::cmd::serve::open_database(&config)?;
    let store = EventStore::new(log.clone(), db, StoreOptions::default())?;
    ultracore_runtime::catalogue::ensure(&log, &[ultracore_events::agents::TOPIC])
        .await
        .context("creating agent.executions")?;
    let mesh = crate::cmd::serve::open_mesh(&config.data_dir().join("mesh"))?;
    let screen = Screen::new(GovernanceKey::load_or_create(&config.data_dir())?);
    Ok(Parts {
        log,
        store,
        mesh,
        screen,
    })
}

#[derive(Debug, clap::Subcommand)]
pub enum AgentsCommand {
    /// Run an execution again from its agent_execution event (no cache, no
    /// memory, no effects) and say whether the answer is the same, or what
    /// changed and why.
    ///
    /// Example: ultracore agents replay 0190f7a2-3c4d-7e5f-8a9b-0c1d2e3f4a5b
    Replay {
        /// The execution's id (`ultracore assist --json` shows them, as do
        /// the events on agent.executions).
        execution_id: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn agents(args: &LogArgs, command: AgentsCommand) -> Result<()> {
    let AgentsCommand::Replay { execution_id, json } = command;
    let p = open(args).await?;
    let recorded = ultracore_agents::replay::find(&p.log, &execution_id)
        .await
        .map_err(|e| anyhow::anyhow!(e))?
        .with_context(|| {
            format!("no execution {execution_id} on agent.executions in this data directory")
        })?;
    let agents = ultracore_agents::assist::agents(p.log, p.store, p.mesh);
    let replay = ultracore_agents::replay::replay(&agents, &p.screen, &recorded)
        .await
        .map_err(|e| anyhow::anyhow!("the replay failed: {e}"))?;
    if json {
        println!("{}", serde_json::to_string(&replay)?);
        return Ok(());
    }
    println!(
        "execution {} ({} agent): {}",
        replay.execution_id,
        replay.agent_id,
        if replay.same {
            "same answer"
        } else {
            "changed"
        }
    );
    let rows: Vec<Vec<String>> = replay
        .tools
        .iter()
        .map(|t| vec![t.tool.clone(), t.change.to_owned(), t.detail.clone()])
        .collect();
    if !rows.is_empty() {
        print!("{}", table(&["tool", "then → now", "detail"], &rows));
    }
    for d in &replay.differences {
        println!("  {}: {} → {}", d.path, d.recorded, d.replayed);
    }
    println!("{}", replay.explanation);
    Ok(())
}

/// `assistant` with the language model the environment configures
/// (`ULTRACORE_MODEL_URL`, …; none when it is unset): `assist`, `serve` and
/// `mcp` build their assistant through this.
pub fn with_configured_model<L: ultracore_log::EventLog>(
    assistant: Assistant<L>,
) -> Result<Assistant<L>> {
    let Some(model) =
        ultracore_agents::OpenAiCompatible::from_env().context("configuring the language model")?
    else {
        return Ok(assistant);
    };
    // The model and where it is; never the key.
    tracing::info!(model = model.model(), host = %model.host(),
        "a language model rewords the agents' answers");
    Ok(assistant.with_model(Arc::new(model)))
}

pub async fn run(args: &LogArgs, a: AssistArgs) -> Result<()> {
    let p = open(args).await?;
    let assistant = with_configured_model(Assistant::with_agents(
        p.log,
        p.store,
        p.mesh,
        p.screen,
        RuntimeConfig::default(),
    ))?;
    let reply = assistant
        .assist(a.customer.as_deref(), &a.query, &a.portfolios)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if a.json {
        println!("{}", serde_json::to_string(&reply)?);
        return Ok(());
    }
    let intents: Vec<&str> = reply.intents.iter().map(|i| i.name()).collect();
    println!("intents: {}", intents.join(", "));
    if !reply.answers.is_empty() {
        let rows: Vec<Vec<String>> = reply
            .answers
            .iter()
            .map(|x| {
                vec![
                    x.agent_id.clone(),
                    x.status.name().to_owned(),
                    if x.tools.is_empty() {
                        "–".into()
                    } else {
                        x.tools.join(", ")
                    },
                    if x.passed {
                        "passed".into()
                    } else {
                        "withheld".into()
                    },
                    if x.masked.is_empty() {
                        "–".into()
                    } else {
                        x.masked.join(", ")
                    },
                    if x.cached {
                        "cache".into()
                    } else {
                        format!("{:.1} ms", reply.duration_ms)
                    },
                ]
            })
            .collect();
        print!(
            "{}",
            table(
                &["agent", "status", "tools", "critic", "masked", "time"],
                &rows
            )
        );
    }
    println!("\n{}", reply.text);
    Ok(())
}
