//! The data provider: tickers, availability, latest prices and aligned
//! price matrices, over a data directory or a single file, with a bounded
//! cache.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{Days, NaiveDate};

use crate::import::historical_dir;
use crate::{read_prices_file, Availability, Error, PriceSeries, Result};

/// Which dates to keep after aligning tickers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lookback {
    /// Every common date.
    All,
    /// Dates within this many years (× 365.25 days, rounded) of the last
    /// common date, inclusive.
    Years(f64),
    /// The last this many common dates.
    Rows(usize),
    /// Dates on or after this one.
    Since(NaiveDate),
}

/// Closing prices of several tickers on their common dates.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PriceMatrix {
    /// Dates, ascending.
    pub dates: Vec<NaiveDate>,
    /// Tickers, in the order requested.
    pub tickers: Vec<String>,
    /// Row-major `dates × tickers` closes.
    pub values: Vec<f64>,
}

impl PriceMatrix {
    /// One `Vec` per date.
    pub fn rows(&self) -> Vec<Vec<f64>> {
        let n = self.tickers.len().max(1);
        self.values.chunks(n).map(<[f64]>::to_vec).collect()
    }

    /// One ticker's closes, if present.
    pub fn column(&self, ticker: &str) -> Option<Vec<f64>> {
        let c = self.tickers.iter().position(|t| t == ticker)?;
        let n = self.tickers.len();
        Some(
            self.dates
                .iter()
                .enumerate()
                .map(|(r, _)| self.values[r * n + c])
                .collect(),
        )
    }
}

/// A ticker's last price.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LatestPrice {
    /// Ticker symbol.
    pub ticker: String,
    /// Date of the last close.
    pub date: NaiveDate,
    /// The last close.
    pub close: f64,
}

#[derive(Debug)]
enum Source {
    /// One Parquet file per ticker in this directory, loaded on demand.
    Directory(PathBuf),
    /// Everything loaded up front (a single wide/long/Yahoo file).
    Loaded(BTreeMap<String, Arc<PriceSeries>>),
}

/// Least-recently-used cache of loaded series, bounded by entry count.
#[derive(Debug, Default)]
struct Cache {
    entries: HashMap<String, (Arc<PriceSeries>, u64)>,
    clock: u64,
}

/// Default number of tickers kept in memory by a directory provider.
pub const DEFAULT_CACHE_CAPACITY: usize = 256;

/// Serves price history from a data directory or a file.
///
/// Safe to share between threads (`&self` methods; the cache sits behind a
/// mutex held only for map operations, never during file reads).
#[derive(Debug)]
pub struct DataProvider {
    source: Source,
    cache: Mutex<Cache>,
    capacity: usize,
}

