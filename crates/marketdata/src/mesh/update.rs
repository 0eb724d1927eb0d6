//! Closing prices merged into the financial data product: how
//! `market_prices_published` events reach the data mesh.
//!
//! [`apply_prices`] reads the whole product, merges the prices and writes
//! it again the way [`build_products`](super::build_products) does:
//! sorted by ISIN then date, in row groups of [`ROW_GROUP_ROWS`], under a
//! temporary name that is fsynced and renamed into place. The file's
//! schema (extra columns included) and key-value metadata are kept; the
//! ESG product is never touched.
//!
//! Writers take an advisory lock on `financial_data_product.parquet.lock`
//! next to the product for the whole read-merge-write, so two of them (two
//! service instances sharing the directory, say) never lose each other's
//! rows. Readers take no lock: the rename gives them the old file or the
//! new one, whole.
//!
//! [`ROW_GROUP_ROWS`]: super::ROW_GROUP_ROWS

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type};
use arrow_array::{
    new_null_array, Array, ArrayRef, Date32Array, Float64Array, PrimitiveArray, RecordBatch,
    StringArray,
};
use arrow_schema::{DataType, Schema};
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ARROW_SCHEMA_META_KEY;
use parquet::file::metadata::KeyValue;
use serde::Serialize;

use super::{days, placeholder_isin, write_parquet_with, FINANCIAL_PRODUCT};
use crate::{Error, Result};

/// The columns the product must have, with their types (what
/// [`DataMesh::prices`](super::DataMesh::prices) reads).
const KEY_COLUMNS: [(&str, DataType); 4] = [
    ("isin", DataType::Utf8),
    ("ticker", DataType::Utf8),
    ("date", DataType::Date32),
    ("close", DataType::Float64),
];

/// What [`apply_prices`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplySummary {
    /// The financial product.
    pub path: PathBuf,
    /// Tickers with a row added or changed, sorted.
    pub tickers: Vec<String>,
    /// Of those, the tickers the product did not have (added under their
    /// placeholder ISIN), sorted.
    pub new_tickers: Vec<String>,
    /// Dates a ticker did not have.
    pub rows_added: usize,
    /// Dates whose close was replaced by a different one.
    pub rows_changed: usize,
    /// Dates that already had the close sent.
    pub rows_unchanged: usize,
    /// Whether the file was replaced (not when nothing changed).
    pub rewritten: bool,
}

