//! Closing prices merged into the financial data product: replaced and
//! added dates, new tickers, the file's layout and metadata kept, the same
//! update applied twice, and what is refused.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type};
use arrow_array::{Array, ArrayRef, Date32Array, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use chrono::{Datelike, NaiveDate};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use ultracore_marketdata::mesh::{
    apply_prices, build_products, placeholder_isin, DataMesh, PriceFilter, ESG_PRODUCT,
    FINANCIAL_PRODUCT, ROW_GROUP_ROWS,
};
use ultracore_marketdata::{Error, PriceBar, PriceSeries};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Update = (String, Vec<(NaiveDate, f64)>);

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn series(ticker: &str, bars: &[(&str, f64)]) -> PriceSeries {
    PriceSeries::new(
        ticker,
        bars.iter()
            .map(|(d, c)| PriceBar::close_only(day(d), *c))
            .collect(),
    )
    .unwrap()
}

fn update(ticker: &str, prices: &[(&str, f64)]) -> Update {
    (
        ticker.to_owned(),
        prices.iter().map(|(d, c)| (day(d), *c)).collect(),
    )
}

/// Every ticker's ISIN and (date, close) pairs, by ticker.
type Closes = BTreeMap<String, (String, Vec<(NaiveDate, f64)>)>;

/// Every ticker's (date, close) as the mesh answers, by ticker, with its ISIN.
fn closes(dir: &Path) -> Result<Closes, Error> {
    let (all, _) = DataMesh::open(dir)?.prices(&PriceFilter::default())?;
    Ok(all
        .into_iter()
        .map(|(isin, s)| {
            let bars = s.bars.iter().map(|b| (b.date, b.close)).collect();
            (s.ticker, (isin, bars))
        })
        .collect())
}

fn key_values(path: &Path) -> Result<BTreeMap<String, String>, Box<dyn std::error::Error>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path)?)?;
    Ok(builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .filter(|kv| kv.key != "ARROW:schema")
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect())
}

#[test]
fn closes_are_replaced_added_and_new_tickers_placed() -> TestResult {
    let dir = tempfile::tempdir()?;
    build_products(
        &[
            series(
                "QUAL",
                &[
                    ("2026-01-05", 180.0),
                    ("2026-01-06", 181.0),
                    ("2026-01-07", 182.0),
                ],
            ),
            series("USMV", &[("2026-01-05", 90.0), ("2026-01-06", 91.0)]),
        ],
        dir.path(),
    )?;
    let mesh = DataMesh::open(dir.path())?;
    let before = mesh.prices_cached(&PriceFilter::default())?;
    assert_eq!(before.0.len(), 2);
    let esg = std::fs::read(dir.path().join(ESG_PRODUCT))?;
    let financial = dir.path().join(FINANCIAL_PRODUCT);
    let metadata = key_values(&financial)?;
    assert_eq!(metadata["ultracore.synthetic"], "false");

    let updates = vec![
        // A corrected close, one already there, and the next day.
        update(
            "QUAL",
            &[
                ("2026-01-06", 181.5),
                ("2026-01-07", 182.0),
                ("2026-01-08", 183.0),
            ],
        ),
        update("MTUM", &[("2026-01-07", 200.0), ("2026-01-08", 201.0)]),
    ];
    let summary = apply_prices(dir.path(), &updates)?;
    assert_eq!(summary.tickers, ["MTUM", "QUAL"]);
    assert_eq!(summary.new_tickers, ["MTUM"]);
    assert_eq!(
        (
            summary.rows_added,
            summary.rows_changed,
            summary.rows_unchanged
        ),
        (3, 1, 1)
    );
    assert!(summary.rewritten);

    let after = closes(dir.path())?;
    let qual_isin = placeholder_isin("QUAL");
    assert_eq!(
        after["QUAL"],
        (
            qual_isin,
            vec![
                (day("2026-01-05"), 180.0),
                (day("2026-01-06"), 181.5),
                (day("2026-01-07"), 182.0),
                (day("2026-01-08"), 183.0),
            ]
        )
    );
    assert_eq!(
        after["MTUM"],
        (
            placeholder_isin("MTUM"),
            vec![(day("2026-01-07"), 200.0), (day("2026-01-08"), 201.0)]
        )
    );
    assert_eq!(after["USMV"].1.len(), 2, "other tickers untouched");

    // A client that cached the old answer sees the new file.
    let cached = mesh.prices_cached(&PriceFilter::default())?;
    assert_eq!(cached.0.len(), 3);
    // The ESG product is not touched; the financial one keeps its metadata.
    assert_eq!(std::fs::read(dir.path().join(ESG_PRODUCT))?, esg);
    assert!(mesh.esg_is_synthetic()?);
    assert_eq!(key_values(&financial)?, metadata);

    // The same update again changes nothing, and leaves the file alone.
    let bytes = std::fs::read(&financial)?;
    let modified = std::fs::metadata(&financial)?.modified()?;
    let again = apply_prices(dir.path(), &updates)?;
    assert_eq!(
        (
            again.rows_added,
            again.rows_changed,
            again.rows_unchanged,
            again.rewritten
        ),
        (0, 0, 5, false)
    );
    assert!(again.tickers.is_empty() && again.new_tickers.is_empty());
    assert_eq!(std::fs::read(&financial)?, bytes);
    assert_eq!(std::fs::metadata(&financial)?.modified()?, modified);
    assert_eq!(closes(dir.path())?, after);
    assert!(!dir
        .path()
        .join("financial_data_product.parquet.tmp")
        .exists());
    Ok(())
}

