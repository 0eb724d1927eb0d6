//! `ultracore bench …`: the benchmarks that print UltraCore's figures.
//!
//! One module per benchmark; the `ultracore` binary parses [`Bench`] and
//! calls [`run`]. Every synthetic input (assets, feature rows, accounts,
//! ids) comes from one generator, [`Rng`], seeded by `--seed`, so two runs
//! with the same seed offer the same work.

use anyhow::Result;
use clap::{Args, Subcommand};
use ultracore_log_any::LogConfig;

pub use ultracore_rng::SplitMix64 as Rng;

mod agents;
mod audit;
mod auth;
mod cdc;
mod console;
mod decisions;
mod epsilon;
mod es;
mod flow;
mod forensics;
mod forensics_service;
mod governance;
mod lag;
mod log;
mod mesh;
mod optimize;
mod python;

/// `ultracore bench [--seed N] <benchmark>`.
#[derive(Debug, Args)]
pub struct Bench {
    /// Seed of the generator behind every synthetic input.
    #[arg(long, global = true, default_value_t = 42)]
    pub seed: u64,
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Append throughput and acknowledgement latency of the event log.
    ///
    /// Phase 1 appends --events records of --size bytes in batches of --batch
    /// from --producers concurrent producers (records/s). Phase 2 offers
    /// --rate single-record appends per second from 8 producers for --seconds
    /// and measures the time from each append's scheduled start to its durable
    /// acknowledgement (p50/p99).
    ///
    /// Example: ultracore bench log --backend embedded --events 1000000 --size 200 --json
    Log(log::LogBench),
    /// Covariance estimators (sample, Ledoit-Wolf, exponentially weighted),
    /// max Sharpe, efficient risk and the 100-point efficient frontier on 20
    /// real assets (the shipped S&P 500 sample, last 1,261 days) and on
    /// 100, 500 and 2,000 synthetic assets (drawn from --seed; 2,000: the
    /// estimators only); with --vs-python, numpy and PyPortfolioOpt on the
    /// same returns in the same run, as ratios.
    ///
    /// Example: ultracore bench optimize --json
    /// Example: ultracore bench optimize --vs-python
    Optimize(optimize::OptimizeBench),
    /// Event sourcing: aggregate load time with and without snapshots,
    /// projection catch-up rate into SQLite, command round trip p99.
    ///
    /// Example: ultracore bench es --json
    Es(es::EsBench),
    /// SHAP time per trading decision (three regime specialists) for the
    /// exact and the fast algorithm; with --vs-python, against shap's
    /// TreeExplainer and XGBoost's pred_contribs timed in the same run.
    ///
    /// Example: ultracore bench forensics --json
    /// Example: ultracore bench forensics --vs-python
    ///
    /// With --pipeline: the forensics service end to end on the embedded
    /// log (decisions/s from log to store, lag under a sustained offered
    /// rate); with --api: the forensics API's latency under load from a
    /// second process.
    ///
    /// Example: ultracore bench forensics --no-shap --pipeline --api --json
    Forensics(forensics::ForensicsBench),
    /// The ESG optimization flow: request → completed latency p50/p99 for a
    /// 20-asset request sent one at a time, and sustained optimizations/s
    /// with concurrent clients (every service in this process; a fresh
    /// embedded log unless Kafka is configured).
    ///
    /// Example: ultracore bench flow --requests 300 --clients 8 --seconds 10 --json
    Flow(flow::FlowBench),
    /// The Epsilon Agent: policy forward pass p50/p99, and a whole
    /// decision (features, the four base portfolios' solves under the demo
    /// request's constraints, the mix) on the latest weeks of the 20
    /// shipped S&P 500 stocks.
    ///
    /// Example: ultracore bench epsilon --json
    Epsilon(epsilon::EpsilonBench),
    /// Decision latency including event emission (p50/p99), with the log up
    /// (embedded; Kafka when configured) and down (breaker open, spool),
    /// and the down/up ratio.
    ///
    /// Example: ultracore bench decisions --json
    Decisions(decisions::DecisionsBench),
    /// What authentication and authorization add to a request: the same
    /// handler behind the server's guard on an open route and on a
    /// portfolio route with a Bearer key (p50/p99 and the difference).
    ///
    /// Example: ultracore bench auth --json
    Auth(auth::AuthBench),
    /// The audit trail: leaf appends/s on one core, inclusion proof sizes
    /// and verification time up to 10⁹ leaves, the auditor's lag under an
    /// offered rate on the embedded log, and `audit verify`'s records/s.
    ///
    /// Example: ultracore bench audit --rate 100000 --seconds 10 --verify-records 10000000 --json
    Audit(audit::AuditBench),
    /// PII screening on one core: MB/s of the recognizers on the seeded
    /// labelled corpus, one sentence per call and as one document, with
    /// their precision and recall; with --vs-python, Presidio's pattern
    /// recognizers on the same corpus in the same run.
    ///
    /// Example: ultracore bench governance --vs-python
    Governance(governance::GovernanceBench),
    /// The customer assistant: questions answered end to end (p50/p95/p99),
    /// the runtime's scheduling latency, and the time from an agent answer
    /// with personal data to its compliance alert.
    ///
    /// Example: ultracore bench agents --json
    Agents(agents::AgentsBench),
    /// Change data capture on SQLite and PostgreSQL in one run: commit →
    /// event durable on db.changes.users (p50/p95/p99/max) at a paced
    /// --rate for --seconds, sustained changes/s with the relay keeping up
    /// (2 writers for --seconds/2), and the projection catch-up rate into
    /// each database. PostgreSQL from --database-url or DATABASE_URL (its
    /// figures are skipped without one): the bench creates and drops a
    /// database bench_cdc_<random> and a schema bench_<random>.
    ///
    /// Example: ultracore bench cdc --database-url postgres://ultracore:PASSWORD@127.0.0.1:5432/ultracore --json
    Cdc(cdc::CdcBench),
    /// The data mesh catalogue on 10,000 seeded products: search (a word
    /// and two facet filters) and autocomplete latency, the query cache's
    /// hit rate and latency under a Zipf(1.1) workload, and refresh event →
    /// new version visible.
    ///
    /// Example: ultracore bench mesh --json
    Mesh(mesh::MeshBench),
    /// The lag monitor's evaluation round over 500 groups × 20 partitions
    /// (10,000 partitions) with full windows of 10 samples: Burrow's rules
    /// on every partition, group verdicts, gauges and status changes,
    /// p50/p95/max per round over --ticks rounds (goal: under 10 ms).
    ///
    /// Example: ultracore bench lag --json
    Lag(lag::LagBench),
    /// The web console in a real browser (Debian's Chromium through
    /// playwright-core, `tests/console/bench.mjs`) against `ultracore
    /// serve` started with --topics topics of 3 partitions: first paint,
    /// first contentful paint and DOMContentLoaded of every page
    /// (p50/max over --runs navigations; goal: under 1 s with 1,000
    /// topics), the script each page loads (goal: at most 300 KB), and the
    /// time from an event to the topology's live lag badge (goal: under
    /// 2 s). Needs node, `cd tests/console && npm ci` and chromium.
    ///
    /// Example: ultracore bench console --topics 1000 --json
    Console(console::ConsoleBench),
    /// The forensics API load generator (started by `bench forensics --api`).
    #[command(hide = true)]
    ForensicsLoad(forensics_service::LoadArgs),
}