/// Merges closing prices into the financial product in `dir`.
///
/// `updates` holds `(ticker, [(date, close)])`, applied in order (a date
/// sent twice keeps the later close). A ticker the product has (matched by
/// its `ticker` column) keeps its ISIN: a date it has gets the new close,
/// a date it lacks is added. A ticker the product lacks is added under its
/// [`placeholder_isin`]. Idempotent: the same update applied again changes
/// nothing and leaves the file as it is.
///
/// When something changed, returns only once the new file is durable
/// (fsynced and renamed, directory fsynced). The new file never has the
/// old one's size and modification time both, so the answers a
/// [`DataMesh`](super::DataMesh) cached for the old file are dropped.
///
/// Errors: [`Error::InvalidArgument`] for an empty ticker or a close that
/// is not a positive number (nothing is written);
/// [`Error::TickerConflict`] when a ticker is in the product under several
/// ISINs, or a new ticker's placeholder ISIN belongs to another ticker;
/// [`Error::MissingColumn`] or [`Error::Parquet`] when the product lacks
/// `isin, ticker, date, close` with the types the mesh reads, or a column
/// that new rows cannot leave empty; [`Error::Io`] when the product is
/// missing or cannot be written.
pub fn apply_prices(
    dir: &Path,
    updates: &[(String, Vec<(NaiveDate, f64)>)],
) -> Result<ApplySummary> {
    let path = dir.join(FINANCIAL_PRODUCT);
    check_updates(updates)?;
    let mut summary = ApplySummary {
        path: path.clone(),
        ..ApplySummary::default()
    };
    if updates.iter().all(|(_, prices)| prices.is_empty()) {
        return Ok(summary);
    }
    // Checked first, so a directory without a product gets no lock file.
    std::fs::metadata(&path).map_err(|e| missing_product(&path, e))?;
    let _lock = lock(&path)?;
    let before = std::fs::metadata(&path).map_err(|e| missing_product(&path, e))?;
    let product = Product::read(&path)?;
    let cols = product.key_columns(&path)?;

    // Which ISIN each updated ticker's prices go to.
    let wanted: BTreeSet<&str> = updates.iter().map(|(t, _)| t.as_str()).collect();
    let mut isins_of: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    let mut ticker_of_isin: HashMap<&str, &str> = HashMap::new();
    for c in &cols {
        for r in 0..c.rows() {
            let (Some(isin), Some(ticker)) = (c.isin(r), c.ticker(r)) else {
                continue;
            };
            ticker_of_isin.entry(isin).or_insert(ticker);
            if wanted.contains(ticker) {
                isins_of.entry(ticker).or_default().insert(isin);
            }
        }
    }
    let mut target: BTreeMap<&str, String> = BTreeMap::new();
    let mut placeholders: HashMap<String, &str> = HashMap::new();
    for &ticker in &wanted {
        let conflict = |reason: String| Error::TickerConflict {
            path: path.clone(),
            ticker: ticker.to_owned(),
            reason,
        };
        match isins_of.get(ticker) {
            Some(isins) if isins.len() == 1 => {
                target.insert(
                    ticker,
                    isins.iter().next().copied().unwrap_or_default().to_owned(),
                );
            }
            Some(isins) => {
                return Err(conflict(format!(
                    "the product has it under {} ISINs ({}), so which one the prices belong to is unknown; keep one ISIN per ticker",
                    isins.len(),
                    isins.iter().copied().collect::<Vec<_>>().join(", ")
                )));
            }
            None => {
                let isin = placeholder_isin(ticker);
                if let Some(other) = ticker_of_isin.get(isin.as_str()) {
                    return Err(conflict(format!(
                        "it is new, and its placeholder ISIN {isin} is the ISIN of {other} in the product"
                    )));
                }
                if let Some(other) = placeholders.insert(isin.clone(), ticker) {
                    return Err(conflict(format!(
                        "it is new, and so is {other}, and both have the placeholder ISIN {isin}"
                    )));
                }
                summary.new_tickers.push(ticker.to_owned());
                target.insert(ticker, isin);
            }
        }
    }

    // The rows the updates may replace: those of the target ISINs.
    let targets: BTreeSet<&str> = target.values().map(String::as_str).collect();
    let mut existing: HashMap<(&str, i32), (usize, usize)> = HashMap::new();
    for (b, c) in cols.iter().enumerate() {
        for r in 0..c.rows() {
            if let (Some(isin), Some(date)) = (c.isin(r), c.date(r)) {
                if targets.contains(isin) {
                    existing.entry((isin, date)).or_insert((b, r));
                }
            }
        }
    }

    // Merge, later prices of one (ticker, date) winning.
    let mut replaced: HashMap<(usize, usize), (&str, f64)> = HashMap::new();
    let mut added: BTreeMap<(&str, i32), (&str, f64)> = BTreeMap::new();
    for (ticker, prices) in updates {
        let isin = target[ticker.as_str()].as_str();
        for &(date, close) in prices {
            let key = (isin, days(date));
            match existing.get(&key) {
                Some(&at) => {
                    replaced.insert(at, (ticker.as_str(), close));
                }
                None => {
                    added.insert(key, (ticker.as_str(), close));
                }
            }
        }
    }
    let matched = replaced.len();
    replaced.retain(|&(b, r), (_, close)| cols[b].close(r) != Some(*close));
    summary.rows_added = added.len();
    summary.rows_changed = replaced.len();
    summary.rows_unchanged = matched - replaced.len();
    let touched: BTreeSet<&str> = replaced
        .values()
        .map(|(t, _)| *t)
        .chain(added.values().map(|(t, _)| *t))
        .collect();
    summary.tickers = touched.iter().map(|t| (*t).to_owned()).collect();
    summary.new_tickers.retain(|t| touched.contains(t.as_str()));
    if added.is_empty() && replaced.is_empty() {
        return Ok(summary);
    }
    let added: Vec<NewRow> = added
        .into_iter()
        .map(|((isin, date), (ticker, close))| NewRow {
            isin,
            ticker,
            date,
            close,
        })
        .collect();

    // Every row in the order of the product: ISIN, then date.
    enum Source {
        Old(usize, usize),
        New(usize),
    }
    let mut order: Vec<(&str, i32, Source)> =
        Vec::with_capacity(cols.iter().map(Columns::rows).sum::<usize>() + added.len());
    for (b, c) in cols.iter().enumerate() {
        for r in 0..c.rows() {
            let key = (c.isin(r).unwrap_or(""), c.date(r).unwrap_or(i32::MIN));
            order.push((key.0, key.1, Source::Old(b, r)));
        }
    }
    for (i, row) in added.iter().enumerate() {
        order.push((row.isin, row.date, Source::New(i)));
    }
    // Stable, so rows the product held in some other order among equal
    // keys keep it.
    order.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));

    let new_rows = added.len();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(product.schema.fields().len());
    for (f, field) in product.schema.fields().iter().enumerate() {
        let column: ArrayRef = match field.name().as_str() {
            "close" => Arc::new(Float64Array::from_iter(order.iter().map(|(_, _, from)| {
                match *from {
                    Source::Old(b, r) => replaced
                        .get(&(b, r))
                        .map(|(_, close)| *close)
                        .or_else(|| cols[b].close(r)),
                    Source::New(i) => Some(added[i].close),
                }
            }))),
            name => {
                let fresh: ArrayRef = match name {
                    "isin" => Arc::new(StringArray::from_iter_values(
                        added.iter().map(|row| row.isin),
                    )),
                    "ticker" => Arc::new(StringArray::from_iter_values(
                        added.iter().map(|row| row.ticker),
                    )),
                    "date" => Arc::new(Date32Array::from_iter_values(
                        added.iter().map(|row| row.date),
                    )),
                    _ if new_rows > 0 && !field.is_nullable() => {
                        return Err(Error::parquet(
                            &path,
                            format!(
                                "column {name:?} is not nullable, and new rows would have no value for it; make it nullable or add the rows with your vendor's tools"
                            ),
                        ));
                    }
                    _ => new_null_array(field.data_type(), new_rows),
                };
                let mut sources: Vec<&dyn Array> = product
                    .batches
                    .iter()
                    .map(|b| b.column(f).as_ref())
                    .collect();
                sources.push(fresh.as_ref());
                let fresh_at = sources.len() - 1;
                let indices: Vec<(usize, usize)> = order
                    .iter()
                    .map(|(_, _, from)| match *from {
                        Source::Old(b, r) => (b, r),
                        Source::New(i) => (fresh_at, i),
                    })
                    .collect();
                arrow_select::interleave::interleave(&sources, &indices)
                    .map_err(|e| Error::parquet(&path, e))?
            }
        };
        columns.push(column);
    }
    drop(order);
    let (old_len, old_mtime) = (
        before.len(),
        before.modified().map_err(|e| Error::io(&path, e))?,
    );
    write_parquet_with(
        &path,
        product.schema.clone(),
        columns,
        product.metadata.clone(),
        |tmp| distinct_version(tmp, old_len, old_mtime).map_err(|e| Error::io(&path, e)),
    )?;
    summary.rewritten = true;
    tracing::debug!(
        path = %path.display(),
        tickers = summary.tickers.len(),
        added = summary.rows_added,
        changed = summary.rows_changed,
        "financial product updated"
    );
    Ok(summary)
}