#[test]
fn a_later_close_of_one_date_wins_and_a_same_size_rewrite_is_seen() -> TestResult {
    let dir = tempfile::tempdir()?;
    build_products(&[series("QUAL", &[("2026-01-05", 180.0)])], dir.path())?;
    let mesh = DataMesh::open(dir.path())?;
    for close in [1.0, 2.0, 3.0, 4.0] {
        // Back to back, each rewrite the same size as the one before.
        apply_prices(
            dir.path(),
            &[
                update("QUAL", &[("2026-01-05", 999.0)]),
                update("QUAL", &[("2026-01-05", close)]),
            ],
        )?;
        let answer = mesh.prices_cached(&PriceFilter::default())?;
        assert_eq!(answer.0[0].1.bars[0].close, close);
    }
    Ok(())
}

#[test]
fn the_layout_stays_sorted_by_isin_in_bounded_row_groups() -> TestResult {
    let dir = tempfile::tempdir()?;
    let start = day("2010-01-01");
    let long = |ticker: &str, n: usize, scale: f64| {
        let bars = (0..n)
            .map(|i| {
                PriceBar::close_only(
                    start + chrono::Duration::days(i as i64),
                    scale + i as f64 / 100.0,
                )
            })
            .collect();
        PriceSeries::new(ticker, bars).unwrap()
    };
    build_products(
        &[long("AAA", 3000, 10.0), long("CCC", 3000, 30.0)],
        dir.path(),
    )?;
    // A new ticker whose ISIN sorts between the two, and new days for both.
    let newest = start + chrono::Duration::days(3000);
    let summary = apply_prices(
        dir.path(),
        &[
            (
                "BBB".into(),
                (0..2500)
                    .map(|i| (start + chrono::Duration::days(i), 20.0))
                    .collect(),
            ),
            ("AAA".into(), vec![(newest, 11.0)]),
            ("CCC".into(), vec![(newest, 31.0)]),
        ],
    )?;
    assert_eq!(summary.rows_added, 2502);

    let builder =
        ParquetRecordBatchReaderBuilder::try_new(File::open(dir.path().join(FINANCIAL_PRODUCT))?)?;
    let groups: Vec<usize> = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows() as usize)
        .collect();
    assert_eq!(groups.iter().sum::<usize>(), 8502);
    assert!(groups.iter().all(|&n| n <= ROW_GROUP_ROWS), "{groups:?}");
    let mut keys = Vec::new();
    for batch in builder.build()? {
        let batch = batch?;
        let isin = batch
            .column_by_name("isin")
            .ok_or("isin")?
            .as_string::<i32>();
        let date = batch
            .column_by_name("date")
            .ok_or("date")?
            .as_primitive::<Date32Type>();
        for r in 0..batch.num_rows() {
            keys.push((isin.value(r).to_owned(), date.value(r)));
        }
    }
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "rows out of order");
    let after = closes(dir.path())?;
    assert_eq!(after["AAA"].1.last(), Some(&(newest, 11.0)));
    assert_eq!(after["BBB"].1.len(), 2500);
    assert_eq!(after["CCC"].1.len(), 3001);
    Ok(())
}