pub async fn run(config: &LogConfig, bench: Bench) -> Result<()> {
    let seed = bench.seed;
    match bench.command {
        BenchCommand::Log(b) => log::run(config, b).await,
        BenchCommand::Optimize(b) => optimize::run(b, seed),
        BenchCommand::Es(b) => es::run(config, b, seed).await,
        BenchCommand::Forensics(b) => forensics::run(b, seed).await,
        BenchCommand::Flow(b) => flow::run(config, b).await,
        BenchCommand::Governance(b) => governance::run(b, seed),
        BenchCommand::Agents(b) => agents::run(b, seed).await,
        BenchCommand::Epsilon(b) => epsilon::run(b, seed),
        BenchCommand::Decisions(b) => decisions::run(config, b).await,
        BenchCommand::Auth(b) => auth::run(b).await,
        BenchCommand::Audit(b) => audit::run(b, seed).await,
        BenchCommand::Cdc(b) => cdc::run(b, seed).await,
        BenchCommand::Mesh(b) => mesh::run(b, seed).await,
        BenchCommand::Lag(b) => lag::run(b, seed).await,
        BenchCommand::Console(b) => console::run(b).await,
        BenchCommand::ForensicsLoad(a) => forensics_service::load(a).await,
    }
}

/// A fresh embedded log and event store in a temporary directory (removed
/// when the returned guard drops): what benchmarks of services on the
/// embedded default start from.
pub(crate) fn scratch_store(
    prefix: &str,
) -> Result<(
    tempfile::TempDir,
    ultracore_log_embedded::EmbeddedLog,
    ultracore_es::EventStore<ultracore_log_embedded::EmbeddedLog>,
)> {
    let scratch = tempfile::Builder::new().prefix(prefix).tempdir()?;
    let log = ultracore_log_embedded::EmbeddedLog::open(
        scratch.path().join("log"),
        ultracore_log_embedded::EmbeddedOptions::default(),
    )?;
    let store = ultracore_es::EventStore::new(
        log.clone(),
        ultracore_es::Database::open(scratch.path(), None)?,
        ultracore_es::StoreOptions::default(),
    )?;
    Ok((scratch, log, store))
}
