//! Solve-time benchmark: `cargo run --release -p ultracore-portfolio --example bench_optimize`.
//!
//! Uses the shipped 20 S&P 500 stocks (last 1261 price rows) and synthetic
//! universes of 100 and 500 assets; prints the median of 21 runs per case.

use std::error::Error;
use std::path::PathBuf;

use ultracore_portfolio::bench::{bench_optimize, BenchOptions};
use ultracore_portfolio::Matrix;

fn main() -> Result<(), Box<dyn Error>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sample-data/sp500_prices.csv");
    let text = std::fs::read_to_string(path)?;
    let mut rows = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
        let row: Vec<f64> = line
            .split(',')
            .skip(1)
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        rows.push(row);
    }
    let rows = rows.split_off(rows.len() - 1261);
    let prices = Matrix::from_rows(&rows)?;
    let cases = bench_optimize(Some(&prices), &BenchOptions::default())?;
    println!(
        "{:<18} {:<10} {:>6} {:>6} {:>11} {:>11} {:>5}",
        "case", "data", "assets", "obs", "median ms", "min ms", "iter"
    );
    for c in cases {
        println!(
            "{:<18} {:<10} {:>6} {:>6} {:>11.3} {:>11.3} {:>5}",
            c.case,
            c.data,
            c.assets,
            c.observations,
            c.median.as_secs_f64() * 1e3,
            c.min.as_secs_f64() * 1e3,
            c.iterations
        );
    }
    Ok(())
}
