//! `ultracore`: the one binary of the UltraCore platform.
//!
//! # Layout
//!
//! - `cmd/events`: `ultracore events …`: topics, produce, tail, lag, repair.
//! - `cmd/es`: `ultracore events replay`, `ultracore projections …`.
//! - `ultracore bench …`: the benchmarks, in the `ultracore-bench` crate.
//! - `cmd/demo`: `ultracore demo`: the guided end-to-end run.
//! - `cmd/serve`: `ultracore serve` and `ultracore service …`: the API and the flow's services.
//! - `conversations`: the assistant's conversations in the operational tables.
//! - `emit`: publishing a command's events without making it wait.
//! - `cmd/forensics`: `ultracore forensics explain`: SHAP values of a tree model's predictions.
//! - `cmd/decide`: `ultracore decide`, `ultracore models reload`: trading decisions and model updates.
//! - `cmd/forensics_service`: `ultracore service forensics`, `ultracore forensics show`.
//! - `cmd/mcp`: `ultracore mcp`: the MCP server for AI agents, on stdio.
//! - `cmd/keys`: `ultracore keys …`: API keys of the data directory.
//! - `cmd/audit`: `ultracore audit …`: the audit trail, offline.
//! - `cmd/cdc`: `ultracore cdc …`: change data capture: relay, status, verify.
//! - `output`: tables for humans (the `ultracore-term` crate).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use ultracore_log_any::LogConfig;

mod cmd;
mod conversations;
mod emit;
mod mesh_sources;
mod oidc;
use ultracore_term as output;

/// UltraCore: an event-driven wealth and trading core. Every fact is an
/// event on a durable log; services react to events and publish new ones.
#[derive(Debug, Parser)]
#[command(name = "ultracore", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Command,
}

/// Where the event log is. With nothing set, the embedded log in ./data.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// The log: `file:///path`, a directory, or `kafka://host:9092`. Wins over the variables below.
    #[arg(long = "log", global = true, env = "ULTRACORE_LOG", value_name = "URL")]
    pub url: Option<String>,
    /// Data directory of the embedded log [default: data].
    #[arg(long, global = true, env = "ULTRACORE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// `embedded` or `kafka`.
    #[arg(long, global = true, env = "EVENT_STORE_TYPE", value_name = "TYPE")]
    pub event_store_type: Option<String>,
    /// Kafka brokers (`host:port,…`); selects the Kafka backend when set.
    #[arg(
        long,
        global = true,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        value_name = "SERVERS"
    )]
    pub kafka_bootstrap_servers: Option<String>,
    /// Prefix of every Kafka topic name, so deployments can share a cluster.
    #[arg(long, global = true, env = "KAFKA_TOPIC_PREFIX", value_name = "PREFIX")]
    pub kafka_topic_prefix: Option<String>,
    /// Retention of topics created without one, in days.
    #[arg(
        long,
        global = true,
        env = "EVENT_STORE_RETENTION_DAYS",
        value_name = "DAYS"
    )]
    pub retention_days: Option<u64>,
    /// Whether `--retention-days` was given on the command line (not from
    /// `EVENT_STORE_RETENTION_DAYS`): the forensics service reads it as its
    /// own retention only then.
    #[arg(skip)]
    pub retention_days_from_command_line: bool,
}

impl LogArgs {
    pub fn config(&self) -> LogConfig {
        LogConfig {
            url: self.url.clone(),
            store_type: self.event_store_type.clone(),
            bootstrap_servers: self.kafka_bootstrap_servers.clone(),
            topic_prefix: self.kafka_topic_prefix.clone(),
            retention_days: self.retention_days,
            data_dir: self.data_dir.clone(),
        }
    }

