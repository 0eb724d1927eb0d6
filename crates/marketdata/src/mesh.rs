//! The data mesh's two data products and the client that reads them.
//!
//! - `financial_data_product.parquet`: `isin, ticker, date, close`, sorted by
//!   ISIN then date, in row groups of [`ROW_GROUP_ROWS`], so each row group
//!   covers a narrow ISIN and date range and its statistics let a reader skip it.
//! - `esg_data_product.parquet`: `isin, ticker, name, sector, esg_score,
//!   environmental, social, governance, carbon_intensity, controversy_flag,
//!   as_of`.
//!
//! No real ESG data ships with UltraCore: [`build_products`] generates a
//! deterministic, plausible ESG record per asset (sector-typical carbon
//! intensity, pillar scores around a per-issuer level) and marks the file
//! synthetic in its Parquet key-value metadata (`ultracore.synthetic =
//! true`), which [`DataMesh::esg_is_synthetic`] reports so every consumer
//! can say so. The ISINs of the shipped universe are placeholders too
//! (country code `ZZ`, a valid check digit): users replace both files with
//! their vendor's, in the same schema.
//!
//! [`apply_prices`] merges closing prices (the `external.market.data`
//! topic's) into the financial product in place, keeping its layout,
//! schema and metadata.
//!
//! [`DataMesh::prices`] pushes its filter (ISIN in a set, date on or after a
//! cut-off) down to the row groups: groups whose ISIN range misses the set or
//! whose newest date is before the cut-off are never read. [`ScanStats`] says
//! how many were skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type};
use arrow_array::{ArrayRef, BooleanArray, Date32Array, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use chrono::{Datelike, NaiveDate};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use serde::{Deserialize, Serialize};

use crate::{Error, PriceBar, PriceSeries, Result};

mod update;

pub use update::{apply_prices, ApplySummary};

pub const FINANCIAL_PRODUCT: &str = "financial_data_product.parquet";
pub const ESG_PRODUCT: &str = "esg_data_product.parquet";
/// Rows per row group of the financial product.
pub const ROW_GROUP_ROWS: usize = 2048;
const SYNTHETIC_KEY: &str = "ultracore.synthetic";
const NOTE_KEY: &str = "ultracore.note";
const SYNTHETIC_NOTE: &str = "SYNTHETIC ESG data, generated deterministically for the sample universe; not vendor data. Replace this file with your ESG vendor's in the same schema.";

/// Days from 0001-01-01 (chrono's CE day 1) to 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

/// One issuer's ESG record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EsgRecord {
    pub isin: String,
    pub ticker: String,
    pub name: String,
    pub sector: String,
    /// 0–100, higher is better.
    pub esg_score: f64,
    pub environmental: f64,
    pub social: f64,
    pub governance: f64,
    /// tCO2e per USD m revenue.
    pub carbon_intensity: f64,
    pub controversy_flag: bool,
    pub as_of: NaiveDate,
}

/// Names and sectors of the shipped universe.
const REFERENCE: &[(&str, &str, &str)] = &[
    ("AAPL", "Apple Inc.", "Information Technology"),
    (
        "AMD",
        "Advanced Micro Devices, Inc.",
        "Information Technology",
    ),
    ("MSFT", "Microsoft Corporation", "Information Technology"),
    ("BAC", "Bank of America Corporation", "Financials"),
    ("JPM", "JPMorgan Chase & Co.", "Financials"),
    ("CVX", "Chevron Corporation", "Energy"),
    ("XOM", "Exxon Mobil Corporation", "Energy"),
    ("RRC", "Range Resources Corporation", "Energy"),
    ("JNJ", "Johnson & Johnson", "Health Care"),
    ("LLY", "Eli Lilly and Company", "Health Care"),
    ("MRK", "Merck & Co., Inc.", "Health Care"),
    ("PFE", "Pfizer Inc.", "Health Care"),
    ("UNH", "UnitedHealth Group Incorporated", "Health Care"),
    ("BBY", "Best Buy Co., Inc.", "Consumer Discretionary"),
    ("HD", "The Home Depot, Inc.", "Consumer Discretionary"),
    ("KO", "The Coca-Cola Company", "Consumer Staples"),
    ("PEP", "PepsiCo, Inc.", "Consumer Staples"),
    ("PG", "The Procter & Gamble Company", "Consumer Staples"),
    ("WMT", "Walmart Inc.", "Consumer Staples"),
    ("GE", "General Electric Company", "Industrials"),
    (
        "MTUM",
        "iShares MSCI USA Momentum Factor ETF",
        "Multi-Sector ETF",
    ),
    (
        "QUAL",
        "iShares MSCI USA Quality Factor ETF",
        "Multi-Sector ETF",
    ),
    (
        "SIZE",
        "iShares MSCI USA Size Factor ETF",
        "Multi-Sector ETF",
    ),
    (
        "USMV",
        "iShares MSCI USA Min Vol Factor ETF",
        "Multi-Sector ETF",
    ),
    (
        "VLUE",
        "iShares MSCI USA Value Factor ETF",
        "Multi-Sector ETF",
    ),
];

