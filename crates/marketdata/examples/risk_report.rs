//! The whole analytics flow on the shipped data, as the CLI runs it:
//! `cargo run -p ultracore-marketdata --example risk_report [PRICES] [YEARS]`.

use std::error::Error;

use ultracore_marketdata::{DataProvider, Lookback};
use ultracore_portfolio::{
    correlation_matrix, mean_historical_return, returns_from_prices, risk_metrics_per_asset,
    sample_cov, EfficientFrontier, Matrix, MetricsConfig, Objective,
};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../sample-data/factor_etf_prices.csv"
        )
        .into()
    });
    let years: f64 = args.next().map(|y| y.parse()).transpose()?.unwrap_or(5.0);

    let provider = DataProvider::open(&path)?;
    let prices = provider.price_matrix(&[], Lookback::Years(years), 2)?;
    let matrix = Matrix::from_row_major(
        prices.dates.len(),
        prices.tickers.len(),
        prices.values.clone(),
    )?;
    let returns = returns_from_prices(&matrix)?;

    let config = MetricsConfig {
        risk_free_rate: 0.02,
        ..MetricsConfig::default()
    };
    let metrics = risk_metrics_per_asset(&returns, None, &config)?;
    println!(
        "{:<6} {:>8} {:>8} {:>7} {:>8} {:>8}",
        "ticker", "cagr", "vol", "sharpe", "max_dd", "var_95"
    );
    for (t, m) in prices.tickers.iter().zip(&metrics) {
        println!(
            "{t:<6} {:>8.4} {:>8.4} {:>7.3} {:>8.4} {:>8.4}",
            m.cagr, m.volatility, m.sharpe, m.max_drawdown, m.var_95
        );
    }
    let corr = correlation_matrix(&returns)?;
    println!(
        "corr({}, {}) = {:.3}",
        prices.tickers[0],
        prices.tickers[1],
        corr.get(0, 1)
    );

    let ef = EfficientFrontier::new(
        mean_historical_return(&returns, true)?,
        sample_cov(&returns)?,
    )?
    .with_risk_free_rate(0.02)?;
    let p = ef.optimize(Objective::MaxSharpe)?;
    println!(
        "max Sharpe: return {:.4}, volatility {:.4}, Sharpe {:.3} ({}, {} iterations)",
        p.expected_return, p.volatility, p.sharpe, p.status, p.iterations
    );
    for (t, w) in prices.tickers.iter().zip(&p.weights) {
        println!("  {t:<6} {w:.4}");
    }
    Ok(())
}
