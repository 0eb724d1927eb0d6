//! `ultracore assist "QUESTION"`: the customer assistant on this data
//! directory — the planner, the card and loan agents with their tools, the
//! critic and governance (personal data masked before anything is
//! recorded; each value raises a compliance alert).

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
    /// Print the whole reply as JSON: intents and their cues, each agent's
    /// answer, tools, critic checks and masked entities.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: &LogArgs, a: AssistArgs) -> Result<()> {
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
    let screen = Screen::new(GovernanceKey::load_or_create(&config.data_dir())?);
    let assistant = Assistant::with_agents(log, store, screen, RuntimeConfig::default());
    let reply = assistant
        .assist(a.customer.as_deref(), &a.query)
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
