//! `ultracore epsilon train | backtest`: the learned ESG allocation agent.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use ultracore_epsilon::app::{self, TrainOptions};
use ultracore_epsilon::backtest::{Backtest, COSTS_BPS, STRATEGIES};
use ultracore_epsilon::data::sha256_hex;
use ultracore_epsilon::model::Model;
use ultracore_epsilon::plot::{drawdown_svg, drawdowns, equity_svg, ChartInput, Series};

use crate::output::table;

/// The model shipped with the repository.
pub const SHIPPED_MODEL: &str = "models/epsilon.json";

#[derive(Debug, Subcommand)]
pub enum EpsilonCommand {
    /// Train the agent walk-forward (yearly folds from --first-test-year,
    /// validation year and embargo before each, a small grid × 3 seeds per
    /// fold). Single-threaded and seeded: the same inputs write the same
    /// bytes.
    ///
    /// Example: ultracore epsilon train --prices sample-data/sp500_prices.csv --out models/epsilon.json
    Train(TrainArgs),
    /// Run every strategy (1/N raw and ESG-projected, minimum variance,
    /// maximum Sharpe, inverse volatility, the static learned mix and the
    /// agent) on the same weekly dates, costs and constraints, per test
    /// year and pooled, with the agent's Sharpe ratio tested against
    /// ESG-projected 1/N (Ledoit and Wolf 2008).
    ///
    /// Example: ultracore epsilon backtest --plot /tmp/epsilon
    Backtest(BacktestArgs),
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A wide price CSV: date, then one column per ticker.
    #[arg(long, value_name = "CSV")]
    prices: PathBuf,
    /// The first of the three seeds each setting trains with (S, S+1, S+2).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The first test year (the default suits the shipped S&P 500 prices;
    /// shorter histories need a later one, or leave it to the data with
    /// --first-test-year auto).
    #[arg(long, default_value = "2000")]
    first_test_year: String,
    /// Where to write the model JSON.
    #[arg(long, value_name = "MODEL.json")]
    out: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The model (default: the shipped one).
    #[arg(long, value_name = "MODEL.json", default_value = SHIPPED_MODEL)]
    model: PathBuf,
    /// The prices the model was trained on (default: sample-data/ and the
    /// model's file name).
    #[arg(long, value_name = "CSV")]
    prices: Option<PathBuf>,
    /// Transaction cost charged on every trade, in basis points.
    #[arg(long, default_value_t = 10.0)]
    cost_bps: f64,
    /// Write equity.svg and drawdowns.svg to this directory.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: EpsilonCommand) -> Result<()> {
    match cmd {
        EpsilonCommand::Train(a) => train(a),
        EpsilonCommand::Backtest(a) => backtest(a),
    }
}

fn train(a: TrainArgs) -> Result<()> {
    let first_test_year = match a.first_test_year.as_str() {
        "auto" => None,
        y => Some(
            y.parse::<i32>()
                .with_context(|| format!("--first-test-year {y}: a year (e.g. 2000) or `auto`"))?,
        ),
    };
    let options = TrainOptions {
        seeds: (0..3).map(|i| a.seed + i).collect(),
        first_test_year,
        ..TrainOptions::default()
    };
    let started = Instant::now();
    let (model, stats) = app::train(&a.prices, &options, &mut |m| eprintln!("{m}"))?;
    let text = model.to_json();
    std::fs::write(&a.out, &text).with_context(|| format!("writing {}", a.out.display()))?;
    let sha = sha256_hex(text.as_bytes());
    let seconds = started.elapsed().as_secs_f64();
    if a.json {
        println!(
            "{}",
            json!({"model": a.out, "model_sha256": sha, "folds": stats.folds,
                   "networks_trained": stats.networks_trained, "weekly_steps": stats.steps,
                   "steps_seconds": stats.steps_seconds, "training_seconds": stats.training_seconds,
                   "seconds": seconds})
        );
        return Ok(());
    }
    println!(
        "Trained {} folds ({} networks on {} weekly decisions) in {:.1} s ({:.1} s base portfolios and features, {:.1} s training), single-threaded.",
        stats.folds, stats.networks_trained, stats.steps, seconds, stats.steps_seconds, stats.training_seconds
    );
    println!("Model: {} (SHA-256 {sha})", a.out.display());
    Ok(())
}

