//! What the MCP tests share: data products from the shipped sample data, a
//! server on a temporary embedded log, and the Python client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Map, Value};
use ultracore_esg::OptimizationService;
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_marketdata::mesh::{build_products, DataMesh};
use ultracore_marketdata::{read_prices_file, DataProvider, Lookback};
use ultracore_mcp::{CancellationToken, McpServer, TopicResults};
use ultracore_portfolio::{returns_from_prices, risk_metrics_per_asset, Matrix, MetricsConfig};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub fn sample_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sample-data")
}

/// Data products built from both shipped price files.
pub fn mesh(dir: &Path) -> TestResult<DataMesh> {
    let mut series = read_prices_file(&sample_data().join("sp500_prices.csv"), None)?;
    series.extend(read_prices_file(
        &sample_data().join("factor_etf_prices.csv"),
        None,
    )?);
    build_products(&series, dir)?;
    Ok(DataMesh::open(dir)?)
}

/// A server on a fresh embedded log with the optimization service running
/// beside it, as `ultracore mcp` runs on the embedded log. Cancel the token
/// to stop the service.
pub struct Fixture {
    pub server: McpServer<EmbeddedLog>,
    pub log: EmbeddedLog,
    pub stop: CancellationToken,
    pub _dirs: (tempfile::TempDir, tempfile::TempDir),
}

pub async fn fixture() -> TestResult<Fixture> {
    let data = tempfile::tempdir()?;
    let logdir = tempfile::tempdir()?;
    let mesh = mesh(data.path())?;
    let log = EmbeddedLog::open(logdir.path(), EmbeddedOptions::default())?;
    let stop = CancellationToken::new();
    let service = OptimizationService::new(log.clone(), mesh.clone());
    tokio::spawn(service.run(stop.clone().cancelled_owned()));
    let results = TopicResults::start(log.clone()).await?;
    let server = McpServer::new(log.clone(), mesh, Arc::new(results));
    Ok(Fixture {
        server,
        log,
        stop,
        _dirs: (data, logdir),
    })
}

/// The arguments of the risk check, and the metrics `ultracore risk --json`
/// computes for them from the shipped price file (the same steps: aligned
/// prices, lookback, returns, empyrical's metrics).
pub fn risk_checks() -> TestResult<Value> {
    let tickers = ["AAPL", "MSFT", "KO", "USMV"];
    let request = json!({"tickers": tickers, "lookback_years": 3, "risk_free_rate": 0.02});
    let mut series = read_prices_file(&sample_data().join("sp500_prices.csv"), None)?;
    series.extend(read_prices_file(
        &sample_data().join("factor_etf_prices.csv"),
        None,
    )?);
    let provider = DataProvider::from_series(series);
    let names: Vec<String> = tickers.iter().map(|t| t.to_string()).collect();
    let prices = provider.price_matrix(&names, Lookback::Years(3.0), 3)?;
    let returns = returns_from_prices(&Matrix::from_row_major(
        prices.dates.len(),
        names.len(),
        prices.values.clone(),
    )?)?;
    let config = MetricsConfig {
        risk_free_rate: 0.02,
        ..MetricsConfig::default()
    };
    let metrics = risk_metrics_per_asset(&returns, None, &config)?;
    let assets: Map<String, Value> = names
        .iter()
        .zip(&metrics)
        .map(|(t, m)| Ok((t.clone(), serde_json::to_value(m)?)))
        .collect::<TestResult<_>>()?;
    Ok(json!({"risk": {"request": request, "assets": assets}}))
}

/// The Python interpreter with the `mcp` SDK, from `ULTRACORE_TEST_PYTHON`.
pub fn python() -> String {
    std::env::var("ULTRACORE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "ULTRACORE_TEST_PYTHON is not set: run scripts/test.sh, which prepares a Python \
             venv with the MCP SDK (scripts/python-env.sh prints its path)"
        )
    })
}

/// The Python MCP client script.
pub fn client_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_client.py")
}
