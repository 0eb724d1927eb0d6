//! `external.market.data` into the data mesh: [`publish_prices`] puts
//! closing prices on the topic (what `ultracore etf import --publish` and
//! the market-data endpoint call), and the market-data service (consumer
//! group `market-data`) merges them into the financial data product.
//!
//! Both sides check [`MarketPrices::validate`]: producers refuse what
//! fails it, and the service dead-letters a record that fails it (or is
//! not a `market_prices_published` at all) to `external.market.data.dlq`
//! with the reason, and goes on.
//!
//! The service merges every record of a batch into the product in one
//! rewrite ([`apply_prices`], on the blocking pool) and returns only once
//! the new file is durable, so the runtime commits the batch's offsets
//! after its effect. Applying prices is idempotent (a date gets the close
//! sent, whatever it had), so a batch handled again after a crash leaves
//! the same product. Events are keyed by ticker, so one instrument's
//! corrections stay in order and the later close wins.
//!
//! Event ids are derived from the ticker, the source, the dates and the
//! closes ([`prices_event_id`]): the same prices published twice carry one
//! id, which consumers that deduplicate by `event_id` (audit, analytics)
//! recognise.

use std::path::PathBuf;

use chrono::{NaiveDate, Utc};
use serde::Serialize;
use ultracore_events::external::{
    Close, MarketDataEvent, MarketPrices, MARKET_AGGREGATE_TYPE, MARKET_DATA_TOPIC, MAX_BARS,
};
use ultracore_log::{
    derive_event_id, Envelope, EnvelopeBuilder, EventLog, NewRecord, Record, EVENT_ID_NAMESPACE,
};
use ultracore_marketdata::mesh::{apply_prices, ApplySummary};
use ultracore_runtime::{ConsumerSpec, Handler, HandlerError, Registration, Subscription};
use uuid::Uuid;

use crate::{Error, Result};

/// The service's consumer group (and name).
pub const MARKET_DATA_GROUP: &str = "market-data";
/// Most events [`publish_prices`] appends at once...
const PUBLISH_RECORDS: usize = 256;
/// ...and most bytes of their values (a full event is about 450 KB).
const PUBLISH_BYTES: usize = 4 << 20;
/// Clock skew allowed between a producer and the service: a price dated
/// the producer's today is not refused because the service's clock is a
/// little behind at midnight UTC.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// The consumer spec: group `market-data` on `external.market.data`.
pub fn spec() -> ConsumerSpec {
    ConsumerSpec::new(MARKET_DATA_GROUP, Subscription::topics([MARKET_DATA_TOPIC]))
}

/// The service as the supervisor runs it: prices go into the financial
/// product in `mesh_dir` (which must hold one; `ultracore mesh build`).
pub fn registration<L: EventLog>(log: L, mesh_dir: impl Into<PathBuf>) -> Registration {
    let dir = mesh_dir.into();
    Registration::consumer(MARKET_DATA_GROUP, log, spec(), move |_ctx| {
        Ok(MarketDataService::new(dir.clone()))
    })
}

/// What one service instance applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MarketDataStats {
    /// `market_prices_published` events applied.
    pub events: u64,
    /// Rewrites of the product.
    pub rewrites: u64,
    pub rows_added: u64,
    pub rows_changed: u64,
}

/// The handler: merges each batch's prices into the financial product.
#[derive(Debug)]
pub struct MarketDataService {
    dir: PathBuf,
    pub stats: MarketDataStats,
}

impl MarketDataService {
    /// Applies prices to the financial product in `mesh_dir`.
    pub fn new(mesh_dir: impl Into<PathBuf>) -> Self {
        MarketDataService {
            dir: mesh_dir.into(),
            stats: MarketDataStats::default(),
        }
    }
}

/// The prices of one record, checked as the edge checks them.
fn decode(record: &Record, today: NaiveDate) -> Result<MarketPrices, HandlerError> {
    let env = Envelope::<MarketDataEvent>::from_record(record)
        .map_err(|e| HandlerError::reject(e.to_string()))?;
    let MarketDataEvent::PricesPublished(prices) = env.payload;
    prices.validate(today).map_err(|e| {
        HandlerError::reject(format!(
            "prices of {:?} (event {}) refused: {e}",
            prices.ticker, env.event_id
        ))
    })?;
    // The key keeps one instrument's prices in one partition, in order; a
    // record keyed otherwise could overtake a correction.
    if env.aggregate_id != prices.ticker {
        return Err(HandlerError::reject(format!(
            "event {} has aggregate id {:?} and prices of {:?}: key price events by their ticker",
            env.event_id, env.aggregate_id, prices.ticker
        )));
    }
    Ok(prices)
}

