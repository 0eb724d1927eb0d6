//! What a process needs before it runs the flow on sample data: the data
//! products (built from the shipped price files on first use) and the
//! demo's sample request. Used by `ultracore demo`, `serve` and `bench flow`.

use std::path::{Path, PathBuf};

use serde_json::json;
use ultracore_esg::OptimizationRequest;
use ultracore_marketdata::mesh::{build_products, BuildSummary, DataMesh};
use ultracore_marketdata::read_prices_file;

/// Why the data products could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum MeshSetupError {
    #[error(
        "no data products in {dir} and no shipped sample data here: build them with \
         `ultracore mesh build --prices FILE.csv --out {dir}`"
    )]
    NoData { dir: String },
    #[error(transparent)]
    Data(#[from] ultracore_marketdata::Error),
}

/// The shipped price files the data products are built from: `sample-data/`
/// of the working directory, else the repository's.
fn sample_prices() -> Option<Vec<PathBuf>> {
    let candidates = [
        PathBuf::from("sample-data"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sample-data"),
    ];
    candidates.iter().find_map(|dir| {
        let files = vec![
            dir.join("sp500_prices.csv"),
            dir.join("factor_etf_prices.csv"),
        ];
        files.iter().all(|f| f.is_file()).then_some(files)
    })
}

/// The data products in `dir`, built from the shipped sample data first if
/// the directory has none; the summary says what was built, if anything.
pub fn open_mesh(dir: &Path) -> Result<(DataMesh, Option<BuildSummary>), MeshSetupError> {
    let ready = dir.join("financial_data_product.parquet").is_file()
        && dir.join("esg_data_product.parquet").is_file();
    let mut built = None;
    if !ready {
        let files = sample_prices().ok_or_else(|| MeshSetupError::NoData {
            dir: dir.display().to_string(),
        })?;
        let mut series = Vec::new();
        for f in &files {
            series.extend(read_prices_file(f, None)?);
        }
        built = Some(build_products(&series, dir)?);
    }
    Ok((DataMesh::open(dir)?, built))
}

/// The sample request: a portfolio heavy in energy and staples, rebalanced
/// over the 20 shipped S&P 500 stocks for the best Sharpe ratio with a
/// minimum ESG score, a carbon cap, flagged issuers excluded, at most 25 %
/// per stock and 80 % turnover, 10 bps costs.
pub fn sample_request(portfolio_id: &str) -> OptimizationRequest {
    serde_json::from_value(json!({
        "request_id": uuid::Uuid::now_v7(),
        "portfolio_id": portfolio_id,
        "portfolio": {
            "holdings": [
                {"ticker": "XOM", "units": 400}, {"ticker": "CVX", "units": 150},
                {"ticker": "KO", "units": 500}, {"ticker": "JPM", "units": 120},
                {"ticker": "GE", "units": 100}
            ],
            "cash": 25000.0
        },
        "objective": {"kind": "max_sharpe"},
        "constraints": {
            "min_esg_score": 60.0,
            "max_carbon_intensity": 150.0,
            "exclude_flagged": true,
            "weight_bounds": [0.0, 0.25],
            "max_turnover": 0.8,
            "transaction_cost_bps": 10.0,
            "min_trade_weight": 0.005
        },
        "universe": ["AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO",
                     "LLY", "MRK", "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM"]
    }))
    .expect("the sample request is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_request_is_valid_and_fresh() {
        let a = sample_request("pf-a");
        let b = sample_request("pf-a");
        assert_eq!(a.portfolio_id, "pf-a");
        assert_eq!(a.universe.len(), 20);
        assert_ne!(a.request_id, b.request_id, "each request gets its own id");
    }
}