    /// Whether the user named a log. Commands that work without one
    /// (analytics) publish their events only then.
    pub fn is_configured(&self) -> bool {
        self.url.is_some()
            || self.data_dir.is_some()
            || self.event_store_type.is_some()
            || self.kafka_bootstrap_servers.is_some()
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the guided demo on the embedded log.
    ///
    /// Example: ultracore demo
    Demo(cmd::demo::DemoArgs),
    /// Inspect and use the event log.
    #[command(subcommand)]
    Events(cmd::events::EventsCommand),
    /// Risk and return per asset (empyrical's definitions, annualised over 252 days).
    ///
    /// Example: ultracore risk --prices sample-data/factor_etf_prices.csv --lookback-years 5 --json
    Risk(cmd::analytics::RiskArgs),
    /// Correlation matrix of daily returns.
    ///
    /// Example: ultracore correlation --prices sample-data/factor_etf_prices.csv --tickers MTUM,QUAL,USMV
    Correlation(cmd::analytics::CorrelationArgs),
    /// Mean-variance optimization (long-only by default, fully invested).
    ///
    /// Example: ultracore optimize --prices sample-data/sp500_prices.csv --lookback-years 5 --objective efficient-risk --target-volatility 0.2 --plot frontier.svg
    Optimize(cmd::analytics::OptimizeArgs),
    /// Price data files.
    #[command(subcommand)]
    Etf(cmd::analytics::EtfCommand),
    /// ESG portfolio optimization requests.
    #[command(subcommand)]
    Esg(cmd::esg::EsgCommand),
    /// Run the HTTP API and every service (optimization, reporting,
    /// execution, notification) in one process, on the embedded log or on
    /// Kafka when configured.
    ///
    /// Example: ultracore serve --addr 127.0.0.1:8080
    Serve(cmd::serve::ServeArgs),
    /// Run one service alone (scale out by running several against Kafka).
    #[command(subcommand)]
    Service(cmd::esg::ServiceCommand),
    /// The data mesh's data products (prices and ESG).
    #[command(subcommand)]
    Mesh(cmd::mesh::MeshCommand),
    /// Read models fed by events: status, catch-up, rebuild.
    #[command(subcommand)]
    Projections(cmd::es::ProjectionsCommand),
    /// Measure performance; prints figures (or one JSON object with --json).
    Bench(ultracore_bench::Bench),
    /// Explain tree-model predictions (SHAP values).
    #[command(subcommand)]
    Forensics(cmd::forensics::ForensicsCommand),
    /// Serve UltraCore's tools to AI agents over MCP on stdin/stdout
    /// (optimize_portfolio_esg, get_optimization_result,
    /// calculate_risk_metrics). On the embedded log it also runs the
    /// optimization service. Logs go to stderr.
    ///
    /// Example: ultracore --data-dir /var/lib/ultracore mcp --mesh /var/lib/ultracore/mesh
    Mcp(cmd::mcp::McpArgs),
    /// Make one trading decision: the regime specialists' ensemble, sized and
    /// risk-checked; publishes trading_decision, risk_decision (and
    /// regime_change) when a log is configured.
    ///
    /// Example: ultracore decide --features examples/decision.json
    Decide(cmd::decide::DecideArgs),
    /// The regime specialists: compare a retrained set and publish model_update events.
    #[command(subcommand)]
    Models(cmd::decide::ModelsCommand),
    /// API keys of the data directory (`<data dir>/keys.json`, stored
    /// hashed): create, list, revoke. Clients send a key as
    /// `Authorization: Bearer <key>`.
    ///
    /// Example: ultracore --data-dir /var/lib/ultracore keys create --role viewer --portfolio pf-1
    #[command(subcommand)]
    Keys(cmd::keys::KeysCommand),
    /// The Epsilon Agent, a learned ESG allocation policy: train it
    /// walk-forward and backtest it against the classic strategies.
    ///
    /// Example: ultracore epsilon backtest --plot /tmp/epsilon
    #[command(subcommand)]
    Epsilon(cmd::epsilon::EpsilonCommand),
    /// The audit trail of every event: verify it offline against the log
    /// and its signed checkpoints, print its verifier key.
    ///
    /// Example: ultracore --data-dir /var/lib/ultracore audit verify --key "$(cat audit.vkey)"
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Personal data in text: scan documents (one per line on stdin) for
    /// card numbers, IBANs, TFNs, ABNs, Medicare numbers, SSNs, e-mail
    /// addresses and phone numbers; score the recognizers on a labelled corpus.
    ///
    /// Example: ultracore governance scan --json < transcripts.txt
    #[command(subcommand)]
    Governance(cmd::governance::GovernanceCommand),
    /// Ask the customer assistant: the question goes to the card, loan and
    /// wealth agents it is about, which answer from their tools; a critic
    /// checks every answer and personal data is masked before anything is kept.
    ///
    /// Example: ultracore assist "check my balance and also show loan options with $50,000 down payment" --customer c-1
    ///
    /// Example: ultracore assist "rebalance pf-demo to be more sustainable" --customer c-1 --portfolio pf-demo
    Assist(cmd::assist::AssistArgs),
    /// The agents' executions: replay one from its event.
    #[command(subcommand)]
    Agents(cmd::assist::AgentsCommand),
    /// Change data capture of the users and conversations tables onto
    /// db.changes.* in Debezium's envelope: relay, status, verify.
    ///
    /// Example: ultracore cdc status
    #[command(subcommand)]
    Cdc(cmd::cdc::CdcCommand),
}

/// mimalloc: the services allocate and free small buffers per event on
/// several threads at once, where it spends a fraction of glibc's time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Whether an error comes from writing to a pipe whose reader is gone.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `println!` panics when stdout's reader has gone (`ultracore … | head`):
/// like other Unix tools, exit quietly and successfully instead; other
/// panics report as before.
fn quiet_on_closed_stdout() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        report(info);
    }));
}