/// Which failures of [`apply_prices`] are the record's and which the platform's.
fn apply_error(e: ultracore_marketdata::Error) -> HandlerError {
    use ultracore_marketdata::Error as E;
    match e {
        // The prices cannot go into this product as it stands: the record
        // goes to the dead-letter topic with the reason (when the batch
        // has several records, the runtime tries each alone to find it).
        E::TickerConflict { .. } | E::InvalidArgument { .. } => HandlerError::reject(e.to_string()),
        // A missing, unreadable or unwritable product: not the record's
        // fault; retried, then the service stops and says why.
        _ => HandlerError::infra(e.to_string()),
    }
}

impl Handler for MarketDataService {
    /// Every record is decoded and checked before anything is written, so
    /// a record at fault fails the batch with no effect; the rest of the
    /// batch is one [`apply_prices`].
    async fn handle(&mut self, records: &[Record]) -> Result<(), HandlerError> {
        let today = (Utc::now() + CLOCK_SKEW).date_naive();
        let mut updates = Vec::with_capacity(records.len());
        for record in records {
            let prices = decode(record, today)?;
            let closes = prices.prices.iter().map(|c| (c.date, c.close)).collect();
            updates.push((prices.ticker, closes));
        }
        let dir = self.dir.clone();
        // Parquet decoding, encoding and two fsyncs: off the async workers.
        let summary: ApplySummary =
            tokio::task::spawn_blocking(move || apply_prices(&dir, &updates))
                .await
                .map_err(|e| HandlerError::retry(format!("applying the prices failed: {e}")))?
                .map_err(apply_error)?;
        self.stats.events += records.len() as u64;
        self.stats.rewrites += u64::from(summary.rewritten);
        self.stats.rows_added += summary.rows_added as u64;
        self.stats.rows_changed += summary.rows_changed as u64;
        if summary.rewritten {
            tracing::info!(
                events = records.len(),
                tickers = summary.tickers.len(),
                new_tickers = summary.new_tickers.len(),
                rows_added = summary.rows_added,
                rows_changed = summary.rows_changed,
                "market prices applied to the financial product"
            );
        } else {
            tracing::debug!(
                events = records.len(),
                rows_unchanged = summary.rows_unchanged,
                "market prices already in the financial product"
            );
        }
        Ok(())
    }
}

/// One series' closes as `market_prices_published` payloads of at most
/// [`MAX_BARS`] prices each, in the order given (ascending dates, for
/// [`MarketPrices::validate`]).
pub fn market_prices(
    ticker: &str,
    source: &str,
    closes: impl IntoIterator<Item = (NaiveDate, f64)>,
) -> Vec<MarketPrices> {
    let closes: Vec<Close> = closes
        .into_iter()
        .map(|(date, close)| Close { date, close })
        .collect();
    closes
        .chunks(MAX_BARS)
        .map(|chunk| MarketPrices {
            ticker: ticker.to_owned(),
            source: source.to_owned(),
            prices: chunk.to_vec(),
        })
        .collect()
}

/// The event id of a `market_prices_published`: a UUIDv5 of the ticker,
/// the source, the first and last date, the number of prices and a digest
/// of every (date, close). The same prices from the same source are the
/// same event; a corrected close is another.
pub fn prices_event_id(prices: &MarketPrices) -> Uuid {
    let mut closes = Vec::with_capacity(prices.prices.len() * 18);
    for c in &prices.prices {
        closes.extend_from_slice(c.date.to_string().as_bytes());
        closes.extend_from_slice(&c.close.to_bits().to_be_bytes());
    }
    let digest = Uuid::new_v5(&EVENT_ID_NAMESPACE, &closes);
    let day = |c: Option<&Close>| c.map_or_else(String::new, |c| c.date.to_string());
    // Tickers and sources have no NUL (the edge checks them), so the
    // fields cannot run into each other.
    let tag = format!(
        "market-prices\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
        prices.ticker,
        prices.source,
        day(prices.prices.first()),
        day(prices.prices.last()),
        digest.simple()
    );
    derive_event_id(
        EVENT_ID_NAMESPACE,
        tag.as_bytes(),
        prices.prices.len() as u64,
    )
}

/// One event [`publish_prices`] appended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishedPrices {
    pub event_id: Uuid,
    pub ticker: String,
    pub source: String,
    /// Prices in the event.
    pub prices: usize,
    pub first_date: NaiveDate,
    pub last_date: NaiveDate,
}