/// A vendor's product: one more column than UltraCore's (nullable or
/// not), its own metadata, and `dup` under two ISINs.
fn vendor_product(dir: &Path, volume_nullable: bool) -> TestResult {
    let schema = Arc::new(Schema::new(vec![
        Field::new("isin", DataType::Utf8, false),
        Field::new("ticker", DataType::Utf8, false),
        Field::new("date", DataType::Date32, false),
        Field::new("close", DataType::Float64, false),
        Field::new("volume", DataType::Float64, volume_nullable),
    ]));
    let epoch = |d: &str| day(d).num_days_from_ce() - 719_163;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![
            "US0378331005",
            "US0378331005",
            "US5949181045",
            "XS0000000001",
            "XS0000000002",
        ])),
        Arc::new(StringArray::from(vec![
            "AAPL", "AAPL", "MSFT", "DUP", "DUP",
        ])),
        Arc::new(Date32Array::from(vec![
            epoch("2026-01-05"),
            epoch("2026-01-06"),
            epoch("2026-01-05"),
            epoch("2026-01-05"),
            epoch("2026-01-05"),
        ])),
        Arc::new(Float64Array::from(vec![250.0, 251.0, 480.0, 1.0, 1.0])),
        Arc::new(Float64Array::from(vec![1e6, 2e6, 3e6, 4e6, 5e6])),
    ];
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "vendor".into(),
            "acme".to_owned(),
        )]))
        .build();
    let mut w = ArrowWriter::try_new(
        File::create(dir.join(FINANCIAL_PRODUCT))?,
        schema.clone(),
        Some(props),
    )?;
    w.write(&RecordBatch::try_new(schema, columns)?)?;
    w.close()?;
    // The ESG product comes from UltraCore's builder.
    let esg = tempfile::tempdir()?;
    build_products(&[series("AAPL", &[("2026-01-05", 1.0)])], esg.path())?;
    std::fs::copy(esg.path().join(ESG_PRODUCT), dir.join(ESG_PRODUCT))?;
    Ok(())
}

