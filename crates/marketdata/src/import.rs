//! `ultracore etf import`: any supported file into the Parquet layout.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::{read_prices_file, write_series_parquet, Error, Result};

/// Where the per-ticker files live under a data directory:
/// `DATA_DIR/etf/historical` (the layout existing deployments use).
pub fn historical_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("etf").join("historical")
}

/// The file holding one ticker: `DATA_DIR/etf/historical/TICKER.parquet`.
pub fn ticker_path(data_dir: &Path, ticker: &str) -> PathBuf {
    historical_dir(data_dir).join(format!("{ticker}.parquet"))
}

/// What one imported ticker became.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImportSummary {
    /// Ticker symbol.
    pub ticker: String,
    /// The Parquet file written.
    pub path: PathBuf,
    /// Rows written.
    pub rows: usize,
    /// First date.
    pub first_date: Option<NaiveDate>,
    /// Last date.
    pub last_date: Option<NaiveDate>,
    /// The file it came from.
    pub source: PathBuf,
}

/// Reads each file (CSV or Parquet, any supported layout; see
/// [`read_prices_file`]) and writes one Parquet file per ticker under
/// [`historical_dir`]`(data_dir)`, replacing an existing file of the same
/// ticker (the import is the new full history).
///
/// `ticker`: for a single-ticker file (a Yahoo export, `date, close`) it is
/// the ticker's name (default: the file name's stem in upper case); for a
/// multi-ticker file (wide or long) it selects that one ticker. With several
/// files it is rejected, since it could only name one of them.
pub fn import_files(
    files: &[PathBuf],
    ticker: Option<&str>,
    data_dir: &Path,
) -> Result<Vec<ImportSummary>> {
    if files.is_empty() {
        return Err(Error::InvalidArgument {
            name: "files",
            reason: "no file to import".into(),
        });
    }
    if ticker.is_some() && files.len() > 1 {
        return Err(Error::InvalidArgument {
            name: "ticker",
            reason: "--ticker names one ticker, so import one file at a time with it".into(),
        });
    }
    let dir = historical_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut out = Vec::new();
    for file in files {
        let mut series = read_prices_file(file, ticker)?;
        if let (Some(t), true) = (ticker, series.len() > 1) {
            series.retain(|s| s.ticker == t);
            if series.is_empty() {
                return Err(Error::UnknownTicker {
                    ticker: t.to_string(),
                    available: format!("the columns of {}", file.display()),
                });
            }
        }
        for s in series {
            validate_ticker(&s.ticker)?;
            let path = ticker_path(data_dir, &s.ticker);
            write_series_parquet(&path, &s)?;
            tracing::debug!(ticker = %s.ticker, rows = s.bars.len(), path = %path.display(), "imported");
            out.push(ImportSummary {
                ticker: s.ticker.clone(),
                rows: s.bars.len(),
                first_date: s.first_date(),
                last_date: s.last_date(),
                path,
                source: file.clone(),
            });
        }
    }
    Ok(out)
}

/// A ticker becomes a file name, so it must not escape the directory.
fn validate_ticker(t: &str) -> Result<()> {
    let ok = !t.is_empty()
        && t.len() <= 32
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '^' | '='))
        && t != "."
        && t != "..";
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name: "ticker",
            reason: format!("{t:?} is not a usable ticker (letters, digits and . - _ ^ = only)"),
        })
    }
}
