//! `ultracore decide`: one trading decision from a JSON request, published
//! on the configured log (`trading_decisions`, `risk_decisions`,
//! `regime_changes`) through the spooled emitter.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::Value;
use ultracore_decisions::{
    Decision, DecisionConfig, DecisionEngine, DecisionRequest, DecisionService, EvaluationSet,
    Regime, ServiceOptions, Specialists, StabilityBounds,
};
use ultracore_log_any::{Access, AnyLog};

use crate::LogArgs;

#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The request: `{"symbol", "features": {name: number}, "price",
    /// "portfolio": {"position_units", "value", "correlation_with_holdings"}}`
    /// (a bare `{name: number}` map of features works with --symbol); `-` reads stdin.
    #[arg(long, value_name = "FILE.json|-")]
    features: PathBuf,
    /// The symbol (overrides the file's).
    #[arg(long)]
    symbol: Option<String>,
    /// Directory with bull.json, bear.json and sideways.json.
    #[arg(long, env = "ULTRACORE_MODELS_DIR", default_value = "models")]
    models: PathBuf,
    /// Decision configuration (JSON: thresholds, sizing, risk limits, regime model).
    #[arg(long, env = "ULTRACORE_DECISION_CONFIG", value_name = "FILE.json")]
    config: Option<PathBuf>,
    /// Where undelivered events wait for the log [default: <data dir>/spool/decisions].
    #[arg(long, env = "ULTRACORE_SPOOL_DIR", value_name = "DIR")]
    spool_dir: Option<PathBuf>,
    /// Print the decision as JSON.
    #[arg(long)]
    json: bool,
}

/// Loads the specialists and the configuration.
pub fn engine(models: &Path, config: Option<&Path>) -> Result<DecisionEngine> {
    let specialists = Specialists::load_dir(models)
        .context("run from the repository root, or pass --models DIR")?;
    let config = match config {
        Some(path) => DecisionConfig::from_json(
            &std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the configuration {}", path.display()))?,
        )
        .with_context(|| format!("configuration {}", path.display()))?,
        None => DecisionConfig::default(),
    };
    Ok(DecisionEngine::new(specialists, config)?)
}

/// Reads a request: a full request object, or a bare feature map with --symbol.
fn read_request(path: &Path, symbol: Option<&str>) -> Result<DecisionRequest> {
    let (name, text) = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the request from stdin")?;
        ("stdin".to_owned(), s)
    } else {
        (
            path.display().to_string(),
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the request {}", path.display()))?,
        )
    };
    let mut value: Value = serde_json::from_str(&text).with_context(|| {
        format!("{name} is not JSON; see examples/decision.json for the shape of a request")
    })?;
    if let Value::Object(obj) = &value {
        if !obj.contains_key("features") && !obj.contains_key("symbol") {
            // A bare feature map.
            value = serde_json::json!({ "features": value });
        }
    }
    if let (Some(symbol), Value::Object(obj)) = (symbol, &mut value) {
        obj.insert("symbol".into(), Value::String(symbol.to_owned()));
    }
    DecisionRequest::from_json(&value).map_err(|e| {
        let hint = if e.field == "symbol" {
            " (or pass --symbol)"
        } else {
            ""
        };
        anyhow::anyhow!("invalid request in {name}: {e}{hint}")
    })
}

pub async fn run(log: &LogArgs, args: DecideArgs) -> Result<()> {
    let request = read_request(&args.features, args.symbol.as_deref())?;
    let engine = engine(&args.models, args.config.as_deref())?;
    let (decision, published) = if log.is_configured() {
        let config = log.config();
        let target = AnyLog::open(&config, Access::Write).await?;
        let spool = args
            .spool_dir
            .clone()
            .unwrap_or_else(|| config.data_dir().join("spool").join("decisions"));
        let kind = target.kind();
        let service = DecisionService::start(engine, target, &spool, ServiceOptions::default())
            .await
            .with_context(|| format!("cannot start publishing (spool {})", spool.display()))?;
        let decision = service.decide(&request)?;
        // The decision is made; before exiting, let its events reach the log or the spool.
        let stats = tokio::time::timeout(Duration::from_secs(30), service.shutdown())
            .await
            .ok()
            .flatten();
        let published = match stats {
            Some(s) if s.spooled == 0 && s.delivered == s.emitted => {
                format!("{} events published to the {kind} log", s.delivered)
            }
            Some(s) => format!(
                "{} events published, {} spooled in {} (the log did not take them; the next run forwards them)",
                s.delivered,
                s.spooled,
                spool.display()
            ),
            None => "events still queued after 30 s; check the log".to_owned(),
        };
        (decision, Some(published))
    } else {
        (DecisionService::new(engine, None).decide(&request)?, None)
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&decision)?);
    } else {
        print!("{}", summary(&decision));
        match &published {
            Some(p) => println!("events: {p}"),
            None => println!(
                "events: not published (no log configured: pass --data-dir, --log or set KAFKA_BOOTSTRAP_SERVERS)"
            ),
        }
    }
    if let Some(p) = &published {
        if p.contains("spooled") || p.contains("still queued") {
            eprintln!("warning: {p}");
        }
    }
    Ok(())
}