#[test]
fn a_vendor_product_keeps_its_isins_columns_and_metadata() -> TestResult {
    let dir = tempfile::tempdir()?;
    vendor_product(dir.path(), true)?;
    let summary = apply_prices(
        dir.path(),
        &[
            update("AAPL", &[("2026-01-06", 252.0), ("2026-01-07", 253.0)]),
            update("NVDA", &[("2026-01-07", 140.0)]),
        ],
    )?;
    assert_eq!((summary.rows_added, summary.rows_changed), (2, 1));
    let after = closes(dir.path())?;
    assert_eq!(after["AAPL"].0, "US0378331005", "the vendor's ISIN is kept");
    assert_eq!(
        after["AAPL"].1[1..],
        [(day("2026-01-06"), 252.0), (day("2026-01-07"), 253.0)]
    );
    assert_eq!(after["NVDA"].0, placeholder_isin("NVDA"));

    let path = dir.path().join(FINANCIAL_PRODUCT);
    assert_eq!(key_values(&path)?["vendor"], "acme");
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path)?)?;
    let (mut volumes, mut rows) = (BTreeMap::new(), 0);
    for batch in builder.build()? {
        let batch = batch?;
        rows += batch.num_rows();
        let ticker = batch
            .column_by_name("ticker")
            .ok_or("ticker")?
            .as_string::<i32>();
        let date = batch
            .column_by_name("date")
            .ok_or("date")?
            .as_primitive::<Date32Type>();
        let volume = batch
            .column_by_name("volume")
            .ok_or("volume")?
            .as_primitive::<Float64Type>();
        for r in 0..batch.num_rows() {
            volumes.insert(
                (ticker.value(r).to_owned(), date.value(r)),
                volume.is_valid(r).then(|| volume.value(r)),
            );
        }
    }
    let epoch = |d: &str| day(d).num_days_from_ce() - 719_163;
    // Old rows keep theirs (a changed close too); new rows have none.
    assert_eq!(
        volumes[&("AAPL".to_owned(), epoch("2026-01-06"))],
        Some(2e6)
    );
    assert_eq!(volumes[&("AAPL".to_owned(), epoch("2026-01-07"))], None);
    assert_eq!(volumes[&("NVDA".to_owned(), epoch("2026-01-07"))], None);
    assert_eq!(rows, 7);
    Ok(())
}

#[test]
fn what_cannot_be_placed_is_refused_and_nothing_written() -> TestResult {
    let dir = tempfile::tempdir()?;
    vendor_product(dir.path(), false)?;
    let path = dir.path().join(FINANCIAL_PRODUCT);
    let bytes = std::fs::read(&path)?;
    let refused = |updates: &[Update]| apply_prices(dir.path(), updates).unwrap_err();

    // A ticker under two ISINs: which one is meant is unknown.
    let e = refused(&[update("DUP", &[("2026-01-06", 1.0)])]);
    assert!(
        matches!(&e, Error::TickerConflict { ticker, .. } if ticker == "DUP"),
        "{e}"
    );
    assert!(e.to_string().contains("XS0000000001, XS0000000002"), "{e}");
    // Not a price.
    for close in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = refused(&[update("AAPL", &[("2026-01-06", close)])]);
        assert!(
            matches!(e, Error::InvalidArgument { name: "prices", .. }),
            "{e}"
        );
    }
    // A new row where the vendor's column may not be empty.
    let e = refused(&[update("AAPL", &[("2026-01-07", 1.0)])]);
    assert!(e.to_string().contains("\"volume\" is not nullable"), "{e}");
    assert_eq!(std::fs::read(&path)?, bytes);
    // Changing a close needs no new value there.
    let changed = apply_prices(dir.path(), &[update("AAPL", &[("2026-01-06", 260.0)])])?;
    assert_eq!(changed.rows_changed, 1);

    // Two new tickers with one placeholder ISIN, or one that is taken.
    let fresh = tempfile::tempdir()?;
    build_products(&[series("BRKB", &[("2026-01-05", 1.0)])], fresh.path())?;
    let e = apply_prices(fresh.path(), &[update("BRK.B", &[("2026-01-05", 2.0)])]).unwrap_err();
    assert!(
        matches!(&e, Error::TickerConflict { ticker, .. } if ticker == "BRK.B"),
        "{e}"
    );
    let e = apply_prices(
        fresh.path(),
        &[
            update("BF.B", &[("2026-01-05", 2.0)]),
            update("BF-B", &[("2026-01-05", 2.0)]),
        ],
    )
    .unwrap_err();
    assert!(matches!(e, Error::TickerConflict { .. }), "{e}");

    // No product at all.
    let empty = tempfile::tempdir()?;
    let e = apply_prices(empty.path(), &[update("AAPL", &[("2026-01-05", 1.0)])]).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert!(e.to_string().contains("mesh build"), "{e}");
    Ok(())
}