/// Publishes each [`MarketPrices`] as one `market_prices_published` on
/// `external.market.data`, on behalf of `local` (the command line). See
/// [`publish_prices_as`].
pub async fn publish_prices<L: EventLog>(
    log: &L,
    prices: Vec<MarketPrices>,
) -> Result<Vec<PublishedPrices>> {
    publish_prices_as(log, prices, "local").await
}

/// Checks every [`MarketPrices`] (today is today in UTC) and refuses them
/// all, appending nothing, when one fails ([`Error::InvalidPrices`]
/// names it); then creates the topic from the catalogue if needed and
/// appends one event per item, keyed by ticker, in batches. `principal`
/// (an API key id, `jwt:<subject>`, or `local`) goes in the envelopes.
///
/// When an append fails, the batches before it are on the log: publishing
/// everything again is safe, since every event keeps its id
/// ([`prices_event_id`]) and applying prices twice changes nothing.
pub async fn publish_prices_as<L: EventLog>(
    log: &L,
    prices: Vec<MarketPrices>,
    principal: &str,
) -> Result<Vec<PublishedPrices>> {
    let today = Utc::now().date_naive();
    for (index, p) in prices.iter().enumerate() {
        p.validate(today).map_err(|invalid| Error::InvalidPrices {
            index,
            ticker: p.ticker.clone(),
            invalid,
        })?;
    }
    if prices.is_empty() {
        return Ok(Vec::new());
    }
    ultracore_runtime::catalogue::ensure(log, &[MARKET_DATA_TOPIC]).await?;
    let mut published = Vec::with_capacity(prices.len());
    let mut batch: Vec<NewRecord> = Vec::new();
    let mut bytes = 0;
    for p in prices {
        let event_id = prices_event_id(&p);
        published.push(PublishedPrices {
            event_id,
            ticker: p.ticker.clone(),
            source: p.source.clone(),
            prices: p.prices.len(),
            first_date: p.prices[0].date,
            last_date: p.prices[p.prices.len() - 1].date,
        });
        let mut env = EnvelopeBuilder::new(MARKET_AGGREGATE_TYPE, p.ticker.clone())
            .principal(principal)
            .build(MarketDataEvent::PricesPublished(p));
        env.event_id = event_id;
        let record = env.to_record();
        if !batch.is_empty()
            && (batch.len() >= PUBLISH_RECORDS || bytes + record.value.len() > PUBLISH_BYTES)
        {
            log.append(MARKET_DATA_TOPIC, std::mem::take(&mut batch))
                .await?;
            bytes = 0;
        }
        bytes += record.value.len();
        batch.push(record);
    }
    log.append(MARKET_DATA_TOPIC, batch).await?;
    Ok(published)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices(closes: &[(&str, f64)]) -> MarketPrices {
        MarketPrices {
            ticker: "QUAL".into(),
            source: "QUAL.csv".into(),
            prices: closes
                .iter()
                .map(|(d, c)| Close {
                    date: d.parse().unwrap(),
                    close: *c,
                })
                .collect(),
        }
    }

    #[test]
    fn event_ids_follow_the_prices() {
        let a = prices(&[("2026-01-05", 180.0), ("2026-01-06", 181.0)]);
        assert_eq!(prices_event_id(&a), prices_event_id(&a.clone()));
        let mut corrected = a.clone();
        corrected.prices[1].close = 181.5;
        let mut other_source = a.clone();
        other_source.source = "feed".into();
        let mut other_ticker = a.clone();
        other_ticker.ticker = "USMV".into();
        let shorter = prices(&[("2026-01-05", 180.0)]);
        let ids = [
            prices_event_id(&a),
            prices_event_id(&corrected),
            prices_event_id(&other_source),
            prices_event_id(&other_ticker),
            prices_event_id(&shorter),
        ];
        for (i, x) in ids.iter().enumerate() {
            for y in &ids[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }

    #[test]
    fn series_are_cut_into_events_of_at_most_max_bars() {
        let start: NaiveDate = "1900-01-01".parse().unwrap();
        let closes = (0..MAX_BARS as i64 * 2 + 1).map(|i| (start + chrono::Duration::days(i), 1.0));
        let events = market_prices("QUAL", "QUAL.csv", closes);
        let sizes: Vec<usize> = events.iter().map(|e| e.prices.len()).collect();
        assert_eq!(sizes, [MAX_BARS, MAX_BARS, 1]);
        assert!(events
            .iter()
            .all(|e| e.validate(Utc::now().date_naive()).is_ok()));
        assert!(market_prices("QUAL", "QUAL.csv", []).is_empty());
    }
}
