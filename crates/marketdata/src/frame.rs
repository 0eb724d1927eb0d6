//! A file's columns before interpretation, and the layout detection that
//! turns them into per-ticker series. CSV and Parquet readers both produce
//! a [`Frame`], so every layout works from either format.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::{Error, PriceBar, PriceSeries, Result};

/// A numeric column's cells (`None` = no value).
type Cells = Vec<Option<f64>>;

/// One column's cells.
#[derive(Debug, Clone)]
pub(crate) enum Column {
    /// Already typed dates (Parquet date/timestamp columns).
    Dates(Vec<Option<NaiveDate>>),
    /// Already typed numbers (Parquet numeric columns).
    Numbers(Vec<Option<f64>>),
    /// Text (every CSV column; Parquet string columns).
    Text(Vec<Option<String>>),
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Dates(v) => v.len(),
            Column::Numbers(v) => v.len(),
            Column::Text(v) => v.len(),
        }
    }
}

/// Named columns read from one file.
#[derive(Debug)]
pub(crate) struct Frame {
    pub path: PathBuf,
    pub names: Vec<String>,
    pub columns: Vec<Column>,
}

/// Lower case, spaces and dashes as underscores: "Adj Close" → "adj_close".
fn normalise(name: &str) -> String {
    name.trim()
        .trim_start_matches('\u{feff}')
        .to_ascii_lowercase()
        .replace([' ', '-'], "_")
}

/// Parses `YYYY-MM-DD`, also when followed by a time (`2020-01-02 00:00:00`).
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let head = s.get(..10).unwrap_or(s);
    NaiveDate::parse_from_str(head, "%Y-%m-%d").ok()
}

/// Parses a price cell: empty, `null`, `NaN` and `NA` mean "no value".
fn parse_number(s: &str) -> std::result::Result<Option<f64>, ()> {
    let s = s.trim();
    if s.is_empty()
        || ["null", "nan", "na", "n/a", "none"].contains(&s.to_ascii_lowercase().as_str())
    {
        return Ok(None);
    }
    s.parse::<f64>().map(Some).map_err(|_| ())
}