/// The decision for humans.
pub fn summary(d: &Decision) -> String {
    let t = &d.decision;
    let mut out = String::new();
    let verdict = if d.approved {
        "approved".to_owned()
    } else {
        format!(
            "REJECTED by {} (proposed {} units)",
            d.failed_checks.join(", "),
            d.proposed_quantity
        )
    };
    out.push_str(&format!(
        "{}: {} {} units, confidence {:.2}, {verdict}\n",
        t.symbol, t.action, t.quantity, t.confidence
    ));
    let probs: Vec<String> = Regime::ALL
        .iter()
        .map(|r| format!("{r} {:.2}", t.regime_probs[r.as_str()]))
        .collect();
    out.push_str(&format!(
        "score {:+.3}; regime {} ({}; trend {:+.2}, stress {:+.2})\n\n",
        d.score,
        d.regime,
        probs.join(", "),
        d.regime_trend,
        d.regime_stress
    ));
    let rows: Vec<Vec<String>> = Regime::ALL
        .iter()
        .map(|r| {
            let s = &d.specialists[r.as_str()];
            vec![
                r.to_string(),
                match r {
                    Regime::Sideways => format!("{:+.1} bps", s.prediction),
                    Regime::Bull => format!("P(up) {:.3}", s.prediction),
                    Regime::Bear => format!("P(down) {:.3}", s.prediction),
                },
                format!("{:+.3}", s.signal),
                format!("{:.3}", s.weight),
            ]
        })
        .collect();
    out.push_str(&crate::output::table(
        &["specialist", ">prediction", ">signal", ">weight"],
        &rows,
    ));
    out.push('\n');
    let rows: Vec<Vec<String>> = t
        .risk_checks
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                if c.passed { "pass" } else { "FAIL" }.to_owned(),
                format!("{:.4}", c.value),
                format!("{}", c.limit),
                c.detail.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&crate::output::table(
        &["risk check", "result", ">value", ">limit", "detail"],
        &rows,
    ));
    out.push_str(&format!(
        "\ndecision {} at {}, models {}\n",
        t.decision_id,
        t.timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        t.model_version
    ));
    out
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Compare retrained specialists with the ones they replace and publish a
    /// model_update for each whose file changed: Sharpe before and after on
    /// the evaluation set, degradation %, stability check, incremental or
    /// full retrain. Keep the previous models directory when retraining.
    ///
    /// Example: ultracore models reload --from models-previous --models models --json
    Reload(ReloadArgs),
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// The specialists in use until now (bull.json, bear.json, sideways.json).
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// The new specialists.
    #[arg(long, env = "ULTRACORE_MODELS_DIR", default_value = "models")]
    models: PathBuf,
    /// Rows with known outcomes the models are compared on.
    #[arg(long, default_value = "models/evaluation.csv")]
    evaluation: PathBuf,
    /// Where undelivered events wait for the log [default: <data dir>/spool/decisions].
    #[arg(long, env = "ULTRACORE_SPOOL_DIR", value_name = "DIR")]
    spool_dir: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub async fn models(log: &LogArgs, command: ModelsCommand) -> Result<()> {
    let ModelsCommand::Reload(args) = command;
    let old = engine(&args.from, None).context("the previous models (--from)")?;
    let new = Specialists::load_dir(&args.models).context("the new models (--models)")?;
    let set = EvaluationSet::load(&args.evaluation, new.feature_names())?;
    let service = if log.is_configured() {
        let config = log.config();
        let target = AnyLog::open(&config, Access::Write).await?;
        let spool = args
            .spool_dir
            .clone()
            .unwrap_or_else(|| config.data_dir().join("spool").join("decisions"));
        // A reload makes no decision, so it needs no regime history.
        let options = ServiceOptions {
            regime_history: None,
            ..ServiceOptions::default()
        };
        DecisionService::start(old, target, &spool, options).await?
    } else {
        DecisionService::new(old, None)
    };
    let updates = service.reload(new, &set, StabilityBounds::default())?;
    let publishes = service.publishes();
    let stats = service.shutdown().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&updates)?);
    } else if updates.is_empty() {
        println!("no specialist changed: nothing to report");
    } else {
        let rows: Vec<Vec<String>> = updates
            .iter()
            .map(|u| {
                vec![
                    u.model_id.clone(),
                    format!("{:?}", u.update_type).to_lowercase(),
                    format!("{} -> {}", u.previous_version, u.new_version),
                    format!("{:.3}", u.sharpe_before),
                    format!("{:.3}", u.sharpe_after),
                    format!("{:+.1}", u.degradation_pct),
                    if u.stability_check_passed {
                        "pass"
                    } else {
                        "FAIL"
                    }
                    .to_owned(),
                ]
            })
            .collect();
        print!(
            "{}",
            crate::output::table(
                &[
                    "model",
                    "update",
                    "versions",
                    ">Sharpe before",
                    ">Sharpe after",
                    ">degradation %",
                    "stability"
                ],
                &rows
            )
        );
        for u in &updates {
            if let Some(d) = &u.stability_detail {
                println!("{}: {d}", u.model_id);
            }
        }
    }
    if !publishes {
        eprintln!("model_update events not published (no log configured: pass --data-dir, --log or set KAFKA_BOOTSTRAP_SERVERS)");
    } else if let Some(s) = stats {
        if s.spooled > 0 {
            eprintln!("warning: {} events spooled (the log did not take them; the next run forwards them)", s.spooled);
        }
    }
    Ok(())
}