impl DataProvider {
    /// Opens `path`:
    /// * a directory `DIR` with `DIR/etf/historical/TICKER.parquet` files —
    ///   or a directory of `TICKER.parquet` files itself — is read lazily;
    /// * a file (wide CSV, long CSV/Parquet, Yahoo CSV, single-ticker
    ///   Parquet) is read now.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            let nested = historical_dir(path);
            let dir = if nested.is_dir() {
                nested
            } else {
                path.to_path_buf()
            };
            Ok(Self::with_source(Source::Directory(dir)))
        } else {
            Ok(Self::from_series(read_prices_file(path, None)?))
        }
    }

    /// A provider over series already in memory.
    pub fn from_series(series: Vec<PriceSeries>) -> Self {
        let map = series
            .into_iter()
            .map(|s| (s.ticker.clone(), Arc::new(s)))
            .collect();
        Self::with_source(Source::Loaded(map))
    }

    fn with_source(source: Source) -> Self {
        Self {
            source,
            cache: Mutex::new(Cache::default()),
            capacity: DEFAULT_CACHE_CAPACITY,
        }
    }

    /// Bounds the cache to `capacity` tickers (at least 1).
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Every ticker with data, sorted.
    pub fn tickers(&self) -> Result<Vec<String>> {
        match &self.source {
            Source::Loaded(m) => Ok(m.keys().cloned().collect()),
            Source::Directory(dir) => {
                let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
                let mut out = Vec::new();
                for entry in rd {
                    let p = entry.map_err(|e| Error::io(dir, e))?.path();
                    if p.extension().is_some_and(|e| e == "parquet") {
                        if let Some(s) = p.file_stem().and_then(|s| s.to_str()) {
                            out.push(s.to_string());
                        }
                    }
                }
                out.sort();
                Ok(out)
            }
        }
    }

    /// One ticker's full series.
    pub fn series(&self, ticker: &str) -> Result<Arc<PriceSeries>> {
        match &self.source {
            Source::Loaded(m) => m.get(ticker).cloned().ok_or_else(|| self.unknown(ticker)),
            Source::Directory(dir) => {
                if let Some(s) = self.cache_get(ticker) {
                    return Ok(s);
                }
                let path = dir.join(format!("{ticker}.parquet"));
                if !path.is_file() {
                    return Err(self.unknown(ticker));
                }
                let mut series = read_prices_file(&path, Some(ticker))?;
                let s = match series.len() {
                    1 => series.remove(0),
                    _ => {
                        let pos = series
                            .iter()
                            .position(|s| s.ticker == ticker)
                            .ok_or_else(|| self.unknown(ticker))?;
                        series.swap_remove(pos)
                    }
                };
                let s = Arc::new(s);
                self.cache_put(ticker, s.clone());
                Ok(s)
            }
        }
    }

    /// First and last date, rows and business-day gaps of one ticker.
    pub fn availability(&self, ticker: &str) -> Result<Availability> {
        Ok(self.series(ticker)?.availability())
    }

    /// The last close of each ticker.
    pub fn latest_prices(&self, tickers: &[String]) -> Result<Vec<LatestPrice>> {
        tickers
            .iter()
            .map(|t| {
                let s = self.series(t)?;
                let last = s.bars.last().ok_or_else(|| Error::TooLittleHistory {
                    tickers: t.clone(),
                    needed: 1,
                    got: 0,
                    window: String::new(),
                })?;
                Ok(LatestPrice {
                    ticker: t.clone(),
                    date: last.date,
                    close: last.close,
                })
            })
            .collect()
    }

    /// Closes of `tickers` (all tickers when empty) on the dates they all
    /// have (inner join), restricted to `lookback`, with at least
    /// `min_rows` rows.
    ///
    /// Each series is already sorted, free of duplicate dates (an error at
    /// load) and of NaN/empty closes (dropped at load), so a date where any
    /// ticker lacks a price is left out for all — prices are never filled
    /// forward.
    pub fn price_matrix(
        &self,
        tickers: &[String],
        lookback: Lookback,
        min_rows: usize,
    ) -> Result<PriceMatrix> {
        let tickers = if tickers.is_empty() {
            self.tickers()?
        } else {
            tickers.to_vec()
        };
        if tickers.is_empty() {
            return Err(self.unknown("(any)"));
        }
        let series = tickers
            .iter()
            .map(|t| self.series(t))
            .collect::<Result<Vec<_>>>()?;
        // Walk all series in step: a merge join on sorted dates, linear in rows.
        let mut idx = vec![0usize; series.len()];
        let mut dates = Vec::new();
        let mut values = Vec::new();
        'outer: loop {
            let mut target = NaiveDate::MIN;
            for (s, &i) in series.iter().zip(&idx) {
                match s.bars.get(i) {
                    Some(b) => target = target.max(b.date),
                    None => break 'outer,
                }
            }
            let mut all = true;
            for (s, i) in series.iter().zip(idx.iter_mut()) {
                while s.bars.get(*i).is_some_and(|b| b.date < target) {
                    *i += 1;
                }
                match s.bars.get(*i) {
                    Some(b) if b.date == target => {}
                    Some(_) => all = false,
                    None => break 'outer,
                }
            }
            if all {
                dates.push(target);
                for (s, i) in series.iter().zip(idx.iter_mut()) {
                    values.push(s.bars[*i].close);
                    *i += 1;
                }
            }
        }
        let n = tickers.len();
        let start = match (lookback, dates.last()) {
            (Lookback::All, _) | (_, None) => 0,
            (Lookback::Rows(r), _) => dates.len().saturating_sub(r),
            (Lookback::Since(d), _) => dates.partition_point(|x| *x < d),
            (Lookback::Years(y), Some(&last)) => {
                if !(y.is_finite() && y > 0.0) {
                    return Err(Error::InvalidArgument {
                        name: "lookback years",
                        reason: format!("{y} is not a positive number"),
                    });
                }
                let days = (y * 365.25).round() as u64;
                let cutoff = last
                    .checked_sub_days(Days::new(days))
                    .unwrap_or(NaiveDate::MIN);
                dates.partition_point(|x| *x < cutoff)
            }
        };
        let dates = dates.split_off(start);
        let values = values.split_off(start * n);
        if dates.len() < min_rows {
            let window = match (dates.first(), dates.last()) {
                (Some(a), Some(b)) => format!(" from {a} to {b}"),
                _ => String::new(),
            };
            return Err(Error::TooLittleHistory {
                tickers: tickers.join(","),
                needed: min_rows,
                got: dates.len(),
                window,
            });
        }
        tracing::debug!(tickers = n, rows = dates.len(), "price matrix");
        Ok(PriceMatrix {
            dates,
            tickers,
            values,
        })
    }

    /// Drops every cached series (the next request re-reads the files,
    /// e.g. after an import).
    pub fn clear_cache(&self) {
        let mut c = self.lock();
        c.entries.clear();
    }

    /// Series currently cached.
    pub fn cached(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (every operation is a single insert/remove), so poisoning is ignored.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cache_get(&self, ticker: &str) -> Option<Arc<PriceSeries>> {
        let mut c = self.lock();
        c.clock += 1;
        let now = c.clock;
        c.entries.get_mut(ticker).map(|(s, used)| {
            *used = now;
            s.clone()
        })
    }

    fn cache_put(&self, ticker: &str, s: Arc<PriceSeries>) {
        let mut c = self.lock();
        c.clock += 1;
        let now = c.clock;
        if !c.entries.contains_key(ticker) && c.entries.len() >= self.capacity {
            let oldest = c
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                c.entries.remove(&k);
            }
        }
        c.entries.insert(ticker.to_string(), (s, now));
    }

    fn unknown(&self, ticker: &str) -> Error {
        let available = match self.tickers() {
            Ok(t) if t.is_empty() => "none".to_string(),
            Ok(t) if t.len() > 12 => format!("{}, … ({} in all)", t[..12].join(", "), t.len()),
            Ok(t) => t.join(", "),
            Err(e) => format!("unknown: {e}"),
        };
        Error::UnknownTicker {
            ticker: ticker.to_string(),
            available,
        }
    }
}