fn load_model(path: &Path) -> Result<(Model, String)> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the model {} (train one with `ultracore epsilon train`)",
            path.display()
        )
    })?;
    let model = Model::from_json(&text).with_context(|| path.display().to_string())?;
    Ok((model, sha256_hex(text.as_bytes())))
}

fn backtest(a: BacktestArgs) -> Result<()> {
    if !(a.cost_bps.is_finite() && a.cost_bps >= 0.0) {
        bail!("--cost-bps {}: a number of basis points ≥ 0", a.cost_bps);
    }
    let (model, sha) = load_model(&a.model)?;
    let prices = a
        .prices
        .clone()
        .unwrap_or_else(|| PathBuf::from("sample-data").join(&model.data.file));
    let quiet = a.json;
    let b = app::run_backtest(&model, &prices, a.cost_bps, &mut |m| {
        if !quiet {
            eprintln!("{m}");
        }
    })?;
    if let Some(dir) = &a.plot {
        plots(&b, dir)?;
    }
    if a.json {
        let strategies: serde_json::Map<String, serde_json::Value> = STRATEGIES
            .iter()
            .map(|name| {
                let s = &b.strategies[*name];
                let p = &s.pooled;
                (
                    (*name).to_owned(),
                    json!({
                        "sharpe": p.sharpe, "sharpe_rf2": p.sharpe_rf2, "cagr": p.cagr,
                        "volatility": p.volatility, "sortino": p.sortino,
                        "max_drawdown": p.max_drawdown, "calmar": p.calmar,
                        "turnover": p.turnover, "effective_n": p.effective_n,
                        "esg_score": p.esg_score, "carbon_intensity": p.carbon_intensity,
                        "violations": p.violations,
                        "sharpe_by_cost_bps": s.sharpe_by_cost.iter()
                            .map(|(c, v)| (format!("{c}"), json!(v)))
                            .collect::<serde_json::Map<_, _>>(),
                        "by_year": s.by_year,
                    }),
                )
            })
            .collect();
        let t = b.agent_vs_equal_weight.annualised(52.0);
        println!(
            "{}",
            json!({
                "strategies": strategies,
                "agent_vs_equal_weight": {
                    "sharpe_diff": t.diff, "p_value": t.p_value, "ci_low": t.ci_low,
                    "ci_high": t.ci_high, "min_detectable": t.min_detectable,
                    "block": t.block, "reps": t.reps, "weeks": t.observations,
                },
                "agent_mean_mix": b.agent_mean_mix,
                "model_sha256": sha,
                "from": b.first_date, "to": b.last_date, "cost_bps": b.cost_bps,
            })
        );
        return Ok(());
    }
    print_report(&b, &model, &sha);
    Ok(())
}

