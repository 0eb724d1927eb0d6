//! Price history for UltraCore: reading Parquet and CSV in the layouts
//! deployments and users have, importing them into the one-file-per-ticker
//! Parquet layout, and a cached provider that hands aligned price matrices
//! to the analytics (`ultracore-portfolio`).
//!
//! Supported inputs (columns matched case-insensitively; `Adj Close` and
//! `adj_close` are the same column):
//!
//! | layout | columns | formats |
//! |---|---|---|
//! | per ticker | `DIR/etf/historical/TICKER.parquet`: `date, close` + optional `open, high, low, adj_close, volume` | Parquet |
//! | long | `date, ticker, close, …` | Parquet, CSV |
//! | wide | `date, TICKER1, TICKER2, …` (closes) | CSV, Parquet |
//! | Yahoo Finance | `Date,Open,High,Low,Close,Adj Close,Volume` | CSV |
//!
//! Data handling, documented once: dates are sorted; a duplicate date for a
//! ticker is an error naming both; empty, `null` and `NaN` closes mean "no
//! price that day" and the row is dropped for that ticker; aligned matrices
//! keep only dates every requested ticker has (never forward-filled).
//!
//! # Layout
//!
//! - `series`: [`PriceSeries`], [`PriceBar`], [`Availability`].
//! - `frame`: columns read from a file and layout detection.
//! - `csv_io`, `parquet_io`: the two formats ([`write_series_parquet`]).
//! - `import`: [`import_files`] for `ultracore etf import`.
//! - [`mesh`]: the financial and ESG data products and [`mesh::DataMesh`],
//!   which reads them with filter pushdown; `mesh/update`:
//!   [`mesh::apply_prices`], closing prices merged into the financial product.
//! - `provider`: [`DataProvider`] with its LRU cache, [`PriceMatrix`].
//! - `error`: [`Error`] and [`Result`].

mod csv_io;
mod error;
mod frame;
mod import;
pub mod mesh;
mod parquet_io;
mod provider;
mod series;

use std::path::Path;

pub use error::{Error, Result};
pub use import::{historical_dir, import_files, ticker_path, ImportSummary};
pub use parquet_io::write_series_parquet;
pub use provider::{DataProvider, LatestPrice, Lookback, PriceMatrix, DEFAULT_CACHE_CAPACITY};
pub use series::{Availability, PriceBar, PriceSeries};

/// Reads every ticker's series from one file: `.parquet`/`.pq` as Parquet,
/// anything else as CSV. The layout is detected from the columns (see the
/// crate docs). `ticker` names the ticker of a single-ticker file (default:
/// the file stem in upper case) and is ignored for multi-ticker files.
pub fn read_prices_file(path: &Path, ticker: Option<&str>) -> Result<Vec<PriceSeries>> {
    let is_parquet = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"));
    let frame = if is_parquet {
        parquet_io::read_parquet_frame(path)?
    } else {
        csv_io::read_csv_frame(path)?
    };
    frame.into_series(ticker)
}