/// Name and sector of a ticker of the shipped universe (else the ticker and "Unclassified").
pub fn reference_data(ticker: &str) -> (String, String) {
    REFERENCE.iter().find(|(t, _, _)| *t == ticker).map_or_else(
        || (ticker.to_owned(), "Unclassified".to_owned()),
        |(_, n, s)| ((*n).to_owned(), (*s).to_owned()),
    )
}

/// A placeholder ISIN for a ticker: `ZZ` (a user-assigned code, never a
/// real country), the ticker padded to nine characters, and the ISIN check
/// digit, so validators accept it and nobody mistakes it for a real one.
pub fn placeholder_isin(ticker: &str) -> String {
    let mut nsin: String = ticker
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .take(9)
        .collect();
    while nsin.len() < 9 {
        nsin.push('0');
    }
    let body = format!("ZZ{nsin}");
    let digit = isin_check_digit(&body);
    format!("{body}{digit}")
}

/// The ISIN check digit of the first eleven characters (Luhn over the
/// digits, letters expanded to 10–35).
pub fn isin_check_digit(body: &str) -> u32 {
    let digits: Vec<u32> = body
        .chars()
        .flat_map(|c| {
            let v = c.to_digit(36).unwrap_or(0);
            if v >= 10 {
                vec![v / 10, v % 10]
            } else {
                vec![v]
            }
        })
        .collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                let x = d * 2;
                x / 10 + x % 10
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// Whether `isin` is twelve characters with a correct check digit.
pub fn isin_is_valid(isin: &str) -> bool {
    isin.len() == 12
        && isin
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && isin[..2].chars().all(|c| c.is_ascii_uppercase())
        && isin[11..].parse::<u32>().ok() == Some(isin_check_digit(&isin[..11]))
}

/// A deterministic number in `[0, 1)` from a string and a salt (FNV-1a).
fn unit(s: &str, salt: u64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The synthetic ESG record of a ticker: reproducible, sector-plausible.
pub fn synthetic_esg(ticker: &str, as_of: NaiveDate) -> EsgRecord {
    let (name, sector) = reference_data(ticker);
    // Typical carbon intensity ranges by sector (tCO2e / USD m revenue).
    let (carbon_lo, carbon_hi, env_bias) = match sector.as_str() {
        "Energy" => (350.0, 900.0, -18.0),
        "Industrials" => (60.0, 220.0, -5.0),
        "Consumer Staples" => (25.0, 90.0, 0.0),
        "Materials" | "Utilities" => (300.0, 1200.0, -12.0),
        "Multi-Sector ETF" => (70.0, 140.0, 0.0),
        _ => (5.0, 45.0, 5.0),
    };
    let level = 45.0 + 35.0 * unit(ticker, 1);
    let pillar =
        |salt: u64, bias: f64| (level + bias + 20.0 * (unit(ticker, salt) - 0.5)).clamp(5.0, 98.0);
    let environmental = pillar(2, env_bias);
    let social = pillar(3, 0.0);
    let governance = pillar(4, 3.0);
    let round1 = |x: f64| (x * 10.0).round() / 10.0;
    EsgRecord {
        isin: placeholder_isin(ticker),
        ticker: ticker.to_owned(),
        name,
        sector,
        esg_score: round1(0.4 * environmental + 0.3 * social + 0.3 * governance),
        environmental: round1(environmental),
        social: round1(social),
        governance: round1(governance),
        carbon_intensity: round1(carbon_lo + (carbon_hi - carbon_lo) * unit(ticker, 5)),
        controversy_flag: unit(ticker, 6) < 0.12,
        as_of,
    }
}

/// What [`build_products`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildSummary {
    pub financial: PathBuf,
    pub esg: PathBuf,
    pub tickers: usize,
    pub price_rows: usize,
    pub row_groups: usize,
}

fn days(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - UNIX_EPOCH_CE_DAYS
}

fn date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(UNIX_EPOCH_CE_DAYS)?)
}

