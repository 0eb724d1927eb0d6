//! Parquet reading (any layout) and writing (one file per ticker).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float32Type, Float64Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, Date32Array, Float64Array, RecordBatch, RecordBatchReader};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, Datelike, NaiveDate};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::frame::{Column, Frame};
use crate::{Error, PriceSeries, Result};

/// Days from 0001-01-01 (chrono's CE day 1) to 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

fn date_from_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(UNIX_EPOCH_CE_DAYS)?)
}

fn date_from_secs(secs: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp(secs, 0).map(|t| t.date_naive())
}

/// Reads a Parquet file into typed columns.
pub(crate) fn read_parquet_frame(path: &Path) -> Result<Frame> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| Error::parquet(path, e))?;
    let schema = reader.schema();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut columns: Vec<Option<Column>> = vec![None; names.len()];
    for batch in reader {
        let batch = batch.map_err(|e| Error::parquet(path, e))?;
        for (i, array) in batch.columns().iter().enumerate() {
            let part = convert(array, path, &names[i])?;
            columns[i] = Some(match (columns[i].take(), part) {
                (None, p) => p,
                (Some(Column::Dates(mut a)), Column::Dates(b)) => {
                    a.extend(b);
                    Column::Dates(a)
                }
                (Some(Column::Numbers(mut a)), Column::Numbers(b)) => {
                    a.extend(b);
                    Column::Numbers(a)
                }
                (Some(Column::Text(mut a)), Column::Text(b)) => {
                    a.extend(b);
                    Column::Text(a)
                }
                _ => {
                    return Err(Error::parquet(
                        path,
                        "a column changes type between row groups",
                    ))
                }
            });
        }
    }
    let columns = columns
        .into_iter()
        .map(|c| c.unwrap_or(Column::Text(Vec::new())))
        .collect();
    Ok(Frame {
        path: path.to_path_buf(),
        names,
        columns,
    })
}

fn convert(a: &ArrayRef, path: &Path, name: &str) -> Result<Column> {
    fn nums<T: arrow_array::ArrowPrimitiveType>(
        a: &ArrayRef,
        f: impl Fn(T::Native) -> f64,
    ) -> Column {
        let p = a.as_primitive::<T>();
        Column::Numbers(
            (0..p.len())
                .map(|i| p.is_valid(i).then(|| f(p.value(i))))
                .collect(),
        )
    }
    fn dates<T: arrow_array::ArrowPrimitiveType>(
        a: &ArrayRef,
        f: impl Fn(T::Native) -> Option<NaiveDate>,
    ) -> Column {
        let p = a.as_primitive::<T>();
        Column::Dates(
            (0..p.len())
                .map(|i| p.is_valid(i).then(|| f(p.value(i))).flatten())
                .collect(),
        )
    }
    Ok(match a.data_type() {
        DataType::Float64 => nums::<Float64Type>(a, |v| v),
        DataType::Float32 => nums::<Float32Type>(a, f64::from),
        DataType::Int64 => nums::<Int64Type>(a, |v| v as f64),
        DataType::Int32 => nums::<Int32Type>(a, f64::from),
        DataType::UInt64 => nums::<UInt64Type>(a, |v| v as f64),
        DataType::UInt32 => nums::<UInt32Type>(a, f64::from),
        DataType::Date32 => dates::<Date32Type>(a, date_from_days),
        DataType::Date64 => dates::<Date64Type>(a, |ms| date_from_secs(ms.div_euclid(1000))),
        DataType::Timestamp(unit, _) => match unit {
            TimeUnit::Second => dates::<TimestampSecondType>(a, date_from_secs),
            TimeUnit::Millisecond => {
                dates::<TimestampMillisecondType>(a, |v| date_from_secs(v.div_euclid(1_000)))
            }
            TimeUnit::Microsecond => {
                dates::<TimestampMicrosecondType>(a, |v| date_from_secs(v.div_euclid(1_000_000)))
            }
            TimeUnit::Nanosecond => {
                dates::<TimestampNanosecondType>(a, |v| date_from_secs(v.div_euclid(1_000_000_000)))
            }
        },
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            Column::Text(
                (0..s.len())
                    .map(|i| s.is_valid(i).then(|| s.value(i).to_string()))
                    .collect(),
            )
        }
        DataType::LargeUtf8 => {
            let s = a.as_string::<i64>();
            Column::Text(
                (0..s.len())
                    .map(|i| s.is_valid(i).then(|| s.value(i).to_string()))
                    .collect(),
            )
        }
        DataType::Utf8View => {
            let s = a.as_string_view();
            Column::Text(
                (0..s.len())
                    .map(|i| s.is_valid(i).then(|| s.value(i).to_string()))
                    .collect(),
            )
        }
        other => {
            return Err(Error::parquet(
                path,
                format!("column {name:?} has unsupported type {other}"),
            ))
        }
    })
}

/// Writes one ticker's series as `date` (Date32), `close` and whichever of
/// `open, high, low, adj_close, volume` the series has (nullable Float64),
/// Snappy-compressed. Written to a temporary file and renamed into place,
/// so a reader never sees a half-written file.
pub fn write_series_parquet(path: &Path, series: &PriceSeries) -> Result<()> {
    let bars = &series.bars;
    let days: Vec<i32> = bars
        .iter()
        .map(|b| b.date.num_days_from_ce() - UNIX_EPOCH_CE_DAYS)
        .collect();
    let mut fields = vec![
        Field::new("date", DataType::Date32, false),
        Field::new("close", DataType::Float64, true),
    ];
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(days)),
        Arc::new(Float64Array::from(
            bars.iter().map(|b| b.close).collect::<Vec<_>>(),
        )),
    ];
    type Getter = fn(&crate::PriceBar) -> Option<f64>;
    let optional: [(&str, Getter); 5] = [
        ("open", |b| b.open),
        ("high", |b| b.high),
        ("low", |b| b.low),
        ("adj_close", |b| b.adj_close),
        ("volume", |b| b.volume),
    ];
    for (name, get) in optional {
        if bars.iter().any(|b| get(b).is_some()) {
            fields.push(Field::new(name, DataType::Float64, true));
            arrays.push(Arc::new(Float64Array::from(
                bars.iter().map(get).collect::<Vec<_>>(),
            )));
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let batch =
        RecordBatch::try_new(schema.clone(), arrays).map_err(|e| Error::parquet(path, e))?;
    let tmp = path.with_extension("parquet.tmp");
    let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer =
        ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| Error::parquet(path, e))?;
    writer.write(&batch).map_err(|e| Error::parquet(path, e))?;
    writer.close().map_err(|e| Error::parquet(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