impl Frame {
    fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| normalise(n) == name)
    }

    fn found(&self) -> String {
        self.names.join(", ")
    }

    fn dates(&self, idx: usize) -> Result<Vec<NaiveDate>> {
        match &self.columns[idx] {
            Column::Dates(v) => v
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    d.ok_or_else(|| Error::BadDate {
                        path: self.path.clone(),
                        row: i + 1,
                        value: String::new(),
                    })
                })
                .collect(),
            Column::Text(v) => v
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let s = s.as_deref().unwrap_or("");
                    parse_date(s).ok_or_else(|| Error::BadDate {
                        path: self.path.clone(),
                        row: i + 1,
                        value: s.to_string(),
                    })
                })
                .collect(),
            Column::Numbers(_) => Err(Error::UnknownLayout {
                path: self.path.clone(),
                reason: format!("the date column {:?} holds numbers", self.names[idx]),
            }),
        }
    }

    fn numbers(&self, idx: usize) -> Result<Vec<Option<f64>>> {
        match &self.columns[idx] {
            Column::Numbers(v) => Ok(v.iter().map(|x| x.filter(|f| !f.is_nan())).collect()),
            Column::Text(v) => v
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let s = s.as_deref().unwrap_or("");
                    parse_number(s).map_err(|()| Error::BadNumber {
                        path: self.path.clone(),
                        row: i + 1,
                        column: self.names[idx].clone(),
                        value: s.to_string(),
                    })
                })
                .collect(),
            Column::Dates(_) => Err(Error::UnknownLayout {
                path: self.path.clone(),
                reason: format!("the price column {:?} holds dates", self.names[idx]),
            }),
        }
    }

    fn texts(&self, idx: usize) -> Result<Vec<String>> {
        match &self.columns[idx] {
            Column::Text(v) => Ok(v.iter().map(|s| s.clone().unwrap_or_default()).collect()),
            _ => Err(Error::UnknownLayout {
                path: self.path.clone(),
                reason: format!("the ticker column {:?} is not text", self.names[idx]),
            }),
        }
    }

    /// Interprets the frame:
    ///
    /// * a `ticker` (or `symbol`) column → long layout, one series per ticker;
    /// * else a `close` column → one ticker (Yahoo export or `date, close, …`),
    ///   named `ticker_hint` or, failing that, the file stem in upper case;
    /// * else → wide layout, `date` then one close column per ticker.
    ///
    /// The date column is the one named `date` (any case), else the first.
    /// `adj_close` is read from `adj_close` or `Adj Close`.
    pub fn into_series(self, ticker_hint: Option<&str>) -> Result<Vec<PriceSeries>> {
        if self.names.is_empty() {
            return Err(Error::UnknownLayout {
                path: self.path,
                reason: "no columns".into(),
            });
        }
        if let Some(c) = self
            .columns
            .iter()
            .find(|c| c.len() != self.columns[0].len())
        {
            return Err(Error::UnknownLayout {
                path: self.path.clone(),
                reason: format!("columns of different lengths ({})", c.len()),
            });
        }
        let date_idx = self.index("date").unwrap_or(0);
        let dates = self.dates(date_idx)?;
        let ticker_idx = self.index("ticker").or_else(|| self.index("symbol"));
        let close_idx = self.index("close");
        let optional = |name: &str| -> Result<Option<Cells>> {
            self.index(name).map(|i| self.numbers(i)).transpose()
        };
        match (ticker_idx, close_idx) {
            (Some(t), close) => {
                let close = close.ok_or_else(|| Error::MissingColumn {
                    path: self.path.clone(),
                    column: "close".into(),
                    found: self.found(),
                })?;
                let tickers = self.texts(t)?;
                let bars = self.bars(&dates, close, &optional)?;
                let mut by: BTreeMap<String, Vec<PriceBar>> = BTreeMap::new();
                for (ticker, bar) in tickers.into_iter().zip(bars) {
                    let ticker = ticker.trim().to_string();
                    if ticker.is_empty() {
                        continue;
                    }
                    by.entry(ticker).or_default().push(bar);
                }
                by.into_iter()
                    .map(|(t, b)| PriceSeries::new(t, b))
                    .collect()
            }
            (None, Some(close)) => {
                let ticker = match ticker_hint {
                    Some(t) => t.to_string(),
                    None => stem_ticker(&self.path)?,
                };
                let bars = self.bars(&dates, close, &optional)?;
                Ok(vec![PriceSeries::new(ticker, bars)?])
            }
            (None, None) => {
                if self.names.len() < 2 {
                    return Err(Error::UnknownLayout {
                        path: self.path.clone(),
                        reason: format!("only the column {:?}", self.names[0]),
                    });
                }
                let mut out = Vec::with_capacity(self.names.len() - 1);
                for (i, name) in self.names.iter().enumerate() {
                    if i == date_idx {
                        continue;
                    }
                    let closes = self.numbers(i)?;
                    let bars = dates
                        .iter()
                        .zip(closes)
                        .map(|(d, c)| PriceBar::close_only(*d, c.unwrap_or(f64::NAN)))
                        .collect();
                    out.push(PriceSeries::new(name.trim(), bars)?);
                }
                Ok(out)
            }
        }
    }

    fn bars(
        &self,
        dates: &[NaiveDate],
        close: usize,
        optional: &dyn Fn(&str) -> Result<Option<Cells>>,
    ) -> Result<Vec<PriceBar>> {
        let closes = self.numbers(close)?;
        let [open, high, low, adj, volume] =
            ["open", "high", "low", "adj_close", "volume"].map(optional);
        let (open, high, low, adj, volume) = (open?, high?, low?, adj?, volume?);
        let at = |v: &Option<Vec<Option<f64>>>, i: usize| v.as_ref().and_then(|v| v[i]);
        Ok(dates
            .iter()
            .enumerate()
            .map(|(i, d)| PriceBar {
                date: *d,
                close: closes[i].unwrap_or(f64::NAN),
                open: at(&open, i),
                high: at(&high, i),
                low: at(&low, i),
                adj_close: at(&adj, i),
                volume: at(&volume, i),
            })
            .collect())
    }
}

/// The ticker implied by a file name: `data/SPY.csv` → `SPY`.
pub(crate) fn stem_ticker(path: &Path) -> Result<String> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::InvalidArgument {
            name: "ticker",
            reason: format!(
                "{} holds one ticker's prices and its name gives no ticker; pass --ticker",
                path.display()
            ),
        })
}
