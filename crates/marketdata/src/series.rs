//! One ticker's daily price history.

use chrono::{Datelike, NaiveDate, Weekday};

use crate::{Error, Result};

/// One day of prices. `close` is what the analytics use; the rest is kept
/// when the source has it so imports lose nothing.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PriceBar {
    /// Trading date.
    pub date: NaiveDate,
    /// Closing price (NaN when the source cell is empty).
    pub close: f64,
    /// Opening price.
    pub open: Option<f64>,
    /// Daily high.
    pub high: Option<f64>,
    /// Daily low.
    pub low: Option<f64>,
    /// Dividend- and split-adjusted close.
    pub adj_close: Option<f64>,
    /// Volume traded.
    pub volume: Option<f64>,
}

impl PriceBar {
    /// A bar with only a close.
    pub fn close_only(date: NaiveDate, close: f64) -> Self {
        Self {
            date,
            close,
            open: None,
            high: None,
            low: None,
            adj_close: None,
            volume: None,
        }
    }
}

/// A ticker's bars in ascending date order with no duplicate dates.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PriceSeries {
    /// Ticker symbol.
    pub ticker: String,
    /// Bars, ascending by date.
    pub bars: Vec<PriceBar>,
}

impl PriceSeries {
    /// Builds a series from bars in any order.
    ///
    /// Handling, so no silent wrong number can come out later:
    /// * unsorted dates are sorted;
    /// * a date that appears twice is an [`Error::DuplicateDate`] naming the
    ///   ticker and the date (which of two prices is right cannot be guessed);
    /// * bars whose close is NaN or empty are dropped — the ticker simply
    ///   has no price that day; nothing is filled forward.
    pub fn new(ticker: impl Into<String>, mut bars: Vec<PriceBar>) -> Result<Self> {
        let ticker = ticker.into();
        bars.retain(|b| b.close.is_finite());
        bars.sort_by_key(|b| b.date);
        if let Some(w) = bars.windows(2).find(|w| w[0].date == w[1].date) {
            return Err(Error::DuplicateDate {
                ticker,
                date: w[0].date,
            });
        }
        Ok(Self { ticker, bars })
    }

    /// First date, if any.
    pub fn first_date(&self) -> Option<NaiveDate> {
        self.bars.first().map(|b| b.date)
    }

    /// Last date, if any.
    pub fn last_date(&self) -> Option<NaiveDate> {
        self.bars.last().map(|b| b.date)
    }

    /// What is available for this ticker.
    pub fn availability(&self) -> Availability {
        Availability {
            ticker: self.ticker.clone(),
            first_date: self.first_date(),
            last_date: self.last_date(),
            rows: self.bars.len(),
            gaps: self.business_day_gaps(),
        }
    }

    /// Weekdays between the first and last date with no bar. Exchange
    /// holidays count too (about nine a year on US exchanges), so a clean
    /// daily series shows a small non-zero number; a large one means
    /// missing data.
    pub fn business_day_gaps(&self) -> usize {
        let (Some(first), Some(last)) = (self.first_date(), self.last_date()) else {
            return 0;
        };
        let mut present = self.bars.iter().map(|b| b.date).peekable();
        let mut gaps = 0;
        let mut day = first;
        while day <= last {
            while present.peek().is_some_and(|d| *d < day) {
                present.next();
            }
            let weekday = !matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
            if weekday && present.peek() != Some(&day) {
                gaps += 1;
            }
            match day.succ_opt() {
                Some(d) => day = d,
                None => break,
            }
        }
        gaps
    }
}

/// Data availability for one ticker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Availability {
    /// Ticker symbol.
    pub ticker: String,
    /// First date with a price.
    pub first_date: Option<NaiveDate>,
    /// Last date with a price.
    pub last_date: Option<NaiveDate>,
    /// Number of dates with a price.
    pub rows: usize,
    /// Weekdays between first and last date without a price (holidays included).
    pub gaps: usize,
}
