//! The crate's one error type.

use std::path::PathBuf;

use chrono::NaiveDate;

/// Everything that can go wrong loading or serving price history.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("cannot access {path}: {cause}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error (in the message, so it is not repeated as a source).
        cause: std::io::Error,
    },
    /// A Parquet file could not be read or written.
    #[error("Parquet error in {path}: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What the Parquet reader or writer said.
        message: String,
    },
    /// A CSV file could not be parsed.
    #[error("CSV error in {path}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// What went wrong, with the line where known.
        message: String,
    },
    /// A required column is absent.
    #[error("{path} has no column {column:?} (columns: {found})")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The expected column.
        column: String,
        /// The columns that are there, comma separated.
        found: String,
    },
    /// The file's columns match none of the supported layouts.
    #[error("{path}: unrecognised layout ({reason}); expected a wide CSV (date,TICKER1,…), a long file (date,ticker,close,…) or a Yahoo Finance export (Date,Open,High,Low,Close,Adj Close,Volume)")]
    UnknownLayout {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A cell that should be a date is not one.
    #[error("{path}, row {row}: {value:?} is not a date (expected YYYY-MM-DD)")]
    BadDate {
        /// The file.
        path: PathBuf,
        /// 1-based data row.
        row: usize,
        /// The cell.
        value: String,
    },
    /// A cell that should be a number is not one.
    #[error("{path}, row {row}, column {column:?}: {value:?} is not a number")]
    BadNumber {
        /// The file.
        path: PathBuf,
        /// 1-based data row.
        row: usize,
        /// Column name.
        column: String,
        /// The cell.
        value: String,
    },
    /// The same date appears twice for one ticker.
    #[error("ticker {ticker} has two rows for {date}; remove the duplicate from the source")]
    DuplicateDate {
        /// The ticker.
        ticker: String,
        /// The repeated date.
        date: NaiveDate,
    },
    /// The ticker is not in the data.
    #[error("no price history for ticker {ticker}; import it with `ultracore etf import FILE --ticker {ticker}` (available: {available})")]
    UnknownTicker {
        /// The requested ticker.
        ticker: String,
        /// Some of the available tickers, comma separated.
        available: String,
    },
    /// Fewer rows than needed in the window.
    #[error("only {got} common price rows{window} for {tickers}, need at least {needed}; lengthen the lookback window, drop the shortest-lived ticker or import more history")]
    TooLittleHistory {
        /// The tickers requested, comma separated.
        tickers: String,
        /// Rows needed.
        needed: usize,
        /// Rows available after alignment.
        got: usize,
        /// A description of the window (" from 2020-01-02 to 2022-12-28").
        window: String,
    },
    /// A price update names a ticker the financial product cannot take
    /// as it stands (it has the ticker under several ISINs, or the new
    /// ticker's placeholder ISIN is another ticker's).
    #[error("cannot apply the prices of {ticker} to {path}: {reason}")]
    TickerConflict {
        /// The financial product.
        path: PathBuf,
        /// The ticker of the update.
        ticker: String,
        /// Why, with the ISINs involved.
        reason: String,
    },
    /// An invalid argument.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// Argument name.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }

    pub(crate) fn parquet(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        Error::Parquet {
            path: path.into(),
            message: e.to_string(),
        }
    }

    pub(crate) fn csv(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        Error::Csv {
            path: path.into(),
            message: e.to_string(),
        }
    }
}
