//! `query-events`: what was read from the market data, by whom it was asked
//! (the correlation id), so analytics and audit can see data usage.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::event_family_v1;

pub const TOPIC: &str = "query-events";

/// The aggregate type of query events; the aggregate id is the data source.
pub const AGGREGATE_TYPE: &str = "PriceData";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum QueryEvent {
    PriceDataQueried(PriceDataQueried),
}

event_family_v1!(QueryEvent {
    PriceDataQueried => "price_data_queried",
});

/// A price matrix was read: which tickers, which dates, from where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceDataQueried {
    /// The file or directory the prices came from.
    pub source: String,
    /// Tickers asked for (empty: all in the source).
    pub requested: Vec<String>,
    /// Tickers returned, in column order.
    pub tickers: Vec<String>,
    /// The lookback asked for, in years (`None`: all history).
    pub lookback_years: Option<f64>,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Trading days returned.
    pub rows: usize,
    /// Time to read and align the prices.
    pub duration_ms: f64,
}
