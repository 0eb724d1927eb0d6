//! `ultracore bench optimize`: the covariance estimators and the portfolio
//! optimizer, and with `--vs-python` the same work in numpy and
//! PyPortfolioOpt on the same returns in the same run, as ratios.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{json, Value};
use ultracore_portfolio::bench::{bench_universe, problems, universes, BenchCase, BenchOptions};
use ultracore_portfolio::{Matrix, Objective};
use ultracore_term::table;

#[derive(Debug, Args)]
pub struct OptimizeBench {
    /// The real-data universe (wide CSV of prices).
    #[arg(long, default_value = "sample-data/sp500_prices.csv")]
    prices: PathBuf,
    /// Timed runs per case (the median is reported).
    #[arg(long, default_value_t = 21)]
    runs: usize,
    /// Asset counts of the synthetic universes.
    #[arg(long, value_delimiter = ',', default_value = "100,500,2000")]
    assets: Vec<usize>,
    /// Universes up to this many assets are optimized too; larger ones only
    /// get the covariance estimators.
    #[arg(long, default_value_t = 500)]
    optimize_up_to: usize,
    /// Points of the efficient frontier (0: skip it).
    #[arg(long, default_value_t = 100)]
    frontier_points: usize,
    /// Time the same work in numpy and PyPortfolioOpt in this run and print
    /// ratios. The interpreter needs numpy, pandas, PyPortfolioOpt and cvxpy
    /// with Clarabel (scripts/bench-env.sh makes one); default: that venv's
    /// if it exists, else python3.
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    vs_python: Option<String>,
    /// Seconds each Python case may take in total (at least one run).
    #[arg(long, default_value_t = 5.0)]
    python_budget: f64,
    #[arg(long)]
    json: bool,
}