fn main() -> std::process::ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    cli.log.retention_days_from_command_line =
        matches.value_source("retention_days") == Some(clap::parser::ValueSource::CommandLine);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ULTRACORE_LOG_LEVEL").unwrap_or_else(
                |_| {
                    tracing_subscriber::EnvFilter::new(
                        "warn,librdkafka=off,rdkafka=off,ultracore_log::publish=error",
                    )
                },
            ),
        )
        .with_writer(std::io::stderr)
        .init();
    quiet_on_closed_stdout();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // A reader that closed its end (`| head`) has what it wanted.
        Err(e) if is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The chain of causes, one line, without a backtrace: users need the reason, not our stack.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => cmd::demo::run(&cli.log, args).await,
            Command::Events(c) => cmd::events::run(&cli.log, c).await,
            Command::Bench(c) => ultracore_bench::run(&cli.log.config(), c).await,
            Command::Projections(c) => cmd::es::projections(&cli.log, c).await,
            Command::Risk(a) => cmd::analytics::risk(&cli.log, a).await,
            Command::Correlation(a) => cmd::analytics::correlation(&cli.log, a).await,
            Command::Optimize(a) => cmd::analytics::optimize(&cli.log, a).await,
            Command::Etf(c) => cmd::analytics::etf(&cli.log, c).await,
            Command::Mesh(c) => cmd::mesh::run(&cli.log, c).await,
            Command::Esg(c) => cmd::esg::run(&cli.log, c).await,
            Command::Serve(a) => cmd::serve::serve(&cli.log, a).await,
            Command::Service(c) => cmd::esg::service(&cli.log, c).await,
            Command::Forensics(c) => cmd::forensics::run(&cli.log, c),
            Command::Decide(a) => cmd::decide::run(&cli.log, a).await,
            Command::Models(c) => cmd::decide::models(&cli.log, c).await,
            Command::Mcp(a) => cmd::mcp::run(&cli.log, a).await,
            Command::Keys(c) => cmd::keys::run(&cli.log, c),
            Command::Audit(c) => cmd::audit::run(&cli.log, c).await,
            Command::Epsilon(c) => cmd::epsilon::run(c),
            Command::Governance(c) => cmd::governance::run(c),
            Command::Assist(a) => cmd::assist::run(&cli.log, a).await,
            Command::Agents(c) => cmd::assist::agents(&cli.log, c).await,
            Command::Cdc(c) => cmd::cdc::run(&cli.log, c).await,
        }
    })
}
