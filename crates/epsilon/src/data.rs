//! Prices as the agent reads them: a wide CSV (`date` then one column per
//! ticker, no gaps), its SHA-256, daily returns and the weekly decision
//! dates.

use std::path::Path;

use chrono::{Datelike, NaiveDate};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Daily closing prices of a universe, every ticker on every date.
#[derive(Debug, Clone)]
pub struct Panel {
    pub dates: Vec<NaiveDate>,
    pub tickers: Vec<String>,
    /// `prices[d][i]`: ticker `i`'s close on `dates[d]`.
    pub prices: Vec<Vec<f64>>,
    /// SHA-256 of the file the panel was read from (hex).
    pub sha256: String,
}

impl Panel {
    /// Reads a wide price CSV (the shipped `sample-data/*_prices.csv`).
    pub fn read(path: &Path) -> Result<Panel> {
        let bytes = std::fs::read(path).map_err(|e| Error::Data {
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        Panel::parse(&bytes).map_err(|e| match e {
            Error::Data { reason } => Error::Data {
                reason: format!("{}: {reason}", path.display()),
            },
            other => other,
        })
    }

    /// Parses a wide price CSV: a header `date,T1,T2,…`, then one row per
    /// date in increasing order, every price a positive number.
    pub fn parse(bytes: &[u8]) -> Result<Panel> {
        let bad = |reason: String| Error::Data { reason };
        let text = std::str::from_utf8(bytes).map_err(|_| bad("the file is not UTF-8".into()))?;
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header = lines
            .next()
            .ok_or_else(|| bad("the file is empty".into()))?;
        let mut cols = header.split(',').map(str::trim);
        if cols.next() != Some("date") {
            return Err(bad(
                "the first column must be `date` (a wide CSV: date, then one column per ticker)"
                    .into(),
            ));
        }
        let tickers: Vec<String> = cols.map(str::to_owned).collect();
        if tickers.is_empty() {
            return Err(bad("the header names no ticker".into()));
        }
        let mut dates = Vec::new();
        let mut prices = Vec::new();
        for (n, line) in lines.enumerate() {
            let row = n + 2;
            let mut cells = line.split(',').map(str::trim);
            let date = cells.next().unwrap_or_default();
            let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map_err(|_| bad(format!("row {row}: `{date}` is not a YYYY-MM-DD date")))?;
            if dates.last().is_some_and(|d| *d >= date) {
                return Err(bad(format!(
                    "row {row}: {date} does not come after the row before; sort the file by date"
                )));
            }
            let mut p = Vec::with_capacity(tickers.len());
            for (i, cell) in cells.enumerate() {
                let v: f64 = cell.parse().map_err(|_| {
                    bad(format!(
                        "row {row} ({date}): `{cell}` is not a price (column {})",
                        tickers.get(i).map_or("?", String::as_str)
                    ))
                })?;
                if !(v.is_finite() && v > 0.0) {
                    return Err(bad(format!(
                        "row {row} ({date}): price {v} of {} is not a positive number",
                        tickers.get(i).map_or("?", String::as_str)
                    )));
                }
                p.push(v);
            }
            if p.len() != tickers.len() {
                return Err(bad(format!(
                    "row {row} ({date}): {} prices for {} tickers; every ticker needs a price on every date",
                    p.len(),
                    tickers.len()
                )));
            }
            dates.push(date);
            prices.push(p);
        }
        if dates.len() < 2 {
            return Err(bad("fewer than two dates".into()));
        }
        Ok(Panel {
            dates,
            tickers,
            prices,
            sha256: hex(&Sha256::digest(bytes)),
        })
    }

    pub fn assets(&self) -> usize {
        self.tickers.len()
    }

    /// Simple daily returns: `returns[d]` is the return from day `d − 1`
    /// to day `d` (`returns[0]` is zero).
    pub fn daily_returns(&self) -> Vec<Vec<f64>> {
        let mut out = vec![vec![0.0; self.assets()]; self.dates.len()];
        for (d, row) in out.iter_mut().enumerate().skip(1) {
            for (r, (p, q)) in row
                .iter_mut()
                .zip(self.prices[d].iter().zip(&self.prices[d - 1]))
            {
                *r = p / q - 1.0;
            }
        }
        out
    }

    /// The last trading day of every ISO week (indices into `dates`): the
    /// decision dates. Decisions are made at that day's close. The file's
    /// last row ends a week only on a Friday: a week the data stops in the
    /// middle of is not a week.
    pub fn week_ends(&self) -> Vec<usize> {
        let mut out = Vec::new();
        for d in 0..self.dates.len() {
            let last = if d + 1 == self.dates.len() {
                self.dates[d].weekday() == chrono::Weekday::Fri
            } else {
                self.dates[d + 1].iso_week() != self.dates[d].iso_week()
            };
            if last {
                out.push(d);
            }
        }
        out
    }

    /// Asset returns from the close of day `from` to the close of day `to`.
    pub fn period_returns(&self, from: usize, to: usize) -> Vec<f64> {
        (0..self.assets())
            .map(|i| self.prices[to][i] / self.prices[from][i] - 1.0)
            .collect()
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// SHA-256 of bytes, as hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "date,A,B\n2024-01-04,10,20\n2024-01-05,11,20\n2024-01-08,11,22\n2024-01-12,12.1,22\n2024-01-15,12.1,23\n";

    #[test]
    fn parses_returns_and_week_ends() {
        let p = Panel::parse(CSV.as_bytes()).unwrap();
        assert_eq!(p.tickers, ["A", "B"]);
        assert_eq!(p.dates.len(), 5);
        let r = p.daily_returns();
        assert!((r[1][0] - 0.1).abs() < 1e-12 && r[1][1] == 0.0);
        // Thu 4th and Fri 5th are one week, Mon 8th and Fri 12th the next;
        // the data stops on Monday 15th, in the middle of a third.
        assert_eq!(p.week_ends(), vec![1, 3]);
        let friday = Panel::parse(format!("{CSV}2024-01-19,12,23\n").as_bytes()).unwrap();
        assert_eq!(friday.week_ends(), vec![1, 3, 5]);
        let w = p.period_returns(1, 3);
        assert!((w[0] - 0.1).abs() < 1e-12 && (w[1] - 0.1).abs() < 1e-12);
        assert_eq!(p.sha256.len(), 64);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let e = |s: &str| Panel::parse(s.as_bytes()).unwrap_err().to_string();
        assert!(e("day,A\n2024-01-01,1\n2024-01-02,1\n").contains("first column must be `date`"));
        assert!(e("date,A\n2024-01-02,1\n2024-01-01,1\n").contains("does not come after"));
        assert!(
            e("date,A,B\n2024-01-01,1\n2024-01-02,1,2\n").contains("every ticker needs a price")
        );
        assert!(e("date,A\n2024-01-01,-1\n2024-01-02,1\n").contains("not a positive number"));
        assert!(e("date,A\n2024-01-01,x\n2024-01-02,1\n").contains("is not a price"));
    }
}