fn print_report(b: &Backtest, model: &Model, sha: &str) {
    println!(
        "Out of sample {} → {} ({} weeks), weekly decisions, {} bp costs; data {} (SHA-256 {}…), model {}…",
        b.first_date,
        b.last_date,
        b.strategies["epsilon"].pooled.weeks,
        b.cost_bps,
        model.data.file,
        &model.data.sha256[..12],
        &sha[..12]
    );
    let pct = |v: f64| format!("{:.1}%", 100.0 * v);
    let rows: Vec<Vec<String>> = STRATEGIES
        .iter()
        .map(|name| {
            let p = &b.strategies[*name].pooled;
            vec![
                (*name).to_owned(),
                format!("{:.2}", p.sharpe),
                format!("{:.2}", p.sharpe_rf2),
                pct(p.cagr),
                pct(p.volatility),
                format!("{:.2}", p.sortino),
                pct(p.max_drawdown),
                format!("{:.2}", p.calmar),
                format!("{:.2}", p.turnover),
                format!("{:.1}", p.effective_n),
                format!("{:.1}", p.esg_score),
                format!("{:.0}", p.carbon_intensity),
                p.violations.to_string(),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "strategy",
                "Sharpe",
                "Sharpe rf 2%",
                "CAGR",
                "vol",
                "Sortino",
                "max DD",
                "Calmar",
                "turnover/yr",
                "eff. N",
                "ESG",
                "carbon",
                "violations",
            ],
            &rows
        )
    );
    println!("Sharpe ratio (rf 0) by cost:");
    let mut header = vec!["strategy".to_owned()];
    header.extend(COSTS_BPS.iter().map(|c| format!("{c} bp")));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = STRATEGIES
        .iter()
        .map(|name| {
            let mut r = vec![(*name).to_owned()];
            r.extend(
                b.strategies[*name]
                    .sharpe_by_cost
                    .iter()
                    .map(|(_, s)| format!("{s:.2}")),
            );
            r
        })
        .collect();
    println!("{}", table(&header, &rows));
    println!("Sharpe ratio by test year:");
    let years: Vec<i32> = b.strategies["epsilon"].by_year.keys().copied().collect();
    let mut header = vec!["year".to_owned()];
    header.extend(STRATEGIES.iter().map(|s| (*s).to_owned()));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = years
        .iter()
        .map(|y| {
            let mut r = vec![y.to_string()];
            r.extend(
                STRATEGIES
                    .iter()
                    .map(|s| format!("{:.2}", b.strategies[*s].by_year[y].sharpe)),
            );
            r
        })
        .collect();
    println!("{}", table(&header, &rows));
    let t = b.agent_vs_equal_weight.annualised(52.0);
    println!(
        "Agent − ESG-projected 1/N, annualised Sharpe ratio: {:+.3} (95% interval {:+.3} to {:+.3}), p = {:.3} (Ledoit-Wolf studentised circular block bootstrap, block {}, {} resamples); the smallest difference this test detects with 80% power is about {:.3}.",
        t.diff, t.ci_low, t.ci_high, t.p_value, t.block, t.reps, t.min_detectable
    );
    let mix: Vec<String> = model
        .bases
        .iter()
        .zip(&b.agent_mean_mix)
        .map(|(n, m)| format!("{n} {:.0}%", 100.0 * m))
        .collect();
    println!("The agent's mean mix: {}.", mix.join(", "));
    println!(
        "Caveats: the {} assets are ones that exist today (survivors, chosen with hindsight); their ESG scores and carbon intensities are synthetic and constant over time.",
        model.data.tickers.len()
    );
}

fn plots(b: &Backtest, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let names: Vec<&str> = STRATEGIES.to_vec();
    let dd: Vec<Vec<f64>> = names.iter().map(|n| drawdowns(&b.wealth[*n])).collect();
    let equity: Vec<Series<'_>> = names
        .iter()
        .map(|n| Series {
            name: n,
            values: &b.wealth[*n],
        })
        .collect();
    let svg = equity_svg(&ChartInput {
        title: "Growth of 1, out of sample, net of costs",
        dates: &b.dates,
        series: &equity,
        highlight: Some("epsilon"),
        log_scale: true,
    });
    let path = dir.join("equity.svg");
    std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
    let down: Vec<Series<'_>> = names
        .iter()
        .zip(&dd)
        .map(|(n, v)| Series { name: n, values: v })
        .collect();
    let svg = drawdown_svg(&ChartInput {
        title: "Drawdowns, out of sample, net of costs",
        dates: &b.dates,
        series: &down,
        highlight: Some("epsilon"),
        log_scale: false,
    });
    let path = dir.join("drawdowns.svg");
    std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("Wrote {}/equity.svg and drawdowns.svg", dir.display());
    Ok(())
}
