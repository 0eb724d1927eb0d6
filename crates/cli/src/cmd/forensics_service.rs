//! `ultracore service forensics` and `ultracore forensics show`: the SHAP
//! forensics service alone, and reading its store.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use ultracore_forensics::{
    parse_decision_id, router, ApiState, ForensicsConfig, ForensicsService, ForensicsStore,
    StoreReader, DEFAULT_RETENTION_DAYS,
};
use ultracore_log_any::{Access, AnyLog};

use crate::LogArgs;

#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// The explanation store (SQLite) [default: <data dir>/forensics.sqlite].
    #[arg(long, env = "ULTRACORE_FORENSICS_DB", value_name = "PATH")]
    db: Option<PathBuf>,
    /// Directory with the specialists the decisions were made with (bull.json, bear.json, sideways.json).
    #[arg(
        long,
        env = "ULTRACORE_FORENSICS_MODELS",
        default_value = "models",
        value_name = "DIR"
    )]
    models: PathBuf,
    /// Threads explaining decisions [default: one per core].
    #[arg(long, env = "ULTRACORE_FORENSICS_WORKERS")]
    workers: Option<usize>,
    /// Also serve GET /api/v1/forensics/{id} and /metrics here (e.g. 127.0.0.1:9464).
    #[arg(long, env = "ULTRACORE_FORENSICS_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    edge: super::serve::EdgeArgs,
}

/// The store's path: `--db`, else `forensics.sqlite` in the data directory.
fn db_path(args: &LogArgs, db: Option<PathBuf>) -> PathBuf {
    db.unwrap_or_else(|| {
        args.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("data"))
            .join(ForensicsStore::FILE_NAME)
    })
}

/// Days explanations are kept. `--retention-days` (a global flag, which
/// for other commands is the retention of the topics they create) counts
/// when given on the command line; `EVENT_STORE_RETENTION_DAYS` is the
/// log's setting and does not shorten the explanations' retention, whose
/// variable is `ULTRACORE_FORENSICS_RETENTION_DAYS`.
fn retention_days(args: &LogArgs) -> Result<u32> {
    let days = if args.retention_days_from_command_line {
        args.retention_days
    } else {
        match std::env::var("ULTRACORE_FORENSICS_RETENTION_DAYS") {
            Ok(v) => Some(v.trim().parse::<u64>().with_context(|| {
                format!("ULTRACORE_FORENSICS_RETENTION_DAYS='{v}' is not a number of days")
            })?),
            Err(_) => None,
        }
    };
    match days {
        None => Ok(DEFAULT_RETENTION_DAYS),
        Some(0) => {
            bail!("--retention-days must be at least 1 (the default keeps explanations 7 years)")
        }
        Some(d) => u32::try_from(d).context("--retention-days is too large"),
    }
}

pub async fn service(args: &LogArgs, s: ServiceArgs) -> Result<()> {
    let config = ForensicsConfig {
        db: db_path(args, s.db),
        models_dir: s.models.clone(),
        retention_days: retention_days(args)?,
        workers: s.workers.unwrap_or(0),
        ..Default::default()
    };
    let log = AnyLog::open(&args.config(), Access::Write).await?;
    let service = ForensicsService::new(log.clone(), config.clone()).with_context(|| {
        format!(
            "starting the forensics service (models from {}; pass --models DIR)",
            s.models.display()
        )
    })?;
    let server = match s.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            let local = listener.local_addr()?;
            let guard = s.edge.guard(args, local)?;
            let api = guard.protect(router(ApiState::new(service.reader()?, service.metrics())));
            eprintln!("serving http://{local}/api/v1/forensics/{{decision_id}} and http://{local}/metrics (with a key: Authorization: Bearer)");
            let limits = s.edge.limits();
            Some(tokio::spawn(ultracore_http::serve(
                listener,
                api,
                limits,
                std::future::pending(),
            )))
        }
        None => None,
    };
    eprintln!(
        "forensics service on the {} log, store {}, retention {} days, {} workers; Ctrl-C stops it",
        log.kind(),
        config.db.display(),
        config.retention_days,
        config.worker_threads()
    );
    let stats = service
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    if let Some(server) = server {
        server.abort();
    }
    eprintln!(
        "stopped: {} explained, {} stored, {} duplicates skipped, {} dead-lettered, {} purged",
        stats.explained, stats.stored, stats.duplicates, stats.dead_lettered, stats.purged
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The decision id (a UUID).
    decision_id: String,
    /// The explanation store [default: <data dir>/forensics.sqlite].
    #[arg(long, env = "ULTRACORE_FORENSICS_DB", value_name = "PATH")]
    db: Option<PathBuf>,
    /// Print the stored explanation as JSON (the API's document).
    #[arg(long)]
    json: bool,
}

pub fn show(args: &LogArgs, s: ShowArgs) -> Result<()> {
    let Some(id) = parse_decision_id(&s.decision_id) else {
        bail!(
            "'{}' is not a decision id: a decision id is a UUID, e.g. 0190f7a2-0000-7000-8000-000000000001",
            s.decision_id
        );
    };
    let reader = StoreReader::open(db_path(args, s.db))?;
    let Some(stored) = reader.get(id)? else {
        bail!(
            "no explanation is stored for decision {id} in {}: the id is unknown, not explained yet, or older than the retention",
            reader.path().display()
        );
    };
    if s.json {
        println!("{}", serde_json::to_string_pretty(&stored.to_json())?);
        return Ok(());
    }
    println!(
        "decision {} ({} {}, decided {}, model {}; explained with {})",
        stored.decision_id,
        stored.action,
        stored.symbol,
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(stored.decided_at)
            .map_or_else(|| stored.decided_at.to_string(), |t| t.to_rfc3339()),
        stored.model_version,
        stored.explained_with
    );
    println!();
    print!("{}", stored.narrative);
    println!();
    let e = &stored.explanation;
    let set = &stored.model_set;
    let mut rows = Vec::new();
    let top = |shap: &[f64], up: bool| -> String {
        ultracore_forensics::top_features(shap, 3, up)
            .into_iter()
            .map(|(i, v)| format!("{} {v:+.4}", set.features[i]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (i, (name, objective)) in set.specialists.iter().enumerate() {
        let p = e.part(i);
        rows.push(vec![
            name.clone(),
            objective.clone(),
            format!("{:.2}", e.weights()[i]),
            format!("{:.6}", p.margin),
            format!("{:.6}", p.expected_value),
            top(p.shap, true),
            top(p.shap, false),
        ]);
    }
    let p = e.ensemble();
    rows.push(vec![
        "ensemble".into(),
        "weighted sum".into(),
        String::new(),
        format!("{:.6}", p.margin),
        format!("{:.6}", p.expected_value),
        top(p.shap, true),
        top(p.shap, false),
    ]);
    print!(
        "{}",
        crate::output::table(
            &[
                "model",
                "objective",
                ">weight",
                ">margin",
                ">expected",
                "pushing up",
                "pushing down"
            ],
            &rows
        )
    );
    Ok(())
}
