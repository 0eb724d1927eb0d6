//! Reading every layout, importing to Parquet and serving aligned prices.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ultracore_marketdata::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn sample(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../sample-data")
        .join(file)
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn wide_sample_csv_reads_every_ticker() -> TestResult {
    let series = read_prices_file(&sample("factor_etf_prices.csv"), None)?;
    let names: Vec<&str> = series.iter().map(|s| s.ticker.as_str()).collect();
    assert_eq!(names, ["MTUM", "QUAL", "SIZE", "USMV", "VLUE"]);
    assert_eq!(series[0].bars.len(), 2264);
    assert_eq!(series[0].first_date(), Some(d("2014-01-02")));
    assert_eq!(series[0].last_date(), Some(d("2022-12-28")));
    assert_eq!(series[0].bars[0].close, 52.704);
    Ok(())
}

#[test]
fn import_then_serve_the_parquet_layout() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let summary = import_files(&[sample("sp500_prices.csv")], None, tmp.path())?;
    assert_eq!(summary.len(), 20);
    assert!(ticker_path(tmp.path(), "AAPL").is_file());
    let provider = DataProvider::open(tmp.path())?.with_cache_capacity(3);
    assert_eq!(provider.tickers()?.len(), 20);
    let a = provider.availability("AAPL")?;
    assert_eq!(
        (a.first_date, a.last_date, a.rows),
        (Some(d("1990-01-02")), Some(d("2022-12-28")), 8313)
    );
    // ~9 exchange holidays a year over 33 years, plus a few closures.
    assert!(a.gaps > 250 && a.gaps < 350, "{}", a.gaps);
    let tickers: Vec<String> = ["AAPL", "MSFT", "XOM", "JPM"].map(String::from).to_vec();
    let m = provider.price_matrix(&tickers, Lookback::Rows(1261), 2)?;
    assert_eq!(m.dates.len(), 1261);
    assert_eq!(m.values.len(), 1261 * 4);
    assert!(provider.cached() <= 3, "cache is bounded");
    // Same numbers as the CSV.
    let csv = DataProvider::open(sample("sp500_prices.csv"))?;
    assert_eq!(csv.price_matrix(&tickers, Lookback::Rows(1261), 2)?, m);
    let y = provider.price_matrix(&tickers, Lookback::Years(5.0), 2)?;
    assert_eq!(y.dates.last(), Some(&d("2022-12-28")));
    assert!(y.dates[0] >= d("2017-12-28") && y.dates[0] <= d("2018-01-02"));
    let latest = provider.latest_prices(&tickers[..1])?;
    assert_eq!(latest[0].date, d("2022-12-28"));
    provider.clear_cache();
    assert_eq!(provider.cached(), 0);
    Ok(())
}

#[test]
fn yahoo_export_imports_with_ticker_and_all_fields() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let file = write(
        tmp.path(),
        "download.csv",
        "Date,Open,High,Low,Close,Adj Close,Volume\n\
         2024-01-03,10,11,9,10.5,10.4,1000\n\
         2024-01-02,9,10,8,9.5,9.4,900\n\
         2024-01-04,null,null,null,null,null,null\n\
         2024-01-05,11,12,10,11.5,11.4,1100\n",
    );
    let out = import_files(&[file], Some("SPY"), tmp.path())?;
    assert_eq!(out[0].ticker, "SPY");
    assert_eq!(out[0].rows, 3, "the null row is dropped");
    let series = read_prices_file(&ticker_path(tmp.path(), "SPY"), Some("SPY"))?;
    let b = &series[0].bars;
    assert_eq!(b[0].date, d("2024-01-02"), "sorted");
    assert_eq!(
        (b[0].open, b[0].adj_close, b[0].volume),
        (Some(9.0), Some(9.4), Some(900.0))
    );
    Ok(())
}

#[test]
fn long_csv_and_parquet_and_wide_with_gaps() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let long = write(
        tmp.path(),
        "long.csv",
        "date,ticker,close\n2024-01-02,AAA,1\n2024-01-02,BBB,2\n2024-01-03,AAA,1.1\n2024-01-04,AAA,1.2\n2024-01-04,BBB,2.2\n",
    );
    let p = DataProvider::open(&long)?;
    let m = p.price_matrix(&["AAA".into(), "BBB".into()], Lookback::All, 2)?;
    assert_eq!(
        m.dates,
        vec![d("2024-01-02"), d("2024-01-04")],
        "inner join"
    );
    assert_eq!(m.rows(), vec![vec![1.0, 2.0], vec![1.2, 2.2]]);
    assert_eq!(m.column("BBB"), Some(vec![2.0, 2.2]));
    let wide = write(
        tmp.path(),
        "wide.csv",
        "date,AAA,BBB\n2024-01-02,1,\n2024-01-03,1.1,2.1\n",
    );
    let m = DataProvider::open(&wide)?.price_matrix(&[], Lookback::All, 1)?;
    assert_eq!(m.dates, vec![d("2024-01-03")], "empty cell drops the date");
    // A Parquet file in the per-ticker format read back as a single file.
    let series = read_prices_file(&long, None)?;
    let pq = tmp.path().join("AAA.parquet");
    write_series_parquet(&pq, &series[0])?;
    assert_eq!(read_prices_file(&pq, None)?[0], series[0]);
    Ok(())
}

#[test]
fn clear_errors() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dup = write(
        tmp.path(),
        "dup.csv",
        "date,AAA\n2024-01-02,1\n2024-01-03,2\n2024-01-02,3\n",
    );
    let err = read_prices_file(&dup, None).err().ok_or("duplicate")?;
    assert_eq!(
        err.to_string(),
        "ticker AAA has two rows for 2024-01-02; remove the duplicate from the source"
    );
    let p = DataProvider::open(sample("factor_etf_prices.csv"))?;
    let err = p.availability("SPY").err().ok_or("unknown")?;
    let msg = err.to_string();
    assert!(
        msg.contains("no price history for ticker SPY")
            && msg.contains("etf import")
            && msg.contains("MTUM"),
        "{msg}"
    );
    let err = p
        .price_matrix(&["MTUM".into()], Lookback::Since(d("2022-12-27")), 10)
        .err()
        .ok_or("too little")?;
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "only 2 common price rows from 2022-12-27 to 2022-12-28 for MTUM, need at least 10"
        ),
        "{msg}"
    );
    let bad = write(tmp.path(), "bad.csv", "date,AAA\n2024-01-02,abc\n");
    assert!(matches!(
        read_prices_file(&bad, None),
        Err(Error::BadNumber { row: 1, .. })
    ));
    let bad_date = write(tmp.path(), "bad_date.csv", "date,AAA\n02/01/2024,1\n");
    assert!(matches!(
        read_prices_file(&bad_date, None),
        Err(Error::BadDate { .. })
    ));
    let long_no_close = write(tmp.path(), "l.csv", "date,ticker,price\n2024-01-02,AAA,1\n");
    assert!(matches!(
        read_prices_file(&long_no_close, None),
        Err(Error::MissingColumn { .. })
    ));
    assert!(matches!(
        DataProvider::open(tmp.path().join("nope.csv")),
        Err(Error::Io { .. })
    ));
    let escape = write(tmp.path(), "e.csv", "date,../x\n2024-01-02,1\n");
    assert!(import_files(&[escape], None, tmp.path()).is_err());
    Ok(())
}