/// Refuses what the product must never hold.
fn check_updates(updates: &[(String, Vec<(NaiveDate, f64)>)]) -> Result<()> {
    for (ticker, prices) in updates {
        if ticker.is_empty() || ticker.len() > 32 || ticker.chars().any(char::is_control) {
            return Err(Error::InvalidArgument {
                name: "ticker",
                reason: format!("{ticker:?} is not a ticker: 1 to 32 characters"),
            });
        }
        if let Some((date, close)) = prices
            .iter()
            .find(|(_, close)| !(close.is_finite() && *close > 0.0))
        {
            return Err(Error::InvalidArgument {
                name: "prices",
                reason: format!("{ticker} {date}: {close} is not a price (a positive number)"),
            });
        }
    }
    Ok(())
}

/// Holds the product's writer lock until dropped (closing the file
/// releases it, also when the process dies). [`build_products`](super::build_products)
/// takes it too, so a build never races the market-data service.
pub(super) fn lock(product: &Path) -> Result<File> {
    let path = product.with_extension("parquet.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| missing_product(&path, e))?;
    file.lock().map_err(|e| Error::io(&path, e))?;
    Ok(file)
}

fn missing_product(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no financial data product here: run `ultracore mesh build` (or copy your vendor's file here) first",
            ),
        )
    } else {
        Error::io(path, e)
    }
}

