//! Event sourcing from the shell: `ultracore events replay` (an aggregate's
//! state and the events that built it, at any point in time) and
//! `ultracore projections …` (status, rebuild).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use ultracore_es::account::{Account, AccountBalances};
use ultracore_es::{Aggregate, Cut, Database, EventStore, ProjectionRunner, StoreOptions};
use ultracore_log::{Error as LogError, RawEnvelope};
use ultracore_log_any::{Access, AnyLog};

use crate::output::{clip, table};
use crate::LogArgs;

/// Where read models and the stream index live.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Read-model database: unset keeps them in SQLite in the data directory
    /// (`<data dir>/ultracore.sqlite`); `sqlite:///path/file.sqlite` elsewhere;
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE?schema=NAME` in PostgreSQL
    /// (schema `ultracore_es` by default).
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The aggregate, as TYPE/ID.
    #[arg(long, value_name = "TYPE/ID")]
    aggregate: String,
    /// The state as of this time (RFC 3339, e.g. 2026-01-02T00:00:00Z).
    #[arg(long, value_name = "RFC3339", conflicts_with = "version")]
    as_of: Option<String>,
    /// The state after this version.
    #[arg(long, value_name = "N")]
    version: Option<u64>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// The projections this build knows, with their lag and checkpoints.
    ///
    /// Example: ultracore projections status --json
    Status {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Catch a projection up with the log now.
    ///
    /// Example: ultracore projections catch-up account-balances
    CatchUp {
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Delete a read model and build it again from offset 0. `es-index`
    /// rebuilds the event store's stream index.
    ///
    /// Example: ultracore projections rebuild account-balances
    Rebuild {
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// The projections this build knows.
const PROJECTIONS: &[&str] = &[
    AccountBalances::NAME,
    ultracore_flow::REPORTING_PROJECTION,
    ultracore_flow::ORDERS_PROJECTION,
];
/// The aggregate types this build can fold into a state.
const AGGREGATES: &[&str] = &[Account::TYPE, ultracore_flow::Portfolio::TYPE];

fn database(args: &LogArgs, db: &DatabaseArgs) -> Result<Database> {
    let dir: PathBuf = args.config().data_dir();
    Ok(Database::open(&dir, db.database_url.as_deref())?)
}

/// Opens the log as writer; beside a running writer of an embedded data
/// directory, reads it instead and keeps a private index in memory, so the
/// running process's files are never written by this command.
async fn open_for_reading(args: &LogArgs, db: &DatabaseArgs) -> Result<(AnyLog, Database)> {
    let config = args.config();
    match AnyLog::open(&config, Access::Write).await {
        Ok(log) => Ok((log, database(args, db)?)),
        Err(LogError::Locked { .. }) => {
            tracing::info!("data directory in use; reading the log and indexing it in memory");
            let log = AnyLog::open(&config, Access::ReadOnly).await?;
            Ok((log, Database::in_memory()?))
        }
        Err(e) => Err(e.into()),
    }
}

fn parse_aggregate(s: &str) -> Result<(&str, &str)> {
    match s.split_once('/') {
        Some((t, id)) if !t.is_empty() && !id.is_empty() => Ok((t, id)),
        _ => bail!("--aggregate must be TYPE/ID, e.g. Account/acc-1 (got '{s}')"),
    }
}

pub async fn replay(args: &LogArgs, r: ReplayArgs) -> Result<()> {
    let (aggregate_type, id) = parse_aggregate(&r.aggregate)?;
    let cut = match (&r.as_of, r.version) {
        (Some(t), _) => Cut::AsOf(
            chrono::DateTime::parse_from_rfc3339(t)
                .with_context(|| {
                    format!("--as-of '{t}' is not RFC 3339 (e.g. 2026-01-02T03:04:05Z)")
                })?
                .with_timezone(&chrono::Utc),
        ),
        (None, Some(v)) => Cut::Version(v),
        (None, None) => Cut::Latest,
    };
    let (log, db) = open_for_reading(args, &r.db).await?;
    let store = EventStore::new(log, db, StoreOptions::default())?;
    let events = store.raw_history(aggregate_type, id, cut).await?;
    // Before its first event an aggregate exists only as its empty state;
    // with no events at all, the name is probably mistyped.
    if events.is_empty() && (cut == Cut::Latest || store.version(aggregate_type, id).await? == 0) {
        bail!(
            "{aggregate_type}/{id} has no events; `ultracore events topics` lists the aggregate topics (es.TYPE)"
        );
    }
    let version = events.last().map_or(0, |e| e.version);
    let state: Value = match aggregate_type {
        Account::TYPE => state_of::<Account>(&store, id, cut).await?,
        ultracore_flow::Portfolio::TYPE => {
            state_of::<ultracore_flow::Portfolio>(&store, id, cut).await?
        }
        _ => {
            eprintln!(
                "note: this build has no aggregate named '{aggregate_type}' (it knows {}); showing its events only",
                AGGREGATES.join(", ")
            );
            Value::Null
        }
    };
    if r.json {
        let out = json!({
            "aggregate_type": aggregate_type,
            "aggregate_id": id,
            "version": version,
            "state": state,
            "events": events,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{aggregate_type}/{id} at version {version}{}",
        cut_text(cut)
    );
    println!("state: {}", serde_json::to_string_pretty(&state)?);
    println!();
    let rows: Vec<Vec<String>> = events.iter().map(event_row).collect();
    print!(
        "{}",
        table(
            &[">version", "timestamp", "event_type", ">schema", "payload"],
            &rows
        )
    );
    Ok(())
}

fn cut_text(cut: Cut) -> String {
    match cut {
        Cut::Latest => String::new(),
        Cut::Version(v) => format!(" (up to version {v})"),
        Cut::AsOf(t) => format!(" (as of {})", t.to_rfc3339()),
    }
}

fn event_row(e: &RawEnvelope) -> Vec<String> {
    vec![
        e.version.to_string(),
        e.timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        e.event_type.clone(),
        e.schema_version.to_string(),
        clip(&e.payload.to_string(), 60),
    ]
}

async fn state_of<A: Aggregate>(store: &EventStore<AnyLog>, id: &str, cut: Cut) -> Result<Value> {
    let loaded = store.load_at::<A>(id, cut).await?;
    Ok(serde_json::to_value(&loaded.state)?)
}

pub async fn projections(args: &LogArgs, command: ProjectionsCommand) -> Result<()> {
    let config = args.config();
    match command {
        ProjectionsCommand::Status { json, db } => {
            let (log, db) = open_for_reading(args, &db).await?;
            let mut statuses = Vec::new();
            for name in PROJECTIONS {
                let mut runner = runner(log.clone(), db.clone(), name)?;
                statuses.push(runner.status().await?);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&statuses)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = statuses
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.generation.to_string(),
                        s.lag.to_string(),
                        s.group.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(&["projection", ">generation", ">lag", "group"], &rows)
            );
            Ok(())
        }
        ProjectionsCommand::CatchUp { name, db } => {
            let log = AnyLog::open(&config, Access::Write).await?;
            let mut runner = runner(log, database(args, &db)?, &name)?;
            let started = std::time::Instant::now();
            let stats = runner.catch_up().await?;
            eprintln!(
                "{name}: applied {} events, skipped {} records in {:.2} s",
                stats.applied,
                stats.skipped,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        ProjectionsCommand::Rebuild { name, db } => {
            let log = AnyLog::open(&config, Access::Write).await?;
            let db = database(args, &db)?;
            let started = std::time::Instant::now();
            if name == "es-index" {
                let store = EventStore::new(log, db, StoreOptions::default())?;
                store.rebuild_index(AGGREGATES).await?;
                eprintln!(
                    "es-index rebuilt for {} in {:.2} s",
                    AGGREGATES.join(", "),
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            let mut runner = runner(log, db, &name)?;
            let stats = runner.rebuild().await?;
            eprintln!(
                "{name} rebuilt: {} events applied ({} records skipped) in {:.2} s",
                stats.applied,
                stats.skipped,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

/// A runner of any projection this build knows.
enum Runner {
    Balances(ProjectionRunner<AnyLog, AccountBalances>),
    Reporting(ProjectionRunner<AnyLog, ultracore_flow::ReportingProjection>),
    Orders(ProjectionRunner<AnyLog, ultracore_flow::OrdersProjection>),
}

macro_rules! each_runner {
    ($runner:expr, $r:ident => $body:expr) => {
        match $runner {
            Runner::Balances($r) => $body,
            Runner::Reporting($r) => $body,
            Runner::Orders($r) => $body,
        }
    };
}

impl Runner {
    async fn status(&mut self) -> Result<ultracore_es::ProjectionStatus> {
        Ok(each_runner!(self, r => r.status().await?))
    }
    async fn catch_up(&mut self) -> Result<ultracore_es::CatchUp> {
        Ok(each_runner!(self, r => r.catch_up().await?))
    }
    async fn rebuild(&mut self) -> Result<ultracore_es::CatchUp> {
        Ok(each_runner!(self, r => r.rebuild().await?))
    }
}

fn runner(log: AnyLog, db: Database, name: &str) -> Result<Runner> {
    Ok(match name {
        AccountBalances::NAME => {
            Runner::Balances(ProjectionRunner::new(log, db, AccountBalances::default())?)
        }
        ultracore_flow::REPORTING_PROJECTION => Runner::Reporting(ProjectionRunner::new(
            log,
            db,
            ultracore_flow::ReportingProjection,
        )?),
        ultracore_flow::ORDERS_PROJECTION => Runner::Orders(ProjectionRunner::new(
            log,
            db,
            ultracore_flow::OrdersProjection,
        )?),
        other => bail!(
            "unknown projection '{other}'; this build knows: {}, es-index",
            PROJECTIONS.join(", ")
        ),
    })
}