pub fn run(b: OptimizeBench, seed: u64) -> Result<()> {
    use ultracore_marketdata::{DataProvider, Lookback};
    let provider = DataProvider::open(&b.prices).map_err(|e| {
        anyhow::anyhow!("{e} (run from the repository root, or pass --prices FILE)")
    })?;
    let prices = provider.price_matrix(&[], Lookback::Rows(1261), 2)?;
    let matrix = Matrix::from_row_major(prices.dates.len(), prices.tickers.len(), prices.values)?;
    let options = BenchOptions {
        runs: b.runs.max(1),
        seed,
        synthetic_assets: b.assets.clone(),
        optimize_up_to_assets: b.optimize_up_to,
        frontier_points: b.frontier_points,
        ..BenchOptions::default()
    };
    let universes = universes(Some(&matrix), &options)?;
    let mut cases = Vec::new();
    for u in &universes {
        if !b.json {
            eprintln!("timing {} ({} assets)…", u.name, u.returns.cols());
        }
        cases.push(bench_universe(u, &options)?);
    }
    let python = match &b.vs_python {
        Some(p) => Some(vs_python(p, &b, &universes, &cases, &options)?),
        None => None,
    };
    if b.json {
        let mut doc = json!({ "cases": cases.concat() });
        if let Some((_, doc_py)) = &python {
            doc["vs_python"] = doc_py.clone();
        }
        println!("{doc}");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = cases
        .iter()
        .flatten()
        .map(|c| {
            vec![
                c.case.clone(),
                c.data.clone(),
                c.assets.to_string(),
                c.observations.to_string(),
                format!("{:.3}", ms(c)),
                format!("{:.3}", c.min.as_secs_f64() * 1e3),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "case",
                "data",
                ">assets",
                ">observations",
                ">median_ms",
                ">min_ms"
            ],
            &rows
        )
    );
    if let Some((rows, doc)) = python {
        println!();
        println!(
            "Against Python in this run ({}; optimizers: {}):",
            versions(&doc),
            doc["solvers"]
                .as_array()
                .map(|s| s
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        );
        print!(
            "{}",
            table(
                &[
                    "case",
                    ">assets",
                    ">ultracore_ms",
                    "python",
                    ">python_ms",
                    ">times_faster",
                    ">max_difference"
                ],
                &rows
            )
        );
    }
    Ok(())
}

fn ms(c: &BenchCase) -> f64 {
    c.median.as_secs_f64() * 1e3
}

fn versions(doc: &Value) -> String {
    let v = &doc["versions"];
    format!(
        "Python {}, numpy {}, pandas {}, PyPortfolioOpt {}, cvxpy {}",
        v["python"].as_str().unwrap_or("?"),
        v["numpy"].as_str().unwrap_or("?"),
        v["pandas"].as_str().unwrap_or("?"),
        v["pypfopt"].as_str().unwrap_or("?"),
        v["cvxpy"].as_str().unwrap_or("?"),
    )
}

/// Writes the universes for `tools/bench_portfolio.py`, runs it and pairs
/// its timings with ours: table rows and a JSON document.
fn vs_python(
    given: &str,
    b: &OptimizeBench,
    universes: &[ultracore_portfolio::bench::Universe],
    cases: &[Vec<BenchCase>],
    options: &BenchOptions,
) -> Result<(Vec<Vec<String>>, Value)> {
    let script = crate::python::script("tools/bench_portfolio.py")?;
    let dir = tempfile::tempdir()?;
    let mut meta = Vec::new();
    let mut references = Vec::new();
    for u in universes {
        let file = format!("returns-{}.f64", u.name);
        let bytes: Vec<u8> = u
            .returns
            .as_slice()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(dir.path().join(&file), bytes)?;
        let mut m = json!({
            "name": u.name,
            "file": file,
            "observations": u.returns.rows(),
            "assets": u.returns.cols(),
        });
        if u.returns.cols() <= options.optimize_up_to_assets {
            let p = problems(&u.returns, options.frontier_points)?;
            m["optimize"] = json!(true);
            m["efficient_risk_target"] = json!(p.efficient_risk_target);
            if options.frontier_points >= 2 {
                m["frontier_targets"] = json!(p.frontier_targets);
            }
            references.push(Some(p));
        } else {
            references.push(None);
        }
        meta.push(m);
    }
    std::fs::write(
        dir.path().join("universes.json"),
        serde_json::to_vec(&json!({ "universes": meta }))?,
    )?;
    let python = crate::python::interpreter(given);
    eprintln!(
        "timing the same work in Python ({}); PyPortfolioOpt's frontier of 500 assets takes about a minute…",
        python.display()
    );
    let stdout = crate::python::run(
        &python,
        script,
        [
            dir.path().as_os_str(),
            "--runs".as_ref(),
            b.runs.to_string().as_ref(),
            "--budget".as_ref(),
            b.python_budget.to_string().as_ref(),
        ],
    )?;
    let doc: Value = serde_json::from_slice(&stdout)
        .with_context(|| format!("{} printed no JSON", script.display()))?;
    let mut rows = Vec::new();
    let mut pairs = Vec::new();
    for ((u, ours), reference) in universes.iter().zip(cases).zip(&references) {
        let theirs = &doc["universes"][&u.name];
        let n = u.returns.cols();
        let numpy_cov = read_f64(&dir.path().join(format!("numpy-cov-{}.f64", u.name)))?;
        let sample = ultracore_portfolio::sample_cov(&u.returns)?;
        let cov_diff = max_relative(sample.as_slice(), &numpy_cov);
        let mut pair = |case: &str, key: &str, library: &str, difference: Option<f64>| {
            let Some(c) = ours.iter().find(|c| c.case == case) else {
                return;
            };
            let Some(py) = theirs[key]["median_ms"].as_f64() else {
                return;
            };
            let ratio = py / ms(c);
            rows.push(vec![
                case.to_string(),
                n.to_string(),
                format!("{:.3}", ms(c)),
                library.to_string(),
                format!("{py:.3}"),
                format!("{ratio:.1}x"),
                difference.map_or("—".into(), |d| format!("{d:.1e}")),
            ]);
            pairs.push(json!({
                "universe": u.name, "assets": n, "case": case, "python": library,
                "ultracore_ms": ms(c), "python_ms": py, "python_runs": theirs[key]["runs"],
                "times_faster": ratio, "max_difference": difference,
            }));
        };
        pair(
            "sample-covariance",
            "sample-covariance/numpy",
            "numpy cov",
            Some(cov_diff),
        );
        pair(
            "sample-covariance",
            "sample-covariance/pypfopt",
            "PyPortfolioOpt sample_cov",
            None,
        );
        pair(
            "ledoit-wolf",
            "ledoit-wolf/pypfopt",
            "PyPortfolioOpt ledoit_wolf",
            None,
        );
        pair(
            "exp-covariance",
            "exp-covariance/pypfopt",
            "PyPortfolioOpt exp_cov",
            None,
        );
        if let Some(p) = reference {
            let ef = &p.frontier;
            let ms_w = ef.optimize(Objective::MaxSharpe)?.weights;
            let er_w = ef
                .optimize(Objective::EfficientRisk {
                    target_volatility: p.efficient_risk_target,
                })?
                .weights;
            let d_ms = max_abs(&ms_w, &floats(&theirs["max-sharpe/pypfopt"]["weights"]));
            let d_er = max_abs(&er_w, &floats(&theirs["efficient-risk/pypfopt"]["weights"]));
            pair(
                "max-sharpe",
                "max-sharpe/pypfopt",
                "PyPortfolioOpt max_sharpe",
                Some(d_ms),
            );
            pair(
                "efficient-risk",
                "efficient-risk/pypfopt",
                "PyPortfolioOpt efficient_risk",
                Some(d_er),
            );
            if options.frontier_points >= 2 {
                let f = ef.frontier(options.frontier_points)?;
                // Ours: min-volatility, the targets, max return; theirs:
                // min-volatility and the targets.
                let ours_v: Vec<f64> = f.points[..f.points.len() - 1]
                    .iter()
                    .map(|p| p.volatility)
                    .collect();
                let d_f = max_abs(
                    &ours_v,
                    &floats(&theirs["frontier/pypfopt"]["volatilities"]),
                );
                pair(
                    "frontier",
                    "frontier/pypfopt",
                    "PyPortfolioOpt loop",
                    Some(d_f),
                );
            }
        }
    }
    let doc = json!({
        "versions": doc["versions"],
        "solvers": doc["solvers"],
        "pairs": pairs,
    });
    Ok((rows, doc))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// Largest `|a − b|` (∞ when the lengths differ: nothing to compare).
fn max_abs(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return f64::INFINITY;
    }
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// Largest `|a − b|` relative to the largest `|b|`.
fn max_relative(a: &[f64], b: &[f64]) -> f64 {
    let scale = b
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    max_abs(a, b) / scale
}

fn read_f64(path: &Path) -> Result<Vec<f64>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect())
}