/// Gives the new file a modification time after the old one's when both
/// have the same size: a coarse clock (or two rewrites within one tick)
/// would otherwise leave [`DataMesh`](super::DataMesh) caches keyed on
/// (size, mtime) serving the old answers.
fn distinct_version(tmp: &File, old_len: u64, old_mtime: SystemTime) -> std::io::Result<()> {
    let meta = tmp.metadata()?;
    if meta.len() == old_len && meta.modified()? <= old_mtime {
        tmp.set_modified(old_mtime + Duration::from_millis(1))?;
    }
    Ok(())
}

/// The product as read: its schema (fields only; the file-level metadata
/// is kept apart), its key-value metadata and its rows.
struct Product {
    schema: Arc<Schema>,
    metadata: Vec<KeyValue>,
    batches: Vec<RecordBatch>,
}

impl Product {
    fn read(path: &Path) -> Result<Product> {
        let file = File::open(path).map_err(|e| missing_product(path, e))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(path, e))?;
        // The writer encodes the Arrow schema again; the rest is the file's own.
        let metadata: Vec<KeyValue> = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .map(|kv| {
                kv.iter()
                    .filter(|k| k.key != ARROW_SCHEMA_META_KEY)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        // The reader folds the key-value metadata into the schema's; it is
        // written back as key-value metadata only, as it was.
        let schema = Arc::new(Schema::new(builder.schema().fields().clone()));
        for (name, data_type) in &KEY_COLUMNS {
            let field = schema
                .field_with_name(name)
                .map_err(|_| Error::MissingColumn {
                    path: path.to_path_buf(),
                    column: (*name).to_owned(),
                    found: schema
                        .fields()
                        .iter()
                        .map(|f| f.name().clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            if field.data_type() != data_type {
                return Err(Error::parquet(
                    path,
                    format!(
                        "column {name} is {}, and the data mesh reads it as {data_type}",
                        field.data_type()
                    ),
                ));
            }
        }
        let reader = builder.build().map_err(|e| Error::parquet(path, e))?;
        let batches = reader
            .map(|b| b.map_err(|e| Error::parquet(path, e)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Product {
            schema,
            metadata,
            batches,
        })
    }

    /// The four columns the merge reads, per batch.
    fn key_columns(&self, path: &Path) -> Result<Vec<Columns<'_>>> {
        self.batches
            .iter()
            .map(|b| {
                let col = |name: &str| {
                    b.column_by_name(name)
                        .ok_or_else(|| Error::parquet(path, format!("column {name} vanished")))
                };
                let text = |name: &str| {
                    col(name)?
                        .as_string_opt::<i32>()
                        .ok_or_else(|| Error::parquet(path, format!("column {name} is not text")))
                };
                Ok(Columns {
                    isin: text("isin")?,
                    ticker: text("ticker")?,
                    date: col("date")?
                        .as_primitive_opt::<Date32Type>()
                        .ok_or_else(|| Error::parquet(path, "column date is not a Date32"))?,
                    close: col("close")?
                        .as_primitive_opt::<Float64Type>()
                        .ok_or_else(|| Error::parquet(path, "column close is not a Float64"))?,
                })
            })
            .collect()
    }
}

/// A row the merge adds.
struct NewRow<'a> {
    isin: &'a str,
    ticker: &'a str,
    date: i32,
    close: f64,
}

/// One batch's `isin, ticker, date, close`, nulls as `None`.
struct Columns<'a> {
    isin: &'a StringArray,
    ticker: &'a StringArray,
    date: &'a PrimitiveArray<Date32Type>,
    close: &'a PrimitiveArray<Float64Type>,
}

impl<'a> Columns<'a> {
    fn rows(&self) -> usize {
        self.isin.len()
    }

    fn isin(&self, r: usize) -> Option<&'a str> {
        self.isin.is_valid(r).then(|| self.isin.value(r))
    }

    fn ticker(&self, r: usize) -> Option<&'a str> {
        self.ticker.is_valid(r).then(|| self.ticker.value(r))
    }

    fn date(&self, r: usize) -> Option<i32> {
        self.date.is_valid(r).then(|| self.date.value(r))
    }

    fn close(&self, r: usize) -> Option<f64> {
        self.close.is_valid(r).then(|| self.close.value(r))
    }
}