/// Writes both data products for `series` into `out` (created if needed).
/// Files are written to a temporary name and renamed into place.
pub fn build_products(series: &[PriceSeries], out: &Path) -> Result<BuildSummary> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut by_isin: BTreeMap<String, &PriceSeries> = BTreeMap::new();
    for s in series {
        if by_isin.insert(placeholder_isin(&s.ticker), s).is_some() {
            return Err(Error::parquet(
                out,
                format!("two tickers map to the placeholder ISIN of {}", s.ticker),
            ));
        }
    }
    let (mut isins, mut tickers, mut dates, mut closes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (isin, s) in &by_isin {
        for bar in &s.bars {
            isins.push(isin.clone());
            tickers.push(s.ticker.clone());
            dates.push(days(bar.date));
            closes.push(bar.close);
        }
    }
    let price_rows = isins.len();
    let schema = Arc::new(Schema::new(vec![
        Field::new("isin", DataType::Utf8, false),
        Field::new("ticker", DataType::Utf8, false),
        Field::new("date", DataType::Date32, false),
        Field::new("close", DataType::Float64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(isins)),
        Arc::new(StringArray::from(tickers)),
        Arc::new(Date32Array::from(dates)),
        Arc::new(Float64Array::from(closes)),
    ];
    let financial = out.join(FINANCIAL_PRODUCT);
    // The writers' lock of the product: a running market-data service
    // never has its update overwritten half-way.
    let _lock = update::lock(&financial)?;
    let row_groups = write_parquet(
        &financial,
        schema,
        columns,
        vec![
            KeyValue::new("ultracore.product".into(), "financial".to_owned()),
            KeyValue::new(SYNTHETIC_KEY.into(), "false".to_owned()),
        ],
    )?;

    let as_of = by_isin
        .values()
        .filter_map(|s| s.last_date())
        .max()
        .unwrap_or_default();
    let records: Vec<EsgRecord> = by_isin
        .values()
        .map(|s| synthetic_esg(&s.ticker, as_of))
        .collect();
    let esg = out.join(ESG_PRODUCT);
    write_esg(&esg, &records)?;
    Ok(BuildSummary {
        financial,
        esg,
        tickers: by_isin.len(),
        price_rows,
        row_groups,
    })
}

fn esg_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("isin", DataType::Utf8, false),
        Field::new("ticker", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("sector", DataType::Utf8, false),
        Field::new("esg_score", DataType::Float64, false),
        Field::new("environmental", DataType::Float64, false),
        Field::new("social", DataType::Float64, false),
        Field::new("governance", DataType::Float64, false),
        Field::new("carbon_intensity", DataType::Float64, false),
        Field::new("controversy_flag", DataType::Boolean, false),
        Field::new("as_of", DataType::Date32, false),
    ]))
}

/// Writes ESG records as the ESG data product, marked synthetic.
pub fn write_esg(path: &Path, records: &[EsgRecord]) -> Result<()> {
    let text = |f: fn(&EsgRecord) -> &str| -> ArrayRef {
        Arc::new(StringArray::from(records.iter().map(f).collect::<Vec<_>>()))
    };
    let num = |f: fn(&EsgRecord) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from(
            records.iter().map(f).collect::<Vec<_>>(),
        ))
    };
    let columns: Vec<ArrayRef> = vec![
        text(|r| &r.isin),
        text(|r| &r.ticker),
        text(|r| &r.name),
        text(|r| &r.sector),
        num(|r| r.esg_score),
        num(|r| r.environmental),
        num(|r| r.social),
        num(|r| r.governance),
        num(|r| r.carbon_intensity),
        Arc::new(BooleanArray::from(
            records
                .iter()
                .map(|r| r.controversy_flag)
                .collect::<Vec<_>>(),
        )),
        Arc::new(Date32Array::from(
            records.iter().map(|r| days(r.as_of)).collect::<Vec<_>>(),
        )),
    ];
    write_parquet(
        path,
        esg_schema(),
        columns,
        vec![
            KeyValue::new("ultracore.product".into(), "esg".to_owned()),
            KeyValue::new(SYNTHETIC_KEY.into(), "true".to_owned()),
            KeyValue::new(NOTE_KEY.into(), SYNTHETIC_NOTE.to_owned()),
        ],
    )
    .map(drop)
}

