//! `ultracore bench optimize`: solve times of the portfolio optimizer.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use ultracore_term::table;

#[derive(Debug, Args)]
pub struct OptimizeBench {
    /// The real-data universe (wide CSV of prices).
    #[arg(long, default_value = "sample-data/sp500_prices.csv")]
    prices: PathBuf,
    /// Timed runs per case (the median is reported).
    #[arg(long, default_value_t = 21)]
    runs: usize,
    #[arg(long)]
    json: bool,
}

pub fn run(b: OptimizeBench, seed: u64) -> Result<()> {
    use ultracore_marketdata::{DataProvider, Lookback};
    use ultracore_portfolio::bench::{bench_optimize, BenchOptions};
    let provider = DataProvider::open(&b.prices).map_err(|e| {
        anyhow::anyhow!("{e} (run from the repository root, or pass --prices FILE)")
    })?;
    let prices = provider.price_matrix(&[], Lookback::Rows(1261), 2)?;
    let matrix = ultracore_portfolio::Matrix::from_row_major(
        prices.dates.len(),
        prices.tickers.len(),
        prices.values,
    )?;
    let options = BenchOptions {
        runs: b.runs.max(1),
        seed,
        ..BenchOptions::default()
    };
    let cases = bench_optimize(Some(&matrix), &options)?;
    if b.json {
        println!("{}", serde_json::to_string(&cases)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = cases
        .iter()
        .map(|c| {
            vec![
                c.case.clone(),
                c.data.clone(),
                c.assets.to_string(),
                c.observations.to_string(),
                format!("{:.3}", c.median.as_secs_f64() * 1e3),
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
    Ok(())
}