/// Writes one batch (split into row groups) with key-value metadata;
/// returns the number of row groups.
///
/// Durable and atomic: the file is written under a temporary name,
/// fsynced, renamed over `path` and the directory fsynced, so a reader
/// sees the old file or the new one, and after a crash the new one is
/// either complete or absent.
fn write_parquet(
    path: &Path,
    schema: Arc<Schema>,
    columns: Vec<ArrayRef>,
    metadata: Vec<KeyValue>,
) -> Result<usize> {
    write_parquet_with(path, schema, columns, metadata, |_| Ok(()))
}

/// [`write_parquet`], calling `before_rename` with the complete temporary
/// file (every byte written, not yet synced) before it replaces `path`.
fn write_parquet_with(
    path: &Path,
    schema: Arc<Schema>,
    columns: Vec<ArrayRef>,
    metadata: Vec<KeyValue>,
    before_rename: impl FnOnce(&File) -> Result<()>,
) -> Result<usize> {
    let batch =
        RecordBatch::try_new(schema.clone(), columns).map_err(|e| Error::parquet(path, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_size(ROW_GROUP_ROWS)
        .set_key_value_metadata(Some(metadata))
        .build();
    let tmp = path.with_extension("parquet.tmp");
    let written = (|| {
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut writer =
            ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| Error::parquet(path, e))?;
        writer.write(&batch).map_err(|e| Error::parquet(path, e))?;
        let meta = writer.finish().map_err(|e| Error::parquet(path, e))?;
        before_rename(writer.inner())?;
        writer.inner().sync_all().map_err(|e| Error::io(&tmp, e))?;
        Ok(meta.num_row_groups())
    })();
    let row_groups = match written {
        Ok(n) => n,
        Err(e) => {
            // Best effort: the error is what matters, not a stray temp file.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    sync_parent(path)?;
    Ok(row_groups)
}

/// Fsyncs the directory of `path`, so a rename into it survives a crash.
fn sync_parent(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Which prices to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceFilter {
    /// Only these ISINs (`None`: all).
    pub isins: Option<BTreeSet<String>>,
    /// Only dates on or after this one.
    pub from: Option<NaiveDate>,
}

/// How much of the file a read touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ScanStats {
    pub row_groups: usize,
    pub row_groups_read: usize,
    pub rows_read: usize,
    pub rows_returned: usize,
}

/// A client of the data mesh: reads the data products in a directory.
///
/// Answers are cached per filter (at most [`CACHED_QUERIES`], the oldest
/// dropped first) and keyed by the file's size and modification time, so a
/// service asked the same universe again does not re-read the file, and a
/// replaced file is read afresh. Clones share the cache.
#[derive(Debug, Clone)]
pub struct DataMesh {
    dir: PathBuf,
    cache: std::sync::Arc<std::sync::Mutex<QueryCache>>,
}

/// Price queries a [`DataMesh`] keeps answers for.
pub const CACHED_QUERIES: usize = 64;

type PriceAnswer = (Vec<(String, PriceSeries)>, ScanStats);

#[derive(Debug, Default)]
struct QueryCache {
    /// (size, mtime) of the financial product the answers came from.
    version: Option<(u64, std::time::SystemTime)>,
    prices: Vec<(PriceFilter, std::sync::Arc<PriceAnswer>)>,
}

impl DataMesh {
    /// The products in `dir`; both files must exist.
    pub fn open(dir: impl AsRef<Path>) -> Result<DataMesh> {
        let dir = dir.as_ref().to_path_buf();
        for f in [FINANCIAL_PRODUCT, ESG_PRODUCT] {
            let p = dir.join(f);
            if !p.is_file() {
                return Err(Error::io(
                    &p,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "data product missing: run `ultracore mesh build` (or copy your vendor's file here)",
                    ),
                ));
            }
        }
        Ok(DataMesh {
            dir,
            cache: Default::default(),
        })
    }

    /// [`DataMesh::prices`] through the cache: the same answer, shared.
    pub fn prices_cached(&self, filter: &PriceFilter) -> Result<std::sync::Arc<PriceAnswer>> {
        let path = self.dir.join(FINANCIAL_PRODUCT);
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        let version = Some((
            meta.len(),
            meta.modified().map_err(|e| Error::io(&path, e))?,
        ));
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.version != version {
                cache.version = version;
                cache.prices.clear();
            }
            if let Some((_, hit)) = cache.prices.iter().find(|(f, _)| f == filter) {
                return Ok(hit.clone());
            }
        }
        let answer = std::sync::Arc::new(self.prices(filter)?);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.version == version {
            if cache.prices.len() >= CACHED_QUERIES {
                cache.prices.remove(0);
            }
            cache.prices.push((filter.clone(), answer.clone()));
        }
        Ok(answer)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Price series matching `filter`, one per ISIN (ticker as in the file),
    /// reading only the row groups whose statistics can match.
    pub fn prices(&self, filter: &PriceFilter) -> Result<(Vec<(String, PriceSeries)>, ScanStats)> {
        let path = self.dir.join(FINANCIAL_PRODUCT);
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(&path, e))?;
        let meta = builder.metadata().clone();
        let col = |name: &str| {
            builder
                .parquet_schema()
                .columns()
                .iter()
                .position(|c| c.name() == name)
                .ok_or_else(|| Error::MissingColumn {
                    path: path.clone(),
                    column: name.to_owned(),
                    found: builder
                        .parquet_schema()
                        .columns()
                        .iter()
                        .map(|c| c.name().to_owned())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        };
        let (isin_col, date_col) = (col("isin")?, col("date")?);
        let from_days = filter.from.map(days);
        let mut keep = Vec::new();
        for (i, rg) in meta.row_groups().iter().enumerate() {
            let isin_ok = match (&filter.isins, rg.column(isin_col).statistics()) {
                (Some(set), Some(Statistics::ByteArray(s))) => match (s.min_opt(), s.max_opt()) {
                    (Some(lo), Some(hi)) => {
                        let (lo, hi) = (lo.data(), hi.data());
                        set.range::<str, _>((
                            std::ops::Bound::Included(std::str::from_utf8(lo).unwrap_or("")),
                            std::ops::Bound::Unbounded,
                        ))
                        .next()
                        .is_some_and(|first| first.as_bytes() <= hi)
                    }
                    _ => true,
                },
                _ => true,
            };
            let date_ok = match (from_days, rg.column(date_col).statistics()) {
                (Some(from), Some(Statistics::Int32(s))) => {
                    s.max_opt().is_none_or(|&max| max >= from)
                }
                _ => true,
            };
            if isin_ok && date_ok {
                keep.push(i);
            }
        }
        let mut stats = ScanStats {
            row_groups: meta.num_row_groups(),
            row_groups_read: keep.len(),
            ..ScanStats::default()
        };
        let reader = builder
            .with_row_groups(keep)
            .build()
            .map_err(|e| Error::parquet(&path, e))?;
        let mut bars: BTreeMap<String, (String, Vec<PriceBar>)> = BTreeMap::new();
        for batch in reader {
            let batch = batch.map_err(|e| Error::parquet(&path, e))?;
            stats.rows_read += batch.num_rows();
            let column = |name: &str| {
                batch
                    .column_by_name(name)
                    .ok_or_else(|| Error::MissingColumn {
                        path: path.clone(),
                        column: name.to_owned(),
                        found: "isin, ticker, date, close expected".into(),
                    })
            };
            let isin = column("isin")?
                .as_string_opt::<i32>()
                .ok_or_else(|| Error::parquet(&path, "column isin is not text"))?;
            let ticker = column("ticker")?
                .as_string_opt::<i32>()
                .ok_or_else(|| Error::parquet(&path, "column ticker is not text"))?;
            let date_arr = column("date")?
                .as_primitive_opt::<Date32Type>()
                .ok_or_else(|| Error::parquet(&path, "column date is not a Date32"))?;
            let close = column("close")?
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(|| Error::parquet(&path, "column close is not a Float64"))?;
            for r in 0..batch.num_rows() {
                let id = isin.value(r);
                if filter.isins.as_ref().is_some_and(|s| !s.contains(id)) {
                    continue;
                }
                let d = date_arr.value(r);
                if from_days.is_some_and(|f| d < f) {
                    continue;
                }
                let Some(day) = date(d) else {
                    return Err(Error::parquet(&path, format!("row {r}: date out of range")));
                };
                stats.rows_returned += 1;
                bars.entry(id.to_owned())
                    .or_insert_with(|| (ticker.value(r).to_owned(), Vec::new()))
                    .1
                    .push(PriceBar::close_only(day, close.value(r)));
            }
        }
        let series = bars
            .into_iter()
            .map(|(isin, (ticker, bars))| Ok((isin, PriceSeries::new(ticker, bars)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok((series, stats))
    }

    /// ESG records, all or those of `isins`.
    pub fn esg(&self, isins: Option<&BTreeSet<String>>) -> Result<Vec<EsgRecord>> {
        let path = self.dir.join(ESG_PRODUCT);
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| Error::parquet(&path, e))?;
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| Error::parquet(&path, e))?;
            let missing = |name: &str| Error::MissingColumn {
                path: path.clone(),
                column: name.to_owned(),
                found: esg_schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect::<Vec<_>>()
                    .join(", ")
                    + " expected",
            };
            let text = |name: &str| {
                batch
                    .column_by_name(name)
                    .and_then(|c| c.as_string_opt::<i32>())
                    .ok_or_else(|| missing(name))
            };
            let num = |name: &str| {
                batch
                    .column_by_name(name)
                    .and_then(|c| c.as_primitive_opt::<Float64Type>())
                    .ok_or_else(|| missing(name))
            };
            let (isin, ticker, name, sector) = (
                text("isin")?,
                text("ticker")?,
                text("name")?,
                text("sector")?,
            );
            let (esg, env, soc, gov, carbon) = (
                num("esg_score")?,
                num("environmental")?,
                num("social")?,
                num("governance")?,
                num("carbon_intensity")?,
            );
            let flag = batch
                .column_by_name("controversy_flag")
                .and_then(|c| c.as_boolean_opt())
                .ok_or_else(|| missing("controversy_flag"))?;
            let as_of = batch
                .column_by_name("as_of")
                .and_then(|c| c.as_primitive_opt::<Date32Type>())
                .ok_or_else(|| missing("as_of"))?;
            for r in 0..batch.num_rows() {
                if isins.is_some_and(|s| !s.contains(isin.value(r))) {
                    continue;
                }
                out.push(EsgRecord {
                    isin: isin.value(r).to_owned(),
                    ticker: ticker.value(r).to_owned(),
                    name: name.value(r).to_owned(),
                    sector: sector.value(r).to_owned(),
                    esg_score: esg.value(r),
                    environmental: env.value(r),
                    social: soc.value(r),
                    governance: gov.value(r),
                    carbon_intensity: carbon.value(r),
                    controversy_flag: flag.value(r),
                    as_of: date(as_of.value(r)).unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    /// Whether the ESG product says it is synthetic (`ultracore.synthetic`
    /// metadata); reports built on it must say so.
    pub fn esg_is_synthetic(&self) -> Result<bool> {
        let path = self.dir.join(ESG_PRODUCT);
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(&path, e))?;
        Ok(builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .is_some_and(|kv| {
                kv.iter()
                    .any(|k| k.key == SYNTHETIC_KEY && k.value.as_deref() == Some("true"))
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isin_check_digits_match_published_isins() {
        // Apple and Microsoft, from their issuers' filings.
        assert!(isin_is_valid("US0378331005"));
        assert!(isin_is_valid("US5949181045"));
        assert!(!isin_is_valid("US0378331006"));
        let p = placeholder_isin("AAPL");
        assert_eq!(&p[..11], "ZZAAPL00000");
        assert!(isin_is_valid(&p), "{p}");
    }

    #[test]
    fn synthetic_esg_is_deterministic_and_in_range() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        let a = synthetic_esg("XOM", d);
        assert_eq!(a, synthetic_esg("XOM", d));
        assert_eq!(a.sector, "Energy");
        assert!(a.carbon_intensity >= 350.0, "{a:?}");
        for r in REFERENCE.iter().map(|(t, _, _)| synthetic_esg(t, d)) {
            for v in [r.esg_score, r.environmental, r.social, r.governance] {
                assert!((0.0..=100.0).contains(&v), "{r:?}");
            }
        }
    }
}
